"""Card → WeCom `message/send` body (reference/wecom.md §3.2, §3.5)."""

from __future__ import annotations

import hashlib
from typing import Any

from cards import Card

TEXT_LIMIT_BYTES = 2048
SUBTITLE_LIMIT = 112  # WeCom's advice for sub_title_text
STYLE = {"primary": 1, "default": 2, "danger": 3}


def task_id(outbox_key: str) -> str:
    """A card task id unique per app and stable across retries of one outbox row: chars [0-9a-z_],
    ≤128 bytes. A retry that hits 42014 ("taskid has existed") therefore means "already sent"."""
    return "bl_" + hashlib.sha1(outbox_key.encode()).hexdigest()


def template_card(card: Card, task: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "card_type": "button_interaction",
        "source": {"desc": card.source},
        "main_title": {"title": card.title},
        "task_id": task,
        "button_list": [{"text": b.label, "style": STYLE[b.style], "key": b.key} for b in card.buttons],
    }
    if card.body:
        body["sub_title_text"] = _cut(card.body, SUBTITLE_LIMIT)
    if card.fields:
        body["horizontal_content_list"] = [{"keyname": k, "value": v} for k, v in card.fields]
    if card.footer:  # button_interaction has no footer; its quote area shows a grey note
        body["quote_area"] = {"type": 0, "quote_text": _cut(card.footer, SUBTITLE_LIMIT)}
    return body


def message_body(card: Card, *, to_user: str, agent_id: int, outbox_key: str) -> dict[str, Any]:
    """A button card when there is something to tap, plain text otherwise (shown everywhere,
    including the WeChat plugin where markdown is not)."""
    envelope: dict[str, Any] = {
        "touser": to_user,
        "agentid": agent_id,
        # WeCom drops an identical request within the interval: a retried send is not shown twice.
        "enable_duplicate_check": 1,
        "duplicate_check_interval": 1800,
    }
    if card.buttons:
        envelope.update(msgtype="template_card", template_card=template_card(card, task_id(outbox_key)))
    else:
        tag = invisible_tag(outbox_key)
        content = cut_bytes(card.as_text(), TEXT_LIMIT_BYTES - len(tag.encode())) + tag
        envelope.update(msgtype="text", text={"content": content})
    return envelope


_ZERO_WIDTH = ("\u200b", "\u200c", "\u200d", "\u2060")


def invisible_tag(outbox_key: str, length: int = 8) -> str:
    """Zero-width characters derived from the outbox key. WeCom's duplicate check drops a text
    identical to one sent in the last interval: that is what makes a retried send safe, but it
    would also swallow a second, legitimately identical answer (tapping a stale card twice). The
    tag is the same on a retry of one row and differs between rows, and nobody sees it."""
    digest = hashlib.sha1(outbox_key.encode()).digest()
    return "".join(_ZERO_WIDTH[b % 4] for b in digest[:length])


def cut_bytes(text: str, limit: int) -> str:
    raw = text.encode()
    if len(raw) <= limit:
        return text
    return raw[: limit - 3].decode(errors="ignore") + "…"


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
