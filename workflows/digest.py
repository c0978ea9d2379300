"""The 08:00 daily digest: each owner's follow-ups due today and overdue, and a team summary for
their managers. Queued as outbox messages keyed by person and date, so a slot that runs twice (or a
retried cron job) never sends a second digest.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlmodel import Session

from cards import Button, Card
from storage.models import Customer, Employee
from workflows.followups import day_text, short_name
from workflows.pushes import push

LIST_LIMIT = 5  # names on one card: more is a wall of text on a phone


@dataclass
class Agenda:
    due_today: list[tuple[Customer, datetime]] = field(default_factory=list)
    overdue: list[tuple[Customer, datetime]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.due_today or self.overdue)


def queue_daily_digests(session: Session, *, now: datetime, tz: str) -> int:
    """Write today's digest messages; returns how many were new."""
    zone = ZoneInfo(tz)
    today = now.astimezone(zone).date()
    agendas = _agendas(session, today, zone)
    people = {e.id: e for e in session.execute(select(Employee).where(Employee.active)).scalars()}
    queued = 0
    for employee_id, agenda in agendas.items():
        if employee_id in people:
            queued += _queue(session, people[employee_id], today, _owner_card(agenda, today))
    for manager_id, team in _teams(agendas, people).items():
        queued += _queue(session, people[manager_id], today, _team_card(team, people, today), kind="team")
    return queued


def _agendas(session: Session, today: date, zone: ZoneInfo) -> dict[int, Agenda]:
    """Follow-ups by owner, compared as local dates: 10:00 today is "today" even at 11:00."""
    agendas: dict[int, Agenda] = defaultdict(Agenda)
    rows = session.execute(select(Customer).where(Customer.owner_id.is_not(None),
                                                  Customer.next_followup_at.is_not(None))).scalars()
    for customer in rows:
        local = customer.next_followup_at.astimezone(zone)
        if local.date() == today:
            agendas[customer.owner_id].due_today.append((customer, local))
        elif local.date() < today:
            agendas[customer.owner_id].overdue.append((customer, local))
    for agenda in agendas.values():
        agenda.due_today.sort(key=lambda item: item[1])
        agenda.overdue.sort(key=lambda item: item[1])
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
        fields=(("今天", f"{len(agenda.due_today)} 家"), ("逾期", f"{len(agenda.overdue)} 家")),
        buttons=(Button("客户跟进", "menu.crm", style="primary", command="客户跟进"),
                 Button("帮助", "help", command="帮助")),
    )


def _team_card(team: dict[int, Agenda], people: dict[int, Employee], today: date) -> Card:
    ranked = sorted(team.items(), key=lambda kv: (-len(kv[1].overdue), people[kv[0]].name))
    fields = tuple((people[eid].name, f"今天{len(a.due_today)} · 逾期{len(a.overdue)}") for eid, a in ranked[:6])
    overdue = sum(len(a.overdue) for a in team.values())
    return Card(
        title=f"团队跟进 · {day_text(today)}",
        body=f"团队今天要跟进 {sum(len(a.due_today) for a in team.values())} 家，逾期 {overdue} 家。",
        fields=fields,
        buttons=(Button("帮助", "help", command="帮助"),),
    )


def _queue(session: Session, employee: Employee, today: date, card: Card, kind: str = "own") -> int:
    return int(push(session, employee.id, f"digest:{kind}:{employee.id}:{today.isoformat()}", card))
