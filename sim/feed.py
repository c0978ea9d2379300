"""Each (platform, person)'s conversation: what the simulator user did, plus what Banli actually
delivered to the stand-in APIs — read off their public `.sent` / `.updates` / `.cards` records, so the
screen shows nothing Banli did not send.

Bot messages are collected lazily (on every read and before every user action is logged), which
keeps the order right: a reply is always collected after the message that caused it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from sim.clock import SimClock
from sim.platforms import Platforms

MAX_ENTRIES = 5000  # a demo runs for hours at most; beyond this the oldest entries go


@dataclass
class Entry:
    seq: int
    platform: str
    user: str
    who: str  # me | bot | note
    kind: str  # text | image | location | wecom_card | markdown | dt_card | note
    time: str  # simulated business time, HH:MM
    data: dict[str, Any] = field(default_factory=dict)


class Feed:
    def __init__(self, platforms: Platforms, clock: SimClock) -> None:
        self.p = platforms
        self.clock = clock
        self._lock = threading.RLock()
        self._entries: list[Entry] = []
        self._seq = 0
        self.version = 0  # bumps on any change anywhere: the page re-renders when it moves
        self._cursor = {"wecom_sent": 0, "wecom_updates": 0, "dingtalk_sent": 0, "dingtalk_updates": 0}
        self._wecom_cards: dict[str, dict[str, Any]] = {}  # task_id -> current template_card
        self._wecom_personal: dict[tuple[str, str], dict[str, Any]] = {}  # (task_id, user) -> card
        self._updated: set[str] = set()  # card ids changed since delivery
        self._seen: dict[tuple[str, str], int] = {}

    # -- writing --------------------------------------------------------------------------------------
    def add(self, platform: str, user: str, who: str, kind: str, **data: Any) -> Entry:
        with self._lock:
            self.sync()
            return self._append(platform, user, who, kind, data)

    def note(self, platform: str, user: str, text: str) -> Entry:
        return self.add(platform, user, "note", "note", text=text)

    def _append(self, platform: str, user: str, who: str, kind: str, data: dict[str, Any]) -> Entry:
        self._seq += 1
        self.version += 1
        entry = Entry(self._seq, platform, user, who, kind, self.clock.local().strftime("%H:%M"), data)
        self._entries.append(entry)
        del self._entries[:-MAX_ENTRIES]
        return entry

    # -- collecting what Banli sent -------------------------------------------------------------------
    def sync(self) -> None:
        with self._lock:
            for body in self._new("wecom_sent", self.p.wecom.sent, self.p.wecom.lock):
                self._wecom_message(body)
            for body in self._new("wecom_updates", self.p.wecom.updates, self.p.wecom.lock):
                self._wecom_update(body)
            for message in self._new("dingtalk_sent", self.p.dingtalk.sent, self.p.dingtalk.lock):
                self._dingtalk_message(message)
            for update in self._new("dingtalk_updates", self.p.dingtalk.card_updates, self.p.dingtalk.lock):
                self._updated.add(update["out_track_id"])
                self.version += 1

    def _new(self, cursor: str, records: list, lock) -> list:
        with lock:
            fresh = records[self._cursor[cursor]:]
            self._cursor[cursor] = len(records)
        return fresh

    def _wecom_message(self, body: dict[str, Any]) -> None:
        for user in str(body.get("touser", "")).split("|"):
            kind = body.get("msgtype")
            if kind == "template_card":
                card = body["template_card"]
                self._wecom_cards[card.get("task_id", "")] = card
                self._append("wecom", user, "bot", "wecom_card", {"card_id": card.get("task_id", "")})
            elif kind == "markdown":
                self._append("wecom", user, "bot", "markdown", {"text": body["markdown"].get("content", "")})
            elif kind == "text":
                self._append("wecom", user, "bot", "text", {"text": body["text"].get("content", "")})
            elif kind == "image":  # its bytes: the stand-in's upload (sim/actions.media_file)
                self._append("wecom", user, "bot", "image", {"media_id": body["image"].get("media_id", "")})
            else:
                self._append("wecom", user, "bot", "note", {"text": f"（一条 {kind} 消息，模拟器不显示）"})

    def _wecom_update(self, body: dict[str, Any]) -> None:
        """update_template_card: the response code names the card (the body's task_id is a fallback)."""
        card = body.get("template_card") or {}
        task = self.p.wecom.issued_codes.get(body.get("response_code", "")) or card.get("task_id", "")
        if body.get("atall"):
            self._wecom_cards[task] = card
        else:
            for user in body.get("userids") or []:
                self._wecom_personal[(task, user)] = card
        self._updated.add(task)
        self.version += 1

    def _dingtalk_message(self, message: dict[str, Any]) -> None:
        user = message.get("to", "")
        if message.get("via") == "card":
            self._append("dingtalk", user, "bot", "dt_card", {"card_id": message.get("out_track_id", "")})
        elif message.get("msg_key") == "sampleImageMsg":
            self._append("dingtalk", user, "bot", "image", {"media_id": message.get("photo_url", "")})
        elif message.get("msg_key") in ("sampleMarkdown", "markdown"):
            self._append("dingtalk", user, "bot", "markdown", {"title": message.get("title", ""),
                                                               "text": message.get("text", "")})
        else:
            self._append("dingtalk", user, "bot", "text", {"text": message.get("text", "")})

    # -- reading --------------------------------------------------------------------------------------
    def conversation(self, platform: str, user: str, *, limit: int = 200) -> list[dict[str, Any]]:
        """The conversation as the page shows it, cards in their current state; marks it read."""
        with self._lock:
            self.sync()
            mine = [e for e in self._entries if e.platform == platform and e.user == user][-limit:]
            self._seen[(platform, user)] = self._seq
            return [self._view(e) for e in mine]

    def unread(self, platform: str) -> dict[str, int]:
        """Bot messages per user on `platform` that arrived since that conversation was last shown."""
        with self._lock:
            counts: dict[str, int] = {}
            for e in self._entries:
                if e.platform == platform and e.who == "bot" and e.seq > self._seen.get((platform, e.user), 0):
                    counts[e.user] = counts.get(e.user, 0) + 1
            return counts

    def _view(self, e: Entry) -> dict[str, Any]:
        view = {"seq": e.seq, "who": e.who, "kind": e.kind, "time": e.time, **e.data}
        if e.kind == "wecom_card":
            card_id = e.data["card_id"]
            view["card"] = self._wecom_personal.get((card_id, e.user)) or self._wecom_cards.get(card_id, {})
            view["updated"] = card_id in self._updated
        elif e.kind == "dt_card":
            card_id = e.data["card_id"]
            with self.p.dingtalk.lock:
                view["card"] = dict((self.p.dingtalk.cards.get(card_id) or {}).get("card_data") or {})
            view["updated"] = card_id in self._updated
        return view
