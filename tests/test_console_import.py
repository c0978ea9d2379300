"""The console's customer import (/admin/import): upload, a preview that writes nothing (rows to add,
duplicates and bad rows by their Excel row number), 确认导入 writing exactly the previewed rows once,
clear messages for a bad upload, admins only, CSRF — on the real routes and the runtime's database."""

from __future__ import annotations

import io
import os
import re
import time
from pathlib import Path

import pytest
from openpyxl import Workbook
from sqlalchemy import select

from chat import rows
from storage.db import session_scope
from storage.models import Customer, Employee
from test_console import company, csrf_of, refusals, session_for  # noqa: F401  (company: a fixture)
from workflows import customer_entry

HEADER = "客户名称,简称,等级,负责人,电话"
CSV = "\n".join([
    HEADER,
    "上海华美教育科技有限公司,华美,A,张三,13800001111",  # row 2: new
    "杭州云栖科技有限公司,云栖,B,李四,",  # row 3: new
    "北京字节跳动科技有限公司,字节,D,张三,",  # row 4: bad tier
    "上海华美教育科技有限公司,,B,李四,",  # row 5: duplicate of row 2
    "广州某某物流有限公司,,C,王五,",  # row 6: no such owner
    "深圳老客户有限公司,,C,张三,",  # row 7: duplicate of an existing customer
]) + "\n"


@pytest.fixture
def admin(company):
    with session_scope(company.runtime.engine) as session:
        owner = session.execute(select(Employee).where(Employee.name == "张三")).scalar_one()
        customer_entry.create_validated(session, customer_entry.validate(name="深圳老客户有限公司"), by=None,
                                        owner=owner)
    return session_for(company, "赵总")


def upload(client, body: bytes | None, name: str = "客户.csv", **form):
    page = client.get("/admin/import")
    data = {"csrf": csrf_of(page.data), **form}
    if body is not None:
        data["file"] = (io.BytesIO(body), name)
    return client.post("/admin/import", data=data, content_type="multipart/form-data")


def preview(client, body: bytes, **form):
    answer = upload(client, body, **form)
    assert answer.status_code == 302, answer.data.decode()
    return client.get(answer.headers["Location"])


def commit_form(page: bytes) -> dict:
    fields = dict(re.findall(rb'name="(csrf|token|digest|owner_default|allow_duplicates)" value="([^"]*)"', page))
    return {k.decode(): v.decode() for k, v in fields.items()}


def customer_names(stack) -> list[str]:
    return sorted(name for (name,) in rows(stack, "SELECT name FROM customer"))


def test_the_preview_names_duplicates_and_bad_rows_by_row_and_writes_nothing(company, admin):
    before = customer_names(company)
    page = preview(admin, CSV.encode()).data.decode()
    assert "将新建 <strong>2</strong> 个客户" in page
    assert "疑似重复 <strong>2</strong> 行" in page and "有问题 <strong>2</strong> 行" in page
    assert "第4行" in page and "等级" in page
    assert "第6行" in page and "王五" in page
    assert "第5行" in page and "和第2行" in page
    assert "第7行" in page and "已有客户「深圳老客户有限公司」" in page
    assert customer_names(company) == before


def test_commit_writes_exactly_the_previewed_rows_once_and_is_audited(company, admin):
    before = customer_names(company)
    form = commit_form(preview(admin, CSV.encode()).data)
    first = admin.post("/admin/import/commit", data=form)
    assert first.status_code == 302
    assert "已导入 2 个客户" in admin.get(first.headers["Location"]).data.decode()
    after = customer_names(company)
    assert sorted(set(after) - set(before)) == ["上海华美教育科技有限公司", "杭州云栖科技有限公司"]
    again = admin.post("/admin/import/commit", data=form)
    assert again.status_code == 409 and "已经导入过了" in again.data.decode()
    assert customer_names(company) == after
    (detail,) = [d for (d,) in rows(company, "SELECT detail FROM audit_log WHERE action = 'customer.import'")]
    assert '"file": "客户.csv"' in detail and '"created": 2' in detail and '"bad": 2' in detail
    (actor,) = rows(company, "SELECT actor_id FROM audit_log WHERE action = 'customer.import'")[0]
    assert actor == admin_id(company)


def admin_id(stack) -> int:
    with session_scope(stack.runtime.engine) as session:
        return session.execute(select(Employee.id).where(Employee.name == "赵总")).scalar_one()


def test_a_change_between_preview_and_commit_is_refused_and_nothing_written(company, admin):
    form = commit_form(preview(admin, CSV.encode()).data)
    with session_scope(company.runtime.engine) as session:  # someone adds 云栖 in chat meanwhile
        customer_entry.create_validated(session, customer_entry.validate(name="杭州云栖科技有限公司"), by=None,
                                        owner=None)
    before = customer_names(company)
    answer = admin.post("/admin/import/commit", data=form)
    assert answer.status_code == 409 and "请重新预览" in answer.data.decode()
    assert customer_names(company) == before
    assert refusals(company, "customer.import")


def test_xlsx_with_an_owner_by_mobile_and_empty_owners_to_the_pool(company, admin):
    with session_scope(company.runtime.engine) as session:
        session.execute(select(Employee).where(Employee.name == "李四")).scalar_one().mobile = "13912345678"
    book = Workbook()
    book.active.append(["客户名称", "负责人"])
    book.active.append(["苏州园区设计院", "13912345678"])
    book.active.append(["无锡锡山物流有限公司", None])
    body = io.BytesIO()
    book.save(body)
    page = preview(admin, body.getvalue(), name="list.xlsx", owner_default="公海")
    assert "将新建 <strong>2</strong> 个客户" in page.data.decode(), page.data.decode()
    answer = admin.post("/admin/import/commit", data=commit_form(page.data))
    assert answer.status_code == 302
    owners = dict(rows(company, "SELECT c.name, e.name FROM customer c LEFT JOIN employee e ON e.id = c.owner_id"))
    assert owners["苏州园区设计院"] == "李四" and owners["无锡锡山物流有限公司"] is None


@pytest.mark.parametrize("body, name, says", [
    (None, "", "请选择要导入的文件"),
    (b"\x00\x01", "客户.xls", "不是 .csv 或 .xlsx"),
    (b"", "客户.csv", "文件是空的"),
])
def test_no_file_or_a_wrong_type_is_a_clear_message(company, admin, body, name, says):
    answer = upload(admin, body, name=name)
    assert answer.status_code == 400 and says in answer.data.decode()


def test_a_file_without_a_name_column_or_a_broken_xlsx_is_a_clear_message(company, admin):
    page = preview(admin, "电话,地区\n138,上海\n".encode())
    assert page.status_code == 400 and "「名称」" in page.data.decode()
    page = preview(admin, b"not a zip", name="x.xlsx")
    assert page.status_code == 400 and "打不开这个 Excel 文件" in page.data.decode()


def test_a_manager_and_a_rep_are_refused_and_a_post_needs_the_form_token(company, admin):
    assert session_for(company, "王经理").get("/admin/import").status_code == 403
    rep = session_for(company, "张三")
    assert rep.get("/admin/import").status_code == 403
    answer = admin.post("/admin/import", data={"file": (io.BytesIO(CSV.encode()), "a.csv")},
                        content_type="multipart/form-data")
    assert answer.status_code == 400
    form = commit_form(preview(admin, CSV.encode()).data)
    assert admin.post("/admin/import/commit", data={**form, "csrf": ""}).status_code == 400
    assert session_for(company, "王经理").post("/admin/import/commit", data=form).status_code in (400, 403)
    assert refusals(company, "POST /admin/import")


def second_admin(stack):
    """王经理 made an admin too: a signed-in client and its form token."""
    from workflows import roles

    with session_scope(stack.runtime.engine) as session:
        roles.grant(session, session.execute(select(Employee).where(Employee.name == "王经理")).scalar_one(),
                    "admin", source="env")
    other = session_for(stack, "王经理")
    return other, csrf_of(other.get("/admin/import").data)


def test_another_admins_preview_cannot_be_committed(company, admin):
    form = commit_form(preview(admin, CSV.encode()).data)
    other, csrf = second_admin(company)
    answer = other.post("/admin/import/commit", data={**form, "csrf": csrf})
    assert answer.status_code == 409 and "别人上传的" in answer.data.decode()
    assert "杭州云栖科技有限公司" not in customer_names(company)


def staged_files(stack) -> list[str]:
    folder = Path(stack.runtime.settings.files_dir) / "import-staging"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_a_row_without_an_owner_says_what_to_do_on_the_web_page(company, admin):
    page = preview(admin, f"{HEADER}\n无锡锡山物流有限公司,,C,,\n".encode()).data.decode()
    assert "负责人是空的" in page and "放进公海" in page
    assert "--owner-default" not in page


def test_commit_and_cancel_delete_the_staged_file_and_uploads_expire_old_ones(company, admin):
    form = commit_form(preview(admin, CSV.encode()).data)
    assert any(name.endswith(".csv") for name in staged_files(company))
    assert admin.post("/admin/import/commit", data=form).status_code == 302
    assert [name for name in staged_files(company) if not name.endswith(".json")] == []  # only the note is left

    form = commit_form(preview(admin, CSV.encode()).data)
    cancelled = admin.post("/admin/import/cancel", data=form)
    assert cancelled.status_code == 302 and not any(form["token"] in name for name in staged_files(company))
    assert "不存在或已失效" in admin.get(f"/admin/import?token={form['token']}").data.decode()

    old = commit_form(preview(admin, CSV.encode()).data)["token"]
    folder = Path(company.runtime.settings.files_dir) / "import-staging"
    for path in folder.glob(f"{old}*"):
        os.utime(path, (time.time() - 25 * 3600,) * 2)  # left in a closed tab yesterday
    fresh = commit_form(preview(admin, CSV.encode()).data)["token"]
    names = staged_files(company)
    assert not any(old in name for name in names) and any(fresh in name for name in names)


def test_commit_reuses_the_preview_plan_unless_the_data_changed(company, admin, monkeypatch):
    from workflows import importing

    real, calls = importing.plan, []
    monkeypatch.setattr(importing, "plan", lambda *a, **k: calls.append(1) or real(*a, **k))
    form = commit_form(preview(admin, CSV.encode()).data)
    assert admin.post("/admin/import/commit", data=form).status_code == 302
    assert len(calls) == 1  # the preview's; the commit read the saved plan

    form = commit_form(preview(admin, f"{HEADER}\n苏州园区设计院,,B,张三,\n".encode()).data)
    with session_scope(company.runtime.engine) as session:  # someone adds another customer meanwhile
        customer_entry.create_validated(session, customer_entry.validate(name="南通港闸物流有限公司"), by=None,
                                        owner=None)
    assert admin.post("/admin/import/commit", data=form).status_code == 302
    assert len(calls) == 3  # changed data: planned again (and still the same answer, so written)
    assert "苏州园区设计院" in customer_names(company)


def test_another_admin_cannot_cancel_someone_elses_upload(company, admin):
    form = commit_form(preview(admin, CSV.encode()).data)
    other, csrf = second_admin(company)
    assert other.post("/admin/import/cancel", data={**form, "csrf": csrf}).status_code == 302
    assert admin.post("/admin/import/commit", data=form).status_code == 302  # still there for its uploader
    assert "杭州云栖科技有限公司" in customer_names(company)
