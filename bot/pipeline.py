"""What happens to a verified, parsed callback.

At the edge (`accept`, on the webhook's hot path): one INSERT of the event as an `inbound` outbox row
whose unique key is the platform's delivery key — the record that makes a redelivery a no-op — and a
ring of the doorbell. Then the platform gets its 200.

In a worker (`act`, called by banli.delivery): fetch a photo's bytes from the platform (`fetch`,
before any SQL, so no transaction waits on the network), find the employee, run the handler, write
the reply as a `message` outbox row, all in the transaction that marks the inbound row done. So a
delivery is acted on exactly once, and either fully (state + reply) or not at all; a download that
failed for now (network, platform busy) fails the whole row, which the outbox retries.

In a group chat only a card marked `shareable` (the menu, the 没听明白 hint) is posted to the group.
Any other answer — a phone, an amount, a customer card, an approval, 我的客户 — goes to the asker
one-to-one, and the group gets one line saying so (`reply`).
"""

from __future__ import annotations

import logging

from sqlmodel import Session

from bot.platform import PlatformError
from bot.runtime import Runtime
from cards import MAX_TITLE, Card
from handlers.events import InboundEvent
from handlers.router import Abandon, Context
from storage import files, outbox
from storage.db import fit_key
from storage.models import Employee
from workflows import audit, roles
from workflows.identity import apply_directory, employee_for, identities_of

log = logging.getLogger("banli.inbound")

SORRY = Card(title="出了点问题", body="抱歉，刚才没办成，已经记下来了。请稍后再试，或发「帮助」。", shareable=True)
DEPARTED = Card(title="账号已停用", body="你的办理账号已停用，不能再办理业务。如有疑问，请联系公司管理员。")
# What the group sees when its answer went one-to-one: one line, no data.
SENT_PRIVATELY = "已私信你，请在和办理的单聊里查看。"


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


def act(runtime: Runtime, session: Session, event: InboundEvent, *, last_attempt: bool = False) -> str | None:
    """Run the handler for `event` inside `session`; returns the reply's outbox key, if any.
    `last_attempt`: the outbox will not try this delivery again, so a photo that still cannot be
    downloaded is answered (send it again) rather than left unanswered."""
    if event.kind == "directory":  # an address-book change: applied, nobody's message, never answered
        return _apply_directory_event(runtime, session, event)
    upload = fetch(runtime, event, last_attempt=last_attempt)
    _remember_card_code(runtime, session, event)
    employee, first = employee_for(session, event.platform, event.sender, sync_later=False)
    if first:
        employee = _read_directory(runtime, session, event.platform, employee, event.sender)
    if runtime.settings.admins:  # BANLI_ADMINS: admin from the very first message, before any sync
        roles.grant_env_admin(session, employee, event.platform, event.sender, runtime.settings.admins,
                              at=runtime.now())
    ctx = Context(session=session, employee=employee, event=event, now=runtime.now(),
                  timezone=runtime.settings.timezone, first_contact=first, reply_key=reply_key(event),
                  upload=upload, language_model=runtime.language_model, public_url=runtime.settings.public_url,
                  secret_key=runtime.settings.secret_key)
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
    if card is None:
        return None
    # Until the directory has been read the name is only a platform id: no @ then.
    return reply(session, ctx.event, card, asker=employee.name if employee.synced_at else "")


def fetch(runtime: Runtime, event: InboundEvent, *, last_attempt: bool = False) -> files.Upload | None:
    """The photo of an image event, downloaded and checked (storage/files.py); None for any other
    event. A platform that will never give the bytes (an expired media id) gives an UNREADABLE
    upload, answered in chat; one that fails for now raises, and the outbox tries again later —
    until its last attempt, which answers UNREADABLE too."""
    client = runtime.clients.get(event.platform)
    if event.kind != "image" or not event.media_id or client is None:
        return None
    store = file_store(runtime)
    limit = runtime.settings.files_max_bytes
    try:
        data = client.download_media(event.media_id, max_bytes=limit)
    except PlatformError as exc:
        if exc.retryable and not last_attempt:
            raise
        log.info("%s photo %s not downloadable: %s", event.platform, event.event_id, exc)
        return files.unreadable(platform=event.platform, media_id=event.media_id, store=store)
    return files.inspect(data, platform=event.platform, media_id=event.media_id, store=store, max_bytes=limit)


def file_store(runtime: Runtime) -> files.FileStore:
    return files.FileStore(runtime.settings.files_dir)


# How far up a newcomer's line of managers is read before their first answer: enough for a chain
# of approvers (manager, their manager, …) to be named, not only user ids.
FIRST_CONTACT_LEVELS = 3


def _read_directory(runtime: Runtime, session: Session, platform: str, employee: Employee, user_id: str) -> Employee:
    """A first contact: read the sender's directory entry (and their managers') before answering, so
    the first answer already knows their manager and department. A retryable platform error is
    raised: the whole delivery goes back to the outbox and is answered on a later try, never
    answered wrongly now. A user the directory does not know is answered as they are."""
    client = runtime.clients.get(platform)
    if client is None:
        return employee
    person: Employee | None = employee
    for level in range(FIRST_CONTACT_LEVELS):
        if person is None or (level and person.synced_at is not None):
            break
        ref = next((i.user_id for i in identities_of(session, person.id) if i.platform == platform), None)
        if ref is None:
            break
        try:
            entry = client.directory_entry(ref)
        except PlatformError as exc:
            if exc.retryable:
                raise
            log.info("directory has no entry for %s %s: %s", platform, ref, exc)
            break
        applied = apply_directory(session, platform, entry)
        if level == 0 and applied is not None:
            employee = applied
        person = session.get(Employee, applied.manager_id) if applied is not None and applied.manager_id else None
    return employee


def _apply_directory_event(runtime: Runtime, session: Session, event: InboundEvent) -> None:
    """The platform's own news (handlers/directory.py): applied, never answered."""
    handler, _ = runtime.router.resolve(event)
    if handler is not None:
        handler(Context(session=session, employee=None, event=event, now=runtime.now(),  # type: ignore[arg-type]
                        timezone=runtime.settings.timezone, reply_key=reply_key(event)))
    return None


def _remember_card_code(runtime: Runtime, session: Session, event: InboundEvent) -> None:
    if event.reply.get("response_code") and event.reply.get("task_id"):
        outbox.remember_card_code(session, event.reply["task_id"], event.reply["response_code"], now=runtime.now())


def reply(session: Session, event: InboundEvent, card: Card, *, asker: str = "") -> str:
    """The answer to `event` as a message row; its key is stable, so it is written once.

    Asked in a group (`event.conversation`), a card not marked `shareable` goes to the asker alone —
    a one-to-one row, without the event's way of answering (a group's sessionWebhook posts to the
    group) — and the group gets `group_notice(asker)` under its own stable key. Not a refusal: the
    asker gets the whole answer, so nothing is audited. Returns the key of the row with the card."""
    key = reply_key(event)
    private = bool(event.conversation) and not card.shareable
    outbox.add(session, key=key, kind="message", platform=event.platform, recipient=event.sender,
               conversation="" if private else event.conversation,
               payload={"card": card.to_dict(), "reply": {} if private else event.reply})
    if private:
        outbox.add(session, key=notice_key(event), kind="message", platform=event.platform,
                   recipient=event.sender, conversation=event.conversation,
                   payload={"card": group_notice(asker).to_dict(), "reply": event.reply})
    return key


def group_notice(asker: str = "") -> Card:
    """The one line a group sees when the answer went to `asker` one-to-one; it names no data."""
    line = f"@{asker} {SENT_PRIVATELY}" if asker else SENT_PRIVATELY
    return Card(title=line if len(line) <= MAX_TITLE else SENT_PRIVATELY, shareable=True)


def reply_key(event: InboundEvent) -> str:
    return fit_key(f"reply:{event.platform}:{event.event_id}")


def notice_key(event: InboundEvent) -> str:
    """The group's line about a private answer: one per event, beside its reply."""
    return fit_key(f"reply:{event.platform}:{event.event_id}:group")


def inbound_key(event: InboundEvent) -> str:
    return fit_key(f"inbound:{event.platform}:{event.event_id}")
