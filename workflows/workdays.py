"""Which days are working days in China: public holidays and 调休 (make-up working days).

The State Council publishes each year's arrangement in November or December for the next year: 国庆
may be eight days off with a Sunday before it and a Saturday after it worked. Weekends alone are
wrong for a third of the year's edges, so every working-day count in Banli (leave days, approval
reminders, holding pushes on days off, 工作日 offsets, 节后) asks a `Workdays`.

Sources, first match wins:
1. the company's own days (admin rules `oa.extra_holidays`, `oa.extra_workdays`: a company
   anniversary off, a Saturday the company works);
2. the official arrangement, from the `chinese-calendar` package, for the years it covers;
3. for a year the package does not cover yet: Monday–Friday, except the days off the law itself
   fixes (全国年节及纪念日放假办法: 元旦 1月1日, 劳动节 5月1–2日, 国庆 10月1–3日, 春节 除夕 to 初三
   where the Spring Festival's date is in SPRING_FESTIVAL). The 调休 around them is only known from
   the yearly arrangement: upgrade the package when it is out; `covered_until` tells admins which
   year it knows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import TYPE_CHECKING

import chinese_calendar

if TYPE_CHECKING:
    from sqlmodel import Session

SATURDAY = 5

# Spring Festival (正月初一) by Gregorian date, for the years the package does not cover.
SPRING_FESTIVAL = {2026: date(2026, 2, 17), 2027: date(2027, 2, 6), 2028: date(2028, 1, 26),
                   2029: date(2029, 2, 13), 2030: date(2030, 2, 3)}
# The days off the law fixes by Gregorian date: (month, day) → name.
FIXED_BY_LAW = {(1, 1): "元旦", (5, 1): "劳动节", (5, 2): "劳动节", (10, 1): "国庆", (10, 2): "国庆", (10, 3): "国庆"}

# chinese-calendar's English holiday names → what people call them.
HOLIDAY_NAMES = {
    "New Year's Day": "元旦", "Spring Festival": "春节", "Tomb-sweeping Day": "清明",
    "Labour Day": "劳动节", "Dragon Boat Festival": "端午", "Mid-autumn Festival": "中秋",
    "National Day": "国庆", "Anti-Fascist 70th Day": "抗战胜利纪念日",
}


def covered_until() -> int:
    """The last year whose official arrangement is known."""
    return max(chinese_calendar.holidays).year


def covers(year: int) -> bool:
    return min(chinese_calendar.holidays).year <= year <= covered_until()


@dataclass(frozen=True)
class Workdays:
    """A company's calendar: the official one, adjusted by the company's own days."""

    extra_holidays: frozenset[date] = field(default_factory=frozenset)
    extra_workdays: frozenset[date] = field(default_factory=frozenset)

    def is_workday(self, day: date) -> bool:
        if day in self.extra_holidays:
            return False
        if day in self.extra_workdays:
            return True
        if covers(day.year):
            return chinese_calendar.is_workday(day)
        return day.weekday() < SATURDAY and not _by_law(day)

    def holiday_name(self, day: date) -> str:
        """「国庆」 for an official holiday, 「公司假日」 for the company's own, "" otherwise."""
        if day in self.extra_holidays:
            return "公司假日"
        if day in self.extra_workdays:
            return ""
        if not covers(day.year):
            return _by_law(day)
        is_holiday, name = chinese_calendar.get_holiday_detail(day)
        return HOLIDAY_NAMES.get(name, name or "") if is_holiday and name else ""

    def count(self, first: date, last: date) -> int:
        """Working days from `first` to `last`, both included."""
        return sum(self.is_workday(first + timedelta(days=i)) for i in range((last - first).days + 1))

    def next_workday(self, day: date) -> date:
        """`day` itself if it is a working day, else the first one after it."""
        while not self.is_workday(day):
            day += timedelta(days=1)
        return day

    def add(self, day: date, n: int) -> date:
        """The n-th working day after `day` (before it, for n < 0)."""
        step = 1 if n >= 0 else -1
        for _ in range(abs(n)):
            day += timedelta(days=step)
            while not self.is_workday(day):
                day += timedelta(days=step)
        return day

    def holiday_block(self, name: str, year: int) -> tuple[date, date] | None:
        """The days off named `name` (国庆, 中秋…) in `year`, as one run of days, with the weekend
        days that join it. None if there is no such holiday (中秋 in a year not covered yet)."""
        days = [d for d in _days_of(year) if self.holiday_name(d) == name]
        if not days:
            return None
        first, last = days[0], days[-1]
        while not self.is_workday(first - timedelta(days=1)):
            first -= timedelta(days=1)
        while not self.is_workday(last + timedelta(days=1)):
            last += timedelta(days=1)
        return first, last

    def next_holiday(self, today: date) -> tuple[date, date] | None:
        """The days off of the holiday we are in, or of the next one (a weekend alone is not a
        holiday), with the weekend days that join it. None when none is known within a year."""
        for offset in range(370):
            day = today + timedelta(days=offset)
            if self.holiday_name(day):
                first, last = day, self.next_workday(day) - timedelta(days=1)
                while not self.is_workday(first - timedelta(days=1)):
                    first -= timedelta(days=1)
                return first, last
        return None


STATUTORY = Workdays()


def _by_law(day: date) -> str:
    """The holiday the law fixes on `day`, "" if none (for years without an official arrangement)."""
    if (day.month, day.day) in FIXED_BY_LAW:
        return FIXED_BY_LAW[(day.month, day.day)]
    new_year = SPRING_FESTIVAL.get(day.year)
    return "春节" if new_year and -1 <= (day - new_year).days <= 2 else ""


def _days_of(year: int) -> list[date]:
    first = date(year, 1, 1)
    return [first + timedelta(days=i) for i in range((date(year + 1, 1, 1) - first).days)]


def for_company(session: "Session") -> Workdays:
    """The calendar with the company's own days (admin rules) applied."""
    from workflows import rules  # rules → audit → models: kept out of this pure module's import time

    return Workdays(frozenset(map(date.fromisoformat, rules.get(session, "oa.extra_holidays"))),
                    frozenset(map(date.fromisoformat, rules.get(session, "oa.extra_workdays"))))
