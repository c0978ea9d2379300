"""Timers: workflow code that runs at a time, as outbox rows of kind `timer`.

A timer is `outbox.add(kind="timer", due_at=…, payload={"name": …, …})`; when due, the worker calls
the function registered under `name` inside a transaction (banli/delivery.py). A timer checks the
state it is about when it fires and does nothing if that has moved on, so timers are never
cancelled in a hurry and a restart in between loses none.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Callable

from sqlmodel import Session

from storage import outbox

Timer = Callable[[Session, dict[str, Any], datetime, str], dict[str, Any]]  # session, payload, now, tz

_timers: dict[str, Timer] = {}


def timer(name: str) -> Callable[[Timer], Timer]:
    def register(fn: Timer) -> Timer:
        _timers[name] = fn
        return fn
    return register


def schedule(session: Session, *, key: str, name: str, due_at: datetime, **payload: Any) -> bool:
    return outbox.add(session, key=key, kind="timer", due_at=due_at, payload={"name": name, **payload})


def run(session: Session, payload: dict[str, Any], now: datetime, tz: str) -> dict[str, Any]:
    _load()
    return _timers[payload["name"]](session, payload, now, tz)


def _load() -> None:
    """Modules that register timers; imported lazily so the registry never depends on import order."""
    from workflows import overdue, payments  # noqa: F401
    from workflows.approvals import timers  # noqa: F401
