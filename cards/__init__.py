"""A platform-neutral card: what handlers return and what the outbox stores.

Each platform renders it (WeCom template_card, DingTalk card or markdown) in `bot/<platform>/render.py`.
The limits below are the strictest of the two platforms, so a card that builds renders everywhere
(WeCom: ≤6 buttons, button key ≤1024 bytes, ≤6 horizontal fields — docs/wecom.md §3.2).

**Everything in a Card is plain text**: title, body, fields, footer, source and button labels. No
markdown, no HTML, no links — much of it is what a person typed (a reason, a comment, a customer's
name), and a card that relied on markup could not tell Banli's `**` from theirs. Each renderer turns
the text into its own format and escapes all of it there (DingTalk markdown: bot/dingtalk/render.py;
WeCom text: bot/wecom/render.py; `Card.as_text` below), and only the renderer adds markup. Line
breaks: the body may have several lines; a title, a field, a footer is one line (a break in one is
shown as a space).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

MAX_BUTTONS = 6
MAX_FIELDS = 6
MAX_TITLE = 36  # WeCom main_title suggestion; longer titles are cut on phones
MAX_LABEL = 10
MAX_ACTION_KEY_BYTES = 1024
STYLES = ("primary", "default", "danger")


@dataclass(frozen=True)
class Button:
    """A tap target. `action` names a handler; `value` is its argument (e.g. a request id).

    `command` is the plain words that do the same thing when typed (e.g. "报销", "同意 R-1004 第1步"),
    used where a platform can only send text back (DingTalk's tap-to-send links; docs/dingtalk.md
    §4.10); without it the text form is `#action value`, for a button words cannot make safe.
    """

    label: str
    action: str
    value: str = ""
    style: str = "default"
    command: str = ""

    def __post_init__(self) -> None:
        if not self.label or len(self.label) > MAX_LABEL:
            raise ValueError(f"button label must be 1–{MAX_LABEL} characters: {self.label!r}")
        if not self.action or " " in self.action or "|" in self.action:
            raise ValueError(f"button action must be one word without '|': {self.action!r}")
        if self.style not in STYLES:
            raise ValueError(f"button style must be one of {STYLES}: {self.style!r}")
        if len(self.key.encode()) > MAX_ACTION_KEY_BYTES:
            raise ValueError("button action + value is too long for a platform callback key")

    @property
    def key(self) -> str:
        """The callback key a platform echoes back on a tap: `action|value`."""
        return f"{self.action}|{self.value}" if self.value else self.action

    @property
    def text(self) -> str:
        """What a user (or a dtmd link) sends to get the same effect as tapping."""
        return self.command or f"#{self.action} {self.value}".strip()

    @staticmethod
    def parse_key(key: str) -> tuple[str, str]:
        """Inverse of `key`: (action, value)."""
        action, _, value = key.partition("|")
        return action, value


@dataclass(frozen=True)
class Card:
    title: str
    body: str = ""
    fields: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    buttons: tuple[Button, ...] = field(default_factory=tuple)
    # A short tag shown small above the title (e.g. "办理助手"), and a one-line note under the buttons.
    source: str = "办理"
    footer: str = ""
    # Fine to show a whole group chat: nothing in it belongs to one person (the menu, the 没听明白
    # hint). Off by default: in a group, every other card goes to the asker one-to-one (bot/pipeline.reply).
    shareable: bool = False
    # What a card with no buttons says where its buttons were, when it replaces a card that had some
    # (e.g. "已通过"; WeCom greys its button bar out with this). Empty: "已处理".
    status: str = ""
    # A web address Banli built itself (the 后台 one-time link), never text a person typed: each
    # renderer makes it the one tappable link of the message, with `link_label` as its words.
    link: str = ""
    link_label: str = ""

    def __post_init__(self) -> None:
        if self.link and not self.link.startswith(("https://", "http://")):
            raise ValueError(f"card link must be an http(s) address: {self.link!r}")
        if self.link and self.buttons:
            # WeCom shows a tappable address only in a text message, which has no buttons.
            raise ValueError("a card with a link has no buttons")
        if not self.title or len(self.title) > MAX_TITLE:
            raise ValueError(f"card title must be 1–{MAX_TITLE} characters: {self.title!r}")
        if len(self.buttons) > MAX_BUTTONS:
            raise ValueError(f"a card has at most {MAX_BUTTONS} buttons")
        if len(self.fields) > MAX_FIELDS:
            raise ValueError(f"a card has at most {MAX_FIELDS} fields")
        keys = [b.key for b in self.buttons]
        if len(set(keys)) != len(keys):
            raise ValueError("button keys on one card must be unique")
        if len(self.status) > MAX_LABEL:
            raise ValueError(f"card status must be at most {MAX_LABEL} characters: {self.status!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Card":
        return cls(
            title=data["title"],
            body=data.get("body", ""),
            fields=tuple((k, v) for k, v in data.get("fields", ())),
            buttons=tuple(Button(**b) for b in data.get("buttons", ())),
            source=data.get("source", "办理"),
            footer=data.get("footer", ""),
            shareable=bool(data.get("shareable", False)),
            status=data.get("status", ""),
            link=data.get("link", ""),
            link_label=data.get("link_label", ""),
        )

    def as_text(self) -> str:
        """Plain-text form for clients that cannot show cards: buttons become words to send.

        The text form's own structure is the 【title】 first line and one line per field, so card text
        cannot fake it: 【】 in card text become ［］, and a line break in the title, a field or the
        footer is a space. A platform whose text has markup of its own escapes that too (WeCom's live
        `<a href>`: bot/wecom/render.py)."""
        lines = [f"【{_text_line(self.title)}】"]
        lines += [_plain(line) for line in self.body.splitlines()]
        lines += [f"{_text_line(k)}：{_text_line(v)}" for k, v in self.fields]
        if self.buttons:
            lines.append("请回复：" + " / ".join(f"「{b.text}」" for b in self.buttons))
        if self.footer:
            lines.append(_text_line(self.footer))
        if self.link:  # last, on a line of its own: what the platforms turn into a tappable link
            lines.append(f"{_text_line(self.link_label or '链接')}：{self.link}")
        return "\n".join(lines)


_HEADER_BRACKETS = str.maketrans({"【": "［", "】": "］"})
_BREAK = re.compile("[\n\r\v\f\x1c-\x1e\x85\u2028\u2029]")  # what str.splitlines splits on


def one_line(text: str) -> str:
    """Line breaks (every kind str.splitlines knows) collapsed to one space."""
    if not _BREAK.search(text):
        return text
    return " ".join(part.strip() for part in text.splitlines() if part.strip())


def _plain(text: str) -> str:
    return text.translate(_HEADER_BRACKETS)


def _text_line(text: str) -> str:
    return _plain(one_line(text))


def text_card(text: str, title: str = "办理助手") -> Card:
    """A card with just words (confirmations, short answers)."""
    return Card(title=title, body=text)
