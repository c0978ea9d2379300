"""Decrypted WeCom XML → InboundEvent (reference/wecom.md §3.3, §5).

wechatpy 1.8 does not parse `template_card_event`, so all inner XML is read here with xmltodict —
after the signature check, so no unauthenticated XML is ever parsed.
"""

from __future__ import annotations

import re
from typing import Any

import xmltodict

from cards import Button
from handlers.events import InboundEvent

PLATFORM = "wecom"

# The outer envelope is read with a regex: the signature covers only the Encrypt text, and parsing
# the rest before authenticating it would expose the XML parser to anyone.
_ENCRYPT = re.compile(rb"<Encrypt>\s*<!\[CDATA\[([A-Za-z0-9+/=]+)\]\]>\s*</Encrypt>")


def extract_encrypt(body: bytes) -> str | None:
    match = _ENCRYPT.search(body)
    return match.group(1).decode() if match else None


def parse_xml(xml: str) -> dict[str, Any]:
    doc = xmltodict.parse(xml)
    if not isinstance(doc, dict) or not isinstance(doc.get("xml"), dict):
        raise ValueError("not a WeCom message")
    return doc["xml"]


def to_event(msg: dict[str, Any]) -> InboundEvent | None:
    """The event for a message or event Banli acts on; None for types it ignores."""
    msg_type = msg.get("MsgType")
    sender = msg.get("FromUserName") or ""
    if not sender:
        return None
    base = dict(platform=PLATFORM, sender=sender, raw=msg)
    if msg_type == "event":
        return _event(msg, base)
    msg_id = msg.get("MsgId")
    if not msg_id:
        return None
    base["event_id"] = str(msg_id)
    if msg_type == "text":
        return InboundEvent(kind="text", text=msg.get("Content") or "", **base)
    if msg_type == "image":
        return InboundEvent(kind="image", media_id=msg.get("MediaId") or "", **base)
    if msg_type == "voice":
        return InboundEvent(kind="voice", media_id=msg.get("MediaId") or "", **base)
    if msg_type == "location":
        where = (_float(msg.get("Location_X")), _float(msg.get("Location_Y")), msg.get("Label") or "")
        return InboundEvent(kind="location", location=where, **base)
    return None


def _event(msg: dict[str, Any], base: dict[str, Any]) -> InboundEvent | None:
    name = (msg.get("Event") or "").lower()
    key = msg.get("EventKey") or ""
    # Events have no MsgId: sender + time (+ key + task for clicks, so two taps in a second differ).
    base["event_id"] = "|".join([base["sender"], str(msg.get("CreateTime", "")), name, key,
                                 msg.get("TaskId") or ""])
    if name == "template_card_event":
        action, value = Button.parse_key(key)
        reply = {"task_id": msg.get("TaskId") or "", "response_code": msg.get("ResponseCode") or ""}
        return InboundEvent(kind="action", action=action, value=value, reply=reply, **base)
    if name == "click":  # app menu button
        action, value = Button.parse_key(key)
        return InboundEvent(kind="action", action=action, value=value, **base)
    if name == "enter_agent":
        return InboundEvent(kind="enter", **base)
    return None


def _float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0
