"""Outages of Redis or the database, told once: one line when a process first sees one go away, one
line when it answers again — however many threads and retries notice in between."""

from __future__ import annotations

import logging
import threading
import time

log = logging.getLogger("banli")


class Outage:
    def __init__(self, what: str) -> None:
        self.what = what
        self._since: float | None = None
        self._lock = threading.Lock()

    @property
    def down_now(self) -> bool:
        return self._since is not None

    def down(self, exc: BaseException) -> None:
        """Something failed to reach it: log the first failure of this outage only."""
        with self._lock:
            if self._since is not None:
                return
            self._since = time.monotonic()
        log.warning("%s unavailable (%s); waiting for it to come back", self.what, _why(exc))

    def up(self) -> None:
        """It answered: end the outage, if there was one. Cheap when there was none (every job calls it)."""
        if self._since is None:
            return
        with self._lock:
            if self._since is None:
                return
            seconds, self._since = time.monotonic() - self._since, None
        log.info("%s is back after %.0f s", self.what, seconds)


def _why(exc: BaseException) -> str:
    # The class and the first line only: a database error's text can carry SQL and its parameters.
    first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else ""
    return f"{exc.__class__.__name__}: {first}" if first else exc.__class__.__name__


REDIS = Outage("redis")
DATABASE = Outage("database")
