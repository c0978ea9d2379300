"""The 报表 page in a real browser: the manager opens the console from chat, the funnel and the weekly
follow-ups draw their ECharts canvas (no JavaScript error: the phone fixture fails on any)."""

from __future__ import annotations

from playwright.sync_api import expect

from test_browser import open_console, phone, shoot  # noqa: F401 — fixtures
from test_sim import MANAGER, demo_factory  # noqa: F401 — fixture


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
