"""POST /dingtalk/callback (HTTP-mode robot messages), POST /dingtalk/card (card button callbacks) and,
when DINGTALK_EVENT_TOKEN and DINGTALK_EVENT_AES_KEY are set, POST /dingtalk/events (the HTTP event
subscription: address-book events, docs/dingtalk.md §3, §5.3).

verify → parse → pipeline → `{"msgtype":"empty"}` (replies go out through the outbox: sessionWebhook,
robot API or card, docs/dingtalk.md §1.4). Card callbacks answer with an empty data update: the
answer only reaches the clicker (§4.6); the handler's reply and card updates go through the outbox.
Refusals: missing signature headers 401, bad signature / stale timestamp / another robot 403, body not
a JSON object 400, oversize 413 (Flask's MAX_CONTENT_LENGTH). Types Banli ignores get 200 and nothing else.

/dingtalk/card is always registered: with no card template Banli sends no cards, so nothing calls
it, and every call must still carry the app-secret signature.
"""

from __future__ import annotations

import logging
import time
from typing import Callable

from flask import Blueprint, Response, jsonify, request

from bot import pipeline
from bot.callback_log import logged, note, refuse
from bot.dingtalk import verify
from bot.dingtalk.event_crypto import BadCiphertext, EventCrypto, OwnerKeyMismatch, read_payload
from bot.dingtalk.events import parse_event
from bot.dingtalk.parse import CARD_ANSWER, body_json, card_event, for_another_robot, message_event
from bot.runtime import Runtime
from handlers.events import InboundEvent

log = logging.getLogger("banli.dingtalk")

EMPTY = {"msgtype": "empty"}


def make_blueprint(runtime: Runtime) -> Blueprint:
    settings = runtime.settings.dingtalk
    bp = Blueprint("dingtalk", __name__)

    @bp.post("/dingtalk/callback")
    @logged("dingtalk", log)
    def receive() -> Response:
        refusal = _check_signed("robot message", request.headers.get("timestamp", ""),
                                request.headers.get("sign", ""), settings.app_secret, verify.robot_signature_ok)
        if refusal:
            return refusal
        msg = body_json(request.get_data(cache=False))
        if msg is None:
            return _refuse(400, "robot message body is not a JSON object")
        if for_another_robot(msg, settings.robot_code):
            return _refuse(403, f"robot message for another robot {str(msg['robotCode'])[:40]!r}")
        event = message_event(msg)
        if event is None:
            note(outcome="ignored", reason=f"{str(msg.get('msgtype'))[:20]!r} message from "
                                           f"{str(msg.get('senderStaffId') or '')[:64]!r}")
            return jsonify(EMPTY)
        _accept(runtime, event)
        return jsonify(EMPTY)

    @bp.post("/dingtalk/card")
    @logged("dingtalk", log)
    def card_callback() -> Response:
        # The registered apiSecret is the app secret (reference §4.6 register-card-callback-address).
        refusal = _check_signed("card callback", request.headers.get("x-ddpaas-signature-timestamp", ""),
                                request.headers.get("x-ddpaas-signature", ""), settings.app_secret,
                                verify.card_signature_ok)
        if refusal:
            return refusal
        body = body_json(request.get_data(cache=False))
        if body is None:
            return _refuse(400, "card callback body is not a JSON object")
        event = card_event(body)
        if event is None:
            note(outcome="ignored", reason=f"card callback on {str(body.get('outTrackId'))[:100]!r} "
                                           "without user or action")
            return jsonify(CARD_ANSWER)
        _accept(runtime, event)
        return jsonify(CARD_ANSWER)

    if settings.event_token and settings.event_aes_key:
        bp.add_url_rule("/dingtalk/events", view_func=_events_view(runtime), methods=["POST"])
    return bp


def _events_view(runtime: Runtime) -> Callable[[], Response]:
    """POST /dingtalk/events: the HTTP event subscription (docs/dingtalk.md §3). Signature over
    token, timestamp, nonce and the encrypt text; the owner key is the AppKey. Refusals: missing
    parameters or an unreadable body 400, bad signature / stale timestamp / another app 403. Every
    accepted push, check_url and types Banli ignores included, is answered with the encrypted
    "success" (anything else makes DingTalk retry, then stop pushing)."""
    settings = runtime.settings.dingtalk
    crypto = EventCrypto(settings.event_token, settings.event_aes_key, settings.app_key)

    @logged("dingtalk", log)
    def receive_event() -> Response:
        args = request.args
        sig = args.get("msg_signature") or args.get("signature") or ""
        ts, nonce = args.get("timestamp") or args.get("timeStamp") or "", args.get("nonce") or ""
        if not (sig and ts and nonce):
            return _refuse(400, "event without signature parameters")
        body = body_json(request.get_data(cache=False))
        encrypt = body.get("encrypt") if body else None
        if not isinstance(encrypt, str) or not encrypt:
            return _refuse(400, "event body has no encrypt field")
        if not crypto.verify(sig, ts, nonce, encrypt):
            return _refuse(403, "event with a bad signature")
        if not _event_fresh(ts):
            return _refuse(403, f"event timestamp {ts[:20]!r} outside ±1h (replay?)")
        try:
            data = read_payload(crypto.decrypt(encrypt))
        except OwnerKeyMismatch:
            return _refuse(403, "event for another app (owner key)")
        except BadCiphertext as exc:
            return _refuse(400, f"event unreadable after decryption ({exc})")
        if data is None:
            return _refuse(400, "event payload is not a JSON object")
        event_type = str(data.get("EventType") or "")
        event = parse_event(event_type, "", data)
        if event is None:
            note(outcome="ignored", reason=f"event {event_type[:40]!r}")
        else:
            _accept(runtime, event)
        return jsonify(crypto.reply("success"))

    return receive_event


def _event_fresh(ts: str) -> bool:
    """Within an hour of now; DingTalk sends milliseconds (older pushes seconds)."""
    if not ts.isdigit():
        return False
    seconds = int(ts) / 1000 if len(ts) >= 13 else int(ts)
    return abs(time.time() - seconds) <= verify.MAX_SKEW_MS / 1000


def _accept(runtime: Runtime, event: InboundEvent) -> None:
    note(event_id=event.event_id)
    note(outcome="accepted" if pipeline.accept(runtime, event) else "duplicate")


def _check_signed(what: str, ts: str, sign: str, secret: str,
                  signature_ok: Callable[[str, str, str], bool]) -> Response | None:
    """The refusal for a missing (401), wrong or stale (403) signature; None when it holds."""
    if not (ts and sign):
        return _refuse(401, f"{what} without its signature headers")
    if not signature_ok(ts, sign, secret):
        return _refuse(403, f"{what} with a bad signature")
    if not verify.fresh(ts, _now_ms()):
        return _refuse(403, f"{what} timestamp {ts[:20]!r} outside ±1h (replay?)")
    return None


def _now_ms() -> int:
    return int(time.time() * 1000)


def _refuse(status: int, reason: str) -> Response:
    return refuse(status, reason)  # the callback's one line (bot/callback_log.py) says why
