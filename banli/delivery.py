"""The RQ job: perform one leased outbox row (act on a callback, send, send a stored photo, update a
card, read the directory, run a cron).

Jobs take a row id and its lease token, never objects. A job whose lease was taken over, or whose row
is already done, does nothing — so a duplicate enqueue or a Redis that kept an old job is harmless.
Retries and backoff are counted in SQL (storage.outbox), not in RQ.
"""

from __future__ import annotations

import itertools
import json
import logging
import time
from datetime import datetime, timedelta
from typing import Any, Callable, TypeVar

from rq import get_current_job
from sqlmodel import Session, select

from banli import outage
from banli.logs import fields, safe_error, safe_trace
from bot import pipeline
from bot.platform import Outgoing, PlatformError
from bot.runtime import Runtime
from cards import Card
from handlers.events import InboundEvent
from storage import outbox
from storage.db import is_transient, session_scope
from storage import files
from storage.models import Outbox, StoredFile
from workflows.identity import apply_directory

log = logging.getLogger("banli.delivery")

# A WeCom response code works once, within 72 h (docs/wecom.md §3.2); keep a margin for the call.
WECOM_CODE_LIFETIME = timedelta(hours=71)

# How long a job waits for the database to answer again before leaving its row to a later lease.
DATABASE_PATIENCE_SECONDS = 60.0

T = TypeVar("T")

# Runtimes by queue name: a worker serves its queue's runtime (tests run several side by side).
_runtimes: dict[str, Runtime] = {}


def serve(runtime: Runtime) -> None:
    runtime.router  # noqa: B018 — raises now, at start, if the process forgot to wire it
    _runtimes[runtime.settings.queue_name] = runtime


def deliver(row_id: int, token: str) -> str:
    """Entry point named in RQ jobs. Returns the row's outcome for the job result."""
    job = get_current_job()
    runtime = _runtimes[job.origin if job else next(iter(_runtimes))]
    return perform(runtime, row_id, token)


def perform(runtime: Runtime, row_id: int, token: str) -> str:
    """Do one leased row; one log line says which, how it went and how long it took."""
    started = time.perf_counter()
    try:
        row = _with_database(runtime, lambda session: _claim(runtime, session, row_id, token))
    except Exception as exc:
        if not is_transient(exc):
            raise
        # The row's lease runs out and it is offered again.
        _job_line(row_id, None, "retry", started, error=f"database unavailable: {safe_error(exc)}")
        return "database unavailable"
    if row is None:  # done already, or its lease went to another job
        _job_line(row_id, None, "skipped", started)
        return "skipped"
    job = _Job()
    try:
        return _run(runtime, row, token, job)
    finally:
        _job_line(row_id, row, job.outcome, started, error=job.error, routine=job.routine)


class _Job:
    """What `_run` did, for the job's line: done / skipped / failed (given up) / retry."""

    def __init__(self) -> None:
        self.outcome = "failed"  # an exception leaves it so: RQ records the failure too
        self.error = ""
        self.routine = False  # a database outage's retries: the outage is logged once (banli/outage.py)

    def failed(self, status: str, error: str, *, routine: bool = False) -> str:
        self.outcome = {"pending": "retry", "dead": "failed"}.get(status, "skipped")
        self.error, self.routine = error, routine
        return status


def _job_line(row_id: int, row: Outbox | None, outcome: str, started: float, *, error: str = "",
              routine: bool = True) -> None:
    ms = round((time.perf_counter() - started) * 1000, 1)
    kind, platform = (row.kind, row.platform) if row is not None else ("", "")
    message = f"outbox {row_id} {kind or 'job'} {outcome}" + (f": {error}" if error else "")
    level = logging.WARNING if error and not routine else logging.INFO
    log.log(level, "%s", message, extra=fields(outbox_id=row_id, kind=kind, platform=platform,
                                               outcome=outcome, ms=ms))


def _run(runtime: Runtime, row: Outbox, token: str, job: _Job) -> str:
    try:
        with session_scope(runtime.engine) as session:
            result = PERFORMERS[row.kind](runtime, row, session)
            outbox.mark_done(session, row.id, token, now=runtime.now(), result=result)
    except PlatformError as exc:
        error = safe_error(exc)
        return job.failed(_failed(runtime, row, token, error, retryable=exc.retryable), error)
    except Exception as exc:
        error = safe_error(exc)
        if is_transient(exc):
            # The database failed under the work, not the work itself: its transaction is gone
            # whole, so the row goes back to the outbox and is done again shortly. No apology —
            # the user gets the real answer a moment later.
            return job.failed(_failed(runtime, row, token, error, retryable=True, transient=True), error,
                              routine=True)
        if row.kind == "inbound":
            # Failed for the operator (a bug to fix); the row is done: the user was told.
            job.error = f"handler failed: {error}"
            outcome = _apologise(runtime, row, token, exc)
            if outcome == "done":
                job.error += ", the user was told"
            else:
                job.outcome, job.error = "skipped", ""
            return outcome
        # A bug, not a platform answer: count the attempt in SQL, then let RQ record the failure too.
        job.failed(_failed(runtime, row, token, error, retryable=True), error)
        raise
    job.outcome = "done"
    if row.kind == "inbound" and result.get("reply"):
        _send_now(runtime, result["reply"])
    elif row.kind in ("cron", "timer"):
        runtime.ring()  # a cron job usually queues messages: send them now, not at the next poll
    return "done"


def _claim(runtime: Runtime, session: Session, row_id: int, token: str) -> Outbox | None:
    row = outbox.claim(session, row_id, token, now=runtime.now(),
                       lease_seconds=runtime.settings.outbox_lease_seconds)
    if row is not None:
        session.expunge(row)
    return row


def _with_database(runtime: Runtime, work: Callable[[Session], T]) -> T:
    """Run `work` in a transaction of its own, and again when the database fails under it: at once
    (a killed connection is replaced by the pool straight away), then every second, with one log
    line for the outage, for up to DATABASE_PATIENCE_SECONDS. Only for the outbox's bookkeeping
    (claim, mark), which is safe to repeat — never a handler, whose retry goes through the outbox."""
    deadline = time.monotonic() + DATABASE_PATIENCE_SECONDS
    for attempt in itertools.count():
        try:
            with session_scope(runtime.engine) as session:
                value = work(session)
        except Exception as exc:
            if not is_transient(exc) or time.monotonic() > deadline:
                raise
            if attempt:
                outage.DATABASE.down(exc)
                time.sleep(1.0)
            continue
        outage.DATABASE.up()
        return value
    raise AssertionError("unreachable")


def _apologise(runtime: Runtime, row: Outbox, token: str, exc: Exception) -> str:
    """A handler failed: its transaction is gone (nothing half-written). Retrying would fail the same
    way, so tell the user plainly — never a stack trace in chat — and keep the trace in the log.
    The apology is a row with the reply's stable key, written with the inbound row's "done" and only
    if this job still holds the lease: whoever runs the row again finds it answered."""
    event = InboundEvent.from_dict(json.loads(row.payload))
    # The frames, not the message: an exception's text may quote what the user wrote.
    log.error("handler failed for %s event %s: %s", event.platform, event.event_id, safe_error(exc),
              extra=fields(outbox_id=row.id, trace=safe_trace(exc)))

    def answer(session: Session) -> str | None:
        key = pipeline.reply(session, event, pipeline.SORRY)
        if not outbox.mark_done(session, row.id, token, now=runtime.now(), result={"reply": key, "error": True}):
            session.rollback()  # the lease went to another holder meanwhile: it decides
            return None
        return key

    key = _with_database(runtime, answer)
    if key is None:
        return "lost"
    _send_now(runtime, key)
    return "done"


def _send_now(runtime: Runtime, key: str) -> None:
    """Send a fresh reply in this job instead of waiting for the dispatcher's next round: one queue
    hop from callback to answer. If another holder got there first, this does nothing."""
    try:
        with session_scope(runtime.engine) as session:
            leased = outbox.lease_key(session, key, now=runtime.now(),
                                      lease_seconds=runtime.settings.outbox_lease_seconds)
    except Exception as exc:
        if not is_transient(exc):
            raise
        leased = None  # the reply row is committed: the dispatcher sends it at its next round
    if leased:
        perform(runtime, *leased)
    runtime.ring()  # anything else the handler queued (directory reads, pushes to others)


def _failed(runtime: Runtime, row: Outbox, token: str, error: str, *, retryable: bool,
            transient: bool = False) -> str:
    """Count the attempt in the row (its error column gets `error`, a safe_error summary); the job's
    line (perform) tells the log."""
    return _with_database(runtime, lambda session: outbox.mark_failed(
        session, row.id, token, now=runtime.now(), error=error, retryable=retryable, transient=transient))


def _act_on_inbound(runtime: Runtime, row: Outbox, session: Session) -> dict[str, Any]:
    reply_key = pipeline.act(runtime, session, InboundEvent.from_dict(json.loads(row.payload)),
                             last_attempt=row.attempts + 1 >= outbox.MAX_ATTEMPTS)
    return {"reply": reply_key} if reply_key else {}


def _client(runtime: Runtime, platform: str):
    client = runtime.clients.get(platform)
    if client is None:
        raise PlatformError(f"platform {platform!r} is not configured", retryable=False)
    return client


def _send_message(runtime: Runtime, row: Outbox, session: Session) -> dict[str, Any]:
    payload = json.loads(row.payload)
    message = Outgoing(key=row.key, recipient=row.recipient, conversation=row.conversation,
                       card=Card.from_dict(payload["card"]), reply=payload.get("reply") or {})
    return _client(runtime, row.platform).send(message)


def _send_photo(runtime: Runtime, row: Outbox, session: Session) -> dict[str, Any]:
    """A stored photo to one person as an image message (uploaded to their platform first)."""
    stored = session.get(StoredFile, json.loads(row.payload)["file_id"])
    try:
        data = pipeline.file_store(runtime).read(stored.sha256) if stored is not None else None
    except FileNotFoundError:
        data = None
    if data is None:  # the row or the bytes are gone (a wiped store): no retry brings them back
        raise PlatformError(f"photo {row.payload} is not in the file store", retryable=False)
    return _client(runtime, row.platform).send_image(row.recipient, data, mime=stored.mime,
                                                     filename=files.filename(stored))


def _update_card(runtime: Runtime, row: Outbox, session: Session) -> dict[str, Any]:
    """Replace a card already sent: `sent` is what its send returned, or `target` names its outbox row."""
    payload = json.loads(row.payload)
    card = Card.from_dict(payload["card"])
    if "sent" in payload:
        return _client(runtime, row.platform).update_card(payload["sent"], card)
    target = session.exec(select(Outbox).where(Outbox.key == payload["target"])).first()
    if target is None or target.status != "sent":
        # Not out yet (or gone): retry later; the original goes out first, then this replaces it.
        raise PlatformError(f"card {payload['target']!r} is not sent yet", retryable=target is not None)
    sent = json.loads(target.result or "{}")
    if not _updatable(runtime, target, sent):
        return {"updated": False, "why": "no way to update this card (spent code, too old, or plain text)"}
    result = _client(runtime, row.platform).update_card(sent, card)
    if sent.get("response_code"):  # WeCom codes work once: the next update of this card cannot use it
        target.result = json.dumps({**sent, "response_code": "", "code_used_by": row.key})
        session.add(target)
    return result


def _updatable(runtime: Runtime, target: Outbox, sent: dict[str, Any]) -> bool:
    if target.platform == "wecom":  # a code lives 72 h from the send or from the tap that brought it
        issued = datetime.fromisoformat(sent["code_at"]) if sent.get("code_at") else target.sent_at
        fresh = issued is not None and runtime.now() - issued < WECOM_CODE_LIFETIME
        return bool(sent.get("response_code")) and fresh
    return bool(sent.get("out_track_id"))


def _sync_directory(runtime: Runtime, row: Outbox, session: Session) -> dict[str, Any]:
    entry = _client(runtime, row.platform).directory_entry(row.recipient)
    employee = apply_directory(session, row.platform, entry)
    return {"employee_id": employee.id, "name": employee.name} if employee else {"gone": row.recipient}


def _sync_department(runtime: Runtime, row: Outbox, session: Session) -> dict[str, Any]:
    """A department event (DingTalk org_dept_*, WeCom *_party): read it and store it."""
    from workflows import directory

    department = _client(runtime, row.platform).directory_department(row.recipient)
    directory.sync_departments(session, row.platform, [department], now=runtime.now(), complete=False)
    return {"dept_id": department.dept_id, "name": department.name}


def _sync_tags(runtime: Runtime, row: Outbox, session: Session) -> dict[str, Any]:
    """A tag / role-group change event: the roles it maps to, read again (banli/directory.py)."""
    from banli import directory

    return directory.tag_changed(runtime, session, row.platform, row.recipient)


def _run_timer(runtime: Runtime, row: Outbox, session: Session) -> dict[str, Any]:
    from workflows import timers

    return timers.run(session, json.loads(row.payload), runtime.now(), runtime.settings.timezone)


def _run_cron(runtime: Runtime, row: Outbox, session: Session) -> dict[str, Any]:
    from banli.cron import CRON_JOBS

    return CRON_JOBS[json.loads(row.payload)["name"]].run(runtime, session)


PERFORMERS: dict[str, Callable[[Runtime, Outbox, Session], dict[str, Any]]] = {
    "inbound": _act_on_inbound,
    "message": _send_message,
    "photo": _send_photo,
    "card_update": _update_card,
    "directory_sync": _sync_directory,
    "directory_department": _sync_department,
    "directory_tags": _sync_tags,
    "cron": _run_cron,
    "timer": _run_timer,
}
