"""What the CRM queries show: 我的客户, 今天跟进, 本周拜访 and one customer's profile.

Who sees what is decided here, not in the cards: anyone may look a customer up and learn its name,
tier and owner (so nobody calls a colleague's client by accident); contact phones, deal amounts and
the follow-up history are for the owner, the owner's managers and admins
(`customers.may_see_details`). A full phone number is shown only on request, and each showing is
written to the audit log.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlmodel import Session

from storage.models import Contact, Customer, Deal, Employee, FollowUp
from workflows import audit
from workflows.customers import may_see_details, owner_name

CLOSED_STAGES = ("赢单", "输单", "已签约")
RECENT_FOLLOWUPS = 3


@dataclass(frozen=True)
class Profile:
    customer: Customer
    owner: str
    full: bool  # the viewer may see phones, amounts and history
    followups: list[FollowUp] = field(default_factory=list)
    deals: list[Deal] = field(default_factory=list)
    contacts: list[Contact] = field(default_factory=list)


def profile(session: Session, viewer: Employee, customer: Customer) -> Profile:
    full = may_see_details(session, viewer, customer)
    if not full:
        return Profile(customer=customer, owner=owner_name(session, customer), full=False)
    followups = session.execute(select(FollowUp).where(FollowUp.customer_id == customer.id)
                                .order_by(FollowUp.happened_at.desc(), FollowUp.id.desc())
                                .limit(RECENT_FOLLOWUPS)).scalars().all()
    deals = session.execute(select(Deal).where(Deal.customer_id == customer.id, Deal.stage.not_in(CLOSED_STAGES))
                            .order_by(Deal.id)).scalars().all()
    contacts = session.execute(select(Contact).where(Contact.customer_id == customer.id)
                               .order_by(Contact.id)).scalars().all()
    return Profile(customer=customer, owner=owner_name(session, customer), full=True,
                   followups=list(followups), deals=list(deals), contacts=list(contacts))


def reveal_phones(session: Session, viewer: Employee, customer: Customer, *, platform: str) -> list[Contact] | None:
    """The contacts with their full numbers, audited; None if the viewer may not see them."""
    if not may_see_details(session, viewer, customer):
        return None
    contacts = session.execute(select(Contact).where(Contact.customer_id == customer.id, Contact.phone != "")
                               .order_by(Contact.id)).scalars().all()
    if contacts:
        audit.record(session, actor=viewer, action="customer.view_phone", subject=f"customer:{customer.id}",
                     platform=platform, detail={"contacts": [c.id for c in contacts]})
    return list(contacts)


def mask_phone(phone: str) -> str:
    """138****8000: enough to recognise a number, not enough to dial it."""
    digits = re.sub(r"\D", "", phone)
    if len(digits) == 13 and digits.startswith("86"):  # +86 138…
        digits = digits[2:]
    if len(digits) < 7:
        return "****"
    return f"{digits[:3]}****{digits[-4:]}"


def my_customers(session: Session, employee: Employee) -> list[Customer]:
    """Own customers, the ones needing attention first: overdue/next follow-up soonest, then the rest
    by tier (A first) and name."""
    rows = session.execute(select(Customer).where(Customer.owner_id == employee.id)).scalars().all()
    far = datetime.max.replace(tzinfo=ZoneInfo("UTC"))
    return sorted(rows, key=lambda c: (c.next_followup_at or far, c.tier, c.name))


def due_on(session: Session, employee: Employee, day: date, tz: str) -> tuple[list[Customer], list[Customer]]:
    """(due that local day, overdue before it) among the employee's own customers, earliest first."""
    start, end = _local_day(day, tz)
    due = session.execute(select(Customer).where(
        Customer.owner_id == employee.id, Customer.next_followup_at >= start, Customer.next_followup_at < end)
        .order_by(Customer.next_followup_at)).scalars().all()
    overdue = session.execute(select(Customer).where(
        Customer.owner_id == employee.id, Customer.next_followup_at < start)
        .order_by(Customer.next_followup_at)).scalars().all()
    return list(due), list(overdue)


def visits_between(session: Session, employee: Employee, first: date, last: date,
                   tz: str) -> list[tuple[FollowUp, Customer]]:
    """The employee's own follow-ups (all methods) from `first` to `last` local days, newest first."""
    start, _ = _local_day(first, tz)
    _, end = _local_day(last, tz)
    rows = session.execute(select(FollowUp, Customer).join(Customer, Customer.id == FollowUp.customer_id).where(
        FollowUp.employee_id == employee.id, FollowUp.happened_at >= start, FollowUp.happened_at < end)
        .order_by(FollowUp.happened_at.desc())).all()
    return [(f, c) for f, c in rows]


def week_of(moment: datetime, tz: str) -> tuple[date, date]:
    """Monday and Sunday of the local week containing `moment` (weeks start on Monday in China)."""
    today = moment.astimezone(ZoneInfo(tz)).date()
    monday = today - timedelta(days=today.weekday())
    return monday, monday + timedelta(days=6)


def amount_text(amount: Decimal) -> str:
    """50000 → 5万, 1234.5 → 1,234.5元: how sales people say deal sizes."""
    if amount >= 10000 and amount % 1000 == 0:
        return f"{(amount / 10000).normalize():f}万"
    return f"{amount.normalize():,f}元"


def _local_day(day: date, tz: str) -> tuple[datetime, datetime]:
    zone = ZoneInfo(tz)
    start = datetime.combine(day, time(0), tzinfo=zone)
    return start.astimezone(ZoneInfo("UTC")), (start + timedelta(days=1)).astimezone(ZoneInfo("UTC"))
