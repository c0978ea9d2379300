"""Group commit for the webhook's INSERT … ON CONFLICT DO NOTHING on PostgreSQL.

Each callback used to pay its own commit, and so its own WAL flush: the flush wait, not CPU, was
most of a callback's time (bench/README.md). Here the request threads of one process that insert at
the same moment share ONE multi-row statement and ONE commit, and every thread still returns only
after the commit that made its row durable, told whether its own row was new.

Leader/follower, with no thread of its own: a thread queues its row; if no batch is being written it
becomes the leader, takes everything queued (at least its own row), writes it, hands each waiter its
result and steps down; the next thread still waiting takes what queued meanwhile. So there is no
timer window and no added latency when alone — a batch is exactly what piled up while the previous
one was committing — and nothing to start, stop or re-create after gunicorn forks (a writer thread
per engine would need all three, and one more thread hop per callback). One batch per table and
engine is in flight at a time, on one pooled connection; `synchronous_commit` is untouched.

The same key twice in one batch (a delivery repeated at once) is written once: its first waiter
learns the truth from RETURNING, the others get "not new", as the second of two sequential inserts
would. A failed batch hands every waiter its own copy of the error the single insert raises
(SQLAlchemy's OperationalError → the route's 503) and the batcher carries on with the next one.
"""

from __future__ import annotations

import re
import threading
import weakref
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Callable

from sqlalchemy import bindparam
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

# Rows per statement at most: bounds the statement's size and the number of cached statement shapes.
# A process has far fewer request threads than this, so it rarely matters.
MAX_BATCH = 64


@dataclass(eq=False)
class _Waiter:
    values: dict
    key: tuple
    done: bool = False
    new: bool = False
    error: Callable[[], BaseException] | None = None  # builds this waiter's own exception


@dataclass(eq=False)
class Batcher:
    """Inserts for one engine, table, unique-key and column set (see the module docstring)."""

    engine: Engine
    table: Any
    unique: tuple[str, ...]
    columns: tuple[str, ...]
    _cond: threading.Condition = field(default_factory=threading.Condition)
    _queue: list[_Waiter] = field(default_factory=list)
    _leading: bool = False
    batches: int = 0  # statements written, for tests and benches
    rows: int = 0

    def insert(self, values: dict) -> bool:
        """Insert `values` unless its unique key exists; True when this call created the row.
        Returns once the row is committed; raises what the database raised for its batch."""
        me = _Waiter(values, tuple(values[c] for c in self.unique))
        with self._cond:
            self._queue.append(me)
        while True:
            with self._cond:
                while not me.done and self._leading:
                    self._cond.wait()
                if me.done:
                    return _outcome(me)
                # Lead: everything queued so far (FIFO, so a waiter past MAX_BATCH leads next).
                self._leading = True
                batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
            try:
                self._write(batch)
            finally:
                with self._cond:
                    self._leading = False
                    self._cond.notify_all()

    def queued(self) -> int:
        with self._cond:
            return len(self._queue)

    def _write(self, batch: list[_Waiter]) -> None:
        """One statement for the batch; sets every waiter's result or error (never leaves one
        waiting, whatever is raised)."""
        first: dict[tuple, _Waiter] = {}
        for w in batch:
            first.setdefault(w.key, w)
        try:
            inserted = self._execute([w.values for w in first.values()])
            for w in batch:
                w.new = first[w.key] is w and w.key in inserted
        except DBAPIError as exc:
            for w in batch:
                w.error = _copier(exc, self.engine)
        except BaseException as exc:  # a bug, an interrupt: the waiters must not hang on it
            for w in batch:
                w.error = lambda exc=exc: exc
            raise
        finally:
            with self._cond:
                for w in batch:
                    w.done = True
                self.batches += 1
                self.rows += len(batch)

    def _execute(self, rows: list[dict]) -> set[tuple]:
        """The multi-row INSERT on the pooled psycopg connection itself; the unique keys it inserted.

        Straight on psycopg because SQLAlchemy's execute machinery cost more CPU than psycopg and the
        round trip together (bench/README.md); and on one cursor kept with each pooled connection,
        with positional parameters: a new cursor per statement and named parameters were a quarter
        of psycopg's own CPU per callback. Meant for an AUTOCOMMIT engine; on any other the
        statement is committed at once. Errors are raised as SQLAlchemy's (OperationalError → the
        app's 503), and a connection the server dropped is thrown away with the pool's older ones,
        as Core would."""
        engine = self.engine
        sql, slots, processors = _compiled_batch(engine.dialect, self.table, self.unique, self.columns, len(rows))
        params = [rows[i][c] for i, c in slots]
        for at, process in processors:
            params[at] = process(params[at])
        dbapi_error = engine.dialect.loaded_dbapi.Error
        try:
            conn = engine.raw_connection()
        except dbapi_error as exc:  # the bare pool does not translate a failed connect
            raise DBAPIError.instance(None, None, exc, dbapi_error, dialect=engine.dialect) from exc
        try:
            driver = conn.driver_connection
            # The pool record's info lives as long as this DBAPI connection (cleared when invalidated).
            cursor = conn.info.get(_CURSOR)
            if cursor is None or cursor.closed or cursor.connection is not driver:
                cursor = conn.info[_CURSOR] = driver.cursor()
            cursor.execute(sql, params)
            keys = {tuple(r) for r in cursor.fetchall()}
            if not driver.autocommit:  # any other engine: the pool's reset on return would roll it back
                driver.commit()
        except dbapi_error as exc:
            gone = engine.dialect.is_disconnect(exc, conn.dbapi_connection, None)
            if gone:  # as Core does: drop this connection and every older one in the pool
                engine.pool._invalidate(conn, exc)
            # No parameters in the error: they are what users wrote, and error text reaches logs.
            raise DBAPIError.instance(sql, None, exc, dbapi_error, connection_invalidated=gone,
                                      dialect=engine.dialect) from exc
        finally:
            conn.close()
        return keys


def _outcome(w: _Waiter) -> bool:
    if w.error is not None:
        raise w.error()
    return w.new


def _copier(exc: DBAPIError, engine: Engine) -> Callable[[], BaseException]:
    """Each waiter raises its own exception object (one object raised in many threads would share,
    and overwrite, one traceback), of the same class and with the same driver error inside."""
    def build() -> BaseException:
        return DBAPIError.instance(exc.statement, None, exc.orig, engine.dialect.loaded_dbapi.Error,
                                   connection_invalidated=exc.connection_invalidated, dialect=engine.dialect)
    return build


_CURSOR = "banli_batch_cursor"
_PLACEHOLDER = re.compile(r"%\((\w+)\)s")


@lru_cache(maxsize=256)
def _compiled_batch(dialect, table, unique: tuple[str, ...], columns: tuple[str, ...], n: int):
    """`INSERT … VALUES (…), … ON CONFLICT (unique) DO NOTHING RETURNING unique` for n rows, compiled
    once per size to SQL with the dialect's casts, and its bind processors (aware datetimes → UTC), so
    rows are stored exactly as the single-row path stores them.

    Returns (SQL with positional `%s` placeholders, the (row, column) each placeholder takes in
    order, (placeholder index, processor) pairs)."""
    rows = [{c: bindparam(f"{c}_{i}", type_=table.c[c].type) for c in columns} for i in range(n)]
    stmt = (postgresql.insert(table).values(rows).on_conflict_do_nothing(index_elements=list(unique))
            .returning(*(table.c[c] for c in unique)))
    compiled = stmt.compile(dialect=dialect)
    where = {f"{c}_{i}": (i, c) for i in range(n) for c in columns}
    sql = str(compiled)
    order = _PLACEHOLDER.findall(sql)
    # Placeholders must be exactly the names built above, each once (the SQL has no other `%`).
    if sorted(order) != sorted(where) or set(compiled.params) != set(where) or sql.count("%") != len(order):
        raise RuntimeError(f"unexpected bind names in {compiled}")
    position = {name: at for at, name in enumerate(order)}
    processors = tuple((position[name], proc) for name, proc in (compiled._bind_processors or {}).items() if proc)
    return _PLACEHOLDER.sub("%s", sql), tuple(where[name] for name in order), processors


_batchers: weakref.WeakKeyDictionary[Engine, dict[tuple, Batcher]] = weakref.WeakKeyDictionary()
_batchers_lock = threading.Lock()


def batcher_for(engine: Engine, table, unique: tuple[str, ...], columns: tuple[str, ...]) -> Batcher:
    """The one Batcher of this engine for this table and column set (created on first use)."""
    key = (table, unique, columns)
    with _batchers_lock:
        per_engine = _batchers.setdefault(engine, {})
        found = per_engine.get(key)
        if found is None:
            found = per_engine[key] = Batcher(engine, table, unique, columns)
        return found
