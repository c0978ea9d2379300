"""Platform tags (WeCom) and roles (DingTalk) named like a Banli role give that role on directory
sync and on a tag change event; a sync never takes away a role an admin gave; a tag the app may not
read leaves every role as it was — through `banli directory sync`, the callbacks and the chat."""

from __future__ import annotations

import pytest

import bot.dingtalk.client
from chat import Chat, rows
from conftest import startup_cron_finished, wait_for
from test_directory import cli, company, employee, make_admin, post_event  # noqa: F401  (company: a fixture)


def roles_of(stack, name: str) -> list[tuple[str, str]]:
    return sorted(rows(stack, "SELECT r.role, r.source FROM employee_role r JOIN employee e ON e.id = r.employee_id "
                              f"WHERE e.name = '{name}' AND e.active"))


def held(stack, name: str) -> list[str]:
    return [role for role, _ in roles_of(stack, name)]


@pytest.fixture(autouse=True)
def startup_cron_done(company):
    """The nightly directory slot may fire at start (its catch-up) and would race a test's own sync."""
    startup_cron_finished(company)


@pytest.fixture
def tagged(company):
    """张会计 in 总经办; WeCom tags 会计 (张会计), 法务 (王经理), 销售经理 (the department 销售一部 and
    so its 华东组 too) and 市场部群, which names no role."""
    company.wecom.add_user("zhangkj", name="张会计", department=[1], main_department=1, direct_leader=["zhaozong"])
    company.wecom.tags.update({
        1: {"tagname": "会计", "userlist": ["zhangkj"]},
        2: {"tagname": "法务", "userlist": ["wangjl"]},
        3: {"tagname": "销售经理", "partylist": [2]},
        4: {"tagname": "市场部群", "userlist": ["zhangsan"]},
    })
    return company


def test_tags_named_like_roles_give_them_on_sync_and_a_later_sync_takes_back_only_its_own(tagged, capsys):
    tags = dict(tagged.wecom.tags)
    tagged.wecom.tags.clear()  # none yet
    assert cli(capsys, "directory", "sync", "--platform", "wecom")[0] == 0
    make_admin(tagged, "wecom", "zhaozong")
    admin = Chat(tagged, "wecom", "zhaozong")
    assert admin.say("角色 王经理 法务").title.startswith("已设为法务")  # by hand, before the tags are read…
    tagged.wecom.tags.update(tags)
    # …and the tags read on the next sync: 法务 stays the admin's, the rest is the directory's.
    code, out = cli(capsys, "directory", "sync", "--platform", "wecom")
    assert code == 0, out
    assert out.count("未对应的标签：市场部群") == 1 and "角色 roles +5 -0" in out
    assert roles_of(tagged, "张会计") == [("finance", "wecom")]
    assert roles_of(tagged, "王经理") == [("legal", "admin"), ("sales_manager", "wecom")]
    assert held(tagged, "张三") == ["sales_manager"]  # 销售一部 is tagged
    assert rows(tagged, "SELECT count(*) FROM employee_role WHERE role = 'sales_manager'")[0][0] == 4  # 华东组 too
    assert "财务 张会计" in Chat(tagged, "wecom", "zhangsan").say("谁审批 采购 9000").text
    assert "没有变化" in cli(capsys, "directory", "sync", "--platform", "wecom")[1]  # idempotent
    # An admin takes a synced role away in chat: told the directory gives it back, and it does.
    taken = admin.say("角色 张会计 去掉 财务")
    assert taken.title.startswith("已去掉财务") and "来自企业微信标签" in taken.text
    assert "角色 roles +1 -0" in cli(capsys, "directory", "sync", "--platform", "wecom")[1]
    assert held(tagged, "张会计") == ["finance"]

    # Out of the tags: the synced roles go at the next sync; the admin's 法务 and 管理员 stay.
    tagged.wecom.tags[1]["userlist"] = []
    tagged.wecom.tags[2]["userlist"] = []
    tagged.wecom.tags[3]["partylist"] = [3]  # only 华东组 now
    code, out = cli(capsys, "directory", "sync", "--platform", "wecom")
    assert code == 0 and "角色 roles +0 -3" in out, out
    assert held(tagged, "张会计") == [] and held(tagged, "张三") == []
    assert roles_of(tagged, "王经理") == [("legal", "admin")]
    assert held(tagged, "赵总") == ["admin"]
    assert "张会计" not in Chat(tagged, "wecom", "zhangsan").say("谁审批 采购 9000").text
    assert rows(tagged, "SELECT count(*) FROM audit_log WHERE action = 'role.revoke'")[0][0] == 1 + 3  # by hand, by sync


def test_a_rule_condition_sees_a_synced_role(tagged, capsys):
    assert cli(capsys, "directory", "sync", "--platform", "wecom")[0] == 0
    make_admin(tagged, "wecom", "zhaozong")
    boss = Chat(tagged, "wecom", "zhaozong")
    boss.say('审批规则 新增 采购 角色 == "销售经理"：法务')
    rule = next(r for (r,) in rows(tagged, "SELECT id FROM approval_rule ORDER BY id DESC"))
    boss.say(f"审批规则 优先级 {rule} 1")
    assert "法务 王经理" in Chat(tagged, "wecom", "zhangsan").say("谁审批 采购 3000").text  # 销售经理 by tag
    assert "法务" not in Chat(tagged, "wecom", "zhangkj").say("谁审批 采购 3000").text


def test_tags_the_app_may_not_read_leave_roles_as_they_were_and_the_sync_says_so(tagged, capsys):
    assert cli(capsys, "directory", "sync", "--platform", "wecom")[0] == 0
    assert held(tagged, "张会计") == ["finance"]
    tagged.wecom.tags[1]["userlist"] = []
    tagged.wecom.tags_denied = True  # 60011, as WeCom answers outside the app's visible range
    tagged.wecom.modify_user("wangxm1", name="王晓明")
    code, out = cli(capsys, "directory", "sync", "--platform", "wecom")
    assert code == 0, out
    assert "没有读取标签的权限，角色保持不变" in out and "60011" in out
    assert held(tagged, "张会计") == ["finance"]
    assert held(tagged, "王晓明") == ["sales_manager"]  # people were synced all the same


def test_the_last_admin_keeps_the_role_when_the_admin_tag_empties(company, capsys):
    company.wecom.tags[5] = {"tagname": "管理员", "userlist": ["zhaozong"]}
    assert cli(capsys, "directory", "sync", "--platform", "wecom")[0] == 0
    assert roles_of(company, "赵总") == [("admin", "wecom")]
    company.wecom.tags[5]["userlist"] = []
    code, out = cli(capsys, "directory", "sync", "--platform", "wecom")
    assert code == 0 and "最后一位管理员" in out, out
    assert held(company, "赵总") == ["admin"]


def test_a_wecom_update_tag_event_reads_that_tags_members_again(tagged, capsys):
    assert cli(capsys, "directory", "sync", "--platform", "wecom")[0] == 0
    tagged.wecom.tags[1]["userlist"] = ["zhangkj", "wangxm1"]
    tagged.wecom.tags[2]["userlist"] = []  # another role's tag: not this event's business
    event = tagged.wecom_peer.change_contact("update_tag", TagId="1", AddUserItems="wangxm1")
    assert tagged.post_wecom(event).status_code == 200
    wait_for(lambda: "finance" in held(tagged, "王小明"))
    assert held(tagged, "王经理") == ["legal", "sales_manager"]
    # The sync read the three tags naming a role (市场部群 is not read), the event 会计 twice (its name, its members).
    assert tagged.wecom.list_calls.get("tag/get") == 3 + 2
    tagged.wecom.tags[1]["userlist"] = ["zhangkj"]
    event = tagged.wecom_peer.change_contact("update_tag", TagId="1", DelUserItems="wangxm1")
    assert tagged.post_wecom(event).status_code == 200
    wait_for(lambda: "finance" not in held(tagged, "王小明"))
    assert held(tagged, "张会计") == ["finance"]
    assert tagged.wecom.messages_to("sys") == []


def test_dingtalk_roles_page_through_and_map_by_name_and_a_label_event_reapplies_them(company, capsys, monkeypatch):
    monkeypatch.setattr(bot.dingtalk.client, "ROLE_MEMBER_PAGE", 1)
    ding = company.dingtalk
    ding.role_groups.update({
        1: {"name": "默认", "roles": {101: {"name": "主管", "users": ["0147002"]},
                                    102: {"name": "财务", "users": ["0147011", "0147001"]}}},
        2: {"name": "职务", "roles": {201: {"name": "销售经理", "users": ["0147002"]}}},
    })
    code, out = cli(capsys, "directory", "sync", "--platform", "dingtalk")
    assert code == 0, out
    assert "未对应的角色：主管" in out
    assert held(company, "钱会计") == ["finance"] and held(company, "李四") == ["finance"]
    assert held(company, "周经理") == ["sales_manager"]
    assert ding.list_calls["role/simplelist"] == 1 + 2  # 财务's two members one a page; 主管 not read
    assert "财务 钱会计" in Chat(company, "dingtalk", "0147001").say("谁审批 采购 9000").text

    ding.role_groups[1]["roles"][102]["users"] = ["0147011"]
    assert post_event(company, "label_user_change", UserIdList=["0147001"], LabelIdList=[102],
                      action="remove").status_code == 200
    wait_for(lambda: held(company, "李四") == [])
    assert held(company, "钱会计") == ["finance"]

    ding.roles_denied = True
    code, out = cli(capsys, "directory", "sync", "--platform", "dingtalk")
    assert code == 0 and "没有读取角色的权限，角色保持不变" in out, out
    assert held(company, "钱会计") == ["finance"]
