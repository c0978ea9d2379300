"""Flask app factory: one blueprint per configured platform, plus a health check."""

from __future__ import annotations

import logging

from flask import Flask, g, jsonify
from sqlalchemy.exc import OperationalError

from banli import logs
from banli.settings import Settings
from banli.wiring import wire
from bot.admin.routes import make_blueprint as make_console
from bot.runtime import Runtime

# Real callbacks are a few KB; anything near this is garbage or an attack (answered 413).
MAX_BODY_BYTES = 256 * 1024

log = logging.getLogger("banli")


def create_app(settings: Settings | None = None, runtime: Runtime | None = None) -> Flask:
    """The web app. Pass `settings` (or a ready `runtime`); by default both come from the environment."""
    runtime = runtime or Runtime(settings or Settings.from_env())
    # A bare `gunicorn 'bot.app:create_app()'` configures no logging of its own: without this its
    # INFO lines (one per callback) would be lost. `banli` commands configured it already.
    logs.configure_once(runtime.settings)
    runtime = wire(runtime)
    app = Flask("banli")
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.extensions["banli"] = runtime

    if runtime.settings.wecom:
        from bot.wecom.routes import make_blueprint

        app.register_blueprint(make_blueprint(runtime))
    if runtime.settings.dingtalk:
        from bot.dingtalk.routes import make_blueprint as make_dingtalk

        app.register_blueprint(make_dingtalk(runtime))

    app.register_blueprint(make_console(runtime))  # the web console (后台), on whatever platforms

    @app.get("/healthz")
    def health():
        return jsonify(ok=True, wecom=bool(runtime.settings.wecom), dingtalk=bool(runtime.settings.dingtalk))

    @app.errorhandler(OperationalError)
    def database_unavailable(error):
        # Nothing was recorded, so ask the platform to deliver again later rather than lose it.
        if not g.get("banli_callback_logged"):  # a callback's own line says it already
            log.error("database unavailable, asked the platform to retry: %s", logs.safe_error(error))
        return "", 503

    @app.errorhandler(413)
    def too_large(_error):
        if not g.get("banli_callback_logged"):
            log.warning("request refused 413: body over %d bytes", MAX_BODY_BYTES)
        return "", 413

    return app
