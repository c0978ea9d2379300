"""Console reports (/admin/reports): the sales funnel and weekly follow-ups, each for a period and a team.

Every number is counted by the database (GROUP BY), never by loading rows into Python: the tables hold
millions of follow-ups. Weeks are bucketed by ranges computed here (a CASE over the week starts), not by
a date function, so the same SQL counts alike on SQLite and PostgreSQL and in the company's time zone.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, func, literal, select
from sqlmodel import Session

from storage.models import DEAL_STAGES, Deal, Employee, FollowUp

PERIODS = {"week": "本周", "month": "本月", "quarter": "本季度", "custom": "自定义"}
MAX_DAYS = 366  # a custom period longer than a year is refused: the week columns would not fit a page
KINDS = {"funnel": "销售漏斗", "followups": "每周跟进"}


class ReportRefused(ValueError):
    """Bad filter input; the message (Chinese) names the field."""


@dataclass(frozen=True)
class Period:
    start: date  # first day, inclusive
    end: date  # last day, inclusive
    label: str

    def bounds(self, tz: str) -> tuple[datetime, datetime]:
        """[start, end+1 day) as aware datetimes in the company's zone."""
        zone = ZoneInfo(tz)
        return (datetime.combine(self.start, time(), zone),
                datetime.combine(self.end + timedelta(days=1), time(), zone))


@dataclass(frozen=True)
class Table:
    """A report: column headings, rows (first cell the row's label), and the chart data as JSON-ready."""

    title: str
    header: list[str]
    rows: list[list]
    chart: dict


def period(kind: str, today: date, since: str = "", until: str = "") -> Period:
    """The period asked for; ReportRefused names the bad field."""
    if kind == "week":
        start = today - timedelta(days=today.weekday())
        return Period(start, start + timedelta(days=6), "本周")
    if kind == "month":
        nxt = date(today.year + today.month // 12, today.month % 12 + 1, 1)
        return Period(today.replace(day=1), nxt - timedelta(days=1), "本月")
    if kind == "quarter":
        first = (today.month - 1) // 3 * 3 + 1
        nxt = date(today.year + (first + 3 > 12), (first + 2) % 12 + 1, 1)
        return Period(date(today.year, first, 1), nxt - timedelta(days=1), "本季度")
    if kind != "custom":
        raise ReportRefused(f"时间段「{kind[:20]}」不认识（本周、本月、本季度或自定义）")
    days = {}
    for name, value, label in (("since", since, "开始日期"), ("until", until, "结束日期")):
        try:
            days[name] = date.fromisoformat(value)
        except ValueError:
            raise ReportRefused(f"{label}「{value[:20]}」不是日期（例如 2026-11-21）") from None
    if days["since"] > days["until"]:
        raise ReportRefused("开始日期晚于结束日期")
    if (days["until"] - days["since"]).days >= MAX_DAYS:
        raise ReportRefused("自定义时间段最长一年")
    return Period(days["since"], days["until"], f"{days['since']} 至 {days['until']}")


def _names(session: Session, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    return dict(session.execute(select(Employee.id, Employee.name).where(Employee.id.in_(ids))).all())


def _in_team(column, team: frozenset[int] | None):
    return literal(True) if team is None else column.in_(sorted(team))


def funnel(session: Session, when: Period, *, team: frozenset[int] | None, tz: str) -> Table:
    """Deals created in the period, by stage and owner: how many and their amount."""
    start, end = when.bounds(tz)
    rows = session.execute(
        select(Deal.stage, Deal.owner_id, func.count(), func.coalesce(func.sum(Deal.amount), 0))
        .where(Deal.created_at >= start, Deal.created_at < end, _in_team(Deal.owner_id, team))
        .group_by(Deal.stage, Deal.owner_id)).all()
    names = _names(session, {r[1] for r in rows})
    owners = sorted({names.get(r[1], f"#{r[1]}") for r in rows})
    count = {(s, names.get(o, f"#{o}")): n for s, o, n, _ in rows}
    amount: dict[str, float] = {}
    for stage, _owner, _n, total in rows:
        amount[stage] = amount.get(stage, 0) + float(total)
    stages = list(DEAL_STAGES) + sorted({r[0] for r in rows} - set(DEAL_STAGES))
    table = [[s, *[count.get((s, o), 0) for o in owners], sum(count.get((s, o), 0) for o in owners),
              f"{amount.get(s, 0):.2f}"] for s in stages]
    chart = {"type": "funnel", "categories": stages, "series": [
        {"name": o, "data": [count.get((s, o), 0) for s in stages]} for o in owners]}
    return Table("销售漏斗（本期新建的商机，按阶段和负责人）", ["阶段", *owners, "合计", "金额（元）"], table, chart)


def week_starts(when: Period) -> list[date]:
    """The Monday of every week the period touches."""
    first = when.start - timedelta(days=when.start.weekday())
    return [first + timedelta(weeks=i) for i in range((when.end - first).days // 7 + 1)]


def followups(session: Session, when: Period, *, team: frozenset[int] | None, tz: str) -> Table:
    """Follow-ups per rep per week (weeks start on Monday, in the company's time zone)."""
    start, end = when.bounds(tz)
    zone = ZoneInfo(tz)
    weeks = week_starts(when)
    # Week i covers [weeks[i], weeks[i+1]); the CASE tests the latest start first.
    bucket = case(*[(FollowUp.happened_at >= datetime.combine(w, time(), zone), i)
                    for i, w in reversed(list(enumerate(weeks)))], else_=0)
    rows = session.execute(
        select(FollowUp.employee_id, bucket.label("week"), func.count())
        .where(and_(FollowUp.happened_at >= start, FollowUp.happened_at < end), _in_team(FollowUp.employee_id, team))
        .group_by(FollowUp.employee_id, bucket)).all()
    names = _names(session, {r[0] for r in rows})
    people = sorted({names.get(r[0], f"#{r[0]}") for r in rows})
    count: dict[tuple[str, int], int] = {}
    for person, week, n in rows:
        key = (names.get(person, f"#{person}"), int(week))
        count[key] = count.get(key, 0) + n
    labels = [f"{w.month}/{w.day}周" for w in weeks]
    table = [[p, *[count.get((p, i), 0) for i in range(len(weeks))], sum(count.get((p, i), 0)
              for i in range(len(weeks)))] for p in people]
    chart = {"type": "bar", "categories": labels, "series": [
        {"name": p, "data": [count.get((p, i), 0) for i in range(len(weeks))]} for p in people]}
    return Table("每周跟进（每位销售每周记录的跟进数）", ["销售", *labels, "合计"], table, chart)


BUILDERS = {"funnel": funnel, "followups": followups}


def build(session: Session, kind: str, when: Period, *, team: frozenset[int] | None, tz: str) -> Table:
    return BUILDERS[kind](session, when, team=team, tz=tz)


def csv_bytes(table: Table) -> bytes:
    """The table as CSV with a BOM, so Excel opens the Chinese right."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(table.header)
    writer.writerows(table.rows)
    return ("\ufeff" + out.getvalue()).encode("utf-8")
