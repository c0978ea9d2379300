"""When a push may reach someone's phone: not in quiet hours, not on days off (admin rules).

Alerts Banli raises on its own (overdue, 公海 warnings) are queued with `due_at = push_time(...)`, so
the outbox simply holds them: a scan at 22:00 writes a row due at 08:30 the next morning. Replies to
what a person just typed never go through here — they asked.

Approval reminders use working time instead (`next_working_moment`, rule `oa.working_hours`):
working days within working hours, so an approver is nudged at the desk, not at 08:30 on a Sunday.

Rules: `crm.quiet_hours` {start, end, release} and `crm.skip_weekends`. A moment inside the quiet
period is released at `release` on the day the period ends (or at `end` itself, if `release` is set
earlier than `end`). With `skip_weekends`, a release that lands on a day off — a weekend or a
public holiday, but not a 调休 Saturday, which is worked (workflows/workdays.py) — moves to the next
working day at `release`.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session

from workflows import rules, workdays
from workflows.workdays import STATUTORY, Workdays


def push_time(moment: datetime, *, quiet: dict[str, str], skip_weekends: bool, tz: str,
              days: Workdays = STATUTORY) -> datetime:
    """The earliest moment at or after `moment` when a push may go out, as aware UTC."""
    zone = ZoneInfo(tz)
    local = moment.astimezone(zone)
    start, end, release = (_clock(quiet[k]) for k in ("start", "end", "release"))
    out = _after_quiet(local, start, end, release, zone)
    if skip_weekends and not days.is_workday(out.date()):
        out = _at(days.next_workday(out.date()), release, zone)
    return out.astimezone(timezone.utc)


def push_time_for(session: Session, moment: datetime, tz: str) -> datetime:
    """`push_time` with the company's current rules."""
    return push_time(moment, quiet=rules.get(session, "crm.quiet_hours"),
                     skip_weekends=rules.get(session, "crm.skip_weekends"), tz=tz, days=workdays.for_company(session))


def next_working_moment(moment: datetime, tz: str, start: str = "09:00", end: str = "18:00",
                        days: Workdays = STATUTORY) -> datetime:
    """`moment` if it is inside working time (a working day, start–end), else the start of the next one."""
    zone = ZoneInfo(tz)
    local = moment.astimezone(zone)
    opens, closes = _clock(start), _clock(end)
    day = local.date()
    working = days.is_workday(day)
    if working and opens <= local.time() < closes:
        return moment
    if not working or local.time() >= closes:
        day += timedelta(days=1)
    return _at(days.next_workday(day), opens, zone).astimezone(moment.tzinfo)


def is_quiet(local: time, start: time, end: time) -> bool:
    """Quiet periods may wrap midnight (21:00–08:00) or not (12:00–13:30); start == end: none."""
    if start == end:
        return False
    if start < end:
        return start <= local < end
    return local >= start or local < end


def _after_quiet(local: datetime, start: time, end: time, release: time, zone: ZoneInfo) -> datetime:
    now = local.time().replace(tzinfo=None)
    if not is_quiet(now, start, end):
        return local
    # The day the quiet period ends: tomorrow if we are in the evening part of a wrapping period.
    ends_on = local.date() + timedelta(days=1) if start > end and now >= start else local.date()
    return max(_at(ends_on, release, zone), _at(ends_on, end, zone))


def _at(day: date, clock: time, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, clock, tzinfo=zone)


def _clock(text: Any) -> time:
    hours, minutes = str(text).split(":")
    return time(int(hours), int(minutes))
