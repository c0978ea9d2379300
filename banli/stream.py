"""`banli stream`: holds the app's DingTalk Stream connection (bot/dingtalk/stream.py) — one per app.

DingTalk splits an app's pushes at random between all its open connections (docs/dingtalk.md §2.2),
so two processes must not both connect. Whoever holds a Redis lease connects: `SET key token NX
PX`, renewed every RENEW_SECONDS by compare-and-expire, released on exit by compare-and-delete.
The others poll for it; a holder killed outright (kill -9) stops renewing and its lease expires, so
another process connects within LEASE_SECONDS + POLL_SECONDS (12 s).

A holder that cannot reach Redis keeps its connection only while its lease surely lasts — counted
on its own clock from the last renewal *sent* — and then closes it and waits for Redis like the
worker does (banli/outage.py): never two connections, whoever can or cannot reach Redis.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import signal
import threading
import time
from typing import Callable

from redis import Redis
from redis.exceptions import RedisError

from banli import outage
from banli.heartbeat import Pulse
from bot.runtime import Runtime

log = logging.getLogger("banli.stream")

LEASE_SECONDS = 10.0
RENEW_SECONDS = 3.0
POLL_SECONDS = 2.0
STOP_GRACE_SECONDS = 10.0

_RENEW = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0"
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"


class Lease:
    """One process's claim on one app's stream: a Redis key holding this process's random token."""

    def __init__(self, redis: Callable[[], Redis], key: str, seconds: float = LEASE_SECONDS) -> None:
        self._redis, self.key, self.ms = redis, key, int(seconds * 1000)
        self.token = secrets.token_hex(16)

    def acquire(self) -> bool:
        return bool(self._redis().set(self.key, self.token, nx=True, px=self.ms))

    def renew(self) -> bool:
        """Extend the lease; False when it is no longer ours (it expired, and someone took it)."""
        return bool(self._redis().eval(_RENEW, 1, self.key, self.token, self.ms))

    def release(self) -> None:
        self._redis().eval(_RELEASE, 1, self.key, self.token)


def lease_key(app_key: str) -> str:
    return f"banli:stream:lease:{app_key}"


def run(runtime: Runtime, stop: threading.Event) -> None:
    """Hold the stream whenever this process has the lease, until `stop` is set."""
    app = runtime.settings.dingtalk.app_key
    lease = Lease(lambda: runtime.redis, lease_key(app))
    waiting = False
    while not stop.is_set():
        try:
            held = lease.acquire()
        except RedisError as exc:
            outage.REDIS.down(exc)
            stop.wait(1.0)
            continue
        outage.REDIS.up()
        if not held:
            if not waiting:
                log.info("dingtalk stream: another process holds the connection for app %s; "
                         "standing by to take over", app)
                waiting = True
            stop.wait(POLL_SECONDS)
            continue
        waiting = False
        log.info("dingtalk stream: leader for app %s (lease %s); connecting", app, lease.key)
        try:
            asyncio.run(_lead(runtime, lease, stop))
        except Exception:  # noqa: BLE001 — the stream must outlive any one failure; try again
            log.exception("dingtalk stream: failed; trying again")
            stop.wait(1.0)


async def _lead(runtime: Runtime, lease: Lease, stop: threading.Event) -> None:
    """Run the connection while renewing the lease; close it when stopped or the lease is gone."""
    from bot.dingtalk.stream import StreamClient

    client = StreamClient(runtime)
    connection = asyncio.create_task(client.start())
    lasts_until = time.monotonic() + lease.ms / 1000  # acquired just now
    ours = True
    try:
        while not await asyncio.to_thread(stop.wait, RENEW_SECONDS):
            if connection.done():  # a bug in the loop: start it again under the same lease
                log.error("dingtalk stream: connection loop ended (%r); restarting it", connection.exception())
                client = StreamClient(runtime)
                connection = asyncio.create_task(client.start())
            sent = time.monotonic()
            try:
                ours = await asyncio.to_thread(lease.renew)
            except RedisError as exc:
                outage.REDIS.down(exc)
                if time.monotonic() + RENEW_SECONDS < lasts_until:
                    continue  # still surely ours until the next try
                log.warning("dingtalk stream: cannot renew the lease for app %s; closing the connection "
                            "until Redis answers", runtime.settings.dingtalk.app_key)
                ours = False
                break
            outage.REDIS.up()
            if not ours:
                log.warning("dingtalk stream: lost the lease for app %s to another process; closing the connection",
                            runtime.settings.dingtalk.app_key)
                break
            lasts_until = sent + lease.ms / 1000
    finally:
        await client.stop()
        try:
            await asyncio.wait_for(connection, timeout=STOP_GRACE_SECONDS)
        except (asyncio.TimeoutError, asyncio.CancelledError):
            pass
        except Exception:  # noqa: BLE001 — logged above as the loop's end; nothing more to do
            pass
        if ours:
            _release(lease)


def _release(lease: Lease) -> None:
    try:
        lease.release()
        log.info("dingtalk stream: connection closed, lease released")
    except RedisError:
        log.info("dingtalk stream: connection closed; the lease expires on its own")


def start_thread(runtime: Runtime, stop: threading.Event, pulse: Pulse | None = None) -> threading.Thread:
    """The stream in a daemon thread with its own event loop (beside the web server in embedded
    mode), with a heartbeat that stops when the thread does."""
    thread = threading.Thread(target=run, args=(runtime, stop), name="banli-stream", daemon=True)
    (pulse or Pulse(runtime, stop)).add("stream", alive=thread.is_alive)
    thread.start()
    return thread


def run_process(runtime: Runtime) -> int:
    """`banli stream`: SIGTERM or SIGINT closes the connection and releases the lease, so another
    process takes over at once instead of after the lease runs out."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    thread = start_thread(runtime, stop)
    while not stop.wait(1.0):  # a timed wait: signal handlers run in the main thread between waits
        if not thread.is_alive():
            log.error("dingtalk stream: stopped unexpectedly")
            return 1
    thread.join(STOP_GRACE_SECONDS + RENEW_SECONDS)
    log.info("dingtalk stream stopped")
    return 0
