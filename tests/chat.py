"""One person chatting with Banli over a platform's HTTP route, as the guided-form and 签到 tests
need it: send a line, tap a button by its label, read what came back — the same on WeCom and DingTalk.

Also the fixture data those tests share: a sales team on a simulated clock that tests can move.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import text

from conftest import photo_bytes, startup_cron_finished, wait_for
from storage.db import session_scope
from storage.models import Customer, Employee, FollowUp, Identity
from workflows.matching import refresh_forms

SATURDAY_10AM = datetime(2026, 11, 21, 2, 0, tzinfo=timezone.utc)  # 10:00 in Shanghai
USERS = {"wecom": "zhangsan", "dingtalk": "0147001"}


class Clock:
    """Real time passing from SATURDAY_10AM, plus whatever a test skips ahead."""

    def __init__(self) -> None:
        self.started = datetime.now(timezone.utc)
        self.skipped = timedelta()

    def __call__(self) -> datetime:
        return SATURDAY_10AM + self.skipped + (datetime.now(timezone.utc) - self.started)

    def skip(self, **delta: float) -> None:
        self.skipped += timedelta(**delta)


def sales_team(stack_factory, **settings):
    """张三 (rep, on both platforms) with customers and two earlier follow-ups, 李四, their manager.
    `settings`: Settings fields to override (a language model, …)."""
    clock = Clock()
    stack = stack_factory(clock=clock, **settings)
    stack.clock = clock
    with session_scope(stack.runtime.engine) as session:
        boss = Employee(name="王经理", synced_at=SATURDAY_10AM)
        session.add(boss)
        session.flush()
        rep = Employee(name="张三", manager_id=boss.id, synced_at=SATURDAY_10AM)
        other = Employee(name="李四", manager_id=boss.id, synced_at=SATURDAY_10AM)
        session.add_all([rep, other])
        session.flush()
        session.add_all([Identity(platform="wecom", user_id="zhangsan", employee_id=rep.id),
                         Identity(platform="dingtalk", user_id="0147001", employee_id=rep.id),
                         Identity(platform="wecom", user_id="lisi", employee_id=other.id)])
        made = {}
        for name, short, owner in (("腾讯科技(深圳)有限公司", "腾讯", rep), ("招商银行股份有限公司", "招行", rep),
                                   ("北京三快在线科技有限公司", "美团", other),
                                   ("深圳市恒达物流有限公司", "恒达物流", rep), ("广州市恒达物流有限公司", "恒达", rep)):
            customer = Customer(name=name, short_names=short, tier="A", owner_id=owner.id)
            refresh_forms(customer)
            session.add(customer)
            made[short] = customer
        session.flush()
        # Earlier visits: 招行 yesterday, 腾讯 the day before — the "recent customers" buttons.
        for short, days in (("招行", 1), ("腾讯", 2)):
            session.add(FollowUp(customer_id=made[short].id, employee_id=rep.id, method="电话", content="旧记录",
                                 happened_at=SATURDAY_10AM - timedelta(days=days)))
    # At the clock's Saturday 10:00 every nightly slot is within its catch-up, so the stack runs the
    # 公海 sweep, the directory sync … at start, in its worker. Let them finish on this data before a
    # test adds its own: a sweep still running would release the test's untouched customers.
    if settings.get("start_workers", True):
        startup_cron_finished(stack)
    return stack


@dataclass
class Reply:
    title: str
    text: str  # everything shown, for `in` checks
    buttons: list[str]
    raw: dict

    def field(self, name: str) -> str:
        if "template_card" in self.raw:
            fields = self.raw["template_card"].get("horizontal_content_list", [])
            return next((f["value"] for f in fields if f["keyname"] == name), "")
        found = re.search(rf"\*\*{re.escape(name)}\*\*：([^\n]*?)(?:  \n|\n|$)", self.raw.get("text", ""))
        return found.group(1) if found else ""


class Chat:
    def __init__(self, stack, platform: str, user: str | None = None) -> None:
        self.stack, self.platform = stack, platform
        self.user = user or USERS[platform]
        self._taps = 0

    # -- what Banli sent ---------------------------------------------------------------------------
    def messages(self) -> list[dict]:
        if self.platform == "wecom":
            return self.stack.wecom.messages_to(self.user)
        return self.stack.dingtalk.messages_to(self.user)

    def replies(self) -> list[Reply]:
        return [self._reply(m) for m in self.messages()]

    def _reply(self, m: dict) -> Reply:
        if self.platform == "dingtalk":
            return Reply(m["title"], m["text"], list(_tap_words(m["text"])), m)
        if m["msgtype"] == "image":
            return Reply("图片", "", [], m)
        if m["msgtype"] == "template_card":
            card = m["template_card"]
            return Reply(card["main_title"]["title"], json.dumps(card, ensure_ascii=False),
                         [b["text"] for b in card["button_list"]], m)
        content = m["text"]["content"]
        return Reply(content.split("】")[0].lstrip("【"), content, [], m)

    # -- what the person does ----------------------------------------------------------------------
    def say(self, words: str) -> Reply:
        if self.platform == "wecom":
            return self._expect_reply(lambda: self.stack.post_wecom(self.stack.wecom_peer.text(self.user, words)))
        return self._expect_reply(lambda: self.stack.post_dingtalk(self.stack.dingtalk_peer.text(self.user, words)))

    def tap(self, reply: Reply, label: str) -> Reply:
        assert label in reply.buttons, f"no button {label!r} on {reply.title}: {reply.buttons}"
        if self.platform == "dingtalk":  # a markdown link sends its words as a message
            return self.say(_tap_words(reply.text)[label])
        card = reply.raw["template_card"]
        key = next(b["key"] for b in card["button_list"] if b["text"] == label)
        self._taps += 1
        code = self.stack.wecom.issue_response_code(card["task_id"])
        return self._expect_reply(lambda: self.stack.post_wecom(self.stack.wecom_peer.card_click(
            self.user, key, card["task_id"], code, create_time=1_800_000_000 + self._taps)))

    def photo(self, media_id: str, data: bytes | None = None) -> Reply:
        """Send a photo; the platform stand-in serves `data` (by default bytes that depend on
        `media_id` only: sending the same id again is sending the same photo)."""
        data = photo_bytes(media_id) if data is None else data
        if self.platform == "wecom":
            self.stack.wecom.add_media(data, "image/png", media_id=media_id)
        else:
            self.stack.dingtalk.add_file(data, "image/png", download_code=media_id)
        if self.platform == "wecom":
            return self._expect_reply(lambda: self.stack.post_wecom(self.stack.wecom_peer.image(self.user, media_id)))
        return self._expect_reply(lambda: self.stack.post_dingtalk(self.stack.dingtalk_peer.picture(self.user, media_id)))

    def location(self, lat: float, lng: float, label: str) -> Reply:
        assert self.platform == "wecom", "DingTalk robots receive no locations"
        return self._expect_reply(lambda: self.stack.post_wecom(
            self.stack.wecom_peer.location(self.user, lat, lng, label)))

    def _expect_reply(self, send) -> Reply:
        before = len(self.messages())
        assert send().status_code == 200
        wait_for(lambda: len(self.messages()) > before)
        # Let the exchange finish (the reply row marked sent, any retry made) before the next step:
        # a test that moves the clock on must not find a send still leased.
        wait_for(lambda: self.stack.count("outbox", "WHERE status = 'pending' AND "
                                                    "(key LIKE 'inbound:%' OR key LIKE 'reply:%')") == 0)
        return self.replies()[before]


def _tap_words(markdown: str) -> dict[str, str]:
    links = re.findall(r"\[([^\]]+)\]\((dtmd://dingtalkclient/sendMessage\?[^)]+)\)", markdown)
    return {label: parse_qs(urlsplit(url).query)["content"][0] for label, url in links}


def rows(stack, sql: str) -> list:
    with stack.runtime.engine.connect() as conn:
        return conn.execute(text(sql)).all()


def visits(stack) -> list:
    """(customer short name, method, content, next_at) of the follow-ups logged by the tests."""
    return rows(stack, "SELECT c.short_names, f.method, f.content, f.next_at FROM follow_up f "
                       "JOIN customer c ON c.id = f.customer_id WHERE f.content <> '旧记录' ORDER BY f.id")
