"""Roles: the first admin comes from BANLI_ADMINS and is one on their very first message; admins set
roles in chat by their Chinese names (`角色 张会计 财务`); a person may hold several; approval rules
route to and match on them; the last admin cannot be removed; `banli admins` does it from a shell."""

from __future__ import annotations

import json
import os
import re

import pytest
from alembic import command
from sqlalchemy import text

from banli.cli import main
from banli.settings import Settings
from chat import Chat, rows
from conftest import wait_for
from storage.db import make_engine, session_scope
from storage.migrate import alembic_config
from storage.models import Employee, Identity
from workflows import roles
from workflows.approvals.conditions import matches

# Per platform: the admin BANLI_ADMINS names, someone asking who approves (and their manager), and
# the colleague who becomes 财务 — all known only to the platform's directory stand-in at the start.
PEOPLE = {
    "wecom": dict(admin="zhaozong", admin_name="赵总", asker="zhangsan", manager="王经理",
                  finance="zhangkj", finance_name="张会计"),
    "dingtalk": dict(admin="0147002", admin_name="周经理", asker="0147001", manager="周经理",
                     finance="0147011", finance_name="钱会计"),
}


def _fresh(stack_factory, admins="zhaozong"):
    """An empty database and BANLI_ADMINS=`admins`; WeCom's directory also knows 张会计 in 财务部."""
    stack = stack_factory(admins=Settings.from_env(env={"BANLI_ADMINS": admins}).admins)
    stack.wecom.users = {**stack.wecom.users,
                         "zhangkj": {"name": "张会计", "department": [3], "main_department": 3, "direct_leader": []}}
    stack.wecom.departments = {**stack.wecom.departments, 3: "财务部"}
    return stack


def _synced(stack, *names):
    """Wait until the directory has been read for these people (names, departments, managers)."""
    wanted = ", ".join(f"'{n}'" for n in names)
    wait_for(lambda: rows(stack, f"SELECT count(*) FROM employee WHERE name IN ({wanted}) "
                                 "AND synced_at IS NOT NULL")[0][0] == len(names))


def _roles_of(stack, name):
    return sorted(r for (r,) in rows(stack, "SELECT r.role FROM employee_role r JOIN employee e ON e.id = r.employee_id "
                                            f"WHERE e.name = '{name}'"))


def _audit(stack, action):
    return [(a, json.loads(d)) for a, d in rows(stack, "SELECT actor_id, detail FROM audit_log "
                                                       f"WHERE action = '{action}' ORDER BY id")]


@pytest.mark.parametrize("platform", ["wecom", "dingtalk"])
def test_on_a_fresh_database_the_env_admin_names_finance_and_who_approves_then_names_them(stack_factory, platform):
    p = PEOPLE[platform]
    stack = _fresh(stack_factory, f"{platform}:{p['admin']}")
    admin, asker = Chat(stack, platform, p["admin"]), Chat(stack, platform, p["asker"])
    first = admin.say("角色 列表")  # their very first message, before the directory has been read
    assert first.title.startswith("角色 ·") and "管理员：" in first.text
    assert [d["source"] for _, d in _audit(stack, "role.grant")] == ["env"]
    Chat(stack, platform, p["finance"]).say("你好")
    asker.say("你好")
    _synced(stack, p["finance_name"], p["manager"])
    before = asker.say("谁审批 采购 9000")
    assert p["finance_name"] not in before.text

    granted = admin.say(f"角色 {p['finance_name']} 财务")
    assert granted.title == f"已设为财务 · {p['finance_name']}" and "现在的角色：财务" in granted.text
    after = asker.say("谁审批 采购 9000")
    assert f"{p['manager']} → 财务 {p['finance_name']}" in after.text
    assert _roles_of(stack, p["finance_name"]) == ["finance"]
    grants = _audit(stack, "role.grant")
    assert grants[-1][1] == {"role": "finance", "name": "财务", "source": "admin"}
    assert grants[-1][0] is not None  # the admin who did it


def test_one_person_holds_several_roles_and_rules_match_any_of_them(stack_factory):
    stack = _fresh(stack_factory)
    boss, manager, rep = (Chat(stack, "wecom", u) for u in ("zhaozong", "wangjl", "zhangsan"))
    boss.say("你好")
    rep.say("你好")  # the directory brings in 王经理 (张三's manager) too
    _synced(stack, "张三", "王经理")
    both = boss.say("角色 王经理 销售经理、管理员")
    assert both.title == "已设为销售经理、管理员 · 王经理"
    assert boss.say("角色 赵总 老板").title == "已设为总经理 · 赵总"  # an alias, shown by its name
    shown = boss.say("角色 王经理")
    assert "现在的角色：管理员、销售经理" in shown.text
    assert _roles_of(stack, "赵总") == ["admin", "ceo"]

    assert manager.say("审批规则").title.startswith("审批规则 ·")  # 管理员 among his roles: allowed
    typo = manager.say('审批规则 新增 采购 角色 == "销售精力"：总经理')
    assert typo.title == "规则没有保存" and "角色：不认识「销售精力」" in typo.text and "销售经理" in typo.text
    added = manager.say('审批规则 新增 采购 角色 == "销售经理"：总经理')
    rule = re.search(r"规则#(\d+)", added.title).group(1)
    manager.say(f"审批规则 优先级 {rule} 1")
    assert "总经理 赵总" in manager.say("谁审批 采购 3000").text  # 销售经理 is one of his two roles
    theirs = rep.say("谁审批 采购 3000").text
    assert "王经理" in theirs and "总经理" not in theirs

    listing = boss.say("角色 列表").text
    assert "管理员：赵总、王经理" in listing and "总经理：赵总" in listing and "销售经理：王经理" in listing


def test_a_non_admin_is_refused_and_the_refusal_is_audited(stack_factory):
    stack = _fresh(stack_factory)
    rep = Chat(stack, "wecom", "zhangsan")
    for words in ("角色 张三 管理员", "角色 列表"):
        refused = rep.say(words)
        assert refused.title == "只有管理员能设置角色" and "你现在的角色：没有设置" in refused.text
    assert _roles_of(stack, "张三") == []
    assert [d["attempted"] for _, d in _audit(stack, "refused")] == ["roles", "roles"]
    assert _audit(stack, "role.grant") == []


def test_the_last_admin_keeps_the_admin_role(stack_factory):
    stack = _fresh(stack_factory)
    boss, manager = Chat(stack, "wecom", "zhaozong"), Chat(stack, "wecom", "wangjl")
    boss.say("你好")
    manager.say("你好")
    _synced(stack, "赵总", "王经理")
    kept = boss.say("角色 赵总 去掉 管理员")
    assert kept.title == "不能去掉最后一位管理员" and "先给另一位同事「管理员」角色" in kept.text
    assert _roles_of(stack, "赵总") == ["admin"]
    boss.say("角色 王经理 管理员")
    removed = manager.say("角色 赵总 去掉 管理员")
    assert removed.title == "已去掉管理员 · 赵总" and "BANLI_ADMINS" in removed.text  # he would be back
    assert _roles_of(stack, "赵总") == []
    assert manager.say("角色 王经理 去掉 管理员").title == "不能去掉最后一位管理员"
    assert [d["role"] for _, d in _audit(stack, "role.revoke")] == ["admin"]


@pytest.mark.parametrize("platform", ["wecom", "dingtalk"])
def test_two_colleagues_with_one_name_are_told_apart_by_a_tap(stack_factory, platform):
    stack = _fresh(stack_factory, f"{platform}:{PEOPLE[platform]['admin']}")
    with session_scope(stack.runtime.engine) as session:
        session.add_all([Employee(name="张会计", department="财务部"), Employee(name="张会计", department="销售一部")])
    admin = Chat(stack, platform, PEOPLE[platform]["admin"])
    which = admin.say("角色 张会计 财务")
    assert which.title == "有 2 位叫「张会计」" and "张会计·财务部" in which.buttons
    assert rows(stack, "SELECT count(*) FROM employee_role WHERE role = 'finance'")[0][0] == 0
    done = admin.tap(which, "张会计·财务部")
    assert done.title == "已设为财务 · 张会计" and "财务部" in done.text
    assert rows(stack, "SELECT e.department FROM employee_role r JOIN employee e ON e.id = r.employee_id "
                       "WHERE r.role = 'finance'") == [("财务部",)]
    unknown = admin.say("角色 王大锤 财务")
    assert unknown.title == "找不到这位同事" and "全名" in unknown.text
    no_role = admin.say("角色 张会计 厨师")
    assert no_role.title == "没有这个角色" and "不认识「厨师」" in no_role.text and "销售经理" in no_role.text


def test_role_conditions_read_chinese_names_aliases_and_the_old_ids():
    held = {"role": frozenset({"admin", "sales_manager"})}
    assert matches('角色 == "销售经理"', held) and matches('role == "sales_manager"', held)
    assert matches('角色 in ["财务", "管理员"]', held) and not matches('角色 == "财务"', held)
    assert matches('角色 != "会计"', held) and not matches('角色 != "销售经理"', held)
    assert not matches('角色 == "销售经理"', {"role": frozenset()})


def test_banli_admins_is_read_from_the_environment():
    admins = Settings.from_env(env={"BANLI_ADMINS": "zhangsan, wecom:lisi，dingtalk:0147001 other:x"}).admins
    assert admins == (("", "zhangsan"), ("wecom", "lisi"), ("dingtalk", "0147001"), ("", "other:x"))
    assert Settings.from_env(env={}).admins == ()


@pytest.fixture
def shell(database_url, monkeypatch):
    """Two people who have written to Banli once; the CLI runs against their database."""
    engine = make_engine(database_url)
    with session_scope(engine) as session:
        for name, platform, user in (("张三", "wecom", "zhangsan"), ("李四", "dingtalk", "0147001"),
                                     ("王五", "wecom", "same"), ("赵六", "dingtalk", "same")):
            person = Employee(name=name)
            session.add(person)
            session.flush()
            session.add(Identity(platform=platform, user_id=user, employee_id=person.id))
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("BANLI_ADMINS", "")
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.chdir(os.path.dirname(__file__))  # no stray .env from the working directory
    yield engine
    engine.dispose()


def _cli(capsys, *args):
    code = main(["admins", *args])
    return code, capsys.readouterr().out


def test_the_admins_command_grants_lists_and_revokes_idempotently(shell, capsys):
    assert _cli(capsys, "list")[1].startswith("还没有管理员 no admins yet")
    code, said = _cli(capsys, "grant", "zhangsan")
    assert code == 0 and "已设为管理员 now an admin: 张三 (zhangsan)" in said
    code, said = _cli(capsys, "grant", "zhangsan", "--platform", "wecom")
    assert code == 0 and "已经是管理员 already an admin" in said
    assert "张三\twecom:zhangsan\t来源 source: admin" in _cli(capsys, "list")[1]
    code, said = _cli(capsys, "grant", "nobody")
    assert code == 2 and "找不到用户 no such user: nobody" in said and "BANLI_ADMINS" in said
    code, said = _cli(capsys, "grant", "same")
    assert code == 2 and "--platform" in said
    assert _cli(capsys, "grant", "dingtalk:same")[0] == 0  # 赵六
    code, said = _cli(capsys, "revoke", "dingtalk:same")
    assert code == 0 and "已去掉管理员 no longer an admin: 赵六" in said
    code, said = _cli(capsys, "revoke", "zhangsan")
    assert code == 1 and "不能去掉最后一位管理员 cannot remove the last admin" in said
    assert _cli(capsys, "grant", "0147001")[0] == 0
    assert _cli(capsys, "revoke", "zhangsan")[0] == 0
    with session_scope(shell) as session:
        assert [p.name for p in roles.people_with(session, "admin")] == ["李四"]
    with shell.connect() as conn:
        audited = conn.execute(text("SELECT action, platform FROM audit_log ORDER BY id")).all()
    grant, revoke = ("role.grant", "cli"), ("role.revoke", "cli")
    assert audited == [grant, grant, revoke, grant, revoke]  # nothing for "already" or the refusal


def test_the_migration_carries_each_old_role_over(database_url):
    engine = make_engine(database_url)
    config = alembic_config(engine)
    command.downgrade(config, "0006")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO employee (name, department, role, active, created_at) VALUES "
                          "('钱会计', '财务部', 'finance', true, CURRENT_TIMESTAMP), "
                          "('张三', '销售部', '', true, CURRENT_TIMESTAMP)"))
    command.upgrade(config, "head")
    with session_scope(engine) as session:
        assert [p.name for p in roles.people_with(session, "财务")] == ["钱会计"]
        assert roles.source_of(session, roles.people_with(session, "finance")[0], "finance") == "admin"
        zhang = session.execute(text("SELECT id FROM employee WHERE name = '张三'")).scalar_one()
        assert roles.roles_of(session, session.get(Employee, zhang)) == []
    engine.dispose()


@pytest.mark.parametrize("platform", ["wecom", "dingtalk"])
def test_an_admins_help_names_the_admin_commands_and_a_colleagues_does_not(stack_factory, platform):
    p = PEOPLE[platform]
    stack = _fresh(stack_factory, f"{platform}:{p['admin']}")
    admins = Chat(stack, platform, p["admin"]).say("帮助").text
    for word in ("角色", "审批规则", "规则", "离职", "banli directory sync"):  # whole: the line fits the card
        assert word in admins
    colleagues = Chat(stack, platform, p["asker"]).say("帮助").text
    assert "主菜单" in colleagues or "您好" in colleagues
    for word in ("审批规则", "离职", "banli directory sync"):
        assert word not in colleagues
