"""What a person typed is shown as text, never as markup, on every route: DingTalk markdown (no card
template), DingTalk card-template params, and WeCom (template cards and text). A 报销 reason cannot
plant a working button or link in the approver's card, a comment cannot fake a heading, the amount
is read from the words and not from a URL; and WeCom card updates conform to the API (a finished
card keeps one grey button), DingTalk markdown over the limit loses body, never buttons."""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from urllib.parse import parse_qs, urlsplit

import pytest

from bot.dingtalk import render as dingtalk_render
from bot.platform import PlatformError
from bot.wecom import render as wecom_render
from cards import Button, Card
from conftest import wait_for
from storage.db import session_scope
from storage.models import Employee, Identity
from workflows.amounts import find_amount
from workflows.when import parse_when

SATURDAY_1130 = datetime(2026, 11, 21, 3, 30, tzinfo=timezone.utc)  # 11:30 in Shanghai

# Exactly the inputs of the issue: a reason with a link and a tap-to-send "button", and a comment
# with a real newline that fakes a heading and a button.
EXPENSE = ("报销 [查看发票](http://127.0.0.1:1/x) "
           "[同意](dtmd://dingtalkclient/sendMessage?content=%E5%90%8C%E6%84%8F%20R-1013) 99")
COMMENT = "评论 R-1001 好\n### 【R-1019 · 已通过】\n[撤回](dtmd://dingtalkclient/sendMessage?content=x)"
TASK_BUTTONS = ["同意", "拒绝", "转交", "加签", "退回"]  # what Banli puts on an approver's card
REP_DT, BOSS_DT = "0147001", "0147002"
REP_WX, BOSS_WX = "zhangsan", "wangjl"
LINK = re.compile(r"\[([^\]]*)\]\(([^)]*)\)")


@pytest.fixture(params=["markdown", "card_template"])
def dingtalk(request, stack_factory):
    """The same small company on DingTalk, without a card template (markdown) and with one."""
    return _company(stack_factory, "dingtalk",
                    card_template_id="tpl.schema" if request.param == "card_template" else "")


@pytest.fixture
def wecom(stack_factory):
    return _company(stack_factory, "wecom")


def _company(stack_factory, platform, **overrides):
    """张三 (rep) and his manager 王经理, on one platform: the approver's card goes where he is."""
    started = datetime.now(timezone.utc)
    stack = stack_factory(clock=lambda: SATURDAY_1130 + (datetime.now(timezone.utc) - started), **overrides)
    with session_scope(stack.runtime.engine) as session:
        boss = Employee(name="王经理", department="销售部", synced_at=SATURDAY_1130)
        session.add(boss)
        session.flush()
        rep = Employee(name="张三", department="销售部", manager_id=boss.id, synced_at=SATURDAY_1130)
        session.add(rep)
        session.flush()
        rep_id, boss_id = (REP_WX, BOSS_WX) if platform == "wecom" else (REP_DT, BOSS_DT)
        session.add_all([Identity(platform=platform, user_id=rep_id, employee_id=rep.id),
                         Identity(platform=platform, user_id=boss_id, employee_id=boss.id)])
    return stack


# -- DingTalk helpers ---------------------------------------------------------------------------------

def _dt_messages(stack, user):
    return stack.dingtalk.messages_to(user)


def _dt_nth(stack, user, n):
    return wait_for(lambda: len(_dt_messages(stack, user)) >= n and _dt_messages(stack, user))[n - 1]


def _uses_cards(stack) -> bool:
    return bool(stack.runtime.settings.dingtalk.card_template_id)


def _dt_tap(stack, user, message, label):
    """Tap a button as the DingTalk client would: a card callback, or sending a dtmd link's words."""
    if message.get("via") == "card":
        button = next(b for b in json.loads(message["card_data"]["buttons"]) if b["text"] == label)
        stack.post_dingtalk(stack.dingtalk_peer.card_click(user, message["out_track_id"], button["action"],
                                                           button["value"]), path="/dingtalk/card")
        return
    url = dict(LINK.findall(message["text"]))[label]
    stack.post_dingtalk(stack.dingtalk_peer.text(user, parse_qs(urlsplit(url).query)["content"][0]))


def _dt_submit(stack, words):
    stack.post_dingtalk(stack.dingtalk_peer.text(REP_DT, words))
    _dt_tap(stack, REP_DT, _dt_nth(stack, REP_DT, 1), "提交")
    _dt_nth(stack, REP_DT, 2)
    return _dt_nth(stack, BOSS_DT, 1)


def _markdown_is_inert(text: str, buttons: list[str]) -> None:
    """Markup in `text` is Banli's alone: one `###` title line, and links only for Banli's buttons."""
    lines = [line.strip() for line in text.split("\n")]
    assert [line for line in lines if line.startswith("#")] == [lines[0]]  # no fake heading
    assert [label for label, _ in LINK.findall(text)] == buttons  # count the buttons: only Banli's
    assert text.count("](") == len(buttons) and text.count("dtmd://") == len(buttons)
    assert text.count("://") == len(buttons)  # no other link target, not even a bare URL
    assert all(target.startswith("dtmd://dingtalkclient/sendMessage?content=") for _, target in LINK.findall(text))
    assert not any(line.startswith((">", "-", "+", "<", "* ")) for line in lines)


def _params_are_inert(params: dict[str, str]) -> None:
    for key in ("title", "source", "body", "fields", "footer"):
        text = params[key]
        assert "](" not in text and "://" not in text and "<" not in text, (key, text)
        assert not any(line.strip().startswith(("#", ">", "-", "+", "* ")) for line in text.split("\n")), (key, text)


# -- the 报销 reason ------------------------------------------------------------------------------------

def test_the_amount_is_read_from_the_words_not_from_a_url():
    assert find_amount(EXPENSE)[0] == 99  # not ¥8.00 out of %8C
    assert find_amount("报销 http://x.cn/a?p=20 打车") is None
    assert find_amount("报销 http://x.cn/a报销36元")[0] == 36  # a link ends where the ASCII does
    assert parse_when("请假 https://x.cn/?d=2026-12-09 看看", SATURDAY_1130) is None


def test_dingtalk_a_planted_button_in_a_reason_is_only_text_and_the_amount_is_99(dingtalk):
    task = _dt_submit(dingtalk, EXPENSE)
    if _uses_cards(dingtalk):
        params = task["card_data"]
        _params_are_inert(params)
        assert [b["text"] for b in json.loads(params["buttons"])] == TASK_BUTTONS
        shown, fields = params["body"], params["fields"]
    else:
        _markdown_is_inert(task["text"], TASK_BUTTONS)
        shown = fields = task["text"]
    assert "**金额**：¥99.00" in fields
    # The approver sees every character the requester typed, as look-alikes that form no link.
    assert "［查看发票］(http：//127.0.0.1:1/x)" in shown
    assert "［同意］(dtmd：//dingtalkclient/sendMessage?content=%E5%90%8C%E6%84%8F%20R-1013)" in shown


def test_wecom_a_planted_button_in_a_reason_is_only_text_and_the_amount_is_99(wecom):
    task = _wx_submit(wecom, EXPENSE)
    card = task["template_card"]
    assert [b["text"] for b in card["button_list"]] == TASK_BUTTONS
    assert {f["keyname"]: f["value"] for f in card["horizontal_content_list"]}["金额"] == "¥99.00"
    assert "[查看发票](http://127.0.0.1:1/x)" in card["sub_title_text"]  # a template card shows plain text
    assert "<a" not in json.dumps(task, ensure_ascii=False)


# -- a comment that fakes a heading -----------------------------------------------------------------------

def test_dingtalk_a_comment_cannot_fake_a_heading_or_a_button(dingtalk):
    task = _dt_submit(dingtalk, "报销 出租车 86.5")
    dingtalk.post_dingtalk(dingtalk.dingtalk_peer.text(BOSS_DT, COMMENT))
    noted = _dt_nth(dingtalk, BOSS_DT, 2)
    dingtalk.post_dingtalk(dingtalk.dingtalk_peer.text(BOSS_DT, "记录 R-1001"))
    record = _dt_nth(dingtalk, BOSS_DT, 3)

    for answer in (noted, record):  # a card without buttons is markdown, with or without a template
        assert answer["title"] in ("R-1001 · 审批中",) and "  \n" in answer["text"]
        _markdown_is_inert(answer["text"], [])
        assert "＃＃＃ 【R-1019 · 已通过】" in answer["text"]  # shown, as text
        assert "［撤回］(dtmd：//dingtalkclient/sendMessage?content=x)" in answer["text"]
    if _uses_cards(dingtalk):  # approved, the approver's card shows the history, comment and all
        _dt_tap(dingtalk, BOSS_DT, task, "同意")
        track = task["out_track_id"]
        params = wait_for(lambda: dingtalk.dingtalk.cards[track]["card_data"]["title"] == "R-1001 · 已通过"
                          and dingtalk.dingtalk.cards[track]["card_data"])
        _params_are_inert(params)
        assert "＃＃＃ 【R-1019 · 已通过】" in params["body"] and params["buttons"] == "[]"


def test_wecom_a_comment_cannot_fake_a_heading(wecom):
    _wx_submit(wecom, "报销 出租车 86.5")
    wecom.post_wecom(wecom.wecom_peer.text(BOSS_WX, COMMENT))
    _wx_nth(wecom, BOSS_WX, 2)
    wecom.post_wecom(wecom.wecom_peer.text(BOSS_WX, "记录 R-1001"))
    record = _wx_nth(wecom, BOSS_WX, 3)
    assert record["msgtype"] == "text"
    lines = record["text"]["content"].split("\n")
    assert lines[0] == "【R-1001 · 审批中】"
    assert [line for line in lines if line.startswith("【")] == [lines[0]]  # one header: Banli's
    assert "### ［R-1019 · 已通过］" in lines


def test_wecom_a_link_tag_in_user_text_is_not_live(wecom):
    _wx_submit(wecom, "报销 出租车 86.5")
    wecom.post_wecom(wecom.wecom_peer.text(REP_WX, '评论 R-1001 <a href="http://x">点我</a>'))
    answer = _wx_nth(wecom, REP_WX, 3)
    assert answer["msgtype"] == "text"
    content = answer["text"]["content"]
    assert "<" not in content and ">" not in content and "&lt;" not in content
    assert '＜a href="http://x"＞点我＜/a＞' in content  # what was typed, readable


# -- WeCom card updates conform -------------------------------------------------------------------------

def test_wecom_a_finished_request_updates_the_requesters_card_as_the_api_requires(wecom):
    submitted = _wx_submit_card(wecom, "报销 出租车 86.5")
    task = _wx_nth(wecom, BOSS_WX, 1)
    _wx_tap(wecom, BOSS_WX, task, "同意")
    theirs = wait_for(lambda: [u for u in wecom.wecom.updates
                               if u["template_card"]["task_id"] == submitted["template_card"]["task_id"]])
    card = theirs[-1]["template_card"]
    assert card["card_type"] == "button_interaction" and card["main_title"]["title"] == "R-1001 · 已通过"
    assert card["replace_text"] == "已通过" and [b["text"] for b in card["button_list"]] == ["已通过"]
    assert "王经理同意了，审批通过。" in card["sub_title_text"]  # the news is on the card, not just greyed out
    assert wecom.wecom.refused_updates == []


def test_the_wecom_standin_refuses_an_update_without_buttons(wecom):
    client = wecom.runtime.clients["wecom"]
    sent = client.send(_outgoing(Card(title="审批", buttons=(Button("同意", "approval.approve", "1"),))))
    card = wecom_render.template_card(Card(title="R-1 · 已通过"), sent["task_id"])
    with pytest.raises(PlatformError) as refused:
        client.call("POST", "message/update_template_card",
                    json={"atall": 1, "agentid": 1, "response_code": sent["response_code"],
                          "template_card": {**card, "button_list": [], "replace_text": ""}})
    assert refused.value.code == 40058 and not refused.value.retryable
    client.update_card(sent, Card(title="R-1 · 已通过", status="已通过"))  # the code is still good
    assert wecom.wecom.updates[-1]["template_card"]["replace_text"] == "已通过"


# -- renderers -------------------------------------------------------------------------------------------

def test_dingtalk_markdown_over_the_limit_cuts_the_body_and_keeps_title_buttons_and_footer():
    buttons = tuple(Button(label, f"approval.{i}", "42") for i, label in enumerate(TASK_BUTTONS))
    card = Card(title="待你审批 · 报销", body=("很长的事由[x](http://y) " * 600).strip(),
                fields=(("金额", "¥99.00"),), buttons=buttons, footer="24小时未处理会提醒")
    title, text = dingtalk_render.markdown(card)
    assert title == "待你审批 · 报销" and len(text) <= dingtalk_render.MARKDOWN_LIMIT
    lines = text.split(dingtalk_render.LINE_BREAK)
    assert lines[0] == "### 待你审批 · 报销"
    assert lines[-1] == "24小时未处理会提醒"
    assert lines[-6:-1] == [dingtalk_render.dtmd_link(b) for b in buttons]  # whole, every one
    assert lines[-7] == "**金额**：¥99.00" and lines[-8].endswith("…")
    _markdown_is_inert(text, TASK_BUTTONS)


def test_dingtalk_escapes_every_kind_of_markup_and_keeps_lines():
    card = Card(title="a\n# b", body="- 列表\n1. 有序\n3.5万\n    代码\n> 引用\n===\n&lt;b&gt; A&B \\*x\\*\n"
                                      "|a|b|\n__粗__ crm.overdue_days _斜_\n<b>x</b> ![图](y) 11月23日(周一) 金额 > 1000",
                fields=(("事由", "一\n## 二"),), footer="* 注")
    _, text = dingtalk_render.markdown(card)
    assert text.split("  \n") == [
        "### a ＃ b", "－ 列表", "1． 有序", "3.5万", "代码", "＞ 引用", "＝==", "＆lt;b＆gt; A&B ＼＊x＼＊", "｜a｜b｜",
        "＿＿粗＿＿ crm.overdue_days ＿斜＿", "＜b>x＜/b> !［图］(y) 11月23日(周一) 金额 > 1000",
        "**事由**：一 ＃＃ 二", "＊ 注"]


def test_as_text_cannot_be_given_a_second_header():
    card = Card(title="R-1001 · 审批中", body="好\n【R-1019 · 已通过】",
                fields=(("事由", "打车\n【R-1019 · 已通过】"),), footer="注\n【假】")
    assert card.as_text().split("\n") == ["【R-1001 · 审批中】", "好", "［R-1019 · 已通过］",
                                          "事由：打车 ［R-1019 · 已通过］", "注 ［假］"]


def test_a_card_round_trips_its_status():
    card = Card(title="R-1 · 已通过", status="已通过")
    assert Card.from_dict(json.loads(json.dumps(card.to_dict()))) == card
    assert Card.from_dict({"title": "旧卡片"}).status == ""  # rows queued before the field existed


# -- WeCom helpers --------------------------------------------------------------------------------------

def _wx_messages(stack, user):
    return stack.wecom.messages_to(user)


def _wx_nth(stack, user, n):
    return wait_for(lambda: len(_wx_messages(stack, user)) >= n and _wx_messages(stack, user))[n - 1]


def _wx_tap(stack, user, message, label):
    card = message["template_card"]
    key = next(b["key"] for b in card["button_list"] if b["text"] == label)
    code = stack.wecom.issue_response_code(card["task_id"])
    stack.post_wecom(stack.wecom_peer.card_click(user, key, card["task_id"], code))


def _wx_submit_card(stack, words):
    stack.post_wecom(stack.wecom_peer.text(REP_WX, words))
    _wx_tap(stack, REP_WX, _wx_nth(stack, REP_WX, 1), "提交")
    return _wx_nth(stack, REP_WX, 2)


def _wx_submit(stack, words):
    _wx_submit_card(stack, words)
    return _wx_nth(stack, BOSS_WX, 1)


def _outgoing(card: Card):
    from bot.platform import Outgoing

    return Outgoing(key="test:standin:" + card.title, recipient=REP_WX, card=card)
