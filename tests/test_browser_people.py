"""The 人员 page and a customer's page in a real Chromium: an admin opens the console from chat, reads
the people list, opens a customer and gives it to another rep (a real form POST with its CSRF token)."""

from __future__ import annotations

from test_browser import ADMIN, expect, open_console, phone, shoot  # noqa: F401 — fixtures used below
from test_browser import pytestmark  # noqa: F401 — skipped where Chromium is missing
from test_sim import MANAGER, REP, demo_factory  # noqa: F401


def test_an_admin_reads_the_people_page_and_changes_a_customers_owner(demo_factory, phone, shoot):  # noqa: F811
    sim = demo_factory()
    console = open_console(phone, sim, ADMIN)
    console.get_by_role("link", name="人员").first.click()
    expect(console.locator("h1")).to_have_text("人员")
    expect(console.locator("table.people tr", has_text=REP.name).first).to_contain_text(MANAGER.name)
    shoot(console, "13-people.png")
    console.get_by_role("link", name="客户").first.click()
    console.fill("input[name=q]", "腾讯")
    console.get_by_role("button", name="查找").click()
    console.locator("table a", has_text="腾讯").first.click()
    before = console.locator(".owner").inner_text().strip()
    after = REP.name if before != REP.name else MANAGER.name
    console.select_option("select[name=owner]", label=after)
    console.get_by_role("button", name="更换负责人").click()
    expect(console.locator(".notice")).to_have_text(f"负责人已从{before}改为{after}。")
    expect(console.locator(".owner")).to_have_text(after)
    expect(console.locator("table.audit tr", has_text="更换负责人")).to_have_count(1)
    shoot(console, "14-customer-detail.png")
