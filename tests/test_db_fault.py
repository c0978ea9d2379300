"""Transient database errors are retried, never apologised for.

A connection killed under a handler, a serialization failure, a deadlock or SQLite's "database is
locked" says nothing about the message: its work goes back to the outbox and is done again a moment
later. Only a handler's own bug earns the apology.
"""

from __future__ import annotations

import secrets
import sqlite3
import threading
import time

import pytest
import requests
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from cards import Card
from conftest import TEST_DB, settle, wait_for
from storage.db import make_engine

MESSAGES = 200
KILLS = 24


def _apologies(stack) -> list[dict]:
    return [m for m in stack.wecom.sent if m["msgtype"] == "text" and "抱歉" in m["text"]["content"]]


def test_database_is_locked_under_a_handler_is_retried_not_apologised_for(stack):
    calls = []

    def locked_once(ctx):
        calls.append(1)
        if len(calls) == 1:  # what SQLite says when another writer holds the lock past busy_timeout
            raise OperationalError("UPDATE customer ...", {}, sqlite3.OperationalError("database is locked"))
        return Card(title="锁测试 · 办好了")

    stack.runtime.router.add_command("锁测试", locked_once)
    assert stack.post_wecom(stack.wecom_peer.text("zhangsan", "锁测试")).status_code == 200
    answer = wait_for(lambda: stack.wecom.messages_to("zhangsan"), timeout=15)[0]
    assert "锁测试 · 办好了" in str(answer)  # the real answer, a moment later
    settle(1)
    assert _apologies(stack) == [] and len(stack.wecom.sent) == 1
    assert len(calls) == 2
    with stack.runtime.engine.connect() as conn:
        status, attempts = conn.execute(text("SELECT status, attempts FROM outbox WHERE kind = 'inbound'")).one()
    assert (status, attempts) == ("sent", 2)


def test_a_handler_bug_is_apologised_for_once(stack):
    def bug(ctx):
        raise KeyError("a real bug")

    stack.runtime.router.add_command("故障测试", bug)
    stack.post_wecom(stack.wecom_peer.text("zhangsan", "故障测试"))
    wait_for(lambda: _apologies(stack))
    settle(4)  # longer than a lease: a second apology would be out by now
    assert len(_apologies(stack)) == 1 and len(stack.wecom.sent) == 1


@pytest.mark.skipif(not TEST_DB, reason="needs PostgreSQL: SQLite has no server connections to kill")
def test_worker_connections_killed_repeatedly_lose_nothing_double_nothing_apologise_for_nothing(
        stack_factory, database_url):
    # A name of our own on every connection of this test's runtime, so the killer only ever ends
    # this test's backends on the shared server.
    name = "banli_dbfault_" + secrets.token_hex(4)
    stack = stack_factory(database_url=f"{database_url}&application_name={name}")
    admin = make_engine(TEST_DB)
    kills: list[int] = []
    done = threading.Event()

    def killer() -> None:
        while len(kills) < KILLS and not done.wait(0.5):
            with admin.connect() as conn:
                killed = conn.execute(text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                    "AND application_name = :name"), {"name": name}).scalar_one()
                conn.commit()
            kills.append(killed)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    users = ["zhangsan", "wangjl", "zhaozong"]
    try:
        for n in range(MESSAGES):
            _post_until_accepted(stack, users[n % 3], "帮助")
            time.sleep(0.02)  # ~6 s of traffic: the kills land all through it
        wait_for(lambda: len(stack.wecom.sent) >= MESSAGES, timeout=60)
        settle(4)  # past a lease: anything doubled would be out now
    finally:
        done.set()
        thread.join(5)
        admin.dispose()
    assert sum(1 for k in kills if k) >= 10, f"the killer hit too little to prove anything: {kills}"
    assert _apologies(stack) == []
    # Each message's answer shown once. A send whose "done" was killed before its commit is sent
    # again with the same task id and body, which WeCom's duplicate check drops (docs/wecom.md):
    # that is the designed answer to an unrecorded success, so `dropped` may hold a few.
    assert len(stack.wecom.sent) == MESSAGES
    assert len({m["template_card"]["task_id"] for m in stack.wecom.sent}) == MESSAGES
    assert stack.count("outbox", "WHERE kind = 'inbound' AND status = 'sent'") == MESSAGES
    assert stack.count("outbox", "WHERE kind = 'message' AND status = 'sent'") == MESSAGES


def _post_until_accepted(stack, user: str, words: str) -> None:
    """As the platform does: a callback answered 503 (its INSERT's connection was killed) comes again."""
    query, body = stack.wecom_peer.callback(stack.wecom_peer.text(user, words))
    for _ in range(20):
        if requests.post(f"{stack.url}/wecom/callback?{query}", data=body, timeout=10).status_code == 200:
            return
        time.sleep(0.1)
    raise AssertionError("callback never accepted")
