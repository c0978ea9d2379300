"""The console's rules page (/admin/rules): routing rules in the order they are tried, each as a
chain in words, a warning on a rule that can never apply, a dry run through the planner 谁审批 uses,
and the other rules with their values — admins only."""

from __future__ import annotations

import html
import re


from chat import Chat
from storage.db import session_scope
from storage.models import ApprovalRule, Employee
from workflows import roles

from test_console import company, employee, refusals, session_for, signed_in  # noqa: F401  (fixture)


def page(client, query: str = "") -> str:
    answer = client.get("/admin/rules" + query)
    assert answer.status_code == 200, answer.status_code
    return answer.get_data(as_text=True)


def text_of(markup: str) -> str:
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", markup)))


def with_finance(stack, name: str = "钱会计") -> None:
    with session_scope(stack.runtime.engine) as session:
        person = Employee(name=name, department="财务部")
        session.add(person)
        session.flush()
        roles.grant(session, person, "finance")


def test_rules_in_order_as_readable_chains(company):  # noqa: F811
    shown = text_of(page(signed_in(company, "zhaozong")))
    assert "审批路由" in shown and "规则" in shown
    # 报销: the seeded `amount <= 1000` reads in Chinese, first; then 金额 > 1000 with finance.
    first, second = shown.index("金额 <= 1000"), shown.index("金额 > 1000")
    assert first < second
    assert "申请人 → 直属上级 → 财务" in shown
    routing = shown[shown.index("审批路由 报销"):shown.index("其他规则")]
    assert "amount" not in routing and "days" not in routing
    assert "其他规则" in shown and "到期自动处理的申请类型" in shown and "无（都等人审批）" in shown
    assert "超期未跟进天数" in shown and "A 7天 / B 14天 / C 30天" in shown


def test_a_rule_that_can_never_apply_is_flagged(company):  # noqa: F811
    with session_scope(company.runtime.engine) as session:
        session.add(ApprovalRule(request_type="报销", priority=90, condition="金额 > 5000",
                                 steps='[{"approvers": ["role:ceo"], "mode": "all"}]', cc="[]", no_approver="admin"))
    shown = text_of(page(signed_in(company, "zhaozong")))
    at = shown.index("金额 > 5000")
    assert "⚠ 永远不会生效：#2 总是先匹配" in shown[at:at + 200]
    assert "申请人 → 总经理（会签）" in shown


def test_the_dry_run_gives_the_chain_that_who_approves_gives(company):  # noqa: F811
    with_finance(company)
    client = signed_in(company, "zhaozong")
    zhang = employee(company, "张三")
    shown = text_of(page(client, f"?type=报销&amount=3000&days=&requester={zhang.id}"))
    assert "符合规则 #2 （报销 · 金额 > 1000）" in shown
    assert "审批人： 王经理 → 财务 钱会计" in shown
    chat = Chat(company, "wecom", "zhangsan").say("谁审批 报销 3000")
    assert "王经理 → 财务 钱会计" in chat.text  # the same planner, the same answer
    small = text_of(page(client, f"?type=报销&amount=300&requester={zhang.id}"))
    assert "符合规则 #1" in small and "审批人： 王经理" in small and "钱会计" not in small.split("审批人：")[1][:30]


def test_the_dry_run_names_a_bad_field_and_escapes_what_was_typed(company):  # noqa: F811
    client = signed_in(company, "zhaozong")
    answer = client.get("/admin/rules?type=报销&amount=<script>alert(1)</script>&requester=")
    markup = answer.get_data(as_text=True)
    assert answer.status_code == 200
    assert "<script>alert(1)" not in markup and "&lt;script&gt;" in markup
    shown = text_of(markup)
    assert "金额：「<script>alert(1)</sc」不是数字" in shown and "申请人：请从名单里选一位同事" in shown
    assert "符合规则" not in shown
    shown = text_of(page(client, "?type=报账&amount=5&requester=999999"))
    assert "类型：请选择" in shown
    shown = text_of(page(client, "?type=报销&amount=5&requester=999999"))
    assert "申请人：这位同事不在名单里" in shown


def test_a_rule_written_with_html_is_shown_as_text(company):  # noqa: F811
    with session_scope(company.runtime.engine) as session:
        session.add(ApprovalRule(request_type="通用", priority=1, condition='类别 == "<b>用章</b>"',
                                 steps='[{"approvers": ["manager"], "mode": "any"}]', cc="[]", no_approver="admin"))
    markup = signed_in(company, "zhaozong").get("/admin/rules").get_data(as_text=True)
    assert "<b>用章</b>" not in markup and "&lt;b&gt;用章&lt;/b&gt;" in markup


def test_only_admins_open_the_rules_page(company):  # noqa: F811
    manager = signed_in(company, "wangjl")
    assert manager.get("/admin/rules").status_code == 403
    assert "/admin/rules" not in manager.get("/admin/").get_data(as_text=True)  # no nav link either
    assert any('"why": "not_admin"' in d for d in refusals(company, "GET /admin/rules"))
    assert "/admin/rules" in signed_in(company, "zhaozong").get("/admin/").get_data(as_text=True)


# -- reordering ------------------------------------------------------------------------------------


def csrf_of(markup: str) -> str:
    return re.search(r'name="csrf" value="([0-9a-f]+)"', markup).group(1)


def chain_labels(stack) -> list[list[str]]:
    import json

    from chat import rows
    return [[step["label"] for step in json.loads(chain)]
            for (chain,) in rows(stack, "SELECT chain FROM approval_request WHERE status = 'pending' ORDER BY id")]


def test_moving_a_rule_up_changes_new_requests_but_not_pending_ones(company):  # noqa: F811
    with_finance(company)
    zhang = Chat(company, "wecom", "zhangsan")
    confirm = zhang.say("报销 打车 3000")
    zhang.tap(confirm, "提交")
    assert chain_labels(company) == [["直属上级", "财务"]]
    admin_chat = Chat(company, "wecom", "zhaozong")
    added = admin_chat.say("审批规则 新增 报销 ：财务")  # no condition: the last 报销 rule, for what has no amount
    new_id = int(re.search(r"规则#(\d+)", added.title).group(1))

    client = signed_in(company, "zhaozong")
    for _ in range(2):  # above #2, then above #1
        token = csrf_of(page(client))
        answer = client.post(f"/admin/rules/{new_id}/up", data={"csrf": token})
        assert answer.status_code == 302 and f"#rule-{new_id}" in answer.headers["Location"]
    shown = text_of(page(client, f"?moved={new_id}:up"))
    assert f"#{new_id} 已上移一位" in shown
    section = shown[shown.index("审批路由 报销"):shown.index("审批路由 报销") + 600]
    assert section.index(f"#{new_id}") < section.index("#1 ") < section.index("#2 ")
    assert "⚠ 永远不会生效：#" in section  # #1 and #2 now never apply, and the page says so

    assert "财务 钱会计" in zhang.say("谁审批 报销 3000").text and "王经理" not in zhang.say("谁审批 报销 3000").text
    assert chain_labels(company) == [["直属上级", "财务"]]  # the pending one keeps its pinned chain
    later = zhang.say("报销 住宿 3000")
    zhang.tap(later, "提交")
    assert chain_labels(company) == [["直属上级", "财务"], ["财务"]]

    from chat import rows
    moves = [d for (d,) in rows(company, "SELECT detail FROM audit_log WHERE action = 'approval_rule.edit' "
                                         "AND detail LIKE '%\"before\"%' ORDER BY id")]
    assert len(moves) >= 4  # each move: both rules, each with before and after


def test_a_move_without_the_form_token_is_refused_and_changes_nothing(company):  # noqa: F811
    from chat import rows
    before = rows(company, "SELECT id, priority FROM approval_rule ORDER BY id")
    client = signed_in(company, "zhaozong")
    assert client.post("/admin/rules/2/up", data={}).status_code == 400
    assert client.post("/admin/rules/2/up", data={"csrf": "0" * 32}).status_code == 400
    manager = signed_in(company, "wangjl")
    assert manager.post("/admin/rules/2/up", data={"csrf": csrf_of(manager.get("/admin/").get_data(as_text=True))}
                        ).status_code == 403
    assert rows(company, "SELECT id, priority FROM approval_rule ORDER BY id") == before
    first = client.post("/admin/rules/1/up", data={"csrf": csrf_of(page(client))})  # already first: nothing moves
    assert "1:stay" in first.headers["Location"]
    assert rows(company, "SELECT id, priority FROM approval_rule ORDER BY id") == before
    assert "没有移动" in text_of(page(client, "?moved=1:stay"))
    assert client.get("/admin/rules?moved=junk").status_code == 200
