"""Visits and follow-ups: log one, undo it, and remind the owner when the next one is due.

The customer's `last_followup_at` / `next_followup_at` always follow from its follow-up rows (the
latest one's time and its planned next time), so an undo recomputes them instead of keeping copies.
The reminder is an outbox message due at the planned time: it survives restarts, and an undo or a
snooze cancels it in the same transaction.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlmodel import Session

from cards import Button, Card
from storage import outbox
from storage.models import Customer, Employee, FollowUp
from workflows import audit, signals
from workflows.pushes import push

UNDO_WINDOW = timedelta(minutes=10)
CHECKIN_WINDOW = timedelta(minutes=10)  # a location or photo this soon after a visit is its 签到
WEEKDAYS = "一二三四五六日"


@dataclass(frozen=True)
class Undone:
    customer: Customer
    followup_id: int


class TooLate(Exception):
    """Only the last record, within ten minutes, can be taken back."""


def log_followup(session: Session, *, employee: Employee, customer: Customer, method: str, content: str,
                 next_at: datetime | None, now: datetime, tz: str, source_key: str | None = None,
                 platform: str = "") -> FollowUp:
    followup = FollowUp(customer_id=customer.id, employee_id=employee.id, method=method, content=content,
                        happened_at=now, next_at=next_at, source_key=source_key)
    session.add(followup)
    session.flush()
    _recompute(session, customer)
    if next_at is not None:
        _schedule_reminder(session, employee, customer, followup, next_at, tz)
    audit.record(session, actor=employee, action="followup.create", subject=f"customer:{customer.id}",
                 platform=platform, at=now, detail={"followup": followup.id, "method": method, "content": content,
                                                    "next_at": next_at})
    signals.emit(session, signals.FOLLOWUP_LOGGED, customer=customer, followup=followup, by=employee)
    return followup


def undo_last(session: Session, *, employee: Employee, followup_id: int, now: datetime, platform: str = "") -> Undone:
    """Take back `followup_id` if it is this employee's latest record and at most ten minutes old."""
    followup = session.get(FollowUp, followup_id)
    latest = session.execute(select(FollowUp).where(FollowUp.employee_id == employee.id)
                             .order_by(FollowUp.happened_at.desc(), FollowUp.id.desc())).scalars().first()
    if followup is None or latest is None or latest.id != followup.id or now - followup.happened_at > UNDO_WINDOW:
        raise TooLate()
    customer = session.get(Customer, followup.customer_id)
    outbox.cancel(session, reminder_key(followup.id) + ":")  # whatever time it was last set for
    audit.record(session, actor=employee, action="followup.undo", subject=f"customer:{customer.id}",
                 platform=platform, at=now, detail={"followup": followup.id, "method": followup.method,
                                                    "content": followup.content})
    session.delete(followup)
    session.flush()
    _recompute(session, customer)
    return Undone(customer=customer, followup_id=followup_id)


def snooze(session: Session, *, employee: Employee, followup_id: int, until: datetime, tz: str,
           platform: str = "") -> FollowUp | None:
    """Move a planned follow-up (and its reminder) to `until`. None if it is not this person's."""
    followup = session.get(FollowUp, followup_id)
    if followup is None or followup.employee_id != employee.id:
        return None
    customer = session.get(Customer, followup.customer_id)
    outbox.cancel(session, reminder_key(followup.id, followup.next_at))
    audit.record(session, actor=employee, action="followup.reschedule", subject=f"customer:{customer.id}",
                 platform=platform, detail={"followup": followup.id, "before": followup.next_at, "after": until})
    followup.next_at = until
    session.add(followup)
    session.flush()
    _recompute(session, customer)
    _schedule_reminder(session, employee, customer, followup, until, tz)
    return followup


def logged_from(session: Session, source_key: str) -> FollowUp | None:
    return session.execute(select(FollowUp).where(FollowUp.source_key == source_key)).scalars().first()


def latest_id(session: Session, employee: Employee) -> int | None:
    return session.execute(select(FollowUp.id).where(FollowUp.employee_id == employee.id)
                           .order_by(FollowUp.happened_at.desc(), FollowUp.id.desc())).scalars().first()


def recent_customers(session: Session, employee: Employee, limit: int = 3) -> list[Customer]:
    """The customers this person followed up most recently, newest first."""
    last = func.max(FollowUp.happened_at)
    ids = session.execute(select(FollowUp.customer_id).where(FollowUp.employee_id == employee.id)
                          .group_by(FollowUp.customer_id).order_by(last.desc()).limit(limit)).scalars().all()
    return [c for c in (session.get(Customer, i) for i in ids) if c is not None]


def recent_visit(session: Session, employee: Employee, now: datetime,
                 window: timedelta = CHECKIN_WINDOW) -> FollowUp | None:
    """This person's latest record, if it is a visit (拜访) logged within `window`; locked, so two
    photos arriving together both land."""
    latest = latest_id(session, employee)
    followup = session.execute(select(FollowUp).where(FollowUp.id == latest).with_for_update()
                               ).scalars().first() if latest else None
    if followup is None or followup.method != "拜访" or now - followup.happened_at > window:
        return None
    return followup


def check_in(session: Session, followup: FollowUp, *, now: datetime,
             location: tuple[float | None, float | None, str] | None = None, photo: str = "") -> bool:
    """Attach a location (place, coordinates, time) and/or a photo to a visit. A photo already on
    it is not added again (a repeated delivery). True if anything changed."""
    changed = False
    if location is not None:
        latitude, longitude, label = location
        followup.latitude, followup.longitude = latitude, longitude
        followup.place = (label or "")[:128]
        followup.checked_in_at = now
        changed = True
    photos = photos_of(followup)
    if photo and photo not in photos:
        followup.photos = json.dumps(photos + [photo])
        followup.checked_in_at = followup.checked_in_at or now
        changed = True
    if changed:
        session.add(followup)
        session.flush()
    return changed


def photos_of(followup: FollowUp) -> list[str]:
    try:
        photos = json.loads(followup.photos or "[]")
    except ValueError:
        return []
    return [p for p in photos if isinstance(p, str)] if isinstance(photos, list) else []


def checkin_text(followup: FollowUp, tz: str) -> str:
    """签到 as cards show it: 深圳南山腾讯大厦 10:05 · 照片2张; "" when not checked in."""
    if followup.checked_in_at is None:
        return ""
    local = followup.checked_in_at.astimezone(ZoneInfo(tz))
    parts = [f"{followup.place} {local:%H:%M}".strip()]
    if photos_of(followup):
        parts.append(f"照片{len(photos_of(followup))}张")
    return " · ".join(parts)


def snooze_target(now: datetime, how: str, tz: str) -> datetime | None:
    """推迟1天: same time tomorrow; 推迟到下周: next Monday 09:00 (business time)."""
    if how == "1d":
        return now + timedelta(days=1)
    if how == "nextweek":
        local = now.astimezone(ZoneInfo(tz))
        monday = (local + timedelta(days=7 - local.weekday())).date()
        return datetime(monday.year, monday.month, monday.day, 9, 0, tzinfo=ZoneInfo(tz)).astimezone(now.tzinfo)
    return None


def reminder_key(followup_id: int, due: datetime | None = None) -> str:
    """One reminder per follow-up and due time: a snooze schedules a new key, a retry never doubles."""
    return f"remind:followup:{followup_id}" + (f":{due.isoformat()}" if due else "")


def day_text(day: date) -> str:
    """11月25日(周三): how cards name a day."""
    return f"{day.month}月{day.day}日(周{WEEKDAYS[day.weekday()]})"


def when_text(moment: datetime, tz: str) -> str:
    local = moment.astimezone(ZoneInfo(tz))
    return f"{day_text(local.date())} {local:%H:%M}"


def reminder_card(customer: Customer, followup: FollowUp, tz: str) -> Card:
    return Card(
        title=f"跟进提醒 · {short_name(customer)}",
        body=f"约好 {when_text(followup.next_at, tz)} 跟进{short_name(customer)}。\n上次：{followup.content or followup.method}",
        fields=(("客户", customer.name[:26]), ("等级", customer.tier)),
        buttons=(Button("已跟进", "crm.done", str(followup.id), style="primary"),
                 Button("推迟1天", "crm.snooze", f"{followup.id}:1d"),
                 Button("推迟到下周", "crm.snooze", f"{followup.id}:nextweek")),
    )


def short_name(customer: Customer) -> str:
    return (customer.short_names.split(",")[0] or customer.name)[:12]


def _schedule_reminder(session: Session, employee: Employee, customer: Customer, followup: FollowUp,
                       due: datetime, tz: str) -> None:
    push(session, employee.id, reminder_key(followup.id, due), reminder_card(customer, followup, tz), due_at=due)


def _recompute(session: Session, customer: Customer) -> None:
    latest = session.execute(select(FollowUp).where(FollowUp.customer_id == customer.id)
                             .order_by(FollowUp.happened_at.desc(), FollowUp.id.desc())).scalars().first()
    customer.last_followup_at = latest.happened_at if latest else None
    customer.next_followup_at = latest.next_at if latest else None
    session.add(customer)
