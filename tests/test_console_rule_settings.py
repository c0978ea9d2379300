"""The other rules in the console (/admin/rules/settings/<name>): a form that fits each value, saved
through the same checks as chat (the field named, what was typed kept, nothing stored on error),
audited with before/after, 恢复默认; and every rule as one YAML file (/admin/rules.yaml, /admin/rules/import,
`banli rules export|import`): preview per rule, problems named, one transaction, a bad file changes nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import yaml
from sqlalchemy import select

from chat import rows
from storage.db import session_scope
from storage.models import ApprovalRule, Employee
from workflows import rules

from test_console import company, csrf_of, refusals, signed_in  # noqa: F401  (fixture)
from test_console_rules import text_of


def rule(stack, name: str):
    with session_scope(stack.runtime.engine) as session:
        return rules.get(session, name)


def edits(stack, name: str) -> list[dict]:
    return [json.loads(d) for (d,) in rows(stack, "SELECT detail FROM audit_log WHERE action = 'rule.edit' "
                                                  f"AND subject = 'rule:{name}' ORDER BY id")]


def form_page(client, name: str) -> tuple[str, str]:
    answer = client.get(f"/admin/rules/settings/{name}")
    assert answer.status_code == 200, answer.status_code
    markup = answer.get_data(as_text=True)
    return markup, csrf_of(markup.encode())


def save(client, name: str, **fields):
    _, csrf = form_page(client, name)
    return client.post(f"/admin/rules/settings/{name}", data={"csrf": csrf, **fields})


# -- one rule's form ---------------------------------------------------------------------------------


def test_the_rules_page_links_each_other_rule_to_its_form(company):  # noqa: F811
    client = signed_in(company, "zhaozong")
    markup = client.get("/admin/rules").get_data(as_text=True)
    assert markup.count('id="other-rules"') == 1
    section = markup[markup.index('id="other-rules"'):]
    for spec in rules.SPECS.values():
        assert f'href="/admin/rules/settings/{spec.name}"' in section
    shown = text_of(form_page(client, "crm.overdue_days")[0])
    assert "超期未跟进天数" in shown and "A 级客户" in shown and "现在是： A 7天 / B 14天 / C 30天 （默认）" in shown


def test_a_bad_number_is_named_kept_in_the_form_and_nothing_is_stored(company):  # noqa: F811
    client = signed_in(company, "zhaozong")
    answer = save(client, "crm.overdue_days", A="5", B="十天", C="20")
    assert answer.status_code == 400
    markup = answer.get_data(as_text=True)
    assert "超期未跟进天数 B级：应为 1–3650 之间的整数" in text_of(markup)
    assert 'name="B" value="十天"' in markup and 'name="A" value="5"' in markup  # what was typed, kept
    assert rule(company, "crm.overdue_days") == {"A": 7, "B": 14, "C": 30} and edits(company, "crm.overdue_days") == []


def test_a_good_value_is_saved_audited_and_shown(company):  # noqa: F811
    client = signed_in(company, "zhaozong")
    answer = save(client, "crm.overdue_days", A="5", B="10", C="20")
    assert answer.status_code == 302 and answer.headers["Location"].endswith("saved=crm.overdue_days#other-rules")
    assert rule(company, "crm.overdue_days") == {"A": 5, "B": 10, "C": 20}
    shown = text_of(client.get(answer.headers["Location"]).get_data(as_text=True))
    assert "已保存「超期未跟进天数」" in shown and "A 5天 / B 10天 / C 20天" in shown
    (logged,) = edits(company, "crm.overdue_days")
    assert logged["before"] == {"A": 7, "B": 14, "C": 30} and logged["after"] == {"A": 5, "B": 10, "C": 20}
    (platform, actor), = rows(company, "SELECT a.platform, e.name FROM audit_log a JOIN employee e "
                                       "ON e.id = a.actor_id WHERE a.action = 'rule.edit'")
    assert (platform, actor) == ("web", "赵总")


def test_each_kind_of_value_has_its_form(company):  # noqa: F811
    client = signed_in(company, "zhaozong")
    cases = [
        ("crm.skip_weekends", {"value": "no"}, False),
        ("crm.owner_cap", {"value": "150"}, 150),
        ("crm.followup_hour", {"value": "9:30"}, "09:30"),
        ("crm.quiet_hours", {"start": "22:00", "end": "07:30", "release": "08:00"},
         {"start": "22:00", "end": "07:30", "release": "08:00"}),
        ("oa.working_hours", {"start": "08:30", "end": "17:30"}, {"start": "08:30", "end": "17:30"}),
        ("crm.deal_stages", {"value": "线索\n试用\n赢单\n输单"}, ["线索", "试用", "赢单", "输单"]),
        ("oa.extra_holidays", {"value": "2027-01-16\n2027年1月15日"}, ["2027-01-15", "2027-01-16"]),
        ("oa.auto_decide", {"hours_通用": "72", "decision_通用": "reject", "hours_报销": "", "decision_报销": "approve"},
         {"通用": {"hours": 72, "decision": "reject"}}),
    ]
    for name, fields, expected in cases:
        answer = save(client, name, **fields)
        assert answer.status_code == 302, (name, text_of(answer.get_data(as_text=True))[:300])
        assert rule(company, name) == expected, name
    # The form shows the stored value again: 同意/驳回 chosen, hours filled in.
    markup = form_page(client, "oa.auto_decide")[0]
    assert 'name="hours_通用" value="72"' in markup and '<option value="reject" selected>驳回</option>' in markup


def test_bad_values_of_each_kind_name_the_field(company):  # noqa: F811
    client = signed_in(company, "zhaozong")
    cases = [
        ("oa.working_hours", {"start": "18:00", "end": "09:00"}, "工作时间（提醒只在此时段发）：上班时间要早于下班时间"),
        ("crm.quiet_hours", {"start": "25:00", "end": "07:30", "release": "08:00"}, "免打扰时段 开始：时间格式应为 HH:MM"),
        ("crm.deal_stages", {"value": "线索 赢单"}, "商机阶段：必须包含「赢单」和「输单」"),
        ("oa.extra_holidays", {"value": "明天"}, "公司自定假日：「明天」不是日期"),
        ("oa.auto_decide", {"hours_合同": "9999", "decision_合同": "approve"}, "到期自动处理的申请类型 合同 小时数：应为 1–720"),
        ("crm.skip_weekends", {}, "周末和节假日不推送提醒：应为 是/否"),
    ]
    for name, fields, message in cases:
        answer = save(client, name, **fields)
        assert answer.status_code == 400, name
        assert message in text_of(answer.get_data(as_text=True)), name
        assert rule(company, name) == rules.SPECS[name].default and edits(company, name) == [], name


def test_what_was_typed_is_text(company):  # noqa: F811
    client = signed_in(company, "zhaozong")
    answer = save(client, "crm.deal_stages", value="<i>x</i>\n赢单\n输单")
    assert answer.status_code == 302
    markup = client.get("/admin/rules").get_data(as_text=True)
    assert "<i>x</i>" not in markup and "&lt;i&gt;x&lt;/i&gt;" in markup
    bad = save(client, "crm.owner_cap", value="<script>1</script>").get_data(as_text=True)
    assert "<script>1" not in bad and "&lt;script&gt;1&lt;/script&gt;" in bad


def test_put_back_to_the_default(company):  # noqa: F811
    client = signed_in(company, "zhaozong")
    save(client, "crm.pool_warn_days", value="7")
    markup, csrf = form_page(client, "crm.pool_warn_days")
    assert "恢复默认" in markup
    answer = client.post("/admin/rules/settings/crm.pool_warn_days/reset", data={"csrf": csrf})
    assert answer.status_code == 302 and rule(company, "crm.pool_warn_days") == 3
    assert edits(company, "crm.pool_warn_days")[-1] == {"before": 7, "after": 3, "reset": True}
    assert "恢复默认" not in form_page(client, "crm.pool_warn_days")[0]  # already the default


def test_only_admins_edit_rules_and_every_post_needs_the_form_token(company):  # noqa: F811
    manager = signed_in(company, "wangjl")
    assert manager.get("/admin/rules/settings/crm.owner_cap").status_code == 403
    csrf = csrf_of(manager.get("/admin/").get_data())
    assert manager.post("/admin/rules/settings/crm.owner_cap", data={"csrf": csrf, "value": "1"}).status_code == 403
    assert manager.post("/admin/rules/import/confirm", data={"csrf": csrf, "text": "其他规则: {}"}).status_code == 403
    assert manager.get("/admin/rules.yaml").status_code == 403
    assert any('"why": "not_admin"' in d for d in refusals(company, "POST /admin/rules/settings/crm.owner_cap"))
    admin = signed_in(company, "zhaozong")
    assert admin.post("/admin/rules/settings/crm.owner_cap", data={"value": "1"}).status_code == 400
    assert admin.post("/admin/rules/import/confirm", data={"text": "其他规则: {crm.owner_cap: 1}"}).status_code == 400
    assert any('"why": "csrf_missing"' in d for d in refusals(company, "POST /admin/rules/settings/crm.owner_cap"))
    assert rule(company, "crm.owner_cap") == 200
    assert admin.get("/admin/rules/settings/crm.nothing").status_code == 404


# -- YAML export / import ----------------------------------------------------------------------------


def exported(client) -> str:
    answer = client.get("/admin/rules.yaml")
    assert answer.status_code == 200 and "attachment; filename=banli-rules-" in answer.headers["Content-Disposition"]
    return answer.get_data(as_text=True)


def preview(client, text: str):
    csrf = csrf_of(client.get("/admin/rules/import").get_data())
    return client.post("/admin/rules/import", data={"csrf": csrf, "text": text})


def confirm(client, markup: str):
    import html
    import re

    text = html.unescape(re.search(r'<textarea name="text" hidden>(.*?)</textarea>', markup, re.S).group(1))
    digest = re.search(r'name="digest" value="([0-9a-f]+)"', markup).group(1)
    return client.post("/admin/rules/import/confirm", data={"csrf": csrf_of(markup.encode()), "text": text,
                                                              "digest": digest})


def state(stack) -> list:
    return rows(stack, "SELECT id, request_type, priority, condition, steps, cc, no_approver, active, version "
                       "FROM approval_rule ORDER BY id") + rows(stack, "SELECT name, value FROM rule ORDER BY name")


def test_an_exported_file_reads_in_chat_words_and_imports_as_no_changes(company):  # noqa: F811
    client = signed_in(company, "zhaozong")
    text = exported(client)
    data = yaml.safe_load(text)
    reimburse = data["审批路由"]["报销"]
    assert [r["条件"] for r in reimburse] == ["金额 <= 1000", "金额 > 1000"]  # the order they are tried
    assert reimburse[1]["审批"] == "直属上级 → 财务" and reimburse[1]["找不到审批人时"] == "管理员"
    assert data["其他规则"]["crm.quiet_hours"] == {"开始": "21:00", "结束": "08:00", "补发时间": "08:30"}
    assert "# 超期未跟进天数" in text
    before = state(company)
    shown = text_of(preview(client, text).get_data(as_text=True))
    assert "没有改动：文件里的规则和现在的一样" in shown and "确认导入" not in shown
    assert state(company) == before


def test_an_edited_file_shows_each_change_then_applies_it_with_history(company):  # noqa: F811
    client = signed_in(company, "zhaozong")
    text = exported(client)
    text = text.replace("    审批: 直属上级 → 财务\n", "    审批: 直属上级 → 财务(会签)\n    抄送: 法务\n", 1)
    text = text.replace("crm.owner_cap: 200", "crm.owner_cap: 150")
    text = text.replace("oa.auto_decide: {}", "oa.auto_decide: {通用: {小时: 72, 自动: 驳回}}")
    text = text.replace("  请假:\n", "  请假:\n  - 条件: 天数 > 10\n    审批: 直属上级 → 总经理\n    优先级: 5\n", 1)
    answer = preview(client, text)
    assert answer.status_code == 200
    markup = answer.get_data(as_text=True)
    shown = text_of(markup)
    assert "报销 #2 修改 审批：「直属上级 → 财务」改为「直属上级 → 财务(会签)」 抄送：「—」改为「法务」" in shown
    assert "每人最多持有客户数（crm.owner_cap） 修改 「200」改为「150」" in shown
    assert "请假 新规则 新增" in shown and "条件：天数 > 10" in shown
    assert "超期未跟进天数（crm.overdue_days） 不变" in shown
    assert "到期自动处理的申请类型（oa.auto_decide） 修改 「无（都等人审批）」改为「通用 72小时未处理自动拒绝」" in shown
    assert "确认导入（改动 4 条）" in shown
    assert rule(company, "crm.owner_cap") == 200  # a preview changes nothing
    done = confirm(client, markup)
    assert done.status_code == 302 and done.headers["Location"].endswith("done=4")
    assert rule(company, "crm.owner_cap") == 150
    assert rule(company, "oa.auto_decide") == {"通用": {"hours": 72, "decision": "reject"}}
    (steps, cc, version), = rows(company, "SELECT steps, cc, version FROM approval_rule WHERE id = 2")
    assert json.loads(steps)[1]["mode"] == "all" and json.loads(cc) == ["role:legal"] and version == 2
    history = text_of(client.get("/admin/rules/2/history").get_data(as_text=True))
    assert "第2版" in history
    (priority, condition), = rows(company, "SELECT priority, condition FROM approval_rule "
                                           "WHERE request_type = '请假' AND condition LIKE '%10%'")
    assert priority == 5
    (logged,), = rows(company, "SELECT detail FROM audit_log WHERE action = 'rules.import'")
    assert "其他规则 每人最多持有客户数（crm.owner_cap）" in logged
    # A fresh export of the new rules reads back as no changes.
    assert "没有改动" in text_of(preview(client, exported(client)).get_data(as_text=True))


def test_a_bad_file_names_the_problem_and_changes_nothing(company):  # noqa: F811
    client = signed_in(company, "zhaozong")
    good = exported(client)
    before = state(company)
    cases = [
        ("审批路由:\n  报销: [\n其他规则: {}", "文件：第 "),
        (good.replace("crm.owner_cap: 200", "crm.owner_limit: 200"), "其他规则 crm.owner_limit：没有这条规则"),
        (good.replace("crm.pool_days: {A: 30", "crm.pool_days: {A: 2"), "其他规则 crm.pool_days 未跟进退回公海天数 A级：应为 4–3650"),
        (good.replace("crm.followup_hour: 09:00", "crm.followup_hour: 9点"), "下次跟进默认时间（只说日期时）：时间格式应为 HH:MM"),
        (good.replace("oa.auto_decide: {}", "oa.auto_decide: {合同: {小时: 8, 自动: 好的}}"),
         "其他规则 oa.auto_decide 到期自动处理的申请类型 合同 处理方式：应为 同意（approve）或 驳回（reject）"),
        (good.replace("结束: '08:00'", "结束: 8点"), "其他规则 crm.quiet_hours 免打扰时段 结束：时间格式应为 HH:MM"),
        (good.replace("审批: 直属上级 → 财务\n", "审批: 直属上级 → 王不存在\n", 1), "审批路由 报销 #2 审批人：不认识「王不存在」"),
        (good.replace("编号: 2\n", "编号: 99\n", 1), "审批路由 报销 第2条 编号：#99 没有这条规则"),
        (good.replace("条件: 金额 > 1000", "条件: 金额 >> 1000", 1), "审批路由 报销 #2 条件："),
        (good.replace("  报销:\n", "  报帐:\n", 1), "审批路由 报帐：不认识这个申请类型"),
        ("a: &x [1, 1]\nb: &y [*x, *x]\n其他规则: {crm.owner_cap: *y}", "文件：第 2 行不是有效的 YAML（不能用别名（*名字））"),
    ]
    for text, problem in cases:
        answer = preview(client, text)
        shown = text_of(answer.get_data(as_text=True))
        assert answer.status_code == 400 and problem in shown, (problem, shown[:600])
        assert "确认导入" not in shown
    # Sent straight to 确认导入 (no preview), a bad file is refused whole: the good change in it is not made.
    csrf = csrf_of(client.get("/admin/rules/import").get_data())
    text = good.replace("crm.owner_cap: 200", "crm.owner_cap: 150").replace("crm.pool_warn_days: 3", "crm.pool_warn_days: 99")
    answer = client.post("/admin/rules/import/confirm", data={"csrf": csrf, "text": text})
    assert answer.status_code == 409 and "没有改动任何规则" in text_of(answer.get_data(as_text=True))
    assert state(company) == before
    assert refusals(company, "rules.import")


def test_confirming_after_the_rules_changed_shows_the_new_preview(company):  # noqa: F811
    client = signed_in(company, "zhaozong")
    markup = preview(client, exported(client).replace("crm.owner_cap: 200", "crm.owner_cap: 150")).get_data(as_text=True)
    save(client, "crm.claims_per_day", value="9")  # someone else's edit in between
    answer = confirm(client, markup)
    assert answer.status_code == 409 and "规则在预览之后被改过" in text_of(answer.get_data(as_text=True))
    assert rule(company, "crm.owner_cap") == 200


def test_the_banli_rules_commands(company, tmp_path):  # noqa: F811
    env = {**os.environ, "DATABASE_URL": company.runtime.settings.database_url, "PYTHONIOENCODING": "utf-8"}
    env.pop("REDIS_URL", None)

    def banli(*args):
        return subprocess.run([sys.executable, "-m", "banli.cli", "rules", *args], env=env, capture_output=True,
                              text=True, encoding="utf-8", timeout=60, cwd=tmp_path, stdin=subprocess.DEVNULL)

    done = banli("export", str(tmp_path / "rules.yaml"))
    assert done.returncode == 0, done.stdout + done.stderr
    path = tmp_path / "rules.yaml"
    same = banli("import", str(path))
    assert same.returncode == 0 and "没有改动" in same.stdout
    path.write_text(path.read_text(encoding="utf-8").replace("crm.owner_cap: 200", "crm.owner_cap: 120"), encoding="utf-8")
    asked = banli("import", str(path))  # no terminal to answer: shown, not applied
    assert asked.returncode == 0 and "「200」改为「120」" in asked.stdout and "--yes" in asked.stdout
    assert rule(company, "crm.owner_cap") == 200
    applied = banli("import", str(path), "--yes")
    assert applied.returncode == 0 and "改动了 1 条" in applied.stdout, applied.stdout + applied.stderr
    assert rule(company, "crm.owner_cap") == 120
    path.write_text("其他规则: {crm.owner_cap: 0}", encoding="utf-8")
    bad = banli("import", str(path), "--yes")
    assert bad.returncode == 1 and "每人最多持有客户数：应为 1–100000" in bad.stdout
    assert rule(company, "crm.owner_cap") == 120
    assert banli("import", str(tmp_path / "none.yaml")).returncode == 2
    assert rows(company, "SELECT platform FROM audit_log WHERE action = 'rule.edit'") == [("cli",)]


def test_every_kind_of_routing_rule_reads_back_as_it_is(company):  # noqa: F811
    with session_scope(company.runtime.engine) as session:
        zhang = session.execute(select(Employee).where(Employee.name == "张三")).scalar_one()
        session.add_all([
            ApprovalRule(request_type="*", priority=99, condition="", no_approver=f"person:{zhang.id}",
                         steps='[{"approvers": ["manager:2", "dept_head"], "mode": "all"}, '
                               '{"approvers": ["chosen"], "mode": "any"}]',
                         cc=f'["role:legal", "after:person:{zhang.id}"]'),
            ApprovalRule(request_type="采购", priority=30, condition='amount > 100 and department == "销售一部"',
                         steps='[{"approvers": ["role:finance"]}]', cc="[]", no_approver="auto_pass", active=False)])
    client = signed_in(company, "zhaozong")
    text = exported(client)
    wildcard = yaml.safe_load(text)["审批路由"]["通配"][0]
    assert wildcard["审批"] == "第2级上级、部门负责人(会签) → 申请人自选"
    assert (wildcard["抄送"], wildcard["通过后抄送"], wildcard["找不到审批人时"]) == ("法务", "张三", "张三")
    assert '条件: 金额 > 100 且 部门 == "销售一部"' in text and "启用: 否" in text
    before = state(company)
    shown = text_of(preview(client, text).get_data(as_text=True))
    assert "没有改动" in shown, shown[:800]
    # Left out of the file, a rule is kept (and the preview says so); 启用: 否 stops one.
    text = text.replace("    启用: 是\n", "    启用: 否\n", 1)  # the first rule: 报销 #1
    kept = text.index("  - 编号: 2\n")
    text = text[:kept] + text[text.index("  请假:\n"):]
    markup = preview(client, text).get_data(as_text=True)
    shown = text_of(markup)
    assert "报销 #1 修改 启用：「是」改为「否」" in shown
    assert "报销 #2 文件里没有，保留不变 导入不会删除规则" in shown
    assert state(company) == before
    assert confirm(client, markup).status_code == 302
    assert rows(company, "SELECT id, active FROM approval_rule WHERE id IN (1, 2) ORDER BY id") == [(1, False), (2, True)]


def test_a_time_typed_without_quotes_stays_a_time(company):  # noqa: F811
    # YAML 1.1 would read 22:00 as the number 1320 (base 60); a person editing the file writes it so.
    client = signed_in(company, "zhaozong")
    text = exported(client).replace("开始: '21:00'", "开始: 22:00").replace("crm.followup_hour: 09:00",
                                                                       "crm.followup_hour: 10:30")
    shown = text_of(preview(client, text).get_data(as_text=True))
    assert "「21:00–08:00，08:30 补发」改为「22:00–08:00，08:30 补发」" in shown and "「09:00」改为「10:30」" in shown
