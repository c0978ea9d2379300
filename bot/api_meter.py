"""Counting outbound platform API calls (workflows/api_usage.py keeps them in SQL).

`count` runs on every API request a client sends, so it only adds one to a number in memory; a
thread of the meter's own writes the sums every FLUSH_SECONDS in one upsert per platform and month
(not one database write per API call), then checks the quota. Counts are never dropped: a write
that fails puts them back for the next round, and the sums still held are written at a clean exit
(`Runtime.close`, and at interpreter exit for every meter still alive).
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
import weakref
from collections import Counter
from typing import TYPE_CHECKING

from storage.db import is_transient, session_scope
from workflows import api_usage

if TYPE_CHECKING:
    from bot.runtime import Runtime

log = logging.getLogger("banli.api_meter")

FLUSH_SECONDS = 2.0

_meters: "weakref.WeakSet[ApiMeter]" = weakref.WeakSet()


class ApiMeter:
    def __init__(self, runtime: "Runtime") -> None:
        self.runtime = runtime
        self._held: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()
        self._flushing = threading.Lock()  # one write at a time, whoever calls flush
        self._running = False
        self._failing = False
        _meters.add(self)

    def count(self, platform: str) -> None:
        """One call to `platform`'s API, in this month of the company's time zone."""
        month = api_usage.month_of(self.runtime.now(), self.runtime.settings.timezone)
        with self._lock:
            self._held[(platform, month)] += 1
            if not self._running:  # under the lock: see _run's exit
                self._running = True
                threading.Thread(target=self._run, name="banli-api-meter", daemon=True).start()

    def _run(self) -> None:
        while True:
            time.sleep(FLUSH_SECONDS)
            self.flush()
            with self._lock:
                if not self._held:  # nothing counted meanwhile: a later count starts a new thread
                    self._running = False
                    return

    def flush(self) -> None:
        """Write the sums held so far and warn at the quota's threshold; on failure keep them."""
        with self._flushing:
            with self._lock:
                held, self._held = self._held, Counter()
            if not held:
                return
            try:
                queued = self._write(held)
            except Exception as exc:  # noqa: BLE001 — a count must outlive a database outage
                with self._lock:
                    self._held.update(held)
                if not self._failing:
                    self._failing = True
                    log.warning("API call counts not written (%s); kept for the next try", exc.__class__.__name__,
                                exc_info=not is_transient(exc))
                return
        self._failing = False
        if queued:
            self.runtime.ring()  # after the commit: the warning cards go out now

    def _write(self, held: Counter[tuple[str, str]]) -> int:
        settings, now = self.runtime.settings, self.runtime.now()
        quotas = {"dingtalk": settings.dingtalk_monthly_quota}
        queued = 0
        with session_scope(self.runtime.engine) as session:
            totals = api_usage.add_calls(session, dict(held), now=now)
            for (platform, month), total in totals.items():
                queued += api_usage.warn_if_near(session, platform, month, total,
                                                 quota=quotas.get(platform) or 0, now=now)
        return queued


@atexit.register
def _flush_all() -> None:
    for meter in list(_meters):
        meter.flush()
