"""Export (导出): customers, follow-ups, deals, approval requests and the audit log as CSV and XLSX,
from the console's /admin/export page and from `banli export`; a manager gets their team's records
(phones included, as the bot shows them), an admin everything; every export is audited."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from decimal import Decimal

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from chat import SATURDAY_10AM, rows
from storage.db import session_scope
from storage.models import ApprovalRequest, Contact, Customer, Deal, Employee, FollowUp
from test_console import company, session_for, signed_in  # noqa: F401 (company is a fixture)
from workflows import customers, export
from workflows.matching import refresh_forms


@pytest.fixture
def records(company):  # noqa: F811
    """张三's 腾讯 with a contact, a deal and a follow-up whose text would be a formula; 孙五 (the other
    team) has a customer with a phone, a follow-up, a deal and a request; 张三 made one request too."""
    with session_scope(company.runtime.engine) as session:
        people = {e.name: e for e in session.execute(select(Employee)).scalars()}
        tencent = session.execute(select(Customer).where(Customer.short_names == "腾讯")).scalar_one()
        other = Customer(name="上海别队贸易有限公司", owner_id=people["孙五"].id, tier="B")
        refresh_forms(other)
        session.add(other)
        session.flush()
        session.add_all([
            Contact(customer_id=tencent.id, name="马化腾", title="董事长", phone="13800138000"),
            Contact(customer_id=other.id, name="钱老板", phone="13911112222"),
            Deal(customer_id=tencent.id, owner_id=people["张三"].id, title="企业微信扩容", amount=Decimal("50000")),
            Deal(customer_id=other.id, owner_id=people["孙五"].id, title="别队的单", amount=Decimal("8000")),
            FollowUp(customer_id=tencent.id, employee_id=people["张三"].id, content="=HYPERLINK(\"http://evil\")",
                     happened_at=SATURDAY_10AM),
            FollowUp(customer_id=other.id, employee_id=people["孙五"].id, content="别队的拜访", happened_at=SATURDAY_10AM),
            ApprovalRequest(type="报销", requester_id=people["张三"].id, summary="打车 120", amount=Decimal("120"),
                            status="pending", submitted_at=SATURDAY_10AM),
            ApprovalRequest(type="请假", requester_id=people["孙五"].id, summary="别队请假", status="approved"),
        ])
    return company


def csv_rows(body: bytes) -> list[list[str]]:
    assert body.startswith(b"\xef\xbb\xbf")  # the BOM Excel needs to read UTF-8
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))


def xlsx_rows(body: bytes) -> list[list]:
    sheet = load_workbook(io.BytesIO(body)).active
    return [[c.value for c in row] for row in sheet.iter_rows()]


def test_the_export_page_links_every_kind_in_both_formats(records):
    page = signed_in(records, "wangjl").get("/admin/export").get_data(as_text=True)
    for kind in ("customers", "followups", "deals", "requests", "audit"):
        assert f"/admin/export/{kind}.xlsx" in page and f"/admin/export/{kind}.csv" in page
    assert "完整电话" in page  # a manager is told the customer list holds phones


def test_a_managers_customer_export_holds_their_team_and_its_phones_only(records):
    client = signed_in(records, "wangjl")
    answer = client.get("/admin/export/customers.csv")
    assert answer.status_code == 200 and answer.mimetype == "text/csv"
    assert "attachment" in answer.headers["Content-Disposition"]
    table = csv_rows(answer.data)
    assert table[0][:4] == ["编号", "客户名称", "简称", "等级"] and "电话" in table[0]
    names = {r[1] for r in table[1:]}
    assert "腾讯科技(深圳)有限公司" in names and "北京三快在线科技有限公司" in names  # 张三's, 李四's
    assert "上海别队贸易有限公司" not in names and "13911112222" not in answer.data.decode("utf-8-sig")
    tencent = next(r for r in table if r[1] == "腾讯科技(深圳)有限公司")
    assert tencent[table[0].index("电话")] == "13800138000"
    assert tencent[table[0].index("联系人")] == "马化腾（董事长）" and tencent[table[0].index("负责人")] == "张三"
    # The rule the chat follows says the same: 王经理 may see this customer's details.
    with session_scope(records.runtime.engine) as session:
        boss = session.execute(select(Employee).where(Employee.name == "王经理")).scalar_one()
        assert customers.may_see_details(session, boss, session.get(Customer, int(tencent[0])))


def test_a_managers_followups_deals_and_requests_are_their_teams(records):
    client = signed_in(records, "wangjl")
    followups = csv_rows(client.get("/admin/export/followups.csv").data)
    assert followups[0] == ["编号", "客户", "跟进人", "方式", "内容", "时间", "下次跟进", "地点"]
    assert "别队的拜访" not in str(followups) and len(followups) == 1 + 3  # two earlier ones + today's
    evil = next(r for r in followups if "HYPERLINK" in r[4])
    assert evil[4].startswith("'=")  # Excel shows it as text, never runs it
    deals = xlsx_rows(client.get("/admin/export/deals.xlsx").data)
    assert deals[0][:4] == ["编号", "客户", "商机名称", "金额"]
    assert [(d[2], d[3]) for d in deals[1:]] == [("企业微信扩容", 50000)]
    requests = xlsx_rows(client.get("/admin/export/requests.xlsx").data)
    assert [(r[0][:2], r[2], r[5]) for r in requests[1:]] == [("R-", "张三", "审批中")]


def test_an_admin_exports_everything_and_xlsx_keeps_text_as_text(records):
    client = signed_in(records, "zhaozong")
    answer = client.get("/admin/export/followups.xlsx")
    assert answer.mimetype.endswith("spreadsheetml.sheet")
    book = load_workbook(io.BytesIO(answer.data))
    sheet = book.active
    assert sheet.title == "跟进记录"
    cells = [row[4] for row in sheet.iter_rows(min_row=2)]
    evil = next(c for c in cells if "HYPERLINK" in (c.value or ""))
    assert evil.data_type == "s" and evil.value.startswith("=HYPERLINK")  # stored as a string, not a formula
    assert "别队的拜访" in [c.value for c in cells]
    names = {r[1] for r in csv_rows(client.get("/admin/export/customers.csv").data)[1:]}
    assert "上海别队贸易有限公司" in names and len(names) == 6


def test_every_export_is_audited_and_the_log_exports_too(records):
    client = signed_in(records, "wangjl")
    client.get("/admin/export/customers.xlsx")
    logged = rows(records, "SELECT actor_id, action, subject, platform, detail FROM audit_log "
                           "WHERE action = 'export' ORDER BY id")
    assert len(logged) == 1
    actor, _, subject, platform, detail = logged[0]
    assert subject == "export:customers" and platform == "web"
    assert '"format": "xlsx"' in detail and '"rows": 5' in detail and "团队" in detail
    log = csv_rows(client.get("/admin/export/audit.csv").data)
    assert log[0] == ["时间", "操作人", "代谁操作", "平台", "动作", "对象", "详情"]
    assert any(r[1] == "王经理" and r[4] == "导出" and r[5] == "export:customers" for r in log[1:])


def test_a_rep_and_a_stranger_get_no_export(records):
    assert session_for(records, "张三").get("/admin/export/customers.csv").status_code == 403
    assert session_for(records, "孙五").get("/admin/export").status_code == 403
    from test_console import web
    assert web(records).get("/admin/export/customers.csv").status_code == 401
    assert not rows(records, "SELECT id FROM audit_log WHERE action = 'export'")


def test_rows_are_read_in_batches(records, monkeypatch):
    """More customers than a batch: every one comes out once, in id order."""
    monkeypatch.setattr(export, "BATCH", 2)
    out = io.BytesIO()
    with session_scope(records.runtime.engine) as session:
        count = export.write(session, "customers", "csv", out, team=None, tz="Asia/Shanghai")
    ids = [int(r[0]) for r in csv_rows(out.getvalue())[1:]]
    assert count == 6 and ids == sorted(ids) and len(set(ids)) == 6


def test_the_banli_export_command(records, tmp_path):
    env = {**os.environ, "DATABASE_URL": records.runtime.settings.database_url, "PYTHONIOENCODING": "utf-8"}
    env.pop("REDIS_URL", None)

    def banli(*args):
        return subprocess.run([sys.executable, "-m", "banli.cli", "export", *args], env=env, capture_output=True,
                              text=True, encoding="utf-8", timeout=60, cwd=tmp_path)

    done = banli("customers", "--out", str(tmp_path / "客户.xlsx"))
    assert done.returncode == 0 and "已导出客户 6 行" in done.stdout, done.stdout + done.stderr
    table = xlsx_rows((tmp_path / "客户.xlsx").read_bytes())
    assert table[0][1] == "客户名称" and len(table) == 7
    done = banli("deals", "--format", "csv", "--out", str(tmp_path / "deals.txt"))
    assert done.returncode == 0
    assert {r[2] for r in csv_rows((tmp_path / "deals.txt").read_bytes())[1:]} == {"企业微信扩容", "别队的单"}
    unclear = banli("audit", "--out", str(tmp_path / "audit.txt"))
    assert unclear.returncode == 2 and "--format" in unclear.stdout
    logged = rows(records, "SELECT platform, subject FROM audit_log WHERE action = 'export' ORDER BY id")
    assert logged == [("cli", "export:customers"), ("cli", "export:deals")]
