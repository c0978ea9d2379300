"""The name matcher each process keeps in memory, kept in step with the database.

Building it reads every customer (seconds at 100,000, minutes at 1,000,000), so it is built once per
database and then brought up to date from `customer_name_change`, which a trigger on `customer`
fills for every insert, delete and change of a matched column, whoever writes it. A lookup costs two
index probes: the newest change's number, and the changes after the last one applied (usually none).

Change numbers come from a sequence, handed out when a row is written, not when it commits: a long
import can commit its low numbers after a quick insert's higher one was already read. So each
refresh re-reads the changes numbered above what was newest RECHECK ago, and skips those it applied.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlmodel import Session

from storage.models import Customer, CustomerNameChange
from workflows.matching import CustomerIndex, load_index, stored_forms

RECHECK = 120.0  # seconds a written-but-uncommitted change may stay invisible and still be caught
# The nightly purge's horizon: a week, so a worker idle over a weekend catches up from the log instead
# of rebuilding (minutes at a million customers); an index not refreshed for most of it may have
# missed changes the purge has since forgotten, and is rebuilt.
KEEP_CHANGES_DAYS = 7
REBUILD_AFTER = KEEP_CHANGES_DAYS * 86400.0 * 0.8


@dataclass
class _Held:
    index: CustomerIndex
    refreshed: float  # time.monotonic() of the last refresh
    newest: int  # the highest change number seen
    marks: list[tuple[float, int]] = field(default_factory=list)  # (when, newest then), oldest first
    applied: set[int] = field(default_factory=set)  # change numbers above the recheck floor, applied
    lock: threading.Lock = field(default_factory=threading.Lock)


_held: dict[str, _Held] = {}
_held_lock = threading.Lock()
_build_lock = threading.Lock()


def current(session: Session) -> CustomerIndex:
    """This database's matcher, with every committed change to customers applied. It is read on a
    connection of its own: a change the caller has written but not committed (and may roll back)
    must not enter a matcher every thread shares."""
    bind = session.get_bind()
    key = str(bind.url)
    with _held_lock:
        held = _held.get(key)
    with Session(bind) as reader:
        now = time.monotonic()
        newest = _newest(reader)
        if held is None or now - held.refreshed > REBUILD_AFTER:
            return _rebuild(reader, key, held, newest, now).index
        with held.lock:
            _catch_up(reader, held, newest, now)
    return held.index


def _rebuild(reader: Session, key: str, stale: _Held | None, newest: int, now: float) -> _Held:
    # First use, or idle so long the purge may have forgotten changes. One build at a time: at a
    # million customers each costs a minute and a gigabyte.
    with _build_lock:
        held = _held.get(key)
        if held is stale:  # nobody rebuilt it while this thread waited
            held = _build(reader, newest, now)
            with _held_lock:
                _held[key] = held
    return held


def purge_changes(session: Session, *, before: datetime) -> int:
    """Forget change rows older than `before` (the nightly purge); a process idle since then rebuilds."""
    return session.execute(delete(CustomerNameChange).where(CustomerNameChange.changed_at < before)
                           .execution_options(synchronize_session=False)).rowcount or 0


def _newest(session: Session) -> int:
    return session.execute(select(func.max(CustomerNameChange.seq))).scalar() or 0


def _build(session: Session, newest: int, now: float) -> _Held:
    # The newest number is read before the rows: a change committed while they load is applied
    # again by the next refresh, which is harmless (a change re-reads the customer's current row).
    return _Held(index=load_index(session), refreshed=now, newest=newest, marks=[(now, newest)])


def _catch_up(session: Session, held: _Held, newest: int, now: float) -> None:
    floor = _recheck_floor(held, now)
    if newest > floor:
        rows = session.execute(select(CustomerNameChange.seq, CustomerNameChange.customer_id)
                               .where(CustomerNameChange.seq > floor)).all()
        fresh = {seq: customer_id for seq, customer_id in rows if seq not in held.applied}
        _apply(session, held.index, set(fresh.values()))
        held.applied = {seq for seq in held.applied | fresh.keys() if seq > floor}
    if newest > held.newest:
        held.newest = newest
        held.marks.append((now, newest))
    held.refreshed = now


def _recheck_floor(held: _Held, now: float) -> int:
    """The newest change number seen RECHECK seconds ago: everything above it is read again."""
    # marks[0] is then the last one at least RECHECK old — or, younger than that, the build's.
    while len(held.marks) > 1 and held.marks[1][0] <= now - RECHECK:
        held.marks.pop(0)
    return held.marks[0][1]


def _apply(session: Session, index: CustomerIndex, customer_ids: set[int]) -> None:
    if not customer_ids:
        return
    rows = session.execute(select(Customer.id, Customer.name, Customer.short_names, Customer.region,
                                  Customer.match_forms).where(Customer.id.in_(customer_ids))).all()
    present = set()
    for customer_id, name, short_names, region, match_forms in rows:
        index.update(customer_id, name, stored_forms(name, short_names, region, match_forms))
        present.add(customer_id)
    for customer_id in customer_ids - present:
        index.remove(customer_id)
