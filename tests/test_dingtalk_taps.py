"""DingTalk without a card template: every button is a tap-to-send link, and what a tap makes the
person send is words they could have typed (`同意 R-1001 第1步`), not internal codes — still as safe
as a card callback: a second tap, a forwarded tap and a tap on an old step's card decide nothing.

Through the real route: Chat(stack, "dingtalk") taps by reading the dtmd links off the markdown and
sending their words as the person (tests/chat.py)."""

from __future__ import annotations

import json

import pytest

from chat import Chat, rows
from conftest import wait_for
from storage.db import session_scope
from storage.models import Employee, Identity
from test_approval_dingtalk_cards import ACCOUNTANT, BOSS, REP, SATURDAY_1130, saturday_clock, seed_people

HELPER, OUTSIDER = "0147012", "0147013"  # 孙主管 (another department's lead), 赵六 (not on the request)


@pytest.fixture
def company(stack_factory):
    stack = seed_people(stack_factory(clock=saturday_clock()))  # no card template: markdown + dtmd links
    with session_scope(stack.runtime.engine) as session:
        for user_id, name in ((HELPER, "孙主管"), (OUTSIDER, "赵六")):
            person = Employee(name=name, department="市场部", synced_at=SATURDAY_1130)
            session.add(person)
            session.flush()
            session.add(Identity(platform="dingtalk", user_id=user_id, employee_id=person.id))
            stack.dingtalk.users[user_id] = {"name": name, "dept_id_list": [20]}
    return stack


def _words(reply) -> dict[str, str]:
    """{label: what the person sends by tapping it}, as the chat then shows it."""
    from chat import _tap_words
    return _tap_words(reply.text)


def _latest(chat: Chat, n: int):
    return wait_for(lambda: len(chat.replies()) >= n and chat.replies())[n - 1]


def _request(stack) -> tuple[str, int]:
    return rows(stack, "SELECT status, step FROM approval_request")[0]


def _submitted(stack, words="报销 出租车 86.5") -> tuple[Chat, Chat]:
    rep, boss = Chat(stack, "dingtalk", REP), Chat(stack, "dingtalk", BOSS)
    confirm = rep.say(words)
    assert _words(confirm)["提交"] == "提交 R-1001" and _words(confirm)["取消"] == "取消 R-1001"
    submitted = rep.tap(confirm, "提交")
    assert submitted.title == "已提交 · R-1001"
    assert _words(submitted)["催办"] == "催办 R-1001" and _words(submitted)["撤回"] == "撤回 R-1001"
    return rep, boss


def test_a_manager_taps_agree_and_the_chat_shows_words_he_could_have_typed(company):
    rep, boss = _submitted(company)
    card = _latest(boss, 1)
    assert card.title == "待你审批 · 报销"
    words = _words(card)
    assert words["同意"] == "同意 R-1001 第1步" and words["拒绝"] == "拒绝 R-1001 第1步"
    assert not any(w.startswith("#") for w in words.values()), words

    done = boss.tap(card, "同意")

    assert done.title == "R-1001 · 已通过" and "你已同意" in done.text
    assert _request(company)[0] == "approved"
    assert wait_for(lambda: "R-1001 · 已通过" in [r.title for r in rep.replies()])

    again = boss.say(words["同意"])  # the same tap text sent again
    assert again.title == "R-1001 · 已通过" and "已处理：周经理" in again.text
    assert rows(company, "SELECT count(*) FROM approval_task WHERE status = 'approved'")[0][0] == 1


def test_a_forwarded_tap_from_an_outsider_is_refused_and_audited(company):
    _, boss = _submitted(company)
    forwarded = _words(_latest(boss, 1))["同意"]

    refused = Chat(company, "dingtalk", OUTSIDER).say(forwarded)

    assert refused.title == "这不是你的申请" and "出租车" not in refused.text
    assert _request(company) == ("pending", 0)
    audit = rows(company, "SELECT detail FROM audit_log WHERE action = 'refused'")
    assert [json.loads(d)["attempted"] for (d,) in audit] == ["approval.decide"]


def test_the_requester_cannot_agree_to_his_own_request_with_the_words(company):
    rep, boss = _submitted(company)
    answer = rep.say(_words(_latest(boss, 1))["同意"])
    assert answer.title == "不能审批自己的申请" and _request(company) == ("pending", 0)


def test_a_stale_step_one_tap_does_not_decide_step_two(company):
    _, boss = _submitted(company)
    old_card = _latest(boss, 1)
    # 加签 孙主管 before me: he becomes step 1, my step moves to 2 and comes back to me after him.
    asked = boss.tap(old_card, "加签")
    assert asked.title == "加签"
    boss.say("孙主管")
    helper = Chat(company, "dingtalk", HELPER)
    helper_card = _latest(helper, 1)
    assert _words(helper_card)["同意"] == "同意 R-1001 第1步"
    helper.tap(helper_card, "同意")
    new_card = wait_for(lambda: [r for r in boss.replies() if r.title == "待你审批 · 报销"][1:])[0]
    assert _words(new_card)["同意"] == "同意 R-1001 第2步"
    assert _request(company) == ("pending", 1)

    stale = boss.say(_words(old_card)["同意"])  # the step-1 card, tapped after the step moved on

    assert "第1步已经处理过了" in stale.text and "没有替你审批" in stale.text
    assert _request(company) == ("pending", 1)
    assert rows(company, "SELECT count(*) FROM approval_task WHERE status = 'pending'")[0][0] == 1

    done = boss.tap(new_card, "同意")
    assert "你已同意" in done.text and _request(company)[0] == "approved"


def test_reject_reasons_are_words_with_the_reason(company):
    rep, boss = _submitted(company)
    ask = boss.tap(_latest(boss, 1), "拒绝")
    assert ask.title == "拒绝 R-1001 · 选原因"
    words = _words(ask)
    assert words["缺少发票"] == "拒绝 R-1001 第1步 缺少发票" and words["先不拒绝"] == "先不拒绝"

    done = boss.tap(ask, "缺少发票")

    assert done.title == "R-1001 · 已拒绝" and "缺少发票" in done.text
    assert rows(company, "SELECT status, comment FROM approval_task")[0] == ("rejected", "缺少发票")


def test_keep_after_reject_leaves_the_request_waiting(company):
    _, boss = _submitted(company)
    ask = boss.tap(_latest(boss, 1), "拒绝")
    kept = boss.tap(ask, "先不拒绝")
    assert kept.title == "好的" and _request(company) == ("pending", 0)
    assert boss.say("看起来没问题").title != "R-1001 · 已拒绝"  # the reason form is closed


def test_cancel_of_a_draft_is_words_and_only_the_requester_may(company):
    rep = Chat(company, "dingtalk", REP)
    confirm = rep.say("报销 出租车 86.5")
    refused = Chat(company, "dingtalk", OUTSIDER).say(_words(confirm)["取消"])
    assert refused.title == "这不是你的申请" and rows(company, "SELECT count(*) FROM approval_request")[0][0] == 1
    gone = rep.tap(confirm, "取消")
    assert gone.title == "已取消" and rows(company, "SELECT count(*) FROM approval_request")[0][0] == 0
    assert rep.tap(confirm, "提交").title == "找不到这一单"  # the old card's 提交 after 取消


def test_my_tasks_list_opens_the_card_with_words(company):
    _, boss = _submitted(company)
    _latest(boss, 1)  # the card has come: the next reply is the list
    todo = boss.say("我的审批")
    assert _words(todo)["R-1001"] == "审批 R-1001"
    card = boss.tap(todo, "R-1001")
    assert card.title == "待你审批 · 报销" and _words(card)["同意"] == "同意 R-1001 第1步"
