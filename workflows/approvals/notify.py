"""Pushes about a request, as outbox rows written with the change that causes them.

Keys name the request, the person and the request's version (or the task), so a retried job or a
repeated tap never sends the same news twice.
"""

from __future__ import annotations

import json

from sqlalchemy import select
from sqlmodel import Session

from cards import Card
from storage.models import ApprovalRequest, ApprovalTask, Employee
from workflows.approvals import cards, live
from workflows.pushes import push

def task_assigned(session: Session, request: ApprovalRequest, task: ApprovalTask) -> None:
    key = _push(session, task.approver_id, f"approval:task:{task.id}", cards.task_card(session, request, task))
    live.track(session, request, employee_id=task.approver_id, role="approver", outbox_key=key, task_id=task.id)


def reminder(session: Session, request: ApprovalRequest, task: ApprovalTask, key: str, headline: str) -> None:
    """The task card again, as a new message (a timer's reminder, the requester's 催办)."""
    _push(session, task.approver_id, key, cards.task_card(session, request, task, headline=headline))


def submitted(session: Session, request: ApprovalRequest, cc: tuple[int, ...], tz: str) -> None:
    for person in cc:
        key = _push(session, person, f"approval:cc:{request.id}:{person}",
                    cards.status_card(session, request, tz, headline="抄送给你，供知悉。"))
        live.track(session, request, employee_id=person, role="cc", outbox_key=key)


def progress(session: Session, request: ApprovalRequest, task: ApprovalTask, tz: str) -> None:
    who = session.get(Employee, task.approver_id)
    _push(session, request.requester_id, f"approval:news:{request.id}:v{request.version}",
          cards.status_card(session, request, tz, headline=f"{who.name}已同意，等下一位审批。"))


def finished(session: Session, request: ApprovalRequest, tz: str, task: ApprovalTask | None = None) -> None:
    if request.status == "approved":
        headline = "审批通过了。"
    else:
        who = session.get(Employee, task.approver_id) if task else None
        headline = f"{who.name if who else ''}拒绝了" + (f"，原因：{task.comment}" if task and task.comment else "。")
    _push(session, request.requester_id, f"approval:done:{request.id}",
          cards.status_card(session, request, tz, headline=headline))
    if request.status == "approved":
        for person in json.loads(request.details).get("cc_after", []):
            _push(session, person, f"approval:cc_after:{request.id}:{person}",
                  cards.status_card(session, request, tz, headline="已审批通过，抄送给你，供知悉。"))


def withdrawn(session: Session, request: ApprovalRequest) -> None:
    """Approvers who still had it open learn it is gone (their card's buttons now answer 已撤回)."""
    asked = session.execute(select(ApprovalTask.approver_id).where(ApprovalTask.request_id == request.id,
                                                                   ApprovalTask.step == request.step)).scalars()
    requester = session.get(Employee, request.requester_id)
    for person in set(asked):
        _push(session, person, f"approval:withdrawn:{request.id}:{person}",
              Card(title=f"{request.number} 已撤回", body=f"{requester.name}撤回了{request.type}：{request.summary}，不用审批了。"))


def _push(session: Session, employee_id: int, key: str, card: Card) -> str:
    """The outbox key of the message, or "" when the person cannot be reached."""
    return key if push(session, employee_id, key, card) else ""
