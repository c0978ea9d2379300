"""超期未跟进: owned customers nobody has followed up for the tier's days (admin rule
`crm.overdue_days`, default A 7 / B 14 / C 30) → a card to the owner; `crm.overdue_grace_days` later,
still untouched → a card to the owner's manager.

Each alert is its own outbox row keyed `overdue:<owner|manager>:<customer id>:<overdue since>` (the
local date the customer became overdue), so a scan that runs every hour, twice, or after a restart
queues each alert at most once per overdue period; a follow-up starts a new period. Rows are due at
`business_time.push_time`, so quiet hours and weekends hold them, and a follow-up logged while one is
held cancels it (`withdraw`, called through the FOLLOWUP_LOGGED signal).

One card per customer, not one list per person: each card's buttons act on its customer, and a
follow-up can withdraw exactly its customer's alert. To keep a sudden wave (an admin shortening
the days) from burying someone, a scan queues at most PER_SCAN alerts per person, longest overdue
first; the rest follow on later scans.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlmodel import Session

from cards import Button, Card
from storage import outbox
from storage.models import Customer, Employee
from workflows import rules
from workflows.business_time import push_time_for
from workflows.followups import short_name
from workflows.pushes import push

PER_SCAN = 3
LEVELS = ("owner", "manager")


@dataclass(frozen=True)
class Overdue:
    customer: Customer
    since: datetime  # the moment the customer became overdue
    days: int  # the tier's rule
    idle_days: int  # whole days since the last touch


def last_touch(customer: Customer) -> datetime:
    """The later of the last follow-up and when the current owner got the customer: someone who
    just claimed or was handed a customer starts with a fresh clock."""
    held = customer.owned_since or customer.created_at
    return max(customer.last_followup_at, held) if customer.last_followup_at else held


def find_overdue(session: Session, now: datetime) -> list[Overdue]:
    limits = rules.get(session, "crm.overdue_days")
    found = []
    for customer in session.execute(select(Customer).where(Customer.owner_id.is_not(None))).scalars():
        days = limits.get(customer.tier, limits["C"])
        touched = last_touch(customer)
        if now - touched >= timedelta(days=days):
            found.append(Overdue(customer, touched + timedelta(days=days), days, (now - touched).days))
    return sorted(found, key=lambda o: o.since)


def scan(session: Session, *, now: datetime, tz: str) -> dict[str, int]:
    """Queue owner and manager alerts that are due and new. Returns counts for the cron result."""
    grace = timedelta(days=rules.get(session, "crm.overdue_grace_days"))
    due_at = push_time_for(session, now, tz)
    people = {e.id: e for e in session.execute(select(Employee)).scalars()}
    queued: dict[str, int] = {"owner": 0, "manager": 0}
    per_person: dict[int, int] = defaultdict(int)
    for item in find_overdue(session, now):
        owner = people.get(item.customer.owner_id)
        if owner is None:
            continue
        period = item.since.astimezone(ZoneInfo(tz)).date()
        targets = [("owner", owner)] if owner.active else []
        manager = people.get(owner.manager_id) if owner.manager_id else None
        if manager is not None and manager.active and now >= item.since + grace:
            targets.append(("manager", manager))
        for level, person in targets:
            if per_person[person.id] >= PER_SCAN:
                continue
            card = _owner_card(item) if level == "owner" else _manager_card(item, owner, grace.days)
            if _queue(session, person, alert_key(level, item.customer.id, period), card, due_at):
                queued[level] += 1
                per_person[person.id] += 1
    return queued


def alert_key(level: str, customer_id: int, period: date) -> str:
    return f"overdue:{level}:{customer_id}:{period.isoformat()}"


def withdraw(session: Session, customer_id: int) -> None:
    """Cancel this customer's alerts still held (quiet hours, weekend); sent ones stay sent."""
    for level in LEVELS:
        outbox.cancel(session, f"overdue:{level}:{customer_id}:")


def on_followup_logged(session: Session, *, customer: Customer, **_: object) -> None:
    withdraw(session, customer.id)


def _owner_card(item: Overdue) -> Card:
    c = item.customer
    return Card(
        title=f"超期未跟进 · {short_name(c)}",
        body=f"{short_name(c)}已经 {item.idle_days} 天没有跟进了（{c.tier}级客户每 {item.days} 天至少跟进一次）。\n"
             f"跟进后发一句「拜访 {short_name(c)} 聊了什么」就记上。",
        fields=(("客户", c.name[:26]), ("等级", f"{c.tier}级")),
        # 记跟进 opens the visit form on this customer: the next message is the note about it.
        buttons=(Button("记跟进", "customer.visit", str(c.id), style="primary"), Button("查看", "customer.show", str(c.id))),
    )


def _manager_card(item: Overdue, owner: Employee, grace_days: int) -> Card:
    c = item.customer
    return Card(
        title=f"团队客户超期 · {short_name(c)}",
        body=f"{owner.name}负责的{short_name(c)}已经 {item.idle_days} 天没有跟进"
             f"（{c.tier}级每 {item.days} 天一次，已提醒{owner.name}，又过了 {grace_days} 天）。",
        fields=(("客户", c.name[:26]), ("负责人", owner.name), ("等级", f"{c.tier}级")),
        buttons=(Button("查看", "customer.show", str(c.id)),),
    )


def _queue(session: Session, person: Employee, key: str, card: Card, due_at: datetime) -> bool:
    return push(session, person.id, key, card, due_at=due_at)
