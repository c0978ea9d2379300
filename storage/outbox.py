"""The outbox: deferred work as SQL rows with unique keys, leases and retry counts
(docs/architecture.md §3).

Life of a row: `add` (same transaction as its cause) → `lease_due` (dispatcher stamps a lease token and
rings RQ) → `claim` (the worker proves the lease is still its own) → `mark_done` or `mark_failed`
(backoff, then `dead`). A row whose lease runs out unfinished is leased again, so a lost RQ job, a
dead worker or a Redis restart delays work but never loses it; the token check makes a duplicate
job a no-op.
"""

from __future__ import annotations

import json
import secrets
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

from sqlalchemy import and_, or_, select, update
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session

from storage.db import insert_ignore
from storage.sqlexpr import prefix_range
from storage.models import Outbox, utcnow

# "As soon as possible": due under any clock — the demo's simulated one, or a test's — and sorted
# ahead of anything scheduled for a time.
ASAP = datetime(2000, 1, 1, tzinfo=timezone.utc)

MAX_ATTEMPTS = 8
BACKOFF_BASE_SECONDS = 5
BACKOFF_CAP_SECONDS = 3600
# A database hiccup is the database's fault, not the row's: retried sooner, and never the reason a
# row gives up.
TRANSIENT_BACKOFF_CAP_SECONDS = 60

# One encoder: json.dumps with options builds a new JSONEncoder on every call (every callback).
_json = json.JSONEncoder(ensure_ascii=False).encode


def add(
    session: Session | Connection | Engine,
    *,
    key: str,
    kind: str,
    payload: dict[str, Any],
    platform: str = "",
    recipient: str = "",
    conversation: str = "",
    due_at: datetime | None = None,
) -> bool:
    """Insert a row unless one with `key` exists (a redelivered callback, a retried cause, two
    dispatchers claiming one cron slot). Returns True when this call created it. Given an Engine
    (the webhook's autocommit one), the row is written on its own, committed at once."""
    values = row_values(key=key, kind=kind, payload=payload, platform=platform, recipient=recipient,
                        conversation=conversation, due_at=due_at)
    return insert_ignore(session, Outbox, values, ["key"])


def row_values(*, key: str, kind: str, payload: dict[str, Any], platform: str = "", recipient: str = "",
               conversation: str = "", due_at: datetime | None = None) -> dict[str, Any]:
    """The column values of a new pending row (for `add` and `add_many`)."""
    return dict(
        key=key, kind=kind, platform=platform, recipient=recipient, conversation=conversation,
        payload=_json(payload), status="pending",
        due_at=due_at or ASAP, attempts=0, lease_token="", last_error="", result="{}", card_ref="",
        created_at=utcnow(),
    )


def add_many(session: Session, rows: list[dict[str, Any]], chunk: int = 500) -> set[str]:
    """`add` for many rows (`row_values`) in multi-row statements; returns the keys this call
    created (a key already present is skipped, as in `add`)."""
    from sqlalchemy.dialects import postgresql, sqlite

    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    created: set[str] = set()
    for start in range(0, len(rows), chunk):
        stmt = (insert(Outbox.__table__).values(rows[start:start + chunk])
                .on_conflict_do_nothing(index_elements=["key"]).returning(Outbox.__table__.c.key))
        created.update(session.execute(stmt).scalars())
    return created


def lease_due(session: Session, *, now: datetime, lease_seconds: int, limit: int = 100,
              still_queued: Callable[[list[tuple[int, str]]], set[int]] | None = None) -> list[tuple[int, str]]:
    """Stamp a fresh lease on due rows nobody holds; returns (id, token) pairs to enqueue.

    `still_queued` is shown the (id, previous token) of rows leased before and answers which of those
    still have their job waiting or running: such a row keeps its token and only gets a longer
    lease, and no second job — otherwise each lease expiry during a slow spell would add another
    copy of every pending job, and a backlog would multiply instead of draining
    (docs/architecture.md §3).

    On PostgreSQL `FOR UPDATE SKIP LOCKED` lets several dispatchers run side by side; on SQLite,
    which cannot lock a row it only read, each row is taken only if it is still as it was selected.
    """
    due = (
        select(Outbox.id, Outbox.lease_token)
        .where(Outbox.status == "pending", Outbox.due_at <= now,
               or_(Outbox.lease_until.is_(None), Outbox.lease_until < now))
        .order_by(Outbox.due_at, Outbox.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    candidates = [(row_id, token) for row_id, token in session.execute(due)]
    lease_until = now + timedelta(seconds=lease_seconds)
    earlier = [(row_id, token) for row_id, token in candidates if token]
    waiting = still_queued(earlier) if still_queued and earlier else set()
    leased = []
    for row_id, previous in candidates:
        token = previous if row_id in waiting else secrets.token_hex(8)
        # The row again as it was selected: SQLite has no FOR UPDATE, and a worker may have leased
        # it by key (lease_key) since — then it is that worker's, not this round's.
        taken = session.execute(
            update(Outbox)
            .where(Outbox.id == row_id, Outbox.lease_token == previous, Outbox.status == "pending",
                   or_(Outbox.lease_until.is_(None), Outbox.lease_until < now))
            .values(lease_token=token, lease_until=lease_until)
        ).rowcount == 1
        if taken and row_id not in waiting:
            leased.append((row_id, token))
    return leased


def release(session: Session, leases: list[tuple[int, str]]) -> None:
    """Give leases back at once (their jobs could not be queued): offered again at the next round,
    not only when the lease runs out."""
    for row_id, token in leases:
        session.execute(update(Outbox).where(Outbox.id == row_id, Outbox.lease_token == token,
                                             Outbox.status == "pending").values(lease_until=None))


def lease_key(session: Session, key: str, *, now: datetime, lease_seconds: int) -> tuple[int, str] | None:
    """Lease one pending row by key if nobody holds it; (id, token) or None."""
    token = secrets.token_hex(8)
    row_id = session.execute(
        update(Outbox)
        .where(Outbox.key == key, Outbox.status == "pending", Outbox.due_at <= now,
               or_(Outbox.lease_until.is_(None), Outbox.lease_until < now))
        .values(lease_token=token, lease_until=now + timedelta(seconds=lease_seconds))
        .returning(Outbox.id)
    ).scalar()
    return (row_id, token) if row_id is not None else None


def claim(session: Session, row_id: int, token: str, *, now: datetime, lease_seconds: int) -> Outbox | None:
    """The worker's check that the lease is still its own (and renewal for the send). None: skip the job."""
    result = session.execute(
        update(Outbox)
        .where(Outbox.id == row_id, Outbox.lease_token == token, Outbox.status == "pending")
        .values(lease_until=now + timedelta(seconds=lease_seconds))
    )
    if result.rowcount != 1:
        return None
    return session.get(Outbox, row_id, populate_existing=True)


def mark_done(session: Session, row_id: int, token: str, *, now: datetime, result: dict[str, Any]) -> bool:
    """Record success; False when the lease was lost meanwhile (the other holder decides)."""
    res = session.execute(
        update(Outbox)
        .where(Outbox.id == row_id, Outbox.lease_token == token, Outbox.status == "pending")
        .values(status="sent", sent_at=now, lease_until=None, attempts=Outbox.attempts + 1,
                result=json.dumps(result, ensure_ascii=False), last_error="",
                card_ref=str(result.get("task_id") or result.get("out_track_id") or "")[:128])
    )
    return res.rowcount == 1


def mark_failed(session: Session, row_id: int, token: str, *, now: datetime, error: str,
                retryable: bool = True, transient: bool = False) -> str:
    """Count a failed attempt: back off exponentially, or give up. Returns the row's new status.
    `transient`: the database failed (a dropped connection, a deadlock): back off from 1 s up to a
    minute, and retry however often it takes."""
    row = session.get(Outbox, row_id, populate_existing=True)
    if row is None or row.lease_token != token or row.status != "pending":
        return "lost"
    attempts = row.attempts + 1
    dead = not transient and (not retryable or attempts >= MAX_ATTEMPTS)
    if transient:
        delay = min(2 ** min(attempts - 1, 10), TRANSIENT_BACKOFF_CAP_SECONDS)
    else:
        delay = min(BACKOFF_BASE_SECONDS * 2 ** (attempts - 1), BACKOFF_CAP_SECONDS)
    row.attempts = attempts
    row.last_error = error[:2000]
    row.lease_until = None
    row.status = "dead" if dead else "pending"
    row.due_at = now if dead else now + timedelta(seconds=delay)
    session.add(row)
    return row.status


def remember_card_code(session: Session, card_ref: str, code: str, *, now: datetime) -> bool:
    """A tap on a card brought a fresh single-use update code (WeCom): keep it with the card's row,
    so the next update of that card can use it. False if no sent card has that reference."""
    row = session.execute(select(Outbox).where(Outbox.card_ref == card_ref, Outbox.kind == "message")
                          .order_by(Outbox.id)).scalars().first()
    if row is None:
        return False
    row.result = json.dumps({**json.loads(row.result or "{}"), "response_code": code, "code_at": now.isoformat()},
                            ensure_ascii=False)
    session.add(row)
    return True


def cancel(session: Session, key: str) -> bool:
    """Withdraw a pending row (an undone visit's reminder); rows already sent stay as they are.
    A key ending in ':' cancels every pending row with that prefix."""
    return cancel_many(session, [key]) > 0


def cancel_many(session: Session, keys: list[str], chunk: int = 500) -> int:
    """`cancel` for many keys or prefixes at once (the 公海 sweep's releases); returns rows cancelled.

    A prefix is matched as a key range, not LIKE 'prefix%': the database's collation may not be C,
    and a bound LIKE pattern never uses an index, so LIKE scanned every pending row (~0.4 s per
    follow-up at 257,000 pending rows, bench/README.md); the range is served by ix_outbox_pending_key.
    Many prefixes of one family (`pool:warn:<id>:` for a thousand ids) are not a thousand ranges:
    the family's pending rows are read once by range and matched here."""
    dialect = session.get_bind().dialect.name
    exact = [k for k in keys if not k.endswith(":")]
    prefixes = [k for k in keys if k.endswith(":")]
    ids: list[int] = []
    if len(prefixes) <= FEW_PREFIXES:
        conditions = [prefix_range(Outbox.key, dialect, p) for p in prefixes]
    else:
        conditions = []
        families: dict[str, list[str]] = {}
        for prefix in prefixes:
            families.setdefault(prefix[:prefix[:-1].rfind(":") + 1] or prefix, []).append(prefix)
        for family, members in families.items():
            wanted = tuple(members)
            ids += [row_id for row_id, key in session.execute(
                select(Outbox.id, Outbox.key).where(prefix_range(Outbox.key, dialect, family), Outbox.status == "pending"))
                if key.startswith(wanted)]
    cancelled = 0
    for start in range(0, max(len(exact), len(ids), 1), chunk):
        matches = list(conditions) if start == 0 else []
        if exact[start:start + chunk]:
            matches.append(Outbox.key.in_(exact[start:start + chunk]))
        if ids[start:start + chunk]:
            matches.append(Outbox.id.in_(ids[start:start + chunk]))
        if not matches:
            continue
        res = session.execute(update(Outbox).where(or_(*matches), Outbox.status == "pending")
                              .values(status="cancelled", lease_until=None)
                              .execution_options(synchronize_session=False))
        cancelled += res.rowcount
    return cancelled


FEW_PREFIXES = 4  # up to this many prefixes: one UPDATE over their ranges (a follow-up's withdraws)


def purge_done(session: Session, *, before: datetime) -> int:
    """Delete finished rows older than `before` (the cron keeps the table small)."""
    from sqlalchemy import delete

    res = session.execute(delete(Outbox).where(or_(and_(Outbox.status == "sent", Outbox.sent_at < before),
                                                   and_(Outbox.status == "cancelled", Outbox.due_at < before))))
    return res.rowcount
