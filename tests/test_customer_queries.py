"""Looking customers up from the chat: a name alone → the customer card, 我的客户, 今天跟进,
本周拜访 — through the WeCom and DingTalk routes — and who sees phones and amounts."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import text

from conftest import wait_for
from storage.db import session_scope
from storage.models import Contact, Customer, Deal, Employee, FollowUp, Identity
from workflows import roles
from workflows.matching import refresh_forms

# 11:30 in Shanghai (after the 08:00 digest's catch-up window, so no digest joins the replies); week 16–22 Nov
SATURDAY_1130 = datetime(2026, 11, 21, 3, 30, tzinfo=timezone.utc)
SHANGHAI = timezone(timedelta(hours=8))


@pytest.fixture
def crm(stack_factory):
    started = datetime.now(timezone.utc)
    stack = stack_factory(clock=lambda: SATURDAY_1130 + (datetime.now(timezone.utc) - started))
    with session_scope(stack.runtime.engine) as session:
        boss = Employee(name="王经理", synced_at=SATURDAY_1130)
        admin = Employee(name="管理员", synced_at=SATURDAY_1130)
        session.add_all([boss, admin])
        session.flush()
        roles.grant(session, admin, "admin")
        rep = Employee(name="张三", manager_id=boss.id, synced_at=SATURDAY_1130)
        other = Employee(name="李四", synced_at=SATURDAY_1130)  # another team
        session.add_all([rep, other])
        session.flush()
        session.add_all([Identity(platform="wecom", user_id="zhangsan", employee_id=rep.id),
                         Identity(platform="dingtalk", user_id="0147001", employee_id=rep.id),
                         Identity(platform="wecom", user_id="lisi", employee_id=other.id),
                         Identity(platform="dingtalk", user_id="0147009", employee_id=other.id),
                         Identity(platform="wecom", user_id="wangjl", employee_id=boss.id),
                         Identity(platform="wecom", user_id="admin", employee_id=admin.id)])
        tencent = _customer(session, "腾讯科技(深圳)有限公司", "腾讯", "A", rep, status="意向",
                            next_at=datetime(2026, 11, 21, 15, 0, tzinfo=SHANGHAI))
        _customer(session, "招商银行股份有限公司", "招行", "B", rep,
                  next_at=datetime(2026, 11, 18, 10, 0, tzinfo=SHANGHAI))
        _customer(session, "北京字节跳动科技有限公司", "字节", "C", rep,
                  next_at=datetime(2026, 11, 30, 10, 0, tzinfo=SHANGHAI))
        _customer(session, "北京三快在线科技有限公司", "美团", "A", other)
        session.add_all([Contact(customer_id=tencent.id, name="马总", title="采购总监", phone="13800138000"),
                         Contact(customer_id=tencent.id, name="小刘", title="助理", phone="0755-86013388"),
                         Deal(customer_id=tencent.id, owner_id=rep.id, title="腾讯 云服务", amount=Decimal("500000"),
                              stage="方案报价")])
        for day, method, content in ((16, "拜访", "第一次见面"), (19, "电话", "约了演示"), (20, "拜访", "聊了报价"),
                                     (14, "微信", "上周的事")):
            session.add(FollowUp(customer_id=tencent.id, employee_id=rep.id, method=method, content=content,
                                 happened_at=datetime(2026, 11, day, 11, 0, tzinfo=SHANGHAI)))
    return stack


def _customer(session, name, short, tier, owner, status="潜在", next_at=None):
    customer = Customer(name=name, short_names=short, tier=tier, owner_id=owner.id, status=status,
                        next_followup_at=next_at)
    refresh_forms(customer)
    session.add(customer)
    session.flush()
    return customer


def _last_card(stack, user, n=1):
    messages = wait_for(lambda: len(stack.wecom.messages_to(user)) >= n and stack.wecom.messages_to(user))
    message = messages[n - 1]
    assert message["msgtype"] == "template_card", message
    return message["template_card"]


def _fields(card) -> dict[str, str]:
    return {f["keyname"]: f["value"] for f in card.get("horizontal_content_list", [])}


def _buttons(card) -> dict[str, str]:
    return {b["text"]: b["key"] for b in card.get("button_list", [])}


def _tap(stack, user, card, label, n):
    code = stack.wecom.issue_response_code(card["task_id"])
    stack.post_wecom(stack.wecom_peer.card_click(user, _buttons(card)[label], card["task_id"], code,
                                                 create_time=1_800_000_000 + n))


def _audit(stack, action):
    with stack.runtime.engine.connect() as conn:
        return conn.execute(text("SELECT actor_id, platform, subject, detail FROM audit_log WHERE action = :a"),
                            {"a": action}).all()


def test_the_owner_types_a_name_and_gets_the_whole_customer_card(crm):
    crm.post_wecom(crm.wecom_peer.text("zhangsan", "腾迅"))  # a homophone typo still finds it
    card = _last_card(crm, "zhangsan")
    assert card["main_title"]["title"] == "客户 · 腾讯"
    fields = _fields(card)
    assert fields["全称"] == "腾讯科技(深圳)有限公司" and fields["负责人"] == "张三"
    assert fields["等级"] == "A级 · 意向"
    assert fields["下次跟进"] == "11月21日(周六) 15:00"
    assert fields["商机"] == "方案报价 · 50万"
    assert fields["联系人"] == "马总 138****8000"  # masked on the card
    history = card["sub_title_text"]
    assert history.index("11-20 拜访：聊了报价") < history.index("11-19 电话") < history.index("11-16 拜访")
    assert "上周的事" not in history  # the last three only
    assert list(_buttons(card)) == ["记拜访", "推进商机", "查看电话"]


def test_someone_from_another_team_sees_only_name_tier_and_owner(crm):
    crm.post_wecom(crm.wecom_peer.text("lisi", "腾讯"))
    card = _last_card(crm, "lisi")
    assert _fields(card) == {"全称": "腾讯科技(深圳)有限公司", "等级": "A级", "负责人": "张三"}
    shown = json.dumps(card, ensure_ascii=False)
    for secret in ("138", "50万", "聊了报价", "马总"):
        assert secret not in shown
    assert "查看电话" not in _buttons(card)


def test_the_same_from_dingtalk(crm):
    crm.post_dingtalk(crm.dingtalk_peer.text("0147009", "腾讯"))
    crm.post_dingtalk(crm.dingtalk_peer.text("0147001", "腾讯"))
    other = wait_for(lambda: crm.dingtalk.messages_to("0147009"))[0]
    owner = wait_for(lambda: crm.dingtalk.messages_to("0147001"))[0]
    assert other["title"] == owner["title"] == "客户 · 腾讯"
    assert "**负责人**：张三" in other["text"] and "50万" not in other["text"] and "138" not in other["text"]
    assert "**商机**：方案报价 · 50万" in owner["text"] and "138＊＊＊＊8000" in owner["text"]  # * is markup there


@pytest.mark.parametrize("viewer", ["wangjl", "admin"])
def test_the_owners_manager_and_an_admin_see_everything(crm, viewer):
    crm.post_wecom(crm.wecom_peer.text(viewer, "腾讯"))
    assert _fields(_last_card(crm, viewer))["商机"] == "方案报价 · 50万"


def test_a_phone_number_is_shown_on_request_and_every_showing_is_audited(crm):
    crm.post_wecom(crm.wecom_peer.text("zhangsan", "腾讯"))
    card = _last_card(crm, "zhangsan")
    _tap(crm, "zhangsan", card, "查看电话", 1)
    phones = wait_for(lambda: len(crm.wecom.messages_to("zhangsan")) >= 2 and crm.wecom.messages_to("zhangsan"))[1]
    said = phones["text"]["content"]  # a card without buttons goes as plain text
    assert said.startswith("【电话 · 腾讯】")
    assert "马总 采购总监：13800138000" in said and "小刘 助理：0755-86013388" in said
    (actor, platform, subject, _), = _audit(crm, "customer.view_phone")
    assert platform == "wecom" and subject.startswith("customer:")


def test_a_forged_phone_request_from_a_stranger_is_refused_and_shows_nothing(crm):
    with crm.runtime.engine.connect() as conn:
        customer_id = conn.execute(text("SELECT id FROM customer WHERE name LIKE '腾讯%'")).scalar()
    crm.post_wecom(crm.wecom_peer.text("lisi", f"#customer.phone {customer_id}"))
    answer = wait_for(lambda: crm.wecom.messages_to("lisi"))[0]
    assert "看不了电话" in json.dumps(answer, ensure_ascii=False)
    assert "13800138000" not in json.dumps(answer, ensure_ascii=False)
    assert _audit(crm, "customer.view_phone") == []


def test_my_customers_lists_what_needs_attention_first(crm):
    crm.post_wecom(crm.wecom_peer.text("zhangsan", "我的客户"))
    card = _last_card(crm, "zhangsan")
    assert card["main_title"]["title"] == "我的客户 · 3 家"
    lines = card["sub_title_text"].splitlines()
    assert lines == ["· 招行（B）· 逾期3天", "· 腾讯（A）· 11月21日(周六)", "· 字节（C）· 11月30日(周一)"]
    assert _fields(card) == {"A级": "1 家", "B级": "1 家", "C级": "1 家"}
    assert list(_buttons(card))[:3] == ["招行", "腾讯", "字节"]
    _tap(crm, "zhangsan", card, "字节", 1)
    assert _last_card(crm, "zhangsan", 2)["main_title"]["title"] == "客户 · 字节"


def _more_customers(crm, count):
    """`count` more customers for 张三, with long 简称 so a page fills up."""
    with session_scope(crm.runtime.engine) as session:
        rep = session.execute(text("SELECT id FROM employee WHERE name = '张三'")).scalar_one()
        for i in range(count):
            _customer(session, f"深圳市第{i:02d}号精密制造有限公司", f"第{i:02d}号精密制造有限", "B",
                      session.get(Employee, rep))


def test_a_long_customer_list_pages_with_more_instead_of_cutting(crm):
    _more_customers(crm, 30)
    crm.post_wecom(crm.wecom_peer.text("zhangsan", "我的客户"))
    seen, n = [], 1
    while True:
        card = _last_card(crm, "zhangsan", n)
        assert card["main_title"]["title"] == "我的客户 · 33 家"
        page = card["sub_title_text"].splitlines()
        assert page and all(line.startswith("· ") and not line.endswith("…") for line in page), page
        seen += [line[2:].split("（")[0] for line in page]
        if "更多" not in _buttons(card):
            assert "帮助" in _buttons(card)
            break
        n += 1
        _tap(crm, "zhangsan", card, "更多", n)
    assert len(seen) == 33 and len(set(seen)) == 33 and n > 2


def test_today_lists_due_and_overdue(crm):
    crm.post_dingtalk(crm.dingtalk_peer.text("0147001", "今天跟进"))
    message = wait_for(lambda: crm.dingtalk.messages_to("0147001"))[0]
    assert message["title"] == "今天跟进 · 11月21日(周六)"
    body = message["text"]
    assert "腾讯 15:00" in body and "招行 已逾期3天" in body and "字节" not in body


def test_this_weeks_visits_are_the_reps_own_from_monday(crm):
    crm.post_wecom(crm.wecom_peer.text("zhangsan", "本周拜访"))
    card = _last_card(crm, "zhangsan")
    assert card["main_title"]["title"] == "本周跟进 · 11/16–11/22"
    lines = card["sub_title_text"].splitlines()
    assert lines == ["· 11-20 拜访 腾讯：聊了报价", "· 11-19 电话 腾讯：约了演示", "· 11-16 拜访 腾讯：第一次见面"]
    assert _fields(card) == {"拜访": "2 次", "电话": "1 次", "客户": "1 家"}
    crm.post_wecom(crm.wecom_peer.text("lisi", "本周拜访"))
    assert "还没有记录" in _last_card(crm, "lisi")["sub_title_text"]


@pytest.mark.parametrize("said,answer", [("谢谢", "不客气"), ("好的", "好的"), ("收到", "好的"), ("在吗", "在的"),
                                         ("ok", "好的")])
def test_everyday_words_are_not_taken_for_customers(crm, said, answer):
    """Small talk gets a short kind line and the menu — not a customer card, not 「没听明白」."""
    crm.post_wecom(crm.wecom_peer.text("zhangsan", said))
    card = _last_card(crm, "zhangsan")
    assert card["main_title"]["title"] == "办理" and card["sub_title_text"].startswith(answer)


def test_an_unsure_name_offers_the_candidates(crm):
    crm.post_wecom(crm.wecom_peer.text("zhangsan", "北京科技"))
    card = _last_card(crm, "zhangsan")
    assert card["main_title"]["title"] in ("您要找哪家客户？", "没听明白")
    if card["main_title"]["title"] == "您要找哪家客户？":
        assert all(k.startswith("customer.show|") for k in _buttons(card).values())


def test_log_a_visit_from_the_customer_card_asks_only_what_is_missing(crm):
    crm.post_wecom(crm.wecom_peer.text("zhangsan", "腾讯"))
    card = _last_card(crm, "zhangsan")
    _tap(crm, "zhangsan", card, "记拜访", 1)
    asked = wait_for(lambda: len(crm.wecom.messages_to("zhangsan")) >= 2 and crm.wecom.messages_to("zhangsan"))[1]
    assert "聊了什么" in json.dumps(asked, ensure_ascii=False)  # the customer is already known


def test_every_change_to_a_follow_up_is_audited_with_its_platform(crm):
    crm.post_dingtalk(crm.dingtalk_peer.text("0147001", "电话 腾讯 约了演示 明天下午3点"))
    wait_for(lambda: crm.dingtalk.messages_to("0147001"))
    crm.post_dingtalk(crm.dingtalk_peer.text("0147001", "撤销"))
    wait_for(lambda: len(crm.dingtalk.messages_to("0147001")) >= 2)
    actions = [(a, p) for a, p in _audit_actions(crm)]
    assert ("followup.create", "dingtalk") in actions and ("followup.undo", "dingtalk") in actions


def _audit_actions(stack):
    with stack.runtime.engine.connect() as conn:
        return conn.execute(text("SELECT action, platform FROM audit_log ORDER BY id")).all()
