"""Every card of a request shows its current state.

Each card sent about a request (the requester's, each approver's, each CC's) is remembered by its
outbox key. After every change, each one gets a `card_update` outbox row with the card as that
person should now see it: the approver who acted sees the outcome without buttons, the requester
sees the status. How a platform updates (WeCom's single-use response code, DingTalk's card PUT)
and what happens when it cannot (the code is spent or older than 72 h, a markdown message) is the
edge's business (banli/delivery.py); a tap on a card that could not be updated still answers
"已处理" and changes nothing.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlmodel import Session

from cards import Card
from storage import outbox
from storage.models import ApprovalCard, ApprovalRequest, ApprovalTask, Outbox
from workflows.approvals import cards


def track(session: Session, request: ApprovalRequest, *, employee_id: int, role: str, outbox_key: str,
          task_id: int | None = None) -> None:
    if not outbox_key:
        return
    session.add(ApprovalCard(request_id=request.id, employee_id=employee_id, role=role, outbox_key=outbox_key,
                             task_id=task_id))


def refresh(session: Session, request: ApprovalRequest, tz: str, headline: str = "") -> int:
    """Queue an update of every card of `request`; returns how many."""
    tracked = session.execute(select(ApprovalCard).where(ApprovalCard.request_id == request.id)
                              .order_by(ApprovalCard.id)).scalars().all()
    queued = 0
    for card in tracked:
        if _still_deciding(session, request, card):
            continue  # their card already asks them to decide; keep its one update for the outcome
        target = session.execute(select(Outbox.platform, Outbox.recipient)
                                 .where(Outbox.key == card.outbox_key)).first()
        if target is None:
            continue
        queued += outbox.add(session, key=f"approval:refresh:{card.id}:v{request.version}", kind="card_update",
                             platform=target.platform, recipient=target.recipient,
                             payload={"target": card.outbox_key, "card": _view(session, request, card, tz, headline).to_dict()})
    return queued


def _still_deciding(session: Session, request: ApprovalRequest, card: ApprovalCard) -> bool:
    if card.role != "approver" or card.task_id is None or request.status != "pending":
        return False
    return session.get(ApprovalTask, card.task_id).status == "pending"


def _view(session: Session, request: ApprovalRequest, card: ApprovalCard, tz: str, headline: str) -> Card:
    if card.role == "requester" and request.status == "pending":
        return cards.submitted_card(session, request, headline=headline)
    return cards.status_card(session, request, tz, headline=headline)
