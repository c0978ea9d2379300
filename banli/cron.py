"""Periodic work with exactly one run per slot across any number of dispatchers
(docs/architecture.md §3).

Each dispatcher tick inserts an outbox row keyed `cron:<name>:<slot>` for the latest slot of each
job; the unique key lets one insert win, and the row is then performed like any other outbox row. A
slot missed while everything was down fires once on restart, if it is not older than `catch_up`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable
from zoneinfo import ZoneInfo

from croniter import croniter
from sqlmodel import Session

from storage import heartbeats, outbox
from workflows import customer_index, overdue, pool
from workflows.digest import queue_daily_digests

Run = Callable[[Any, Session], dict[str, Any]]


@dataclass(frozen=True)
class CronJob:
    name: str
    spec: str  # cron syntax, in business time
    run: Run
    catch_up: timedelta = timedelta(hours=24)

    def latest_slot(self, now: datetime, tz: str) -> datetime:
        local = now.astimezone(ZoneInfo(tz))
        return croniter(self.spec, local).get_prev(datetime)


def purge_old_records(runtime: Any, session: Session) -> dict[str, Any]:
    """Forget finished outbox rows after 30 days — long past any platform's redelivery of a callback —,
    customer name changes after a week (every live matcher has applied them by then), and
    processes not seen for a day (restarted or moved: the queue page lists only recent ones)."""
    now = runtime.now()
    return {"outbox": outbox.purge_done(session, before=now - timedelta(days=30)),
            "name_changes": customer_index.purge_changes(
                session, before=now - timedelta(days=customer_index.KEEP_CHANGES_DAYS)),
            "processes": heartbeats.prune(session.connection(), before=now - timedelta(days=1))}


def daily_digests(runtime: Any, session: Session) -> dict[str, Any]:
    return {"queued": queue_daily_digests(session, now=runtime.now(), tz=runtime.settings.timezone,
                                          public_url=runtime.settings.public_url)}


def overdue_alerts(runtime: Any, session: Session) -> dict[str, Any]:
    return overdue.scan(session, now=runtime.now(), tz=runtime.settings.timezone)


def pool_sweep(runtime: Any, session: Session) -> dict[str, Any]:
    return pool.sweep(session, now=runtime.now(), tz=runtime.settings.timezone)


def directory_sync(runtime: Any, session: Session) -> dict[str, Any]:
    from banli.directory import nightly

    return nightly(runtime, session)


CRON_JOBS: dict[str, CronJob] = {
    job.name: job for job in (
        CronJob("purge", "30 3 * * *", purge_old_records),
        # A digest that could not go out by mid-morning is stale: skip it rather than send at noon.
        CronJob("digest", "0 8 * * *", daily_digests, catch_up=timedelta(hours=3)),
        # Overdue is counted in days, so hourly is prompt enough and cheap (one pass over owned
        # customers); :05 keeps it off the busy top of the hour. Quiet hours hold what it queues.
        CronJob("overdue", "5 * * * *", overdue_alerts, catch_up=timedelta(hours=2)),
        # Releases happen at night, when nobody is mid-conversation about the customer; warnings and
        # notices it queues wait for the morning release time. A missed night still runs that day.
        CronJob("pool", "15 2 * * *", pool_sweep, catch_up=timedelta(hours=20)),
        # Before the 公海 sweep, so people who left overnight are already known; change events keep
        # the day current, this catches any event that was missed.
        CronJob("directory", "40 1 * * *", directory_sync, catch_up=timedelta(hours=20)),
    )
}


def claim_due_slots(session: Session, *, now: datetime, tz: str, jobs: dict[str, CronJob] = CRON_JOBS) -> list[str]:
    """Insert this slot's row for every job; returns the keys this caller won."""
    won = []
    for job in jobs.values():
        slot = job.latest_slot(now, tz)
        if now - slot > job.catch_up:
            continue
        key = f"cron:{job.name}:{slot.isoformat()}"
        if outbox.add(session, key=key, kind="cron", payload={"name": job.name}, due_at=now):
            won.append(key)
    return won
