"""Who may see or act on a request: the one check every approval tap and typed command goes through.

- Anyone *involved* may see a request and comment on it: the requester, everyone who holds or held a
  task on it (and whom they decided for), everyone it was copied to, and admins.
- Only the requester may submit, change, discard, withdraw or nudge it.
- Only the holder of an open task may decide it (同意, 拒绝, 转交, 加签, 退回) — never the requester.

An outsider learns nothing, not even what the request is about: the same short answer whatever they
tried. The caller writes the refusal to the audit log (workflows.audit.refused), in the transaction
that sends the answer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlmodel import Session

from storage.models import ApprovalCard, ApprovalRequest, ApprovalTask, Employee
from workflows import roles

VIEW, COMMENT, DECIDE = "view", "comment", "decide"
REQUESTER_ONLY = {"submit": "提交", "choose": "选审批人", "discard": "取消", "withdraw": "撤回", "nudge": "催办"}
ACTIONS = {VIEW, COMMENT, DECIDE, *REQUESTER_ONLY}


@dataclass(frozen=True)
class Refusal:
    why: str  # for the audit log, in English
    title: str  # what the person is told
    body: str


NOT_YOURS = Refusal("not involved", "这不是你的申请", "只有申请人、审批人和抄送人能查看或处理这一单。")
NOT_YOUR_CARD = Refusal("not the approver", "这张卡片不是给你的", "只有卡片上的审批人才能处理。")


def check(session: Session, person: Employee, request: ApprovalRequest | None, action: str,
          task: ApprovalTask | None = None) -> Refusal | None:
    """None if `person` may do `action` on `request` (with `task`, for a tap on a task card);
    otherwise why not. A missing request is refused like someone else's: ids are not secrets."""
    if action not in ACTIONS:
        raise ValueError(f"unknown approval action {action!r}")
    if request is None or not involved(session, person, request):
        return NOT_YOURS
    if action in REQUESTER_ONLY and request.requester_id != person.id:
        return Refusal("not the requester", "只有申请人能操作",
                       f"{request.number}要由申请人自己{REQUESTER_ONLY[action]}。")
    if action == DECIDE and request.requester_id == person.id:
        return Refusal("own request", "不能审批自己的申请",
                       f"{request.number}是你提交的，要等审批人处理。想快一点，可以发「催办 {request.number}」。")
    if action == DECIDE and task is not None and task.approver_id != person.id:
        return NOT_YOUR_CARD
    return None


def involved(session: Session, person: Employee, request: ApprovalRequest) -> bool:
    if request.requester_id == person.id or roles.is_admin(session, person):
        return True
    if request.status == "draft":
        return False  # nobody else has been shown it yet
    had_task = session.execute(select(ApprovalTask.id).where(
        ApprovalTask.request_id == request.id,
        or_(ApprovalTask.approver_id == person.id, ApprovalTask.on_behalf_of_id == person.id)).limit(1)).first()
    if had_task is not None:
        return True
    has_card = session.execute(select(ApprovalCard.id).where(
        ApprovalCard.request_id == request.id, ApprovalCard.employee_id == person.id).limit(1)).first()
    if has_card is not None:
        return True
    # Copied after approval: part of it once it is approved, not before.
    return request.status == "approved" and person.id in json.loads(request.details).get("cc_after", [])
