"""Routing rules keep their history: every save (chat 审批规则, the console's ↑/↓) is a new version,
and the console's history page says in words what changed between consecutive versions."""

from __future__ import annotations

import json

from sqlalchemy import select

from chat import Chat
from storage.db import session_scope
from storage.models import ApprovalRule, ApprovalRuleVersion

from test_console import company, session_for, signed_in  # noqa: F401  (fixture)
from test_console_rules import text_of, with_finance


def versions_of(stack, rule_id: int) -> list[dict]:
    with session_scope(stack.runtime.engine) as session:
        kept = session.execute(select(ApprovalRuleVersion).where(ApprovalRuleVersion.rule_id == rule_id)
                               .order_by(ApprovalRuleVersion.version)).scalars()
        return [json.loads(v.data) | {"_v": v.version} for v in kept]


def test_a_chat_edit_keeps_the_old_and_the_new_version(company):  # noqa: F811
    with_finance(company)
    reply = Chat(company, "wecom", "zhaozong").say("审批规则 修改 2 金额 > 5000：直属上级 → 财务(会签)")
    assert "已修改" in reply.title + reply.text, reply.text
    kept = versions_of(company, 2)
    assert [v["_v"] for v in kept] == [1, 2]
    assert kept[0]["condition"] != kept[1]["condition"] and kept[1]["steps"][1]["mode"] == "all"
    with session_scope(company.runtime.engine) as session:
        assert session.get(ApprovalRule, 2).version == 2


def test_the_history_page_shows_the_diff_in_words(company):  # noqa: F811
    with_finance(company)
    Chat(company, "wecom", "zhaozong").say("审批规则 修改 2 金额 > 5000：直属上级 → 财务(会签)")
    client = signed_in(company, "zhaozong")
    answer = client.get("/admin/rules/2/history")
    assert answer.status_code == 200
    shown = text_of(answer.get_data(as_text=True))
    assert "第2版" in shown and "赵总" in shown
    assert "条件：金额 > 1000 → 金额 > 5000" in shown
    assert "第2步：财务 → 财务（会签）" in shown
    assert "amount" not in shown
    rules_page = text_of(client.get("/admin/rules").get_data(as_text=True))
    assert "第2版 · 历史" in rules_page


def test_a_reorder_is_a_new_version_too(company):  # noqa: F811
    client = signed_in(company, "zhaozong")
    csrf = __import__("test_console").csrf_of(client.get("/admin/rules").get_data())
    assert client.post("/admin/rules/2/up", data={"csrf": csrf}).status_code == 302
    shown = text_of(client.get("/admin/rules/2/history").get_data(as_text=True))
    assert "顺序（优先级）：" in shown


def test_only_admins_read_a_rules_history(company):  # noqa: F811
    assert session_for(company, "张三").get("/admin/rules/2/history").status_code == 403
    assert signed_in(company, "wangjl").get("/admin/rules/2/history").status_code == 403
    assert signed_in(company, "zhaozong").get("/admin/rules/999/history").status_code == 404
