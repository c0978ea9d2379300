"""Process heartbeats in SQL (storage.models.ProcessBeat): a row per long-running process or worker
thread, its `last_seen` moved by one UPDATE per beat. Written by banli/heartbeat.py, read by the
queue page (workflows/queue_health.py)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, delete, insert, update
from sqlalchemy.engine import Connection

from storage.models import ProcessBeat

# How often a process beats; one not seen for ALIVE_BEATS beats is taken to have stopped.
INTERVAL_SECONDS = 15.0
ALIVE_BEATS = 3

_BEAT = (update(ProcessBeat.__table__).where(ProcessBeat.__table__.c.id == bindparam("row_id"))
         .values(last_seen=bindparam("seen"), jobs=bindparam("done")))


def start(conn: Connection, *, kind: str, name: str, host: str, pid: int, now: datetime, jobs: int = 0) -> int:
    """A new row for a process (or thread) that has just started; returns its id."""
    return conn.execute(insert(ProcessBeat.__table__).values(
        kind=kind, name=name, host=host, pid=pid, started_at=now, last_seen=now, jobs=jobs)
        .returning(ProcessBeat.__table__.c.id)).scalar_one()


def beat(conn: Connection, row_id: int, *, jobs: int, now: datetime) -> bool:
    """Move `last_seen` to now and record the jobs done; False if the row is gone (purged while
    this process was suspended for a day, or the demo's clock skipped ahead), so it is written anew."""
    return conn.execute(_BEAT, {"row_id": row_id, "seen": now, "done": jobs}).rowcount == 1


def prune(conn: Connection, *, before: datetime) -> int:
    """Forget processes not seen since `before` (gone for good)."""
    return conn.execute(delete(ProcessBeat.__table__).where(ProcessBeat.__table__.c.last_seen < before)).rowcount
