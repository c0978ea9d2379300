"""Outages end by themselves: the real `banli worker` and `banli dispatcher` processes against a
private redis-server that is stopped for a while, with a backlog of 200 messages.

Redis comes back empty (no persistence), as after a crash: every queued job is gone and only the SQL
outbox knows what is pending. Every message must be answered exactly once, soon after Redis returns,
and the queue must never hold two jobs for one row (a backlog that multiplies never drains).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest
import redis

from conftest import settle, wait_for
from servers import RedisServer

BACKLOG = 200
OUTAGE_SECONDS = 20
LEASE_SECONDS = 15
WORKERS = 4
QUEUE_KEY = "rq:queue:banli"


def process_env(stack, redis_url: str, **extra: str) -> dict[str, str]:
    """The environment of a `banli` process serving `stack`'s tenant, database and queue."""
    settings = stack.runtime.settings
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WECOM_", "DINGTALK_", "REDIS_URL", "BANLI_"))}
    env.update(DATABASE_URL=settings.database_url, REDIS_URL=redis_url, WECOM_CORP_ID=settings.wecom.corp_id,
               WECOM_AGENT_ID=str(settings.wecom.agent_id), WECOM_SECRET=settings.wecom.secret,
               WECOM_TOKEN=settings.wecom.token, WECOM_AES_KEY=settings.wecom.aes_key,
               WECOM_API_BASE=settings.wecom.api_base, BANLI_DISPATCH_INTERVAL="0.2",
               BANLI_OUTBOX_LEASE_SECONDS=str(LEASE_SECONDS), **extra)
    return env


def spawn(args: list[str], env: dict[str, str], log_path) -> subprocess.Popen:
    with open(log_path, "w") as log:
        return subprocess.Popen([sys.executable, "-m", "banli.cli", *args], env=env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)


def stop(*procs: subprocess.Popen) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


class QueueWatch:
    """Samples the queue every 100 ms: how many more jobs than pending rows it holds, and whether
    any row has two jobs in it. Pending rows are counted first: a job queued later is for a row
    pending then."""

    def __init__(self, url: str, pending) -> None:
        self.client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=0.2)
        self.pending = pending
        self.excess = -1
        self.longest = 0
        self.doubled: list[list[str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> "QueueWatch":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            pending = self.pending()
            try:
                job_ids = [j.decode() for j in self.client.lrange(QUEUE_KEY, 0, -1)]
            except redis.RedisError:
                continue  # Redis is down: nothing queued to look at
            self.longest = max(self.longest, len(job_ids))
            self.excess = max(self.excess, len(job_ids) - pending)
            rows = [j.rsplit("-", 1)[0] for j in job_ids]  # outbox-<row>-<token>
            if len(set(rows)) != len(rows):
                self.doubled.append(job_ids)


@pytest.fixture
def private_redis(tmp_path):
    server = RedisServer(tmp_path).start()
    yield server
    server.stop()


def test_a_backlog_across_a_redis_outage_is_answered_once_soon_after_redis_returns(
        stack_factory, private_redis, tmp_path):
    # Only the web runs in this process; the worker and dispatcher are the real commands.
    stack = stack_factory(redis_url=private_redis.url, start_workers=False, queue_name="banli")
    # Sends slow enough that the last jobs of the backlog wait in the queue longer than a lease
    # (4 at a time: 200 × ≥ 0.3 s / 4 > 15 s), which is when a dispatcher that queues a row again at
    # every lease expiry starts doubling jobs.
    stack.wecom.send_delay = 0.3
    env = process_env(stack, private_redis.url)
    logs = {name: tmp_path / f"{name}.log" for name in ("worker", "dispatcher")}
    dispatcher = spawn(["dispatcher"], env, logs["dispatcher"])
    worker = None
    watch = QueueWatch(private_redis.url, lambda: stack.count("outbox", "WHERE status = 'pending'")).start()
    try:
        for n in range(BACKLOG):
            assert stack.post_wecom(stack.wecom_peer.text("zhangsan", "帮助")).status_code == 200
        wait_for(lambda: stack.count("outbox", "WHERE kind = 'inbound' AND lease_until IS NOT NULL") == BACKLOG,
                 timeout=20)  # all leased and queued: nobody works the queue yet

        private_redis.stop()  # the queued jobs die with it
        worker = spawn(["worker", "--concurrency", str(WORKERS)], env, logs["worker"])
        time.sleep(OUTAGE_SECONDS)  # longer than a lease: every lease runs out during the outage
        assert worker.poll() is None, "the worker exited while Redis was down:\n" + logs["worker"].read_text()
        assert stack.wecom.sent == []

        private_redis.start()
        back = time.monotonic()
        wait_for(lambda: len(stack.wecom.cards_to("zhangsan")) >= BACKLOG, timeout=30)
        answered_after = time.monotonic() - back
        print(f"backlog of {BACKLOG} answered {answered_after:.1f} s after Redis returned")
        settle(LEASE_SECONDS / 3)  # a doubled job would be sent now
    finally:
        watch.stop()
        stop(*(p for p in (worker, dispatcher) if p))
    assert len(stack.wecom.cards_to("zhangsan")) == BACKLOG, "each message answered exactly once"
    assert stack.wecom.dropped == [], [(b["msgtype"], b.get("template_card", b.get("text"))) for b in stack.wecom.dropped][:3]
    assert stack.count("outbox", "WHERE kind = 'inbound' AND status = 'sent'") == BACKLOG
    assert watch.doubled == [], "a row had two jobs in the queue at once"
    assert watch.excess <= 0, "the queue held more jobs than there were pending rows"
    # The watch did see the backlog queued (workers may have taken a few before its first look).
    assert watch.longest >= BACKLOG * 3 // 4
    assert stack.wecom.max_in_flight == WORKERS  # one process, several jobs at once
    assert answered_after < 30
    for name, path in logs.items():
        text = path.read_text()
        assert text.count("redis unavailable") == 1, f"{name} must say so once per outage:\n{text}"
        assert text.count("redis is back") == 1, text
        assert "could not connect to Redis" not in text and "Traceback" not in text, text
    assert worker.returncode == 0 and dispatcher.returncode == 0

