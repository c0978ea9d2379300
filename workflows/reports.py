"""Console reports (/admin/reports): the period and team filters, the sales funnel and weekly follow-ups,
and each report as CSV or XLSX (the other reports are in workflows/report_kinds.py).

Every number is counted by the database (GROUP BY), never by loading rows into Python: the tables hold
millions of follow-ups. Weeks (and months) are bucketed by ranges computed here (CASEs over their
starts, `bucket_of`), not by a date function, so the same SQL counts alike on SQLite and PostgreSQL
and in the company's time zone.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, func, literal, select
from sqlmodel import Session

from storage.models import DEAL_STAGES, Deal, Employee, FollowUp
from workflows import audit, console, export

PERIODS = {"week": "本周", "month": "本月", "quarter": "本季度", "custom": "自定义"}
FILTERS = ("period", "since", "until", "team")
NUMBER = re.compile(r"-?\d+(\.\d+)?")
MAX_DAYS = 366  # a custom period longer than a year is refused: the week columns would not fit a page


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
    note: str = ""  # how the numbers are counted, shown under the title
    also: tuple["Table", ...] = ()  # further tables on the same page (and sheets in the XLSX)


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


def names_of(session: Session, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    return dict(session.execute(select(Employee.id, Employee.name).where(Employee.id.in_(ids))).all())


def in_team(column, team: frozenset[int] | None):
    return literal(True) if team is None else column.in_(sorted(team))


def funnel(session: Session, when: Period, *, team: frozenset[int] | None, tz: str) -> Table:
    """Deals created in the period, by stage and owner: how many and their amount."""
    start, end = when.bounds(tz)
    rows = session.execute(
        select(Deal.stage, Deal.owner_id, func.count(), func.coalesce(func.sum(Deal.amount), 0))
        .where(Deal.created_at >= start, Deal.created_at < end, in_team(Deal.owner_id, team))
        .group_by(Deal.stage, Deal.owner_id)).all()
    names = names_of(session, {r[1] for r in rows})
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


def bucket_of(column: Any, starts: list) -> Any:
    """The index of the last of `starts` (ascending) at or before `column`, 0 before them all — as
    nested CASEs that halve the range, so a row costs ~log2(n) comparisons, not n: over a year of
    follow-ups (53 weeks, a million rows) a flat CASE was most of the report's time."""
    def node(lo: int, hi: int) -> Any:
        if hi - lo == 1:
            return literal(lo)
        mid = (lo + hi) // 2
        return case((column >= starts[mid], node(mid, hi)), else_=node(lo, mid))
    return node(0, len(starts))


def followups(session: Session, when: Period, *, team: frozenset[int] | None, tz: str) -> Table:
    """Follow-ups per rep per week (weeks start on Monday, in the company's time zone)."""
    start, end = when.bounds(tz)
    zone = ZoneInfo(tz)
    weeks = week_starts(when)
    # Week i covers [weeks[i], weeks[i+1]).
    bucket = bucket_of(FollowUp.happened_at, [datetime.combine(w, time(), zone) for w in weeks])
    rows = session.execute(
        select(FollowUp.employee_id, bucket.label("week"), func.count())
        .where(and_(FollowUp.happened_at >= start, FollowUp.happened_at < end), in_team(FollowUp.employee_id, team))
        .group_by(FollowUp.employee_id, bucket)).all()
    names = names_of(session, {r[0] for r in rows})
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


def csv_bytes(table: Table) -> bytes:
    """The table (and any further ones, after a blank line) as CSV with a BOM, so Excel opens the
    Chinese right."""
    out = io.StringIO()
    writer = csv.writer(out)
    for n, part in enumerate((table, *table.also)):
        if n:
            writer.writerows([[], [part.title]])
        writer.writerow(part.header)
        writer.writerows([export.csv_cell(v) for v in row] for row in part.rows)
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def xlsx_bytes(table: Table, name: str) -> bytes:
    """The table as an XLSX workbook, one sheet per table, written as the data exports are."""
    out = io.BytesIO()
    sheets = [(name if n == 0 else f"{name}{n + 1}", part.header, ([_number(v) for v in row] for row in part.rows))
              for n, part in enumerate((table, *table.also))]
    export.write_sheets(sheets, out)
    return out.getvalue()


def record_export(session: Session, *, actor: Employee, what: str, fmt: str, asked: dict[str, str],
                  at: datetime) -> None:
    """A downloaded report leaves an audit row, as the data exports do: who took which numbers."""
    audit.record(session, actor=actor, action="export", subject="report", platform="web", at=at,
                 detail={"what": f"报表：{what}", "format": fmt, "filters": asked})


def _number(cell):
    """A figure the page shows as text ("1700.00", "4.5") is a number in the spreadsheet, to sum."""
    return Decimal(cell) if isinstance(cell, str) and NUMBER.fullmatch(cell) else cell


# -- whose numbers ---------------------------------------------------------------------------------


def scope(session: Session, viewer_team: frozenset[int] | None, wanted: str) -> frozenset[int] | None:
    """The people a report counts: the viewer's own scope (None: everyone), narrowed by the team
    picker's value — "<id>" a manager's team (them and everyone below), "dept:<name>" a department.
    Never wider than the viewer's scope. ReportRefused names a bad value."""
    if not wanted:
        return viewer_team
    if wanted.isdigit():
        manager = session.get(Employee, int(wanted))
        if manager is None:
            raise ReportRefused(f"团队「{wanted[:20]}」：没有这位经理")
        narrowed = frozenset(console.team_below(session, manager.id) | {manager.id})
    elif wanted.startswith("dept:") and wanted[5:]:
        narrowed = frozenset(session.execute(select(Employee.id).where(Employee.department == wanted[5:])).scalars())
        if not narrowed:
            raise ReportRefused(f"团队「{wanted[5:25]}」：没有这个部门")
    else:
        raise ReportRefused(f"团队「{wanted[:20]}」不认识（请从列表里选）")
    return narrowed if viewer_team is None else viewer_team & narrowed


def team_choices(session: Session, viewer_team: frozenset[int] | None) -> list[tuple[str, str]]:
    """The team picker: every manager with someone reporting to them, then every department, each
    within what the viewer may see."""
    managers = select(Employee.manager_id).where(Employee.manager_id.is_not(None), Employee.active)
    rows = session.execute(select(Employee.id, Employee.name).where(Employee.id.in_(managers),
                                                                     in_team(Employee.id, viewer_team))
                           .order_by(Employee.name)).all()
    depts = session.execute(select(Employee.department).where(Employee.department != "", Employee.active,
                                                               in_team(Employee.id, viewer_team))
                            .group_by(Employee.department).order_by(Employee.department)).scalars()
    return [(str(i), f"{name}的团队") for i, name in rows] + [(f"dept:{d}", f"部门：{d}") for d in depts]
