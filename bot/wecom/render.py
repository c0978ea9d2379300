"""Card → WeCom `message/send` body and `update_template_card` card (docs/wecom.md §3.2, §3.4, §3.5).

Card text is plain text (cards/__init__.py). A template card shows it as text; a `text` message does
not quite: WeCom makes `<a href="…">…</a>` in text content a live link (§3.5). So the text form
(`Card.as_text`) goes out with `<` and `>` replaced by their full-width look-alikes ＜ ＞ — and an `&`
that would start an HTML entity (`&lt;`) by ＆ — so no tag can form; everything else reads as typed.

Updating a button card (§3.4, 94888 更新模版卡片消息): `button_interaction` requires a non-empty
`button_list`, even in an update. A card that ends with nothing to tap (a finished request) is
therefore sent as a `button_interaction` with the new title, text and fields, one placeholder button,
and the documented card-level `replace_text` ("按钮替换文案，填写本字段后会展现灰色不可点击按钮"): the
button bar becomes one grey, untappable button saying the card's `status` (e.g. 已通过).
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from cards import MAX_LABEL, Card

TEXT_LIMIT_BYTES = 2048
SUBTITLE_LIMIT = 112  # WeCom's advice for sub_title_text
STYLE = {"primary": 1, "default": 2, "danger": 3}
DONE_STATUS = "已处理"  # what a finished card's grey button says when the card names no status
DONE_KEY = "banli.done"  # the placeholder button's key; replace_text makes it untappable
_TAGS = str.maketrans({"<": "＜", ">": "＞"})
_ENTITY = re.compile(r"&(?=#?[A-Za-z0-9]+;)")


def task_id(outbox_key: str) -> str:
    """A card task id unique per app and stable across retries of one outbox row: chars [0-9a-z_],
    ≤128 bytes. A retry that hits 42014 ("taskid has existed") therefore means "already sent"."""
    return "bl_" + hashlib.sha1(outbox_key.encode()).hexdigest()


def template_card(card: Card, task: str) -> dict[str, Any]:
    """A button card; a card without buttons only ever replaces one (a new send of it is text), and
    then its button bar is one grey button saying the card's status (see the module doc)."""
    body: dict[str, Any] = {
        "card_type": "button_interaction",
        "source": {"desc": card.source},
        "main_title": {"title": card.title},
        "task_id": task,
        "button_list": [{"text": b.label, "style": STYLE[b.style], "key": b.key} for b in card.buttons],
    }
    if not card.buttons:
        status = (card.status or DONE_STATUS)[:MAX_LABEL]
        body["button_list"] = [{"text": status, "style": STYLE["default"], "key": DONE_KEY}]
        body["replace_text"] = status
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
        content = cut_bytes(escape_text(card.as_text()), TEXT_LIMIT_BYTES - len(tag.encode())) + tag
        envelope.update(msgtype="text", text={"content": content})
    return envelope


def escape_text(text: str) -> str:
    """Text-message content that WeCom cannot turn into a link or tag: ＜ ＞ for < >, ＆ for an entity's &."""
    return _ENTITY.sub("＆", text.translate(_TAGS))


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
