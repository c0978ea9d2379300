"""What one process needs: database engine, Redis, the RQ queue, the router, platform clients.

Nothing connects at import time; `Runtime(settings)` builds everything lazily from its settings, so
tests build their own runtime against their own database, Redis and platform stand-ins.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from datetime import datetime
from functools import cached_property, partial
from typing import TYPE_CHECKING, Callable

from redis import Redis
from rq import Queue
from sqlalchemy.engine import Engine

from banli.settings import Settings
from bot.platform import PlatformClient
from handlers import Router
from storage.db import make_engine
from storage.models import utcnow

if TYPE_CHECKING:
    from bot.api_meter import ApiMeter

log = logging.getLogger("banli")

DOORBELL = "banli:doorbell"
_doorbell_reset_lock = threading.Lock()

# One FakeServer per process: the web threads, the worker thread and the dispatcher thread of
# embedded mode must all see the same in-process "Redis".
_fake_server = None
_fake_lock = threading.Lock()


def embedded_redis() -> Redis:
    global _fake_server
    import fakeredis

    with _fake_lock:
        if _fake_server is None:
            _fake_server = fakeredis.FakeServer()
    return fakeredis.FakeRedis(server=_fake_server)


class Runtime:
    def __init__(self, settings: Settings, *, clock: Callable[[], datetime] = utcnow,
                 engine: Engine | None = None, redis: Redis | None = None) -> None:
        self.settings = settings
        self.clock = clock
        if engine is not None:
            self.__dict__["engine"] = engine
        if redis is not None:
            self.__dict__["redis"] = redis

    @cached_property
    def engine(self) -> Engine:
        return make_engine(self.settings.database_url)

    @cached_property
    def autocommit_engine(self) -> Engine:
        """Connections that commit each statement: the webhook's single INSERT needs no BEGIN/COMMIT
        round trips. A pool of its own, so no connection switches modes on every checkout."""
        if self.settings.database_url.startswith("sqlite"):
            return self.engine  # one writer at a time anyway; keep a single pool
        return make_engine(self.settings.database_url, autocommit=True)

    def close(self) -> None:
        """Write the API call counts still held, then give back every database connection this
        runtime opened (both pools)."""
        if "api_meter" in self.__dict__:
            self.api_meter.flush()
        for name in ("autocommit_engine", "engine"):
            if name in self.__dict__:  # only the pools that were created
                self.__dict__[name].dispose()

    @cached_property
    def redis(self) -> Redis:
        if self.settings.embedded:
            return embedded_redis()
        # Short timeouts: a dead Redis must not hang a webhook; the outbox makes up for a missed ring.
        return Redis.from_url(self.settings.redis_url, socket_timeout=5, socket_connect_timeout=2,
                              health_check_interval=30)

    @cached_property
    def queue(self) -> Queue:
        return Queue(self.settings.queue_name, connection=self.redis)

    # Set by banli.wiring.wire(runtime), which every process calls once at start.
    _router: Router | None = None
    signals = None

    @property
    def wired(self) -> bool:
        return self._router is not None

    @property
    def router(self) -> Router:
        if self._router is None:
            raise RuntimeError("banli.wiring.wire(runtime) was not called: this process has no handlers")
        return self._router

    @router.setter
    def router(self, router: Router) -> None:
        self._router = router

    @cached_property
    def clients(self) -> dict[str, PlatformClient]:
        """Senders for each platform that is configured."""
        clients: dict[str, PlatformClient] = {}
        if self.settings.wecom:
            from bot.wecom.client import WeComClient

            clients["wecom"] = WeComClient(self.settings.wecom, self.redis, partial(self.api_meter.count, "wecom"))
        if self.settings.dingtalk:
            from bot.dingtalk.client import DingTalkClient

            clients["dingtalk"] = DingTalkClient(self.settings.dingtalk, self.redis,
                                                 partial(self.api_meter.count, "dingtalk"))
        return clients

    @cached_property
    def api_meter(self) -> "ApiMeter":
        """Counts the platform API calls this process makes (the monthly quota)."""
        from bot.api_meter import ApiMeter

        return ApiMeter(self)

    @cached_property
    def language_model(self) -> Callable[[str, str], dict | None] | None:
        """(instructions, a person's message) → the JSON object an OpenAI-compatible API answers;
        None when BANLI_LLM_URL is not set (the handlers then never ask)."""
        if self.settings.language_model is None:
            return None
        from bot.llm import LanguageModel

        return LanguageModel(self.settings.language_model).ask

    def now(self) -> datetime:
        return self.clock()

    @cached_property
    def doorbell(self) -> "Doorbell":
        # Looks `redis` up at each push, so a Redis swapped in later (tests) is the one rung.
        return Doorbell(lambda: self.redis)

    def ring(self) -> None:
        """Tell the dispatcher there is new work now rather than at its next poll. Call it after the
        commit; it returns at once (the push happens on the doorbell's thread). Best effort: if
        Redis is down the dispatcher's poll finds the rows anyway."""
        self.doorbell.ring()


class Doorbell:
    """RPUSHes the doorbell from a thread of its own, so no request waits on a Redis round trip
    (18 % of a webhook's time, bench/README.md), and rings within 5 ms share one push.

    `ring` sets a flag; the thread clears it and then pushes. So every ring is followed by a push
    that starts after it: either the thread had not cleared the flag yet, or it will loop again.
    The thread starts on the first ring in each process (never in a pre-fork master: a forked
    child has a new pid and starts its own), is a daemon, and ends after a minute without rings,
    so a process that built many runtimes (tests) does not keep idle threads.
    """

    IDLE_SECONDS = 60.0
    # At most one push per this interval: under load a push per callback would cost Redis and this
    # process about as much CPU as it did on the request thread. The dispatcher wakes ≤ 5 ms later.
    COALESCE_SECONDS = 0.005
    RETRY_SECONDS = (0.5, 1.0, 2.0, 5.0)  # then every 5 s; the dispatcher polls meanwhile

    def __init__(self, redis: Callable[[], Redis]) -> None:
        self._redis = redis
        self._pid = -1

    def ring(self) -> None:
        if self._pid != os.getpid():  # first use, or a forked child with its parent's state
            self._reset()
        if not self._wanted.is_set():  # already set: the push it promises starts after this call
            self._wanted.set()
        if not self._running:  # read after the set: see _run's exit
            with self._lock:
                if not self._running:
                    self._running = True
                    threading.Thread(target=self._run, name="banli-doorbell", daemon=True).start()

    def _reset(self) -> None:
        with _doorbell_reset_lock:
            if self._pid == os.getpid():  # another request thread got here first
                return
            self._wanted = threading.Event()
            self._lock = threading.Lock()
            self._running = False
            self._pid = os.getpid()

    def _run(self) -> None:
        failures = 0
        while True:
            if not self._wanted.wait(self.IDLE_SECONDS):
                with self._lock:
                    # Not running first, then look at the flag once more: a ring that set it
                    # after this look sees _running False and starts a new thread.
                    self._running = False
                    if not self._wanted.is_set():
                        return
                    self._running = True
            self._wanted.clear()
            try:
                self._redis().rpush(DOORBELL, "1")
            except Exception as exc:  # noqa: BLE001 — any Redis failure here is only a lost shortcut
                if failures == 0:
                    log.warning("doorbell not rung (%s); retrying, the dispatcher polls meanwhile",
                                exc.__class__.__name__)
                self._wanted.set()  # still owed
                time.sleep(self.RETRY_SECONDS[min(failures, len(self.RETRY_SECONDS) - 1)])
                failures += 1
                continue
            if failures:
                log.info("doorbell rung again after %d failed attempts", failures)
            failures = 0
            time.sleep(self.COALESCE_SECONDS)  # rings meanwhile share the next push
