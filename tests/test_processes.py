"""The real commands: `banli web` alone (embedded), and web + worker + dispatcher as separate processes."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import requests
from sqlalchemy import text

from banli.worker import default_concurrency
from storage.db import make_engine

from bot.serving import ServerThread
from bot.wecom.standin import WeComPeer, WeComStandin
from conftest import WECOM_AES_KEY, WECOM_AGENT, WECOM_DEPARTMENTS, WECOM_TOKEN, WECOM_USERS, wait_for
from servers import RedisServer, free_port, wait_healthy

CORP = "wwprocesstest01"


@pytest.fixture
def wecom_api():
    standin = WeComStandin(corp_id=CORP, secret="s3cret", agent_id=WECOM_AGENT, users=WECOM_USERS,
                           departments=WECOM_DEPARTMENTS)
    server = ServerThread(standin.app).start()
    yield standin, server.url
    server.stop()


def _env(database_url: str, api: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WECOM_", "DINGTALK_", "REDIS_URL"))}
    env.update(DATABASE_URL=database_url, WECOM_CORP_ID=CORP, WECOM_AGENT_ID=str(WECOM_AGENT),
               WECOM_SECRET="s3cret", WECOM_TOKEN=WECOM_TOKEN, WECOM_AES_KEY=WECOM_AES_KEY,
               WECOM_API_BASE=api, BANLI_DISPATCH_INTERVAL="0.2", BANLI_OUTBOX_LEASE_SECONDS="5", **extra)
    return env


def _spawn(args: list[str], env: dict[str, str], log) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "banli.cli", *args], env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)




def _stop(*procs: subprocess.Popen) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_banli_web_alone_runs_everything_embedded(tmp_path, wecom_api):
    standin, api = wecom_api
    port = free_port()
    log_path = tmp_path / "web.log"
    with open(log_path, "w") as log:
        web = _spawn(["web", "--port", str(port), "--host", "127.0.0.1"],
                     _env(f"sqlite:///{tmp_path / 'banli.db'}", api), log)
    try:
        wait_healthy(f"http://127.0.0.1:{port}", web, log_path)
        peer = WeComPeer(token=WECOM_TOKEN, aes_key=WECOM_AES_KEY, corp_id=CORP, agent_id=WECOM_AGENT)
        query, body = peer.callback(peer.text("zhangsan", "帮助"))
        assert requests.post(f"http://127.0.0.1:{port}/wecom/callback?{query}", data=body, timeout=5).status_code == 200
        card = wait_for(lambda: standin.cards_to("zhangsan"), timeout=20)[0]
        assert card["template_card"]["main_title"]["title"] == "办理 · 主菜单"
    finally:
        _stop(web)
    startup = log_path.read_text()
    assert "企业微信 WeCom: on" in startup and "钉钉 DingTalk: off" in startup
    assert "embedded" in startup


def test_web_worker_and_dispatcher_as_separate_processes(tmp_path, wecom_api, database_url):
    standin, api = wecom_api
    redis_server = RedisServer(tmp_path).start()
    port = free_port()
    env = _env(database_url, api, REDIS_URL=redis_server.url, WEB_CONCURRENCY="2")
    logs = {name: tmp_path / f"{name}.log" for name in ("web", "worker", "dispatcher")}
    procs = []
    try:
        for name, args in (("web", ["web", "--port", str(port), "--host", "127.0.0.1"]),
                           ("worker", ["worker"]), ("dispatcher", ["dispatcher"])):
            with open(logs[name], "w") as log:
                procs.append(_spawn(args, env, log))
        wait_healthy(f"http://127.0.0.1:{port}", procs[0], logs["web"])
        peer = WeComPeer(token=WECOM_TOKEN, aes_key=WECOM_AES_KEY, corp_id=CORP, agent_id=WECOM_AGENT)
        for word in ("帮助", "报销"):
            query, body = peer.callback(peer.text("zhangsan", word))
            assert requests.post(f"http://127.0.0.1:{port}/wecom/callback?{query}", data=body,
                                 timeout=5).status_code == 200
        cards = wait_for(lambda: len(standin.cards_to("zhangsan")) == 2 and standin.cards_to("zhangsan"), timeout=30)
        assert sorted(c["template_card"]["main_title"]["title"] for c in cards) == ["办理 · 主菜单", "报销"]
        # Each process says it is alive: both web processes, each worker thread, the dispatcher.
        wanted = [("dispatcher", 1), ("web", 2), ("worker", default_concurrency())]
        wait_for(lambda: _rows(database_url, "SELECT kind, count(*) FROM process_beat GROUP BY kind ORDER BY kind")
                 == wanted, timeout=20)
    finally:
        _stop(*procs)
        redis_server.stop()
    # The worker's WeCom calls are in SQL once it has stopped: the token and both sends at least.
    [(calls,)] = _rows(database_url, "SELECT calls FROM api_call_count WHERE platform = 'wecom'")
    assert calls >= 3


def _rows(database_url: str, sql: str) -> list[tuple]:
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            return [tuple(row) for row in conn.execute(text(sql))]
    finally:
        engine.dispose()


def test_worker_refuses_to_start_without_redis(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'x.db'}"
    result = subprocess.run([sys.executable, "-m", "banli.cli", "worker"], env=env, capture_output=True,
                            text=True, timeout=30)
    assert result.returncode == 2 and "REDIS_URL" in result.stdout


def test_db_upgrade_is_idempotent(tmp_path):
    env = {k: v for k, v in os.environ.items()}
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'y.db'}"
    for _ in range(2):
        result = subprocess.run([sys.executable, "-m", "banli.cli", "db", "upgrade"], env=env,
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
