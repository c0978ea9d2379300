"""The 报表 page in a real browser: the manager opens the console from chat; the funnel, the weekly
follow-ups, 逾期客户, 回款 and 审批时长 draw their ECharts canvas (no JavaScript error: the phone fixture
fails on any), and the XLSX download opens."""

from __future__ import annotations

import io
from datetime import timedelta
from decimal import Decimal

from openpyxl import load_workbook
from playwright.sync_api import expect
from sqlalchemy import select

from storage.db import session_scope
from storage.models import ApprovalRequest, ApprovalTask, Deal, Employee, PaymentPlan
from test_browser import LAPTOP, open_console, phone, shoot  # noqa: F401 — fixtures
from test_sim import MANAGER, demo_factory  # noqa: F401 — fixture
from workflows import console as console_access, rules


def test_a_manager_reads_the_funnel_and_weekly_followups(demo_factory, phone, shoot):  # noqa: F811
    sim = demo_factory()
    console = open_console(phone, sim, MANAGER)
    console.get_by_role("link", name="报表").first.click()
    expect(console.locator("h1")).to_have_text("报表")
    console.select_option("select[name=period]", "quarter")
    console.get_by_role("button", name="查看").click()
    expect(console.locator("#chart canvas")).to_have_count(1)
    expect(console.locator("#report-table tbody tr").first).to_be_visible()
    shoot(console, "17-report-funnel.png")
    console.get_by_role("link", name="每周跟进").click()
    expect(console.locator("h2")).to_contain_text("每周跟进")
    expect(console.locator("#chart canvas")).to_have_count(1)
    shoot(console, "18-report-followups.png")


def _report_data(sim) -> None:
    """The demo company has no 回款 plans or decided approvals yet: give the manager's team some,
    over the quarter, so those two reports have something to draw. And the test demo's overdue days
    (pushed out of reach, so no alert lands mid-test) go back to the defaults, for 逾期客户."""
    engine, now = sim.demo.runtime.engine, sim.demo.clock()
    with session_scope(engine) as session:
        rules.put(session, "crm.overdue_days", {"A": 7, "B": 14, "C": 30}, by=None)
        manager = session.execute(select(Employee).where(Employee.name == MANAGER.name)).scalar_one()
        team = sorted(console_access.team_below(session, manager.id))
        deals = session.execute(select(Deal).where(Deal.owner_id.in_(team)).order_by(Deal.id).limit(12)).scalars().all()
        today = now.date()
        for n, deal in enumerate(deals):
            for seq in (1, 2):
                due = today.replace(day=1) - timedelta(days=28 * (n % 3)) + timedelta(days=5 + 9 * seq)
                paid = deal.amount / 2 if (n + seq) % 3 else Decimal(0)
                session.add(PaymentPlan(deal_id=deal.id, customer_id=deal.customer_id, seq=seq, amount=deal.amount / 2,
                                        paid=paid, due_date=due, status="paid" if paid else "open"))
        for n in range(18):
            requester = team[n % len(team)]
            start = now - timedelta(days=3 + n * 4, hours=n)
            took = timedelta(hours=1 + (n * 7) % 30)
            request = ApprovalRequest(type=("报销", "请假", "出差", "采购")[n % 4], requester_id=requester,
                                      status="rejected" if n % 5 == 0 else "approved", submitted_at=start,
                                      decided_at=start + took)
            session.add(request)
            session.flush()
            session.add(ApprovalTask(request_id=request.id, step=0, approver_id=manager.id, created_at=start,
                                     decided_at=start + took, status=request.status))


def _whole(page) -> dict:
    """The whole page (chart and table), not only the first screenful."""
    return {"x": 0, "y": 0, "width": LAPTOP["width"], "height": page.evaluate("document.body.scrollHeight")}


def test_a_manager_reads_overdue_payments_and_approval_time(demo_factory, phone, shoot):  # noqa: F811
    sim = demo_factory()
    _report_data(sim)
    console_page = open_console(phone, sim, MANAGER)
    console_page.get_by_role("link", name="报表").first.click()
    console_page.get_by_role("link", name="逾期客户").click()
    expect(console_page.locator("h2")).to_contain_text("逾期客户")
    expect(console_page.locator("#chart canvas")).to_have_count(1)
    expect(console_page.locator("#report-table tbody tr").last).to_contain_text("合计")
    shoot(console_page, "19-report-overdue.png", _whole(console_page))
    console_page.get_by_role("link", name="回款").click()
    console_page.select_option("select[name=period]", "quarter")
    console_page.get_by_role("button", name="查看").click()
    expect(console_page.locator("h2")).to_contain_text("回款")
    expect(console_page.locator("#chart canvas")).to_have_count(1)
    shoot(console_page, "20-report-payments.png", _whole(console_page))
    console_page.get_by_role("link", name="审批时长").click()
    expect(console_page.locator("h2")).to_contain_text("审批时长")
    expect(console_page.locator("#chart canvas")).to_have_count(1)
    expect(console_page.locator("#report-table-1 tbody tr").first).to_be_visible()
    shoot(console_page, "21-report-approval-time.png", _whole(console_page))
    with console_page.expect_download() as download:
        console_page.get_by_role("link", name="下载 Excel（XLSX）").click()
    assert download.value.suggested_filename == "banli-report-approvals.xlsx"
    sheet = load_workbook(io.BytesIO(download.value.path().read_bytes())).worksheets[0]
    assert next(sheet.iter_rows(values_only=True))[0] == "审批人"
