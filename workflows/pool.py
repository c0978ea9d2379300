"""公海 (the public pool): customers nobody follows up go back to it; anyone may claim them from it.

The nightly sweep warns an owner `crm.pool_warn_days` before a customer's `crm.pool_days` (per tier)
run out, then releases it: no owner, `owned_since` = now, an OwnershipChange "pool", an audit entry by
Banli itself, and a card to the former owner. Warnings and notices are keyed per customer and period,
so a rerun sends nothing twice, and are held by quiet hours like every push.

`claim` enforces the admin's limits — how many customers one person may hold (`crm.owner_cap`), how
many they may claim per business day (`crm.claims_per_day`), and how long a former owner waits
(`crm.reclaim_wait_days`) — and settles races in SQL: the UPDATE only applies while the customer has
no owner, so of two people tapping 领取 at once exactly one gets it.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update
from sqlmodel import Session

from cards import Button, Card
from storage import outbox
from storage.models import Customer, Employee, Outbox, OwnershipChange
from workflows import audit, rules
from workflows.business_time import push_time_for
from workflows.followups import day_text, short_name
from workflows.overdue import last_touch, withdraw
from workflows.pushes import push


WARNINGS_PER_SWEEP = 5


class Refused(Exception):
    """A claim the rules do not allow; the message says which limit, in words a rep reads."""

    def __init__(self, limit: str, message: str) -> None:
        super().__init__(message)
        self.limit = limit
        self.message = message


@dataclass(frozen=True)
class Deadline:
    customer: Customer
    release_at: datetime
    warn_at: datetime


def deadline(customer: Customer, pool_days: dict[str, int], warn_days: int) -> Deadline:
    release_at = last_touch(customer) + timedelta(days=pool_days.get(customer.tier, pool_days["C"]))
    return Deadline(customer, release_at, release_at - timedelta(days=warn_days))


def sweep(session: Session, *, now: datetime, tz: str) -> dict[str, int]:
    """Warn and release what is due. Returns counts for the cron result.

    Nobody loses a customer without notice: a customer is released only `crm.pool_warn_days` after
    its owner's warning went out, even when the sweep first meets it already past its days (Banli
    newly installed over old data, a rule just shortened). Owners nobody can reach (departed, no
    chat identity) are not waited for. At most WARNINGS_PER_SWEEP new warnings per owner a night:
    the rest are warned (and so released) on later nights rather than in one burst.
    """
    counts = {"warned": 0, "released": 0}
    warned_now: dict[int, int] = defaultdict(int)
    pool_days, warn_days = rules.get(session, "crm.pool_days"), rules.get(session, "crm.pool_warn_days")
    owned = session.execute(select(Customer).where(Customer.owner_id.is_not(None)).order_by(Customer.id))
    for customer in list(owned.scalars()):
        due = deadline(customer, pool_days, warn_days)
        if now < due.warn_at:
            continue
        key = warning_key(customer)
        warned_at = _warned_at(session, key)
        if warned_at is None and warned_now[customer.owner_id] >= WARNINGS_PER_SWEEP:
            continue
        if warned_at is None and _warn(session, due, key, now=now, tz=tz, warn_days=warn_days):
            counts["warned"] += 1
            warned_now[customer.owner_id] += 1
            continue
        release_at = max(due.release_at, warned_at + timedelta(days=warn_days)) if warned_at else due.release_at
        if now >= release_at:
            counts["released"] += int(release(session, customer, now=now, tz=tz))
    return counts


def warning_key(customer: Customer) -> str:
    """One warning per customer and stretch without follow-up (the last touch names the stretch)."""
    return f"pool:warn:{customer.id}:{last_touch(customer).isoformat()}"


def release(session: Session, customer: Customer, *, now: datetime, tz: str) -> bool:
    """Return `customer` to the pool (if its owner has not changed meanwhile) and tell the owner."""
    owner_id = customer.owner_id
    done = session.execute(update(Customer).where(Customer.id == customer.id, Customer.owner_id == owner_id)
                           .values(owner_id=None, owned_since=now)).rowcount == 1
    if not done:
        return False
    session.refresh(customer)
    session.add(OwnershipChange(customer_id=customer.id, from_owner_id=owner_id, to_owner_id=None,
                                reason="pool", at=now))
    audit.record(session, actor=None, action="customer.pool", subject=f"customer:{customer.id}",
                 detail={"from_owner_id": owner_id, "reason": "no follow-up"})
    withdraw(session, customer.id)
    outbox.cancel(session, f"pool:warn:{customer.id}:")
    owner = session.get(Employee, owner_id)
    if owner is not None and owner.active:
        wait = rules.get(session, "crm.reclaim_wait_days")
        _push(session, owner, f"pool:released:{customer.id}:{now.astimezone(ZoneInfo(tz)).date().isoformat()}",
              _released_card(customer, wait), push_time_for(session, now, tz))
    return True


def claim(session: Session, employee: Employee, customer: Customer, *, now: datetime, tz: str) -> Customer:
    """Make `employee` the owner of pool customer `customer`, or raise Refused naming the limit."""
    if customer.owner_id is not None:
        raise Refused("taken", _taken(session, customer, employee))
    cap = rules.get(session, "crm.owner_cap")
    held = session.execute(select(func.count(Customer.id)).where(Customer.owner_id == employee.id)).scalar_one()
    if held >= cap:
        raise Refused("owner_cap", f"你名下已有 {held} 家客户，已达上限 {cap} 家。先把不跟的客户放回公海，或找管理员。")
    per_day = rules.get(session, "crm.claims_per_day")
    today = _claims_today(session, employee, now, tz)
    if today >= per_day:
        raise Refused("claims_per_day", f"今天已领取 {today} 家，每天最多 {per_day} 家，明天再来。")
    _check_reclaim_wait(session, employee, customer, now, tz)
    won = session.execute(update(Customer).where(Customer.id == customer.id, Customer.owner_id.is_(None))
                          .values(owner_id=employee.id, owned_since=now)).rowcount == 1
    session.refresh(customer)
    if not won:
        raise Refused("taken", _taken(session, customer, employee))
    session.add(OwnershipChange(customer_id=customer.id, from_owner_id=None, to_owner_id=employee.id,
                                reason="claim", at=now))
    audit.record(session, actor=employee, action="customer.claim", subject=f"customer:{customer.id}",
                 detail={"from": "pool"})
    return customer


def pool_customers(session: Session, limit: int | None = None) -> list[Customer]:
    """Pool customers, most valuable tier first, then the longest waiting."""
    query = select(Customer).where(Customer.owner_id.is_(None)).order_by(
        Customer.tier, func.coalesce(Customer.owned_since, Customer.created_at), Customer.id)
    return list(session.execute(query.limit(limit) if limit else query).scalars())


def pool_count(session: Session) -> int:
    return session.execute(select(func.count(Customer.id)).where(Customer.owner_id.is_(None))).scalar_one()


def in_pool_since(customer: Customer) -> datetime:
    return customer.owned_since or customer.created_at


def on_followup_logged(session: Session, *, customer: Customer, **_: object) -> None:
    outbox.cancel(session, f"pool:warn:{customer.id}:")  # a held warning is moot now


# -- helpers ------------------------------------------------------------------------------------


def _claims_today(session: Session, employee: Employee, now: datetime, tz: str) -> int:
    """Claims since midnight business time: "今天" is what the refusal says, so it is what counts."""
    local = now.astimezone(ZoneInfo(tz))
    midnight = datetime.combine(local.date(), datetime.min.time(), tzinfo=local.tzinfo)
    return session.execute(select(func.count(OwnershipChange.id)).where(
        OwnershipChange.to_owner_id == employee.id, OwnershipChange.reason == "claim",
        OwnershipChange.at >= midnight)).scalar_one()


def _check_reclaim_wait(session: Session, employee: Employee, customer: Customer, now: datetime, tz: str) -> None:
    wait = rules.get(session, "crm.reclaim_wait_days")
    left = session.execute(select(func.max(OwnershipChange.at)).where(
        OwnershipChange.customer_id == customer.id, OwnershipChange.from_owner_id == employee.id,
        OwnershipChange.reason == "pool")).scalar()
    if left is None:
        return
    left = left if left.tzinfo else left.replace(tzinfo=ZoneInfo("UTC"))  # SQLite reads naive UTC
    until = left + timedelta(days=wait)
    if now < until:
        zone = ZoneInfo(tz)
        raise Refused("reclaim_wait", f"你{_md(left.astimezone(zone))}刚放弃这家，"
                                      f"{_md(until.astimezone(zone))}后才能再领（原负责人要等 {wait} 天）。")


def _md(moment: datetime) -> str:
    return f"{moment.month}月{moment.day}日"


def _taken(session: Session, customer: Customer, employee: Employee) -> str:
    if customer.owner_id == employee.id:
        return f"{short_name(customer)}已经是你的客户了。"
    owner = session.get(Employee, customer.owner_id)
    return f"{short_name(customer)}已被{owner.name if owner else '别人'}领走了，看看公海里的其他客户吧。"


def _warned_at(session: Session, key: str) -> datetime | None:
    """When the owner was (or will be, if held) shown the warning; None if never warned."""
    due = session.execute(select(Outbox.due_at).where(Outbox.key == key, Outbox.status != "cancelled")).scalar()
    return due if due is None or due.tzinfo else due.replace(tzinfo=ZoneInfo("UTC"))


def _warn(session: Session, due: Deadline, key: str, *, now: datetime, tz: str, warn_days: int) -> bool:
    customer = due.customer
    owner = session.get(Employee, customer.owner_id)
    if owner is None or not owner.active:
        return False
    shown_at = push_time_for(session, now, tz)
    release_day = max(due.release_at, shown_at + timedelta(days=warn_days)).astimezone(ZoneInfo(tz)).date()
    return _push(session, owner, key, _warn_card(customer, day_text(release_day)), shown_at)


def _warn_card(customer: Customer, release_day: str) -> Card:
    name = short_name(customer)
    return Card(
        title=f"即将退回公海 · {name}",
        body=f"{name}很久没有跟进了，{release_day}将退回公海，别人就能领走。\n跟进一次就能留住，比如发「拜访 {name} 聊了什么」。",
        fields=(("客户", customer.name[:26]), ("等级", f"{customer.tier}级")),
        buttons=(Button("记跟进", "customer.visit", str(customer.id), style="primary"),
                 Button("查看", "customer.show", str(customer.id))),
    )


def _released_card(customer: Customer, wait_days: int) -> Card:
    name = short_name(customer)
    return Card(
        title=f"已退回公海 · {name}",
        body=f"{name}长时间没有跟进，已退回公海，其他同事可以领取。\n你要等 {wait_days} 天后才能重新领取。",
        fields=(("客户", customer.name[:26]), ("等级", f"{customer.tier}级")),
        buttons=(Button("看看公海", "pool.list", command="公海"),),
    )


def _push(session: Session, person: Employee, key: str, card: Card, due_at: datetime) -> bool:
    return push(session, person.id, key, card, due_at=due_at)
