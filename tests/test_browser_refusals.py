"""What the console refuses, in a real browser, each in words and with nothing changed: a login link
used after its 10 minutes, a manager's session on an admin-only page, and a form posted without its
CSRF token (the page's own form, its hidden token taken out)."""

from __future__ import annotations

import requests
from playwright.sync_api import expect

from test_browser import ADMIN, open_console, phone, pytestmark, send  # noqa: F401 — fixtures and skips
from test_sim import MANAGER, demo_factory  # noqa: F401 — a fixture


def test_a_login_link_used_after_ten_minutes_is_refused(demo_factory, phone):  # noqa: F811
    sim = demo_factory()
    phone.goto(f"{sim.url}/sim?platform=dingtalk&person={ADMIN.key}")
    send(phone, "后台")
    href = phone.locator(".md-bubble a", has_text="打开后台").get_attribute("href")
    requests.post(f"{sim.url}/sim/api/clock", json={"jump": "hour"}, timeout=5)
    late = phone.context.new_page()
    response = late.goto(href)
    assert response.status == 403
    expect(late.locator(".problem")).to_contain_text("已经过期")
    expect(late.get_by_role("link", name="审计日志")).to_have_count(0)  # no session was opened


def test_a_managers_session_is_refused_on_an_admin_page(demo_factory, phone):  # noqa: F811
    sim = demo_factory()
    console = open_console(phone, sim, MANAGER)
    expect(console.get_by_role("link", name="报表").first).to_be_visible()  # the manager's own pages
    expect(console.get_by_role("link", name="发送队列")).to_have_count(0)
    response = console.goto(f"{sim.url}/admin/queue")
    assert response.status == 403
    expect(console.locator("h1")).to_have_text("没有权限")


def test_a_form_posted_without_its_csrf_token_changes_nothing(demo_factory, phone):  # noqa: F811
    sim = demo_factory()
    console = open_console(phone, sim, ADMIN)
    console.get_by_role("link", name="规则").first.click()
    first = console.locator("table tbody tr").first
    rule = first.get_attribute("id")
    down = first.get_by_role("button", name="下移").first
    down.evaluate("button => button.form.querySelector('input[name=csrf]').remove()")
    down.click()
    expect(console.locator("h1")).to_have_text("请求无效")
    console.goto(f"{sim.url}/admin/rules")
    expect(console.locator("table tbody tr").first).to_have_attribute("id", rule)  # still first
