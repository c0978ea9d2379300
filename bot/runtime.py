"""The wiring one process needs: database engine, Redis, the RQ queue, the router, platform clients.

Nothing connects at import time; `Runtime(settings)` builds everything lazily from its settings, so
tests build their own runtime against their own database, Redis and platform stand-ins.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime
from functools import cached_property
from typing import Callable

from redis import Redis
from rq import Queue
from sqlalchemy.engine import Engine

from banli.settings import Settings
from bot.platform import PlatformClient
from handlers import Router, load
from storage.db import make_engine
from storage.models import utcnow

log = logging.getLogger("banli")

DOORBELL = "banli:doorbell"

# One FakeServer per process: the web threads, the worker thread and the dispatcher thread of
# embedded mode must all see the same in-process "Redis".
_fake_server = None
_fake_lock = threading.Lock()


def embedded_redis() -> Redis:
    global _fake_server
    import fakeredis

    with _fake_lock:
        if _fake_server is None:
            _fake_server = fakeredis.FakeServer()
    return fakeredis.FakeRedis(server=_fake_server)


class Runtime:
    def __init__(self, settings: Settings, *, clock: Callable[[], datetime] = utcnow,
                 engine: Engine | None = None, redis: Redis | None = None) -> None:
        self.settings = settings
        self.clock = clock
        if engine is not None:
            self.__dict__["engine"] = engine
        if redis is not None:
            self.__dict__["redis"] = redis

    @cached_property
    def engine(self) -> Engine:
        return make_engine(self.settings.database_url)

    @cached_property
    def autocommit_engine(self) -> Engine:
        """Connections that commit each statement: the webhook's single INSERT needs no BEGIN/COMMIT
        round trips. A pool of its own, so no connection switches modes on every checkout."""
        if self.settings.database_url.startswith("sqlite"):
            return self.engine  # one writer at a time anyway; keep a single pool
        return make_engine(self.settings.database_url, autocommit=True)

    @cached_property
    def redis(self) -> Redis:
        if self.settings.embedded:
            return embedded_redis()
        # Short timeouts: a dead Redis must not hang a webhook; the outbox makes up for a missed ring.
        return Redis.from_url(self.settings.redis_url, socket_timeout=5, socket_connect_timeout=2,
                              health_check_interval=30)

    @cached_property
    def queue(self) -> Queue:
        return Queue(self.settings.queue_name, connection=self.redis)

    @cached_property
    def router(self) -> Router:
        return load()

    @cached_property
    def clients(self) -> dict[str, PlatformClient]:
        """Senders for each platform that is configured."""
        clients: dict[str, PlatformClient] = {}
        if self.settings.wecom:
            from bot.wecom.client import WeComClient

            clients["wecom"] = WeComClient(self.settings.wecom, self.redis)
        if self.settings.dingtalk:
            from bot.dingtalk.client import DingTalkClient

            clients["dingtalk"] = DingTalkClient(self.settings.dingtalk, self.redis)
        return clients

    def now(self) -> datetime:
        return self.clock()

    def ring(self) -> None:
        """Tell the dispatcher there is new work now rather than at its next poll. Best effort: if
        Redis is down the dispatcher's poll finds the rows anyway."""
        try:
            self.redis.rpush(DOORBELL, "1")
        except Exception as exc:  # noqa: BLE001 — any Redis failure here is only a lost shortcut
            log.warning("doorbell not rung (%s); the dispatcher will poll", exc.__class__.__name__)
