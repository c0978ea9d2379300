"""Pushing a card to a person (not a reply): on the platform they last wrote on, through the
outbox, under a key that names the cause so the same push is never queued twice."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from cards import Card
from storage import outbox
from workflows.identity import preferred_identities, preferred_identity


def push(session: Session, employee_id: int, key: str, card: Card, *, due_at: datetime | None = None) -> bool:
    """Queue `card` for the employee. False if they have no platform identity or `key` was already queued."""
    identity = preferred_identity(session, employee_id)
    if identity is None:
        return False
    extra = {"due_at": due_at} if due_at is not None else {}
    return outbox.add(session, key=key, kind="message", platform=identity.platform, recipient=identity.user_id,
                      payload={"card": card.to_dict(), "reply": {}}, **extra)


class Pusher:
    """`push` for a scan that queues many cards: `queue` holds them, `flush` looks up everyone's
    identity at once (`preferred_identities`: two queries, not one or two per card) and writes the
    rows in multi-row statements."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._held: list[tuple[int, str, Card, datetime | None]] = []

    def queue(self, employee_id: int, key: str, card: Card, *, due_at: datetime | None = None) -> None:
        self._held.append((employee_id, key, card, due_at))

    def flush(self) -> set[str]:
        """Write the held pushes; returns the keys that were new. Someone without a platform identity
        gets nothing; an existing key is skipped."""
        held, self._held = self._held, []
        identities = preferred_identities(self.session, {employee_id for employee_id, *_ in held})
        rows = []
        for employee_id, key, card, due_at in held:
            identity = identities[employee_id]
            if identity is not None:
                extra = {"due_at": due_at} if due_at is not None else {}
                rows.append(outbox.row_values(key=key, kind="message", platform=identity.platform,
                                              recipient=identity.user_id,
                                              payload={"card": card.to_dict(), "reply": {}}, **extra))
        return outbox.add_many(self.session, rows) if rows else set()
