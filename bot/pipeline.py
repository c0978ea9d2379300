"""After an edge has verified and parsed a callback: record once → who → dispatch → reply via outbox.

All of it is one transaction, so a delivery is either fully acted on (state, reply row, delivery
record) or not at all; a redelivery finds the record and does nothing.
"""

from __future__ import annotations

import logging

from sqlmodel import Session

from bot.runtime import Runtime
from cards import Card
from handlers.events import InboundEvent
from handlers.router import Context
from storage import inbound, outbox
from storage.db import fit_key, session_scope
from workflows.identity import employee_for

log = logging.getLogger("banli.inbound")

SORRY = Card(title="出了点问题", body="抱歉，刚才没办成，已经记下来了。请稍后再试，或发「帮助」。")


def handle(runtime: Runtime, event: InboundEvent) -> bool:
    """Act on `event` exactly once. Returns False for a repeated delivery (nothing done)."""
    try:
        with session_scope(runtime.engine) as session:
            acted = _act(runtime, session, event)
    except Exception:
        # Never a stack trace in chat and never a half-written record: the transaction is gone;
        # record the delivery with an apology instead, so the platform's retry doesn't loop on it.
        log.exception("handler failed for %s event %s", event.platform, event.event_id)
        with session_scope(runtime.engine) as session:
            acted = _record(session, event)
            if acted:
                _reply(session, event, SORRY)
    if acted:
        runtime.ring()
    return acted


def _act(runtime: Runtime, session: Session, event: InboundEvent) -> bool:
    if not _record(session, event):
        return False
    employee, first = employee_for(session, event.platform, event.sender)
    ctx = Context(session=session, employee=employee, event=event, now=runtime.now(),
                  timezone=runtime.settings.timezone, first_contact=first)
    card = runtime.router.dispatch(ctx)
    if card is not None:
        _reply(session, ctx.event, card)
    return True


def _record(session: Session, event: InboundEvent) -> bool:
    return inbound.record_once(session, platform=event.platform, event_key=event.event_id,
                               sender=event.sender, kind=event.kind)


def _reply(session: Session, event: InboundEvent, card: Card) -> None:
    outbox.add(
        session,
        key=fit_key(f"reply:{event.platform}:{event.event_id}"),
        kind="message",
        platform=event.platform,
        recipient=event.sender,
        conversation=event.conversation,
        payload={"card": card.to_dict(), "reply": event.reply},
    )
