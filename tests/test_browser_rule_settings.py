"""One of the other rules edited in a real Chromium: an admin opens the console from the chat, opens
到期自动处理的申请类型 from the rules page, types a number out of range (refused, the field named, what
was typed kept), corrects it and saves."""

from __future__ import annotations

from test_browser import open_console, phone, pytestmark, shoot  # noqa: F401 — fixtures and skips
from test_sim import demo_factory  # noqa: F401 — a fixture

from playwright.sync_api import expect


def test_an_admin_sets_auto_decide_hours_in_the_console(demo_factory, phone, shoot):  # noqa: F811
    console = open_console(phone, demo_factory())
    console.get_by_role("link", name="规则").first.click()
    console.get_by_role("link", name="修改 到期自动处理的申请类型").click()
    expect(console.locator("h1")).to_have_text("到期自动处理的申请类型")
    console.fill("input[name=hours_通用]", "72")
    console.select_option("select[name=decision_通用]", label="驳回")
    console.fill("input[name=hours_合同]", "9999")
    console.get_by_role("button", name="保存").click()
    expect(console.locator(".problem")).to_contain_text("到期自动处理的申请类型 合同 小时数：应为 1–720 之间的整数")
    expect(console.locator("input[name=hours_通用]")).to_have_value("72")  # what was typed, kept
    expect(console.locator("select[name=decision_通用]")).to_have_value("reject")
    shoot(console, "22-rule-settings.png", clip={"x": 0, "y": 0, "width": 1280, "height": 800})
    console.fill("input[name=hours_合同]", "48")
    console.get_by_role("button", name="保存").click()
    expect(console.locator(".notice")).to_contain_text("已保存「到期自动处理的申请类型」")
    expect(console.locator("#setting-oa\\.auto_decide")).to_contain_text("合同 48小时未处理自动同意；通用 72小时未处理自动拒绝")
