"""Embedded mode: the whole system in one process — in-process fakeredis, a worker thread and the
dispatcher thread beside the web server (docs/architecture.md §3), and with DINGTALK_MODE=stream the
DingTalk Stream connection (banli/stream.py). Used when REDIS_URL is unset, and by tests."""

from __future__ import annotations

import threading

from banli import dispatcher, stream, worker
from banli.heartbeat import Pulse
from banli.wiring import wire
from bot.runtime import Runtime


class Embedded:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.stop_event = threading.Event()
        self.threads: list[threading.Thread] = []

    def start(self) -> "Embedded":
        wire(self.runtime)  # normally done already by create_app; the threads must never run unwired
        # One heartbeat thread for the lot; the web server is this process, so it beats here too.
        self.pulse = pulse = Pulse(self.runtime, self.stop_event)
        pulse.add("web")
        self.threads.append(worker.start_thread(self.runtime, self.stop_event, pulse=pulse))
        thread = threading.Thread(target=dispatcher.run, args=(self.runtime, self.stop_event, pulse),
                                  name="banli-dispatcher", daemon=True)
        thread.start()
        self.threads.append(thread)
        dingtalk = self.runtime.settings.dingtalk
        if dingtalk and dingtalk.stream:
            self.threads.append(stream.start_thread(self.runtime, self.stop_event, pulse))
        return self

    def stop(self) -> None:
        """Ask the threads to finish; they are daemons, so nobody waits on a blocked dequeue. The
        stream closes its connection and releases its lease within a few seconds."""
        self.stop_event.set()
        try:
            self.runtime.ring()  # wake the dispatcher from its doorbell wait
        except Exception:  # noqa: BLE001
            pass
        self.pulse.join(timeout=2.0)  # one quick write: the page then shows when it stopped
