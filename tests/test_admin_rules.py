"""规则 in chat: admins list and set the company's rules in friendly forms; a bad value is refused
naming the field and stores nothing; everyone else is politely turned away."""

from __future__ import annotations

import pytest

from conftest import wait_for
from sim_company import PLATFORMS, Chat, seed_team, sh
from storage.db import session_scope
from workflows import rules


@pytest.fixture(params=PLATFORMS)
def office(request, stack_factory):
    stack = stack_factory(clock=lambda: sh(24, 10))
    seed_team(stack, request.param, at=sh(24, 10))
    return stack, Chat(stack, request.param)


def _ask(chat, user, words):
    before = len(chat.messages(user))
    chat.say(user, words)
    return wait_for(lambda: len(chat.messages(user)) > before and chat.messages(user)[before])


def _rule(stack, name):
    with session_scope(stack.runtime.engine) as session:
        return rules.get(session, name), rules.version(session, name)


def test_only_admins_see_or_change_rules(office):
    stack, chat = office
    for words in ("规则", "规则 crm.owner_cap 1"):
        reply = _ask(chat, "zhangsan", words)
        assert reply["title"] == "只有管理员能改规则" and "联系管理员" in reply["text"]
    assert _rule(stack, "crm.owner_cap") == (200, 0)
    assert stack.count("audit_log", "WHERE action = 'rule.edit'") == 0


def test_the_listing_shows_every_rule_with_its_value(office):
    stack, chat = office
    listing = _ask(chat, "admin01", "规则")
    assert listing["title"] == "规则"
    for spec in rules.SPECS.values():
        assert spec.label in listing["text"] and spec.name in listing["text"]
    assert "A 7天 / B 14天 / C 30天" in listing["text"] and "21:00–08:00，08:30 补发" in listing["text"]


@pytest.mark.parametrize("words, name, value", [
    ("规则 crm.overdue_days A=5 B=10 C=20", "crm.overdue_days", {"A": 5, "B": 10, "C": 20}),
    ("规则 超期未跟进天数 4 8 16", "crm.overdue_days", {"A": 4, "B": 8, "C": 16}),
    ("规则 crm.pool_days B=50", "crm.pool_days", {"A": 30, "B": 50, "C": 60}),  # others kept
    ("规则 免打扰时段 22:00-07:30 08:00", "crm.quiet_hours", {"start": "22:00", "end": "07:30", "release": "08:00"}),
    ("规则 免打扰时段 22:00-7:30", "crm.quiet_hours", {"start": "22:00", "end": "07:30", "release": "07:30"}),
    ("规则 crm.skip_weekends 否", "crm.skip_weekends", False),
    ("规则 crm.deal_stages 初步接触,方案报价,商务谈判,赢单,输单", "crm.deal_stages",
     ["初步接触", "方案报价", "商务谈判", "赢单", "输单"]),
    ("规则 crm.owner_cap 100", "crm.owner_cap", 100),
    ("规则 owner_cap 120家", "crm.owner_cap", 120),
    ("规则 oa.auto_decide 通用 72 approve", "oa.auto_decide", {"通用": {"hours": 72, "decision": "approve"}}),
    ("规则 oa.auto_decide 报销 48小时 拒绝；请假 24 同意", "oa.auto_decide",
     {"报销": {"hours": 48, "decision": "reject"}, "请假": {"hours": 24, "decision": "approve"}}),
    ("规则 oa.auto_decide 无", "oa.auto_decide", {}),
    ("规则 工作时间 8:30-17:30", "oa.working_hours", {"start": "08:30", "end": "17:30"}),
])
def test_friendly_forms_are_stored_and_audited(office, words, name, value):
    stack, chat = office
    reply = _ask(chat, "admin01", words)
    assert reply["title"] == f"已修改 · {rules.SPECS[name].label}"
    assert _rule(stack, name) == (value, 1)
    assert stack.count("audit_log", f"WHERE action = 'rule.edit' AND subject = 'rule:{name}' "
                                    "AND actor_id IS NOT NULL") == 1


@pytest.mark.parametrize("words, name, says", [
    ("规则 crm.deal_stages 初步接触,方案报价", "crm.deal_stages", "商机阶段：必须包含「赢单」和「输单」"),
    ("规则 crm.overdue_days A=0", "crm.overdue_days", "超期未跟进天数 A级：应为 1–3650 之间的整数"),
    ("规则 crm.owner_cap 很多", "crm.owner_cap", "每人最多持有客户数：应为整数"),
    ("规则 crm.skip_weekends 也许", "crm.skip_weekends", "周末和节假日不推送提醒：应为 是/否"),
    ("规则 免打扰时段 晚上", "crm.quiet_hours", "免打扰时段："),
    ("规则 免打扰时段 25:00-07:00", "crm.quiet_hours", "免打扰时段 开始：时间格式应为 HH:MM"),
    ("规则 oa.auto_decide 报账 72 同意", "oa.auto_decide", "到期自动处理的申请类型 申请类型：不认识「报账」"),
    ("规则 oa.auto_decide 通用 72", "oa.auto_decide", "请写成「类型 小时数 同意/拒绝」，如 通用 72 同意"),
    ("规则 oa.auto_decide 通用 72 也许", "oa.auto_decide", "到期自动处理的申请类型 通用 处理方式：应为 同意 或 拒绝"),
    ("规则 oa.auto_decide 通用 9999 同意", "oa.auto_decide", "通用 小时数：应为 1–720 之间的整数"),
    ("规则 oa.working_hours 18:00-09:00", "oa.working_hours", "工作时间（提醒只在此时段发）：上班时间要早于下班时间"),
    ("规则 oa.working_hours 九点", "oa.working_hours", "请写成「上班-下班」，如 09:00-18:00"),
])
def test_a_bad_value_names_the_field_and_stores_nothing(office, words, name, says):
    stack, chat = office
    audited = stack.count("audit_log")
    reply = _ask(chat, "admin01", words)
    assert reply["title"] == "没有保存" and says in reply["text"]
    assert _rule(stack, name) == (rules.SPECS[name].default, 0)
    assert stack.count("audit_log") == audited


def test_a_rule_named_alone_shows_its_value_and_how_to_set_it(office):
    stack, chat = office
    reply = _ask(chat, "admin01", "规则 宽限天数")  # part of the label is enough when it is unique
    assert reply["title"] == "超期提醒升级给经理前的宽限天数"
    assert "crm.overdue_grace_days 现在是：2" in reply["text"] and "规则 crm.overdue_grace_days 2" in reply["text"]
    assert stack.count("rule") == 0


def test_an_unknown_rule_is_named_back(office):
    stack, chat = office
    reply = _ask(chat, "admin01", "规则 不存在的规则 5")
    assert reply["title"] == "没有这条规则" and "不存在的规则" in reply["text"]
    assert stack.count("rule") == 0


def test_auto_decide_reads_back_in_words_in_the_listing(office):
    stack, chat = office
    reply = _ask(chat, "admin01", "规则 oa.auto_decide 通用 72 approve")
    assert "通用 72小时未处理自动同意" in reply["text"]
    listing = _ask(chat, "admin01", "规则")
    assert "到期自动处理的申请类型：通用 72小时未处理自动同意" in listing["text"]
    assert "工作时间（提醒只在此时段发）：09:00–18:00" in listing["text"]
