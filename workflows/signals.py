"""Domain events inside one process: a workflow announces what happened, others react.

`emit` runs every subscriber at once, inside the caller's transaction, so a reaction (a contract
approval raised by 赢单) commits or rolls back together with its cause. Subscribers that need to
reach people write outbox rows; nothing here talks to a platform.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Callable

from sqlmodel import Session

Subscriber = Callable[..., None]

DEAL_STAGE_CHANGED = "deal.stage_changed"  # deal, from_stage, to_stage, by (Employee | None), now, tz
FOLLOWUP_LOGGED = "followup.logged"  # customer, followup, by (Employee)

_subscribers: dict[str, list[Subscriber]] = defaultdict(list)


def subscribe(name: str) -> Callable[[Subscriber], Subscriber]:
    """Decorator: call `fn(session, **payload)` whenever `name` is emitted."""
    def register(fn: Subscriber) -> Subscriber:
        if fn not in _subscribers[name]:
            _subscribers[name].append(fn)
        return fn
    return register


def emit(session: Session, name: str, **payload: Any) -> None:
    for fn in list(_subscribers[name]):
        fn(session, **payload)


def subscribers(name: str) -> list[Subscriber]:
    return list(_subscribers[name])
