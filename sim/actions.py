"""What a simulator user does, turned into exactly what the platform would send: a signed (WeCom:
encrypted) HTTP POST to Banli's own webhook routes on this server. Nothing here calls Banli's code
directly, so the simulator exercises the same path a real tap does."""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass

import requests

from sim.feed import Feed
from sim.platforms import Platforms

MEDIA_KEEP = 50  # uploaded photos kept for display; older ones are dropped


@dataclass(frozen=True)
class Place:
    label: str
    lat: float
    lng: float


PLACES = {
    "nanshan": Place("广东省深圳市南山区科技园", 22.5405, 113.9345),
    "zhongguancun": Place("北京市海淀区中关村", 39.9834, 116.3164),
    "lujiazui": Place("上海市浦东新区陆家嘴", 31.2397, 121.4998),
    "tianhe": Place("广东省广州市天河区珠江新城", 23.1193, 113.3210),
    "xihu": Place("浙江省杭州市西湖区文三路", 30.2780, 120.1290),
}


class Actions:
    def __init__(self, base_url: str, platforms: Platforms, feed: Feed) -> None:
        self.base_url = base_url
        self.p = platforms
        self.feed = feed
        self.media: OrderedDict[str, tuple[bytes, str]] = OrderedDict()
        self._media_lock = threading.Lock()

    # -- messages ------------------------------------------------------------------------------------
    def text(self, platform: str, user: str, text: str) -> int:
        self.feed.add(platform, user, "me", "text", text=text)
        if platform == "wecom":
            return self._post_wecom(user, self.p.wecom_peer.text(user, text))
        return self._post_dingtalk(user, self.p.dingtalk_peer.text(user, text))

    def photo(self, platform: str, user: str, data: bytes, mimetype: str) -> int:
        media_id = self._keep(data, mimetype)
        self.feed.add(platform, user, "me", "image", media_id=media_id)
        # The stand-in serves the bytes when Banli's worker downloads them (media/get, messageFiles/download).
        if platform == "wecom":
            self.p.wecom.add_media(data, mimetype, media_id=media_id)
        else:
            self.p.dingtalk.add_file(data, mimetype, download_code=media_id)
        if platform == "wecom":
            return self._post_wecom(user, self.p.wecom_peer.image(user, media_id))
        return self._post_dingtalk(user, self.p.dingtalk_peer.picture(user, media_id))

    def location(self, user: str, place: Place) -> int:
        """WeCom only: a DingTalk robot receives no location messages (the page says so)."""
        self.feed.add("wecom", user, "me", "location", label=place.label, lat=place.lat, lng=place.lng)
        return self._post_wecom(user, self.p.wecom_peer.location(user, place.lat, place.lng, place.label))

    # -- taps ----------------------------------------------------------------------------------------
    def tap_wecom(self, user: str, task_id: str, key: str, label: str) -> int:
        """template_card_event with a fresh response code, as WeCom issues one per click."""
        self.feed.note("wecom", user, f"你点了「{label}」")
        code = self.p.wecom.issue_response_code(task_id)
        return self._post_wecom(user, self.p.wecom_peer.card_click(user, key, task_id, code))

    def tap_dingtalk_card(self, user: str, out_track_id: str, action: str, value: str, label: str) -> int:
        self.feed.note("dingtalk", user, f"你点了「{label}」")
        headers, body = self.p.dingtalk_peer.card_click(user, out_track_id, action, value)
        return self._post(user, "dingtalk", "/dingtalk/card", body, headers)

    # -- media ---------------------------------------------------------------------------------------
    def _keep(self, data: bytes, mimetype: str) -> str:
        media_id = "SIM" + secrets.token_hex(12)
        with self._media_lock:
            self.media[media_id] = (data, mimetype)
            while len(self.media) > MEDIA_KEEP:
                self.media.popitem(last=False)
        return media_id

    def media_file(self, media_id: str) -> tuple[bytes, str] | None:
        """A photo someone sent, or one Banli sent back (查看发票) — uploaded to a stand-in."""
        with self._media_lock:
            found = self.media.get(media_id)
        return found or self.p.wecom.uploads.get(media_id) or self.p.dingtalk.uploads.get(media_id)

    # -- HTTP ----------------------------------------------------------------------------------------
    def _post_wecom(self, user: str, inner_xml: str) -> int:
        query, body = self.p.wecom_peer.callback(inner_xml)
        return self._post(user, "wecom", f"/wecom/callback?{query}", body, {"Content-Type": "text/xml"})

    def _post_dingtalk(self, user: str, signed: tuple[dict[str, str], bytes]) -> int:
        headers, body = signed
        return self._post(user, "dingtalk", "/dingtalk/callback", body, headers)

    def _post(self, user: str, platform: str, path: str, body: bytes, headers: dict[str, str]) -> int:
        try:
            status = requests.post(self.base_url + path, data=body, headers=headers, timeout=10).status_code
        except requests.RequestException as exc:
            self.feed.note(platform, user, f"发送失败：连不上办理（{exc.__class__.__name__}）")
            return 0
        if status != 200:
            self.feed.note(platform, user, f"发送失败：办理回答 HTTP {status}")
        return status
