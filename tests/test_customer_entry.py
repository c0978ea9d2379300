"""新客户 from chat, through the WeCom and DingTalk routes: the confirmation card, duplicate warnings
by fuzzy name and by phone (a non-owner sees only the existing name and owner), one tap creates one
customer, bad input changes nothing, and every creation is audited."""

from __future__ import annotations

import itertools
import json
import re
import time
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import text

from conftest import settle, wait_for
from storage.db import session_scope
from storage.models import Contact, Customer, Employee, Identity
from handlers.customer_entry import parse
from workflows.customer_entry import NewContact, normalize_phone
from workflows.matching import refresh_forms

USERS = {("wecom", "rep"): "zhangsan", ("dingtalk", "rep"): "0147001",
         ("wecom", "other"): "lisi", ("dingtalk", "other"): "0147003"}
PLATFORMS = ["wecom", "dingtalk"]
_clicks = itertools.count()


@pytest.fixture
def crm(stack_factory):
    stack = stack_factory()
    with session_scope(stack.runtime.engine) as session:
        boss = Employee(name="王经理")
        session.add(boss)
        session.flush()
        rep = Employee(name="张三", manager_id=boss.id)
        other = Employee(name="李四", manager_id=boss.id)
        session.add_all([rep, other])
        session.flush()
        session.add_all([Identity(platform="wecom", user_id="zhangsan", employee_id=rep.id),
                         Identity(platform="dingtalk", user_id="0147001", employee_id=rep.id),
                         Identity(platform="wecom", user_id="lisi", employee_id=other.id),
                         Identity(platform="dingtalk", user_id="0147003", employee_id=other.id),
                         Identity(platform="wecom", user_id="wangjl", employee_id=boss.id)])
        for name, short, owner, contact, phone in (
                ("腾讯科技(深圳)有限公司", "腾讯", rep, "马化腾", "138-0013-8000"),  # stored with dashes
                ("招商银行股份有限公司", "招行", rep, "", ""),
                ("北京三快在线科技有限公司", "美团", other, "王兴", "+86 139 1234 5678")):
            customer = Customer(name=name, short_names=short, tier="A", owner_id=owner.id)
            refresh_forms(customer)
            session.add(customer)
            session.flush()
            if contact:
                session.add(Contact(customer_id=customer.id, name=contact, phone=phone))
    return stack


class Chat:
    """One person talking to Banli on one platform: send words, read replies, tap buttons."""

    def __init__(self, stack, platform: str, user: str) -> None:
        self.stack, self.platform, self.user = stack, platform, user

    def send(self, words: str) -> None:
        if self.platform == "wecom":
            self.stack.post_wecom(self.stack.wecom_peer.text(self.user, words))
        else:
            self.stack.post_dingtalk(self.stack.dingtalk_peer.text(self.user, words))

    def replies(self, n: int) -> list[dict]:
        """The first n replies once there are n: {title, text, buttons: {label: tap}}."""
        raw = wait_for(lambda: len(self._raw()) >= n and self._raw())
        return [self._reply(m) for m in raw[:n]]

    def reply(self, n: int) -> dict:
        return self.replies(n)[n - 1]

    def tap(self, reply: dict, label: str, user: str | None = None) -> None:
        """Tap a button of `reply` (as `user`, default the person it was sent to)."""
        user = user or self.user
        if self.platform == "wecom":
            key, task = reply["buttons"][label], reply["task_id"]
            code = self.stack.wecom.issue_response_code(task)
            self.stack.post_wecom(self.stack.wecom_peer.card_click(user, key, task, code,
                                                                   create_time=int(time.time()) + next(_clicks)))
        else:  # a markdown link: the DingTalk client sends its words for the user
            self.stack.post_dingtalk(self.stack.dingtalk_peer.text(user, reply["buttons"][label]))

    def _raw(self) -> list[dict]:
        if self.platform == "wecom":
            return self.stack.wecom.messages_to(self.user)
        return self.stack.dingtalk.messages_to(self.user)

    def _reply(self, message: dict) -> dict:
        if self.platform == "dingtalk":
            links = re.findall(r"\[([^\]]+)\]\((dtmd://dingtalkclient/sendMessage\?[^)]+)\)", message["text"])
            return {"title": message["title"], "text": message["text"],
                    "buttons": {label: parse_qs(urlsplit(url).query)["content"][0] for label, url in links}}
        if message["msgtype"] == "text":
            content = message["text"]["content"]
            return {"title": content.split("】")[0].lstrip("【"), "text": content, "buttons": {}}
        card = message["template_card"]
        fields = " ".join(f"{f['keyname']}：{f['value']}" for f in card.get("horizontal_content_list", []))
        return {"title": card["main_title"]["title"], "text": card.get("sub_title_text", "") + " " + fields,
                "buttons": {b["text"]: b["key"] for b in card["button_list"]}, "task_id": card["task_id"]}


def chat(stack, platform: str, who: str = "rep") -> Chat:
    return Chat(stack, platform, USERS[(platform, who)])


def _customer(stack, name: str):
    with stack.runtime.engine.connect() as conn:
        return conn.execute(text("SELECT c.id, c.tier, c.status, c.industry, c.short_names, e.name, c.owned_since "
                                 "FROM customer c JOIN employee e ON e.id = c.owner_id WHERE c.name = :n"),
                            {"n": name}).all()


def _rows(stack, sql: str, **params):
    with stack.runtime.engine.connect() as conn:
        return conn.execute(text(sql), params).all()


# -- creating -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_new_customer_is_confirmed_then_created_once_and_audited(crm, platform):
    me = chat(crm, platform)
    me.send("新客户 上海华美教育科技有限公司 简称华美 B级 行业 教育 联系人 陈老师 138 0000 1111")
    card = me.reply(1)
    assert card["title"] == "新建客户 · 请确认"
    assert "上海华美教育科技有限公司" in card["text"] and "B级" in card["text"]
    assert "13800001111" in card["text"]  # the number as understood, spaces gone
    assert list(card["buttons"]) == ["确认创建", "取消"]
    assert _customer(crm, "上海华美教育科技有限公司") == []  # nothing until the tap

    me.tap(card, "确认创建")
    assert me.reply(2)["title"] == "已创建 · 华美"
    me.tap(card, "确认创建")  # tapped again (or the card forwarded back): nothing new
    assert me.reply(3)["title"] == "已创建"

    (cid, tier, status, industry, shorts, owner, owned_since), = _customer(crm, "上海华美教育科技有限公司")
    assert (tier, status, industry, shorts, owner) == ("B", "潜在", "教育", "华美", "张三")
    assert owned_since is not None
    assert _rows(crm, "SELECT name, phone FROM contact WHERE customer_id = :c", c=cid) == [("陈老师", "13800001111")]
    assert _rows(crm, "SELECT e.name, o.reason FROM ownership_change o JOIN employee e ON e.id = o.to_owner_id "
                      "WHERE o.customer_id = :c", c=cid) == [("张三", "create")]
    (actor, action, where), = _rows(crm, "SELECT e.name, a.action, a.platform FROM audit_log a "
                                          "JOIN employee e ON e.id = a.actor_id WHERE a.subject = :s",
                                     s=f"customer:{cid}")
    assert (actor, action, where) == ("张三", "customer.create", platform)


def test_a_new_customer_starts_as_a_c_tier_prospect_and_is_found_by_its_short_name(crm):
    me = chat(crm, "wecom")
    me.send("新建客户 杭州云栖科技有限公司，简称云栖")
    me.tap(me.reply(1), "确认创建")
    assert me.reply(2)["title"] == "已创建 · 云栖"
    (_, tier, status, *_), = _customer(crm, "杭州云栖科技有限公司")
    assert (tier, status) == ("C", "潜在")
    me.send("拜访 云栖 聊了需求")  # the matcher knows it straight away
    assert me.reply(3)["title"] == "已记录 · 云栖"


def test_the_issue_example_warns_because_tencent_is_already_a_customer(crm):
    me = chat(crm, "wecom")
    me.send("新客户 深圳市腾讯计算机系统有限公司 简称腾讯")
    card = me.reply(1)
    assert card["title"] == "可能已有这个客户"
    assert "腾讯科技(深圳)有限公司" in card["text"] and "简称「腾讯」相同" in card["text"]


def test_cancel_writes_nothing_and_a_later_confirm_tap_is_refused(crm):
    me = chat(crm, "wecom")
    me.send("添加客户 成都天府软件园有限公司")
    card = me.reply(1)
    me.tap(card, "取消")
    assert me.reply(2)["title"] == "已取消"
    me.tap(card, "确认创建")
    assert me.reply(3)["title"] == "已取消"
    assert _customer(crm, "成都天府软件园有限公司") == []


def test_someone_elses_tap_on_the_card_creates_nothing(crm):
    me = chat(crm, "wecom")
    me.send("新客户 成都天府软件园有限公司")
    card = me.reply(1)
    me.tap(card, "确认创建", user="lisi")  # a forwarded card tapped by another person
    other = chat(crm, "wecom", "other")
    assert other.reply(1)["title"] == "这个按钮已失效"
    assert _customer(crm, "成都天府软件园有限公司") == []


# -- duplicates ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_fuzzy_name_warns_the_owner_with_the_reason_and_a_view_button(crm, platform):
    me = chat(crm, platform)
    me.send("新客户 腾迅科技有限公司")  # a homophone typo of an existing customer
    card = me.reply(1)
    assert card["title"] == "可能已有这个客户"
    assert "腾讯科技(深圳)有限公司" in card["text"] and "张三" in card["text"] and "名称相近" in card["text"]
    (tencent,), = _rows(crm, "SELECT id FROM customer WHERE name = '腾讯科技(深圳)有限公司'")
    assert list(card["buttons"])[:2] == ["仍然创建", "取消"]
    view = card["buttons"]["查看"]
    assert view == (f"customer.show|{tencent}" if platform == "wecom" else "查看 腾讯科技(深圳)有限公司")
    if platform == "dingtalk":  # the words do what the tap does: that customer's card
        me.tap(card, "查看")
        assert me.reply(2)["title"] == "客户 · 腾讯"
    settle(0.3)
    assert crm.count("customer") == 3


@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_non_owner_sees_only_the_existing_name_and_owner_then_creates_anyway_once(crm, platform):
    me = chat(crm, platform, "other")  # 李四: neither owner nor manager of 腾讯
    me.send("新客户 深圳鹅厂贸易有限公司 联系人 小马 13800138000")  # 马化腾's number at 腾讯
    card = me.reply(1)
    assert card["title"] == "可能已有这个客户"
    assert "腾讯科技(深圳)有限公司" in card["text"] and "张三" in card["text"]
    for secret in ("马化腾", "13800138000", "138-0013-8000", "电话", "相近", "相同"):
        assert secret not in card["text"]
    assert list(card["buttons"]) == ["仍然创建", "取消"]  # no 查看 for someone else's customer

    me.tap(card, "仍然创建")
    me.tap(card, "仍然创建")  # at once: with several workers the two taps race, and one must lose
    titles = sorted(r["title"] for r in me.replies(3)[1:])
    assert titles == ["已创建", "已创建 · 深圳鹅厂贸易有限公司"]
    (_, _, _, _, _, owner, _), = _customer(crm, "深圳鹅厂贸易有限公司")
    assert owner == "李四"
    assert crm.count("audit_log", "WHERE action = 'customer.create'") == 1


def test_the_owners_manager_sees_the_reason_too(crm):
    boss = Chat(crm, "wecom", "wangjl")
    boss.send("新客户 北京美团科技有限公司")
    card = boss.reply(1)
    assert "北京三快在线科技有限公司" in card["text"] and "李四" in card["text"]
    assert "查看" in card["buttons"]


# -- bad input ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("platform", PLATFORMS)
def test_bad_input_is_answered_clearly_and_nothing_is_written(crm, platform):
    me = chat(crm, platform)
    audited = crm.count("audit_log")
    for n, (words, said) in enumerate((("新客户 腾", "2–128"),
                                       ("新客户 华为技术有限公司 D级", "等级「D级」不对"),
                                       ("新客户 华为技术有限公司 联系人 张三 12345", "电话「12345」不对"),
                                       ("新客户 华为技术有限公司 状态 已签约", "状态「已签约」不对")), 1):
        me.send(words)
        reply = me.reply(n)
        assert reply["title"] == "客户没有创建" and said in reply["text"], reply
        assert "新客户 深圳市腾讯计算机系统有限公司" in reply["text"]  # an example to copy
    settle(0.3)
    assert crm.count("customer") == 3 and crm.count("audit_log") == audited and crm.count("contact") == 2


@pytest.mark.parametrize("platform", PLATFORMS)
def test_the_command_alone_explains_itself_with_an_example(crm, platform):
    me = chat(crm, platform)
    me.send("新客户")
    reply = me.reply(1)
    assert reply["title"] == "新建客户" and "新客户 深圳市腾讯计算机系统有限公司 简称腾讯" in reply["text"]


# -- phone numbers ------------------------------------------------------------------------------------


@pytest.mark.parametrize("raw, normal", [("138 0013 8000", "13800138000"), ("+86-138-0013-8000", "13800138000"),
                                         ("0086 13800138000", "13800138000"), ("0755-86013388", "075586013388"),
                                         ("(010) 6552 9988", "01065529988"), ("400-820-1234", "4008201234"),
                                         ("13800138000.0", "13800138000"), ("12345", None), ("2800138000", None),
                                         ("138001380001", None), ("电话", None)])
def test_phone_numbers_are_normalised_or_refused(raw, normal):
    assert normalize_phone(raw) == normal


def test_dingtalk_interactive_card_buttons_create_the_customer(stack_factory):
    stack = stack_factory(card_template_id="tpl.schema")
    with session_scope(stack.runtime.engine) as session:
        rep = Employee(name="张三")
        session.add(rep)
        session.flush()
        session.add(Identity(platform="dingtalk", user_id="0147001", employee_id=rep.id))
    peer = stack.dingtalk_peer
    stack.post_dingtalk(peer.text("0147001", "新客户 杭州云栖科技有限公司 A级"))
    card = wait_for(lambda: stack.dingtalk.messages_to("0147001"))[0]
    assert card["via"] == "card" and card["card_data"]["title"] == "新建客户 · 请确认"
    confirm = next(b for b in json.loads(card["card_data"]["buttons"]) if b["text"] == "确认创建")

    stack.post_dingtalk(peer.card_click("0147001", card["out_track_id"], confirm["action"], confirm["value"]),
                        path="/dingtalk/card")
    done = wait_for(lambda: len(stack.dingtalk.messages_to("0147001")) == 2 and stack.dingtalk.messages_to("0147001"))
    assert done[1]["card_data"]["title"] == "已创建 · 杭州云栖科技有限公司"
    assert _customer(stack, "杭州云栖科技有限公司")[0][1:3] == ("A", "潜在")


@pytest.mark.parametrize("words, expected", [
    ("深圳市腾讯计算机系统有限公司 简称腾讯", dict(name="深圳市腾讯计算机系统有限公司", short_names=["腾讯"], tier="C")),
    ("深圳市腾讯计算机系统有限公司简称腾讯,鹅厂 A级 行业 互联网 地区深圳 联系人 张三 经理 138-0013-8000",
     dict(short_names=["腾讯", "鹅厂"], tier="A", industry="互联网", region="深圳",
          contacts=[NewContact("张三", "经理", "13800138000")])),
    ("腾讯科技有限公司，简称腾讯、鹅厂，b级，联系人张三13800138000",
     dict(short_names=["腾讯", "鹅厂"], tier="B", contacts=[NewContact("张三", "", "13800138000")])),
    ("城市花园物业有限公司 意向 +86 139 0013 8000", dict(name="城市花园物业有限公司", status="意向",
                                                  contacts=[NewContact("", "", "13900138000")])),
    ("华美教育 上海", dict(name="华美教育", region="上海")),
    ("上海 华美教育", dict(name="上海华美教育", region="")),
    ("IBM China 简称 IBM", dict(name="IBM China", short_names=["IBM"])),
])
def test_what_people_type_after_the_command_word(words, expected):
    parsed = parse(words)
    for key, value in expected.items():
        assert getattr(parsed, key) == value, key
