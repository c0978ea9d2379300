"""Routes an InboundEvent to one handler: button actions, then typed commands, then a fallback.

Each handler module records what it handles on a `Routes` of its own (decorators); importing a
module registers nothing anywhere. A process builds its `Router` by including every module's
`Routes` (handlers.build_router, called from banli.wiring.wire): one router per runtime, and a
command, action, kind or guided-form step claimed twice raises at start-up instead of one
silently replacing the other.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Callable, Optional

from sqlmodel import Session

from cards import Card
from handlers.events import InboundEvent
from storage.files import Upload
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
    router: Optional["Router"] = None  # the router dispatching this event (guided forms ask it)
    # An image event's photo as the worker downloaded it, before the handler ran (bot/pipeline.py):
    # the bytes, or why they cannot be kept. None for other events.
    upload: Optional[Upload] = None
    # (instructions, the person's message) → the JSON object an optional language model answered
    # (BANLI_LLM_URL, bot/llm.py); None when none is configured. Asked only by handlers/model_guess.py.
    language_model: Optional[Callable[[str, str], Optional[dict]]] = None
    # Where people reach this Banli (BANLI_PUBLIC_URL) and the console's signing key setting
    # (BANLI_SECRET_KEY, "" = the generated one): the 后台 command builds its one-time link from them.
    public_url: str = ""
    secret_key: str = ""


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
# Whole text → the exact command it says in other words, or None.
PhraseReader = Callable[[str], Optional[str]]

_PUNCT_EDGES = " \t\r\n,.!?;:~，。！？；：、…"


def normalize(text: str) -> str:
    """Full-width → half-width, lower case, trimmed of edge punctuation (unless that is all there is,
    as in a lone "？"): how people type on phones varies; commands don't."""
    plain = unicodedata.normalize("NFKC", text).strip().lower()
    return plain.strip(_PUNCT_EDGES) or plain


class DuplicateRoute(ValueError):
    """Two handlers claimed the same command, action, kind or form step."""


Ask = Callable[[Context, Any], Card]
Answer = Callable[[Context, Any, str], Card]


@dataclass(frozen=True)
class FormStep:
    """One question of a guided form: `ask` renders it, `answer` takes the reply."""

    ask: Ask
    answer: Answer


@dataclass(frozen=True)
class Flow:
    """A guided form (handlers.guided)."""

    title: str  # what the cancel message calls it: 记拜访, 报销
    # What 取消 says beyond "已取消" (e.g. that a record made earlier in the form stays).
    on_cancel: Optional[Callable[[Context, Any], str]] = None
    # Takes a photo or location sent while the form is open; None lets the usual handler have it.
    on_media: Optional[Callable[[Context, Any], Optional[Card]]] = None


class Routes:
    """What one handler module handles, recorded by its decorators and inert until a Router
    includes it. Same decorators as ever: `@routes.command("报销")`, `@routes.action("approve")`."""

    def __init__(self) -> None:
        self.entries: list[tuple[str, tuple, dict]] = []

    def _record(self, what: str, *args, **kwargs) -> None:
        self.entries.append((what, args, kwargs))

    def add_action(self, name: str, handler: Handler) -> None:
        self._record("add_action", name, handler)

    def action(self, name: str) -> Callable[[Handler], Handler]:
        def register(fn: Handler) -> Handler:
            self.add_action(name, fn)
            return fn
        return register

    def command(self, *words: str, prefix: bool = False) -> Callable[[Handler], Handler]:
        def register(fn: Handler) -> Handler:
            for word in words:
                self._record("add_command", word, fn, prefix=prefix)
            return fn
        return register

    def kind(self, kind: str) -> Callable[[Handler], Handler]:
        """Handle every event of a kind with no text command (image, location, enter)."""
        def register(fn: Handler) -> Handler:
            self._record("add_kind", kind, fn)
            return fn
        return register

    def fallback(self, fn: Handler) -> Handler:
        self._record("set_fallback", fn)
        return fn

    def guard(self, fn: "Guard") -> "Guard":
        self._record("set_guard", fn)
        return fn

    def phrases(self, fn: "PhraseReader") -> "PhraseReader":
        """A reader of whole sentences that name a command (报销到哪一步了 → 我的申请), asked before
        the prefix commands so that a sentence starting with a command word is not taken for it."""
        self._record("set_phrases", fn)
        return fn

    def flow(self, name: str, title: str, *, on_cancel=None, on_media=None) -> None:
        """A guided form and what 取消 / a photo mean for it."""
        self._record("add_flow", name, Flow(title, on_cancel, on_media))

    def step(self, flow: str, name: str, *, ask: Ask) -> Callable[[Answer], Answer]:
        """Question `name` of `flow`: `ask` renders it, the decorated function takes the reply."""
        def register(answer: Answer) -> Answer:
            self._record("add_step", flow, name, FormStep(ask, answer))
            return answer
        return register


class Router:
    def __init__(self) -> None:
        self._actions: dict[str, Handler] = {}
        self._exact: dict[str, Handler] = {}
        self._prefixes: list[tuple[str, Handler]] = []
        self._kinds: dict[str, Handler] = {}
        self._fallback: Handler | None = None
        self._guard: Guard | None = None
        self._phrases: PhraseReader | None = None
        self.flows: dict[str, Flow] = {}
        self.steps: dict[tuple[str, str], FormStep] = {}

    # -- registration -------------------------------------------------------------------------
    def include(self, routes: Routes) -> "Router":
        for what, args, kwargs in routes.entries:
            getattr(self, what)(*args, **kwargs)
        return self

    def add_action(self, name: str, handler: Handler) -> None:
        _claim(self._actions, name, handler, "action")

    def add_command(self, word: str, handler: Handler, *, prefix: bool = False) -> None:
        word = normalize(word)
        if prefix:
            if any(existing == word for existing, _ in self._prefixes):
                raise DuplicateRoute(f"prefix command {word!r} is registered twice")
            self._prefixes.append((word, handler))
            self._prefixes.sort(key=lambda p: -len(p[0]))  # longest prefix wins
        else:
            _claim(self._exact, word, handler, "command")

    def add_kind(self, kind: str, handler: Handler) -> None:
        _claim(self._kinds, kind, handler, "kind")

    def set_fallback(self, fn: Handler) -> None:
        if self._fallback is not None:
            raise DuplicateRoute("the fallback is registered twice")
        self._fallback = fn

    def set_guard(self, fn: "Guard") -> None:
        if self._guard is not None:
            raise DuplicateRoute("the guard is registered twice")
        self._guard = fn

    def set_phrases(self, fn: "PhraseReader") -> None:
        if self._phrases is not None:
            raise DuplicateRoute("the phrase reader is registered twice")
        self._phrases = fn

    def add_flow(self, name: str, flow: Flow) -> None:
        _claim(self.flows, name, flow, "guided form")

    def add_step(self, flow: str, name: str, step: FormStep) -> None:
        _claim(self.steps, (flow, name), step, "guided form step")

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
            said = self._phrases(text) if self._phrases is not None else None
            if said in self._exact:
                return self._exact[said], replace(event, text=said)
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
        ctx.event, ctx.router = event, self
        if self._guard is not None:
            handler = self._guard(ctx, handler) or handler
        if handler is None:
            return None
        return handler(ctx)


def _claim(table: dict, key, value, what: str) -> None:
    if key in table:
        raise DuplicateRoute(f"{what} {key!r} is registered twice")
    table[key] = value
