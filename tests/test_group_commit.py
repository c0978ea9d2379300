"""Group commit (storage/batch_insert.py): concurrent inserts on one PostgreSQL engine share one
statement and one commit, and each caller still learns, after its row is durable, whether it was new."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from conftest import TEST_DB
from storage import outbox
from storage.batch_insert import batcher_for
from storage.db import make_engine
from storage.models import Outbox

pytestmark = pytest.mark.skipif(not TEST_DB, reason="group commit runs on psycopg: PostgreSQL only")

THREADS = 16


def _add(engine, key: str) -> bool:
    return outbox.add(engine, key=key, kind="inbound", platform="wecom", payload={"k": key})


def _batcher(engine):
    columns = ("attempts", "card_ref", "conversation", "created_at", "due_at", "key", "kind", "last_error",
               "lease_token", "payload", "platform", "recipient", "result", "status")
    return batcher_for(engine, Outbox.__table__, ("key",), columns)


def _keys(engine, prefix: str) -> list[str]:
    with engine.connect() as conn:
        return sorted(conn.execute(text("SELECT key FROM outbox WHERE key LIKE :p"), {"p": prefix + "%"}).scalars())


def _hold_first_batch(engine, monkeypatch, *, then: list) -> "_Hold":
    """The first batch waits, as if committing slowly, until released: meanwhile other callers queue
    and become the next batch. Later connects run `then` in order (a callable raising, or None).
    Returns once the first batch's leader is waiting, so start its caller first."""
    release, entered = threading.Event(), threading.Event()
    connect = engine.raw_connection
    calls = iter([None] + then)

    def held():
        step = next(calls, None)
        entered.set()
        if not release.is_set():
            release.wait(10)
        if step is not None:
            step()
        return connect()

    monkeypatch.setattr(engine, "raw_connection", held)
    return _Hold(release, entered)


class _Hold:
    def __init__(self, release: threading.Event, entered: threading.Event) -> None:
        self._release, self._entered = release, entered

    def leading(self) -> None:
        assert self._entered.wait(10), "the first caller never started its batch"

    def set(self) -> None:
        self._release.set()


def _wait_queued(batcher, n: int) -> None:
    deadline = time.monotonic() + 10
    while batcher.queued() < n:
        assert time.monotonic() < deadline, f"only {batcher.queued()} of {n} callers queued"
        time.sleep(0.005)


def test_concurrent_distinct_rows_are_all_stored_and_each_caller_told_new(database_url):
    engine = make_engine(database_url, autocommit=True)
    start = threading.Barrier(THREADS)

    def post(i: int) -> bool:
        start.wait()
        return _add(engine, f"gc:distinct:{i}")

    with ThreadPoolExecutor(THREADS) as pool:
        results = list(pool.map(post, range(THREADS)))
    assert results == [True] * THREADS
    assert _keys(engine, "gc:distinct:") == sorted(f"gc:distinct:{i}" for i in range(THREADS))
    assert engine.pool.checkedout() == 0
    engine.dispose()


def test_callers_queued_behind_a_commit_share_one_statement(database_url, monkeypatch):
    engine = make_engine(database_url, autocommit=True)
    batcher = _batcher(engine)
    release = _hold_first_batch(engine, monkeypatch, then=[])
    with ThreadPoolExecutor(THREADS) as pool:
        first = pool.submit(_add, engine, "gc:shared:first")
        release.leading()  # the first caller leads at once, alone
        rest = [pool.submit(_add, engine, f"gc:shared:{i}") for i in range(THREADS - 1)]
        _wait_queued(batcher, THREADS - 1)
        release.set()
        assert first.result() is True and [f.result() for f in rest] == [True] * (THREADS - 1)
    assert (batcher.batches, batcher.rows) == (2, THREADS)
    assert len(_keys(engine, "gc:shared:")) == THREADS
    engine.dispose()


def test_the_same_key_twice_in_one_batch_is_new_once(database_url, monkeypatch):
    engine = make_engine(database_url, autocommit=True)
    batcher = _batcher(engine)
    release = _hold_first_batch(engine, monkeypatch, then=[])
    with ThreadPoolExecutor(4) as pool:
        lead = pool.submit(_add, engine, "gc:other")
        release.leading()
        twins = [pool.submit(_add, engine, "gc:twin") for _ in range(2)]
        _wait_queued(batcher, 2)  # both copies of the delivery wait in the same next batch
        release.set()
        assert lead.result() is True
        assert sorted(f.result() for f in twins) == [False, True]
    assert batcher.batches == 2
    assert _keys(engine, "gc:twin") == ["gc:twin"]
    # Sequentially too, as before: a redelivery later is not new.
    assert _add(engine, "gc:twin") is False
    engine.dispose()


def test_plain_threads_racing_on_one_key_get_exactly_one_new(database_url):
    engine = make_engine(database_url, autocommit=True)
    start = threading.Barrier(8)

    def post(_: int) -> bool:
        start.wait()
        return _add(engine, "gc:race")

    with ThreadPoolExecutor(8) as pool:
        assert sorted(pool.map(post, range(8))) == [False] * 7 + [True]
    engine.dispose()


def test_a_failed_batch_reaches_every_waiter_and_the_next_batch_works(database_url, monkeypatch):
    engine = make_engine(database_url, autocommit=True)
    batcher = _batcher(engine)

    def database_down():
        raise psycopg.OperationalError("connection refused (simulated)")

    release = _hold_first_batch(engine, monkeypatch, then=[database_down])
    waiters = 6
    with ThreadPoolExecutor(waiters + 1) as pool:
        lead = pool.submit(_add, engine, "gc:before")
        release.leading()
        doomed = [pool.submit(_add, engine, f"gc:down:{i}") for i in range(waiters)]
        _wait_queued(batcher, waiters)
        release.set()
        assert lead.result() is True
        errors = [f.exception(timeout=10) for f in doomed]
    assert all(isinstance(e, OperationalError) for e in errors), errors
    assert len({id(e) for e in errors}) == waiters  # each its own exception object
    assert _keys(engine, "gc:down:") == []
    # Not wedged: the platform redelivers, and the next batch records them.
    with ThreadPoolExecutor(waiters) as pool:
        assert list(pool.map(lambda i: _add(engine, f"gc:down:{i}"), range(waiters))) == [True] * waiters
    assert len(_keys(engine, "gc:down:")) == waiters
    assert engine.pool.checkedout() == 0
    engine.dispose()


def test_a_database_that_is_unreachable_fails_every_concurrent_caller():
    engine = make_engine("postgresql://postgres@127.0.0.1:1/nowhere", autocommit=True)
    start = threading.Barrier(6)

    def post(i: int) -> BaseException | None:
        start.wait()
        try:
            _add(engine, f"gc:nowhere:{i}")
        except BaseException as exc:  # noqa: BLE001 - the test inspects it
            return exc
        return None

    with ThreadPoolExecutor(6) as pool:
        errors = list(pool.map(post, range(6)))
    assert all(isinstance(e, OperationalError) for e in errors), errors
