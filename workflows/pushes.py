"""Pushing a card to a person (not a reply): on the platform they last wrote on, through the
outbox, under a key that names the cause so the same push is never queued twice."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from cards import Card
from storage import outbox
from storage.models import Identity
from workflows.identity import preferred_identity


def push(session: Session, employee_id: int, key: str, card: Card, *, due_at: datetime | None = None) -> bool:
    """Queue `card` for the employee. False if they have no platform identity or `key` was already queued."""
    return Pusher(session).push(employee_id, key, card, due_at=due_at)


class Pusher:
    """`push` for a scan that queues many cards: each person's identity is looked up once, not once
    per card (preferred_identity is a query, two when someone has two platforms), and `queue` +
    `flush` write the rows in multi-row statements."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._identities: dict[int, Identity | None] = {}
        self._rows: list[dict] = []

    def push(self, employee_id: int, key: str, card: Card, *, due_at: datetime | None = None) -> bool:
        row = self._row(employee_id, key, card, due_at)
        return row is not None and outbox.add(self.session, **row)

    def queue(self, employee_id: int, key: str, card: Card, *, due_at: datetime | None = None) -> bool:
        """Hold a push for `flush`; False (nothing held) if the employee has no platform identity."""
        row = self._row(employee_id, key, card, due_at)
        if row is not None:
            self._rows.append(outbox.row_values(**row))
        return row is not None

    def flush(self) -> set[str]:
        """Write the held pushes; returns the keys that were new (an existing key is skipped)."""
        rows, self._rows = self._rows, []
        return outbox.add_many(self.session, rows) if rows else set()

    def _row(self, employee_id: int, key: str, card: Card, due_at: datetime | None) -> dict | None:
        if employee_id not in self._identities:
            self._identities[employee_id] = preferred_identity(self.session, employee_id)
        identity = self._identities[employee_id]
        if identity is None:
            return None
        extra = {"due_at": due_at} if due_at is not None else {}
        return dict(key=key, kind="message", platform=identity.platform, recipient=identity.user_id,
                    payload={"card": card.to_dict(), "reply": {}}, **extra)
