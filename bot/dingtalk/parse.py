"""DingTalk robot message and card-callback JSON → InboundEvent (docs/dingtalk.md §1.3, §4.6).

Only called after the signature check. Message types Banli does not act on (video, file, anything
new) give None: the route answers 200 and stores nothing.
"""

from __future__ import annotations

import json
from typing import Any

from handlers.events import InboundEvent

PLATFORM = "dingtalk"
GROUP = "2"  # conversationType: "1" one-to-one, "2" group
# The answer to a card callback (HTTP body, or the Stream ACK's `response`): an empty data update.
# It would reach only the clicker (§4.6); the handler's reply and card updates go through the outbox.
CARD_ANSWER = {"cardUpdateOptions": {"updateCardDataByKey": True}, "cardData": {"cardParamMap": {}}}


def body_json(raw: bytes) -> dict[str, Any] | None:
    """The decoded JSON object, or None when the body is not one."""
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    return body if isinstance(body, dict) else None


def for_another_robot(msg: dict[str, Any], robot_code: str) -> bool:
    """The message names a robot that is not this app's (refused on either path)."""
    return bool(msg.get("robotCode")) and msg["robotCode"] != robot_code


def message_event(msg: dict[str, Any]) -> InboundEvent | None:
    """The event for a robot message Banli acts on; None for types it ignores or senders it can't name."""
    sender = _str(msg.get("senderStaffId"))
    msg_id = _str(msg.get("msgId"))
    if not sender or not msg_id:  # external users have no staff id; no msgId means no dedup key
        return None
    base = dict(platform=PLATFORM, event_id=msg_id, sender=sender, raw=msg,
                conversation=_str(msg.get("conversationId")) if _str(msg.get("conversationType")) == GROUP else "",
                reply=_reply(msg))
    content = msg.get("content") if isinstance(msg.get("content"), dict) else {}
    kind = msg.get("msgtype")
    if kind == "text":
        text = msg.get("text") if isinstance(msg.get("text"), dict) else {}
        # The @mention leaves a leading space in groups (§1.3).
        return InboundEvent(kind="text", text=_str(text.get("content")).strip(), **base)
    if kind == "picture":  # the code for robot/messageFiles/download (docs/dingtalk.md §4.9)
        code = _str(content.get("downloadCode")) or _str(content.get("pictureDownloadCode"))
        return InboundEvent(kind="image", media_id=code, **base)
    if kind == "audio":
        # DingTalk's own speech-to-text: the router treats voice text like typed text.
        return InboundEvent(kind="voice", text=_str(content.get("recognition")).strip(),
                            media_id=_str(content.get("downloadCode")), **base)
    if kind == "richText":
        return _rich_text(content, base)
    return None


def _rich_text(content: dict[str, Any], base: dict[str, Any]) -> InboundEvent | None:
    parts = [p for p in content.get("richText") or [] if isinstance(p, dict)]
    text = "".join(_str(p.get("text")) for p in parts).strip()
    pictures = [_str(p.get("downloadCode")) for p in parts if p.get("type") == "picture" and p.get("downloadCode")]
    if text:
        return InboundEvent(kind="text", text=text, media_id=pictures[0] if pictures else "", **base)
    if pictures:
        return InboundEvent(kind="image", media_id=pictures[0], **base)
    return None


def _reply(msg: dict[str, Any]) -> dict[str, Any]:
    """How to answer this message without a token: its sessionWebhook, while it lasts (§1.4)."""
    webhook = _str(msg.get("sessionWebhook"))
    if not webhook:
        return {}
    try:
        expires = int(msg.get("sessionWebhookExpiredTime") or 0)
    except (TypeError, ValueError):
        expires = 0
    return {"session_webhook": webhook, "session_webhook_expires": expires}


def card_event(body: dict[str, Any]) -> InboundEvent | None:
    """A card button callback; None when it names no user, card or action.

    The docs disagree on the shape (§4.6): the payload is in `content` or `value` (a JSON string),
    and `params` sits inside `cardPrivateData` or beside it. Accept all of them.
    """
    user, track = _str(body.get("userId")), _str(body.get("outTrackId"))
    params = card_params(body)
    action, value = _str(params.get("action")), _str(params.get("value"))
    if not (user and track and action):
        return None
    return InboundEvent(platform=PLATFORM, event_id=f"{track}|{user}|{action}|{value}", kind="action",
                        sender=user, action=action, value=value, reply={"out_track_id": track}, raw=body)


def card_params(body: dict[str, Any]) -> dict[str, Any]:
    payload = body.get("content") or body.get("value")
    if isinstance(payload, str):
        try:
            payload = json.loads(payload)
        except ValueError:
            return {}
    if not isinstance(payload, dict):
        return {}
    private = payload.get("cardPrivateData")
    params = private.get("params") if isinstance(private, dict) else None
    if not isinstance(params, dict):
        params = payload.get("params")
    return params if isinstance(params, dict) else {}


def _str(value: Any) -> str:
    """Strings as they are; numbers as text (createAt and ids are documented as strings but vary)."""
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return ""
