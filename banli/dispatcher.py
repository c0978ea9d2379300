"""The dispatcher: claim cron slots, lease due outbox rows, ring RQ. Run one or several.

It waits on the doorbell list (pushed by the web process after a commit) so a reply goes out at
once, and polls every `dispatch_interval_seconds` anyway, which is what picks up retries, reminders
that came due, and rows whose lease ran out because a worker or Redis died.
"""

from __future__ import annotations

import logging
import threading

from redis.exceptions import RedisError

from banli.cron import claim_due_slots
from bot.runtime import DOORBELL, Runtime
from storage import outbox
from storage.db import session_scope

log = logging.getLogger("banli.dispatcher")

JOB = "banli.delivery.deliver"


def tick(runtime: Runtime) -> int:
    """One round; returns how many rows were handed to RQ."""
    now = runtime.now()
    with session_scope(runtime.engine) as session:
        claim_due_slots(session, now=now, tz=runtime.settings.timezone)
    with session_scope(runtime.engine) as session:
        leased = outbox.lease_due(session, now=now, lease_seconds=runtime.settings.outbox_lease_seconds)
    for n, (row_id, token) in enumerate(leased):
        try:
            runtime.queue.enqueue(JOB, row_id, token, job_id=f"outbox-{row_id}-{token}",
                                  result_ttl=600, failure_ttl=7 * 86400, job_timeout=120)
        except RedisError as exc:
            # The leases run out and these rows are offered again; nothing is lost.
            log.warning("redis unavailable (%s); %d rows wait for their lease to end",
                        exc.__class__.__name__, len(leased) - n)
            return n
    return len(leased)


def run(runtime: Runtime, stop: threading.Event) -> None:
    interval = runtime.settings.dispatch_interval_seconds
    log.info("dispatcher started (poll every %ss)", interval)
    while not stop.is_set():
        try:
            tick(runtime)
        except Exception:  # noqa: BLE001 — a database hiccup must not end the loop; log it and poll again
            log.exception("dispatcher tick failed")
        _wait(runtime, stop, interval)


def _wait(runtime: Runtime, stop: threading.Event, interval: float) -> None:
    try:
        if runtime.redis.blpop([DOORBELL], timeout=interval):
            runtime.redis.delete(DOORBELL)  # one round serves every ring so far
    except RedisError:
        stop.wait(interval)
