"""Embedded mode: the whole system in one process — in-process fakeredis, a worker thread and the
dispatcher thread beside the web server (docs/architecture.md §3). Used when REDIS_URL is unset,
and by tests."""

from __future__ import annotations

import threading

from banli import dispatcher, worker
from banli.wiring import wire
from bot.runtime import Runtime


class Embedded:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.stop_event = threading.Event()
        self.threads: list[threading.Thread] = []

    def start(self) -> "Embedded":
        wire(self.runtime)  # normally done already by create_app; the threads must never run unwired
        self.threads.append(worker.start_thread(self.runtime, self.stop_event))
        thread = threading.Thread(target=dispatcher.run, args=(self.runtime, self.stop_event),
                                  name="banli-dispatcher", daemon=True)
        thread.start()
        self.threads.append(thread)
        return self

    def stop(self) -> None:
        """Ask both threads to finish; they are daemons, so nobody waits on a blocked dequeue."""
        self.stop_event.set()
        try:
            self.runtime.ring()  # wake the dispatcher from its doorbell wait
        except Exception:  # noqa: BLE001
            pass
