"""The console's 人员 pages and a customer's page: who sees whom, roles with the last-admin guard, a
delegate's validation, the hand-over previewed then done once, linking, re-sync, the owner change."""

from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from sqlalchemy import select

from storage.db import session_scope
from storage.models import Customer, Employee
from test_console import company, csrf_of, employee, session_for  # noqa: F401 — company is a fixture
from chat import rows


def _customer(stack, short: str) -> int:
    with session_scope(stack.runtime.engine) as session:
        return session.execute(select(Customer.id).where(Customer.short_names == short)).scalar_one()


def test_an_admin_sees_everyone_a_manager_their_team_a_rep_nothing(company):  # noqa: F811
    admin = session_for(company, "赵总").get("/admin/people").get_data(as_text=True)
    assert "孙五" in admin and "张三" in admin and "0147001" in admin  # 钉钉 id shown
    manager = session_for(company, "王经理").get("/admin/people").get_data(as_text=True)
    assert "张三" in manager and "孙五" not in manager
    other = employee(company, "孙五").id
    assert session_for(company, "王经理").get(f"/admin/people/{other}").status_code == 404
    assert session_for(company, "张三").get("/admin/people").status_code == 403
    filtered = session_for(company, "赵总").get("/admin/people?name=孙").get_data(as_text=True)
    assert "孙五" in filtered and "张三" not in filtered


def test_roles_are_added_and_the_last_admin_cannot_be_removed(company):  # noqa: F811
    client = session_for(company, "赵总")
    rep, admin = employee(company, "张三").id, employee(company, "赵总").id
    token = csrf_of(client.get(f"/admin/people/{rep}").data)
    answer = client.post(f"/admin/people/{rep}/role_add", data={"csrf": token, "role": "finance"})
    assert answer.status_code == 302
    assert rows(company, f"SELECT role FROM employee_role WHERE employee_id = {rep}") == [("finance",)]
    refused = client.post(f"/admin/people/{admin}/role_remove", data={"csrf": token, "role": "admin"})
    assert refused.status_code == 400 and "最后一位管理员" in refused.get_data(as_text=True)
    assert rows(company, f"SELECT role FROM employee_role WHERE employee_id = {admin}") == [("admin",)]
    assert client.post(f"/admin/people/{rep}/role_add", data={"role": "finance"}).status_code == 400  # no CSRF


def test_a_delegate_needs_dates_and_is_audited_as_the_admins(company):  # noqa: F811
    client = session_for(company, "赵总")
    rep, other = employee(company, "张三").id, employee(company, "李四").id
    token = csrf_of(client.get(f"/admin/people/{rep}").data)
    bad = client.post(f"/admin/people/{rep}/delegate", data={"csrf": token, "delegate": other, "first": "明天",
                                                              "last": "2026-12-05"})
    assert bad.status_code == 400 and "开始日期" in bad.get_data(as_text=True)
    assert company.count("delegation") == 0
    good = client.post(f"/admin/people/{rep}/delegate", data={"csrf": token, "delegate": other,
                                                               "first": "2026-11-01", "last": "2030-12-05"})
    assert good.status_code == 302
    assert "李四 2026-11-01～2030-12-05" in client.get(f"/admin/people/{rep}").get_data(as_text=True)
    actor = rows(company, "SELECT actor_id FROM audit_log WHERE action = 'approval.delegate'")
    assert actor == [(employee(company, "赵总").id,)]


def test_the_hand_over_is_previewed_then_done_once(company):  # noqa: F811
    client = session_for(company, "赵总")
    rep, other = employee(company, "张三").id, employee(company, "李四").id
    preview = client.get(f"/admin/people/{rep}/handover?how=person&to={other}").get_data(as_text=True)
    assert "客户 4 个 → 李四" in preview and "确认交接" in preview
    assert company.count("customer WHERE owner_id = %d" % other) == 1  # nothing moved by looking
    token = csrf_of(preview.encode())
    form = {"csrf": token, "how": "person", "to": other}
    assert client.post(f"/admin/people/{rep}/handover", data=form).status_code == 302
    again = client.post(f"/admin/people/{rep}/handover", data=form)
    assert again.status_code == 400 and "已经" in again.get_data(as_text=True)
    assert company.count("customer WHERE owner_id = %d" % other) == 5
    assert len(rows(company, "SELECT id FROM audit_log WHERE action = 'employee.depart'")) == 1


def test_two_rows_are_linked_into_one_person(company):  # noqa: F811
    client = session_for(company, "赵总")
    rep, other = employee(company, "张三").id, employee(company, "李四").id
    preview = client.get(f"/admin/people/{rep}/link?other={other}").get_data(as_text=True)
    assert "确认关联" in preview and "lisi" in preview
    token = csrf_of(preview.encode())
    assert client.post(f"/admin/people/{rep}/link", data={"csrf": token, "other": other}).status_code == 302
    assert rows(company, f"SELECT merged_into_id FROM employee WHERE id = {other}") == [(rep,)]
    assert rows(company, "SELECT COUNT(*) FROM identity WHERE user_id = 'lisi' AND employee_id = %d" % rep) == [(1,)]
    assert client.post(f"/admin/people/{rep}/link", data={"csrf": token, "other": rep}).status_code == 400


def test_resync_queues_the_nightly_directory_job_once_a_minute(company):  # noqa: F811
    client = session_for(company, "赵总")
    token = csrf_of(client.get("/admin/people").data)
    for _ in range(2):
        assert client.post("/admin/people/resync", data={"csrf": token}).status_code == 302
    assert len(rows(company, "SELECT id FROM outbox WHERE kind = 'cron' AND key LIKE 'cron:directory:web:%'")) == 1
    queued = rows(company, "SELECT due_at FROM outbox WHERE kind = 'cron' AND key LIKE 'cron:directory:web:%'")[0][0]
    queued = queued if isinstance(queued, datetime) else datetime.fromisoformat(str(queued))
    local = queued.replace(tzinfo=queued.tzinfo or timezone.utc).astimezone(ZoneInfo(company.runtime.settings.timezone))
    page = client.get("/admin/people").get_data(as_text=True)
    assert f"上次同步：{local:%Y-%m-%d %H:%M}" in page  # the company's clock, not UTC
    assert session_for(company, "王经理").post("/admin/people/resync", data={"csrf": token}).status_code in (400, 403)


def test_an_owner_change_is_audited_and_told_to_the_new_owner(company):  # noqa: F811
    manager = session_for(company, "王经理")
    tencent, other = _customer(company, "腾讯"), employee(company, "李四").id
    page = manager.get(f"/admin/customers/{tencent}").get_data(as_text=True)
    assert "更换负责人" in page and "旧记录" in page  # the history is the manager's to read
    token = csrf_of(page.encode())
    assert manager.post(f"/admin/customers/{tencent}/owner", data={"csrf": token, "owner": other}).status_code == 302
    assert "负责人已从张三改为李四" in manager.get(f"/admin/customers/{tencent}?notice=负责人已从张三改为李四").get_data(as_text=True)
    detail = rows(company, "SELECT detail FROM audit_log WHERE action = 'customer.owner'")[0][0]
    assert '"before": {"owner": "张三"' in detail and '"after": {"owner": "李四"' in detail
    history = manager.get(f"/admin/customers/{tencent}").get_data(as_text=True)  # read as words, not JSON
    assert "修改前：（负责人 张三，负责人编号 " in history and "修改后：（负责人 李四" in history
    assert "{&#34;" not in history and '{"' not in history and "owner_id" not in history
    assert rows(company, "SELECT recipient FROM outbox WHERE key LIKE 'owner:%%'") == [("lisi",)]
    stranger = employee(company, "孙五").id
    refused = manager.post(f"/admin/customers/{tencent}/owner", data={"csrf": token, "owner": stranger})
    assert refused.status_code == 400 and "新负责人" in refused.get_data(as_text=True)
    assert manager.post(f"/admin/customers/{tencent}/owner", data={"owner": other}).status_code == 400  # no CSRF
