"""When someone leaves: in one action an admin hands over their open approval tasks (to a named
successor, else their manager) and their customers (to the successor, or to the 公海), and they can
no longer act — Banli answers their messages with a polite refusal (bot/pipeline.py).

Someone the directory no longer lists is inactive at once (workflows/directory.py) and waits here for
the hand-over: `awaiting_handover`, done by an admin's tap on the card every admin gets
(workflows/directory_leavers.py) or by the typed 离职 command."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlmodel import Session

from storage.models import Customer, Employee, OwnershipChange
from workflows import audit
from workflows.approvals import requests


@dataclass(frozen=True)
class Handover:
    tasks: int
    customers: int
    tasks_to: Employee | None
    customers_to: Employee | None  # None: the 公海


def mark_departed(session: Session, leaver: Employee, *, by: Employee, successor: Employee | None,
                  customers_to_pool: bool, now: datetime, tz: str, platform: str) -> Handover:
    if not awaiting_handover(leaver) and not leaver.active:
        raise ValueError(f"{leaver.name}已经是离职状态")
    if successor is not None and (successor.id == leaver.id or not successor.active):
        raise ValueError("交接人要是另一位在职同事")
    leaver.active, leaver.handed_over_at = False, now
    session.add(leaver)
    tasks_to = successor or (session.get(Employee, leaver.manager_id) if leaver.manager_id else None)
    tasks = requests.open_tasks_of(session, leaver)
    if tasks and (tasks_to is None or not tasks_to.active):
        raise ValueError(f"{leaver.name}还有 {len(tasks)} 个待审批，请指定交接人")
    for task in tasks:
        requests.reassign(session, task, tasks_to, reason="已离职", now=now, tz=tz)
    customers_to = None if customers_to_pool or successor is None else successor
    owned = session.execute(select(Customer).where(Customer.owner_id == leaver.id)).scalars().all()
    for customer in owned:
        customer.owner_id, customer.owned_since = (customers_to.id if customers_to else None), now
        session.add(customer)
        session.add(OwnershipChange(customer_id=customer.id, from_owner_id=leaver.id,
                                    to_owner_id=customers_to.id if customers_to else None,
                                    reason="handover" if customers_to else "pool", at=now))
    audit.record(session, actor=by, action="employee.depart", subject=f"employee:{leaver.id}", platform=platform,
                 detail={"tasks": len(tasks), "tasks_to": tasks_to.id if tasks else None, "customers": len(owned),
                         "customers_to": customers_to.id if customers_to else "公海"}, at=now)
    return Handover(tasks=len(tasks), customers=len(owned), tasks_to=tasks_to if tasks else None,
                    customers_to=customers_to)


def awaiting_handover(leaver: Employee) -> bool:
    """Gone from the directory, their tasks and customers not handed over yet."""
    return not leaver.active and leaver.left_at is not None and leaver.handed_over_at is None and \
        leaver.merged_into_id is None
