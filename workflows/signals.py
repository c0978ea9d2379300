"""Domain events inside one process: a workflow announces what happened, others react.

`emit` runs every subscriber at once, inside the caller's transaction, so a reaction (a contract
approval raised by 赢单) commits or rolls back together with its cause. Subscribers that need to
reach people write outbox rows; nothing here talks to a platform.

Who listens is decided by one explicit call per process (banli.wiring.wire), never by importing a
module: a `Signals` bus is attached to the runtime's database engine, and `emit` finds it through
the session's engine. A session on an engine nobody wired raises instead of dropping the event —
a worker that silently had no subscribers is how an auto-approved 合同 once never signed its deal.
"""

from __future__ import annotations

import weakref
from collections import defaultdict
from typing import Any, Callable

from sqlalchemy.engine import Engine
from sqlmodel import Session

Subscriber = Callable[..., None]

DEAL_STAGE_CHANGED = "deal.stage_changed"  # deal, from_stage, to_stage, by (Employee | None), now, tz
FOLLOWUP_LOGGED = "followup.logged"  # customer, followup, by (Employee)


class NotWired(RuntimeError):
    """A signal was emitted on a database engine whose process never called wire()."""


class Signals:
    """One process's subscribers, by signal name."""

    def __init__(self) -> None:
        self._subscribers: dict[str, list[Subscriber]] = defaultdict(list)

    def subscribe(self, name: str, fn: Subscriber) -> None:
        """Call `fn(session, **payload)` whenever `name` is emitted. Twice is a wiring mistake."""
        if fn in self._subscribers[name]:
            raise ValueError(f"{fn.__qualname__} already subscribes to {name}")
        self._subscribers[name].append(fn)

    def unsubscribe(self, name: str, fn: Subscriber) -> None:
        self._subscribers[name].remove(fn)

    def subscribers(self, name: str) -> list[Subscriber]:
        return list(self._subscribers[name])

    def emit(self, session: Session, name: str, **payload: Any) -> None:
        for fn in self.subscribers(name):
            fn(session, **payload)


_buses: "weakref.WeakKeyDictionary[Engine, Signals]" = weakref.WeakKeyDictionary()


def attach(engine: Engine, bus: Signals) -> None:
    """Sessions on `engine` emit to `bus` (banli.wiring.wire does this for the runtime's engine)."""
    _buses[engine] = bus


def bus_for(engine: Engine) -> Signals:
    try:
        return _buses[engine]
    except KeyError:
        raise NotWired("this process never called banli.wiring.wire(runtime): nobody would hear the "
                       "event, so it is refused rather than lost") from None


def emit(session: Session, name: str, **payload: Any) -> None:
    bus_for(session.get_bind()).emit(session, name, **payload)
