"""The console's rule form (/admin/rules/new, /admin/rules/<id>/edit): fields in Chinese only,
validation that names the field and stores nothing, 发布 as a new audited version, 试算 of the
unsaved edit next to today's chain, a kept version's dry run, and requests in flight keeping the
chain they were given — admins only, every POST with the form token."""

from __future__ import annotations

import html
import json
import re

from chat import Chat, rows
from storage.db import session_scope
from storage.models import ApprovalRule

from test_console import company, employee, refusals, signed_in  # noqa: F401  (fixture)
from test_console_rules import chain_labels, csrf_of, text_of, with_finance


def rule_state(stack) -> list:
    """Everything a save would touch: the rules, their versions, the audit of rule changes."""
    return (rows(stack, "SELECT id, request_type, priority, condition, steps, cc, no_approver, active, version "
                        "FROM approval_rule ORDER BY id"),
            rows(stack, "SELECT rule_id, version FROM approval_rule_version ORDER BY id"),
            rows(stack, "SELECT id FROM audit_log WHERE action LIKE 'approval_rule.%'"))


def edit_form(client, rule_id: int | None = None) -> tuple[str, dict]:
    """The form's page and what it would post as it stands (its selected values)."""
    url = f"/admin/rules/{rule_id}/edit" if rule_id else "/admin/rules/new"
    answer = client.get(url)
    assert answer.status_code == 200, answer.status_code
    markup = answer.get_data(as_text=True)
    data: dict = {"csrf": csrf_of(markup)}
    for name, value in re.findall(r'<input type="(?:hidden|text)"[^>]* name="(\w+)" value="([^"]*)"', markup):
        data[name] = html.unescape(value)
    for name, body in re.findall(r'<select name="(\w+)"[^>]*>(.*?)</select>', markup, re.S):
        picked = [html.unescape(v) for v in re.findall(r'<option value="([^"]*)" selected', body)]
        data[name] = picked[0] if picked else ""
    for name in ("cc", "cc_after"):
        data[name] = checked(markup, name)
    return markup, data


def checked(markup: str, name: str) -> list[str]:
    return [html.unescape(v) for v in re.findall(rf'name="{name}" value="([^"]*)" checked', markup)]


def post(client, rule_id: int | None, data: dict, **changes):
    url = f"/admin/rules/{rule_id}/edit" if rule_id else "/admin/rules/new"
    return client.post(url, data={**data, "action": "发布", **changes})


def test_the_form_speaks_chinese_and_holds_the_rule(company):  # noqa: F811
    with session_scope(company.runtime.engine) as session:
        session.add(ApprovalRule(request_type="请假", priority=30, condition='days > 5 and department == "销售部"',
                                 steps='[{"approvers": ["manager:2", "role:hr"], "mode": "all"}]',
                                 cc='["role:finance", "after:dept_head"]', no_approver="auto_pass"))
    client = signed_in(company, "zhaozong")
    new_id = rows(company, "SELECT max(id) FROM approval_rule")[0][0]
    markup, data = edit_form(client, new_id)
    for code in ("manager:", "role:", "dept_head", "auto_pass", "after:", "finance", '"hr"', "chosen"):
        assert code not in markup, code
    shown = text_of(markup)
    for word in ("直属上级", "上上级", "部门负责人", "申请人自选", "会签", "任一人", "所有类型", "自动通过", "启用"):
        assert word in shown, word
    assert data["type"] == "请假" and data["days_op0"] == ">" and data["days0"] == "5"
    assert data["department"] == "销售部" and data["department_op"] == "=="
    assert (data["step1_kind"], data["step1_mode"]) == ("上上级", "会签")
    assert (data["step2_kind"], data["step2_role"], data.get("step2_join")) == ("角色", "人事", None)
    assert 'name="step2_join" value="1" checked' in markup  # 人事 approves in the same step as 上上级
    assert checked(markup, "cc") == ["财务"] and checked(markup, "cc_after") == ["部门负责人"] and data["no_approver"] == "自动通过"
    before = rule_state(company)
    assert post(client, new_id, data, step2_join="1").headers["Location"].endswith("saved=same")
    assert rule_state(company) == before  # the same rule read back: nothing new to publish


def test_a_bad_form_names_the_field_keeps_the_input_and_stores_nothing(company):  # noqa: F811
    client = signed_in(company, "zhaozong")
    _, data = edit_form(client, 2)
    before = rule_state(company)
    answer = post(client, 2, data, amount0="一千块", step2_kind="指定人", step2_person="", step2_role="")
    assert answer.status_code == 400
    markup = answer.get_data(as_text=True)
    shown = text_of(markup)
    assert "金额：「一千块」不是数字" in shown and "第2步：请选择审批人" in shown and "没有保存" in shown
    assert 'value="一千块"' in markup and '<option value="指定人" selected' in markup  # kept as typed
    answer = post(client, 2, data, step1_kind="", step2_kind="", step2_role="")
    assert "第1步：请选择审批人（至少要有一步）" in text_of(answer.get_data(as_text=True))
    answer = post(client, 2, data, more='<script>alert(1)</script>')
    markup = answer.get_data(as_text=True)
    assert answer.status_code == 400 and "<script>alert(1)" not in markup and "&lt;script&gt;" in markup
    assert "条件：" in text_of(markup)  # the chat's own check (chain.check_rule), naming the field
    answer = post(client, 2, data, step2_kind="角色", step2_role="")
    assert "第2步：请选择角色" in text_of(answer.get_data(as_text=True))
    answer = post(client, 2, data, no_approver="指定人", no_approver_person="")
    assert "找不到审批人时：请选择审批人" in text_of(answer.get_data(as_text=True))
    assert rule_state(company) == before


def test_publishing_makes_a_new_version_audited_with_before_and_after(company):  # noqa: F811
    with_finance(company)
    client = signed_in(company, "zhaozong")
    _, data = edit_form(client, 2)
    answer = post(client, 2, data, amount0="5000", step2_mode="会签", cc=["财务"], cc_after=["直属上级"])
    assert answer.status_code == 302
    shown = text_of(client.get(answer.headers["Location"]).get_data(as_text=True))
    assert "已发布第2版" in shown and "新申请按新版本" in shown
    with session_scope(company.runtime.engine) as session:
        rule = session.get(ApprovalRule, 2)
        assert (rule.version, rule.condition) == (2, "金额 > 5000")
        assert json.loads(rule.steps) == [{"approvers": ["manager"], "mode": "any"},
                                          {"approvers": ["role:finance"], "mode": "all"}]
        assert json.loads(rule.cc) == ["role:finance", "after:manager"]
    assert rows(company, "SELECT version FROM approval_rule_version WHERE rule_id = 2 ORDER BY version") == [(1,), (2,)]
    (detail, platform), = rows(company, "SELECT detail, platform FROM audit_log WHERE action = 'approval_rule.edit'")
    change = json.loads(detail)
    assert platform == "web" and change["before"]["condition"] == "amount > 1000"
    assert change["after"]["condition"] == "金额 > 5000" and change["after"]["version"] == 2
    history = text_of(client.get("/admin/rules/2/history").get_data(as_text=True))
    assert "条件：金额 > 1000 → 金额 > 5000" in history and "第2步：财务 → 财务（会签）" in history
    stale = post(client, 2, data, amount0="6000")  # the form still says version 1
    assert stale.status_code == 400 and "这条规则刚被改过（现在是第2版）" in text_of(stale.get_data(as_text=True))


def test_a_new_rule_is_placed_and_a_rule_that_never_applies_is_flagged(company):  # noqa: F811
    client = signed_in(company, "zhaozong")
    _, data = edit_form(client)
    answer = post(client, None, data, type="报销", amount_op0=">", amount0="5000", step1_kind="直属上级",
                  step2_kind="角色", step2_role="总经理")
    new_id = int(re.search(r"/rules/(\d+)/edit", answer.headers["Location"]).group(1))
    shown = text_of(client.get(answer.headers["Location"]).get_data(as_text=True))
    assert "已发布第1版" in shown and "这条新规则排在 #2 前面" in shown and "⚠" not in shown
    assert rows(company, f"SELECT action FROM audit_log WHERE subject = 'approval_rule:{new_id}' ORDER BY id") == [
        ("approval_rule.create",), ("approval_rule.edit",)]
    _, data = edit_form(client, 2)
    answer = post(client, 2, data, amount_op0="<=", amount0="500")  # #1 (金额 <= 1000) always comes first
    shown = text_of(client.get(answer.headers["Location"]).get_data(as_text=True))
    assert "已发布第2版" in shown and "⚠ 这条规则永远不会生效：#1 总是先匹配" in shown


def test_the_dry_run_shows_the_unsaved_edit_next_to_the_chain_of_today(company):  # noqa: F811
    with_finance(company)
    client = signed_in(company, "zhaozong")
    zhang, boss = employee(company, "张三"), employee(company, "赵总")
    _, data = edit_form(client, 2)
    before = rule_state(company)
    answer = client.post("/admin/rules/2/edit", data={
        **data, "action": "试算", "step2_kind": "指定人", "step2_person": str(boss.id), "try_type": "报销",
        "try_amount": "3000", "try_requester": str(zhang.id)})
    assert answer.status_code == 200
    shown = text_of(answer.get_data(as_text=True))
    now, then = shown.split("现在（已发布的规则）")[1].split("修改后（未发布）")
    assert "符合规则 #2（本规则） （报销 · 金额 > 1000）" in now and "审批人： 王经理 → 财务 钱会计" in now
    assert "#2（本规则）" in then and "审批人： 王经理 → 赵总" in then and "钱会计" not in then
    assert rule_state(company) == before  # a dry run stores nothing
    # A new rule is tried where publishing would put it: in front of #2, which would otherwise win.
    _, data = edit_form(client)
    shown = text_of(client.post("/admin/rules/new", data={
        **data, "action": "试算", "amount_op0": ">", "amount0": "2000", "step1_kind": "指定人",
        "step1_person": str(boss.id), "try_type": "报销", "try_amount": "3000",
        "try_requester": str(zhang.id)}).get_data(as_text=True))
    assert "这条新规则" in shown.split("加上这条新规则后")[1] and "审批人： 赵总" in shown
    shown = text_of(client.post("/admin/rules/2/edit", data={**data, "action": "试算", "try_type": "报销",
                                                            "try_amount": "三千", "try_requester": ""}
                                ).get_data(as_text=True))
    assert "金额：「三千」不是数字" in shown and "申请人：请从名单里选一位同事" in shown
    assert rule_state(company) == before


def test_a_kept_version_can_be_dry_run(company):  # noqa: F811
    with_finance(company)
    client = signed_in(company, "zhaozong")
    zhang = employee(company, "张三")
    _, data = edit_form(client, 2)
    post(client, 2, data, step1_kind="", step2_kind="角色", step2_role="财务")  # 财务 only
    history = client.get("/admin/rules/2/history").get_data(as_text=True)
    assert "/admin/rules/2/versions/try?version=1" in history
    shown = text_of(client.get(f"/admin/rules/2/versions/try?version=1&type=报销&amount=3000&requester={zhang.id}"
                               ).get_data(as_text=True))
    now, then = shown.split("现在（已发布的规则）")[1].split("如果用第1版")
    assert "审批人： 财务 钱会计" in now and "王经理" not in now
    assert "审批人： 王经理 → 财务 钱会计" in then
    assert "版本：没有第9版" in text_of(client.get("/admin/rules/2/versions/try?version=9").get_data(as_text=True))


def test_a_pending_request_keeps_its_chain_after_a_publish(company):  # noqa: F811
    with_finance(company)
    zhang = Chat(company, "wecom", "zhangsan")
    zhang.tap(zhang.say("报销 打车 3000"), "提交")
    assert chain_labels(company) == [["直属上级", "财务"]]
    client = signed_in(company, "zhaozong")
    _, data = edit_form(client, 2)
    assert post(client, 2, data, step1_kind="", step2_mode="会签").status_code == 302  # now: 财务 (会签) only
    assert chain_labels(company) == [["直属上级", "财务"]]  # pinned at submission
    zhang.tap(zhang.say("报销 住宿 3000"), "提交")
    assert chain_labels(company) == [["直属上级", "财务"], ["财务"]]
    modes = [json.loads(c)[-1]["mode"] for (c,) in rows(company, "SELECT chain FROM approval_request ORDER BY id")]
    assert modes == ["any", "all"]


def test_only_admins_edit_rules_and_every_post_needs_the_form_token(company):  # noqa: F811
    client = signed_in(company, "zhaozong")
    _, data = edit_form(client, 2)
    before = rule_state(company)
    manager = signed_in(company, "wangjl")
    assert manager.get("/admin/rules/2/edit").status_code == 403
    assert manager.get("/admin/rules/new").status_code == 403
    token = csrf_of(manager.get("/admin/").get_data(as_text=True))
    assert post(manager, 2, {**data, "csrf": token}, amount0="1").status_code == 403
    assert any('"why": "not_admin"' in d for d in refusals(company, "POST /admin/rules/2/edit"))
    assert any('"why": "not_admin"' in d for d in refusals(company, "GET /admin/rules/new"))
    assert post(client, 2, {k: v for k, v in data.items() if k != "csrf"}, amount0="1").status_code == 400
    assert any('"why": "csrf_missing"' in d for d in refusals(company, "POST /admin/rules/2/edit"))
    assert client.post("/admin/rules/new", data={**data, "csrf": "0" * 32}).status_code == 400
    assert rule_state(company)[0] == before[0] and rule_state(company)[1] == before[1]
    assert client.get("/admin/rules/999/edit").status_code == 404
    listing = client.get("/admin/rules").get_data(as_text=True)
    assert 'href="/admin/rules/new"' in listing and 'href="/admin/rules/2/edit"' in listing


def test_what_the_fields_cannot_hold_stays_in_words_and_means_the_same(company):  # noqa: F811
    with session_scope(company.runtime.engine) as session:
        session.add(ApprovalRule(request_type="采购", priority=5,
                                 condition='department in ["销售部", "财务部"] and (amount > 100 or days > 2) '
                                           'and amount <= 900 and category == "电脑"',
                                 steps='[{"approvers": ["manager"], "mode": "any"}]', cc="[]", no_approver="admin"))
    client = signed_in(company, "zhaozong")
    rule_id = rows(company, "SELECT max(id) FROM approval_rule")[0][0]
    markup, data = edit_form(client, rule_id)
    assert data["more"] == '部门 in ["销售部", "财务部"] 且 (金额 > 100 或 天数 > 2) 且 类别 == "电脑"'
    assert (data["amount_op0"], data["amount0"]) == ("<=", "900")
    answer = post(client, rule_id, data, type="所有类型")  # and moved to every type
    assert answer.status_code == 302, text_of(answer.get_data(as_text=True))
    with session_scope(company.runtime.engine) as session:
        rule = session.get(ApprovalRule, rule_id)
        assert (rule.request_type, rule.version) == ("*", 2)
        assert rule.condition == '金额 <= 900 且 (部门 in ["销售部", "财务部"] 且 (金额 > 100 或 天数 > 2) 且 类别 == "电脑")'
    from workflows.approvals.conditions import matches
    facts = {"department": "销售部", "amount": 500, "days": None, "category": "电脑"}
    assert matches(rule.condition, facts) and not matches(rule.condition, {**facts, "amount": 50})
    history = text_of(client.get(f"/admin/rules/{rule_id}/history").get_data(as_text=True))
    assert "类型：采购 → 所有类型" in history and "顺序（优先级）" in history
