"""The webhook's one INSERT (storage/db.py:insert_ignore given an Engine): on PostgreSQL it runs on the
raw psycopg connection, so these check it keeps Core's semantics: new vs duplicate, the same stored
values, SQLAlchemy errors (→ the app's 503), and connections back in the pool."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
import requests
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from conftest import TEST_DB, wait_for
from storage import outbox
from storage.db import make_engine


def _stored(engine, key: str):
    with engine.connect() as conn:
        return conn.execute(text("SELECT kind, platform, recipient, payload, status, due_at, attempts "
                                 "FROM outbox WHERE key = :k"), {"k": key}).one()


def test_engine_insert_is_new_then_duplicate_and_stores_what_core_stores(database_url):
    engine = make_engine(database_url, autocommit=True)
    due = datetime(2026, 11, 22, 9, 30, tzinfo=timezone.utc)
    row = dict(kind="inbound", platform="wecom", recipient="zhangsan", payload={"text": "帮助"}, due_at=due)
    assert outbox.add(engine, key="k:engine", **row) is True
    assert outbox.add(engine, key="k:engine", **row) is False
    with engine.begin() as conn:  # the Core path, for comparison
        assert outbox.add(conn, key="k:core", **row) is True
        assert outbox.add(conn, key="k:engine", **row) is False
    assert _stored(engine, "k:engine") == _stored(engine, "k:core")
    assert _stored(engine, "k:engine").payload == '{"text": "帮助"}'
    assert engine.pool.checkedout() == 0
    engine.dispose()


def test_engine_insert_commits_on_a_transactional_engine_too(database_url):
    engine = make_engine(database_url)
    assert outbox.add(engine, key="k:plain", kind="inbound", payload={}) is True
    other = make_engine(database_url)
    assert _stored(other, "k:plain").status == "pending"
    engine.dispose()
    other.dispose()


@pytest.mark.skipif(not TEST_DB, reason="raw psycopg path: PostgreSQL only")
def test_database_unreachable_is_sqlalchemys_operational_error():
    engine = make_engine("postgresql://postgres@127.0.0.1:1/nowhere", autocommit=True)
    with pytest.raises(OperationalError):
        outbox.add(engine, key="k:x", kind="inbound", payload={})


@pytest.mark.skipif(not TEST_DB, reason="raw psycopg path: PostgreSQL only")
def test_connection_dropped_by_the_server_is_a_503_then_the_retry_is_served(stack):
    assert stack.post_wecom(stack.wecom_peer.text("zhangsan", "帮助")).status_code == 200
    pool = stack.runtime.autocommit_engine
    raw = pool.raw_connection()
    pid = raw.driver_connection.info.backend_pid
    raw.close()
    admin = make_engine(TEST_DB)
    with admin.begin() as conn:  # the server restarts, say: the pooled connection is gone
        conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    admin.dispose()

    query, body = stack.wecom_peer.callback(stack.wecom_peer.text("zhangsan", "菜单"))
    assert requests.post(f"{stack.url}/wecom/callback?{query}", data=body, timeout=5).status_code == 503
    assert pool.pool.checkedout() == 0
    # WeCom delivers the same callback again: a fresh connection records it.
    assert requests.post(f"{stack.url}/wecom/callback?{query}", data=body, timeout=5).status_code == 200
    wait_for(lambda: len(stack.wecom.cards_to("zhangsan")) == 2)
    assert stack.count("outbox", "WHERE kind = 'inbound'") == 2
