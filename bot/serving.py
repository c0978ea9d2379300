"""A WSGI app served on a real port from a background thread (tests, stand-ins, the demo)."""

from __future__ import annotations

import threading

from werkzeug.serving import make_server


class ServerThread:
    def __init__(self, app, host: str = "127.0.0.1", port: int = 0) -> None:
        self.server = make_server(host, port, app, threaded=True)
        self.port = self.server.server_port
        self.url = f"http://{host}:{self.port}"
        self.thread = threading.Thread(target=self._serve, name=f"http-{self.port}", daemon=True)

    def _serve(self) -> None:
        # shutdown() waits for the loop to notice; at the default 0.5 s poll every test paid ~1 s to
        # stop its three servers. 20 ms costs an idle server ~50 cheap wake-ups a second.
        self.server.serve_forever(poll_interval=0.02)

    def start(self) -> "ServerThread":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
