"""Trust holes, tried as an attacker or a careless user would, through the WeCom route: nobody approves
their own request, an outsider learns nothing about a request, two 会签 approvers tapping at once both
count, and every refusal is one audit row."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text
from sqlmodel import select

from conftest import TEST_DB, settle, wait_for
from storage.db import session_scope
from storage.models import ApprovalRule, ApprovalTask, Employee, Identity
from workflows import roles

from test_approvals import (SATURDAY_1130, _nth, _requests, _said, _submit_expense, _tap, _title,  # noqa: F401
                            decide_at_once, oa)
from test_away_and_leavers import _admin


def _people(stack, *rows):
    """(wecom id, name, role, manager's name) → employees, managers looked up by name."""
    with session_scope(stack.runtime.engine) as session:
        for user_id, name, role, manager in rows:
            boss = session.exec(select(Employee).where(Employee.name == manager)).one() if manager else None
            person = Employee(name=name, department="销售部", synced_at=SATURDAY_1130,
                              manager_id=boss.id if boss else None)
            session.add(person)
            session.flush()
            if role:
                roles.grant(session, person, role)
            session.add(Identity(platform="wecom", user_id=user_id, employee_id=person.id))


def _refusals(stack) -> list[dict]:
    with stack.runtime.engine.connect() as conn:
        rows = conn.execute(text("SELECT actor_id, subject, detail FROM audit_log WHERE action = 'refused' "
                                 "ORDER BY id")).all()
    return [{"actor": a, "subject": s, **json.loads(d)} for a, s, d in rows]


def _tasks(stack) -> list[tuple[str, str]]:
    with stack.runtime.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(
            "SELECT e.name, t.status FROM approval_task t JOIN employee e ON e.id = t.approver_id ORDER BY t.id"))]


# -- 1. no self-approval -------------------------------------------------------------------------


def test_a_hand_over_to_the_requester_goes_up_the_chain_instead(oa):  # noqa: F811
    _admin(oa)
    _people(oa, ("zhoujl", "周经理", "sales_manager", "刘总监"), ("liding", "李钉", "rep", "周经理"))
    oa.post_wecom(oa.wecom_peer.text("liding", "报销 出租车 86.5 元"))
    _tap(oa, "liding", _nth(oa, "liding", 1), "提交")
    waiting = _nth(oa, "zhoujl", 1)
    assert _title(waiting) == "待你审批 · 报销"

    oa.post_wecom(oa.wecom_peer.text("linhao", "离职 周经理 交接给 李钉"))
    assert "已办理离职" in _title(_nth(oa, "linhao", 1))
    # The task went past 李钉 (the requester) and past 周经理 (gone) to 刘总监.
    theirs = _nth(oa, "director", 1)
    assert _title(theirs) == "待你审批 · 报销" and "李钉的报销" in _said(theirs)
    assert ("李钉", "pending") not in _tasks(oa)
    assert not [m for m in oa.wecom.messages_to("liding") if _title(m) == "待你审批 · 报销"]

    oa.post_wecom(oa.wecom_peer.text("liding", "同意 R-1001"))
    refusal = _nth(oa, "liding", 3)
    assert _title(refusal) == "不能审批自己的申请"
    assert _requests(oa)[0].status == "pending"

    oa.post_wecom(oa.wecom_peer.text("liding", "记录 R-1001"))
    history = _said(_nth(oa, "liding", 4))
    assert "李钉是申请人，不能审批自己的申请，改由刘总监审批" in history
    _tap(oa, "director", theirs, "同意", 5)
    wait_for(lambda: _requests(oa)[0].status == "approved")


def test_a_delegation_to_the_requester_leaves_the_task_with_the_approver(oa):  # noqa: F811
    oa.post_wecom(oa.wecom_peer.text("wangjl", "委托 张三 今天到下周五"))
    assert _title(_nth(oa, "wangjl", 1)) == "已委托"
    _submit_expense(oa)
    assert _title(_nth(oa, "wangjl", 2)) == "待你审批 · 报销"
    assert _tasks(oa) == [("王经理", "pending")]


def test_the_requester_cannot_approve_even_a_task_row_that_names_them(oa):  # noqa: F811
    """Old data (before the guard) may hold such a row: the decision refuses it all the same."""
    _submit_expense(oa)
    _nth(oa, "wangjl", 1)
    with session_scope(oa.runtime.engine) as session:
        task = session.exec(select(ApprovalTask)).one()
        task.approver_id = session.exec(select(Employee).where(Employee.name == "张三")).one().id
        task_id = task.id
    oa.post_wecom(oa.wecom_peer.text("zhangsan", f"#approval.approve {task_id}"))
    assert _title(_nth(oa, "zhangsan", 3)) == "不能审批自己的申请"
    assert _requests(oa)[0].status == "pending"


# -- 2. one involvement guard --------------------------------------------------------------------


OUTSIDER_TRIES = ("#approval.discard {id}", "#approval.show {id}", "#approval.nudge {id}", "#approval.withdraw {id}",
                  "#approval.submit {id}", "#approval.choose {id}", "#approval.approve {task}", "#approval.reject {task}",
                  "#approval.open {task}", "#approval.transfer {task}", "#approval.return {task}",
                  "记录 R-1001", "撤回 R-1001", "催办 R-1001", "同意 R-1001", "拒绝 R-1001 不对", "评论 R-1001 看看",
                  "转交 R-1001 刘总监")


def test_an_outsider_learns_nothing_about_someone_elses_request(oa):  # noqa: F811
    _submit_expense(oa, "报销 招待客户 86.5 元")
    _nth(oa, "wangjl", 1)
    with oa.runtime.engine.connect() as conn:
        task_id = conn.execute(text("SELECT id FROM approval_task")).scalar()
    for n, words in enumerate(OUTSIDER_TRIES, 1):
        oa.post_wecom(oa.wecom_peer.text("lisi", words.format(id=1, task=task_id)))
        answer = _nth(oa, "lisi", n)
        assert _title(answer) == "这不是你的申请", words
        said = _said(answer)
        assert "86.5" not in said and "招待客户" not in said and "王经理" not in said and "张三" not in said, words
    assert _requests(oa)[0].status == "pending" and _tasks(oa) == [("王经理", "pending")]
    assert oa.count("audit_log", "WHERE action LIKE 'approval.%' AND action <> 'approval.submit'") == 0
    refusals = _refusals(oa)
    assert len(refusals) == len(OUTSIDER_TRIES)
    assert {r["why"] for r in refusals} == {"not involved"}
    assert {r["subject"] for r in refusals} == {"approval:1"}
    oa.post_wecom(oa.wecom_peer.text("lisi", "#approval.discard 999"))  # no such request: says only that
    assert _title(_nth(oa, "lisi", len(OUTSIDER_TRIES) + 1)) == "找不到这一单"


def test_a_crafted_card_tap_on_a_draft_is_refused(oa):  # noqa: F811
    oa.post_wecom(oa.wecom_peer.text("zhangsan", "报销 出租车 86.5 元"))
    confirm = _nth(oa, "zhangsan", 1)
    key = next(b["key"] for b in confirm["template_card"]["button_list"] if b["text"] == "取消")
    assert key == "approval.discard|1"
    # 李四 forges the tap with 张三's card's key on a card of his own.
    oa.post_wecom(oa.wecom_peer.card_click("lisi", key, confirm["template_card"]["task_id"], "code-x",
                                           create_time=1_800_000_100))
    answer = _nth(oa, "lisi", 1)
    assert _title(answer) == "这不是你的申请" and "86.5" not in _said(answer)
    assert oa.count("approval_request") == 1


def test_involved_people_get_clear_answers_for_what_is_not_theirs_to_do(oa):  # noqa: F811
    _submit_expense(oa)
    _nth(oa, "wangjl", 1)
    oa.post_wecom(oa.wecom_peer.text("zhangsan", "同意 R-1001"))
    own = _nth(oa, "zhangsan", 3)
    assert _title(own) == "不能审批自己的申请" and "催办 R-1001" in _said(own)
    oa.post_wecom(oa.wecom_peer.text("wangjl", "撤回 R-1001"))
    assert _title(_nth(oa, "wangjl", 2)) == "只有申请人能操作"
    oa.post_wecom(oa.wecom_peer.text("wangjl", "记录 R-1001"))  # the approver may look
    assert _title(_nth(oa, "wangjl", 3)) == "R-1001 · 审批中"
    assert [r["why"] for r in _refusals(oa)] == ["own request", "not the requester"]
    assert _requests(oa)[0].status == "pending"


# -- 5. the 会签 race ------------------------------------------------------------------------------


def _all_of_finance(stack) -> None:
    with session_scope(stack.runtime.engine) as session:
        session.add(ApprovalRule(request_type="报销", priority=1, condition="amount > 1000",
                                 steps=json.dumps([{"approvers": ["manager"], "mode": "any"},
                                                   {"approvers": ["role:finance"], "mode": "all"}])))


def test_hui_qian_needs_every_approver_and_completes_once(oa):  # noqa: F811
    _all_of_finance(oa)
    _submit_expense(oa, "报销 招待客户 3000 元")
    _tap(oa, "wangjl", _nth(oa, "wangjl", 1), "同意")
    _tap(oa, "qian", _nth(oa, "qian", 1), "同意", 1)
    settle()
    assert _requests(oa)[0].status == "pending"  # 郑出纳 has not approved yet
    _tap(oa, "zheng", _nth(oa, "zheng", 1), "同意", 2)
    wait_for(lambda: _requests(oa)[0].status == "approved")


@pytest.mark.skipif(not TEST_DB.startswith("postgresql"), reason="real concurrency needs PostgreSQL")
def test_two_hui_qian_approvers_tapping_at_once_both_count(oa):  # noqa: F811
    _all_of_finance(oa)
    _submit_expense(oa, "报销 招待客户 3000 元")
    _tap(oa, "wangjl", _nth(oa, "wangjl", 1), "同意")
    _nth(oa, "qian", 1), _nth(oa, "zheng", 1)
    results = decide_at_once(oa, [True, True])
    assert results == ["decided", "decided"]
    assert oa.count("approval_task", "WHERE status = 'approved'") == 3  # manager + both of finance
    assert _requests(oa)[0].status == "approved"
    assert oa.count("outbox", "WHERE key LIKE 'approval:done:%'") == 1


# -- 8. refusals are audited ---------------------------------------------------------------------


def test_admin_only_commands_and_departed_people_leave_an_audit_row(oa):  # noqa: F811
    _admin(oa)
    for n, words in enumerate(("规则 crm.owner_cap 1", "审批规则", "离职 王经理 交接给 刘总监"), 1):
        oa.post_wecom(oa.wecom_peer.text("lisi", words))
        assert _title(_nth(oa, "lisi", n)).startswith("只有管理员")
    oa.post_wecom(oa.wecom_peer.text("linhao", "离职 李四 客户进公海"))
    _nth(oa, "linhao", 1)
    oa.post_wecom(oa.wecom_peer.text("lisi", "我的客户"))
    assert _title(_nth(oa, "lisi", 4)) == "账号已停用"
    with oa.runtime.engine.connect() as conn:
        lisi = conn.execute(text("SELECT id FROM employee WHERE name = '李四'")).scalar()
    assert [(r["actor"], r["attempted"], r["why"]) for r in _refusals(oa)] == [
        (lisi, "rules", "not an admin"), (lisi, "approval_rules", "not an admin"),
        (lisi, "employee.depart", "not an admin"), (lisi, "message", "departed")]
