"""回款计划: what a signed deal's customer owes and when, with reminders before each due date to the
owner and finance, an overdue alert after it, and `回款 腾讯 50000` to record money in.

Reminders are timers (workflows/timers.py) that look at the instalment when they fire: one paid in
the meantime gets no reminder. Money recorded pays the earliest open instalments first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlmodel import Session

from cards import Button, Card
from storage.models import Customer, Deal, Employee, PaymentPlan
from workflows import audit, roles
from workflows.customers import words_naming
from workflows.followups import day_text, short_name
from workflows.timers import schedule, timer
from workflows.pushes import push

DEFAULT_TERM_DAYS = 30  # one instalment, due a month after the contract is approved (editable)
REMIND_DAYS_BEFORE = 3
REMIND, OVERDUE = "payment.remind", "payment.overdue"


@dataclass(frozen=True)
class Received:
    applied: list[tuple[PaymentPlan, Decimal]]
    left_over: Decimal  # more than was owed


def plan_default(session: Session, deal: Deal, amount: Decimal, *, request_id: int | None, now: datetime,
                 tz: str) -> list[PaymentPlan]:
    """One instalment of `amount` — the approved contract's, never the deal's own figure — due a term
    after `now`."""
    due = now.astimezone(ZoneInfo(tz)).date() + timedelta(days=DEFAULT_TERM_DAYS)
    return replace_plan(session, deal, [(amount, due)], request_id=request_id, now=now, tz=tz)


def replace_plan(session: Session, deal: Deal, instalments: list[tuple[Decimal, date]], *, request_id: int | None,
                 now: datetime, tz: str) -> list[PaymentPlan]:
    """Replace the open (unpaid) instalments with `instalments`; paid ones stay as they are."""
    kept = [p for p in plan_of(session, deal.id) if p.status == "paid" or p.paid > 0]
    for old in plan_of(session, deal.id):
        if old not in kept:
            session.delete(old)
    session.flush()
    rows = []
    for n, (amount, due) in enumerate(instalments, start=len(kept) + 1):
        row = PaymentPlan(deal_id=deal.id, customer_id=deal.customer_id, seq=n, amount=amount, due_date=due,
                          request_id=request_id, created_at=now)
        session.add(row)
        session.flush()
        _schedule(session, row, tz)
        rows.append(row)
    return rows


def plan_of(session: Session, deal_id: int) -> list[PaymentPlan]:
    return list(session.execute(select(PaymentPlan).where(PaymentPlan.deal_id == deal_id)
                                .order_by(PaymentPlan.seq)).scalars())


def open_for_customer(session: Session, customer_id: int) -> list[PaymentPlan]:
    return list(session.execute(select(PaymentPlan).where(PaymentPlan.customer_id == customer_id,
                                                          PaymentPlan.status == "open")
                                .order_by(PaymentPlan.due_date, PaymentPlan.seq)).scalars())


def may_record(session: Session, employee: Employee) -> bool:
    """Money in is finance's word (admins may correct)."""
    return roles.has_role(session, employee, "finance") or roles.is_admin(session, employee)


def receive(session: Session, customer: Customer, amount: Decimal, *, by: Employee, platform: str,
            now: datetime) -> Received:
    """Apply `amount` to the customer's earliest open instalments (audited)."""
    applied: list[tuple[PaymentPlan, Decimal]] = []
    left = amount
    for row in open_for_customer(session, customer.id):
        if left <= 0:
            break
        part = min(left, row.amount - row.paid)
        row.paid += part
        row.status = "paid" if row.paid >= row.amount else "open"
        session.add(row)
        applied.append((row, part))
        left -= part
    audit.record(session, actor=by, action="payment.receive", subject=f"customer:{customer.id}", platform=platform,
                 detail={"amount": str(amount), "applied": [[r.id, str(p)] for r, p in applied],
                         "left_over": str(left)}, at=now)
    return Received(applied=applied, left_over=left)


def plan_text(rows: list[PaymentPlan]) -> str:
    return "\n".join(f"· 第{r.seq}期 ¥{r.amount:,.2f} {day_text(r.due_date)}到期"
                     + (" · 已回款" if r.status == "paid" else (f" · 已收¥{r.paid:,.2f}" if r.paid else ""))
                     for r in rows)


# -- reminders ----------------------------------------------------------------------------------


def _schedule(session: Session, row: PaymentPlan, tz: str) -> None:
    zone = ZoneInfo(tz)
    before = datetime.combine(row.due_date - timedelta(days=REMIND_DAYS_BEFORE), time(9), tzinfo=zone)
    after = datetime.combine(row.due_date + timedelta(days=1), time(9), tzinfo=zone)
    schedule(session, key=f"payment:remind:{row.id}:{row.due_date}", name=REMIND, due_at=before, plan_id=row.id)
    schedule(session, key=f"payment:overdue:{row.id}:{row.due_date}", name=OVERDUE, due_at=after, plan_id=row.id)


@timer(REMIND)
def remind(session: Session, payload: dict[str, Any], now: datetime, tz: str) -> dict[str, Any]:
    return _tell(session, payload["plan_id"], "remind", "回款提醒",
                 lambda row: f"第{row.seq}期 ¥{row.amount - row.paid:,.2f} 将于{day_text(row.due_date)}到期，请跟进客户付款。")


@timer(OVERDUE)
def overdue(session: Session, payload: dict[str, Any], now: datetime, tz: str) -> dict[str, Any]:
    return _tell(session, payload["plan_id"], "overdue", "回款逾期",
                 lambda row: f"第{row.seq}期 ¥{row.amount - row.paid:,.2f} 已于{day_text(row.due_date)}到期，还没有到账。")


def _tell(session: Session, plan_id: int, kind: str, title: str, says) -> dict[str, Any]:
    row = session.get(PaymentPlan, plan_id)
    if row is None or row.status == "paid":
        return {"skipped": "paid or gone"}
    deal = session.get(Deal, row.deal_id)
    customer = session.get(Customer, row.customer_id)
    finance = [p.id for p in roles.people_with(session, "finance")]
    card = Card(title=f"{title} · {short_name(customer)}", body=says(row),
                fields=(("客户", customer.name[:26]), ("商机", deal.title[:26])),
                buttons=(Button("查看客户", "customer.show", str(customer.id),
                                command=words_naming(session, customer, "查看")),))
    told = []
    for person in dict.fromkeys([deal.owner_id, *finance]):
        if push(session, person, f"payment:{kind}:{row.id}:{row.due_date}:to:{person}", card):
            told.append(person)
    return {"told": told}
