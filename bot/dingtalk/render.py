"""Card → DingTalk markdown (with dtmd tap-to-send links) or card-template data
(reference/dingtalk.md §4.1 markdown, §4.4 sampleMarkdown, §4.6 cardParamMap; design §2).

Without a card template DingTalk buttons only open URLs, so each button becomes a
`dtmd://dingtalkclient/sendMessage?content=…` link: tapping it makes the user send the button's
words (`Button.text`) to the bot, and the router treats those words like the tap.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any
from urllib.parse import quote

from cards import Button, Card

LINE_BREAK = "  \n"  # DingTalk markdown needs two spaces before a newline to break the line (§4.1)
MARKDOWN_LIMIT = 5000  # characters; msgParam is capped at 15000 bytes (§4.3), CJK is 3 bytes each


def out_track_id(outbox_key: str) -> str:
    """A card instance id stable across retries of one outbox row and within DingTalk's 100 chars."""
    return "bl_" + hashlib.sha1(outbox_key.encode()).hexdigest()  # 43 characters


def dtmd_link(button: Button) -> str:
    return f"[{button.label}](dtmd://dingtalkclient/sendMessage?content={quote(button.text, safe='')})"


def markdown(card: Card) -> tuple[str, str]:
    """(title, text) for a markdown message; the title is what the chat list and notifications show."""
    lines = [f"### {card.title}"]
    lines += _body_lines(card)
    lines += [dtmd_link(b) for b in card.buttons]
    if card.footer:
        lines.append(card.footer)
    text = LINE_BREAK.join(lines)
    if len(text) > MARKDOWN_LIMIT:
        text = text[: MARKDOWN_LIMIT - 1] + "…"
    return card.title, text


def card_params(card: Card) -> dict[str, str]:
    """cardParamMap for the card template; every value a string, as the API requires (§4.6)."""
    buttons = [{"text": b.label, "action": b.action, "value": b.value} for b in card.buttons]
    return {
        "title": card.title,
        "source": card.source,
        "body": LINE_BREAK.join(card.body.splitlines()),
        "fields": LINE_BREAK.join(_field_lines(card)),
        "buttons": json.dumps(buttons, ensure_ascii=False),
        "footer": card.footer,
    }


def _body_lines(card: Card) -> list[str]:
    return card.body.splitlines() + _field_lines(card)


def _field_lines(card: Card) -> list[str]:
    return [f"**{key}**：{value}" for key, value in card.fields]


def msg_param(card: Card) -> str:
    """sampleMarkdown's msgParam: a JSON *string*, not an object (§4.2)."""
    title, text = markdown(card)
    return json.dumps({"title": title, "text": text}, ensure_ascii=False)


def webhook_body(card: Card) -> dict[str, Any]:
    """The same markdown in webhook format, for a sessionWebhook (§4.1)."""
    title, text = markdown(card)
    return {"msgtype": "markdown", "markdown": {"title": title, "text": text}}
