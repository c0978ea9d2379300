"""Pushing a card to a person (not a reply): on the platform they last wrote on, through the
outbox, under a key that names the cause so the same push is never queued twice."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from cards import Card
from storage import outbox
from workflows.identity import preferred_identity


def push(session: Session, employee_id: int, key: str, card: Card, *, due_at: datetime | None = None) -> bool:
    """Queue `card` for the employee. False if they have no platform identity or `key` was already queued."""
    identity = preferred_identity(session, employee_id)
    if identity is None:
        return False
    extra = {"due_at": due_at} if due_at is not None else {}
    return outbox.add(session, key=key, kind="message", platform=identity.platform, recipient=identity.user_id,
                      payload={"card": card.to_dict(), "reply": {}}, **extra)
