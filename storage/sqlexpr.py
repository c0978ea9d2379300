"""SQL expressions the periodic scans need on both databases: time arithmetic, a local date, a
timestamp spelled as Python's `isoformat()`, and a key-prefix range.

The scans build their outbox keys in SQL (so the database can skip candidates already alerted), and
those keys must be byte for byte what the Python code writes. PostgreSQL does it with its own
functions; SQLite, which stores naive UTC text ('YYYY-MM-DD HH:MM:SS.ffffff') and has no time
zones, gets small Python functions registered on every connection (`register_sqlite_functions`).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Integer, String, case, cast, func, literal, type_coerce
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel.sql.sqltypes import UTCDateTime

_STORED = "%Y-%m-%d %H:%M:%S.%f"  # SQLAlchemy's SQLite DATETIME text


def held_since(table: Any) -> ColumnElement:
    """When the current owner got the customer (or it went to the pool)."""
    return func.coalesce(table.c.owned_since, table.c.created_at)


def last_touch(table: Any) -> ColumnElement:
    """The later of the last follow-up and `held_since` (workflows.overdue.last_touch, in SQL).
    The same expression backs the customer_touched index on PostgreSQL (migration 0007)."""
    held = held_since(table)
    return type_coerce(case((table.c.last_followup_at > held, table.c.last_followup_at), else_=held), UTCDateTime())


def per_tier(tier: ColumnElement, values: dict[str, Any], type_: Any = None) -> ColumnElement:
    """`values[tier]`, any tier without its own entry taking C's (as `limits.get(tier, limits["C"])`)."""
    def bound(value: Any) -> ColumnElement:
        return literal(value, type_) if type_ is not None else literal(value)
    whens = [(tier == name, bound(value)) for name, value in sorted(values.items()) if name != "C"]
    expr = case(*whens, else_=bound(values["C"])) if whens else bound(values["C"])
    return type_coerce(expr, type_) if type_ is not None else expr


def add_days(dialect: str, moment: ColumnElement, days: ColumnElement) -> ColumnElement:
    """`moment + timedelta(days=days)`: exact 24-hour days, as in Python (no DST shifts)."""
    if dialect == "sqlite":
        return func.banli_add_days(moment, days, type_=UTCDateTime())
    return type_coerce(moment + func.make_interval(0, 0, 0, 0, cast(days, Integer) * 24), UTCDateTime())


def local_date(dialect: str, moment: ColumnElement, tz: str) -> ColumnElement:
    """`moment.astimezone(ZoneInfo(tz)).date().isoformat()`."""
    if dialect == "sqlite":
        return func.banli_local_date(moment, tz, type_=String())
    return func.to_char(func.timezone(tz, moment), "YYYY-MM-DD", type_=String())


def iso_utc(dialect: str, moment: ColumnElement) -> ColumnElement:
    """`moment.isoformat()` of the aware UTC datetime the ORM reads ('…T10:00:00+00:00', with
    '.ffffff' only when there are microseconds)."""
    if dialect == "sqlite":
        return func.banli_iso_utc(moment, type_=String())
    utc = func.timezone("UTC", moment)
    micro = case((func.extract("microseconds", moment) % 1000000 == 0, ""), else_=func.to_char(utc, ".US"))
    return func.to_char(utc, 'YYYY-MM-DD"T"HH24:MI:SS', type_=String()) + micro + "+00:00"


def hours_between(dialect: str, start: ColumnElement, end: ColumnElement) -> ColumnElement:
    """`(end - start)` in hours, as a float (calendar hours, not working ones)."""
    if dialect == "sqlite":  # julianday reads the stored UTC text, fractions of a second included
        return (func.julianday(end) - func.julianday(start)) * 24.0
    return func.extract("epoch", end - start) / 3600.0


def as_text(value: ColumnElement) -> ColumnElement:
    return cast(value, String())


def prefix_range(column: ColumnElement, dialect: str, prefix: str) -> ColumnElement:
    """`column` starts with `prefix`, as a range an ordinary btree serves (LIKE 'p%' is served only
    under the C collation, or by a text_pattern_ops index, and never with a bound pattern).

    Byte order makes the range exact: every string starting with `prefix` lies in
    [prefix, prefix with its last character stepped up). PostgreSQL compares under COLLATE "C"
    (byte order whatever the database's collation; the index ix_outbox_pending_key is built on
    that); SQLite's default BINARY collation is byte order already."""
    upper = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    target = column.collate("C") if dialect == "postgresql" else column
    return (target >= prefix) & (target < upper)


# -- SQLite ------------------------------------------------------------------------------------


def _parse(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc) if text else None


def _add_days(text: str | None, days: int | None) -> str | None:
    moment = _parse(text)
    return None if moment is None or days is None else (moment + timedelta(days=days)).strftime(_STORED)


def _local_date(text: str | None, tz: str) -> str | None:
    moment = _parse(text)
    return None if moment is None else moment.astimezone(ZoneInfo(tz)).date().isoformat()


def _iso_utc(text: str | None) -> str | None:
    moment = _parse(text)
    return None if moment is None else moment.isoformat()


def register_sqlite_functions(dbapi_conn: Any) -> None:
    dbapi_conn.create_function("banli_add_days", 2, _add_days, deterministic=True)
    dbapi_conn.create_function("banli_local_date", 2, _local_date, deterministic=True)
    dbapi_conn.create_function("banli_iso_utc", 1, _iso_utc, deterministic=True)
