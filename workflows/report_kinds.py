"""The console's reports, all of them: the funnel and weekly follow-ups (workflows/reports.py) and
逾期客户 by tier, 回款 plan vs received by month and 审批时长 by type and approver (here).

Like the first two, each is counted by the database (GROUP BY over the period and the team), the
same SQL on SQLite and PostgreSQL; Python only lays the grouped numbers out as a table and a chart.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Callable
from zoneinfo import ZoneInfo

from sqlalchemy import case, func, select
from sqlmodel import Session

from storage.models import REQUEST_TYPES, ApprovalRequest, ApprovalTask, Customer, Deal, PaymentPlan
from storage.sqlexpr import hours_between
from workflows import reports, rules
from workflows.overdue import overdue_by
from workflows.reports import Period, Table, in_team, names_of

KINDS = {"funnel": "销售漏斗", "followups": "每周跟进", "overdue": "逾期客户", "payments": "回款",
         "approvals": "审批时长"}
TIERS = ("A", "B", "C")
DECIDED = ("approved", "rejected")


def build(session: Session, kind: str, when: Period, *, team: frozenset[int] | None, tz: str,
          now: datetime) -> Table:
    """Report `kind` for the period and the team (None: everyone)."""
    if kind in ("funnel", "followups"):
        return {"funnel": reports.funnel, "followups": reports.followups}[kind](session, when, team=team, tz=tz)
    return BUILDERS[kind](session, when, team=team, tz=tz, now=now)


def _total_row(label: str, rows: list[list]) -> list:
    """A 合计 row under integer columns."""
    return [label, *[sum(r[i] for r in rows) for i in range(1, len(rows[0]))]] if rows else []


# -- 逾期客户 --------------------------------------------------------------------------------------


def overdue(session: Session, when: Period, *, team: frozenset[int] | None, tz: str, now: datetime) -> Table:
    """Customers overdue (workflows/overdue.py's test: untouched for the tier's days) at the end of
    the period — or now, for a period not over yet — and still untouched, per owner and tier; and
    how many of them became overdue within the period."""
    start, end = when.bounds(tz)
    limits = rules.get(session, "crm.overdue_days")
    c = Customer.__table__
    new = case((overdue_by(c, limits, start), 0), else_=1)
    grouped = session.execute(
        select(c.c.owner_id, c.c.tier, func.count(), func.sum(new))
        .where(overdue_by(c, limits, min(now, end)), in_team(c.c.owner_id, team))
        .group_by(c.c.owner_id, c.c.tier)).all()
    names = names_of(session, {r[0] for r in grouped})
    count: dict[tuple[int, str], int] = {}
    fresh: dict[int, int] = {}
    for owner, tier, n, late in grouped:
        tier = tier if tier in TIERS else "C"  # an unknown tier counts as C, as the rule does
        count[(owner, tier)] = count.get((owner, tier), 0) + n
        fresh[owner] = fresh.get(owner, 0) + int(late)
    owners = sorted(fresh, key=lambda o: (-sum(count.get((o, t), 0) for t in TIERS), names.get(o, "")))
    rows = [[names.get(o, f"#{o}"), *[count.get((o, t), 0) for t in TIERS],
             sum(count.get((o, t), 0) for t in TIERS), fresh[o]] for o in owners]
    chart = {"type": "bar", "stack": True, "categories": [r[0] for r in rows],
             "series": [{"name": f"{t}级", "data": [r[1 + i] for r in rows]} for i, t in enumerate(TIERS)]}
    days = "、".join(f"{t}级 {limits.get(t, limits['C'])} 天" for t in TIERS)
    return Table("逾期客户（按负责人和客户等级）", ["负责人", "A级", "B级", "C级", "合计", "本期新逾期"],
                 rows + ([_total_row("合计", rows)] if rows else []), chart,
                 note=f"超过等级的跟进天数（{days}）没有跟进的客户，截至时间段结束（未结束的算到现在）、至今仍没跟进；"
                      "「本期新逾期」是在这个时间段里才逾期的。")


# -- 回款 --------------------------------------------------------------------------------------------


def month_starts(when: Period) -> list[date]:
    """The first day of every month the period touches."""
    months, day = [], when.start.replace(day=1)
    while day <= when.end:
        months.append(day)
        day = date(day.year + day.month // 12, day.month % 12 + 1, 1)
    return months


def payments(session: Session, when: Period, *, team: frozenset[int] | None, tz: str, now: datetime) -> Table:
    """回款计划 instalments falling due in the period, by month: planned, received against them, still
    open, and how much of that is past due (a manager: the deals their team owns)."""
    p = PaymentPlan
    today = now.astimezone(ZoneInfo(tz)).date()
    months = month_starts(when)
    bucket = reports.bucket_of(p.due_date, months)
    late = case((p.due_date < today, p.amount - p.paid), else_=0)
    query = (select(bucket, func.count(), func.sum(p.amount), func.sum(p.paid), func.sum(late))
             .where(p.due_date >= when.start, p.due_date <= when.end).group_by(bucket))
    if team is not None:
        query = query.join(Deal, Deal.id == p.deal_id).where(Deal.owner_id.in_(sorted(team)))
    sums = {int(i): (n, Decimal(plan), Decimal(paid), Decimal(owed)) for i, n, plan, paid, owed in session.execute(query)}
    rows = []
    for i, month in enumerate(months):
        n, plan, paid, owed = sums.get(i, (0, Decimal(0), Decimal(0), Decimal(0)))
        rows.append([f"{month.year}年{month.month}月", n, plan, paid, plan - paid, owed])
    if not any(r[1] for r in rows):
        rows = []
    chart = {"type": "bar", "categories": [r[0] for r in rows], "series": [
        {"name": "计划回款", "data": [float(r[2]) for r in rows]}, {"name": "已回款", "data": [float(r[3]) for r in rows]}]}
    table = [[*r[:2], *[f"{v:.2f}" for v in r[2:]], _rate(r[3], r[2])] for r in rows]
    if rows:
        total = _total_row("合计", [r[:6] for r in rows])
        table.append([*total[:2], *[f"{v:.2f}" for v in total[2:]], _rate(total[3], total[2])])
    return Table("回款：计划与已收（按到期月份）", ["月份", "期数", "计划（元）", "已收（元）", "未收（元）",
                                           "其中已逾期（元）", "回款率"], table, chart,
                 note="每月到期的回款计划，和这些期次已经收到的钱（收到的钱先抵最早到期的一期）；"
                      "「已逾期」是到期日已过还没收到的部分。")


def _rate(part: Decimal, whole: Decimal) -> str:
    return f"{part / whole * 100:.1f}%" if whole else "—"


# -- 审批时长 -----------------------------------------------------------------------------------------


def approval_time(session: Session, when: Period, *, team: frozenset[int] | None, tz: str,
                  now: datetime) -> Table:
    """Average hours an approver took, per approver and type (their step's start to their decision,
    for decisions made in the period), and per type from submission to the result."""
    start, end = when.bounds(tz)
    dialect = session.get_bind().dialect.name
    t, r = ApprovalTask, ApprovalRequest
    grouped = session.execute(
        select(t.approver_id, r.type, func.count(), func.sum(hours_between(dialect, t.created_at, t.decided_at)))
        .join(r, r.id == t.request_id)
        .where(t.status.in_(DECIDED), t.decided_at >= start, t.decided_at < end, in_team(t.approver_id, team))
        .group_by(t.approver_id, r.type)).all()
    names = names_of(session, {g[0] for g in grouped})
    types = [k for k in REQUEST_TYPES if any(g[1] == k for g in grouped)]
    cells = {(a, k): (n, float(h or 0)) for a, k, n, h in grouped}
    approvers = sorted({g[0] for g in grouped}, key=lambda a: names.get(a, ""))

    def line(label: str, keys: list[int]) -> list:
        per = [_sum([cells.get((a, k)) for a in keys]) for k in types]
        return [label, *[_avg(x) for x in per], _avg(_sum(per)), _sum(per)[0]]

    rows = [line(names.get(a, f"#{a}"), [a]) for a in approvers]
    if rows:
        rows.append(line("全部审批人", approvers))
    chart = {"type": "bar", "categories": [names.get(a, f"#{a}") for a in approvers], "series": [
        {"name": k, "data": [_hours(cells.get((a, k))) for a in approvers]} for k in types]}
    return Table("审批时长（平均小时，按审批人和类型）", ["审批人", *types, "全部类型", "审批次数"], rows, chart,
                 note="每次审批从轮到这位审批人到他作出决定的小时数（日历时间，含夜间和休息日），取平均值；"
                      "时间段按作出决定的时间算。下表是每类申请从提交到出结果的平均小时数。",
                 also=(_by_type(session, start, end, team, dialect),))


def _by_type(session: Session, start: datetime, end: datetime, team: frozenset[int] | None, dialect: str) -> Table:
    r = ApprovalRequest
    grouped = session.execute(
        select(r.type, func.count(), func.sum(case((r.status == "approved", 1), else_=0)),
               func.sum(hours_between(dialect, r.submitted_at, r.decided_at)))
        .where(r.status.in_(DECIDED), r.decided_at >= start, r.decided_at < end, r.submitted_at.is_not(None),
               in_team(r.requester_id, team))
        .group_by(r.type)).all()
    order = {k: i for i, k in enumerate(REQUEST_TYPES)}
    rows = [[k, n, int(ok), n - int(ok), _avg((n, float(h or 0)))] for k, n, ok, h in
            sorted(grouped, key=lambda g: order.get(g[0], len(order)))]
    return Table("按类型：提交到出结果（平均小时）", ["类型", "件数", "通过", "驳回", "平均小时"], rows, {})


def _sum(parts: list[tuple[int, float] | None]) -> tuple[int, float]:
    present = [p for p in parts if p]
    return sum(p[0] for p in present), sum(p[1] for p in present)


def _avg(part: tuple[int, float]) -> str:
    return f"{part[1] / part[0]:.1f}" if part[0] else "—"


def _hours(part: tuple[int, float] | None) -> float | None:
    return round(part[1] / part[0], 1) if part else None


BUILDERS: dict[str, Callable[..., Table]] = {"overdue": overdue, "payments": payments, "approvals": approval_time}
