"""A person Banli met on each platform before either directory gave their mobile is two employee
rows; the sync that finds the shared mobile merges them the way `banli employees link` does."""

from __future__ import annotations

from sqlalchemy import select

from storage.db import session_scope
from storage.models import Customer, Employee
from test_directory import cli, company, employee, give_customers  # noqa: F401  (company: a fixture)
from test_directory_roles import startup_cron_done  # noqa: F401  (autouse: the start-up sync out of the way)
from workflows import roles


def test_a_later_sync_that_finds_two_rows_are_one_person_merges_them(company, capsys):
    company.wecom.add_user("liuxin", name="刘欣", department=[2], main_department=2, direct_leader=["wangjl"])
    company.dingtalk.add_user("0147030", name="刘欣", dept_id_list=[20], manager_userid="0147002")
    assert cli(capsys, "directory", "sync")[0] == 0
    on_wecom, on_dingtalk = employee(company, "wecom", "liuxin"), employee(company, "dingtalk", "0147030")
    assert on_wecom.id != on_dingtalk.id  # nothing to tell they are one person yet
    give_customers(company, on_dingtalk.id, ["深圳恒达物流有限公司"])
    with session_scope(company.runtime.engine) as session:
        for row in (on_wecom, on_dingtalk):  # the same role on both rows: kept once
            roles.grant(session, session.get(Employee, row.id), "finance")

    company.wecom.modify_user("liuxin", mobile="+86 139 0000 0030")
    company.dingtalk.modify_user("0147030", mobile="13900000030")
    code, out = cli(capsys, "directory", "sync")
    assert code == 0, out
    assert "合并 merged 1" in out
    keep = employee(company, "wecom", "liuxin")
    older, newer = sorted((on_wecom.id, on_dingtalk.id))
    assert employee(company, "dingtalk", "0147030").id == keep.id == older  # the older row stays
    with session_scope(company.runtime.engine) as session:
        other = session.get(Employee, newer)
        assert (other.active, other.merged_into_id) == (False, keep.id)
        assert session.execute(select(Customer.owner_id)).scalars().all() == [keep.id]
        active = session.execute(select(Employee.id).where(Employee.name == "刘欣", Employee.active)).scalars().all()
        assert active == [keep.id]
        assert roles.roles_of(session, session.get(Employee, keep.id)) == ["finance"]
    assert company.count("employee_role", f"WHERE employee_id = {newer}") == 0
    assert company.count("audit_log", "WHERE action = 'employee.link'") == 1
    assert cli(capsys, "directory", "sync")[1].count("nothing changed") == 2
