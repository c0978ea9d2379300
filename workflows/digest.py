"""The 08:00 daily digest: each owner's follow-ups due today and overdue, and a team summary for
their managers. Queued as outbox messages keyed by person and date, so a slot that runs twice (or a
retried cron job) never sends a second digest.

Like every push Banli starts on its own, the digest keeps to working days (rule `crm.skip_weekends`,
on by default): none on a Saturday, a Sunday or a public holiday, but one on a 调休 Saturday, which
is worked (workflows/workdays.py). It is not held for the next working day as alerts are: a
Saturday's "today" is stale by Monday, and Monday's digest lists what is still due.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import case, func, select
from sqlmodel import Session

from cards import Button, Card
from storage.db import no_jit
from storage.models import Customer, Employee
from workflows import rules, workdays
from workflows.followups import day_text, short_name
from workflows.pushes import Pusher

LIST_LIMIT = 5  # names on one card: more is a wall of text on a phone


@dataclass
class Agenda:
    """One owner's day: how many follow-ups are due today and overdue, and the first LIST_LIMIT of
    each (customer row, local time), earliest first."""

    today_count: int = 0
    overdue_count: int = 0
    due_today: list[tuple[Any, datetime]] = field(default_factory=list)
    overdue: list[tuple[Any, datetime]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.today_count or self.overdue_count)


def queue_daily_digests(session: Session, *, now: datetime, tz: str, public_url: str = "") -> int:
    """Write today's digest messages; returns how many were new (none on a day off). With
    `public_url` (BANLI_PUBLIC_URL) a manager's card links to their team's report page."""
    no_jit(session)
    zone = ZoneInfo(tz)
    today = now.astimezone(zone).date()
    if rules.get(session, "crm.skip_weekends") and not workdays.for_company(session).is_workday(today):
        return 0
    agendas = _agendas(session, today, zone)
    people = {e.id: e for e in session.execute(select(Employee).where(Employee.active)).scalars()}
    pusher = Pusher(session)
    for employee_id, agenda in agendas.items():
        if employee_id in people:
            _queue(pusher, people[employee_id], today, _owner_card(agenda, today))
    for manager_id, team in _teams(agendas, people).items():
        link = f"{public_url.rstrip('/')}/admin/reports/followups?team={manager_id}" if public_url else ""
        _queue(pusher, people[manager_id], today, _team_card(team, people, today, link), kind="team")
    return len(pusher.flush())


def _agendas(session: Session, today: date, zone: ZoneInfo) -> dict[int, Agenda]:
    """Follow-ups by owner, compared as local dates: 10:00 today is "today" even at 11:00.

    Local dates become a UTC range (today's local midnight to tomorrow's), so the database counts
    per owner and returns only the names a card shows, never every customer."""
    start = datetime.combine(today, time.min, tzinfo=zone)
    end = datetime.combine(today + timedelta(days=1), time.min, tzinfo=zone)
    c = Customer.__table__
    due = c.c.next_followup_at
    scope = (c.c.owner_id.is_not(None), due.is_not(None), due < end)
    is_today = case((due >= start, 1), else_=0)
    agendas: dict[int, Agenda] = {}
    counts = select(c.c.owner_id, func.sum(is_today), func.count()).where(*scope).group_by(c.c.owner_id)
    for owner_id, today_count, total in session.execute(counts):
        agendas[owner_id] = Agenda(today_count=int(today_count), overdue_count=int(total - today_count))
    ranked = select(c.c.id, c.c.name, c.c.short_names, c.c.owner_id, due.label("due"), is_today.label("is_today"),
                    func.row_number().over(partition_by=(c.c.owner_id, is_today), order_by=(due, c.c.id)).label("n")
                    ).where(*scope).subquery()
    top = select(ranked).where(ranked.c.n <= LIST_LIMIT).order_by(ranked.c.owner_id, ranked.c.due, ranked.c.id)
    for row in session.execute(top):
        agenda = agendas[row.owner_id]
        (agenda.due_today if row.is_today else agenda.overdue).append((row, row.due.astimezone(zone)))
    return agendas


def _teams(agendas: dict[int, Agenda], people: dict[int, Employee]) -> dict[int, dict[int, Agenda]]:
    """Each manager's direct reports who have something on today."""
    teams: dict[int, dict[int, Agenda]] = defaultdict(dict)
    for employee_id, agenda in agendas.items():
        person = people.get(employee_id)
        if person and person.manager_id in people:
            teams[person.manager_id][employee_id] = agenda
    return teams


def _owner_card(agenda: Agenda, today: date) -> Card:
    lines = [f"· {short_name(c)} {t:%H:%M}" for c, t in agenda.due_today[:LIST_LIMIT]]
    late = [f"· {short_name(c)} 已逾期{(today - t.date()).days}天" for c, t in agenda.overdue[:LIST_LIMIT]]
    body = "\n".join((["今天要跟进："] + lines if lines else []) + (["逾期未跟进："] + late if late else []))
    return Card(
        title=f"今日跟进 · {day_text(today)}",
        body=body,
        fields=(("今天", f"{agenda.today_count} 家"), ("逾期", f"{agenda.overdue_count} 家")),
        buttons=(Button("客户跟进", "menu.crm", style="primary", command="客户跟进"),
                 Button("帮助", "help", command="帮助")),
    )


def _team_card(team: dict[int, Agenda], people: dict[int, Employee], today: date, link: str) -> Card:
    ranked = sorted(team.items(), key=lambda kv: (-kv[1].overdue_count, people[kv[0]].name))
    fields = tuple((people[eid].name, f"今天{a.today_count} · 逾期{a.overdue_count}") for eid, a in ranked[:6])
    overdue = sum(a.overdue_count for a in team.values())
    return Card(
        title=f"团队跟进 · {day_text(today)}",
        body=f"团队今天要跟进 {sum(a.today_count for a in team.values())} 家，逾期 {overdue} 家。",
        fields=fields,
        # A card with a link has no buttons (WeCom shows a tappable address only in plain text).
        buttons=() if link else (Button("帮助", "help", command="帮助"),),
        link=link,
        link_label="团队报表",
    )


def _queue(pusher: Pusher, employee: Employee, today: date, card: Card, kind: str = "own") -> None:
    pusher.queue(employee.id, f"digest:{kind}:{employee.id}:{today.isoformat()}", card)
