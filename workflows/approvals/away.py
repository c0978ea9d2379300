"""Approvers who are away: a delegation for a date range, or Banli's own approved 请假 for today.

When a task would go to someone away, it goes to their stand-in instead, recorded as on their
behalf: the delegate they named, or (on leave without one) their manager.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlmodel import Session

from storage.models import ApprovalRequest, Delegation, Employee
from workflows import audit


def stand_in(session: Session, person: Employee, now: datetime, tz: str) -> Employee | None:
    """Who decides for `person` now, or None if they are here."""
    today = now.astimezone(ZoneInfo(tz)).date()
    delegation = current_delegation(session, person, today)
    if delegation is not None:
        delegate = session.get(Employee, delegation.delegate_id)
        if delegate is not None and delegate.active:
            return delegate
    if on_leave(session, person, today) and person.manager_id:
        manager = session.get(Employee, person.manager_id)
        return manager if manager is not None and manager.active else None
    return None


def current_delegation(session: Session, person: Employee, day: date) -> Delegation | None:
    return session.execute(select(Delegation).where(
        Delegation.employee_id == person.id, Delegation.first_day <= day, Delegation.last_day >= day)
        .order_by(Delegation.id.desc())).scalars().first()


def on_leave(session: Session, person: Employee, day: date) -> bool:
    leaves = session.execute(select(ApprovalRequest.details).where(
        ApprovalRequest.requester_id == person.id, ApprovalRequest.type == "请假",
        ApprovalRequest.status == "approved")).scalars()
    return any(json.loads(d)["start"] <= day.isoformat() <= json.loads(d)["end"] for d in leaves)


def delegate(session: Session, person: Employee, to: Employee, first: date, last: date, *, platform: str,
             now: datetime, by: Employee | None = None) -> Delegation:
    """`by`: an admin setting it for them in the console (the audit names who did it); else themselves."""
    if to.id == person.id or not to.active:
        raise ValueError("请委托给另一位在职同事")
    if last < first:
        raise ValueError("结束日期要在开始日期之后")
    row = Delegation(employee_id=person.id, delegate_id=to.id, first_day=first, last_day=last, created_at=now)
    session.add(row)
    session.flush()
    audit.record(session, actor=by or person, action="approval.delegate", subject=f"employee:{person.id}",
                 platform=platform, detail={"to": to.id, "first": first, "last": last}, at=now)
    return row


def end_delegations(session: Session, person: Employee, today: date, *, platform: str, now: datetime,
                    by: Employee | None = None) -> int:
    """取消委托: every delegation still running or planned ends yesterday. `by`: as for `delegate`."""
    rows = session.execute(select(Delegation).where(Delegation.employee_id == person.id,
                                                    Delegation.last_day >= today)).scalars().all()
    for row in rows:
        if row.first_day >= today:
            session.delete(row)  # not started yet: gone
        else:
            row.last_day = today - timedelta(days=1)
            session.add(row)
    if rows:
        audit.record(session, actor=by or person, action="approval.delegate_end", subject=f"employee:{person.id}",
                     platform=platform, detail={"ended": len(rows)}, at=now)
    return len(rows)
