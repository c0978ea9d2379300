"""The audit trail: who did what, when, on whose behalf and from which platform.

Written in the same transaction as the change it describes, so a rolled-back change leaves no entry
and a committed one always has one.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlmodel import Session

from storage.models import AuditLog, Employee, utcnow


def record(session: Session, *, actor: Employee | None, action: str, subject: str = "", platform: str = "",
           detail: dict[str, Any] | None = None, on_behalf_of: Employee | None = None,
           at: datetime | None = None) -> AuditLog:
    """Add one entry. `actor` None means Banli itself (a timer, the 公海 sweep). `at`: the business
    clock's now where the caller has one (the demo and tests run simulated clocks)."""
    entry = AuditLog(at=at or utcnow(), actor_id=actor.id if actor else None, on_behalf_of_id=on_behalf_of.id if on_behalf_of else None,
                     platform=platform or ("system" if actor is None else ""), action=action, subject=subject,
                     detail=json.dumps(detail or {}, ensure_ascii=False, default=str))
    session.add(entry)
    return entry


def entries(session: Session, *, subject: str | None = None, action: str | None = None,
            limit: int = 100) -> list[AuditLog]:
    """Newest first."""
    query = select(AuditLog)
    if subject is not None:
        query = query.where(AuditLog.subject == subject)
    if action is not None:
        query = query.where(AuditLog.action == action)
    return list(session.execute(query.order_by(AuditLog.id.desc()).limit(limit)).scalars())


REFUSED = "refused"


def refused(session: Session, *, actor: Employee | None, attempted: str, why: str, subject: str = "",
            platform: str = "", at: datetime | None = None) -> AuditLog:
    """One row for an attempt that was turned down: who tried what on which record, and why not.
    After an incident this is where an admin looks, so every refusal writes one — in the handler's
    own transaction, which commits with the polite answer."""
    return record(session, actor=actor, action=REFUSED, subject=subject, platform=platform,
                  detail={"attempted": attempted, "why": why}, at=at)


def record_many(session: Session, *, action: str, entries: list[tuple[str, dict[str, Any]]],
                at: datetime | None = None, actor: Employee | None = None, platform: str = "") -> None:
    """`record` for many subjects in one statement (the 公海 sweep's releases, a bulk import's new
    customers): `entries` are (subject, detail) pairs; `actor` None means Banli itself."""
    if not entries:
        return
    when = at or utcnow()
    session.execute(insert(AuditLog.__table__), [
        dict(at=when, actor_id=actor.id if actor else None, on_behalf_of_id=None,
             platform=platform or ("system" if actor is None else ""), action=action, subject=subject,
             detail=json.dumps(detail, ensure_ascii=False, default=str)) for subject, detail in entries])
