"""Engine and sessions. Nothing connects at import time: callers pass the URL."""

from __future__ import annotations

from contextlib import contextmanager
from functools import lru_cache
from typing import Iterator

from sqlalchemy import bindparam, event, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import InterfaceError, OperationalError, PendingRollbackError
from sqlmodel import Session, create_engine

from storage.batch_insert import batcher_for
from storage.sqlexpr import register_sqlite_functions


def make_engine(url: str, *, autocommit: bool = False) -> Engine:
    """An engine for SQLite (the default, file or memory) or PostgreSQL; `autocommit` for one-statement
    writes on PostgreSQL (no transaction round trips). Its errors never quote their SQL parameters
    (`hide_parameters`): those are what users wrote, and error text ends up in logs and the outbox."""
    if url.startswith("postgres://"):  # Heroku-style URLs
        url = "postgresql://" + url[len("postgres://"):]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, hide_parameters=True)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    # No pre-ping (a SELECT 1 on every checkout, a real share of a webhook's cost): a connection the
    # server dropped fails once, the platform is answered 503 and redelivers, and SQLAlchemy
    # replaces the whole pool on the first disconnect it sees.
    # Autocommit connections hold no transaction, so the pool's rollback on return is a wasted call.
    options = {"isolation_level": "AUTOCOMMIT", "pool_reset_on_return": None} if autocommit else {}
    return create_engine(url, pool_size=5, max_overflow=10, pool_recycle=1800, hide_parameters=True, **options)


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    # WAL lets the web thread read while the worker writes; busy_timeout waits instead of failing.
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()
    register_sqlite_functions(dbapi_conn)  # the scans' time and key arithmetic (storage/sqlexpr.py)


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """One transaction: commit on success, roll back on any exception."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def insert_ignore(executor: Session | Connection | Engine, model: type, values: dict, unique: list[str]) -> bool:
    """INSERT … ON CONFLICT DO NOTHING; True when this call inserted the row.

    Two writers racing for one unique key both keep their transactions: exactly one wins and the
    other learns it lost, without an IntegrityError to unwind. Works in an ORM session or on a bare
    connection, or takes an Engine for one statement on its own: the webhook's hot path, where
    PostgreSQL runs it straight on psycopg, in one multi-row statement and one commit with any
    other threads inserting at the same moment (storage/batch_insert.py).
    """
    if isinstance(executor, Engine):
        if executor.dialect.driver == "psycopg":  # group commit with concurrent callers, on psycopg
            return batcher_for(executor, model.__table__, tuple(unique), tuple(sorted(values))).insert(values)
        with executor.begin() as conn:
            return insert_ignore(conn, model, values, unique)
    dialect = executor.dialect if isinstance(executor, Connection) else executor.get_bind().dialect
    stmt = _insert_ignore_statement(model.__table__, dialect.name, tuple(unique), tuple(sorted(values)))
    return executor.execute(stmt, values).first() is not None


@lru_cache(maxsize=64)
def _insert_ignore_statement(table, dialect: str, unique: tuple[str, ...], columns: tuple[str, ...]):
    # Built once per table and column set: constructing statements was a measurable share of a
    # callback's CPU (bench/README.md). RETURNING rather than rowcount: psycopg reports no rowcount
    # for ON CONFLICT DO NOTHING.
    from sqlalchemy.dialects import postgresql, sqlite

    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return (insert(table).values({c: bindparam(c) for c in columns})
            .on_conflict_do_nothing(index_elements=list(unique)).returning(table.c.id))


# PostgreSQL SQLSTATE classes that say "try again" rather than "this statement is wrong":
# 08 connection exception, 40 transaction rollback (serialization failure, deadlock), 53 insufficient
# resources (too many connections), 57 operator intervention (pg_terminate_backend, shutdown),
# 55P03 lock not available.
_TRANSIENT_SQLSTATE_CLASSES = ("08", "40", "53", "57")
_TRANSIENT_SQLSTATES = ("55P03",)
# SQLite says everything with OperationalError, "no such table" included: only these are passing.
_TRANSIENT_SQLITE = ("database is locked", "database table is locked", "unable to open database file",
                     "disk i/o error")


def is_transient(exc: BaseException) -> bool:
    """The database failed, not the statement: the same work will succeed when tried again
    (a killed or dropped connection, a serialization failure, a deadlock, SQLite's "database is
    locked"). A wrong statement or a violated constraint is not transient."""
    if isinstance(exc, PendingRollbackError):  # a session whose connection failed under it earlier
        return True
    if not isinstance(exc, (OperationalError, InterfaceError)):
        return False
    if exc.connection_invalidated:
        return True
    orig = exc.orig
    sqlstate = getattr(orig, "sqlstate", None)
    if sqlstate is not None:
        return sqlstate[:2] in _TRANSIENT_SQLSTATE_CLASSES or sqlstate in _TRANSIENT_SQLSTATES
    if type(orig).__module__.startswith("sqlite3"):
        return any(text in str(orig).lower() for text in _TRANSIENT_SQLITE)
    return True  # a driver error without a SQLSTATE: the server never answered (connection lost)


def fit_key(key: str, limit: int = 255) -> str:
    """Unique keys must fit their column: a long one (a WeCom card EventKey may be 1 KB) keeps a
    readable head and a hash of the whole."""
    if len(key) <= limit:
        return key
    import hashlib

    return key[: limit - 41] + "#" + hashlib.sha1(key.encode()).hexdigest()


def no_jit(session: Session) -> None:
    """For the rest of this transaction, no JIT compilation on PostgreSQL: the periodic scans' big
    one-off queries spent ~7 s compiling (JIT inlining and optimization) for a ~20 s run at 1M
    customers (bench/README.md, scale.py). A no-op on SQLite."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL jit = off"))
