"""Logging for every process: readable text by default, one JSON object per line for log shippers.

`configure(settings)` is called once at a process's start (`banli` commands in banli/cli.py; the
Procfile's gunicorn through `bot.app:create_app()` or `--logger-class banli.logs.GunicornLogger`).
Lines that operators count — one per callback, one per job — carry structured fields: pass them as
`extra=fields(...)`; text shows them as `key=value` after the message, JSON as keys of their own
(a `trace` field goes on the lines below in text, under "exc" in JSON).

`safe_error(exc)` is what an error line (and the outbox's error column) may say about an exception:
its class and a summary that holds no message text and no SQL parameters.
"""

from __future__ import annotations

import json
import logging
import os
import re
import traceback
from datetime import datetime, timezone
from typing import Any

from banli.settings import Settings

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_FIELDS = "banli_fields"
# Loggers gunicorn gives handlers of its own (they do not propagate to the root).
_GUNICORN_LOGGERS = ("gunicorn.error", "gunicorn.access")


def fields(**values: Any) -> dict[str, Any]:
    """`extra=` for a log call whose values a log shipper should see as fields."""
    return {_FIELDS: values}


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = super().formatMessage(record)
        extra = dict(getattr(record, _FIELDS, None) or {})
        trace = extra.pop("trace", None)
        if extra:
            line += " " + " ".join([f"{k}={_text_value(v)}" for k, v in extra.items()])
        return line + ("\n" + trace if trace else "")


_SPACE = re.compile(r"\s").search  # the same characters as str.isspace, without a generator per value
_quote = json.JSONEncoder(ensure_ascii=False).encode  # one encoder, not one per call


def _text_value(value: Any) -> str:
    if value is None or value == "":
        return "-"
    text = value if type(value) is str else str(value)
    return _quote(text) if _SPACE(text) else text


class JsonFormatter(logging.Formatter):
    """ts, level, logger, msg, the record's fields, and `exc` (a trace) when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        extra = dict(getattr(record, _FIELDS, None) or {})
        trace = extra.pop("trace", None)
        line.update(extra)
        if trace:
            line["exc"] = trace
        elif record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        elif record.stack_info:
            line["stack"] = record.stack_info
        return _json_line(line)


_json_line = json.JSONEncoder(ensure_ascii=False, default=str).encode


def formatter(settings: Settings) -> logging.Formatter:
    return JsonFormatter() if settings.log_format == "json" else TextFormatter()


def configure(settings: Settings) -> None:
    """Send every line (Banli's, libraries', gunicorn's) to stderr in the chosen format and level.
    Replaces the handler an earlier call added, so calling it twice does not print lines twice."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "banli", False)]:
        root.removeHandler(old)
    handler = logging.StreamHandler()
    handler.banli = True
    handler.setFormatter(formatter(settings))
    root.addHandler(handler)
    root.setLevel(settings.log_level)
    restyle_gunicorn(settings)


def configure_once(settings: Settings) -> bool:
    """`configure` unless the process already has a root handler (`banli web` configured it at its
    start; a test runner capturing logs must keep its own). True when it configured."""
    if logging.getLogger().handlers:
        return False
    configure(settings)
    return True


def restyle_gunicorn(settings: Settings) -> None:
    """gunicorn's own lines (boot, worker exits, access log) in Banli's format too."""
    for name in _GUNICORN_LOGGERS:
        for handler in logging.getLogger(name).handlers:
            handler.setFormatter(formatter(settings))


try:
    from gunicorn.glogging import Logger as _GunicornBase
except ImportError:  # gunicorn is only needed by the web process
    _GunicornBase = None

if _GunicornBase is not None:
    class GunicornLogger(_GunicornBase):
        """gunicorn's logger in Banli's format, master process included (`banli web` uses it; a
        hand-written gunicorn line can with `--logger-class banli.logs.GunicornLogger`)."""

        def setup(self, cfg) -> None:
            super().setup(cfg)
            settings = Settings.from_env()
            configure_once(settings)
            restyle_gunicorn(settings)


def safe_error(exc: BaseException) -> str:
    """The exception's class and where it was raised or what the database said — never its message
    when that could repeat user text (a handler's exception, a SQL error's parameters or DETAIL)."""
    from bot.platform import PlatformError

    name = exc.__class__.__name__
    if isinstance(exc, PlatformError):  # Banli writes these itself: an endpoint and an error code
        return f"{name}: {exc}"[:500]
    orig = getattr(exc, "orig", None)
    if orig is not None:  # a SQLAlchemy error wrapping the driver's
        return f"{name} ({_database_summary(orig)})"
    return f"{name} at {_where(exc)}"


def _database_summary(orig: BaseException) -> str:
    sqlstate = getattr(orig, "sqlstate", None)
    if sqlstate is not None:  # psycopg: its first line may quote a value (invalid input syntax: "…")
        diag = getattr(orig, "diag", None)
        constraint = getattr(diag, "constraint_name", None) if diag else None
        summary = f"{_qualified(orig)} sqlstate {sqlstate}"
        if constraint:
            summary += f" constraint {constraint}"
        if sqlstate[:2] in ("08", "53", "57"):  # connection trouble: the text names a host, not data
            summary += f" ({_first_line(orig)})"
        return summary
    # SQLite's messages name tables and columns, not values ("UNIQUE constraint failed: t.c").
    return f"{_qualified(orig)}: {_first_line(orig)}"


def _qualified(exc: BaseException) -> str:
    return f"{type(exc).__module__.split('.')[0]}.{type(exc).__name__}"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else ""


def _where(exc: BaseException) -> str:
    """file:line in function of the innermost frame, relative to the project when it is inside it."""
    frames = traceback.extract_tb(exc.__traceback__) if exc.__traceback__ else []
    if not frames:
        return "?"
    frame = frames[-1]
    path = frame.filename
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if path.startswith(root + os.sep):
        path = path[len(root) + 1:]
    return f"{path}:{frame.lineno} in {frame.name}"


def safe_trace(exc: BaseException) -> str:
    """The traceback's frames and the exception's class, without its message (which may quote user
    text): for a bug's log line, where the frames are what a developer needs."""
    frames = "".join(traceback.format_tb(exc.__traceback__)) if exc.__traceback__ else ""
    return f"Traceback (most recent call last):\n{frames}{safe_error(exc)}"
