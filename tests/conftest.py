"""A whole running Banli per test: database, Redis, worker + dispatcher threads, the web app on a real
port, and stand-ins for both platforms' APIs.

Backends come from the environment so CI runs the same suite twice:
- default (embedded): a SQLite file and in-process fakeredis;
- BANLI_TEST_DATABASE_URL=postgresql://…  and  BANLI_TEST_REDIS_URL=redis://…: real servers. Each test
  gets its own PostgreSQL schema and its own RQ queue name, so tests never see each other's rows.
"""

from __future__ import annotations

import logging
import os
import secrets
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

import pytest
import requests
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from banli.embedded import Embedded
from banli.settings import DingTalkSettings, Settings, WeComSettings
from bot.app import create_app
from bot.runtime import Runtime
from bot.serving import ServerThread
from bot.wecom.standin import WeComPeer, WeComStandin
from storage.db import make_engine
from storage.migrate import upgrade

TEST_DB = os.environ.get("BANLI_TEST_DATABASE_URL", "")
TEST_REDIS = os.environ.get("BANLI_TEST_REDIS_URL", "")

WECOM_TOKEN = "QDG6eK"
WECOM_AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
WECOM_AGENT = 1000002

# A small company the directory stand-ins know about.
WECOM_USERS = {
    "zhangsan": {"name": "张三", "department": [2], "main_department": 2, "direct_leader": ["wangjl"]},
    "wangjl": {"name": "王经理", "department": [2], "main_department": 2, "direct_leader": ["zhaozong"]},
    "zhaozong": {"name": "赵总", "department": [1], "main_department": 1, "direct_leader": []},
}
WECOM_DEPARTMENTS = {1: "总经办", 2: "销售一部"}
DINGTALK_USERS = {
    "0147001": {"name": "李四", "dept_id_list": [20], "manager_userid": "0147002"},
    "0147002": {"name": "周经理", "dept_id_list": [20]},
    "0147011": {"name": "钱会计", "dept_id_list": [30]},
}
DINGTALK_DEPARTMENTS = {20: "销售二部", 30: "财务部"}
# The HTTP event subscription's token and aes_key (43 characters of [a-zA-Z0-9], docs/dingtalk.md §3.1).
DINGTALK_EVENT_TOKEN = "dtEventToken1"
DINGTALK_EVENT_AES_KEY = "1234567890abcdefghijklmnopqrstuvwxyzABCDEFG"


def backend_label() -> str:
    return ("postgresql" if TEST_DB else "sqlite") + "+" + ("redis" if TEST_REDIS else "fakeredis")


def pytest_report_header(config) -> str:
    return f"banli backends: {backend_label()}"


@pytest.fixture
def database_url(tmp_path) -> Any:
    """A fresh, migrated database: a SQLite file, or a new schema on the test PostgreSQL."""
    if not TEST_DB:
        url = f"sqlite:///{tmp_path / 'banli.db'}"
        upgrade(make_engine(url))
        yield url
        return
    schema = "t_" + secrets.token_hex(6)
    admin = make_engine(TEST_DB)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    sep = "&" if "?" in TEST_DB else "?"
    url = f"{TEST_DB}{sep}options=-csearch_path%3D{schema}"
    migrator = make_engine(url)
    upgrade(migrator)
    migrator.dispose()
    yield url
    _drop_schema(admin, schema)
    admin.dispose()


def _drop_schema(admin, schema: str, attempts: int = 5) -> None:
    """Clean up a test's schema. DROP … CASCADE can deadlock with a connection the test's threads
    were still closing; that is cleanup, not the behaviour under test, so it is retried and at
    worst left behind with a warning (the next CI machine starts empty)."""
    for attempt in range(attempts):
        try:
            with admin.begin() as conn:
                conn.execute(text("SET LOCAL lock_timeout = '5s'"))
                conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
            return
        except OperationalError as exc:
            if attempt == attempts - 1:
                warnings.warn(f"schema {schema} left behind: {exc.__class__.__name__}")
                return
            time.sleep(0.5)


@dataclass
class Stack:
    runtime: Runtime
    url: str
    wecom: WeComStandin
    wecom_peer: WeComPeer
    dingtalk: Any = None
    dingtalk_peer: Any = None
    servers: list[ServerThread] = field(default_factory=list)
    embedded: Embedded | None = None

    # -- driving Banli over HTTP ------------------------------------------------------------------
    def post_wecom(self, inner_xml: str, *, timestamp: int | None = None) -> requests.Response:
        query, body = self.wecom_peer.callback(inner_xml, timestamp=timestamp)
        return requests.post(f"{self.url}/wecom/callback?{query}", data=body, timeout=10)

    def post_dingtalk(self, request: tuple[dict[str, str], bytes], path: str = "/dingtalk/callback") -> requests.Response:
        headers, body = request
        return requests.post(f"{self.url}{path}", data=body, headers=headers, timeout=10)

    # -- looking at state -------------------------------------------------------------------------
    def count(self, table: str, where: str = "") -> int:
        with self.runtime.engine.connect() as conn:
            return conn.execute(text(f"SELECT count(*) FROM {table} {where}")).scalar_one()

    def start_workers(self) -> None:
        if self.embedded is None:
            self.embedded = Embedded(self.runtime).start()

    def stop_workers(self) -> None:
        if self.embedded:
            self.embedded.stop()
            self.embedded = None


def photo_bytes(name: str, size: int = 256) -> bytes:
    """A small PNG-typed photo whose bytes depend on `name` only: the same name is the same photo."""
    import hashlib

    seed = hashlib.sha256(name.encode()).digest()
    return (b"\x89PNG\r\n\x1a\n" + seed * (size // 32 + 1))[:max(size, 40)]


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.05) -> Any:
    """Poll until `predicate()` is truthy; fail the test with a clear message after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


def startup_cron_finished(stack: "Stack") -> None:
    """Wait until the cron slots a stack claimed at start (its catch-up) have run: a nightly slot still
    running (the directory sync) would race a test's own work. Which slots are within their catch-up
    depends on the time of day, so wait for all of them, not for one by name."""
    wait_for(lambda: stack.count("outbox", "WHERE kind = 'cron'") >= 1
             and stack.count("outbox", "WHERE kind = 'cron' AND status = 'pending'") == 0)


def assert_nothing_happened(stack: "Stack") -> None:
    """A refused callback leaves no trace: no delivery, no outbox row, no employee, nothing sent."""
    settle(0.4)
    assert stack.count("outbox", "WHERE kind <> 'cron'") == 0  # the dispatcher's own cron slot may exist
    assert stack.count("employee") == 0
    assert stack.wecom.sent == []
    assert stack.dingtalk is None or stack.dingtalk.sent == []


def assert_one_refusal_logged(caplog, logger: str, status: int) -> None:
    """Exactly one warning line, on one line, saying what was refused and why."""
    lines = [r for r in caplog.records if r.name == logger and f"refused {status}" in r.getMessage()]
    assert len(lines) == 1, [r.getMessage() for r in caplog.records]
    assert lines[0].levelname == "WARNING" and "\n" not in lines[0].getMessage()


def settle(seconds: float = 0.6) -> None:
    """Let the dispatcher and worker run, to show that nothing *more* happens."""
    time.sleep(seconds)


def make_settings(database_url: str, *, wecom_api: str, dingtalk_api: str | None,
                  redis_url: str = TEST_REDIS, corp_id: str | None = None, **overrides) -> Settings:
    corp = corp_id or "wwtest" + secrets.token_hex(4)
    dingtalk = None
    if dingtalk_api:
        dingtalk = DingTalkSettings(app_key="dingtestkey" + corp[-8:], app_secret="test-app-secret-" + corp,
                                    robot_code="dingtestkey" + corp[-8:], api_base=dingtalk_api,
                                    oapi_base=dingtalk_api, card_template_id=overrides.pop("card_template_id", ""),
                                    mode=overrides.pop("dingtalk_mode", "http"),
                                    event_token=DINGTALK_EVENT_TOKEN, event_aes_key=DINGTALK_EVENT_AES_KEY)
    base = dict(
        database_url=database_url,
        redis_url=redis_url,
        wecom=WeComSettings(corp_id=corp, agent_id=WECOM_AGENT, secret="wecom-secret", token=WECOM_TOKEN,
                            aes_key=WECOM_AES_KEY, api_base=wecom_api),
        dingtalk=dingtalk,
        queue_name="banli-test-" + secrets.token_hex(4),
        outbox_lease_seconds=3,
        dispatch_interval_seconds=0.2,
    )
    base.update(overrides)
    return Settings(**base)


def _dingtalk_standin(settings_probe: dict[str, str]):
    try:
        from bot.dingtalk.standin import DingTalkPeer, DingTalkStandin
    except ImportError:
        return None, None
    standin = DingTalkStandin(app_key=settings_probe["app_key"], app_secret=settings_probe["app_secret"],
                              robot_code=settings_probe["app_key"], users=DINGTALK_USERS,
                              departments=DINGTALK_DEPARTMENTS)
    return standin, DingTalkPeer


@pytest.fixture
def stack_factory(database_url, tmp_path):
    """Build (and tear down) running stacks; `start_workers=False` leaves the queue unattended."""
    built: list[Stack] = []

    def build(*, start_workers: bool = True, clock=None, **overrides) -> Stack:
        corp = overrides.pop("corp_id", None) or "wwtest" + secrets.token_hex(4)
        wecom = WeComStandin(corp_id=corp, secret="wecom-secret", agent_id=WECOM_AGENT,
                             users=WECOM_USERS, departments=WECOM_DEPARTMENTS)
        wecom_server = ServerThread(wecom.app).start()
        app_key = "dingtestkey" + corp[-8:]
        dingtalk, peer_cls = _dingtalk_standin({"app_key": app_key, "app_secret": "test-app-secret-" + corp})
        servers = [wecom_server]
        dingtalk_url = None
        if dingtalk is not None:
            dingtalk_server = ServerThread(dingtalk.app).start()
            dingtalk.base_url = dingtalk_server.url  # its sessionWebhooks point at itself
            servers.append(dingtalk_server)
            dingtalk_url = dingtalk_server.url
        overrides.setdefault("files_dir", str(tmp_path / f"files-{len(built)}"))
        settings = make_settings(overrides.pop("database_url", database_url), wecom_api=wecom_server.url,
                                 dingtalk_api=dingtalk_url, corp_id=corp, **overrides)
        runtime = Runtime(settings, clock=clock) if clock else Runtime(settings)
        web = ServerThread(create_app(runtime=runtime)).start()
        servers.append(web)
        peer = WeComPeer(token=WECOM_TOKEN, aes_key=WECOM_AES_KEY, corp_id=corp, agent_id=WECOM_AGENT)
        dingtalk_peer = None
        if dingtalk is not None:
            dingtalk_peer = peer_cls(app_secret=settings.dingtalk.app_secret, robot_code=settings.dingtalk.robot_code,
                                     standin=dingtalk)
        stack = Stack(runtime=runtime, url=web.url, wecom=wecom, wecom_peer=peer, dingtalk=dingtalk,
                      dingtalk_peer=dingtalk_peer, servers=servers)
        if start_workers:
            stack.start_workers()
        built.append(stack)
        return stack

    yield build
    for stack in built:
        stack.stop_workers()
        for server in stack.servers:
            server.stop()
        stack.runtime.close()


@pytest.fixture
def stack(stack_factory) -> Stack:
    return stack_factory()


@pytest.fixture(autouse=True)
def _quiet_libraries(caplog):
    caplog.set_level(logging.INFO, logger="banli")
    for noisy in ("rq.worker", "werkzeug", "alembic"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
