"""Exactly-once inbound: a callback acts only if its (platform, event key) is new."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete
from sqlmodel import Session

from storage.db import fit_key, insert_ignore
from storage.models import InboundDelivery, utcnow


def record_once(session: Session, *, platform: str, event_key: str, sender: str = "", kind: str = "") -> bool:
    """True the first time this delivery is seen. Inside the caller's transaction, so a rollback of the
    handler's work also forgets the delivery and the platform's retry gets a second chance."""
    return insert_ignore(
        session, InboundDelivery,
        dict(platform=platform, event_key=fit_key(event_key), sender=sender[:128], kind=kind,
             received_at=utcnow()),
        ["platform", "event_key"],
    )


def purge_before(session: Session, before: datetime) -> int:
    """Forget deliveries older than any platform retries (WeCom retries within seconds)."""
    return session.execute(delete(InboundDelivery).where(InboundDelivery.received_at < before)).rowcount
