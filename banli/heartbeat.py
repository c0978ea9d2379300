"""Heartbeats: each long-running process says in SQL that it is alive (storage/heartbeats.py), so the
queue page can tell a stopped worker from an idle one.

One `Pulse` per process owns a thread that, every INTERVAL_SECONDS, moves `last_seen` (one UPDATE)
for each beat it holds: the process itself (web, dispatcher, stream) or each worker thread of `banli worker`.
A beat whose thread has died is no longer moved, so the page shows it stopped. A database outage
is told once (banli/outage.py) and tried again at the next beat; a beat that could not be written
at start is written at the first beat that reaches the database.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from dataclasses import dataclass, field
from typing import Callable

from banli import outage
from bot.runtime import Runtime
from storage import heartbeats
from storage.db import is_transient

log = logging.getLogger("banli.heartbeat")

INTERVAL_SECONDS = heartbeats.INTERVAL_SECONDS
# The first beat waits this long, so the beats a process adds as it starts share one transaction.
START_DELAY_SECONDS = 0.2


@dataclass
class Beat:
    """One row: `jobs` is counted by whoever does the work (a plain int: one writer thread)."""

    kind: str
    name: str
    alive: Callable[[], bool] = lambda: True
    jobs: int = 0
    row_id: int | None = field(default=None, repr=False)


class Pulse:
    def __init__(self, runtime: Runtime, stop: threading.Event, interval: float = INTERVAL_SECONDS) -> None:
        self.runtime, self.stop, self.interval = runtime, stop, interval
        self.beats: list[Beat] = []
        self._lock = threading.Lock()
        self._beating = threading.Lock()  # the thread's beat and a caller's `once` never overlap
        self._thread: threading.Thread | None = None

    def add(self, kind: str, name: str = "", alive: Callable[[], bool] | None = None) -> Beat:
        """Hold a beat for `kind` and start beating (the first call starts the thread)."""
        beat = Beat(kind, name or kind, alive or (lambda: True))
        with self._lock:
            self.beats.append(beat)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="banli-heartbeat", daemon=True)
                self._thread.start()
        return beat

    def join(self, timeout: float) -> None:
        """After `stop` is set: wait for the last beat to be written (a clean stop's last time seen)."""
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        self.stop.wait(START_DELAY_SECONDS)
        while True:
            self.once()
            if self.stop.wait(self.interval):
                self.once()  # a clean stop: the last time seen is the time it stopped
                return

    def once(self) -> None:
        """Write new beats and move the live ones; a passing database failure waits for the next round."""
        with self._beating:
            self._once()

    def _once(self) -> None:
        now = self.runtime.now()
        with self._lock:
            beats = list(self.beats)
        written: list[Beat] = []  # rows inserted in this transaction
        try:
            with self.runtime.engine.begin() as conn:
                for beat in beats:
                    if beat.row_id is not None and not beat.alive():
                        continue  # its thread died: the row keeps the last time it was seen
                    if beat.row_id is None or not heartbeats.beat(conn, beat.row_id, jobs=beat.jobs, now=now):
                        beat.row_id = heartbeats.start(conn, kind=beat.kind, name=beat.name,
                                                       host=socket.gethostname(), pid=os.getpid(), now=now,
                                                       jobs=beat.jobs)
                        written.append(beat)
        except Exception as exc:  # noqa: BLE001 — a heartbeat must never end the process
            for beat in written:  # rolled back: those ids do not exist (and SQLite may hand them out again)
                beat.row_id = None
            if is_transient(exc):
                outage.DATABASE.down(exc)
            else:
                log.exception("heartbeat not written")
            return
        outage.DATABASE.up()
