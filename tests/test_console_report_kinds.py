"""/admin/reports 逾期客户, 回款 and 审批时长: the totals a manager would check by hand, a manager never
seeing another team's numbers (whatever team they pick), bad filters named, CSV and XLSX downloads
that open, and the 08:00 digest's link to the team's report page landing there after the login."""

from __future__ import annotations

import io
import re
from datetime import date, timedelta
from decimal import Decimal

from openpyxl import load_workbook
from sqlalchemy import select

from chat import SATURDAY_10AM, Chat, rows
from conftest import wait_for
from storage.db import session_scope
from storage.models import ApprovalRequest, ApprovalTask, Customer, Deal, Employee, PaymentPlan
from test_console import company, link_for, session_for, web  # noqa: F401  (fixture)
from test_console_reports import _ids, _rows
from workflows.digest import queue_daily_digests

WEEK = "period=custom&since=2026-11-16&until=2026-11-22"  # the week of SATURDAY_10AM (2026-11-21)
AUTUMN = "period=custom&since=2026-11-01&until=2026-12-31"


def _table(client, url: str, table: str = "report-table") -> dict[str, list[str]]:
    page = client.get(url)
    assert page.status_code == 200, page.get_data(as_text=True)
    text = page.get_data(as_text=True)
    text = '<table id="report-table">' + text.split(f'<table id="{table}">')[1]
    return {r[0]: r[1:] for r in _rows(text)}


def _overdue_data(stack) -> None:
    """张三: an A customer untouched 10 days (A: 7 days, so overdue since Wednesday, in the week), a B
    untouched 20 days (B: 14, overdue since last Sunday, before the week), a C untouched 10 days (C:
    30, not overdue). 孙五 (another team): an A untouched 30 days."""
    zhang, sun = _ids(stack, "张三", "孙五")
    with session_scope(stack.runtime.engine) as session:
        for owner, tier, days in ((zhang, "A", 10), (zhang, "B", 20), (zhang, "C", 10), (sun, "A", 30)):
            touched = SATURDAY_10AM - timedelta(days=days)
            session.add(Customer(name=f"逾期测试{owner}{tier}", tier=tier, owner_id=owner, created_at=touched,
                                 owned_since=touched, last_followup_at=touched))


def test_overdue_customers_by_owner_and_tier(company):
    _overdue_data(company)
    admin = _table(session_for(company, "赵总"), f"/admin/reports/overdue?{WEEK}")
    #                    A    B    C   合计 本期新逾期
    assert admin["张三"] == ["1", "1", "0", "2", "1"]
    assert admin["孙五"] == ["1", "0", "0", "1", "0"]
    assert admin["合计"] == ["2", "1", "0", "3", "1"]
    manager = _table(session_for(company, "王经理"), f"/admin/reports/overdue?{WEEK}")
    assert set(manager) == {"张三", "合计"} and manager["合计"][3] == "2"


def _payment_data(stack) -> None:
    """张三: ¥1000 due 11-10 with ¥400 in, ¥500 due 12-05; 孙五: ¥700 due 11-20, paid. Today: 11-21."""
    zhang, sun = _ids(stack, "张三", "孙五")
    with session_scope(stack.runtime.engine) as session:
        customer = Customer(name="回款测试有限公司", owner_id=zhang)
        session.add(customer)
        session.flush()
        for owner, plans in ((zhang, (("1000", "400", date(2026, 11, 10)), ("500", "0", date(2026, 12, 5)))),
                             (sun, (("700", "700", date(2026, 11, 20)),))):
            deal = Deal(customer_id=customer.id, owner_id=owner, title="合同", stage="赢单", amount=Decimal("2000"))
            session.add(deal)
            session.flush()
            for seq, (amount, paid, due) in enumerate(plans, start=1):
                session.add(PaymentPlan(deal_id=deal.id, customer_id=customer.id, seq=seq, amount=Decimal(amount),
                                        paid=Decimal(paid), due_date=due, status="paid" if paid == amount else "open"))


def test_payments_plan_against_received_by_month(company):
    _payment_data(company)
    admin = _table(session_for(company, "赵总"), f"/admin/reports/payments?{AUTUMN}")
    #                         期数  计划      已收       未收     已逾期    回款率
    assert admin["2026年11月"] == ["2", "1700.00", "1100.00", "600.00", "600.00", "64.7%"]
    assert admin["2026年12月"] == ["1", "500.00", "0.00", "500.00", "0.00", "0.0%"]
    assert admin["合计"] == ["3", "2200.00", "1100.00", "1100.00", "600.00", "50.0%"]
    manager = _table(session_for(company, "王经理"), f"/admin/reports/payments?{AUTUMN}")
    assert manager["2026年11月"] == ["1", "1000.00", "400.00", "600.00", "600.00", "40.0%"]


def _approval_data(stack) -> None:
    """张三's two 报销: 王经理 took 2 h and 6 h, then 赵总 4 h on the first (submitted to result 6 h);
    孙五's 请假: 周经理 10 h, rejected."""
    zhang, sun, wang, zhao, zhou = _ids(stack, "张三", "孙五", "王经理", "赵总", "周经理")
    start = SATURDAY_10AM - timedelta(days=3)
    with session_scope(stack.runtime.engine) as session:
        for requester, kind, status, steps in ((zhang, "报销", "approved", ((wang, 2), (zhao, 4))),
                                               (zhang, "报销", "pending", ((wang, 6),)),
                                               (sun, "请假", "rejected", ((zhou, 10),))):
            total = sum(h for _, h in steps)
            request = ApprovalRequest(type=kind, requester_id=requester, status=status, submitted_at=start,
                                      decided_at=start + timedelta(hours=total) if status != "pending" else None)
            session.add(request)
            session.flush()
            began = start
            for step, (who, hours) in enumerate(steps):
                session.add(ApprovalTask(request_id=request.id, step=step, approver_id=who, created_at=began,
                                         decided_at=began + timedelta(hours=hours),
                                         status="rejected" if status == "rejected" else "approved"))
                began += timedelta(hours=hours)
        # Still waiting: not a decision, counts nowhere.
        session.add(ApprovalTask(request_id=request.id, step=1, approver_id=wang, created_at=start))


def test_approval_hours_per_approver_and_type(company):
    _approval_data(company)
    client = session_for(company, "赵总")
    admin = _table(client, f"/admin/reports/approvals?{WEEK}")
    #                      报销    请假   全部类型 审批次数
    assert admin["王经理"] == ["4.0", "—", "4.0", "2"]
    assert admin["赵总"] == ["4.0", "—", "4.0", "1"]
    assert admin["周经理"] == ["—", "10.0", "10.0", "1"]
    assert admin["全部审批人"] == ["4.0", "10.0", "5.5", "4"]
    by_type = _table(client, f"/admin/reports/approvals?{WEEK}", "report-table-1")
    #                        件数 通过 驳回 平均小时
    assert by_type["报销"] == ["1", "1", "0", "6.0"] and by_type["请假"] == ["1", "0", "1", "10.0"]
    assert "平均" in client.get(f"/admin/reports/approvals?{WEEK}").get_data(as_text=True)
    manager = _table(session_for(company, "王经理"), f"/admin/reports/approvals?{WEEK}")
    assert set(manager) == {"王经理", "全部审批人"}


def test_a_manager_picking_another_team_sees_nothing_of_it(company):
    _overdue_data(company)
    _payment_data(company)
    zhou, = _ids(company, "周经理")
    admin = _table(session_for(company, "赵总"), f"/admin/reports/overdue?{WEEK}&team={zhou}")
    assert set(admin) == {"孙五", "合计"}  # an admin narrows to 周经理's team
    manager = session_for(company, "王经理")
    for kind, period in (("overdue", WEEK), ("payments", AUTUMN)):
        page = manager.get(f"/admin/reports/{kind}?{period}&team={zhou}").get_data(as_text=True)
        assert "孙五" not in page and "700.00" not in page and _rows(page) == []
    picker = manager.get("/admin/reports").get_data(as_text=True)
    assert "王经理的团队" in picker and "周经理" not in picker


def test_bad_filters_are_named(company):
    client = session_for(company, "王经理")
    for url, words in (("/admin/reports/overdue?team=abc", "团队「abc」不认识"),
                       ("/admin/reports/payments?team=99999", "团队「99999」：没有这位经理"),
                       ("/admin/reports/approvals?team=dept:没有的部门", "没有这个部门"),
                       ("/admin/reports/approvals?period=year", "时间段「year」不认识"),
                       ("/admin/reports/payments.xlsx?period=custom&since=2026-12-01&until=2026-11-01",
                        "开始日期晚于结束日期")):
        answer = client.get(url)
        assert answer.status_code == 400 and words in answer.get_data(as_text=True), url


def test_csv_and_xlsx_downloads_open(company):
    _approval_data(company)
    client = session_for(company, "赵总")
    book = load_workbook(io.BytesIO(client.get(f"/admin/reports/approvals.xlsx?{WEEK}").get_data()))
    first, second = book.worksheets
    sheet = list(first.iter_rows(values_only=True))
    assert sheet[0] == ("审批人", "报销", "请假", "全部类型", "审批次数")
    assert ("全部审批人", 4, 10, 5.5, 4) in sheet  # numbers, to sum in Excel
    assert [r[0] for r in second.iter_rows(values_only=True)] == ["类型", "报销", "请假"]
    lines = client.get(f"/admin/reports/approvals.csv?{WEEK}").get_data().decode("utf-8-sig").splitlines()
    assert lines[0] == "审批人,报销,请假,全部类型,审批次数" and "按类型：提交到出结果（平均小时）" in lines
    downloads = rows(company, "SELECT detail FROM audit_log WHERE action = 'export' AND subject = 'report'")
    assert len(downloads) == 2 and "报表：审批时长" in downloads[0][0]


def test_the_login_lands_only_on_a_console_page(company):
    browser = web(company)
    browser.set_cookie("banli_next", "//evil.example/admin/", path="/admin")
    login = browser.get(link_for(company, "wangjl").removeprefix(company.url))
    assert login.status_code == 302 and login.headers["Location"] == "/admin/"


def test_the_digest_links_to_the_team_report_and_the_login_lands_there(company):
    zhang, wang = _ids(company, "张三", "王经理")
    monday = SATURDAY_10AM + timedelta(days=2) - timedelta(hours=2)  # 08:00 on Monday 23 November
    with session_scope(company.runtime.engine) as session:
        for customer in session.execute(select(Customer).where(Customer.owner_id == zhang)).scalars():
            customer.next_followup_at = monday + timedelta(hours=3)
        queue_daily_digests(session, now=monday, tz="Asia/Shanghai", public_url=company.url)
    chat = Chat(company, "wecom", "wangjl")
    card = wait_for(lambda: next((r for r in chat.replies() if r.title.startswith("团队跟进")), None))
    link = re.search(r"团队报表：(\S+?/admin/reports/followups\?team=\d+)", card.text).group(1)
    assert link == f"{company.url}/admin/reports/followups?team={wang}"
    browser = web(company)
    signed_out = browser.get(link.removeprefix(company.url))
    assert signed_out.status_code == 401 and "后台" in signed_out.get_data(as_text=True)
    login = browser.get(link_for(company, "wangjl").removeprefix(company.url))
    assert login.status_code == 302 and login.headers["Location"].endswith(f"/admin/reports/followups?team={wang}")
    page = browser.get(login.headers["Location"].removeprefix(company.url))
    assert page.status_code == 200 and "每周跟进" in page.get_data(as_text=True)
