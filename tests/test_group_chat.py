"""Banli asked in a DingTalk group (conversationType "2"), through the signed callback route: what
belongs to one person — a phone, a customer card, an amount — goes to the asker one-to-one and the
group sees one line saying so; only cards marked shareable (the menu) are posted to the group, and
without a card template their tap-to-send links are dropped (they would not reach Banli in a group)."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from bot import pipeline
from cards import Card
from conftest import settle, wait_for
from handlers.events import InboundEvent
from storage.db import session_scope
from storage.models import Contact, Customer, Employee, Identity
from workflows.matching import refresh_forms

# 11:30 in Shanghai: after the 08:00 digest's catch-up window, so no digest joins the replies.
SATURDAY_1130 = datetime(2026, 11, 21, 3, 30, tzinfo=timezone.utc)
OWNER = "0147001"  # 张三 here, who owns 腾讯 (DINGTALK_USERS knows the id, so batchSend reaches it)
GROUP = "cidSales=="
PHONE = "13800138000"
NOTICE = "@张三 已私信你，请在和办理的单聊里查看。"
GROUP_HINT = "在群里请 @办理 再发指令，或打开与办理的单聊点按钮"  # bot/dingtalk/client.py


def _company(stack_factory, **options):
    started = datetime.now(timezone.utc)
    stack = stack_factory(clock=lambda: SATURDAY_1130 + (datetime.now(timezone.utc) - started), **options)
    with session_scope(stack.runtime.engine) as session:
        boss = Employee(name="王经理", synced_at=SATURDAY_1130)
        session.add(boss)
        session.flush()
        rep = Employee(name="张三", manager_id=boss.id, synced_at=SATURDAY_1130)
        session.add(rep)
        session.flush()
        session.add(Identity(platform="dingtalk", user_id=OWNER, employee_id=rep.id))
        tencent = Customer(name="腾讯科技(深圳)有限公司", short_names="腾讯", tier="A", owner_id=rep.id)
        refresh_forms(tencent)
        session.add(tencent)
        session.flush()
        session.add(Contact(customer_id=tencent.id, name="马总", title="采购总监", phone=PHONE))
        stack.tencent_id = tencent.id
    return stack


@pytest.fixture
def company(stack_factory):
    return _company(stack_factory)


@pytest.fixture
def card_company(stack_factory):
    return _company(stack_factory, card_template_id="tpl.schema")


def _in_group(stack, words, **options):
    response = stack.post_dingtalk(stack.dingtalk_peer.text(OWNER, words, conversation_type="2",
                                                            conversation_id=GROUP, **options))
    assert response.status_code == 200


def _answered_privately(stack):
    """(the one line the group got, what the asker got one-to-one), once both have come."""
    wait_for(lambda: stack.dingtalk.messages_to(GROUP))
    settle(0.6)  # and nothing more comes to the group
    line = _only_the_notice(stack.dingtalk.messages_to(GROUP))
    wait_for(lambda: stack.dingtalk.messages_to(OWNER))
    settle(0.3)
    return line, stack.dingtalk.messages_to(OWNER)


def _only_the_notice(group):
    assert len(group) == 1, group
    line = group[0]
    assert line["title"] == NOTICE and line["text"] == f"### {NOTICE}", line
    assert not any(ch.isdigit() for ch in line["text"])
    return line


def test_a_phone_asked_for_in_a_group_goes_to_the_owner_alone(company):
    _in_group(company, f"#customer.phone {company.tencent_id}")

    _, private = _answered_privately(company)
    assert [m["via"] for m in private] == ["batchSend"]  # never the group's sessionWebhook
    assert private[0]["title"] == "电话 · 腾讯" and PHONE in private[0]["text"]
    assert company.dingtalk.refused == []


def test_a_customer_name_in_a_group_sends_the_card_privately(company):
    _in_group(company, "腾讯", with_webhook=False)

    line, private = _answered_privately(company)
    assert line["via"] == "groupSend" and "腾讯" not in line["text"]
    assert [m["title"] for m in private] == ["客户 · 腾讯"]
    assert "马总 138＊＊＊＊8000" in private[0]["text"] and "dtmd://" in private[0]["text"]  # its buttons work there


def test_an_expense_in_a_group_is_confirmed_privately(company):
    _in_group(company, "报销 出租车 86.5")

    line, private = _answered_privately(company)
    assert "86" not in line["text"] and "出租车" not in line["text"]
    assert private[0]["title"] == "报销 · 请确认" and "¥86.50" in private[0]["text"]


def test_help_in_a_group_shows_the_menu_there_without_markdown_buttons(company):
    _in_group(company, "帮助")

    menu = wait_for(lambda: company.dingtalk.messages_to(GROUP))[0]
    assert menu["title"] == "办理 · 主菜单"
    assert "dtmd://" not in menu["text"]  # a tap in a group sends words without the @: lost
    assert GROUP_HINT in menu["text"]
    settle(0.6)
    assert company.dingtalk.messages_to(OWNER) == [] and len(company.dingtalk.messages_to(GROUP)) == 1


def test_with_a_card_template_the_menu_is_a_group_card_and_a_customer_still_goes_privately(card_company):
    _in_group(card_company, "帮助")
    menu = wait_for(lambda: card_company.dingtalk.messages_to(GROUP))[0]
    assert menu["via"] == "card" and menu["space"] == "IM_GROUP" and menu["card_data"]["title"] == "办理 · 主菜单"
    assert GROUP_HINT not in menu["card_data"]["footer"]  # its buttons come back over /dingtalk/card

    _in_group(card_company, "腾讯")
    wait_for(lambda: len(card_company.dingtalk.messages_to(GROUP)) >= 2 and card_company.dingtalk.messages_to(OWNER))
    settle(0.6)
    group, private = card_company.dingtalk.messages_to(GROUP), card_company.dingtalk.messages_to(OWNER)
    _only_the_notice(group[1:])
    assert [(m["via"], m["space"], m["card_data"]["title"]) for m in private] == [("card", "IM_ROBOT", "客户 · 腾讯")]

    # A tap on the group's card comes over /dingtalk/card and is answered to the one who tapped.
    button = next(b for b in json.loads(menu["card_data"]["buttons"]) if b["text"] == "我的审批")
    card_company.post_dingtalk(card_company.dingtalk_peer.card_click(OWNER, menu["out_track_id"], button["action"]),
                               path="/dingtalk/card")
    wait_for(lambda: len(card_company.dingtalk.messages_to(OWNER)) >= 2)
    settle(0.3)
    assert len(card_company.dingtalk.messages_to(GROUP)) == 2


def test_a_retried_group_reply_writes_its_two_rows_once(company):
    event = InboundEvent(platform="dingtalk", event_id="msgRetry1==", kind="text", sender=OWNER, text="腾讯",
                         conversation=GROUP, reply={"session_webhook": "https://example.invalid/x"})
    card = Card(title="客户 · 腾讯", body="详细")
    company.stop_workers()
    for _ in range(2):
        with session_scope(company.runtime.engine) as session:
            assert pipeline.reply(session, event, card, asker="张三") == pipeline.reply_key(event)

    rows = company.count("outbox", "WHERE kind = 'message'")
    private = company.count("outbox", f"WHERE kind = 'message' AND conversation = '' AND recipient = '{OWNER}' "
                                      "AND payload NOT LIKE '%session_webhook%'")
    assert (rows, private) == (2, 1)
