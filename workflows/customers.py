"""Customers as the CRM handlers need them: find by what people type, who may act on one.

The matching index is held per process and kept up to date from the customer change log
(workflows/customer_index.py), so a message costs two index probes plus a few ms of matching.
"""

from __future__ import annotations

import json
from typing import Callable

from sqlalchemy import func, select
from sqlmodel import Session

from storage.models import AuditLog, Customer, Employee, Outbox
from workflows import customer_index, roles
from workflows.matching import CustomerIndex, MatchResult

def find(session: Session, query: str, *, owner_id: int) -> MatchResult:
    """Match `query`; ties go to the asker's own customers (docs/architecture.md §4)."""
    return index(session).match(query, prefer=own_ids(session, owner_id))


def own_ids(session: Session, owner_id: int) -> set[int]:
    """The customers `owner_id` owns: they win ties when a name could be several."""
    return set(session.execute(select(Customer.id).where(Customer.owner_id == owner_id)).scalars())


WORDS_MAX_NAME = 30  # a longer "name" would not be read back as one (handlers/customers.LOOKUP_MAX_CHARS)


def words_naming(session: Session, customer: Customer, verb: str) -> str:
    """`拜访 腾讯科技(深圳)有限公司`: typed words that name this customer and no other, for a button that
    can only send words (DingTalk's tap-to-send links). Its legal name, when the matcher reads that
    name back as this very customer whoever asks; "" when it cannot — a space in the name, or another
    customer of the same name — and the button keeps its `#action id` form (docs/dingtalk.md §4.10)."""
    return namer(session)(customer, verb)


def namer(session: Session) -> Callable[[Customer, str], str]:
    """`words_naming` for the buttons of one card."""

    def words(customer: Customer, verb: str) -> str:
        name = customer.name.strip()
        if not name or len(name) > WORDS_MAX_NAME or any(ch.isspace() for ch in name):
            return ""
        # A legal name typed whole is read as the customer of that legal name (the matcher's first,
        # exact step), so the words are safe when no other customer has it. One indexed count, not the
        # matcher: logging a follow-up (its reminder's 已跟进) must not load a million names. Two names
        # that differ only in width or brackets pass here and get the matcher's chooser — a question,
        # never the wrong customer.
        same = session.execute(select(func.count(Customer.id)).where(Customer.name == customer.name)).scalar()
        return f"{verb} {name}" if same == 1 else ""
    return words


def index(session: Session) -> CustomerIndex:
    """This process's name matcher for the session's database, up to date (workflows/customer_index.py)."""
    return customer_index.current(session)


def get(session: Session, customer_id: int) -> Customer | None:
    """The customer, or the one it was merged into (a card or form may still name a merged id)."""
    return session.get(Customer, customer_id) or redirect(session, customer_id)


MERGED_INTO = "customer.merged_into"  # the audit row a merge leaves under the merged customer's subject
REDIRECT_HOPS = 5  # A into B, later B into C: an old id follows the chain this far


def redirect(session: Session, customer_id: int) -> Customer | None:
    """The customer `customer_id` was merged into (following later merges), or None if it never was
    (workflows/customer_merge.py)."""
    for _ in range(REDIRECT_HOPS):
        detail = session.execute(select(AuditLog.detail).where(AuditLog.subject == f"customer:{customer_id}",
                                                               AuditLog.action == MERGED_INTO)
                                 .order_by(AuditLog.id.desc()).limit(1)).scalar()
        if detail is None:
            return None
        customer_id = int(json.loads(detail)["into"])
        found = session.get(Customer, customer_id)
        if found is not None:
            return found
    return None


def may_log(session: Session, employee: Employee, customer: Customer) -> bool:
    """The owner, anyone above the owner, admins, and anyone on a 公海 customer (no owner)."""
    if customer.owner_id is None or customer.owner_id == employee.id or roles.is_admin(session, employee):
        return True
    return employee.id in managers_of(session, customer.owner_id)


def may_see_details(session: Session, employee: Employee, customer: Customer) -> bool:
    """Contact phones and deal amounts: the owner, the owner's managers up the chain, admins.
    A 公海 customer has no owner, so only admins see its details."""
    if roles.is_admin(session, employee) or (customer.owner_id is not None and customer.owner_id == employee.id):
        return True
    return customer.owner_id is not None and employee.id in managers_of(session, customer.owner_id)


def owner_name(session: Session, customer: Customer) -> str:
    owner = session.get(Employee, customer.owner_id) if customer.owner_id else None
    return owner.name if owner else "公海"


def original_text(session: Session, platform: str, event_id: str, sender: str) -> str | None:
    """The text of an earlier message of `sender`, from its inbound record (button taps refer to it)."""
    payload = session.execute(select(Outbox.payload).where(
        Outbox.key == f"inbound:{platform}:{event_id}", Outbox.recipient == sender)).scalar()
    return json.loads(payload).get("text") if payload else None


def managers_of(session: Session, employee_id: int, limit: int = 10) -> set[int]:
    """Everyone above `employee_id` in the manager chain (a loop in the data stops at `limit`)."""
    chain: set[int] = set()
    current = session.get(Employee, employee_id)
    while current and current.manager_id and current.manager_id not in chain and len(chain) < limit:
        chain.add(current.manager_id)
        current = session.get(Employee, current.manager_id)
    return chain
