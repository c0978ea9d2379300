"""Routes an InboundEvent to one handler: button actions, then typed commands, then a fallback.

Handlers register with decorators that are sugar over `add_*`; the first match wins.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Callable, Optional

from sqlmodel import Session

from cards import Card
from handlers.events import InboundEvent
from storage.models import Employee


@dataclass
class Context:
    """Everything a handler may use. Writes go through `session` (one transaction with the reply)."""

    session: Session
    employee: Employee
    event: InboundEvent
    now: datetime
    timezone: str = "Asia/Shanghai"
    first_contact: bool = False  # the employee row was created by this event
    # The outbox key the returned card will be sent under: a workflow that wants to update that card
    # later (an approval's status) keeps it.
    reply_key: str = ""


class Abandon(Exception):
    """A handler's way to give up midway with an answer: everything it wrote in this transaction is
    rolled back (bot.pipeline), then the person sees `card`. For a "no" that is only found after
    some writes — a hand-over that finds nobody to take a task — so nothing is left half-done."""

    def __init__(self, card: Card) -> None:
        super().__init__(card.title)
        self.card = card


Handler = Callable[[Context], Optional[Card]]
# Sees every event with the handler chosen for it and may return another (an open guided form
# claims plain text that is not a command); None keeps the choice.
Guard = Callable[[Context, Optional[Handler]], Optional[Handler]]

_PUNCT_EDGES = " \t\r\n,.!?;:~，。！？；：、…"


def normalize(text: str) -> str:
    """Full-width → half-width, lower case, trimmed of edge punctuation (unless that is all there is,
    as in a lone "？"): how people type on phones varies; commands don't."""
    plain = unicodedata.normalize("NFKC", text).strip().lower()
    return plain.strip(_PUNCT_EDGES) or plain


class Router:
    def __init__(self) -> None:
        self._actions: dict[str, Handler] = {}
        self._exact: dict[str, Handler] = {}
        self._prefixes: list[tuple[str, Handler]] = []
        self._kinds: dict[str, Handler] = {}
        self._fallback: Handler | None = None
        self._guard: Guard | None = None

    # -- registration -------------------------------------------------------------------------
    def add_action(self, name: str, handler: Handler) -> None:
        self._actions[name] = handler

    def add_command(self, word: str, handler: Handler, *, prefix: bool = False) -> None:
        word = normalize(word)
        if prefix:
            self._prefixes.append((word, handler))
            self._prefixes.sort(key=lambda p: -len(p[0]))  # longest prefix wins
        else:
            self._exact[word] = handler

    def action(self, name: str) -> Callable[[Handler], Handler]:
        def register(fn: Handler) -> Handler:
            self.add_action(name, fn)
            return fn
        return register

    def command(self, *words: str, prefix: bool = False) -> Callable[[Handler], Handler]:
        def register(fn: Handler) -> Handler:
            for word in words:
                self.add_command(word, fn, prefix=prefix)
            return fn
        return register

    def kind(self, kind: str) -> Callable[[Handler], Handler]:
        """Handle every event of a kind with no text command (image, location, enter)."""
        def register(fn: Handler) -> Handler:
            self._kinds[kind] = fn
            return fn
        return register

    def fallback(self, fn: Handler) -> Handler:
        self._fallback = fn
        return fn

    def guard(self, fn: Guard) -> Guard:
        self._guard = fn
        return fn

    # -- dispatch -----------------------------------------------------------------------------
    def resolve(self, event: InboundEvent) -> tuple[Handler | None, InboundEvent]:
        """The handler for `event`, and the event as the handler should see it.

        A typed `#action value` (what a DingTalk markdown link sends for a button) is turned into
        the same action event a card tap produces, so both reach one handler.
        """
        if event.kind == "action":
            return self._actions.get(event.action, self._fallback), event
        text = normalize(event.text)
        if text.startswith("#") and event.kind in ("text", "voice"):
            # The value keeps its case: it may carry a platform id (DingTalk msgIds are mixed-case).
            action, _, value = unicodedata.normalize("NFKC", event.text).strip()[1:].partition(" ")
            action = action.lower()
            if action in self._actions:
                return self._actions[action], replace(event, kind="action", action=action, value=value.strip())
        if text:
            if text in self._exact:
                return self._exact[text], event
            for word, handler in self._prefixes:
                if text.startswith(word):
                    return handler, event
        if event.kind in self._kinds:
            return self._kinds[event.kind], event
        return self._fallback, event

    def is_command(self, text: str) -> bool:
        """A whole command: a command word alone, or a prefix word then a space ("拜访 腾讯").
        "电话里聊了报价" is not one: inside a form that is an answer, not a new request."""
        text = normalize(text)
        return text in self._exact or any(
            text == word or (text.startswith(word) and text[len(word):][:1].isspace()) for word, _ in self._prefixes)

    def dispatch(self, ctx: Context) -> Card | None:
        handler, event = self.resolve(ctx.event)
        ctx.event = event
        if self._guard is not None:
            handler = self._guard(ctx, handler) or handler
        if handler is None:
            return None
        return handler(ctx)

