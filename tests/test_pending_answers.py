"""A question Banli just asked takes the next message as its answer: after 拒绝 the reason, after
记跟进 on an alert or 已跟进 on a reminder the note about that customer. 取消 and whole commands
still win."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import text

from conftest import settle, wait_for
from sim_company import PLATFORMS, Chat, Clock, add_customer, seed_team, sh
from test_approvals import _nth, _requests, _said, _submit_expense, _tap, _title, oa  # noqa: F401


def _reject_tapped(oa):  # noqa: F811
    _submit_expense(oa)
    _tap(oa, "wangjl", _nth(oa, "wangjl", 1), "拒绝")
    assert _title(_nth(oa, "wangjl", 2)) == "拒绝 R-1001 · 选原因"


def test_the_message_after_reject_is_the_reason(oa):  # noqa: F811
    _reject_tapped(oa)
    oa.post_wecom(oa.wecom_peer.text("wangjl", "发票抬头不对"))
    assert _title(_nth(oa, "wangjl", 3)) == "R-1001 · 已拒绝"
    news = _nth(oa, "zhangsan", 3)
    assert _title(news) == "R-1001 · 已拒绝" and "原因：发票抬头不对" in _said(news)
    oa.post_wecom(oa.wecom_peer.text("wangjl", "好的"))  # the question is answered: no second rejection
    assert "发票抬头不对" not in _said(_nth(oa, "wangjl", 4))
    settle(0.3)
    assert oa.count("approval_task", "WHERE status = 'rejected'") == 1


def test_cancel_after_reject_keeps_the_request_waiting(oa):  # noqa: F811
    _reject_tapped(oa)
    oa.post_wecom(oa.wecom_peer.text("wangjl", "取消"))
    assert _title(_nth(oa, "wangjl", 3)) == "已取消"
    assert _requests(oa)[0].status == "pending"


def test_a_whole_command_after_reject_is_a_command(oa):  # noqa: F811
    _reject_tapped(oa)
    oa.post_wecom(oa.wecom_peer.text("wangjl", "我的审批"))
    assert _title(_nth(oa, "wangjl", 3)).startswith("待我审批")
    assert _requests(oa)[0].status == "pending"


def test_a_typed_reject_without_reason_takes_the_next_message(oa):  # noqa: F811
    _submit_expense(oa)
    _nth(oa, "wangjl", 1)
    oa.post_wecom(oa.wecom_peer.text("wangjl", "拒绝 R-1001"))
    assert _title(_nth(oa, "wangjl", 2)) == "拒绝 R-1001 · 选原因"
    oa.post_wecom(oa.wecom_peer.text("wangjl", "金额和发票对不上"))
    assert "原因：金额和发票对不上" in _said(_nth(oa, "zhangsan", 3))


def test_a_preset_reason_tap_closes_the_question(oa):  # noqa: F811
    _reject_tapped(oa)
    _tap(oa, "wangjl", _nth(oa, "wangjl", 2), "缺少发票", 1)
    _nth(oa, "zhangsan", 3)
    oa.post_wecom(oa.wecom_peer.text("wangjl", "帮助"))
    assert _title(_nth(oa, "wangjl", 4)) != "R-1001 · 已拒绝"
    with oa.runtime.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM conversation")).scalar_one() == 0


@pytest.mark.parametrize("platform", PLATFORMS)
def test_follow_up_on_an_overdue_alert_is_about_that_customer(stack_factory, platform):
    clock = Clock(sh(23, 10, 0))
    stack = stack_factory(start_workers=False, clock=clock)
    team = seed_team(stack, platform, at=sh(23, 10, 0))
    add_customer(stack, "腾讯科技(深圳)有限公司", "腾讯", tier="A", owner_id=team["rep"],
                 since=sh(23, 10, 0) - timedelta(days=8))
    add_customer(stack, "招商银行股份有限公司", "招行", tier="A", owner_id=team["rep"], since=sh(23, 9, 0))
    stack.start_workers()
    clock.set(sh(23, 10, 10))  # the 10:05 scan: 腾讯 is overdue
    chat = Chat(stack, platform)
    alert = wait_for(lambda: [m for m in chat.messages("zhangsan") if m["title"] == "超期未跟进 · 1 家"])[0]
    chat.tap("zhangsan", alert, "记跟进·腾讯")
    wait_for(lambda: any("聊了什么" in m["text"] for m in chat.messages("zhangsan")))
    chat.say("zhangsan", "电话聊了续约")  # no customer name: the alert said which
    wait_for(lambda: any("下次什么时候跟进" in m["text"] for m in chat.messages("zhangsan")))
    chat.say("zhangsan", "不用")
    done = wait_for(lambda: [m for m in chat.messages("zhangsan") if m["title"] == "已记录 · 腾讯"])[0]
    assert "电话聊了续约" in done["text"]
    with stack.runtime.engine.connect() as conn:
        (name, content), = conn.execute(text("SELECT c.short_names, f.content FROM follow_up f "
                                             "JOIN customer c ON c.id = f.customer_id")).all()
    assert (name, content) == ("腾讯", "电话聊了续约")
