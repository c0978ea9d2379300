"""POST /dingtalk/callback (HTTP-mode robot messages) and POST /dingtalk/card (card button callbacks).

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

    return bp


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
