"""Working time for pushes that should not wake anyone: Monday–Friday within the admin's working
hours (rule `oa.working_hours`), in the business time zone. Public holidays are not known yet."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo


def next_working_moment(moment: datetime, tz: str, start: str = "09:00", end: str = "18:00") -> datetime:
    """`moment` if it is inside working time, else the start of the next working period (UTC-aware)."""
    zone = ZoneInfo(tz)
    local = moment.astimezone(zone)
    opens, closes = time.fromisoformat(start), time.fromisoformat(end)
    day = local.date()
    if local.weekday() < 5 and opens <= local.time() < closes:
        return moment
    if local.weekday() >= 5 or local.time() >= closes:
        day += timedelta(days=1)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return datetime.combine(day, opens, tzinfo=zone).astimezone(moment.tzinfo)
