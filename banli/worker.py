"""RQ workers: the `banli worker` process, and the thread worker of embedded mode."""

from __future__ import annotations

import logging
import threading
import time

from rq import SimpleWorker, Worker
from rq.timeouts import TimerDeathPenalty

from banli import delivery
from bot.runtime import Runtime

log = logging.getLogger("banli.worker")


class ThreadWorker(SimpleWorker):
    """A worker that runs in a thread of the web process (embedded mode): no fork, no signal handlers
    (only the main thread may set them), timer-based job timeouts."""

    death_penalty_class = TimerDeathPenalty
    stop_event: threading.Event | None = None

    def _install_signal_handlers(self) -> None:
        pass

    # RQ's loop checks `_stop_requested` between jobs; tie it to the embedded runtime's stop event.
    @property
    def _stop_requested(self) -> bool:
        return bool(self.stop_event and self.stop_event.is_set())

    @_stop_requested.setter
    def _stop_requested(self, value: bool) -> None:
        if value and self.stop_event:
            self.stop_event.set()


def run(runtime: Runtime, *, stop: threading.Event | None = None, in_thread: bool = False) -> None:
    """Work the queue until stopped. RQ's own loop quits when Redis goes away; this one waits for
    Redis to come back (the outbox re-offers whatever was in flight)."""
    delivery.serve(runtime)
    cls = ThreadWorker if in_thread else Worker
    backoff = 1.0
    while not (stop and stop.is_set()):
        worker = cls([runtime.queue], connection=runtime.redis, worker_ttl=30 if in_thread else None)
        if in_thread:
            worker.stop_event = stop
        started = time.monotonic()
        try:
            worker.work(logging_level="WARNING", with_scheduler=False)
        except Exception as exc:  # noqa: BLE001 — usually Redis gone; wait and start a fresh worker
            log.warning("worker stopped (%s); restarting", exc.__class__.__name__)
        if getattr(worker, "_stop_requested", False) or getattr(worker, "_shutdown_requested_date", None):
            return
        backoff = 1.0 if time.monotonic() - started > 30 else min(backoff * 2, 15)
        if stop:
            stop.wait(backoff)
        else:
            time.sleep(backoff)


def start_thread(runtime: Runtime, stop: threading.Event) -> threading.Thread:
    thread = threading.Thread(target=run, args=(runtime,), kwargs={"stop": stop, "in_thread": True},
                              name="banli-worker", daemon=True)
    thread.start()
    return thread
