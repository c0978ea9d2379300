"""Baseline server for bench/ack.py: the least any WeCom callback endpoint must do.

POST /wecom/callback verifies the signature and decrypts the body with wechatpy, then answers an
empty 200 — no parsing of the inner message, no database, no Redis. Credentials come from the same
WECOM_TOKEN / WECOM_AES_KEY / WECOM_CORP_ID variables Banli reads.

    gunicorn -k gthread -w 2 --threads 4 --chdir bench 'baseline_app:create_app()'
"""

from __future__ import annotations

import os

from flask import Flask, Response, request
from wechatpy.enterprise.crypto import WeChatCrypto
from wechatpy.enterprise.exceptions import InvalidCorpIdException
from wechatpy.exceptions import InvalidSignatureException


def create_app() -> Flask:
    crypto = WeChatCrypto(os.environ["WECOM_TOKEN"], os.environ["WECOM_AES_KEY"], os.environ["WECOM_CORP_ID"])
    app = Flask("baseline")

    @app.post("/wecom/callback")
    def receive() -> Response:
        args = request.args
        try:
            crypto.decrypt_message(request.get_data(), args.get("msg_signature", ""),
                                   args.get("timestamp", ""), args.get("nonce", ""))
        except (InvalidSignatureException, InvalidCorpIdException):
            return Response("", status=403)
        return Response("", status=200)

    @app.get("/healthz")
    def health() -> Response:
        return Response("ok", mimetype="text/plain")

    return app
