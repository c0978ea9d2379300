"""A small sales team on one platform, a clock tests can move, and chat helpers that read the same
on WeCom and DingTalk. Shared by the overdue, 公海 and 规则 tests."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from storage.db import session_scope
from storage.models import Customer, Employee, Identity
from workflows import roles
from workflows.matching import refresh_forms

SHANGHAI = timezone(timedelta(hours=8))
PLATFORMS = ("wecom", "dingtalk")


def sh(day: int, hour: int, minute: int = 0) -> datetime:
    """November 2026 in Shanghai: the 20th is a Friday, the 21st Saturday, the 23rd Monday."""
    return datetime(2026, 11, day, hour, minute, tzinfo=SHANGHAI)


class Clock:
    """Simulated time that runs on from wherever a test sets it (leases and retries still expire)."""

    def __init__(self, start: datetime) -> None:
        self._lock = threading.Lock()
        self.set(start)

    def set(self, moment: datetime) -> None:
        with self._lock:
            self._state = (moment.astimezone(timezone.utc), time.monotonic())

    def __call__(self) -> datetime:
        with self._lock:
            base, ref = self._state
        return base + timedelta(seconds=time.monotonic() - ref)


@dataclass
class Chat:
    stack: object
    platform: str

    def say(self, user: str, text: str) -> None:
        if self.platform == "wecom":
            self.stack.post_wecom(self.stack.wecom_peer.text(user, text))
        else:
            self.stack.post_dingtalk(self.stack.dingtalk_peer.text(user, text))

    def messages(self, user: str) -> list[dict]:
        """What `user` received, as {title, text} whatever the platform rendered."""
        if self.platform == "dingtalk":
            return [{"title": m.get("title", ""), "text": str(m.get("text", "")), "raw": m}
                    for m in self.stack.dingtalk.messages_to(user)]
        out = []
        for m in self.stack.wecom.messages_to(user):
            if m["msgtype"] == "template_card":
                card = m["template_card"]
                fields = " ".join(f"{f['keyname']}：{f['value']}" for f in card.get("horizontal_content_list", []))
                buttons = " ".join(b["text"] for b in card.get("button_list", []))
                out.append({"title": card["main_title"]["title"],
                            "text": f"{card.get('sub_title_text', '')} {fields} {buttons}", "raw": m})
            else:
                content = m["text"]["content"]
                out.append({"title": content.split("】")[0].lstrip("【"), "text": content, "raw": m})
        return out

    def titles(self, user: str) -> list[str]:
        return [m["title"] for m in self.messages(user)]

    def tap(self, user: str, message: dict, label: str) -> None:
        """Tap the button called `label` on a received message."""
        raw = message["raw"]
        if self.platform == "wecom":
            card = raw["template_card"]
            key = next(b["key"] for b in card["button_list"] if b["text"] == label)
            code = self.stack.wecom.issue_response_code(card["task_id"])
            self.stack.post_wecom(self.stack.wecom_peer.card_click(user, key, card["task_id"], code))
        else:  # markdown: the button is a link that sends its words
            import re
            from urllib.parse import unquote

            link = re.search(r"\[" + re.escape(label) + r"\]\(dtmd://dingtalkclient/sendMessage\?content=([^)]*)\)",
                             raw["text"])
            self.say(user, unquote(link.group(1)))


def seed_team(stack, platform: str, *, at: datetime) -> dict[str, int]:
    """王经理 manages 张三 and 李四; 管理员 is the admin. Each writes from `platform` (same user ids)."""
    names = {"wangjl": "王经理", "admin01": "管理员", "zhangsan": "张三", "lisi": "李四"}
    if stack.dingtalk is not None:  # a copy: the stand-in's directory is shared by every test
        added = {u: {"name": n, "dept_id_list": [20]} for u, n in names.items()}
        stack.dingtalk.users = {**stack.dingtalk.users, **added}
    with session_scope(stack.runtime.engine) as session:
        boss = Employee(name="王经理", synced_at=at)
        admin = Employee(name="管理员", synced_at=at)
        session.add_all([boss, admin])
        session.flush()
        roles.grant(session, admin, "admin")
        rep = Employee(name="张三", manager_id=boss.id, synced_at=at)
        other = Employee(name="李四", manager_id=boss.id, synced_at=at)
        session.add_all([rep, other])
        session.flush()
        for person, user in ((boss, "wangjl"), (admin, "admin01"), (rep, "zhangsan"), (other, "lisi")):
            session.add(Identity(platform=platform, user_id=user, employee_id=person.id))
        return {"boss": boss.id, "admin": admin.id, "rep": rep.id, "other": other.id}


def add_customer(stack, name: str, short: str, *, tier: str = "A", owner_id: int | None, since: datetime,
                 industry: str = "", region: str = "", last_followup: datetime | None = None) -> int:
    with session_scope(stack.runtime.engine) as session:
        customer = Customer(name=name, short_names=short, tier=tier, owner_id=owner_id, owned_since=since,
                            created_at=since, industry=industry, region=region, last_followup_at=last_followup)
        refresh_forms(customer)
        session.add(customer)
        session.flush()
        return customer.id
