"""The simulator's pages and JSON API at /sim (an edge, like bot/: Flask lives here).

The page polls /sim/api/chat about once a second; every button on it ends in sim.actions, which
posts a signed callback to Banli's own webhook routes.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import timedelta
from typing import Any, Callable, Iterable

from flask import Blueprint, Response, abort, jsonify, make_response, render_template, request

from sim.actions import PLACES, Actions
from sim.clock import SimClock
from sim.feed import Feed

PLATFORMS = ("wecom", "dingtalk")
PHOTO_LIMIT = 8 * 1024 * 1024  # the page shrinks photos first; this is for the odd raw upload
JUMPS = {"hour": timedelta(hours=1), "day": timedelta(days=1)}


def make_blueprint(*, feed: Feed, actions: Actions, clock: SimClock, ring: Callable[[], None],
                   people: Iterable[Any], dingtalk_cards: Any) -> Blueprint:
    people_list = [asdict(p) for p in people]
    by_key = {p["key"]: p for p in people_list}
    bp = Blueprint("sim", __name__, url_prefix="/sim", template_folder="templates", static_folder="static")

    def who() -> tuple[str, str]:
        """(platform, platform user id) named by the request, or a 400."""
        data = request.get_json(silent=True) or request.form or request.args
        platform, person = data.get("platform", ""), by_key.get(data.get("person", ""))
        if platform not in PLATFORMS or person is None:
            abort(make_response(jsonify(error="请选择平台和人员"), 400))
        return platform, person["wecom_id" if platform == "wecom" else "dingtalk_id"]

    def answered(status: int) -> Response:
        return jsonify(ok=status == 200, status=status)

    @bp.get("")
    @bp.get("/")
    def page() -> str:
        return render_template("sim.html", people=people_list,
                               places=[{"key": k, "label": v.label} for k, v in PLACES.items()])

    @bp.get("/api/chat")
    def chat() -> Response:
        platform, user = who()
        known = request.args.get("version", type=int)
        feed.sync()
        answer: dict[str, Any] = {"version": feed.version, "clock": clock.describe(),
                                  "dingtalk_cards": dingtalk_cards.on}
        if known != feed.version:
            answer["messages"] = feed.conversation(platform, user)
        answer["unread"] = _unread_by_person(feed, platform, people_list)
        return jsonify(answer)

    @bp.post("/api/send")
    def send() -> Response:
        platform, user = who()
        text = str((request.get_json(silent=True) or {}).get("text", "")).strip()
        if not text:
            return jsonify(error="请输入内容"), 400
        return answered(actions.text(platform, user, text[:2000]))

    @bp.post("/api/photo")
    def photo() -> Response:
        _allow_photo_size()
        platform, user = who()
        upload = request.files.get("photo")
        if upload is None or not (upload.mimetype or "").startswith("image/"):
            return jsonify(error="请选择一张照片"), 400
        return answered(actions.photo(platform, user, upload.read(), upload.mimetype))

    @bp.post("/api/location")
    def location() -> Response:
        platform, user = who()
        place = PLACES.get((request.get_json(silent=True) or {}).get("place", ""))
        if platform != "wecom":
            return jsonify(error="钉钉机器人收不到位置消息"), 400
        if place is None:
            return jsonify(error="没有这个地点"), 400
        return answered(actions.location(user, place))

    @bp.post("/api/tap")
    def tap() -> Response:
        platform, user = who()
        data = request.get_json(silent=True) or {}
        card_id, label = str(data.get("card_id", "")), str(data.get("label", ""))[:20]
        if not card_id:
            return jsonify(error="没有卡片"), 400
        if platform == "wecom":
            return answered(actions.tap_wecom(user, card_id, str(data.get("key", "")), label))
        return answered(actions.tap_dingtalk_card(user, card_id, str(data.get("action", "")),
                                                  str(data.get("value", "")), label))

    @bp.post("/api/dingtalk-cards")
    def switch_dingtalk_cards() -> Response:
        """钉钉 messages from now on as interactive cards (on) or markdown with tap-to-send links (off)."""
        on = (request.get_json(silent=True) or {}).get("on")
        if not isinstance(on, bool):
            return jsonify(error="请选择互动卡片或 markdown"), 400
        return jsonify(dingtalk_cards=dingtalk_cards.set(on))

    @bp.post("/api/clock")
    def move_clock() -> Response:
        jump = (request.get_json(silent=True) or {}).get("jump", "")
        if jump == "morning":
            clock.jump_to_morning()
        elif jump in JUMPS:
            clock.advance(JUMPS[jump])
        else:
            return jsonify(error="未知的时间跳转"), 400
        ring()  # the dispatcher looks at the new time now rather than at its next poll
        return jsonify(clock=clock.describe())

    @bp.get("/media/<media_id>")
    def media(media_id: str) -> Response:
        found = actions.media_file(media_id)
        if found is None:
            abort(404)
        return Response(found[0], mimetype=found[1])

    return bp


def _unread_by_person(feed: Feed, platform: str, people: list[dict[str, Any]]) -> dict[str, int]:
    by_user = feed.unread(platform)
    field = "wecom_id" if platform == "wecom" else "dingtalk_id"
    return {p["key"]: by_user[p[field]] for p in people if by_user.get(p[field])}


def _allow_photo_size() -> None:
    """Banli's app refuses bodies over 256 KB (webhooks are small); a photo upload may be larger.
    Flask ≥ 3.1 lets one view raise its own limit."""
    try:
        request.max_content_length = PHOTO_LIMIT
    except AttributeError:  # Flask 3.0: the page's shrinking keeps photos small enough anyway
        pass
