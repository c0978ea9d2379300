"""What happens to a verified, parsed callback.

At the edge (`accept`, on the webhook's hot path): one INSERT of the event as an `inbound` outbox row
whose unique key is the platform's delivery key — the record that makes a redelivery a no-op — and a
ring of the doorbell. Then the platform gets its 200.

In a worker (`act`, called by banli.delivery): find the employee, run the handler, write the reply
as a `message` outbox row, all in the transaction that marks the inbound row done. So a delivery is
acted on exactly once, and either fully (state + reply) or not at all.
"""

from __future__ import annotations

import logging

from sqlmodel import Session

from bot.runtime import Runtime
from cards import Card
from handlers.events import InboundEvent
from handlers.router import Abandon, Context
from storage import outbox
from storage.db import fit_key
from workflows import audit
from workflows.identity import employee_for

log = logging.getLogger("banli.inbound")

SORRY = Card(title="出了点问题", body="抱歉，刚才没办成，已经记下来了。请稍后再试，或发「帮助」。")
DEPARTED = Card(title="账号已停用", body="你的办理账号已停用，不能再办理业务。如有疑问，请联系公司管理员。")


def accept(runtime: Runtime, event: InboundEvent) -> bool:
    """Record `event` once for a worker to act on. False for a repeated delivery (nothing done)."""
    # One statement needs no transaction around it: autocommit saves the BEGIN and COMMIT round
    # trips, a third of a callback's cost on PostgreSQL; given the engine, insert_ignore runs it
    # straight on psycopg there (bench/README.md).
    new = outbox.add(runtime.autocommit_engine, key=inbound_key(event), kind="inbound",
                     platform=event.platform, recipient=event.sender, payload=event.to_dict())
    if new:
        runtime.ring()
    return new


def act(runtime: Runtime, session: Session, event: InboundEvent) -> str | None:
    """Run the handler for `event` inside `session`; returns the reply's outbox key, if any."""
    _remember_card_code(runtime, session, event)
    employee, first = employee_for(session, event.platform, event.sender)
    ctx = Context(session=session, employee=employee, event=event, now=runtime.now(),
                  timezone=runtime.settings.timezone, first_contact=first, reply_key=reply_key(event))
    if not employee.active:  # marked as departed: a polite answer, nothing run
        audit.refused(session, actor=employee, attempted=event.action or "message", why="departed",
                      platform=event.platform, at=ctx.now)
        return reply(session, event, DEPARTED)
    try:
        card = runtime.router.dispatch(ctx)
    except Abandon as abandoned:  # a "no" found midway: nothing the handler wrote stays
        session.rollback()
        _remember_card_code(runtime, session, event)
        card = abandoned.card
    return reply(session, ctx.event, card) if card is not None else None


def _remember_card_code(runtime: Runtime, session: Session, event: InboundEvent) -> None:
    if event.reply.get("response_code") and event.reply.get("task_id"):
        outbox.remember_card_code(session, event.reply["task_id"], event.reply["response_code"], now=runtime.now())


def reply(session: Session, event: InboundEvent, card: Card) -> str:
    """The answer to `event` as a message row; its key is stable, so it is written once."""
    key = reply_key(event)
    outbox.add(session, key=key, kind="message", platform=event.platform, recipient=event.sender,
               conversation=event.conversation, payload={"card": card.to_dict(), "reply": event.reply})
    return key


def reply_key(event: InboundEvent) -> str:
    return fit_key(f"reply:{event.platform}:{event.event_id}")


def inbound_key(event: InboundEvent) -> str:
    return fit_key(f"inbound:{event.platform}:{event.event_id}")
