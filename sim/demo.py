"""`banli demo`: Banli with a seeded company and a browser chat simulator, no tenant needed.

One server hosts everything: Banli's own app (webhook routes + /healthz), the simulator at /sim, and
the WeCom and DingTalk stand-in APIs under /sim/wecom-api and /sim/dingtalk-api, which Banli's
clients call over HTTP exactly as they would call the real platforms. Always embedded mode (SQLite,
in-process queue, worker and dispatcher threads), with a simulated clock the page can move forward.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from werkzeug.middleware.dispatcher import DispatcherMiddleware

from banli.embedded import Embedded
from bot.app import create_app
from bot.runtime import Runtime
from sim.actions import Actions
from sim.clock import SimClock
from sim.feed import Feed
from sim.platforms import DINGTALK_PREFIX, TENANT, WECOM_PREFIX, DingTalkCards, Platforms, demo_settings, make_platforms

DEMO_DB = "banli-demo.db"
THREADS = 16  # Banli's worker thread calls the stand-ins on this same server while a callback waits


@dataclass
class Demo:
    runtime: Runtime
    clock: SimClock
    platforms: Platforms
    feed: Feed
    actions: Actions
    wsgi: Any
    dingtalk_cards: DingTalkCards
    embedded: Embedded | None = None

    def start(self) -> "Demo":
        """The worker and dispatcher threads (embedded mode)."""
        if self.embedded is None:
            self.embedded = Embedded(self.runtime).start()
        return self

    def stop(self) -> None:
        if self.embedded is not None:
            self.embedded.stop()
            self.embedded = None


def prepare_database(database_url: str, *, now) -> bool:
    """Migrate, and seed the demo company into an empty database. True when it seeded."""
    from sim.seed import is_seeded, seed
    from storage.db import make_engine, session_scope
    from storage.migrate import upgrade

    engine = make_engine(database_url)
    try:
        upgrade(engine)
        with session_scope(engine) as session:
            if is_seeded(session):
                return False
            seed(session, now=now)
            return True
    finally:
        engine.dispose()  # gunicorn forks after this: no inherited SQLite connections


def build_demo(*, base_url: str, database_url: str, queue_name: str = "banli", tenant: str = TENANT,
               dingtalk_cards: bool = False) -> Demo:
    """Everything but the listening socket: serve `demo.wsgi` on `base_url`, then `demo.start()`.
    The database must be prepared (`prepare_database`)."""
    from sim.seed import DEPARTMENTS, PEOPLE, directory_users
    from sim.web import make_blueprint

    clock = SimClock()
    settings = demo_settings(base_url=base_url, database_url=database_url, queue_name=queue_name, tenant=tenant,
                             dingtalk_cards=dingtalk_cards)
    runtime = Runtime(settings, clock=clock)
    platforms = make_platforms(settings, base_url, wecom_users=directory_users("wecom"),
                               dingtalk_users=directory_users("dingtalk"), departments=DEPARTMENTS)
    feed = Feed(platforms, clock)
    actions = Actions(base_url, platforms, feed)
    cards = DingTalkCards(runtime)
    app = create_app(runtime=runtime)
    app.register_blueprint(make_blueprint(feed=feed, actions=actions, clock=clock, ring=runtime.ring,
                                          people=PEOPLE, dingtalk_cards=cards))
    wsgi = DispatcherMiddleware(app, {WECOM_PREFIX: platforms.wecom.app, DINGTALK_PREFIX: platforms.dingtalk.app})
    return Demo(runtime=runtime, clock=clock, platforms=platforms, feed=feed, actions=actions, wsgi=wsgi,
                dingtalk_cards=cards)


def run_demo(*, port: int, host: str = "127.0.0.1", reset: bool = False, database_url: str | None = None,
             dingtalk_cards: bool = False) -> int:
    """Seed if needed and serve the demo with gunicorn until interrupted. `dingtalk_cards`: 钉钉
    starts with interactive cards rather than markdown (the page switches between them)."""
    if database_url is None:
        if reset:
            _delete_sqlite(Path(DEMO_DB))
        database_url = f"sqlite:///{DEMO_DB}"
    seeded = prepare_database(database_url, now=SimClock()())
    print(("已生成演示公司 seeded the demo company" if seeded else "使用已有的演示数据 using the existing demo data")
          + f" ({database_url}; --reset 重新开始 starts over)")
    # Banli calls the stand-ins, and the simulator calls Banli, on this server through loopback.
    inside = f"http://{_loopback(host)}:{port}"
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    _serve(host, port, lambda: build_demo(base_url=inside, database_url=database_url, dingtalk_cards=dingtalk_cards),
           public=f"http://{shown}:{port}/sim")
    return 0


def _serve(host: str, port: int, make, public: str) -> None:
    from gunicorn.app.base import BaseApplication

    built: list[Demo] = []  # filled in the worker process, where the stand-ins and the clock live

    class DemoServer(BaseApplication):
        def load_config(self) -> None:
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("worker_class", "gthread")
            self.cfg.set("workers", 1)  # embedded mode keeps the queue in this process's memory
            self.cfg.set("threads", THREADS)
            self.cfg.set("post_worker_init", lambda _worker: built[0].start())
            self.cfg.set("when_ready", lambda _server: _announce(public))

        def load(self):
            built.append(make())
            return built[0].wsgi

    DemoServer().run()


def _announce(url: str) -> None:
    print(f"办理 Banli 演示已启动: {url}")
    print(f"Banli demo running: open {url} in a browser (Ctrl-C to stop)")
    sys.stdout.flush()


def _loopback(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "", "::", "localhost") else host


def _delete_sqlite(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(str(path) + suffix).unlink(missing_ok=True)
