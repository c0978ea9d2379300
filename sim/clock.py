"""模拟时钟: the simulator's business clock — real UTC time plus an offset that only moves forward.

Banli's Runtime takes it as `clock=`; the dispatcher reads it on every poll, so after a jump the next
tick sees the new time and claims whatever cron slots (e.g. the 08:00 digest) it has reached.
"""

from __future__ import annotations

import threading
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from workflows.workdays import STATUTORY

WEEKDAYS = "一二三四五六日"


class SimClock:
    def __init__(self, tz: str = "Asia/Shanghai") -> None:
        self.tz = ZoneInfo(tz)
        self._offset = timedelta(0)
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        """Aware UTC, like storage.models.utcnow."""
        return datetime.now(timezone.utc) + self.offset

    @property
    def offset(self) -> timedelta:
        with self._lock:
            return self._offset

    def local(self) -> datetime:
        return self().astimezone(self.tz)

    def advance(self, delta: timedelta) -> datetime:
        """Move forward by `delta` (never back: leases and claimed cron slots assume time only grows)."""
        if delta < timedelta(0):
            raise ValueError("the simulated clock only moves forward")
        with self._lock:
            self._offset += delta
        return self()

    def next_at(self, hour: int, minute: int = 0) -> datetime:
        """The next HH:MM business time strictly after now (today's if it is still ahead)."""
        now = self.local()
        target = datetime.combine(now.date(), time(hour, minute), tzinfo=self.tz)
        if target <= now:
            target = datetime.combine(now.date() + timedelta(days=1), time(hour, minute), tzinfo=self.tz)
        return target

    def next_morning(self) -> datetime:
        """The next 08:00 with a digest: a working day's (weekends and public holidays have none,
        a 调休 Saturday has one — workflows/digest.py)."""
        day = STATUTORY.next_workday(self.next_at(8).date())
        return datetime.combine(day, time(8), tzinfo=self.tz)

    def jump_to_morning(self) -> datetime:
        return self.advance(self.next_morning() - self.local() + timedelta(milliseconds=1))

    def jump_to(self, hour: int, minute: int = 0) -> datetime:
        # A millisecond past the slot, so croniter's "latest slot before now" is this one.
        return self.advance(self.next_at(hour, minute) - self.local() + timedelta(milliseconds=1))

    def describe(self) -> dict:
        """What the 模拟时钟 panel shows."""
        now = self.local()
        return {
            "iso": now.isoformat(),
            "text": f"{now.month}月{now.day}日 周{WEEKDAYS[now.weekday()]} {now:%H:%M}",
            "offset_seconds": int(self.offset.total_seconds()),
            "morning_label": f"到{_day_word(self.next_morning().date(), now.date())}08:00",
        }


def _day_word(day: date, today: date) -> str:
    """今天, 明天, 周一 (within the week ahead), or 10月8日."""
    ahead = (day - today).days
    if ahead < 2:
        return "今天" if ahead == 0 else "明天"
    return f"周{WEEKDAYS[day.weekday()]}" if ahead < 7 else f"{day.month}月{day.day}日"
