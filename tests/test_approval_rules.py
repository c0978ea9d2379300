"""Admins edit approval routing in the chat: `审批规则` lists, adds, changes, stops rules; a bad
rule is refused naming the bad part and nothing is stored; each edit is audited; only admins may."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text

from conftest import wait_for
from storage.db import session_scope
from storage.models import Employee, Identity
from workflows import roles

from test_approvals import SATURDAY_1130, oa  # noqa: F401  (the company fixture)


@pytest.fixture
def admin(oa):  # noqa: F811
    with session_scope(oa.runtime.engine) as session:
        boss = Employee(name="林管理", department="行政部", synced_at=SATURDAY_1130)
        session.add(boss)
        session.flush()
        roles.grant(session, boss, "admin")
        session.add(Identity(platform="wecom", user_id="linhao", employee_id=boss.id))
        session.add(Identity(platform="dingtalk", user_id="0147014", employee_id=boss.id))
    return oa


def _say(stack, user, words, n):
    stack.post_wecom(stack.wecom_peer.text(user, words))
    message = wait_for(lambda: len(stack.wecom.messages_to(user)) >= n and stack.wecom.messages_to(user))[n - 1]
    return json.dumps(message, ensure_ascii=False)


def _rules(stack):
    with stack.runtime.engine.connect() as conn:
        return conn.execute(text("SELECT id, request_type, condition, steps, active, version FROM approval_rule "
                                 "ORDER BY id")).all()


def test_the_list_shows_every_rule_in_words(admin):
    said = _say(admin, "linhao", "审批规则", 1)  # a WeCom text: < and > arrive full-width, as ＜ ＞
    # Seeded `amount <= 1000` and typed `金额 > 5000` read the same way: in Chinese.
    assert "#1 报销 金额 ＜= 1000：直属上级" in said
    assert "#2 报销 金额 ＞ 1000：直属上级 → 财务" in said
    assert "#6 请假 天数 ＞ 3：直属上级 → 部门负责人" in said
    assert "amount" not in said and "days" not in said


def test_an_admin_adds_a_rule_in_words_and_the_next_request_follows_it(admin):
    said = _say(admin, "linhao", "审批规则 新增 采购 金额 > 50000：直属上级 → 财务(会签) → 总经理 抄送 法务", 1)
    assert "已新增" in said and "直属上级 → 财务(会签) → 总经理 抄送法务" in said
    # Behind "amount > 5000" it could never apply, so it goes in front of it (the answer says so).
    new_id = _rules(admin)[-1].id
    assert "排在 #9（金额 > 5000）前面" in said
    said = _say(admin, "zhangsan", "谁审批 采购 服务器 80000", 1)
    assert "王经理 → 财务 钱会计/郑出纳(会签) → 总经理 陈总" in said
    with admin.runtime.engine.connect() as conn:
        actions = conn.execute(text("SELECT action FROM audit_log WHERE subject = :s ORDER BY id"),
                               {"s": f"approval_rule:{new_id}"}).scalars().all()
    assert actions == ["approval_rule.create", "approval_rule.edit"]


@pytest.mark.parametrize("words, named", [
    ("审批规则 新增 报销 金额 > 5000：王大锤", "审批人：不认识「王大锤」"),
    ("审批规则 新增 报销 金钱 > 5000：财务", "条件："),
    ("审批规则 新增 报销 部门 == 销售部：财务", "文字要加引号"),
    ("审批规则 新增 报账 金额 > 5000：财务", "类型：不认识「报账」"),
    ("审批规则 新增 报销 金额 > 5000：", "审批步骤"),
    ("审批规则 修改 99 金额 > 5000：财务", "编号"),
])
def test_a_bad_rule_is_refused_naming_the_part_and_nothing_changes(admin, words, named):
    before, audited = _rules(admin), admin.count("audit_log")
    said = _say(admin, "linhao", words, 1)
    assert "规则没有保存" in said and named in said
    assert _rules(admin) == before
    assert admin.count("audit_log") == audited


def test_changing_and_stopping_a_rule(admin):
    _say(admin, "linhao", "审批规则 修改 1 金额 <= 1000：财务", 1)
    (rule_id, _, condition, steps, active, version) = _rules(admin)[0]
    assert condition == "金额 <= 1000" and json.loads(steps) == [{"approvers": ["role:finance"], "mode": "any"}]
    assert version == 2
    assert "财务 钱会计/郑出纳(或签)" in _say(admin, "zhangsan", "谁审批 报销 500", 1)
    _say(admin, "linhao", "审批规则 停用 1", 2)
    # With #1 stopped, nothing matches a small expense any more: it goes to the admins.
    assert "林管理" in _say(admin, "zhangsan", "谁审批 报销 500", 2)


def test_only_admins_may_edit(admin):
    said = _say(admin, "zhangsan", "审批规则 停用 1", 1)
    assert "只有管理员能改" in said
    assert all(r.active for r in _rules(admin))


def test_from_dingtalk_too(admin):
    admin.post_dingtalk(admin.dingtalk_peer.text("0147014", "审批规则 新增 通用 类别 == \"用章\"：法务"))
    message = wait_for(lambda: admin.dingtalk.messages_to("0147014"))[0]
    assert message["title"].startswith("已新增")


def test_cc_at_submission_and_after_approval(admin):
    _say(admin, "linhao", "审批规则 修改 1 金额 <= 1000：直属上级 抄送 刘总监 通过后抄送 钱会计", 1)
    said = _say(admin, "linhao", "审批规则", 2)
    assert "#1 报销 金额 ＜= 1000：直属上级 抄送刘总监 通过后抄送钱会计" in said  # WeCom text: no < or >
    admin.post_wecom(admin.wecom_peer.text("zhangsan", "报销 打车 50"))
    confirm = wait_for(lambda: admin.wecom.messages_to("zhangsan"))[0]
    card = confirm["template_card"]
    key = next(b["key"] for b in card["button_list"] if b["text"] == "提交")
    admin.post_wecom(admin.wecom_peer.card_click("zhangsan", key, card["task_id"],
                                                 admin.wecom.issue_response_code(card["task_id"])))
    told = wait_for(lambda: admin.wecom.messages_to("director"))[0]
    assert "抄送给你" in json.dumps(told, ensure_ascii=False)
    assert admin.wecom.messages_to("qian") == []  # not before it is approved
    task = wait_for(lambda: admin.wecom.messages_to("wangjl"))[0]["template_card"]
    key = next(b["key"] for b in task["button_list"] if b["text"] == "同意")
    admin.post_wecom(admin.wecom_peer.card_click("wangjl", key, task["task_id"],
                                                 admin.wecom.issue_response_code(task["task_id"])))
    after = wait_for(lambda: admin.wecom.messages_to("qian"))[0]
    assert "已审批通过，抄送给你" in json.dumps(after, ensure_ascii=False)


def test_a_step_of_the_requesters_choice(admin):
    _say(admin, "linhao", "审批规则 修改 5 天数 <= 3：申请人自选", 1)
    admin.post_wecom(admin.wecom_peer.text("zhangsan", "请假 事假 下周一"))
    confirm = wait_for(lambda: admin.wecom.messages_to("zhangsan"))[0]["template_card"]
    assert "（你来选）" in json.dumps(confirm, ensure_ascii=False)
    key = next(b["key"] for b in confirm["button_list"] if b["text"] == "选审批人")
    admin.post_wecom(admin.wecom_peer.card_click("zhangsan", key, confirm["task_id"],
                                                 admin.wecom.issue_response_code(confirm["task_id"])))
    wait_for(lambda: len(admin.wecom.messages_to("zhangsan")) >= 2)
    said = _say(admin, "zhangsan", "李四", 3)
    assert "预计审批人" in said and "李四" in said and "提交" in said
    assert admin.count("approval_request", "WHERE status = 'draft'") == 1


def test_a_narrower_rule_is_put_before_the_one_that_would_always_win(admin):
    """`金额 > 5000` added after `金额 > 1000` would never apply: it goes in front, and the answer says so."""
    said = _say(admin, "linhao", "审批规则 新增 报销 金额 > 5000：直属上级 → 财务 → 总经理", 1)
    new_id = _rules(admin)[-1].id
    assert f"已新增 · 规则#{new_id}" in said and "排在 #2（金额 > 1000）前面" in said
    assert "⚠" not in said
    assert "总经理 陈总" in _say(admin, "zhangsan", "谁审批 报销 8000", 1)
    assert "总经理" not in _say(admin, "zhangsan", "谁审批 报销 3000", 2)  # #2 still takes 1000–5000
    listing = _say(admin, "linhao", "审批规则", 2)
    assert listing.index(f"#{new_id} 报销") < listing.index("#2 报销") and "⚠" not in listing
    with admin.runtime.engine.connect() as conn:
        placed = conn.execute(text("SELECT detail FROM audit_log WHERE subject = :s AND action = 'approval_rule.edit'"),
                              {"s": f"approval_rule:{new_id}"}).scalar_one()
    assert json.loads(placed)["before"]["priority"] > json.loads(placed)["after"]["priority"]


def test_a_rule_that_can_never_apply_is_named_in_the_answer_and_the_list(admin):
    said = _say(admin, "linhao", "审批规则 新增 报销 金额 > 5000 且 金额 < 3000：财务", 1)
    new_id = _rules(admin)[-1].id
    assert f"⚠ #{new_id} 永远不会生效：条件不可能成立" in said and f"审批规则 优先级 {new_id}" in said
    # Moving #2 (金额 > 1000) in front of #1 takes every small expense from #1: both the answer and the list say so.
    said = _say(admin, "linhao", "审批规则 优先级 2 5", 2)
    assert "⚠ #1 永远不会生效：#2 总是先匹配" not in said  # #2 > 1000 and #1 <= 1000 do not overlap
    said = _say(admin, "linhao", "审批规则 修改 2 ：直属上级 → 财务", 3)  # no condition: takes everything
    assert "⚠ #1 永远不会生效：#2 总是先匹配" in said
    listing = _say(admin, "linhao", "审批规则", 4)
    assert "#1 报销 金额 ＜= 1000：直属上级\\n  ⚠ 永远不会生效：#2 总是先匹配" in listing


def test_placing_a_rule_between_neighbouring_priorities_moves_the_later_ones_down(admin):
    _say(admin, "linhao", "审批规则 优先级 2 11", 1)  # #1 at 10, #2 at 11: no number in between
    said = _say(admin, "linhao", "审批规则 新增 报销 金额 > 5000：直属上级 → 财务 → 总经理", 2)
    assert "排在 #2（金额 > 1000）前面" in said
    with admin.runtime.engine.connect() as conn:
        order = conn.execute(text("SELECT id, priority FROM approval_rule WHERE request_type = '报销' "
                                  "ORDER BY priority, id")).all()
    new_id = _rules(admin)[-1].id
    assert [rule_id for rule_id, _ in order] == [1, new_id, 2]
    assert len({priority for _, priority in order}) == 3
    assert "总经理 陈总" in _say(admin, "zhangsan", "谁审批 报销 8000", 1)
    assert "总经理" not in _say(admin, "zhangsan", "谁审批 报销 2000", 2)
