"""Decrypted WeCom XML → InboundEvent (docs/wecom.md §3.3, §5).

wechatpy 1.8 does not parse `template_card_event`, so all inner XML is read here with the standard
library's ElementTree (2–3× faster than xmltodict, which it replaced, with the same dict
shape) — after the signature check, so no unauthenticated XML is ever parsed.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from xml.etree.ElementTree import Element, ParseError, fromstring

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
    """`<xml>…</xml>` as a dict, the shape xmltodict gave: a leaf is its stripped text (None when
    empty), a repeated tag a list, an attribute `@name`, the text beside children `#text`."""
    if "<!DOCTYPE" in xml:  # WeCom sends none; refuse entity tricks rather than expand them
        raise ValueError("not a WeCom message (DOCTYPE)")
    try:
        root = fromstring(xml)
    except ParseError as exc:
        raise ValueError(f"not a WeCom message ({exc})") from None
    doc = _value(root)
    if root.tag != "xml" or not isinstance(doc, dict):
        raise ValueError("not a WeCom message")
    return doc


def _value(element: Element) -> Any:
    text = element.text or ""
    if not len(element) and not element.attrib:
        return text.strip() or None
    out: dict[str, Any] = {f"@{k}": v for k, v in element.attrib.items()}
    for child in element:
        value = _value(child)
        if child.tag not in out:
            out[child.tag] = value
        elif isinstance(out[child.tag], list):
            out[child.tag].append(value)
        else:
            out[child.tag] = [out[child.tag], value]
        text += child.tail or ""
    if text.strip():
        out["#text"] = text.strip()
    return out


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
        # Speech-to-text, when WeChat sends it (docs/wecom.md §5.3): read like typed text by the
        # router; without it (or empty) the voice handler says it cannot listen yet.
        heard = msg.get("Recognition")
        return InboundEvent(kind="voice", text=heard.strip() if isinstance(heard, str) else "",
                            media_id=msg.get("MediaId") or "", **base)
    if msg_type == "location":
        where = (_float(msg.get("Location_X")), _float(msg.get("Location_Y")), msg.get("Label") or "")
        return InboundEvent(kind="location", location=where, **base)
    return None


def _event(msg: dict[str, Any], base: dict[str, Any]) -> InboundEvent | None:
    name = (msg.get("Event") or "").lower()
    if name == "change_contact":
        return _directory(msg, base)
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


def _directory(msg: dict[str, Any], base: dict[str, Any]) -> InboundEvent | None:
    """`change_contact` (docs/wecom.md §5.5): from "sys", `ChangeType` create_user / update_user /
    delete_user / create_party / update_party / delete_party / update_tag. Its key is a digest of the
    whole message: WeCom's retry of it is the same message, two changes in one second are not."""
    change = (msg.get("ChangeType") or "").strip()
    if not change:
        return None
    digest = hashlib.sha1(json.dumps(msg, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:20]
    base["event_id"] = f"change_contact|{msg.get('CreateTime', '')}|{change}|{digest}"
    return InboundEvent(kind="directory", action=change, **base)


def _float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0
