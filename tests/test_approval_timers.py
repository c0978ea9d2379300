"""Approval timers that act, with the clock moved: a reminder in working hours, escalation to the
approver's manager who may decide on their behalf, auto-approval for a type the admin chose, and
the requester's 催办 (once an hour per step). Each arrives once, to the right person."""

from __future__ import annotations

import json
from datetime import timedelta

from conftest import settle, wait_for
from storage.db import session_scope
from workflows import rules

from test_approvals import _nth, _requests, _said, _submit_expense, _tap, _title, oa  # noqa: F401

MONDAY_0901 = timedelta(hours=45, minutes=31)  # Saturday 11:30 → Monday 09:01


def test_the_task_card_says_what_happens_if_nobody_acts(oa):  # noqa: F811
    _submit_expense(oa)
    footer = json.dumps(_nth(oa, "wangjl", 1), ensure_ascii=False)
    assert "24小时未处理会提醒，48小时升级给上级" in footer


def test_a_reminder_waits_for_working_hours_then_escalation_lets_the_boss_decide(oa):  # noqa: F811
    _submit_expense(oa)
    _nth(oa, "wangjl", 1)
    oa.shift(timedelta(hours=30))  # Sunday 17:30: 24 h have passed, but it is the weekend
    settle(1.0)
    assert len(oa.wecom.messages_to("wangjl")) == 1
    oa.shift(MONDAY_0901 - timedelta(hours=30))
    reminder = _nth(oa, "wangjl", 2)
    assert _title(reminder) == "待你审批 · 报销" and "请尽快处理" in _said(reminder)
    assert oa.wecom.messages_to("director") == []

    oa.shift(timedelta(hours=2, minutes=30))  # Monday 11:31: 48 h
    escalated = _nth(oa, "director", 1)
    assert "王经理超时未处理，升级给你" in _said(escalated)
    _tap(oa, "director", escalated, "同意", 1)
    done = _nth(oa, "zhangsan", 3)
    assert _title(done) == "R-1001 · 已通过"
    timeline = _said(done)
    assert timeline.index("提醒了王经理") < timeline.index("王经理超时，升级给刘总监") < timeline.index("刘总监（代王经理） 同意")
    # 王经理's own card now answers that it is done, and nothing fires again.
    _tap(oa, "wangjl", _nth(oa, "wangjl", 1), "同意", 2)
    assert "已处理：刘总监" in _said(_nth(oa, "wangjl", 3))
    oa.shift(timedelta(days=3))
    settle(1.0)
    assert len(oa.wecom.messages_to("wangjl")) == 3 and len(oa.wecom.messages_to("director")) == 2
    assert oa.count("audit_log", "WHERE action = 'approval.remind'") == 1


def test_a_type_the_admin_chose_is_approved_at_its_deadline(oa):  # noqa: F811
    with session_scope(oa.runtime.engine) as session:
        rules.put(session, "oa.auto_decide", {"通用": {"hours": 4, "decision": "approve"}}, by=None)
    oa.post_wecom(oa.wecom_peer.text("zhangsan", "申请 借用投影仪 周一开会用"))
    _tap(oa, "zhangsan", _nth(oa, "zhangsan", 1), "提交")
    assert "4小时后自动同意" in _said(_nth(oa, "wangjl", 1))
    oa.shift(timedelta(hours=4, minutes=1))
    news = _nth(oa, "zhangsan", 3)
    assert _title(news) == "R-1001 · 已通过" and "到期自动同意" in _said(news)
    assert _requests(oa)[0].status == "approved"


def test_nudge_once_an_hour(oa):  # noqa: F811
    _submit_expense(oa)
    _nth(oa, "wangjl", 1)
    oa.post_wecom(oa.wecom_peer.text("zhangsan", "催办 R-1001"))
    assert _title(_nth(oa, "zhangsan", 3)) == "已催办 · R-1001"
    assert "张三催办" in _said(_nth(oa, "wangjl", 2))
    oa.post_wecom(oa.wecom_peer.text("zhangsan", "催办 R-1001"))
    assert _title(_nth(oa, "zhangsan", 4)) == "刚催过"
    oa.shift(timedelta(minutes=61))
    oa.post_wecom(oa.wecom_peer.text("zhangsan", "催办"))  # the only pending one: no number needed
    assert _title(_nth(oa, "zhangsan", 5)) == "已催办 · R-1001"
    assert len(wait_for(lambda: len(oa.wecom.messages_to("wangjl")) >= 3 and oa.wecom.messages_to("wangjl"))) == 3
    oa.post_wecom(oa.wecom_peer.text("lisi", "催办 R-1001"))
    assert _title(_nth(oa, "lisi", 1)) == "这不是你的申请"
