"""One log line per platform callback: platform, event id, outcome (accepted / duplicate / ignored /
verified / refused with its status), and how long the edge took.

A view wrapped in `logged(platform, log)` says what happened with `note(...)`; the wrapper writes the
line when the view returns or raises (a 413 or a database outage is answered by the app's error
handlers, and still gets its line here, once).
"""

from __future__ import annotations

import functools
import logging
import time
from typing import Callable

from flask import Response, g
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException

from banli.logs import fields, safe_error


def note(*, event_id: str = "", outcome: str = "", reason: str = "") -> None:
    """Tell this request's callback line what the view found (only what is given changes)."""
    line = g.setdefault("banli_callback", {})
    for key, value in (("event_id", event_id), ("outcome", outcome), ("reason", reason)):
        if value:
            line[key] = value


def refuse(status: int, reason: str) -> Response:
    """An empty answer with `status`; the callback line says why."""
    note(outcome="refused", reason=reason)
    return Response("", status=status)


def logged(platform: str, log: logging.Logger) -> Callable[[Callable[..., Response]], Callable[..., Response]]:
    def wrap(view: Callable[..., Response]) -> Callable[..., Response]:
        @functools.wraps(view)
        def callback(*args, **kwargs) -> Response:
            started = time.perf_counter()
            g.banli_callback = {}
            try:
                response = view(*args, **kwargs)
            except HTTPException as exc:  # 413 and friends: the app's error handlers answer
                _line(log, platform, started, exc.code or 500, exc.name.lower())
                raise
            except OperationalError as exc:  # the app answers 503: the platform delivers again later
                _line(log, platform, started, 503, f"database unavailable, the platform will retry ({safe_error(exc)})")
                raise
            except Exception as exc:
                _line(log, platform, started, 500, f"failed ({safe_error(exc)})")
                raise
            _line(log, platform, started, response.status_code)
            return response

        return callback

    return wrap


def _line(log: logging.Logger, platform: str, started: float, status: int, error: str = "") -> None:
    noted = g.get("banli_callback", {})
    outcome = "refused" if status >= 400 else noted.get("outcome") or "accepted"
    reason = error or noted.get("reason", "")
    message = f"{platform} callback {outcome}" + (f" {status}" if status >= 400 else "")
    if reason:
        message += f": {reason}"
    level = logging.ERROR if status >= 500 else logging.WARNING if status >= 400 else logging.INFO
    g.banli_callback_logged = True
    if not log.isEnabledFor(level):
        return
    ms = round((time.perf_counter() - started) * 1000, 1)
    # What log.log does, minus findCaller's walk up the stack (a sixth of the line's CPU, on every
    # callback): no Banli format prints the caller's file or line, so the record names this function.
    log.handle(log.makeRecord(log.name, level, __file__, 0, message, None, None, "_line",
                              fields(platform=platform, event_id=noted.get("event_id", ""), outcome=outcome,
                                     status=status, ms=ms)))
