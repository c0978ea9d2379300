"""GET/POST /wecom/callback: URL verification and encrypted message/event callbacks.

verify → decrypt → parse → pipeline → empty 200 (replies go out through the outbox and the API).
Refusals: missing parameters or an unreadable body 400, bad signature / stale timestamp / another
corp 403, oversize 413 (Flask's MAX_CONTENT_LENGTH). A type Banli ignores gets 200 and nothing else.
"""

from __future__ import annotations

import logging
import time

from flask import Blueprint, Response, request

from bot import pipeline
from bot.callback_log import logged, note, refuse
from bot.runtime import Runtime
from bot.wecom.crypto import BadCiphertext, CallbackCrypto, CorpIdMismatch
from bot.wecom.parse import extract_encrypt, parse_xml, to_event

log = logging.getLogger("banli.wecom")


def make_blueprint(runtime: Runtime) -> Blueprint:
    settings = runtime.settings.wecom
    crypto = CallbackCrypto(settings.token, settings.aes_key, settings.corp_id)
    max_age = runtime.settings.callback_max_age_seconds
    bp = Blueprint("wecom", __name__)

    @bp.get("/wecom/callback")
    @logged("wecom", log)
    def verify_url() -> Response:
        # Side-effect free, so no replay window: WeCom's published test vector is from 2014.
        sig, ts, nonce, echostr = (request.args.get(k, "") for k in
                                   ("msg_signature", "timestamp", "nonce", "echostr"))
        if not (sig and ts and nonce and echostr):
            return _refuse(400, "url verification without its parameters")
        if not crypto.verify(sig, ts, nonce, echostr):
            return _refuse(403, "url verification with a bad signature")
        try:
            plain = crypto.decrypt(echostr)
        except CorpIdMismatch:
            return _refuse(403, "url verification for another corp id")
        except BadCiphertext as exc:
            return _refuse(400, f"url verification echostr unreadable ({exc})")
        note(outcome="verified")
        return Response(plain, mimetype="text/plain")

    @bp.post("/wecom/callback")
    @logged("wecom", log)
    def receive() -> Response:
        args = request.args  # one context-local lookup, not one per parameter
        sig, ts, nonce = args.get("msg_signature", ""), args.get("timestamp", ""), args.get("nonce", "")
        if not (sig and ts and nonce):
            return _refuse(400, "callback without signature parameters")
        encrypt = extract_encrypt(request.get_data(cache=False))
        if encrypt is None:
            return _refuse(400, "callback body has no Encrypt element")
        if not crypto.verify(sig, ts, nonce, encrypt):
            return _refuse(403, "callback with a bad signature")
        if not ts.isdigit() or abs(time.time() - int(ts)) > max_age:
            return _refuse(403, f"callback timestamp {ts[:20]!r} outside ±{max_age}s (replay?)")
        try:
            msg = parse_xml(crypto.decrypt(encrypt))
        except CorpIdMismatch:
            return _refuse(403, "callback for another corp id")
        except (BadCiphertext, ValueError) as exc:
            return _refuse(400, f"callback unreadable after decryption ({exc.__class__.__name__})")
        event = to_event(msg)
        if event is None:
            note(outcome="ignored", reason=f"{str(msg.get('MsgType'))[:20]}/{str(msg.get('Event', '-'))[:40]} "
                                           f"from {str(msg.get('FromUserName', '?'))[:64]}")
            return Response("", status=200)
        note(event_id=event.event_id)
        note(outcome="accepted" if pipeline.accept(runtime, event) else "duplicate")
        return Response("", status=200)

    return bp


def _refuse(status: int, reason: str) -> Response:
    return refuse(status, reason)  # the callback's one line (bot/callback_log.py) says why
