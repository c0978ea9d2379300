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

from datetime import datetime, timedelta
from typing import Any, Callable
from zoneinfo import ZoneInfo

from sqlalchemy import String, and_, case, exists, func, insert, literal, or_, select, tuple_, type_coerce, update
from sqlmodel.sql.sqltypes import UTCDateTime
from sqlmodel import Session

from cards import Button, Card
from storage import outbox
from storage.db import no_jit
from storage.models import Customer, Employee, Identity, Outbox, OwnershipChange
from storage.sqlexpr import as_text, iso_utc, last_touch as touched_sql, per_tier
from workflows import audit, customers, rules
from workflows.business_time import push_time_for
from workflows.followups import day_text, short_name
from workflows.overdue import last_touch
from workflows.pushes import Pusher


WARNINGS_PER_SWEEP = 5
RELEASE_BATCH = 500  # customers per UPDATE when the sweep releases many


class Refused(Exception):
    """A claim the rules do not allow; the message says which limit, in words a rep reads."""

    def __init__(self, limit: str, message: str) -> None:
        super().__init__(message)
        self.limit = limit
        self.message = message


def sweep(session: Session, *, now: datetime, tz: str) -> dict[str, int]:
    """Warn and release what is due. Returns counts for the cron result.

    Nobody loses a customer without notice: a customer is released only `crm.pool_warn_days` after
    its owner's warning went out, even when the sweep first meets it already past its days (Banli
    newly installed over old data, a rule just shortened). Owners nobody can reach (departed, no
    chat identity) are not waited for. At most WARNINGS_PER_SWEEP new warnings per owner a night:
    the rest are warned (and so released) on later nights rather than in one burst.

    The database picks what to do (`_due`), so a night over a million customers reads only the
    warnings to send and the releases to make; releases go in batches (`release_many`).
    """
    no_jit(session)
    counts = {"warned": 0, "released": 0}
    pool_days, warn_days = rules.get(session, "crm.pool_days"), rules.get(session, "crm.pool_warn_days")
    pusher = Pusher(session)
    shown_at = push_time_for(session, now, tz)
    releases = []
    words = customers.namer(session)  # one indexed count per warning: at most a few per owner a night
    for row in _due(session, now=now, pool_days=pool_days, warn_days=warn_days):
        if row.warnable:  # `_due` checked the owner is reachable and has no such warning yet
            _warn(pusher, row, words, shown_at=shown_at, tz=tz, warn_days=warn_days)
        elif row.release_due:
            releases.append(row)
    counts["warned"] = len(pusher.flush())
    for start in range(0, len(releases), RELEASE_BATCH):
        counts["released"] += release_many(session, releases[start:start + RELEASE_BATCH], now=now, tz=tz,
                                           pusher=pusher)
    pusher.flush()
    return counts


def _due(session: Session, *, now: datetime, pool_days: dict[str, int], warn_days: int) -> list[Any]:
    return list(session.execute(_due_query(session, now=now, pool_days=pool_days, warn_days=warn_days)))


def _due_query(session: Session, *, now: datetime, pool_days: dict[str, int], warn_days: int) -> Any:
    """Customers to warn now and customers to release now, in customer order.

    Candidates are owned customers past their warning day (last touch + the tier's days − the warning
    days). Each is matched to its warning row, `pool:warn:<id>:<last touch>`:
    - warned (a row not withdrawn): released once both its days and the warning days since the
      warning's due time have passed;
    - never warned, owner active with a chat identity ("warnable"): warned, the first
      WARNINGS_PER_SWEEP of each owner in customer order (a running count per owner);
    - otherwise (owner unreachable, or the warning was withdrawn): released once its days have passed,
      unless the owner's count of warnings this night already reached the cap before it.
    """
    dialect = session.get_bind().dialect.name
    c, o, w = Customer.__table__, Employee.__table__, Outbox.__table__
    touched = touched_sql(c)
    warn_from = {tier: now - timedelta(days=d - warn_days) for tier, d in pool_days.items()}
    key = literal("pool:warn:", String()) + as_text(c.c.id) + ":" + iso_utc(dialect, touched)
    cand = (select(c.c.id, c.c.owner_id, c.c.name, c.c.short_names, c.c.tier, touched.label("touched"),
                   key.label("key"), per_tier(c.c.tier, pool_days).label("release_days"))
            .where(c.c.owner_id.is_not(None), touched <= per_tier(c.c.tier, warn_from, UTCDateTime()))
            .subquery("pool_candidate"))
    reachable = and_(o.c.active, exists().where(Identity.__table__.c.employee_id == o.c.id))
    warnable = case((and_(w.c.id.is_(None), reachable), 1), else_=0)
    running = func.sum(warnable).over(partition_by=cand.c.owner_id, order_by=cand.c.id,
                                      rows=(None, 0))
    matched = (select(*cand.c, warnable.label("warnable"), running.label("running"),
                      w.c.id.label("warning_id"), w.c.status.label("warning_status"), w.c.due_at.label("warned_at"))
               .join(o, o.c.id == cand.c.owner_id).outerjoin(w, w.c.key == cand.c.key)
               .subquery("pool_matched"))
    m = matched.c
    released = m.touched <= per_tier(m.tier, {t: now - timedelta(days=d) for t, d in pool_days.items()}, UTCDateTime())
    unwarned = or_(m.warning_id.is_(None), m.warning_status == "cancelled")
    warning_old = type_coerce(m.warned_at, UTCDateTime()) <= now - timedelta(days=warn_days)
    release_due = case((and_(released, or_(unwarned, warning_old)), True), else_=False)
    query = (select(m.id, m.owner_id, m.name, m.short_names, m.tier, m.touched, m.key, m.release_days,
                    (m.warnable == 1).label("warnable"), release_due.label("release_due"))
             .where(or_(and_(unwarned, m.running - m.warnable < WARNINGS_PER_SWEEP,
                             or_(m.warnable == 1, released)),
                        and_(~unwarned, released, warning_old)))
             .order_by(m.id))
    return query


def warning_key(customer: Customer) -> str:
    """One warning per customer and stretch without follow-up (the last touch names the stretch);
    `_due` builds the same key in SQL."""
    return f"pool:warn:{customer.id}:{last_touch(customer).isoformat()}"


def release(session: Session, customer: Customer, *, now: datetime, tz: str) -> bool:
    """Return `customer` to the pool (if its owner has not changed meanwhile) and tell the owner."""
    done = release_many(session, [customer], now=now, tz=tz) == 1
    if done:
        session.refresh(customer)
    return done


def release_many(session: Session, customers: list[Any], *, now: datetime, tz: str,
                 pusher: Pusher | None = None) -> int:
    """Return customers (rows with id, owner_id, name, short_names, tier) to the pool, each only if
    its owner is still the one read; record each move, withdraw their held alerts and warnings, and
    tell each active former owner (a given `pusher` holds those cards until its `flush`). Set-based: one UPDATE, one insert per record kind, a few cancels —
    never an ORM walk over the customers. Returns how many were released."""
    if not customers:
        return 0
    c = Customer.__table__
    expected = {row.id: row.owner_id for row in customers}
    done = set(session.execute(
        update(c).where(c.c.id.in_(list(expected)), tuple_(c.c.id, c.c.owner_id).in_(list(expected.items())))
        .values(owner_id=None, owned_since=now).returning(c.c.id)).scalars())
    if not done:
        return 0
    gone = [row for row in customers if row.id in done]
    session.execute(insert(OwnershipChange.__table__), [
        dict(customer_id=row.id, from_owner_id=row.owner_id, to_owner_id=None, reason="pool", at=now) for row in gone])
    audit.record_many(session, action="customer.pool", entries=[
        (f"customer:{row.id}", {"from_owner_id": row.owner_id, "reason": "no follow-up"}) for row in gone])
    # Only the pool warnings are messages of their own; an overdue card is built when it goes out and
    # leaves a released customer off by itself.
    outbox.cancel_many(session, [f"pool:warn:{row.id}:" for row in gone])
    own_pusher = pusher is None
    pusher = pusher or Pusher(session)
    wait = rules.get(session, "crm.reclaim_wait_days")
    shown_at = push_time_for(session, now, tz)
    day = now.astimezone(ZoneInfo(tz)).date().isoformat()
    owners = {e.id: e for e in session.execute(select(Employee).where(
        Employee.id.in_({row.owner_id for row in gone}))).scalars()}
    for row in gone:
        owner = owners.get(row.owner_id)
        if owner is not None and owner.active:
            pusher.queue(owner.id, f"pool:released:{row.id}:{day}", _released_card(row, wait), due_at=shown_at)
    if own_pusher:
        pusher.flush()
    return len(gone)


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


def _warn(pusher: Pusher, row: Any, words: Callable, *, shown_at: datetime, tz: str, warn_days: int) -> None:
    release_at = row.touched + timedelta(days=row.release_days)
    release_day = max(release_at, shown_at + timedelta(days=warn_days)).astimezone(ZoneInfo(tz)).date()
    pusher.queue(row.owner_id, row.key, _warn_card(row, day_text(release_day), words), due_at=shown_at)


def _warn_card(customer: Customer, release_day: str, words: Callable) -> Card:
    """On DingTalk markdown its buttons send `拜访 <全称>` / `查看 <全称>`, words a person could type."""
    name = short_name(customer)
    return Card(
        title=f"即将退回公海 · {name}",
        body=f"{name}很久没有跟进了，{release_day}将退回公海，别人就能领走。\n跟进一次就能留住，比如发「拜访 {name} 聊了什么」。",
        fields=(("客户", customer.name[:26]), ("等级", f"{customer.tier}级")),
        buttons=(Button("记跟进", "customer.visit", str(customer.id), style="primary",
                        command=words(customer, "拜访")),
                 Button("查看", "customer.show", str(customer.id), command=words(customer, "查看"))),
    )


def _released_card(customer: Customer, wait_days: int) -> Card:
    name = short_name(customer)
    return Card(
        title=f"已退回公海 · {name}",
        body=f"{name}长时间没有跟进，已退回公海，其他同事可以领取。\n你要等 {wait_days} 天后才能重新领取。",
        fields=(("客户", customer.name[:26]), ("等级", f"{customer.tier}级")),
        buttons=(Button("看看公海", "pool.list", command="公海"),),
    )


