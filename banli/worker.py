"""Workers: `banli worker` (several non-forking workers in one process) and embedded mode's thread.

No fork anywhere: RQ's default `Worker` forks a work horse per job that imports the handlers again
(~0.7 s a job, docs/architecture.md §3). Here each worker is a thread running jobs itself, so the
handlers, the router, the database pool and the Redis connections are built once per process and
shared by its threads — and since nothing forks, no pool or connection is ever copied into a child.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rq import SimpleWorker
from rq.exceptions import StopRequested
from rq.timeouts import TimerDeathPenalty

from banli import delivery, outage
from banli.heartbeat import Beat, Pulse
from bot.runtime import Runtime

log = logging.getLogger("banli.worker")

# A worker's dequeue waits worker_ttl - 15 s for a job: 5 s, so a stop request is seen that soon.
WORKER_TTL = 20
# How long `banli worker` lets its threads finish the jobs in hand after SIGTERM: a job's timeout
# (banli/dispatcher.py) and a little more.
STOP_GRACE_SECONDS = 130
MAX_DEFAULT_CONCURRENCY = 8


class ThreadWorker(SimpleWorker):
    """A worker that runs in a thread: no fork, no signal handlers (only the main thread may set
    them), timer-based job timeouts. It stops between jobs when `stop_event` is set."""

    death_penalty_class = TimerDeathPenalty
    stop_event: threading.Event | None = None
    beat: Beat | None = None  # this thread's heartbeat: counts the jobs it runs
    # RQ retries a lost Redis inside its dequeue loop, doubling the wait up to a minute: probe every
    # second instead, so work resumes within a second of Redis coming back.
    exponential_backoff_factor = 1.0
    max_connection_wait_time = 1.0
    _redis_failed = False

    def _install_signal_handlers(self) -> None:
        pass

    # RQ's loop checks `_stop_requested` between jobs; tie it to the process's stop event.
    @property
    def _stop_requested(self) -> bool:
        return bool(self.stop_event and self.stop_event.is_set())

    @_stop_requested.setter
    def _stop_requested(self, value: bool) -> None:
        if value and self.stop_event:
            self.stop_event.set()

    def dequeue_job_and_maintain_ttl(self, timeout, max_idle_time=None):
        # RQ's version waits for a job for ever; return after each idle wait when asked to stop.
        while True:
            result = super().dequeue_job_and_maintain_ttl(timeout, max_idle_time=timeout)
            if result is not None or self._stop_requested or timeout is None:
                return result

    def execute_job(self, job, queue) -> None:
        try:
            super().execute_job(job, queue)
        finally:
            if self.beat is not None:
                self.beat.jobs += 1

    def heartbeat(self, timeout=None, pipeline=None):
        """Also the place to notice Redis: RQ's dequeue loop calls this first on every retry."""
        if pipeline is not None:
            return super().heartbeat(timeout, pipeline)
        if self._redis_failed and self._stop_requested:
            raise StopRequested()  # asked to stop while Redis is away: leave RQ's retry loop
        try:
            super().heartbeat(timeout)
        except (RedisConnectionError, RedisTimeoutError) as exc:
            self._redis_failed = True
            outage.REDIS.down(exc)
            raise
        self._redis_failed = False
        outage.REDIS.up()


class _RedisNoise(logging.Filter):
    """RQ logs every failed reconnect; the outage is told once by banli/outage.py instead."""

    PHRASES = ("could not connect to Redis", "Redis connection timeout")

    def filter(self, record: logging.LogRecord) -> bool:
        message = str(record.msg)
        if any(phrase in message for phrase in self.PHRASES):
            return False
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, RedisError)


_noise_filter = _RedisNoise()


def run(runtime: Runtime, stop: threading.Event, beat: Beat | None = None) -> None:
    """Work the queue in this thread until `stop` is set. RQ's own loop ends when Redis goes away
    under a job's bookkeeping (and its constructor fails while Redis is down); this one waits for
    Redis and starts a fresh worker. The outbox re-offers whatever was in flight."""
    delivery.serve(runtime)
    logging.getLogger("rq.worker").addFilter(_noise_filter)  # a set: adding it again is a no-op
    while not stop.is_set():
        try:
            worker = ThreadWorker([runtime.queue], connection=runtime.redis, worker_ttl=WORKER_TTL)
            worker.stop_event, worker.beat = stop, beat
            worker.work(logging_level="WARNING", with_scheduler=False)
        except RedisError as exc:
            outage.REDIS.down(exc)
        except Exception:  # noqa: BLE001 — a worker must outlive any one failure; start a fresh one
            log.exception("worker loop failed; starting a fresh worker")
            stop.wait(1.0)
        _wait_for_redis(runtime, stop)


def _wait_for_redis(runtime: Runtime, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            runtime.redis.ping()
        except RedisError as exc:
            outage.REDIS.down(exc)
            stop.wait(1.0)
            continue
        outage.REDIS.up()
        return


def start_thread(runtime: Runtime, stop: threading.Event, name: str = "banli-worker",
                 pulse: Pulse | None = None) -> threading.Thread:
    """A worker thread; with `pulse`, it has a heartbeat row of its own (stopped when the thread dies)."""
    beat = pulse.add("worker", name) if pulse else None
    thread = threading.Thread(target=run, args=(runtime, stop, beat), name=name, daemon=True)
    if beat is not None:
        beat.alive = thread.is_alive
    thread.start()
    return thread


def default_concurrency() -> int:
    """Jobs mostly wait on the network (platform APIs, the database): two per core, at most 8."""
    return min(2 * (os.cpu_count() or 1), MAX_DEFAULT_CONCURRENCY)


def run_process(runtime: Runtime, *, concurrency: int = 0) -> int:
    """`banli worker`: `concurrency` workers as threads of this process. SIGTERM or SIGINT stops
    them between jobs (each finishes the one in hand); a second signal exits at once."""
    count = concurrency if concurrency > 0 else default_concurrency()
    stop = threading.Event()

    def request_stop(signum: int, _frame) -> None:
        if stop.is_set():
            raise SystemExit(1)
        log.info("%s: finishing the jobs in hand, then stopping", signal.Signals(signum).name)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, request_stop)
    _load_once(runtime)
    pulse = Pulse(runtime, stop)
    threads = [start_thread(runtime, stop, name=f"banli-worker-{n}", pulse=pulse) for n in range(count)]
    log.info("worker started: %d jobs at once on queue %r", count, runtime.settings.queue_name)
    while not stop.wait(1.0):  # a timed wait: signal handlers run in the main thread between waits
        pass
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    busy = sum(thread.is_alive() for thread in threads)
    if busy:
        log.warning("stopped with %d jobs unfinished; their rows are offered again when the lease ends", busy)
    log.info("worker stopped")
    return 0


def _load_once(runtime: Runtime) -> None:
    """Import the handlers and build the platform clients before the first job, not in it."""
    runtime.router  # noqa: B018 — the property builds and caches it
    runtime.clients  # noqa: B018
