"""Flask app factory: one blueprint per configured platform, plus a health check."""

from __future__ import annotations

import logging

from flask import Flask, jsonify
from sqlalchemy.exc import OperationalError

from banli.settings import Settings
from banli.wiring import wire
from bot.runtime import Runtime

# Real callbacks are a few KB; anything near this is garbage or an attack (answered 413).
MAX_BODY_BYTES = 256 * 1024

log = logging.getLogger("banli")


def create_app(settings: Settings | None = None, runtime: Runtime | None = None) -> Flask:
    """The web app. Pass `settings` (or a ready `runtime`); by default both come from the environment."""
    runtime = wire(runtime or Runtime(settings or Settings.from_env()))
    app = Flask("banli")
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.extensions["banli"] = runtime

    if runtime.settings.wecom:
        from bot.wecom.routes import make_blueprint

        app.register_blueprint(make_blueprint(runtime))
    if runtime.settings.dingtalk:
        from bot.dingtalk.routes import make_blueprint as make_dingtalk

        app.register_blueprint(make_dingtalk(runtime))

    @app.get("/healthz")
    def health():
        return jsonify(ok=True, wecom=bool(runtime.settings.wecom), dingtalk=bool(runtime.settings.dingtalk))

    @app.errorhandler(OperationalError)
    def database_unavailable(error):
        # Nothing was recorded, so ask the platform to deliver again later rather than lose it.
        log.error("database unavailable, asked the platform to retry: %s", str(error).splitlines()[0][:200])
        return "", 503

    @app.errorhandler(413)
    def too_large(_error):
        log.warning("request refused 413: body over %d bytes", MAX_BODY_BYTES)
        return "", 413

    return app
