"""/admin/reports: the funnel and weekly follow-ups count right (grouped by the database), a manager sees
only their team, a rep is refused, the CSV carries the table."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from sqlalchemy import select

from chat import SATURDAY_10AM
from storage.db import session_scope
from storage.models import Customer, Deal, Employee, FollowUp
from test_console import company, session_for  # noqa: F401  (fixture)


def _ids(stack, *names):
    with session_scope(stack.runtime.engine) as session:
        return [session.execute(select(Employee.id).where(Employee.name == n)).scalar_one() for n in names]


def _data(stack):
    """张三 (王经理's team): 3 follow-ups this week, 1 last week, 2 deals; 孙五 (another team): 2 follow-ups, 1 deal."""
    zhang, sun = _ids(stack, "张三", "孙五")
    now = SATURDAY_10AM - timedelta(weeks=6)  # 2026-10-10, before the chat fixture's own records
    with session_scope(stack.runtime.engine) as session:
        customer = Customer(name="测试客户有限公司", owner_id=zhang)
        session.add(customer)
        session.flush()
        for person, when in ((zhang, now), (zhang, now - timedelta(days=1)), (zhang, now - timedelta(days=2)),
                             (zhang, now - timedelta(days=7)), (sun, now), (sun, now - timedelta(hours=1))):
            session.add(FollowUp(customer_id=customer.id, employee_id=person, happened_at=when, content="拜访"))
        for person, stage, amount in ((zhang, "初步接触", "100"), (zhang, "赢单", "250.5"), (sun, "初步接触", "9")):
            session.add(Deal(customer_id=customer.id, owner_id=person, title="单", stage=stage,
                             amount=Decimal(amount), created_at=now))


def _rows(page: str) -> list[list[str]]:
    import re
    body = page.split('<table id="report-table">')[1].split("</table>")[0]
    return [re.findall(r"<td>(.*?)</td>", tr) for tr in re.findall(r"<tr>(.*?)</tr>", body, re.S) if "<td>" in tr]


def test_admin_sees_weekly_followups_per_rep(company):
    _data(company)
    page = session_for(company, "赵总").get("/admin/reports/followups?period=custom&since=2026-10-01&until=2026-10-20")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    rows = {r[0]: r for r in _rows(text)}
    assert rows["张三"][-1] == "4" and rows["孙五"][-1] == "2"
    assert sorted(int(c) for c in rows["张三"][1:-1] if c != "0") == [1, 3]  # two weeks: 3 this, 1 the one before
    assert 'type="application/json" id="chart-data"' in text and "echarts.min.js" in text


def test_funnel_counts_by_stage_and_owner_and_manager_sees_only_team(company):
    _data(company)
    url = "/admin/reports/funnel?period=custom&since=2026-10-01&until=2026-10-20"
    admin = session_for(company, "赵总").get(url).get_data(as_text=True)
    rows = {r[0]: r for r in _rows(admin)}
    assert rows["初步接触"][-2:] == ["2", "109.00"] and rows["赢单"][-2:] == ["1", "250.50"]
    manager = session_for(company, "王经理").get(url).get_data(as_text=True)
    rows = {r[0]: r for r in _rows(manager)}
    assert rows["初步接触"][-2:] == ["1", "100.00"] and "孙五" not in manager


def test_rep_is_refused(company):
    assert session_for(company, "张三").get("/admin/reports").status_code == 403


def test_csv_export_and_bad_dates(company):
    _data(company)
    client = session_for(company, "王经理")
    body = client.get("/admin/reports/followups.csv?period=custom&since=2026-10-01&until=2026-10-20")
    lines = body.get_data().decode("utf-8-sig").splitlines()
    assert lines[0].startswith("销售,") and lines[0].endswith(",合计")
    assert [l.split(",")[0] for l in lines[1:]] == ["张三"] and lines[1].endswith(",4")
    bad = client.get("/admin/reports/funnel?period=custom&since=昨天&until=2026-11-30")
    assert bad.status_code == 400 and "开始日期「昨天」不是日期" in bad.get_data(as_text=True)
