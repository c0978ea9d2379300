"""The doorbell rings from a thread of its own: a request never waits on Redis, yet every ring is
followed by a push that starts after it, and Redis errors only delay the push."""

from __future__ import annotations

import logging
import threading
import time

from bot.runtime import DOORBELL, Doorbell
from conftest import wait_for


class SlowRedis:
    """Records when each RPUSH started; the first `fail` pushes raise like a Redis that is down."""

    def __init__(self, delay: float = 0.0, fail: int = 0) -> None:
        self.delay, self.fail = delay, fail
        self.starts: list[float] = []
        self.lock = threading.Lock()

    def rpush(self, key: str, value: str) -> int:
        assert key == DOORBELL
        if self.fail:
            self.fail -= 1
            raise ConnectionError("redis down")
        with self.lock:
            self.starts.append(time.monotonic())
        time.sleep(self.delay)
        return 1


def test_a_burst_of_rings_shares_pushes_and_the_last_ring_is_followed_by_a_push():
    redis = SlowRedis(delay=0.02)
    bell = Doorbell(lambda: redis)
    started = time.monotonic()
    for _ in range(200):
        last_ring = time.monotonic()  # before the call: a push may start while ring() returns
        bell.ring()
        time.sleep(0.0005)
    assert time.monotonic() - started < 1.0  # no ring waited for a 20 ms push
    wait_for(lambda: redis.starts and redis.starts[-1] >= last_ring)
    assert len(redis.starts) < 100


def test_rings_from_many_threads_each_get_a_later_push():
    redis = SlowRedis(delay=0.005)
    bell = Doorbell(lambda: redis)
    rang: list[float] = []
    ringers_before = sum(1 for t in threading.enumerate() if t.name == "banli-doorbell")

    def ring_a_few():
        for _ in range(20):
            rang.append(time.monotonic())
            bell.ring()

    threads = [threading.Thread(target=ring_a_few) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wait_for(lambda: redis.starts and redis.starts[-1] >= max(rang))
    assert sum(1 for t in threading.enumerate() if t.name == "banli-doorbell") <= ringers_before + 1


def test_redis_errors_are_logged_once_and_the_push_is_retried(caplog):
    redis = SlowRedis(fail=2)
    bell = Doorbell(lambda: redis)
    bell.RETRY_SECONDS = (0.05,)
    with caplog.at_level(logging.INFO, logger="banli"):
        bell.ring()
        wait_for(lambda: any("rung again after 2 failed" in r.getMessage() for r in caplog.records))
    assert len(redis.starts) == 1
    warnings = [r for r in caplog.records if "doorbell not rung" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING


def test_an_idle_doorbell_thread_ends_and_the_next_ring_starts_another():
    redis = SlowRedis()
    bell = Doorbell(lambda: redis)
    bell.IDLE_SECONDS = 0.05
    bell.ring()
    wait_for(lambda: len(redis.starts) == 1)
    wait_for(lambda: not bell._running)
    bell.ring()
    wait_for(lambda: len(redis.starts) == 2)
