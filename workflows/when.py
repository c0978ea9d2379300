"""Chinese dates and times in free text, for follow-ups and leave (docs/architecture.md §4, "Dates
and times").

No library is good enough for scheduling semantics (dateparser and jionlp read 周五 said on a
Saturday as yesterday and let a range end before it starts), so this is a small rule module:
precompiled regexes, leftmost-longest match, and the policies below.

- A bare weekday / day-of-month / month-day / 月初 that already passed means the next one, because
  follow-ups are in the future. The same day counts as not passed, unless a time was given and that
  time has passed (周六上午9点 said on Saturday at 10:00 → next Saturday).
- 本周/这周/这个月 are literal (本周五 said on Saturday → yesterday); 下周三, 下下周一, 上周五 are as
  written, weeks start on Monday.
- 月底 / 年底 / X内 / X前 are deadlines: ``deadline=True`` and ``start`` is the last day.
  X前 of a single day is that day (周五前 = by Friday); X前 of a span is the day before it
  (国庆前 → 9月30日, 12月前 → 11月30日, 周末前 → Friday).
- X后 of a holiday or weekend is the first working day after it (国庆后 → 10月8日, 春节后 → 初八,
  周末后 → Monday, or Tuesday when Monday is a holiday);
  X后 of a day, week or month is its start ("下周三以后再跟进" → Wednesday).
- A time without a date is today, or tomorrow if that time has passed. A bare 1–6点 is afternoon.
  Defaults: 早上 8:00, 上午 9:00 (a reminder at the start of the working morning), 中午 12:00,
  下午 14:00, 傍晚 17:00, 晚上 19:00, 夜里 21:00.
- 下周 / 下个月 / 12月 / 国庆 alone are spans: ``start`` = first day, ``end`` = last day (both at 00:00,
  inclusive). A range is either days (has_time False) or times (both ends have a time); an end that
  would come before the start is rolled forward if it was a bare form, else the range is dropped.
- Holidays are the official days off (workflows/workdays.py) where the year's arrangement is known:
  国庆后 → the first working day after the break, 中秋/端午/清明 by that year's dates. In a year not
  known yet, 元旦/五一/国庆/春节 fall back to their customary spans and 中秋/端午/清明 are not parsed
  (they stay time words, so the caller asks). 节后 / 节前 / 假期后 are about the next holiday:
  its first working day after, or its eve as a deadline.
- Nothing inside a link (`scheme://…`, workflows/urls.py) is a date: `?d=2026-12-03` is not one.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from typing import Callable
from zoneinfo import ZoneInfo

from workflows.urls import blank_urls
from workflows.workdays import SPRING_FESTIVAL, STATUTORY, covers


@dataclass(frozen=True)
class When:
    start: datetime
    end: datetime | None = None
    has_time: bool = False
    deadline: bool = False
    text: str = ""


# ---------------------------------------------------------------- numerals and character classes

_CN_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6,
              "七": 7, "八": 8, "九": 9}
_CN = "零〇一二两三四五六七八九十廿卅"
NUM = rf"(?:\d{{1,2}}|[{_CN}]{{1,3}})"
NUM3 = rf"(?:\d{{1,3}}|[{_CN}百]{{1,4}})"
# Not glued to the end of a longer number or an ordinal (第三号方案, 123号, 3.5).
_NB = rf"(?<![\d{_CN}百千万第.])"

# Same-length mapping, so a match position in the normalised text is a position in the original.
_FULLWIDTH = str.maketrans("０１２３４５６７８９：．／－～　", "0123456789:./-~ ")

WEEKDAY_CHARS = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6, "七": 6,
                 "1": 0, "2": 1, "3": 2, "4": 3, "5": 4, "6": 5, "7": 6}
WEEK_WORD = r"(?:周|星期|礼拜)"
# How many weeks / months a prefix moves; 这/本 are literal.
WEEK_SHIFT = {"下下": 2, "下": 1, "本": 0, "这": 0, "上": -1, "上上": -2}
MONTH_SHIFT = {"下下": 2, "下": 1, "本": 0, "这": 0, "上": -1}
YEAR_SHIFT = {"去年": -1, "今年": 0, "明年": 1, "后年": 2}

# Relative day words: (days from today, implied part of day).
DAY_WORDS = {
    "大前天": (-3, None), "前天": (-2, None), "昨天": (-1, None), "昨日": (-1, None),
    "昨晚": (-1, "晚上"), "今天": (0, None), "今日": (0, None), "今早": (0, "早上"),
    "今晚": (0, "晚上"), "今夜": (0, "晚上"), "明天": (1, None), "明日": (1, None),
    "明早": (1, "早上"), "明晚": (1, "晚上"), "后天": (2, None), "大后天": (3, None),
}

# Part of day → default minute of day, and how a bare hour after it is read.
PERIOD_DEFAULT = {"清晨": 8 * 60, "早上": 8 * 60, "早晨": 8 * 60, "一早": 8 * 60, "上午": 9 * 60,
                  "中午": 12 * 60, "午后": 14 * 60, "下午": 14 * 60, "傍晚": 17 * 60,
                  "晚上": 19 * 60, "晚间": 19 * 60, "夜里": 21 * 60, "夜间": 21 * 60}
PM_PERIODS = {"午后", "下午", "傍晚", "晚上", "晚间", "夜里", "夜间"}
PERIOD = "凌晨|清晨|早上|早晨|一早|上午|中午|午后|下午|傍晚|晚上|晚间|夜里|夜间"
# 两点意见 / 三点建议 are points of a list, not clock times.
POINT_NOUNS = ("意见", "建议", "问题", "原因", "想法", "看法", "好处", "不足", "理由", "优势",
               "共识", "内容", "要求", "注意")

# Holiday → (month, day) or "spring", and its nominal length in days (used by X后).
# Official make-up-day arrangements change yearly; these spans are the customary ones.
HOLIDAYS: dict[str, tuple[tuple[int, int] | str, int]] = {
    "元旦": ((1, 1), 1), "劳动节": ((5, 1), 5), "五一": ((5, 1), 5), "国庆": ((10, 1), 7),
    "国庆节": ((10, 1), 7), "十一": ((10, 1), 7), "春节": ("spring", 7), "过年": ("spring", 7),
    "除夕": ("eve", 1), "大年三十": ("eve", 1),
    # Lunar or solar-term dates: only from the official arrangement (no customary fallback).
    "中秋": ("official", 0), "中秋节": ("official", 0), "端午": ("official", 0), "端午节": ("official", 0),
    "清明": ("official", 0), "清明节": ("official", 0),
}
# How the official arrangement names each holiday (workflows/workdays.py HOLIDAY_NAMES).
OFFICIAL_NAMES = {"元旦": "元旦", "劳动节": "劳动节", "五一": "劳动节", "国庆": "国庆", "国庆节": "国庆",
                  "十一": "国庆", "春节": "春节", "过年": "春节", "中秋": "中秋", "中秋节": "中秋",
                  "端午": "端午", "端午节": "端午", "清明": "清明", "清明节": "清明"}

# Words after a number that make it not a day of month (三号楼, 2号线).
NOT_DAY_AFTER = "楼线门厅店机位房室口码院仓库车桌床窗"
# Characters after 前/后 that make it part of another word (前台, 后续, 前往, 前后).
_AFFIX_BLOCK = "天后台面续端期往去来进排半"
_SUFFIX = rf"(?:\s*(之|以)?([前后])(?![{_AFFIX_BLOCK}]))"

_CONNECTOR = re.compile(r"\s*(?:到|至|~|-|—|–)\s*")
_GLUE = re.compile(r"\s*的?\s*")
_SUFFIX_RE = re.compile(_SUFFIX)


# ---------------------------------------------------------------- small helpers

def _int(s: str | None) -> int | None:
    """Arabic or Chinese numerals up to 999 (一, 十一, 二十五, 廿三, 两, 一百)."""
    if not s:
        return None
    if s.isdigit():
        return int(s)
    s = s.replace("廿", "二十").replace("卅", "三十")
    total = 0
    if "百" in s:
        head, _, s = s.partition("百")
        if head not in _CN_DIGITS:
            return None
        total += _CN_DIGITS[head] * 100
        s = s.lstrip("零〇")
    if "十" in s:
        head, _, tail = s.partition("十")
        tens = _CN_DIGITS.get(head) if head else 1
        ones = _CN_DIGITS.get(tail) if tail else 0
        if tens is None or ones is None:
            return None
        return total + tens * 10 + ones
    if not s:
        return total
    if len(s) == 1 and s in _CN_DIGITS:
        return total + _CN_DIGITS[s]
    return None


def _last_day(year: int, month: int) -> date:
    return date(year, month, calendar.monthrange(year, month)[1])


def _add_months(d: date, n: int) -> date:
    """Calendar months, the day clamped (1月31日 + 1个月 → 2月28日)."""
    y, m = divmod(d.month - 1 + n, 12)
    year, month = d.year + y, m + 1
    return date(year, month, min(d.day, calendar.monthrange(year, month)[1]))


def _date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _monday(d: date) -> date:
    return d - timedelta(days=d.weekday())


# ---------------------------------------------------------------- what a rule produces

@dataclass
class _Piece:
    first: date
    last: date | None = None          # a span of days (week, month, holiday)
    kind: str = "day"                 # day | span | holiday (holidays and weekends)
    deadline: bool = False
    roll: str | None = None           # bare form resolved to today: how to move on if the time passed
    again: str | None = None          # bare form: how to reach its next occurrence (for X前)
    period: str | None = None         # implied by 今晚 / 明早
    minute: int | None = None         # minute of day (may be 1440 = 24:00)
    instant: datetime | None = None   # N小时后: an exact moment

    @property
    def has_time(self) -> bool:
        return self.minute is not None or self.instant is not None


@dataclass(frozen=True)
class _Ctx:
    now: datetime
    today: date


Handler = Callable[[re.Match, _Ctx, date], "_Piece | None"]


def _roll(d: date, how: str) -> date:
    if how == "day":
        return d + timedelta(days=1)
    if how == "week":
        return d + timedelta(days=7)
    if how == "month":
        nxt = _add_months(d, 1)
        return _date(nxt.year, nxt.month, d.day) or _roll(nxt, "month")
    return _date(d.year + 1, d.month, d.day) or date(d.year + 1, 3, 1)  # 2月29日 → 3月1日


def _future(d: date | None, floor: date, how: str) -> date | None:
    """Move a bare date on until it is not before floor (the next 周五 / 3号 / 12月3号)."""
    for _ in range(13):
        if d is None or d >= floor:
            return d
        d = _roll(d, how)
    return None


def _bare(d: date | None, floor: date, how: str, today: date) -> _Piece | None:
    d = _future(d, floor, how)
    if d is None:
        return None
    return _Piece(d, roll=how if d == today else None, again=how)


def _month_piece(year: int, month: int, day: str | None, part: str | None, xun: str | None,
                 ) -> _Piece | None:
    """A day, part (初 中 底) or ten-day third (上旬) of a month, or the whole month."""
    if not 1 <= month <= 12:
        return None
    if day:
        d = _int(day)
        found = _date(year, month, d) if d else None
        return _Piece(found) if found else None
    last = _last_day(year, month)
    if part == "初":
        return _Piece(date(year, month, 1))
    if part == "中":
        return _Piece(date(year, month, 15))
    if part in ("底", "末", "内"):
        return _Piece(last, deadline=True)
    if xun:
        lo, hi = {"上": (1, 10), "中": (11, 20), "下": (21, last.day)}[xun]
        return _Piece(date(year, month, lo), date(year, month, hi), kind="span")
    return _Piece(date(year, month, 1), last, kind="span")


def _piece_end(p: _Piece) -> date:
    return p.last or p.first


def _next_month_piece(month: int, floor: date, build: Callable[[int], _Piece | None],
                      ) -> _Piece | None:
    """This year's, or next year's if it has passed (a bare 12月3号 / 3月底 / 11月)."""
    for year in (floor.year, floor.year + 1):
        p = build(year)
        if p is None:
            return None
        if _piece_end(p) >= floor:
            return p
    return None


# ---------------------------------------------------------------- rules

def _ymd(m: re.Match, ctx: _Ctx, floor: date) -> _Piece | None:
    d = _date(int(m[1]), int(m[2]), int(m[3]))
    return _Piece(d) if d else None


def _year_month(m: re.Match, ctx: _Ctx, floor: date) -> _Piece | None:
    return _month_piece(int(m[1]), _int(m[2]) or 0, m[3], m[4], m[5])


def _year_word(m: re.Match, ctx: _Ctx, floor: date) -> _Piece | None:
    year = ctx.today.year + YEAR_SHIFT[m[1]]
    if m[2]:
        return _month_piece(year, _int(m[2]) or 0, m[3], m[4], m[5])
    if m[6] in ("底", "末", "内"):
        return _Piece(date(year, 12, 31), deadline=True)
    if m[6] == "初":
        return _Piece(date(year, 1, 1))
    if YEAR_SHIFT[m[1]] <= 0:
        return None  # 今年的目标 / 去年 alone give no date to schedule; 明年(再说) does
    return _Piece(date(year, 1, 1), date(year, 12, 31), kind="span")


def _month_day(m: re.Match, ctx: _Ctx, floor: date) -> _Piece | None:
    month = _int(m[1]) or 0
    p = _next_month_piece(month, floor, lambda y: _month_piece(y, month, m[2], m[3], m[4]))
    if p:
        p.again = "year"
        p.roll = "year" if m[2] and p.first == ctx.today else None
    return p


def _num_date(m: re.Match, ctx: _Ctx, floor: date) -> _Piece | None:
    """12.3 / 12/3 — unless it is money or a ratio (12.3元, 3.5折, 1/3的)."""
    after = m.string[m.end():].lstrip()
    if after[:1] and after[0] in "元块万千百kKwW折倍%米斤个" or after.startswith(("的", "以上", "左右")):
        return None
    if m.start() and m.string[m.start() - 1] in "¥￥$":
        return None
    month, day = int(m[1]), int(m[2])
    p = _next_month_piece(month, floor, lambda y: _month_piece(y, month, str(day), None, None))
    if p and p.first == ctx.today:
        p.roll = "year"
    return p


def _rel_month(m: re.Match, ctx: _Ctx, floor: date) -> _Piece | None:
    first = _add_months(ctx.today.replace(day=1), MONTH_SHIFT[m[1]])
    return _month_piece(first.year, first.month, m[2], m[3], m[4])


def _month_part(m: re.Match, ctx: _Ctx, floor: date) -> _Piece | None:
    """Bare 月底 / 月初 / 月中 / 下旬: this month's, or next month's if passed."""
    for shift in (0, 1):
        first = _add_months(floor.replace(day=1), shift)
        p = _month_piece(first.year, first.month, None, m[1], m[2])
        if p and _piece_end(p) >= floor:
            p.again = "month"
            return p
    return None


def _day_of_month(m: re.Match, ctx: _Ctx, floor: date) -> _Piece | None:
    day = _int(m[1])
    if not day or not 1 <= day <= 31:
        return None
    # Start from this month; months without that day are skipped (31号 in November → 12月31日).
    start = floor.replace(day=1)
    for shift in range(3):
        first = _add_months(start, shift)
        d = _date(first.year, first.month, day)
        if d and d >= floor:
            return _Piece(d, roll="month" if d == ctx.today else None, again="month")
    return None


def _weekday(m: re.Match, ctx: _Ctx, floor: date) -> _Piece | None:
    wd = WEEKDAY_CHARS[m[2]]
    prefix = (m[1] or "").rstrip("个")
    if prefix:
        d = _monday(ctx.today) + timedelta(weeks=WEEK_SHIFT[prefix], days=wd)
        return _Piece(d)
    return _bare(_monday(floor) + timedelta(days=wd), floor, "week", ctx.today)


def _week(m: re.Match, ctx: _Ctx, floor: date) -> _Piece | None:
    monday = _monday(ctx.today) + timedelta(weeks=WEEK_SHIFT[m[1].rstrip("个")])
    sunday = monday + timedelta(days=6)
    if m[2]:  # 本周内 / 下周内: by the end of that week
        return _Piece(sunday, deadline=True)
    return _Piece(monday, sunday, kind="span")


def _weekend(m: re.Match, ctx: _Ctx, floor: date) -> _Piece | None:
    prefix = (m[1] or "").rstrip("个")
    monday = _monday(ctx.today if prefix else floor) + timedelta(weeks=WEEK_SHIFT.get(prefix, 0))
    sat, sun = monday + timedelta(days=5), monday + timedelta(days=6)
    if prefix:
        return _Piece(sat, sun, kind="holiday")
    if sat < floor:  # said on Sunday: the rest of this weekend
        sat = floor
    return _Piece(sat, sun, kind="holiday", again="week")


def _day_word(m: re.Match, ctx: _Ctx, floor: date) -> _Piece | None:
    days, period = DAY_WORDS[m[0]]
    return _Piece(ctx.today + timedelta(days=days), period=period)


def _holiday_span(name: str, year: int) -> tuple[date, date] | None:
    where, length = HOLIDAYS[name]
    # A year without its arrangement yet: the customary spans read better than the law's minimum
    # (国庆后 means after the week-long break people expect, not 10月4日).
    official = STATUTORY.holiday_block(OFFICIAL_NAMES[name], year) if name in OFFICIAL_NAMES and covers(year) else None
    if official is not None or where == "official":
        return official
    if isinstance(where, tuple):
        first = date(year, *where)
    elif year in SPRING_FESTIVAL:
        first = SPRING_FESTIVAL[year] - timedelta(days=1 if where == "eve" else 0)
    else:
        return None
    return first, first + timedelta(days=length - 1)


def _with_suffix(p: _Piece, suffix: str | None) -> _Piece:
    """X前 / X后 — see the module docstring for why spans and days differ."""
    span = p.last is not None or p.kind == "holiday"
    if suffix == "前":
        day = p.first - timedelta(days=1) if span else p.first
        return replace(p, first=day, last=None, deadline=True, kind="day")
    if suffix == "后" and span:
        # After days off means back at work: 元旦后 on a Friday 1月1日 is Monday, not Saturday.
        day = STATUTORY.next_workday(_piece_end(p) + timedelta(days=1)) if p.kind == "holiday" else p.first
        return replace(p, first=day, last=None, kind="day")
    return p


def _suffixed(p: _Piece, suffix: str, today: date) -> _Piece:
    """X前 of a bare form that has passed means the next X (周末前 said on Saturday → next Friday)."""
    q = _with_suffix(p, suffix)
    if _piece_end(q) < today and p.again:
        first = _roll(p.first, p.again)
        last = _roll(p.last, p.again) if p.last else None
        q = _with_suffix(replace(p, first=first, last=last), suffix)
    return q


def _holiday_piece(name: str, suffix: str | None, floor: date) -> _Piece | None:
    """The next holiday whose (suffixed) date is not before floor; 国庆 on 10月3日 is this one."""
    for year in (floor.year, floor.year + 1):
        span = _holiday_span(name, year)
        if span is None:
            continue
        p = _with_suffix(_Piece(span[0], span[1] if span[1] != span[0] else None, kind="holiday"),
                         suffix)
        if _piece_end(p) >= floor:
            return p
    return None


def _holiday(m: re.Match, ctx: _Ctx, floor: date) -> _Piece | None:
    return _holiday_piece(m[1], m[4], floor)


def _any_holiday(m: re.Match, ctx: _Ctx, floor: date) -> _Piece | None:
    """节后 / 节前 / 假期后: the holiday we are in or the next one."""
    block = STATUTORY.next_holiday(floor)
    if block is None:
        return None
    return _with_suffix(_Piece(block[0], block[1], kind="holiday"), m[3])


def _year_part(m: re.Match, ctx: _Ctx, floor: date) -> _Piece | None:
    """年底 / 年内 (deadline), 年初 (the next 1月1日), 年前 / 年后 (Spring Festival, as people mean)."""
    part = m[1]
    if part in ("底", "末", "内"):
        return _Piece(date(floor.year, 12, 31), deadline=True)
    if part == "初":
        return _Piece(_future(date(floor.year, 1, 1), floor, "year") or floor)
    return _holiday_piece("春节", part, floor)


OFFSET_UNITS = {"天": "day", "日": "day", "周": "week", "星期": "week", "礼拜": "week", "月": "month",
                "年": "year", "小时": "hour", "钟头": "hour", "分钟": "minute", "工作日": "workday"}


def _add_workdays(d: date, n: int) -> date:
    """Official working days: 3个工作日后 said before 国庆 lands after it."""
    return STATUTORY.add(d, n)


def _offset(m: re.Match, ctx: _Ctx, floor: date) -> _Piece | None:
    """三天后, 过两天, 两周后, 一个月后, 半年后, 三天内 (deadline), 两小时后 (a moment)."""
    passing, count, ge, half, unit, suffix = m[1], m[2], m[3], m[4], OFFSET_UNITS[m[5]], m[6] or ""
    if not passing and not suffix:
        return None  # 三天 alone is a duration (请假三天), not a date
    if unit == "month" and not ge and count != "半":
        return None  # 3月后 is "after March"; months counted take 个 (三个月后)
    n = 0.5 if count == "半" else _int(count)
    if n is None:
        return None
    n += 0.5 if half else 0
    sign = -1 if "前" in suffix else 1
    deadline = "内" in suffix
    if unit in ("hour", "minute"):
        minutes = n * (60 if unit == "hour" else 1) * sign
        moment = (ctx.now + timedelta(minutes=minutes)).replace(second=0, microsecond=0)
        return _Piece(moment.date(), instant=moment, deadline=deadline)
    if unit == "workday":
        if n != int(n):
            return None
        return _Piece(_add_workdays(ctx.today, int(n) * sign), deadline=deadline)
    if unit in ("month", "year"):
        months = n * (12 if unit == "year" else 1)
        whole = int(months)
        d = _add_months(ctx.today, whole * sign) + timedelta(days=round((months - whole) * 30) * sign)
        return _Piece(d, deadline=deadline)
    if n != int(n):
        return None  # 半天后: too vague for a date
    days = int(n) * (7 if unit == "week" else 1)
    return _Piece(ctx.today + timedelta(days=days * sign), deadline=deadline)


# After a month: a day (3号), a part (初 中 底 末 内 — but 中旬 is a ten-day third), or 上/中/下旬.
_PART = r"([初中底末内])(?!旬)"
_XUN = r"([上中下])旬"
_MONTH_TAIL = rf"(?:\s*({NUM})\s*[日号]?|{_PART}|{_XUN})?"

# Order matters only for ties (same start, same length): the earlier rule wins.
RULES: list[tuple[re.Pattern[str], Handler]] = [
    (re.compile(r"(?<!\d)(\d{4})\s*[-/.]\s*(\d{1,2})\s*[-/.]\s*(\d{1,2})(?!\d)\s*[日号]?"), _ymd),
    (re.compile(rf"(?<!\d)(\d{{4}})\s*年\s*({NUM})\s*月份?{_MONTH_TAIL}"), _year_month),
    (re.compile(rf"(去年|今年|明年|后年)(?:({NUM})月份?{_MONTH_TAIL}|年?([初底末内]))?"), _year_word),
    (re.compile(rf"{_NB}({NUM})\s*月份?{_MONTH_TAIL}"), _month_day),
    (re.compile(r"(?<![\d./:\-A-Za-z])(\d{1,2})[./](\d{1,2})(?![\d./:%])"), _num_date),
    (re.compile(rf"(下下|下|这|本|上)个?月(?:({NUM})[日号]|{_PART}|{_XUN})?"), _rel_month),
    (re.compile(rf"月{_PART}|月{_XUN}"), _month_part),
    (re.compile(rf"{_NB}({NUM})\s*[日号](?![{NOT_DAY_AFTER}])"), _day_of_month),
    # (?<!…): 一周三次 is "three times a week", not Wednesday
    (re.compile(rf"(?<![\d{_CN}])(下下个?|下个?|上上个?|上个?|本|这个?)?{WEEK_WORD}([一二三四五六日天]|[1-7](?!\d))"),
     _weekday),
    (re.compile(rf"(下下个?|下个?|上上个?|上个?|本|这个?){WEEK_WORD}(内)?"), _week),
    (re.compile(r"(下下个?|下个?|上个?|本|这个?)?周末"), _weekend),
    (re.compile("|".join(sorted(DAY_WORDS, key=len, reverse=True))), _day_word),
    (re.compile(rf"(元旦|春节|过年|除夕|大年三十|劳动节|国庆节|国庆|中秋节|中秋|端午节|端午|清明节|清明"
                rf"|{_NB}五一(?![路街村号个点日天元块月]|广场|大道|公园)"
                rf"|{_NB}十一(?=之?[前后]|以[前后]|假|长假|期间|黄金周))"
                rf"(假期|长假|黄金周|期间|节)?{_SUFFIX}?"), _holiday),
    (re.compile(rf"(节假日|节日|节|假期|长假|放假){_SUFFIX}"), _any_holiday),
    (re.compile(rf"(?<![\d{_CN}今明去后前新周当那这每])年([底末初内])"), _year_part),
    (re.compile(rf"(?<![\d{_CN}今明去后前新周当那这每过])年([前后])(?![{_AFFIX_BLOCK}])"), _year_part),
    (re.compile(rf"(过)?\s*({_NB}{NUM3}|半)\s*(个)?(半)?\s*(工作日|天|日|周|星期|礼拜|月|年|小时|钟头|分钟)"
                r"(以后|之后|过后|后|以内|之内|内|以前|之前|前)?(?![天后台面续端期往去来进])"), _offset),
]

# ---------------------------------------------------------------- clock times

_CLOCK = re.compile(
    rf"(?:(?P<p>{PERIOD})\s*)?"
    rf"(?:{_NB}(?P<h>\d{{1,2}}|[零一二两三四五六七八九十]{{1,3}})\s*(?P<u>[点时])"
    # minutes: 半 / 一刻 / 15 / 十五 / 05 / 5分 — a lone 五 is left alone (三点五 is 3.5)
    rf"(?:\s*(?P<r>半|一刻|三刻|整|钟)"
    rf"|\s*(?P<mi>\d{{2}}|[一二三四五]?十[一二三四五六七八九]?|[零〇][一二三四五六七八九]"
    rf"|(?:\d|[一二三四五六七八九])(?=\s*分))\s*分?)?"
    rf"|(?<![\d:])(?P<hh>\d{{1,2}}):(?P<mm>\d{{2}})(?!\d))"
    rf"|(?P<alone>{PERIOD})"
)
NIGHT_PERIODS = {"晚上", "晚间", "夜里", "夜间"}
MEASURE_WORDS = "个位人家次场件"


def _hour_of(period: str | None, hour: int) -> int:
    """下午3点 → 15, 晚上12点 → 24, 中午1点 → 13, a bare 1–6点 → afternoon."""
    if period in PM_PERIODS:
        if hour < 12:
            return hour + 12
        return 24 if hour == 12 and period in NIGHT_PERIODS else hour
    if period == "中午":
        return hour + 12 if 1 <= hour <= 3 else hour
    if period is None and 1 <= hour <= 6:
        return hour + 12
    return hour


def _looks_numeric_after(after: str) -> bool:
    """三点五万 / 3点5 continue a number; 3点三个人 does not."""
    if after[:1].isdigit():
        return True
    return bool(after[:1]) and after[0] in _CN_DIGITS and after[1:2] not in tuple(MEASURE_WORDS)


def _clock(m: re.Match, implied: str | None, attached: bool) -> int | None:
    """Minute of day for a clock match, or None when it is not a time after all."""
    if m["alone"]:
        return PERIOD_DEFAULT.get(m["alone"])
    period = m["p"] or implied
    if m["hh"]:  # 15:30, 下午3:30
        hour, minute = int(m["hh"]), int(m["mm"])
        if hour > 23 or minute > 59:
            return None
        return _hour_of(period, hour) * 60 + minute
    hour = _int(m["h"])
    after = m.string[m.end():]
    if hour is None or hour > 24 or _looks_numeric_after(after) or after.startswith(POINT_NOUNS):
        return None
    # 时 after a Chinese numeral is mostly not a clock (一时半会儿); 15时 / 下午3时 are.
    if m["u"] == "时" and not (m["p"] or m["h"].isdigit()):
        return None
    # 一点 alone is "a bit" (便宜一点); a part of day, a date or minutes make it a time.
    if m["h"] == "一" and not (m["p"] or attached or m["r"] or m["mi"]):
        return None
    minute = {"半": 30, "一刻": 15, "三刻": 45}.get(m["r"] or "", 0)
    if m["mi"]:
        minute = _int(m["mi"].lstrip("零〇") or "0")
        if minute is None or minute > 59:
            return None
    if hour == 24 and minute:
        return None
    return _hour_of(period, hour) * 60 + minute


# ---------------------------------------------------------------- assembling a When

def _first_date(s: str, ctx: _Ctx) -> tuple[re.Match, _Piece] | None:
    """Leftmost, then longest, date rule match whose handler accepts it."""
    found = [(rx, h, rx.search(s)) for rx, h in RULES]
    while True:
        live = [(m.start(), -m.end(), i) for i, (_, _, m) in enumerate(found) if m]
        if not live:
            return None
        _, _, i = min(live)
        rx, handler, m = found[i]
        piece = handler(m, ctx, ctx.today)
        if piece is not None:
            return m, piece
        found[i] = (rx, handler, rx.search(s, m.start() + 1))


def _date_at(s: str, pos: int, ctx: _Ctx, floor: date) -> tuple[int, _Piece] | None:
    """The longest date rule match starting exactly at pos (the end of a range)."""
    best: tuple[int, _Piece] | None = None
    for rx, handler in RULES:
        m = rx.match(s, pos)
        if m and (best is None or m.end() > best[0]):
            piece = handler(m, ctx, floor)
            if piece is not None:
                best = (m.end(), piece)
    return best


def _first_clock(s: str, before: int) -> tuple[re.Match, int] | None:
    pos = 0
    while True:
        m = _CLOCK.search(s, pos)
        if not m or m.start() >= before:
            return None
        minute = _clock(m, None, attached=False)
        if minute is not None:
            return m, minute
        pos = m.start() + 1


def _attach_time(s: str, pos: int, p: _Piece) -> int:
    """Read a clock time right after a date (下周三下午, 明天 15:30, 今晚8点); return the new end."""
    if p.last or p.instant:
        return pos
    glue = _GLUE.match(s, pos)
    m = _CLOCK.match(s, glue.end())
    minute = _clock(m, p.period, attached=True) if m else None
    if minute is not None:
        p.minute = minute
        return m.end()
    if p.period:
        p.minute = PERIOD_DEFAULT[p.period]
    return pos


def _roll_if_passed(p: _Piece, ctx: _Ctx) -> None:
    """A bare form resolved to today whose time has already gone means the next one."""
    if p.roll and p.minute is not None and _at(p.first, p.minute, ctx) <= ctx.now:
        p.first = _roll(p.first, p.roll)


def _at(d: date, minute: int, ctx: _Ctx) -> datetime:
    return datetime.combine(d, time(), ctx.now.tzinfo) + timedelta(minutes=minute)


def _start_dt(p: _Piece, ctx: _Ctx) -> datetime:
    if p.instant is not None:
        return p.instant
    return _at(p.first, p.minute or 0, ctx)


def _range_end(s: str, pos: int, start: _Piece, ctx: _Ctx) -> tuple[int, _Piece] | None:
    """明天到周五 / 周一至周三 / 11月1日-3日 / 下午2点到4点: the end, never before the start."""
    conn = _CONNECTOR.match(s, pos)
    if start.instant is not None:
        return None
    if not conn:
        return _loose_range_end(s, pos, start, ctx)
    at = conn.end()
    end = _date_at(s, at, ctx, start.first)
    if end:
        stop, piece = end
        stop = _attach_time(s, stop, piece)
        return stop, piece
    m = _CLOCK.match(s, at)
    if m and start.minute is not None:
        minute = _clock(m, None, attached=True)
        if minute is None:
            return None
        if minute <= start.minute and minute < 12 * 60:
            minute += 12 * 60  # 晚上7点到9点 → 21:00
        if minute <= start.minute:
            minute += 24 * 60  # 晚上10点到凌晨2点 → next day
        return m.end(), _Piece(start.first, minute=minute)
    return None


_LOOSE_CONNECTOR = re.compile(r"[\s，,]*(走|出发|、|和|)[\s，,]*")
_WEEKDAY_DIGITS = "一二三四五六日"


def _loose_range_end(s: str, pos: int, start: _Piece, ctx: _Ctx) -> tuple[int, _Piece] | None:
    """A span said without 到: 周二走周四回 and 周三 … 周五回来 (a trip), 周四周五 and 周四、周五 (two days in a row),
    下周一二 (the same week's second day). Two days that are not next to each other (周一和周三)
    are two days, not a span: only the first is taken."""
    if start.minute is not None or start.last is not None:
        return None
    m = _LOOSE_CONNECTOR.match(s, pos)
    word, at = m.group(1), m.end()
    after_weekday = pos >= 2 and s[pos - 1] in _WEEKDAY_DIGITS and s[pos - 2] in "周期拜"
    digit = s[at:at + 1]
    if after_weekday and not word and digit and digit in _WEEKDAY_DIGITS and s[at + 1:at + 2] not in _WEEKDAY_DIGITS + "十号日点":
        gap = _WEEKDAY_DIGITS.index(digit) - start.first.weekday()
        return (at + 1, _Piece(start.first + timedelta(days=gap))) if gap > 0 else None
    end = _date_at(s[at:], 0, ctx, start.first)  # cut: 周四周五 has no boundary before 周五
    if not end:
        return None
    stop, piece = end[0] + at, end[1]
    back = s[stop:stop + 1] == "回"  # 下周三去杭州 周五回来: the day back ends the trip
    if piece.last is None and (word in ("走", "出发") or back or (piece.first - start.first).days == 1):
        return stop, piece
    return None


def next_when(text: str, now: datetime, tz: str = "Asia/Shanghai") -> When | None:
    """The time a visit note names for the next step. 聊了年底的采购计划，下周一再跟进 means 下周一:
    the clause that says 再 / 跟进 / 联系 wins over a date mentioned earlier; otherwise the first."""
    for clause in re.split(r"[，,。；;！!?？\s]+", text or ""):
        if _NEXT_CUE.search(clause):
            found = parse_when(clause, now, tz)
            if found is not None:
                return found
    return parse_when(text, now, tz)


_NEXT_CUE = re.compile(r"再|跟进|联系|回访|复访|约|提醒|回复|答复|确认|签约|下次")


def _build(text: str, begin: int, stop: int, p: _Piece, end: _Piece | None, ctx: _Ctx) -> When:
    raw = text[begin:stop]
    if end is not None:
        timed = p.has_time and end.has_time and not end.last
        if not timed:
            p.minute = None
        end_dt = _start_dt(end, ctx) if timed else _at(_piece_end(end), 0, ctx)
        start_dt = _start_dt(p, ctx) if timed else _at(p.first, 0, ctx)
        # 下周五到本周一 ends before it starts as written: keep the start only.
        if end_dt >= start_dt:
            return When(start_dt, end_dt, timed, False, raw.strip())
    last = _at(p.last, 0, ctx) if p.last else None
    return When(_start_dt(p, ctx), last, p.has_time, p.deadline, raw.strip())


def _localise(now: datetime, tz: str) -> datetime:
    zone = ZoneInfo(tz)
    return now.replace(tzinfo=zone) if now.tzinfo is None else now.astimezone(zone)


def parse_when(text: str, now: datetime, tz: str = "Asia/Shanghai") -> When | None:
    """The first date/time expression in free text, resolved for scheduling (see module doc)."""
    if not text:
        return None
    now = _localise(now, tz)
    ctx = _Ctx(now, now.date())
    s = blank_urls(text.translate(_FULLWIDTH))  # same length: positions found are positions in `text`
    hit = _first_date(s, ctx)
    clock = _first_clock(s, hit[0].start() if hit else len(s))
    if clock is not None:  # 下午3点 / 3点半 with no date: today, or tomorrow if that time has gone
        m, minute = clock
        p = _Piece(ctx.today, minute=minute, roll="day")
        stop = m.end()
    elif hit is not None:
        m, p = hit
        stop = _attach_time(s, m.end(), p)
    else:
        return None
    _roll_if_passed(p, ctx)
    suffix = _SUFFIX_RE.match(s, stop)
    if suffix:
        p = _suffixed(p, suffix[2], ctx.today)
        stop = suffix.end()
    end = _range_end(s, stop, p, ctx)
    if end and clock is not None and (end[1].last or end[1].first != p.first):
        end = None  # a time range stays within its day
    if end:
        stop, end_piece = end
        return _build(text, m.start(), stop, p, end_piece, ctx)
    return _build(text, m.start(), stop, p, None, ctx)


# ---------------------------------------------------------------- for callers

_POINT_NOUNS_RX = "|".join(POINT_NOUNS)
# Broader than the parser on purpose: vague words (过几天, 改天, 回头) and things we cannot date
# (中秋后). Narrower than single characters, so 周总 (a surname), 点了外卖, 三个人 and 王月 are not.
_TIME_WORD = re.compile(
    rf"(?<!第)(?!一点){NUM3}\s*个?半?\s*(?:天|日|号(?![{NOT_DAY_AFTER}])|点(?!{_POINT_NOUNS_RX})|时|月|年|周|星期"
    rf"|礼拜|小时|分钟|工作日)"
    rf"|[今明后昨前]天|[今明][早晚日]|[上下本这]个?(?:周|星期|礼拜|月)|{WEEK_WORD}[一二三四五六日天末1-7]"
    r"|月[初中底末内]|年[初中底末内前后]|[上下中]午|早上|早晨|晚上|傍晚|凌晨|今年|明年|去年"
    r"|几[天号点时月周]|几个(?:月|星期|礼拜|小时|工作日)|哪天|改天|回头|过阵子|过段时间|过些天|这几天"
    r"|近期|下次|稍后|晚点|晚些|早点|早些|尽快|之后|以后|之前|以前|节前|节后|假期"
    r"|元旦|春节|过年|除夕|劳动节|五一(?!路|街|广场|大道|公园)|国庆|十一[前后]|中秋|端午|清明|元宵|\d{1,2}:\d{2}"
)


def has_time_word(text: str) -> bool:
    """A word about time is present, parseable or not (过几天, 改天, 中秋后): the caller should ask
    rather than guess when parse_when gives None."""
    if not text:
        return False
    if _TIME_WORD.search(blank_urls(text.translate(_FULLWIDTH))):
        return True
    # Anything the parser understands is a time word too (2026-12-03, 12.3, 半小时后).
    return parse_when(text, datetime.now(ZoneInfo("Asia/Shanghai"))) is not None


WEEKDAY_NAMES = "一二三四五六日"


def _day_label(d: datetime, now: datetime) -> str:
    year = f"{d.year}年" if d.year != now.year else ""
    return f"{year}{d.month}月{d.day}日(周{WEEKDAY_NAMES[d.weekday()]})"


def describe(when: When, now: datetime) -> str:
    """Echo for confirmation cards: 11月25日(周三) 14:00 · 11月30日(周一) 前 · A 至 B."""
    now = now.astimezone(when.start.tzinfo) if now.tzinfo else now
    out = _day_label(when.start, now)
    if when.has_time:
        out += f" {when.start:%H:%M}"
    if when.end is not None:
        if when.has_time and when.end.date() == when.start.date():
            out += f" 至 {when.end:%H:%M}"
        else:
            out += f" 至 {_day_label(when.end, now)}"
            if when.has_time:
                out += f" {when.end:%H:%M}"
    if when.deadline:
        out += " 前"
    return out


_EDGE_PUNCT = " ，,。；;、:：\t"


def strip_when(text: str, when: When) -> str:
    """The text without the understood phrase: "聊了报价 下周三再跟进" → "聊了报价 再跟进"."""
    i = text.find(when.text) if when.text else -1
    if i < 0:
        return text
    left, right = text[:i], text[i + len(when.text):]
    spaced = left[-1:].isspace() or right[:1].isspace()
    left, right = left.rstrip(), right.lstrip()
    joined = f"{left} {right}" if spaced and left and right else left + right
    return joined.strip(_EDGE_PUNCT)
