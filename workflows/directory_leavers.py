"""Someone left the directory: every admin gets a card 「张三 已离职」 with one-tap hand-overs (to
their manager, to the 公海, or to a person the admin names), done by the 离职 flow
(workflows/leavers.py). The first tap does it; every admin's card then says who did what."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlmodel import Session

from cards import Button, Card
from storage import outbox
from storage.models import Customer, Employee, Outbox
from workflows import audit, pushes, roles
from workflows.approvals import requests

HANDOVER = "leaver_handover"  # value "<employee id>:manager" | "<employee id>:pool"
PICK = "leaver_pick"  # value "<employee id>": how to name a successor


def _admins(session: Session) -> list[Employee]:
    return [person for person in roles.people_with(session, "admin") if person.active]


def _is_admin(session: Session, employee: Employee) -> bool:
    return employee.active and roles.is_admin(session, employee)


def is_admin(session: Session, employee: Employee) -> bool:
    return _is_admin(session, employee)


def card_key(leaver_id: int, admin_id: int) -> str:
    return f"leaver:{leaver_id}:{admin_id}"


def announce(session: Session, leaver: Employee, *, platform: str, now: datetime) -> int:
    """Audit the departure and push the hand-over card to each admin; returns how many were queued."""
    audit.record(session, actor=None, action="employee.left_directory", subject=f"employee:{leaver.id}",
                 platform="system", detail={"platform": platform}, at=now)
    card = handover_card(session, leaver)
    return sum(pushes.push(session, admin.id, card_key(leaver.id, admin.id), card) for admin in _admins(session))


def handover_card(session: Session, leaver: Employee) -> Card:
    customers = session.execute(select(func.count()).select_from(Customer)
                                .where(Customer.owner_id == leaver.id)).scalar_one()
    tasks = len(requests.open_tasks_of(session, leaver))
    manager = session.get(Employee, leaver.manager_id) if leaver.manager_id else None
    buttons = []
    if manager is not None and manager.active:
        label = f"交给上级{manager.name}"
        buttons.append(Button(label if len(label) <= 10 else "交给TA的上级", HANDOVER, f"{leaver.id}:manager",
                              style="primary"))
    buttons += [Button("放回公海", HANDOVER, f"{leaver.id}:pool"), Button("选择接手人", PICK, str(leaver.id))]
    where = f"（{leaver.department}）" if leaver.department else ""
    return Card(title=f"{leaver.name} 已离职", buttons=tuple(buttons),
                body=f"通讯录里已经没有{leaver.name}{where}了。TA 有 {customers} 个客户、{tasks} 个待审批，请选择交给谁。",
                fields=(("上级", manager.name if manager else "无"),),
                footer="客户放回公海时，待审批交给TA的上级")


def done_card(leaver: Employee, by: Employee, tasks_to: Employee | None, customers_to: Employee | None) -> Card:
    where = f"客户交给{customers_to.name}" if customers_to else "客户放回公海"
    tasks = f"，待审批交给{tasks_to.name}" if tasks_to else ""
    return Card(title=f"{leaver.name} 已离职 · 已交接", body=f"{by.name} 已办理：{where}{tasks}。")


def refresh_cards(session: Session, leaver: Employee, card: Card) -> int:
    """Replace every admin's hand-over card for `leaver` with `card` (the buttons go)."""
    prefix = f"leaver:{leaver.id}:"
    rows = session.execute(select(Outbox.key, Outbox.platform, Outbox.recipient)
                           .where(Outbox.key.like(prefix + "%"), Outbox.kind == "message")).all()
    return sum(outbox.add(session, key=f"{row.key}:done", kind="card_update", platform=row.platform,
                          recipient=row.recipient, payload={"target": row.key, "card": card.to_dict()})
               for row in rows)
