"""Guided visit logging (`拜访` with something missing), through the WeCom and DingTalk routes:
one question at a time, 取消 at every step, a new command mid-form, expiry, taps during a form, and
asking when a next time was given but not understood."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from chat import Chat, rows, sales_team, visits
from conftest import settle

PLATFORMS = ["wecom", "dingtalk"]


@pytest.fixture
def team(stack_factory):
    return sales_team(stack_factory)


def _open_forms(stack) -> int:
    return stack.count("conversation")


def _utc(value) -> datetime:
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment


@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_full_guided_visit_asks_one_question_at_a_time(team, platform):
    chat = Chat(team, platform)

    ask = chat.say("拜访")
    assert "拜访哪家客户" in ask.text
    assert ask.buttons == ["招行", "腾讯", "取消"]  # most recently followed first

    ask = chat.tap(ask, "招行")
    assert ask.title == "记拜访 · 招行" and "聊了什么" in ask.text
    assert ask.buttons == ["跳过", "取消"]

    ask = chat.say("聊了报价")
    assert "下次什么时候跟进" in ask.text
    assert ask.buttons == ["明天", "下周", "不用", "取消"]
    assert visits(team) == []  # nothing is logged before the last answer

    done = chat.tap(ask, "明天")
    assert done.title == "已记录 · 招行"
    assert done.field("内容") == "聊了报价" and done.field("下次跟进").startswith("11月22日(周日)")
    assert done.buttons == ["撤销"]
    (short, method, content, next_at), = visits(team)
    assert (short, method, content) == ("招行", "拜访", "聊了报价")
    # A day without a time: the company's follow-up hour (09:00 in Shanghai), never midnight.
    assert _utc(next_at) == datetime(2026, 11, 22, 1, 0, tzinfo=timezone.utc)
    assert team.count("outbox", "WHERE key LIKE 'remind:followup:%' AND status = 'pending'") == 1
    assert _open_forms(team) == 0


@pytest.mark.parametrize("platform", PLATFORMS)
def test_typed_answers_are_matched_fuzzily_and_skip_and_no_next_time_work(team, platform):
    chat = Chat(team, platform)
    chat.say("电话")
    ask = chat.say("腾迅")  # homophone
    assert ask.title == "记电话 · 腾讯"
    ask = chat.tap(ask, "跳过")
    assert "下次什么时候跟进" in ask.text
    done = chat.say("不用")
    assert done.title == "已记录 · 腾讯"
    assert done.field("方式") == "电话" and done.field("下次跟进") == "未设置"
    assert visits(team) == [("腾讯", "电话", "", None)]
    assert team.count("outbox", "WHERE key LIKE 'remind:followup:%'") == 0


@pytest.mark.parametrize("platform", PLATFORMS)
def test_customer_given_asks_only_what_is_missing(team, platform):
    chat = Chat(team, platform)
    ask = chat.say("拜访 腾讯")
    assert ask.title == "记拜访 · 腾讯" and "聊了什么" in ask.text
    done = chat.say("聊了报价 下周三下午再跟进")  # the next time came with the content: no third question
    assert done.title == "已记录 · 腾讯"
    assert done.field("内容") == "聊了报价" and done.field("下次跟进").startswith("11月25日(周三) 14:00")
    assert len(visits(team)) == 1 and _open_forms(team) == 0


@pytest.mark.parametrize("platform", PLATFORMS)
def test_an_answer_that_starts_with_a_method_word_is_still_an_answer(team, platform):
    chat = Chat(team, platform)
    chat.say("拜访 腾讯")
    ask = chat.say("电话里聊了报价")  # "电话" with no space after it is not a new command here
    assert "下次什么时候跟进" in ask.text
    chat.say("不用")
    assert visits(team) == [("腾讯", "拜访", "电话里聊了报价", None)]


@pytest.mark.parametrize("platform", PLATFORMS)
def test_an_unsure_name_offers_the_candidates(team, platform):
    chat = Chat(team, platform)
    ask = chat.say("拜访 恒达")
    assert "哪家" in ask.text
    assert sorted(ask.buttons) == sorted(["深圳市恒达物流有限公司"[:10], "广州市恒达物流有限公司"[:10], "取消"])
    ask = chat.tap(ask, "广州市恒达物流有限公"[:10])
    assert ask.title == "记拜访 · 恒达" and "聊了什么" in ask.text


@pytest.mark.parametrize("platform", PLATFORMS)
def test_an_unknown_customer_is_asked_again_then_the_form_ends_politely(team, platform):
    chat = Chat(team, platform)
    chat.say("拜访")
    again = chat.say("宇宙无敌大公司")
    assert again.title == "没找到这个客户" and "宇宙无敌大公司" in again.text
    assert "取消" in again.buttons and _open_forms(team) == 1
    gave_up = chat.say("火星探索公司")
    assert gave_up.title == "没找到这个客户" and "这次先不记了" in gave_up.text
    assert "帮助" in gave_up.buttons and _open_forms(team) == 0
    assert visits(team) == []


@pytest.mark.parametrize("platform", PLATFORMS)
@pytest.mark.parametrize("answered", [0, 1, 2])
def test_cancel_at_any_step_leaves_nothing(team, platform, answered):
    chat = Chat(team, platform)
    ask = chat.say("拜访")
    for answer in ["腾讯", "聊了报价"][:answered]:
        ask = chat.say(answer)
    # Tapping 取消 on WeCom, typing a cancel word on DingTalk (its tap sends the same word).
    gone = chat.tap(ask, "取消") if platform == "wecom" else chat.say(["取消", "算了", "退出"][answered])
    assert gone.title == "已取消" and "没有记录" in gone.text
    assert "客户跟进" in gone.buttons and "帮助" in gone.buttons
    assert _open_forms(team) == 0
    after = chat.say("聊了报价")  # no longer an answer to anything
    assert after.title != "已记录 · 腾讯" and "下次什么时候跟进" not in after.text
    assert visits(team) == []


@pytest.mark.parametrize("platform", PLATFORMS)
def test_cancel_with_nothing_open_says_so(team, platform):
    reply = Chat(team, platform).say("取消")
    assert reply.title == "没有要取消的" and "帮助" in reply.buttons


@pytest.mark.parametrize("platform", PLATFORMS)
def test_another_command_mid_form_wins_and_drops_the_form(team, platform):
    chat = Chat(team, platform)
    chat.say("拜访")
    chat.say("腾讯")
    done = chat.say("电话 招行 约了演示 明天下午3点")
    assert done.title == "已记录 · 招行"
    assert _open_forms(team) == 0
    later = chat.say("聊了报价")
    assert "下次什么时候跟进" not in later.text
    assert visits(team) == [("招行", "电话", "约了演示", visits(team)[0][3])]


@pytest.mark.parametrize("platform", PLATFORMS)
def test_help_mid_form_shows_the_menu_and_drops_the_form(team, platform):
    chat = Chat(team, platform)
    chat.say("拜访 腾讯")
    menu = chat.say("帮助")
    assert menu.title == "办理 · 主菜单"
    assert _open_forms(team) == 0


@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_form_left_alone_expires(team, platform):
    chat = Chat(team, platform)
    chat.say("拜访")
    team.clock.skip(minutes=11)
    late = chat.say("腾讯")
    assert "聊了什么" not in late.text
    assert _open_forms(team) == 0 and visits(team) == []


@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_form_answered_in_time_renews_its_expiry(team, platform):
    chat = Chat(team, platform)
    chat.say("拜访")
    team.clock.skip(minutes=8)
    chat.say("腾讯")
    team.clock.skip(minutes=8)  # 16 minutes since the start, 8 since the last answer
    ask = chat.say("聊了报价")
    assert "下次什么时候跟进" in ask.text


def test_a_tap_during_a_form_is_not_swallowed(team):
    chat = Chat(team, "wecom")
    logged = chat.say("拜访 招行 送了样品")
    assert logged.title == "已记录 · 招行"
    chat.say("拜访")
    undone = chat.tap(logged, "撤销")  # the earlier card's button still does its own thing
    assert undone.title == "已撤销"
    assert visits(team) == []
    ask = chat.say("腾讯")  # and the form is still open
    assert ask.title == "记拜访 · 腾讯"


def test_a_tap_on_an_old_question_does_not_answer_the_new_one(team):
    chat = Chat(team, "wecom")
    first = chat.say("拜访")
    chat.say("腾讯")  # now the open question is "聊了什么"
    stale = chat.tap(first, "招行")
    assert stale.title == "这个问题已经过去了" and "帮助" in stale.buttons
    ask = chat.say("聊了报价")
    assert ask.title == "记拜访 · 腾讯" and "下次什么时候跟进" in ask.text


@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_time_word_not_understood_is_asked_and_the_answer_sets_it(team, platform):
    chat = Chat(team, platform)
    logged = chat.say("拜访 腾讯 聊了报价 过几天再跟进")
    assert logged.title == "已记录 · 腾讯"
    assert "下次跟进是哪天" in logged.text and logged.field("下次跟进") == "还没定"
    assert logged.buttons == ["明天", "下周", "不用", "撤销"]
    assert len(visits(team)) == 1  # the visit itself is kept
    again = chat.say("过些日子")
    assert "没看懂" in again.text and "下次跟进是哪天" in again.text
    updated = chat.say("下周三下午")
    assert updated.title == "已更新 · 腾讯" and updated.field("下次跟进").startswith("11月25日(周三) 14:00")
    (_, _, content, next_at), = visits(team)
    assert _utc(next_at) == datetime(2026, 11, 25, 6, 0, tzinfo=timezone.utc)
    due = rows(team, "SELECT due_at FROM outbox WHERE key LIKE 'remind:followup:%' AND status = 'pending'")
    assert [_utc(d) for d, in due] == [datetime(2026, 11, 25, 6, 0, tzinfo=timezone.utc)]


def test_cancelling_the_date_question_keeps_the_visit(team):
    chat = Chat(team, "wecom")
    logged = chat.say("拜访 腾讯 聊了报价 改天再约")
    assert "下次跟进是哪天" in logged.text
    gone = chat.say("算了")
    assert gone.title == "已取消" and "记录已保存" in gone.text
    assert len(visits(team)) == 1 and visits(team)[0][3] is None
    settle(0.2)
    assert _open_forms(team) == 0


def test_the_form_store_keeps_one_form_per_person_and_forgets_idle_ones(stack_factory):
    from datetime import timedelta

    from storage.db import session_scope
    from storage.models import Employee
    from workflows import conversations

    stack = stack_factory(start_workers=False)
    now = datetime(2026, 11, 21, 2, 0, tzinfo=timezone.utc)
    with session_scope(stack.runtime.engine) as session:
        rep = Employee(name="张三")
        session.add(rep)
        session.flush()
        conversations.start(session, rep, "crm.visit", "customer", {"method": "拜访"}, now)
        form = conversations.advance(session, rep, "content", now + timedelta(minutes=9), customer_id=7)
        assert (form.step, form.data) == ("content", {"method": "拜访", "customer_id": 7})
        assert conversations.current(session, rep, now + timedelta(minutes=18)) is not None  # renewed at 9
        conversations.start(session, rep, "oa.expense", "amount", {}, now)  # replaces, never a second row
        assert conversations.current(session, rep, now).flow == "oa.expense"
        assert conversations.current(session, rep, now + conversations.IDLE_EXPIRY) is None
        assert conversations.advance(session, rep, "x", now) is None  # the expired row is gone
        conversations.start(session, rep, "crm.visit", "customer", {}, now)
        assert conversations.finish(session, rep) and not conversations.finish(session, rep)
    assert stack.count("conversation") == 0
