"""Approval timers (rules `oa.remind_hours`, `oa.escalate_hours`, `oa.auto_decide`):

- remind: after X hours a pending approver gets their card again, in working hours only;
- escalate: after Y hours the approver's manager is added to the step and may decide on their
  behalf (the original approver still can, too);
- auto: for the types an admin chose, the step is approved or rejected at its deadline.

Each is a timer row scheduled when the step starts; it checks the request when it fires and does
nothing if the step has moved on. Every firing is in the audit log and on the status card.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session

from storage.models import ApprovalRequest, ApprovalTask, Employee
from workflows import audit, rules, workdays
from workflows.approvals import notify
from workflows.business_time import next_working_moment
from workflows.timers import schedule, timer

REMIND, ESCALATE, AUTO = "approval.remind", "approval.escalate", "approval.auto"


def schedule_step(session: Session, request: ApprovalRequest, tasks: list[ApprovalTask], now: datetime, tz: str) -> None:
    hours = {**rules.get(session, "oa.working_hours"), "days": workdays.for_company(session)}
    remind_at = next_working_moment(now + timedelta(hours=rules.get(session, "oa.remind_hours")), tz, **hours)
    escalate_at = next_working_moment(now + timedelta(hours=rules.get(session, "oa.escalate_hours")), tz, **hours)
    for task in tasks:
        schedule(session, key=f"approval:timer:remind:{task.id}", name=REMIND, due_at=remind_at, task_id=task.id)
        schedule(session, key=f"approval:timer:escalate:{task.id}", name=ESCALATE, due_at=escalate_at,
                 task_id=task.id)
    auto = rules.get(session, "oa.auto_decide").get(request.type)
    if auto:
        schedule(session, key=f"approval:timer:auto:{request.id}:{request.step}", name=AUTO,
                 due_at=now + timedelta(hours=auto["hours"]), request_id=request.id, step=request.step,
                 decision=auto["decision"])


@timer(REMIND)
def remind(session: Session, payload: dict[str, Any], now: datetime, tz: str) -> dict[str, Any]:
    task, request = _open(session, payload["task_id"])
    if task is None:
        return {"skipped": "decided"}
    notify.reminder(session, request, task, f"approval:remind:{task.id}", headline="这一单等你审批很久了，请尽快处理。")
    audit.record(session, actor=None, action="approval.remind", subject=f"approval:{request.id}",
                 detail={"task": task.id, "approver": task.approver_id, "step": task.step}, at=now)
    return {"reminded": task.approver_id}


@timer(ESCALATE)
def escalate(session: Session, payload: dict[str, Any], now: datetime, tz: str) -> dict[str, Any]:
    from workflows.approvals.requests import add_approver  # requests imports this module

    task, request = _open(session, payload["task_id"])
    if task is None:
        return {"skipped": "decided"}
    approver = session.get(Employee, task.approver_id)
    boss = session.get(Employee, approver.manager_id) if approver.manager_id else None
    if boss is None or not boss.active or boss.id == request.requester_id:
        return {"skipped": "no manager to escalate to"}
    added = add_approver(session, request, boss, on_behalf_of=approver, now=now, tz=tz)
    if added is not None:
        audit.record(session, actor=None, action="approval.escalate", subject=f"approval:{request.id}",
                     detail={"from": approver.id, "to": boss.id, "step": task.step}, at=now)
    return {"escalated_to": boss.id if added else None}


@timer(AUTO)
def auto_decide(session: Session, payload: dict[str, Any], now: datetime, tz: str) -> dict[str, Any]:
    from workflows.approvals.requests import decide_for_step

    request = session.get(ApprovalRequest, payload["request_id"])
    if request is None or request.status != "pending" or request.step != payload["step"]:
        return {"skipped": "moved on"}
    decide_for_step(session, request, approve=payload["decision"] == "approve", now=now, tz=tz)
    return {"decided": payload["decision"]}


def _open(session: Session, task_id: int) -> tuple[ApprovalTask | None, ApprovalRequest | None]:
    task = session.get(ApprovalTask, task_id)
    request = session.get(ApprovalRequest, task.request_id) if task else None
    if task is None or task.status != "pending" or request.status != "pending" or request.step != task.step:
        return None, None
    return task, request
