"""DingTalk end to end over HTTP: signed callback → pipeline → outbox → RQ → worker → DingTalk stand-in.

Replies go by sessionWebhook while it lives, else by robot API (batchSend / groupMessages/send); with a
card template, by createAndDeliver, and card taps come back to /dingtalk/card.
"""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import text

from conftest import settle, wait_for

USER = "0147001"  # 李四, 销售二部, manager 0147002 周经理 (conftest DINGTALK_USERS)
MENU_WORDS = ["客户跟进", "报销", "请假", "我的审批", "帮助"]
EMPTY = {"msgtype": "empty"}
CARD_ANSWER = {"cardUpdateOptions": {"updateCardDataByKey": True}, "cardData": {"cardParamMap": {}}}


@pytest.fixture
def card_stack(stack_factory):
    return stack_factory(card_template_id="tpl.schema")


def replies(stack, target=USER, n=1):
    """The first `n` messages delivered to `target`, once there are that many."""
    return wait_for(lambda: len(stack.dingtalk.messages_to(target)) >= n and stack.dingtalk.messages_to(target))[:n]


def tap_words(markdown: str) -> dict[str, str]:
    """{label: what tapping sends} for every dtmd sendMessage link in a markdown text."""
    links = re.findall(r"\[([^\]]+)\]\((dtmd://dingtalkclient/sendMessage\?[^)]+)\)", markdown)
    return {label: parse_qs(urlsplit(url).query)["content"][0] for label, url in links}


# -- markdown replies (no card template) -------------------------------------------------------------

def test_help_gets_the_menu_through_the_session_webhook(stack):
    response = stack.post_dingtalk(stack.dingtalk_peer.text(USER, "帮助"))

    assert response.status_code == 200 and response.json() == EMPTY
    menu = replies(stack)[0]
    assert menu["via"] == "webhook" and menu["title"] == "办理 · 主菜单"
    assert list(tap_words(menu["text"]).values()) == MENU_WORDS
    assert list(tap_words(menu["text"])) == MENU_WORDS  # labels equal the words for the menu
    assert "  \n" in menu["text"]  # DingTalk markdown line breaks
    assert stack.dingtalk.refused == []


@pytest.mark.parametrize("webhook", ["expired", "expiring", "none"])
def test_without_a_live_webhook_the_reply_goes_by_batch_send(stack, webhook):
    options = {"expired": dict(webhook_ttl_ms=-5_000), "expiring": dict(webhook_ttl_ms=30_000),
               "none": dict(with_webhook=False)}[webhook]
    stack.post_dingtalk(stack.dingtalk_peer.text(USER, "帮助", **options))

    menu = replies(stack)[0]
    assert menu["via"] == "batchSend" and menu["msg_key"] == "sampleMarkdown"
    assert list(tap_words(menu["text"]).values()) == MENU_WORDS
    assert stack.dingtalk.refused == []  # the dying webhook was not even tried


def test_a_webhook_outside_dingtalk_is_never_posted_to(stack):
    headers, body = stack.dingtalk_peer.text(USER, "帮助")
    msg = json.loads(body)
    msg["sessionWebhook"] = "http://127.0.0.1:9/robot/sendBySession?session=evil"
    stack.post_dingtalk((headers, json.dumps(msg).encode()))

    assert replies(stack)[0]["via"] == "batchSend"


def test_group_reply_goes_to_the_group_and_a_form_to_the_asker(stack):
    peer = stack.dingtalk_peer
    stack.post_dingtalk(peer.text(USER, "帮助", conversation_type="2", conversation_id="cidSales==",
                                  with_webhook=False))
    stack.post_dingtalk(peer.text(USER, "请假", conversation_type="2", conversation_id="cidSales=="))

    both = replies(stack, "cidSales==", 2)  # two workers may answer in either order
    # The menu is for everyone; the leave form is the asker's (tests/test_group_chat.py), and the group
    # gets one line about it — "@李四 …" once the directory has been read, without the @ before.
    menu, notice = sorted(both, key=lambda m: m["via"])
    assert (menu["via"], menu["title"]) == ("groupSend", "办理 · 主菜单")
    assert notice["via"] == "webhook" and notice["title"].endswith("已私信你，请在和办理的单聊里查看。")
    assert [(m["via"], m["title"]) for m in replies(stack)] == [("batchSend", "请假")]


def test_tapping_a_markdown_button_sends_its_words_to_the_handler(stack):
    peer = stack.dingtalk_peer
    stack.post_dingtalk(peer.text(USER, "帮助"))
    words = tap_words(replies(stack)[0]["text"])

    stack.post_dingtalk(peer.text(USER, words["报销"]))  # what the DingTalk client does on a tap

    expense = replies(stack, n=2)[1]
    assert expense["title"] == "报销"
    assert "报销 出租车 86.5" in expense["text"]
    assert "报销多少钱" in expense["text"]  # the expense form's first question
    assert tap_words(expense["text"]) == {"取消": "取消"}


# -- card template --------------------------------------------------------------------------------

def test_with_a_card_template_help_creates_a_card(card_stack):
    card_stack.post_dingtalk(card_stack.dingtalk_peer.text(USER, "帮助"))

    card = replies(card_stack)[0]
    assert card["via"] == "card" and card["template"] == "tpl.schema" and card["space"] == "IM_ROBOT"
    assert card["callback_type"] == "HTTP" and card["route"] == "banli"
    data = card["card_data"]
    assert all(isinstance(v, str) for v in data.values())
    assert data["title"] == "办理 · 主菜单"
    buttons = json.loads(data["buttons"])
    assert [b["text"] for b in buttons] == MENU_WORDS
    assert buttons[1] == {"text": "报销", "action": "menu.expense", "value": ""}
    assert len(card["out_track_id"]) <= 100


@pytest.mark.parametrize("use_value_field", [False, True])
def test_a_card_tap_reaches_the_handler(card_stack, use_value_field):
    peer = card_stack.dingtalk_peer
    card_stack.post_dingtalk(peer.text(USER, "帮助"))
    menu = replies(card_stack)[0]

    response = card_stack.post_dingtalk(
        peer.card_click(USER, menu["out_track_id"], "menu.expense", use_value_field=use_value_field),
        path="/dingtalk/card")

    assert response.status_code == 200 and response.json() == CARD_ANSWER
    reply = replies(card_stack, n=2)[1]
    assert reply["via"] == "card" and reply["card_data"]["title"] == "报销"
    assert reply["out_track_id"] != menu["out_track_id"]


def test_the_same_card_callback_three_times_gives_one_reply(card_stack):
    peer = card_stack.dingtalk_peer
    card_stack.post_dingtalk(peer.text(USER, "帮助"))
    track = replies(card_stack)[0]["out_track_id"]

    click = peer.card_click(USER, track, "menu.leave")
    statuses = [card_stack.post_dingtalk(click, path="/dingtalk/card").status_code for _ in range(3)]

    assert statuses == [200, 200, 200]
    replies(card_stack, n=2)
    settle(1.0)
    assert [m["card_data"]["title"] for m in card_stack.dingtalk.messages_to(USER)] == ["办理 · 主菜单", "请假"]
    assert card_stack.count("outbox", "WHERE kind = 'inbound'") == 2


def test_a_card_without_buttons_goes_as_markdown_even_with_a_template(card_stack):
    from bot.dingtalk.client import DingTalkClient
    from bot.platform import Outgoing
    from cards import text_card

    client = card_stack.runtime.clients["dingtalk"]
    assert isinstance(client, DingTalkClient)
    sent = client.send(Outgoing(key="t:1", recipient=USER, card=text_card("已记下")))
    assert sent["via"] == "batchSend"
    assert card_stack.dingtalk.messages_to(USER)[0]["text"].endswith("已记下")


def test_update_card_replaces_the_card_data_for_everyone(card_stack):
    from cards import Card

    card_stack.post_dingtalk(card_stack.dingtalk_peer.text(USER, "帮助"))
    track = replies(card_stack)[0]["out_track_id"]

    client = card_stack.runtime.clients["dingtalk"]
    client.update_card({"out_track_id": track}, Card(title="已处理", body="周经理已同意"))

    update = card_stack.dingtalk.card_updates[-1]
    assert update["out_track_id"] == track and update["card_data"]["title"] == "已处理"
    assert update["body"]["cardUpdateOptions"] == {"updateCardDataByKey": True}
    assert card_stack.dingtalk.cards[track]["card_data"]["body"] == "周经理已同意"
    assert card_stack.dingtalk.cards[track]["card_data"]["buttons"] == "[]"


# -- message types --------------------------------------------------------------------------------

def test_voice_recognition_is_read_like_typed_text(stack):
    stack.post_dingtalk(stack.dingtalk_peer.audio(USER, "帮助"))
    stack.post_dingtalk(stack.dingtalk_peer.audio(USER, ""))
    titles = [m["title"] for m in replies(stack, n=2)]
    assert sorted(titles) == sorted(["办理 · 主菜单", "暂时听不懂语音"])


def test_picture_and_rich_text(stack):
    peer = stack.dingtalk_peer
    stack.post_dingtalk(peer.picture(USER))
    stack.post_dingtalk(peer.rich_text(USER, [{"text": "请"}, {"downloadCode": "dl1", "type": "picture"},
                                              {"text": "假"}]))
    stack.post_dingtalk(peer.rich_text(USER, [{"downloadCode": "dl2", "type": "picture"}]))
    titles = [m["title"] for m in replies(stack, n=3)]
    assert sorted(titles) == sorted(["收到图片", "请假", "收到图片"])


@pytest.mark.parametrize("msgtype", ["video", "file", "somethingNew"])
def test_other_message_types_are_200_and_ignored(stack, caplog, msgtype):
    response = stack.post_dingtalk(stack.dingtalk_peer.unknown(USER, msgtype))

    assert response.status_code == 200 and response.json() == EMPTY
    assert any("ignored" in r.getMessage() for r in caplog.records if r.name == "banli.dingtalk")
    settle(0.4)
    assert stack.count("outbox", "WHERE kind = 'inbound'") == 0
    assert stack.count("outbox", "WHERE kind <> 'cron'") == 0
    assert stack.dingtalk.sent == []


def test_a_message_without_a_staff_id_is_200_and_ignored(stack, caplog):
    response = stack.post_dingtalk(stack.dingtalk_peer.text("", "帮助"))

    assert response.status_code == 200 and response.json() == EMPTY
    assert any("ignored" in r.getMessage() for r in caplog.records if r.name == "banli.dingtalk")
    settle(0.4)
    assert stack.count("outbox", "WHERE kind = 'inbound'") == 0 and stack.dingtalk.sent == []


# -- exactly once, directory, tokens, failures ----------------------------------------------------

def test_the_same_message_three_times_is_one_delivery_and_one_reply(stack):
    request = stack.dingtalk_peer.text(USER, "帮助", msg_id="msgSameOne==")
    assert [stack.post_dingtalk(request).status_code for _ in range(3)] == [200, 200, 200]

    replies(stack)
    settle(1.0)
    assert len(stack.dingtalk.messages_to(USER)) == 1
    assert stack.count("outbox", "WHERE kind = 'inbound'") == 1
    assert stack.count("outbox", "WHERE kind = 'message'") == 1


def test_first_contact_reads_name_department_and_manager_from_topapi(stack):
    stack.post_dingtalk(stack.dingtalk_peer.text(USER, "帮助"))

    def synced():
        with stack.runtime.engine.connect() as conn:
            return conn.execute(text(
                "SELECT e.name, e.department, m.name FROM employee e JOIN identity i ON i.employee_id = e.id "
                "LEFT JOIN employee m ON m.id = e.manager_id WHERE i.platform='dingtalk' AND i.user_id=:u "
                "AND e.synced_at IS NOT NULL"), {"u": USER}).first()

    name, department, _ = wait_for(synced)
    assert (name, department) == ("李四", "销售二部")
    wait_for(lambda: stack.count("employee", "WHERE name = '周经理' AND synced_at IS NOT NULL") == 1)
    assert synced()[2] == "周经理"


def test_an_expired_token_is_refreshed_once_and_the_reply_still_arrives(stack):
    peer = stack.dingtalk_peer
    stack.post_dingtalk(peer.text(USER, "帮助", with_webhook=False))
    replies(stack)
    wait_for(lambda: stack.count("employee", "WHERE synced_at IS NOT NULL") == 2)  # directory reads done
    assert stack.dingtalk.token_fetches == 1

    stack.dingtalk.expire_tokens()
    stack.post_dingtalk(peer.text(USER, "请假", with_webhook=False))

    assert replies(stack, n=2)[1]["title"] == "请假"
    assert stack.dingtalk.token_fetches == 2


def _message_row(stack):
    with stack.runtime.engine.connect() as conn:
        return conn.execute(text("SELECT status, attempts, last_error FROM outbox WHERE kind = 'message'")).first()


def test_throttling_is_retried_later(stack):
    stack.dingtalk.fail_next.append((403, {"code": "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi",
                                           "message": "qps limit"}))
    stack.post_dingtalk(stack.dingtalk_peer.text(USER, "帮助", with_webhook=False))
    status, attempts, error = wait_for(lambda: (row := _message_row(stack)) and row[1] == 1 and row)
    assert status == "pending" and "QpsLimit" in error


def test_an_invalid_parameter_is_not_retried(stack):
    stack.dingtalk.fail_next.append((400, {"code": "invalidParameter.userIds", "message": "bad"}))
    stack.post_dingtalk(stack.dingtalk_peer.text(USER, "帮助", with_webhook=False))
    status, attempts, error = wait_for(lambda: (row := _message_row(stack)) and row[1] == 1 and row)
    assert status == "dead" and "invalidParameter.userIds" in error


def test_register_card_callback_command_points_card_taps_at_banli(stack, monkeypatch, capsys):
    from banli import cli

    settings = stack.runtime.settings.dingtalk
    for key, value in dict(DINGTALK_APP_KEY=settings.app_key, DINGTALK_APP_SECRET=settings.app_secret,
                           DINGTALK_API_BASE=settings.api_base, DINGTALK_OAPI_BASE=settings.oapi_base).items():
        monkeypatch.setenv(key, value)
    assert cli.main(["dingtalk", "register-card-callback", "https://banli.example.com/dingtalk/card"]) == 0
    assert stack.dingtalk.card_callbacks["banli"] == {"callbackUrl": "https://banli.example.com/dingtalk/card",
                                                     "apiSecret": settings.app_secret}
