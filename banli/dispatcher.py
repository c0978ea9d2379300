"""The dispatcher: claim cron slots, lease due outbox rows, ring RQ. Run one or several.

It waits on the doorbell list (pushed by the web process after a commit) so a reply goes out at
once, and polls every `dispatch_interval_seconds` anyway, which is what picks up retries, reminders
that came due, and rows whose lease ran out because a worker or Redis died.

A row gets at most one live job: a row whose lease ran out while its job still waits in the queue
(or runs) keeps that job and only gets a longer lease (docs/architecture.md §3). When Redis or the
database is away the dispatcher waits for it, saying so once (banli/outage.py).
"""

from __future__ import annotations

import logging
import threading

from redis.exceptions import RedisError
from rq import Queue
from rq.job import Job
from rq.worker import Worker

from banli import outage
from banli.cron import claim_due_slots
from banli.heartbeat import Pulse
from bot.runtime import DOORBELL, Runtime
from storage import outbox
from storage.db import is_transient, session_scope

log = logging.getLogger("banli.dispatcher")

JOB = "banli.delivery.deliver"


def job_id(row_id: int, token: str) -> str:
    """One job per lease: a job names the lease it was given, so a stale one is a no-op."""
    return f"outbox-{row_id}-{token}"


def tick(runtime: Runtime) -> int:
    """One round; returns how many rows were handed to RQ."""
    now = runtime.now()
    with session_scope(runtime.engine) as session:
        claim_due_slots(session, now=now, tz=runtime.settings.timezone)
    runtime.redis.ping()  # Redis away: lease nothing (a lease now would only delay the row)
    with session_scope(runtime.engine) as session:
        leased = outbox.lease_due(session, now=now, lease_seconds=runtime.settings.outbox_lease_seconds,
                                  still_queued=lambda rows: live_jobs(runtime, rows))
    try:
        _enqueue(runtime, leased)
    except RedisError:
        # Redis went away since the ping: hand the leases back so these rows are offered at the
        # first round after it returns, not a whole lease later.
        with session_scope(runtime.engine) as session:
            outbox.release(session, leased)
        raise
    return len(leased)


def _enqueue(runtime: Runtime, leased: list[tuple[int, str]]) -> None:
    if leased:  # one round trip for the whole batch
        runtime.queue.enqueue_many([
            Queue.prepare_data(JOB, (row_id, token), job_id=job_id(row_id, token), timeout=120,
                               result_ttl=600, failure_ttl=7 * 86400)
            for row_id, token in leased])


def live_jobs(runtime: Runtime, rows: list[tuple[int, str]]) -> set[int]:
    """Which of these (row id, token) still have their job in the queue or running on a worker
    that is alive. A job Redis lost (restart, flush), one that finished or failed, or one whose
    worker died is not live: its row is leased afresh and queued again."""
    redis, queue_key = runtime.redis, runtime.queue.key
    with redis.pipeline(transaction=False) as pipe:
        for row_id, token in rows:
            pipe.hmget(Job.key_for(job_id(row_id, token)), "status", "worker_name")
        states = pipe.execute()
    checks: list[tuple[int, str]] = []
    with redis.pipeline(transaction=False) as pipe:
        for (row_id, token), (status, worker) in zip(rows, states):
            if status == b"queued":
                pipe.lpos(queue_key, job_id(row_id, token))
                checks.append((row_id, "queued"))
            elif status == b"started" and worker:
                pipe.exists(Worker.redis_worker_namespace_prefix + worker.decode())
                checks.append((row_id, "started"))
        found = pipe.execute() if checks else []
    return {row_id for (row_id, kind), hit in zip(checks, found)
            if (hit is not None if kind == "queued" else bool(hit))}


def run(runtime: Runtime, stop: threading.Event, pulse: Pulse | None = None) -> None:
    """Dispatch until `stop` is set; a heartbeat counts the rows handed to RQ (a new Pulse if none is given)."""
    interval = runtime.settings.dispatch_interval_seconds
    beat = (pulse or Pulse(runtime, stop)).add("dispatcher")
    log.info("dispatcher started (poll every %ss)", interval)
    while not stop.is_set():
        try:
            beat.jobs += tick(runtime)
        except RedisError as exc:
            outage.REDIS.down(exc)
        except Exception as exc:  # noqa: BLE001 — a database hiccup must not end the loop
            if is_transient(exc):
                outage.DATABASE.down(exc)
            else:
                log.exception("dispatcher tick failed")
        else:
            outage.DATABASE.up()
            outage.REDIS.up()
        _wait(runtime, stop, interval)


def _wait(runtime: Runtime, stop: threading.Event, interval: float) -> None:
    try:
        if runtime.redis.blpop([DOORBELL], timeout=interval):
            runtime.redis.delete(DOORBELL)  # one round serves every ring so far
    except RedisError:
        stop.wait(interval)
