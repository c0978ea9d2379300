"""Queue health for the console: how the outbox stands per kind, the rows that gave up (`dead`) with
the reason, and an admin's retry or discard of one of them — each audited with before and after.

Processes: every long-running process (and each worker thread) beats in SQL (storage/heartbeats.py);
one not seen for three beats is shown stopped, with when it was last seen in the company's time zone.

"Oldest pending" is the longest a due row has been waiting: from its due time, or from when it was
written for an as-soon-as-possible row (their due time is a fixed date long past, outbox.ASAP). Rows
due later (a reminder for next week) are pending but not late, and are counted apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from sqlalchemy import case, func, select, update
from sqlmodel import Session

from storage import heartbeats, outbox
from storage.models import Employee, Outbox, ProcessBeat
from workflows import audit

FAILED_LIMIT = 100
PROCESS_NAMES = {"web": "网页（回调和后台）", "worker": "worker（发送和处理）", "dispatcher": "调度（dispatcher）",
                 "stream": "钉钉 Stream 连接"}
PROCESS_ORDER = ("web", "stream", "dispatcher", "worker")
KIND_NAMES = {"message": "消息", "card_update": "卡片更新", "photo": "图片", "inbound": "收到的消息",
              "directory_sync": "通讯录同步", "directory_department": "部门同步", "cron": "定时任务"}


@dataclass(frozen=True)
class KindHealth:
    kind: str
    name: str
    due: int  # pending and due now: should go out within seconds
    later: int  # pending, due in the future
    failed: int
    oldest_due_seconds: int | None


@dataclass(frozen=True)
class FailedRow:
    id: int
    kind: str
    name: str
    platform: str
    recipient: str
    attempts: int
    error: str
    created_at: datetime


@dataclass(frozen=True)
class Process:
    kind: str
    name: str  # what the page calls the kind
    thread: str
    host: str
    pid: int
    alive: bool
    started: str  # company time, 2026-12-03 14:05
    last_seen: str
    seen_seconds: int  # how long ago
    jobs: int


def processes(session: Session, *, now: datetime, tz: str) -> list[Process]:
    """The processes seen in the last day: alive ones first, each kind in one order."""
    alive_after = now - timedelta(seconds=heartbeats.INTERVAL_SECONDS * heartbeats.ALIVE_BEATS)
    zone = ZoneInfo(tz)
    rows = session.execute(select(ProcessBeat).where(ProcessBeat.last_seen >= now - timedelta(days=1))).scalars()
    found = [Process(r.kind, PROCESS_NAMES.get(r.kind, r.kind), r.name, r.host, r.pid, r.last_seen >= alive_after,
                     _local(r.started_at, zone), _local(r.last_seen, zone), _seconds(now, r.last_seen), r.jobs)
             for r in rows]
    order = {kind: n for n, kind in enumerate(PROCESS_ORDER)}
    return sorted(found, key=lambda p: (not p.alive, order.get(p.kind, 99), p.host, p.pid, p.thread))


def unattended(kinds: list[KindHealth], found: list[Process]) -> bool:
    """Rows are due and no worker is alive to send them."""
    return any(k.due for k in kinds) and not any(p.alive and p.kind == "worker" for p in found)


def summary(session: Session, *, now: datetime) -> list[KindHealth]:
    """One line per kind that has pending or failed rows."""
    pending = Outbox.status == "pending"
    is_due = pending & (Outbox.due_at <= now)
    waited_since = case((Outbox.due_at == outbox.ASAP, Outbox.created_at), else_=Outbox.due_at)
    rows = session.execute(
        select(Outbox.kind,
               func.count().filter(is_due), func.count().filter(pending & (Outbox.due_at > now)),
               func.count().filter(Outbox.status == "dead"), func.min(waited_since).filter(is_due))
        .where(Outbox.status.in_(("pending", "dead"))).group_by(Outbox.kind).order_by(Outbox.kind)).all()
    return [KindHealth(kind, KIND_NAMES.get(kind, kind), due, later, failed,
                       _seconds(now, oldest) if oldest is not None else None)
            for kind, due, later, failed, oldest in rows]


def failed(session: Session, limit: int = FAILED_LIMIT) -> list[FailedRow]:
    """The rows that gave up, newest first."""
    rows = session.execute(select(Outbox).where(Outbox.status == "dead").order_by(Outbox.id.desc()).limit(limit))
    return [FailedRow(r.id, r.kind, KIND_NAMES.get(r.kind, r.kind), r.platform, r.recipient, r.attempts,
                      r.last_error, r.created_at) for r in rows.scalars()]


def retry(session: Session, row_id: int, *, actor: Employee, now: datetime) -> bool:
    """Offer a failed row again now, its attempts counted from zero; False if it is not failed (any more)."""
    return _change(session, row_id, actor=actor, now=now, action="outbox.retry",
                   values=dict(status="pending", attempts=0, due_at=now, lease_until=None, lease_token=""))


def discard(session: Session, row_id: int, *, actor: Employee, now: datetime) -> bool:
    """Give a failed row up for good (cancelled: the nightly purge removes it)."""
    return _change(session, row_id, actor=actor, now=now, action="outbox.discard",
                   values=dict(status="cancelled", lease_until=None))


def _change(session: Session, row_id: int, *, actor: Employee, now: datetime, action: str, values: dict) -> bool:
    row = session.get(Outbox, row_id)
    if row is None or row.status != "dead":
        return False
    before = {"status": row.status, "attempts": row.attempts, "last_error": row.last_error[:500]}
    # Only from dead, in one statement: two admins pressing at once change it once.
    if session.execute(update(Outbox).where(Outbox.id == row_id, Outbox.status == "dead").values(**values)
                       .execution_options(synchronize_session=False)).rowcount != 1:
        return False
    after = {k: values[k] for k in ("status", "attempts") if k in values}
    audit.record(session, actor=actor, action=action, subject=f"outbox:{row_id}", platform="web",
                 detail={"kind": row.kind, "key": row.key, "before": before, "after": after}, at=now)
    return True


def _local(at: datetime, zone: ZoneInfo) -> str:
    return at.astimezone(zone).strftime("%Y-%m-%d %H:%M")


def _seconds(now: datetime, then: datetime | str) -> int:
    # SQLite hands an aggregate back as stored (text, or naive): the stored values are UTC.
    if isinstance(then, str):
        then = datetime.fromisoformat(then)
    if then.tzinfo is None:
        then = then.replace(tzinfo=timezone.utc)
    return max(int((now - then).total_seconds()), 0)
