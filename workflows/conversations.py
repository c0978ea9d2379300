"""Guided forms: one question at a time, one open form per person (the `conversation` row).

A form is a flow name (`crm.visit`), the step whose question is open, and the answers so far (JSON).
It lives until it is finished, cancelled, replaced by another form, or left alone for IDLE_EXPIRY:
a person who walks away is never caught by a half-filled form the next day. Expired rows are
deleted when next looked at, so no timer is needed.

Domain-blind: which flows exist and what their steps ask is up to the handlers (`handlers/guided.py`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlmodel import Session

from storage.models import Conversation, Employee

IDLE_EXPIRY = timedelta(minutes=10)  # silence after which an open form is forgotten


@dataclass
class Form:
    flow: str
    step: str
    data: dict[str, Any] = field(default_factory=dict)
    expires_at: datetime | None = None


def start(session: Session, employee: Employee, flow: str, step: str, data: dict[str, Any] | None,
          now: datetime, *, idle: timedelta = IDLE_EXPIRY) -> Form:
    """Open `flow` at `step`, replacing whatever form this person had open."""
    row = _row(session, employee) or Conversation(employee_id=employee.id, flow=flow)
    row.flow, row.step = flow, step
    row.data = json.dumps(data or {}, ensure_ascii=False, default=str)
    row.expires_at, row.updated_at = now + idle, now
    session.add(row)
    session.flush()
    return _form(row)


def current(session: Session, employee: Employee, now: datetime) -> Form | None:
    """The open form, or None; an expired one is deleted on the way."""
    row = _row(session, employee)
    if row is None:
        return None
    if row.expires_at <= now:
        session.delete(row)
        session.flush()
        return None
    return _form(row)


def advance(session: Session, employee: Employee, step: str, now: datetime, *,
            idle: timedelta = IDLE_EXPIRY, **answers: Any) -> Form | None:
    """Move the open form to `step`, merging `answers` into its data; an answer also renews the
    expiry. None if no form is open (it expired or was cancelled meanwhile)."""
    row = _row(session, employee)
    if row is None:
        return None
    data = {**json.loads(row.data or "{}"), **answers}
    row.step, row.data = step, json.dumps(data, ensure_ascii=False, default=str)
    row.expires_at, row.updated_at = now + idle, now
    session.add(row)
    session.flush()
    return _form(row)


def finish(session: Session, employee: Employee) -> bool:
    """Close the open form (done, cancelled or dropped alike). True if there was one."""
    res = session.execute(delete(Conversation).where(Conversation.employee_id == employee.id))
    return res.rowcount > 0


cancel = finish  # same effect; the handler tells the person which one it was


def _row(session: Session, employee: Employee) -> Conversation | None:
    return session.execute(select(Conversation).where(Conversation.employee_id == employee.id)).scalars().first()


def _form(row: Conversation) -> Form:
    return Form(flow=row.flow, step=row.step, data=json.loads(row.data or "{}"), expires_at=row.expires_at)

