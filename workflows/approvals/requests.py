"""A request's life: draft → submitted (chain pinned) → decided step by step → approved / rejected,
or withdrawn by the requester while pending.

Every state change bumps `approval_request.version` with a conditional UPDATE (`… WHERE version =
:seen`). Two approvers tapping at the same moment both read the same version; the database lets
exactly one UPDATE match, and the other is told who decided first. Pushes (the next approver's card,
the requester's news) are outbox rows in the same transaction, keyed by request, step and version,
so nothing is sent twice and nothing is sent for a change that rolled back.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlmodel import Session

from storage.models import ApprovalRequest, ApprovalTask, Employee
from workflows import audit, signals
from workflows.approvals import away, live, notify
from workflows.approvals import timers as approval_timers
from workflows.approvals.chain import Plan, Step, instead_of_requester, plan
from workflows.approvals.parse import Draft

APPROVAL_DECIDED = "approval.decided"  # request, approved (bool), by, tz


class Stale(Exception):
    """The task or request was already decided (or withdrawn); nothing changed."""

    def __init__(self, request: ApprovalRequest, by: str = "", at: datetime | None = None) -> None:
        super().__init__(request.number)
        self.request, self.by, self.at = request, by, at


class NeedsChoice(Exception):
    """A step of this request is the requester's choice: pick someone before submitting."""


def choose_approver(session: Session, request: ApprovalRequest, person: Employee, *, by: Employee) -> None:
    if request.requester_id != by.id or request.status != "draft":
        raise NotYours()
    if person.id == by.id or not person.active:
        raise ValueError("请选另一位在职同事")
    request.details = json.dumps({**json.loads(request.details), "chosen": person.id}, ensure_ascii=False)
    session.add(request)


class NotYours(Exception):
    """Someone tapped a card that is not theirs to act on."""


class OwnRequest(NotYours):
    """The requester tried to decide their own request."""


@dataclass(frozen=True)
class Outcome:
    request: ApprovalRequest
    finished_step: bool  # the step is done (the request moved on, or ended)


def draft(session: Session, requester: Employee, parsed: Draft, *, source_key: str, now: datetime) -> ApprovalRequest:
    """The request as understood from one message; the same message always gives the same draft."""
    existing = session.execute(select(ApprovalRequest).where(ApprovalRequest.source_key == source_key)).scalars().first()
    if existing is not None:
        return existing
    request = ApprovalRequest(type=parsed.type, requester_id=requester.id, summary=parsed.summary[:128],
                              details=json.dumps(parsed.details, ensure_ascii=False), amount=parsed.amount,
                              source_key=source_key, created_at=now)
    session.add(request)
    session.flush()
    return request


def preview(session: Session, request: ApprovalRequest) -> Plan:
    requester = session.get(Employee, request.requester_id)
    return plan(session, requester, request.type, facts(request))


def facts(request: ApprovalRequest) -> dict:
    details = json.loads(request.details)
    return {"amount": request.amount, "days": details.get("days"), "category": details.get("category"),
            "tier": details.get("tier"), "chosen": details.get("chosen")}


def submit(session: Session, request: ApprovalRequest, *, by: Employee, now: datetime, platform: str,
           tz: str, card_key: str = "") -> bool:
    """Pin the chain and start step 1. False if it was already submitted (a repeated tap).
    `card_key`: the outbox key of the card the requester will see, kept up to date from now on."""
    if request.requester_id != by.id:
        raise NotYours()
    chosen = preview(session, request)
    if chosen.needs_choice:
        raise NeedsChoice()
    steps = [s.to_dict() for s in chosen.steps]
    # Pinned with the chain: who hears of the approval.
    details = json.dumps({**json.loads(request.details), "cc_after": list(chosen.cc_after)}, ensure_ascii=False)
    if not _bump(session, request, expect_status="draft", status="pending", submitted_at=now, details=details,
                 chain=json.dumps(steps, ensure_ascii=False), step=0, rule_id=chosen.rule.id if chosen.rule else None,
                 rule_version=chosen.rule.version if chosen.rule else 0):
        return False
    audit.record(session, actor=by, action="approval.submit", subject=f"approval:{request.id}", platform=platform,
                 detail={"chain": steps, "rule": request.rule_id, "rule_version": request.rule_version}, at=now)
    live.track(session, request, employee_id=by.id, role="requester", outbox_key=card_key)
    notify.submitted(session, request, chosen.cc, tz)
    _start_step(session, request, now, tz)
    return True


def decide(session: Session, task_id: int, *, by: Employee, approve: bool, comment: str, now: datetime,
           platform: str, tz: str) -> Outcome:
    task = session.get(ApprovalTask, task_id)
    if task is None or task.approver_id != by.id:
        raise NotYours()
    request = session.get(ApprovalRequest, task.request_id)
    if request.requester_id == by.id:  # no path assigns this any more; old rows must not slip through
        raise OwnRequest()
    _take_turn(session, request, task)
    task.status, task.comment, task.decided_at = ("approved" if approve else "rejected"), comment[:255], now
    session.add(task)
    _close_stand_ins(session, request, task, now)
    audit.record(session, actor=by, action="approval.approve" if approve else "approval.reject",
                 subject=f"approval:{request.id}", platform=platform,
                 detail={"step": task.step, "comment": comment, "version": request.version}, at=now)
    finished = _after_decision(session, request, task, approve, now, tz)
    live.refresh(session, request, tz, headline=_headline(by, approve, comment, request))
    if request.status in ("approved", "rejected"):
        signals.emit(session, APPROVAL_DECIDED, request=request, approved=request.status == "approved", by=by,
                     tz=tz)
    return Outcome(request=request, finished_step=finished)


TURN_TRIES = 20  # more than the approvers of any real step


def _take_turn(session: Session, request: ApprovalRequest, task: ApprovalTask) -> None:
    """Win the request's guarded version bump for `task`, or raise Stale.

    Losing the bump means someone else changed the request first. In a 或签 step (or a rejection)
    that made my task stale; in a 会签 step it did not — their approval and mine both count. So read
    both rows again and try again: on PostgreSQL the losing UPDATE waited for the winner's commit,
    so the second read sees it, and the last of the step's approvers finds the step complete."""
    for _ in range(TURN_TRIES):
        if task.status != "pending" or request.status != "pending" or request.step != task.step:
            raise already_decided(session, request)
        if _bump(session, request):
            return
        session.refresh(request)
        session.refresh(task)
    raise already_decided(session, request)


def withdraw(session: Session, request: ApprovalRequest, *, by: Employee, now: datetime, platform: str,
             tz: str) -> None:
    if request.requester_id != by.id:
        raise NotYours()
    if request.status != "pending" or not _bump(session, request, expect_status="pending", status="withdrawn",
                                                 decided_at=now):
        raise already_decided(session, request)
    _close_open_tasks(session, request, now)
    audit.record(session, actor=by, action="approval.withdraw", subject=f"approval:{request.id}", platform=platform, at=now)
    notify.withdrawn(session, request)
    live.refresh(session, request, tz, headline=f"{by.name}撤回了申请。")


def transfer(session: Session, task_id: int, *, by: Employee, to: Employee, now: datetime, platform: str,
             tz: str) -> ApprovalTask:
    """转交: hand my task to a colleague; the step waits for them instead of me."""
    task, request = _my_open_task(session, task_id, by)
    _check_newcomer(session, request, to)
    if not _bump(session, request):
        raise already_decided(session, request)
    task.status, task.decided_at, task.comment = "transferred", now, f"转交给{to.name}"
    session.add(task)
    new = _assign(session, request, request.step, to, now, tz)
    audit.record(session, actor=by, action="approval.transfer", subject=f"approval:{request.id}", platform=platform,
                 detail={"from": by.id, "to": to.id, "step": request.step}, at=now)
    live.refresh(session, request, tz, headline=f"{by.name}转交给了{to.name}。")
    return new


def add_signer(session: Session, task_id: int, *, by: Employee, who: Employee, before: bool, now: datetime,
               platform: str, tz: str) -> None:
    """加签: put `who` in a step of their own before mine (they decide first, then the step comes
    back to me) or after mine (they decide once my step is done)."""
    task, request = _my_open_task(session, task_id, by)
    _check_newcomer(session, request, who)
    steps = chain_of(request)
    added = Step(label=f"加签（{by.name}）", mode="any", approvers=(who.id,))
    at = request.step if before else request.step + 1
    steps.insert(at, added)
    chain = json.dumps([s.to_dict() for s in steps], ensure_ascii=False)
    if not _bump(session, request, chain=chain):
        raise already_decided(session, request)
    audit.record(session, actor=by, action="approval.add_signer", subject=f"approval:{request.id}", platform=platform,
                 detail={"who": who.id, "before": before, "step": at}, at=now)
    if before:  # the current step moves one place on; its people are asked again when it comes back
        for open_task in _open_tasks(session, request):
            open_task.status, open_task.decided_at, open_task.comment = "skipped", now, f"加签给{who.name}"
            session.add(open_task)
        _start_step(session, request, now, tz)
    live.refresh(session, request, tz, headline=f"{by.name}加签了{who.name}（{'在我之前' if before else '在我之后'}）。")


def send_back(session: Session, task_id: int, *, by: Employee, to_step: int | None, comment: str, now: datetime,
              platform: str, tz: str) -> int:
    """退回: the request goes back to an earlier step (default: the one before mine), whose people
    decide again. Returns the step it went back to."""
    task, request = _my_open_task(session, task_id, by)
    target = request.step - 1 if to_step is None else to_step
    if request.step == 0:
        raise ValueError("这已经是第一步，没有可以退回的")
    if not 0 <= target < request.step:
        raise ValueError(f"只能退回到第1到第{request.step}步")
    for open_task in _open_tasks(session, request):
        open_task.status, open_task.decided_at = "returned", now
        open_task.comment = comment[:255] if open_task.id == task.id else open_task.comment
        session.add(open_task)
    if not _bump(session, request, step=target):
        raise already_decided(session, request)
    audit.record(session, actor=by, action="approval.return", subject=f"approval:{request.id}", platform=platform,
                 detail={"from_step": task.step, "to_step": target, "comment": comment}, at=now)
    _start_step(session, request, now, tz)
    live.refresh(session, request, tz, headline=f"{by.name}退回到第{target + 1}步" + (f"：{comment}" if comment else "。"))
    return target


def change_draft(session: Session, request: ApprovalRequest, **changes) -> bool:
    """Change a draft with the guarded write every request change uses; False (and `request` read
    again) if a submit or another change got in first."""
    won = _bump(session, request, expect_status="draft", **changes)
    if not won:
        session.refresh(request)
    return won


def comment_on(session: Session, request: ApprovalRequest, *, by: Employee, text: str, now: datetime,
               platform: str) -> None:
    """A note on the request's history, by anyone involved."""
    audit.record(session, actor=by, action="approval.comment", subject=f"approval:{request.id}", platform=platform,
                 detail={"text": text[:200], "by": by.id}, at=now)


def reassign(session: Session, task: ApprovalTask, to: Employee, *, reason: str, now: datetime, tz: str) -> ApprovalTask:
    """Move an open task to `to`, on behalf of its approver (a leaver's hand-over)."""
    request = session.get(ApprovalRequest, task.request_id)
    leaver = session.get(Employee, task.approver_id)
    task.status, task.decided_at, task.comment = "transferred", now, reason[:255]
    session.add(task)
    _bump(session, request)
    new = _assign(session, request, task.step, to, now, tz, on_behalf_of=leaver)
    live.refresh(session, request, tz, headline=f"{leaver.name}{reason}，转给{session.get(Employee, new.approver_id).name}。")
    return new


def open_tasks_of(session: Session, employee: Employee) -> list[ApprovalTask]:
    return [task for task, _ in waiting_for(session, employee)]


def add_approver(session: Session, request: ApprovalRequest, person: Employee, *, on_behalf_of: Employee,
                 now: datetime, tz: str) -> ApprovalTask | None:
    """Put `person` on the current step, deciding on behalf of `on_behalf_of` (escalation).
    None if they already have an open task in this step."""
    if any(t.approver_id == person.id for t in _open_tasks(session, request)):
        return None
    return _assign(session, request, request.step, person, now, tz, on_behalf_of=on_behalf_of)


def decide_for_step(session: Session, request: ApprovalRequest, *, approve: bool, now: datetime, tz: str) -> None:
    """A deadline decided the step (no person did): approve it and move on, or reject the request."""
    if not _bump(session, request):
        raise already_decided(session, request)
    audit.record(session, actor=None, action="approval.auto_approve" if approve else "approval.auto_reject",
                 subject=f"approval:{request.id}", detail={"step": request.step}, at=now)
    _close_open_tasks(session, request, now)
    if approve:
        _bump(session, request, step=request.step + 1)
        _start_step(session, request, now, tz)
    else:
        _bump(session, request, status="rejected", decided_at=now)
        notify.finished(session, request, tz)
        signals.emit(session, APPROVAL_DECIDED, request=request, approved=False, by=None, tz=tz)
    live.refresh(session, request, tz, headline="到期自动" + ("同意" if approve else "拒绝") + "。")


class TooSoon(Exception):
    """催办 at most once an hour per step."""

    def __init__(self, last: datetime) -> None:
        super().__init__(str(last))
        self.last = last


NUDGE_EVERY = timedelta(hours=1)


def nudge(session: Session, request: ApprovalRequest, *, by: Employee, now: datetime, platform: str) -> int:
    """Remind the current step's approvers again; returns how many were told."""
    if request.requester_id != by.id:
        raise NotYours()
    if request.status != "pending":
        raise already_decided(session, request)
    last = next((e for e in audit.entries(session, subject=f"approval:{request.id}", action="approval.nudge")
                 if json.loads(e.detail).get("step") == request.step), None)
    if last is not None and now - last.at < NUDGE_EVERY:
        raise TooSoon(last.at)
    waiting = [t for t in tasks_of(session, request) if t.step == request.step and t.status == "pending"]
    for task in waiting:
        notify.reminder(session, request, task, f"approval:nudge:{task.id}:{now:%Y%m%d%H%M}",
                        headline=f"{by.name}催办：这一单在等你审批。")
    audit.record(session, actor=by, action="approval.nudge", subject=f"approval:{request.id}", platform=platform,
                 detail={"step": request.step, "approvers": [t.approver_id for t in waiting]}, at=now)
    return len(waiting)


def by_number(session: Session, text: str) -> ApprovalRequest | None:
    """R-1024 (or r1024, 1024) → the request."""
    digits = "".join(ch for ch in text if ch.isdigit())
    return session.get(ApprovalRequest, int(digits) - 1000) if digits and int(digits) > 1000 else None


def mine(session: Session, employee: Employee, limit: int = 8) -> list[ApprovalRequest]:
    return list(session.execute(select(ApprovalRequest).where(
        ApprovalRequest.requester_id == employee.id, ApprovalRequest.status != "draft")
        .order_by(ApprovalRequest.id.desc()).limit(limit)).scalars())


def waiting_for(session: Session, employee: Employee) -> list[tuple[ApprovalTask, ApprovalRequest]]:
    rows = session.execute(select(ApprovalTask, ApprovalRequest)
                           .join(ApprovalRequest, ApprovalRequest.id == ApprovalTask.request_id)
                           .where(ApprovalTask.approver_id == employee.id, ApprovalTask.status == "pending",
                                  ApprovalRequest.status == "pending").order_by(ApprovalTask.id)).all()
    return [(t, r) for t, r in rows]


def chain_of(request: ApprovalRequest) -> list[Step]:
    return [Step.from_dict(s) for s in json.loads(request.chain)]


def tasks_of(session: Session, request: ApprovalRequest) -> list[ApprovalTask]:
    """Fresh from the database: a 会签 decision must see a co-approver's decision committed a moment
    ago, not the copy this session loaded before it (populate_existing; pending changes flush first)."""
    return list(session.execute(select(ApprovalTask).where(ApprovalTask.request_id == request.id)
                                .order_by(ApprovalTask.step, ApprovalTask.id)
                                .execution_options(populate_existing=True)).scalars())


# -- helpers ------------------------------------------------------------------------------------


def _bump(session: Session, request: ApprovalRequest, *, expect_status: str | None = None, **changes) -> bool:
    """The one guarded write: succeeds for exactly one of any number of concurrent callers."""
    query = update(ApprovalRequest).where(ApprovalRequest.id == request.id,
                                          ApprovalRequest.version == request.version)
    if expect_status is not None:
        query = query.where(ApprovalRequest.status == expect_status)
    won = session.execute(query.values(version=request.version + 1, **changes)).rowcount == 1
    if won:
        session.refresh(request)
    return won


def _start_step(session: Session, request: ApprovalRequest, now: datetime, tz: str) -> None:
    steps = chain_of(request)
    if request.step >= len(steps):  # nobody to ask (auto-pass rule): approved as submitted
        _bump(session, request, status="approved", decided_at=now)
        notify.finished(session, request, tz)
        signals.emit(session, APPROVAL_DECIDED, request=request, approved=True, by=None, tz=tz)
        return
    for approver_id in steps[request.step].approvers:
        _assign(session, request, request.step, session.get(Employee, approver_id), now, tz)


def _after_decision(session: Session, request: ApprovalRequest, task: ApprovalTask, approve: bool,
                    now: datetime, tz: str) -> bool:
    if not approve:
        _bump(session, request, status="rejected", decided_at=now)
        _close_open_tasks(session, request, now)
        notify.finished(session, request, tz, task)
        return True
    step = chain_of(request)[request.step]
    still_open = [t for t in tasks_of(session, request) if t.step == request.step and t.status == "pending"]
    if step.mode == "all" and still_open:
        notify.progress(session, request, task, tz)
        return False
    _close_open_tasks(session, request, now)
    _bump(session, request, step=request.step + 1)
    if request.step < len(chain_of(request)):
        notify.progress(session, request, task, tz)
    _start_step(session, request, now, tz)
    return True


def _headline(by: Employee, approve: bool, comment: str, request: ApprovalRequest) -> str:
    verb = "同意" if approve else "拒绝"
    reason = f"（{comment}）" if comment else ""
    then = {"approved": "，审批通过。", "rejected": "，申请未通过。"}.get(request.status, "，等下一位审批。")
    return f"{by.name}{verb}了{reason}{then}"


def _my_open_task(session: Session, task_id: int, by: Employee) -> tuple[ApprovalTask, ApprovalRequest]:
    task = session.get(ApprovalTask, task_id)
    if task is None or task.approver_id != by.id:
        raise NotYours()
    request = session.get(ApprovalRequest, task.request_id)
    if task.status != "pending" or request.status != "pending" or request.step != task.step:
        raise already_decided(session, request)
    return task, request


def _check_newcomer(session: Session, request: ApprovalRequest, person: Employee) -> None:
    if not person.active:
        raise ValueError(f"{person.name}已离职")
    if person.id == request.requester_id:
        raise ValueError("不能交给申请人自己审批")
    if any(t.approver_id == person.id for t in _open_tasks(session, request)):
        raise ValueError(f"{person.name}已经在审批这一步了")


def _open_tasks(session: Session, request: ApprovalRequest) -> list[ApprovalTask]:
    return _open_tasks_in(session, request, request.step)


def _open_tasks_in(session: Session, request: ApprovalRequest, step: int) -> list[ApprovalTask]:
    return [t for t in tasks_of(session, request) if t.step == step and t.status == "pending"]


def _assign(session: Session, request: ApprovalRequest, step: int, person: Employee, now: datetime, tz: str,
            on_behalf_of: Employee | None = None) -> ApprovalTask:
    """The one place a task is created — for `person`, or for their stand-in if they are away.

    Every way a seat is filled (the chain, 转交, 加签, a leaver's hand-over, escalation, delegation,
    approved leave) ends here, so this is where self-approval is ruled out: a seat that would fall
    to the requester goes up the chain instead, and the history says why."""
    if on_behalf_of is None:
        substitute = away.stand_in(session, person, now, tz)
        if substitute is not None and substitute.id != request.requester_id:
            person, on_behalf_of = substitute, person
    if person.id == request.requester_id:
        person = _instead_of_requester(session, request, step, now)
    already = next((t for t in _open_tasks_in(session, request, step) if t.approver_id == person.id), None)
    if already is not None:
        return already  # the seat went to someone already deciding this step: one task is enough
    task = ApprovalTask(request_id=request.id, step=step, approver_id=person.id, created_at=now,
                        on_behalf_of_id=on_behalf_of.id if on_behalf_of else None)
    session.add(task)
    session.flush()
    notify.task_assigned(session, request, task)
    approval_timers.schedule_step(session, request, [task], now, tz)
    return task


class NoApprover(ValueError):
    """Nobody but the requester could take a seat: the change is refused, nothing is written."""


def _instead_of_requester(session: Session, request: ApprovalRequest, step: int, now: datetime) -> Employee:
    requester = session.get(Employee, request.requester_id)
    person = instead_of_requester(session, requester)
    if person is None:
        raise NoApprover(f"这一步只能交给{requester.name}本人，申请人不能审批自己的申请；请另选一位审批人")
    audit.record(session, actor=None, action="approval.reroute", subject=f"approval:{request.id}",
                 detail={"from": requester.id, "to": person.id, "step": step,
                         "why": "申请人不能审批自己的申请"}, at=now)
    return person


def _close_stand_ins(session: Session, request: ApprovalRequest, task: ApprovalTask, now: datetime) -> None:
    """An escalated step has two people for one seat: once either decides, the other's task closes."""
    for other in session.execute(select(ApprovalTask).where(
            ApprovalTask.request_id == request.id, ApprovalTask.step == task.step, ApprovalTask.status == "pending",
            (ApprovalTask.on_behalf_of_id == task.approver_id) | (ApprovalTask.approver_id == task.on_behalf_of_id)
    )).scalars():
        other.status, other.decided_at = "skipped", now
        session.add(other)


def _close_open_tasks(session: Session, request: ApprovalRequest, now: datetime) -> None:
    for open_task in session.execute(select(ApprovalTask).where(ApprovalTask.request_id == request.id,
                                                                ApprovalTask.status == "pending")).scalars():
        open_task.status, open_task.decided_at = "skipped", now
        session.add(open_task)


def already_decided(session: Session, request: ApprovalRequest) -> Stale:
    last = session.execute(select(ApprovalTask).where(ApprovalTask.request_id == request.id,
                                                      ApprovalTask.status.in_(("approved", "rejected")))
                           .order_by(ApprovalTask.decided_at.desc())).scalars().first()
    if last is None:
        return Stale(request)
    person = session.get(Employee, last.approver_id)
    return Stale(request, by=person.name if person else "", at=last.decided_at)
