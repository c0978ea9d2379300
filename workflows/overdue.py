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

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import String, exists, func, literal, select, union_all
from sqlmodel import Session

from cards import Button, Card
from storage import outbox
from storage.db import no_jit
from storage.models import Customer, Employee, Outbox
from storage.sqlexpr import add_days, as_text, last_touch as touched_sql, local_date, per_tier
from sqlmodel.sql.sqltypes import UTCDateTime
from workflows import rules
from workflows.business_time import push_time_for
from workflows.followups import short_name
from workflows.pushes import Pusher

PER_SCAN = 3
LEVELS = ("owner", "manager")


@dataclass(frozen=True)
class Overdue:
    customer: Any  # a Customer, or a row with its id, name, short_names and tier
    since: datetime  # the moment the customer became overdue
    days: int  # the tier's rule
    idle_days: int  # whole days since the last touch


def last_touch(customer: Customer) -> datetime:
    """The later of the last follow-up and when the current owner got the customer: someone who
    just claimed or was handed a customer starts with a fresh clock (storage.sqlexpr.last_touch is
    the same in SQL)."""
    held = customer.owned_since or customer.created_at
    return max(customer.last_followup_at, held) if customer.last_followup_at else held


def scan(session: Session, *, now: datetime, tz: str) -> dict[str, int]:
    """Queue owner and manager alerts that are due and new. Returns counts for the cron result.

    The database picks the alerts (`due_alerts`): owned customers past their tier's days, whose alert
    for this overdue period is not in the outbox yet, at most PER_SCAN per person, longest overdue
    first. So Python sees only the few hundred alerts to send (none once everything is alerted);
    the database still checks every overdue customer against the outbox (bench/README.md, scale.py)."""
    no_jit(session)
    grace = timedelta(days=rules.get(session, "crm.overdue_grace_days"))
    due_at = push_time_for(session, now, tz)
    pusher = Pusher(session)
    owners: dict[int, Employee] = {}
    levels = {}
    for row in session.execute(due_alerts(session, now=now, tz=tz, grace=grace)):
        item = Overdue(row, row.since, row.days, (now - row.touched).days)
        if row.level == "owner":
            card = _owner_card(item)
        else:
            owner = owners.get(row.owner_id) or owners.setdefault(row.owner_id, session.get(Employee, row.owner_id))
            card = _manager_card(item, owner, grace.days)
        pusher.queue(row.person, row.key, card, due_at=due_at)
        levels[row.key] = row.level
    queued: dict[str, int] = {"owner": 0, "manager": 0}
    for key in pusher.flush():
        queued[levels[key]] += 1
    return queued


def due_alerts(session: Session, *, now: datetime, tz: str, grace: timedelta, per_person: int = PER_SCAN) -> Any:
    """The SELECT of the alerts to queue now: level, person, key (`alert_key`, built in SQL), the
    customer's id, owner_id, name, short_names and tier, touched, since and days.

    Owner alerts go to active owners; manager alerts to an owner's active manager once the grace days
    have passed too (whether or not the owner is still active). An alert whose key is already in the
    outbox (queued, sent or withdrawn) is never queued again; each person gets the PER_SCAN longest
    overdue of the rest (by since, then customer, owner's alert before manager's), the others wait
    for later scans."""
    dialect = session.get_bind().dialect.name
    limits = rules.get(session, "crm.overdue_days")
    c = Customer.__table__
    touched = touched_sql(c)
    days = per_tier(c.c.tier, limits)
    since = add_days(dialect, touched, days)
    cutoff = {tier: now - timedelta(days=d) for tier, d in limits.items()}
    manager_cutoff = {tier: when - grace for tier, when in cutoff.items()}
    cand = (select(c.c.id, c.c.owner_id, c.c.name, c.c.short_names, c.c.tier, touched.label("touched"),
                   days.label("days"), since.label("since"))
            .where(c.c.owner_id.is_not(None), touched <= per_tier(c.c.tier, cutoff, UTCDateTime()))
            .cte("overdue_candidate"))
    period = local_date(dialect, cand.c.since, tz)
    owner, manager = Employee.__table__.alias("owner"), Employee.__table__.alias("manager")

    def level(name: str, rank: int, person: Any, *joins_and_conditions: Any) -> Any:
        key = literal(f"overdue:{name}:", String()) + as_text(cand.c.id) + ":" + period
        return (select(*cand.c, literal(name, String()).label("level"), literal(rank).label("rank"),
                       person.label("person"), key.label("key"))
                .where(*joins_and_conditions, ~exists().where(Outbox.key == key)))

    owner_alerts = level("owner", 0, owner.c.id, owner.c.id == cand.c.owner_id, owner.c.active)
    manager_alerts = level("manager", 1, manager.c.id, owner.c.id == cand.c.owner_id,
                           manager.c.id == owner.c.manager_id, manager.c.active,
                           cand.c.touched <= per_tier(cand.c.tier, manager_cutoff, UTCDateTime()))
    alerts = union_all(owner_alerts, manager_alerts).subquery("alert")
    ranked = select(*alerts.c, func.row_number().over(
        partition_by=alerts.c.person, order_by=(alerts.c.since, alerts.c.id, alerts.c.rank)).label("n")).subquery()
    return (select(*[col for col in ranked.c if col.name != "n"]).where(ranked.c.n <= per_person)
            .order_by(ranked.c.since, ranked.c.id, ranked.c.rank))


def alert_key(level: str, customer_id: int, period: date) -> str:
    """The alert's outbox key; `due_alerts` builds the same in SQL."""
    return f"overdue:{level}:{customer_id}:{period.isoformat()}"


def withdraw(session: Session, customer_id: int) -> None:
    """Cancel this customer's alerts still held (quiet hours, weekend); sent ones stay sent."""
    outbox.cancel_many(session, [f"overdue:{level}:{customer_id}:" for level in LEVELS])


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
