"""Visits and follow-ups: log one, undo it, and remind the owner when the next one is due.

The customer's `last_followup_at` / `next_followup_at` always follow from its follow-up rows (the
latest one's time and its planned next time), so an undo recomputes them instead of keeping copies.
The reminder is an outbox message due at the planned time: it survives restarts, and an undo or a
snooze cancels it in the same transaction.

Times people say are turned into a plan by `planned_at`: a day without a time is the company's
follow-up hour (rule `crm.followup_hour`, 09:00), never midnight; a moment already past — 今天,
刚才, 上午 in "今天上午和李总见了面" — is when the visit happened, never a plan; and a time Banli
picked (the hour, 推迟1天) is moved out of quiet hours, while a time the person typed is kept.
A visit that names no new date keeps the plan made before it, if that plan is still ahead.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlmodel import Session

from cards import Button, Card
from storage import outbox
from storage.models import Customer, Employee, FollowUp
from workflows import audit, rules, signals
from workflows.customers import words_naming
from workflows.business_time import push_time
from workflows.pushes import push
from workflows.when import When

# After the time words, these say the time is a plan (下周三再跟进, 明天约了李总), not what happened.
FUTURE_CUES = re.compile(r"再|下次|下回|约|回头|到时|之后|以后|计划|准备|打算|要")
# 了 / 过 after the time words, with no plan word: it already happened (上午和李总见了面).
PAST_MARKS = re.compile(r"了|过(?![去来])")
JUST_NOW = ("刚才", "刚刚", "方才")
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
        _withdraw_earlier_plans(session, followup, now)
        _schedule_reminder(session, employee, customer, followup, next_at, tz)
    audit.record(session, actor=employee, action="followup.create", subject=f"customer:{customer.id}",
                 platform=platform, at=now, detail={"followup": followup.id, "method": method, "content": content,
                                                    "next_at": next_at})
    signals.emit(session, signals.FOLLOWUP_LOGGED, customer=customer, followup=followup, by=employee)
    return followup


def planned_at(session: Session, when: When | None, text: str, now: datetime, tz: str) -> datetime | None:
    """The next follow-up `text` asks for, given the time phrase `when` found in it; None when there
    is none or the phrase says when this visit happened."""
    if when is None or _happened(when, text, now, tz):
        return None
    if when.has_time:
        return when.start if when.start > now else None
    zone = ZoneInfo(tz)
    hour = _clock(rules.get(session, "crm.followup_hour"))
    moment = datetime.combine(when.start.astimezone(zone).date(), hour, tzinfo=zone)
    if moment <= now:
        return None
    return computed_time(session, moment, tz)


def computed_time(session: Session, moment: datetime, tz: str) -> datetime:
    """A reminder time Banli chose, out of quiet hours (the day stays the one the person said)."""
    return push_time(moment, quiet=rules.get(session, "crm.quiet_hours"), skip_weekends=False, tz=tz)


def _happened(when: When, text: str, now: datetime, tz: str) -> bool:
    """今天 / 昨天 / 刚才 / 上午… in a visit note is when it happened: the phrase names today (a day
    without a time) or earlier, or what follows it reads as done (了, 过) with no plan word."""
    zone = ZoneInfo(tz)
    day, today = when.start.astimezone(zone).date(), now.astimezone(zone).date()
    if day < today or (day == today and not when.has_time):
        return True
    if any(word in text for word in JUST_NOW) and not FUTURE_CUES.search(text):
        return True
    after = text[text.find(when.text) + len(when.text):] if when.text and when.text in text else text
    done = bool(PAST_MARKS.search(after)) and not FUTURE_CUES.search(after)
    # A bare 上午 / 9点 said after it passed is read as tomorrow's; followed by 了 it was today's.
    return done and (day == today or not any(ch in when.text for ch in "明后天周号日月"))


def _clock(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def undo_last(session: Session, *, employee: Employee, followup_id: int, now: datetime, platform: str = "",
              tz: str = "Asia/Shanghai") -> Undone:
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
    if followup.next_at is not None:
        _restore_plan(session, customer, now, tz)
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


def snooze_target(session: Session, now: datetime, how: str, tz: str) -> datetime | None:
    """推迟1天: same time tomorrow (out of quiet hours); 推迟到下周: next Monday at the follow-up hour."""
    if how == "1d":
        return computed_time(session, now + timedelta(days=1), tz)
    if how == "nextweek":
        zone = ZoneInfo(tz)
        local = now.astimezone(zone)
        monday = (local + timedelta(days=7 - local.weekday())).date()
        moment = datetime.combine(monday, _clock(rules.get(session, "crm.followup_hour")), tzinfo=zone)
        return computed_time(session, moment, tz).astimezone(now.tzinfo)
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


def reminder_card(customer: Customer, followup: FollowUp, tz: str, done_words: str = "") -> Card:
    """`done_words`: what 已跟进 sends where a button can only send words (`拜访 <legal name>`,
    customers.words_naming); empty keeps `#crm.done <id>`."""
    return Card(
        title=f"跟进提醒 · {short_name(customer)}",
        body=f"约好 {when_text(followup.next_at, tz)} 跟进{short_name(customer)}。\n上次：{followup.content or followup.method}",
        fields=(("客户", customer.name[:26]), ("等级", customer.tier)),
        buttons=(Button("已跟进", "crm.done", str(followup.id), style="primary", command=done_words),
                 Button("推迟1天", "crm.snooze", f"{followup.id}:1d"),
                 Button("推迟到下周", "crm.snooze", f"{followup.id}:nextweek")),
    )


def short_name(customer: Customer) -> str:
    return (customer.short_names.split(",")[0] or customer.name)[:12]


def _schedule_reminder(session: Session, employee: Employee, customer: Customer, followup: FollowUp,
                       due: datetime, tz: str) -> None:
    push(session, employee.id, reminder_key(followup.id, due),
         reminder_card(customer, followup, tz, _done_words(session, customer, followup)), due_at=due)


def _done_words(session: Session, customer: Customer, followup: FollowUp) -> str:
    return words_naming(session, customer, followup.method or "拜访")


def recompute_times(session: Session, customer: Customer) -> None:
    """Set the customer's last / next follow-up times from its follow-up rows (after a merge moved some)."""
    _recompute(session, customer)


def _recompute(session: Session, customer: Customer) -> None:
    latest = session.execute(select(FollowUp).where(FollowUp.customer_id == customer.id)
                             .order_by(FollowUp.happened_at.desc(), FollowUp.id.desc())).scalars().first()
    customer.last_followup_at = latest.happened_at if latest else None
    customer.next_followup_at = _plan(session, customer, latest)
    session.add(customer)


def _plan(session: Session, customer: Customer, latest: FollowUp | None) -> datetime | None:
    """The latest record's next time; if it named none, the plan made before it while that plan is
    still after it (a Tuesday visit keeps Wednesday's plan; a Thursday visit has done it)."""
    if latest is None or latest.next_at is not None:
        return latest.next_at if latest else None
    earlier = _earlier_plan(session, customer.id, latest.id)
    return earlier.next_at if earlier is not None and _aware(earlier.next_at) > _aware(latest.happened_at) else None


def _earlier_plan(session: Session, customer_id: int, before_id: int | None = None) -> FollowUp | None:
    query = select(FollowUp).where(FollowUp.customer_id == customer_id, FollowUp.next_at.is_not(None))
    if before_id is not None:
        query = query.where(FollowUp.id != before_id)
    return session.execute(query.order_by(FollowUp.happened_at.desc(), FollowUp.id.desc())).scalars().first()


def _withdraw_earlier_plans(session: Session, followup: FollowUp, now: datetime) -> None:
    """A new date replaces the customer's plans still ahead: their reminders are taken back."""
    ahead = session.execute(select(FollowUp).where(
        FollowUp.customer_id == followup.customer_id, FollowUp.id != followup.id, FollowUp.next_at > now)).scalars()
    for earlier in ahead:
        outbox.cancel(session, reminder_key(earlier.id, earlier.next_at))


def _restore_plan(session: Session, customer: Customer, now: datetime, tz: str) -> None:
    """An undone record gave back the plan it replaced: its reminder is queued again."""
    earlier = _earlier_plan(session, customer.id)
    if earlier is None or customer.next_followup_at is None or _aware(earlier.next_at) <= now:
        return
    owner = session.get(Employee, earlier.employee_id)
    if owner is not None:
        push(session, owner.id, reminder_key(earlier.id, earlier.next_at) + ":restored",
             reminder_card(customer, earlier, tz, _done_words(session, customer, earlier)), due_at=earlier.next_at)


def _aware(moment: datetime) -> datetime:
    """SQLite gives back naive UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=ZoneInfo("UTC"))
