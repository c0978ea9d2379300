"""One message → a request draft: `报销 出租车 86.5`, `请假 年假 下周一到周三 回老家`,
`出差 上海 下周二到周四 预算3000`, `采购 笔记本电脑 2台 12000`, `申请 借用投影仪`.

Whatever is missing comes back as a question (`Missing`), never a guess: an expense needs an
amount, a leave needs dates. The understood values are echoed on the confirmation card.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from workflows.amounts import find_amount
from workflows.when import When, parse_when, strip_when
from workflows.workdays import STATUTORY, Workdays

TYPE_WORDS = {"报销": "报销", "请假": "请假", "休假": "请假", "出差": "出差", "采购": "采购", "购买": "采购",
              "申请": "通用", "通用申请": "通用"}
LEAVE_KINDS = ("年假", "病假", "事假", "调休", "婚假", "产假", "陪产假", "丧假", "育儿假")
MONEY_WORDS = re.compile(r"(?:预算|金额|共计|合计|总共|一共)[:：]?")


@dataclass(frozen=True)
class Draft:
    type: str
    summary: str  # what the card says in one line
    amount: Decimal | None = None
    details: dict[str, Any] = field(default_factory=dict)  # category, reason, start, end, days, place, item

    def facts(self) -> dict[str, Any]:
        """What routing conditions may look at."""
        return {"amount": self.amount, "days": self.details.get("days"), "category": self.details.get("category")}


@dataclass(frozen=True)
class Missing:
    type: str
    question: str  # asked in the chat, with an example


def parse_request(text: str, now: datetime, tz: str, workdays: Workdays = STATUTORY) -> Draft | Missing | None:
    """None if `text` does not start with a request word. Leave days are counted on `workdays`."""
    word = next((w for w in sorted(TYPE_WORDS, key=len, reverse=True) if text.startswith(w)), None)
    if word is None:
        return None
    kind, rest = TYPE_WORDS[word], text[len(word):].strip()
    if kind == "请假":
        return _leave(rest, now, tz, workdays)
    return {"报销": _expense, "出差": _trip, "采购": _purchase, "通用": _general}[kind](rest, now, tz)


def working_days(first: date, last: date, workdays: Workdays = STATUTORY) -> int:
    """Working days between the two days, both included: 国庆 is not leave, a 调休 Saturday is."""
    return workdays.count(first, last)


def _expense(rest: str, now: datetime, tz: str) -> Draft | Missing:
    amount, words = _without_amount(rest)
    if amount is None or amount <= 0:
        return Missing("报销", "报销多少钱？一句话说完就行，比如「报销 出租车 86.5」。")
    category = words or "其他"
    return Draft(type="报销", summary=f"{category} {amount.normalize():f}元", amount=amount,
                 details={"category": category[:32]})


def _leave(rest: str, now: datetime, tz: str, workdays: Workdays) -> Draft | Missing:
    kind = next((k for k in LEAVE_KINDS if k in rest), "事假")
    when = parse_when(rest, now, tz)
    if when is None:
        return Missing("请假", "请几号到几号？比如「请假 年假 下周一到周三」。")
    first, last = _span_days(when, tz)
    reason = _strip(strip_when(rest, when).replace(kind, ""))
    days = working_days(first, last, workdays)
    if days == 0:
        span = _day(first) if first == last else f"{_day(first)}到{_day(last)}"
        return Missing("请假", f"{span}{_days_off(first, workdays)}，不用请假。要请哪几天？")
    return Draft(type="请假", summary=f"{kind} {days}天", details={
        "category": kind, "start": first.isoformat(), "end": last.isoformat(), "days": days, "reason": reason[:64]})


def _days_off(first: date, workdays: Workdays) -> str:
    name = workdays.holiday_name(first)
    if name == "公司假日":
        return "是公司假日"
    return f"是{name}假期" if name else "是休息日"


def _trip(rest: str, now: datetime, tz: str) -> Draft | Missing:
    when = parse_when(rest, now, tz)
    if when is None:
        return Missing("出差", "哪天去、哪天回？比如「出差 上海 下周二到周四 预算3000」。")
    first, last = _span_days(when, tz)
    budget, words = _without_amount(MONEY_WORDS.sub(" ", strip_when(rest, when)))
    place = words.split(" ")[0] or "未说地点"
    return Draft(type="出差", summary=f"{place} {(last - first).days + 1}天", amount=budget, details={
        "place": place[:32], "start": first.isoformat(), "end": last.isoformat(), "days": (last - first).days + 1})


def _purchase(rest: str, now: datetime, tz: str) -> Draft | Missing:
    amount, words = _without_amount(MONEY_WORDS.sub(" ", rest))
    if amount is None or amount <= 0:
        return Missing("采购", "采购什么、多少钱？比如「采购 笔记本电脑 2台 12000」。")
    item = words or "未说物品"
    return Draft(type="采购", summary=f"{item[:16]} {amount.normalize():f}元", amount=amount,
                 details={"item": item[:64]})


def _general(rest: str, now: datetime, tz: str) -> Draft | Missing:
    if len(rest) < 2:
        return Missing("通用", "申请什么？比如「申请 借用投影仪 周五开会用」。")
    return Draft(type="通用", summary=rest[:32], details={"reason": rest[:128]})


def _without_amount(text: str) -> tuple[Decimal | None, str]:
    """(the amount, the words around it): 报销 打车 86.5元 → (86.5, 打车)."""
    found = find_amount(text)
    if found is None:
        return None, _strip(text)
    amount, start, end = found
    return amount, _strip(text[:start] + " " + text[end:])


def _strip(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip(" ，,。.")


def _span_days(when: When, tz: str) -> tuple[date, date]:
    zone = ZoneInfo(tz)
    first = when.start.astimezone(zone).date()
    last = when.end.astimezone(zone).date() if when.end else first
    return first, max(first, last)


def _day(d: date) -> str:
    return f"{d.month}月{d.day}日"
