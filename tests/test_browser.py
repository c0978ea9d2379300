"""The simulator in a real headless Chromium on a phone-sized screen (Playwright, system Chromium).

Skipped, saying why, where Chromium (`apt-get install chromium fonts-wqy-zenhei`) or the playwright
package is missing. With BANLI_SCREENSHOTS=1 the key screens are written to docs/screenshots/
(otherwise to the test's temporary folder, so a normal run leaves the tree clean).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest

from sim.seed import PEOPLE
from test_sim import MANAGER, REP, demo_factory  # noqa: F401 — demo_factory is a fixture used below

CHROMIUM = "/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else shutil.which("chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic",
        "--no-first-run", "--disable-component-update", "--disable-sync"]
PHONE = {"width": 390, "height": 844}
TIMEOUT_MS = 15_000
SHOTS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"

try:
    from playwright.sync_api import expect, sync_playwright
except ImportError:  # pragma: no cover - depends on the machine
    sync_playwright = None

pytestmark = [
    pytest.mark.skipif(sync_playwright is None, reason="playwright is not installed (pip install -e '.[test]')"),
    pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium fonts-wqy-zenhei)"),
]


@pytest.fixture
def phone():
    """A fresh page on a phone-sized screen; fails the test on any JavaScript error."""
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        context = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True,
                                      locale="zh-CN")
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        yield page
        browser.close()
    assert errors == []


@pytest.fixture
def shoot(tmp_path):
    folder = SHOTS if os.environ.get("BANLI_SCREENSHOTS") == "1" else tmp_path
    folder.mkdir(parents=True, exist_ok=True)

    def save(page, name: str, clip: dict | None = None) -> None:
        page.wait_for_timeout(300)  # let the last re-render and scroll settle
        page.screenshot(path=str(folder / name), full_page=clip is not None, clip=clip)

    return save


def send(page, words: str) -> None:
    page.fill("#text", words)
    page.click("#send")


def test_a_rep_and_a_manager_use_banli_in_the_simulator(demo_factory, phone, shoot):  # noqa: F811
    sim = demo_factory()
    page = phone
    page.goto(f"{sim.url}/sim?platform=wecom&person={REP.key}")
    expect(page.locator("#tab-wecom")).to_have_attribute("aria-selected", "true")
    expect(page.locator(".clock-badge", has_text="模拟时钟")).to_be_visible()

    # 企业微信: 帮助 → the menu card; tap 报销 → the expense card.
    send(page, "帮助")
    menu = page.locator(".wecom-card").filter(has_text="办理 · 主菜单")
    expect(menu).to_be_visible()
    expect(menu).to_contain_text(REP.name)
    assert_readable(page)
    shoot(page, "01-menu-wecom.png")
    menu.get_by_role("button", name="报销").click()
    expense = page.locator(".wecom-card .title", has_text=re.compile(r"^报销"))
    expect(expense).to_be_visible()
    expect(page.locator(".note", has_text="你点了「报销」")).to_be_visible()
    shoot(page, "02-expense-card.png")

    # 钉钉: the same menu as markdown; its 报销 link sends the word 报销 as the user.
    page.click("#tab-dingtalk")
    expect(page.locator("body")).to_have_class("platform-dingtalk")
    send(page, "帮助")
    markdown_menu = page.locator(".md-bubble").filter(has_text="办理 · 主菜单")
    expect(markdown_menu).to_be_visible()
    assert_readable(page)
    shoot(page, "03-dingtalk.png")
    markdown_menu.get_by_role("button", name="报销").click()
    expect(page.locator(".row.me .bubble", has_text=re.compile(r"^报销$"))).to_be_visible()
    expect(page.locator(".md-bubble h3", has_text=re.compile(r"^报销"))).to_be_visible()

    # 模拟时钟 → 08:00: the daily digest goes out; the manager's team digest shows as unread, then opens.
    page.click("#tab-wecom")
    page.click("[data-jump=morning]")
    expect(page.locator("#clock-text")).to_contain_text("08:00")
    manager_option = page.locator(f"#person option[value={MANAGER.key}]")
    expect(manager_option).to_contain_text("条新消息")
    page.select_option("#person", MANAGER.key)
    team = page.locator(".wecom-card").filter(has_text="团队跟进")
    expect(team).to_be_visible()
    expect(page.locator(".wecom-card", has_text="办理 · 主菜单")).to_have_count(0)  # her screen, not the rep's
    shoot(page, "04-manager-push.png")


def test_a_photo_and_a_location_from_the_tray(demo_factory, phone, tmp_path):  # noqa: F811
    sim = demo_factory()
    page = phone
    page.goto(f"{sim.url}/sim?platform=wecom&person={REP.key}")
    page.click("#more")
    photo = tmp_path / "invoice.png"
    photo.write_bytes(bytes.fromhex(
        "89504e470d0a1a0a0000000d494844520000000100000001080600000"
        "01f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"))
    page.set_input_files("#photo-input", str(photo))
    expect(page.locator(".row.me img")).to_be_visible()
    expect(page.locator(".wecom-card .title", has_text="收到图片")).to_be_visible()
    page.click("#more")
    page.click("[data-place=nanshan]")
    expect(page.locator(".row.me .location")).to_contain_text("科技园")
    expect(page.locator(".wecom-card .title", has_text="收到位置")).to_be_visible()
    page.click("#tab-dingtalk")
    page.click("#more")
    expect(page.locator("#no-location")).to_be_visible()
    expect(page.locator("#places")).to_be_hidden()


def assert_readable(page) -> None:
    """Older staff read this on a phone: no visible text under 16px, no tap target under 40px."""
    sizes = page.evaluate("""() => Array.from(document.querySelectorAll('body *'))
        .filter(e => e.offsetParent !== null && e.childNodes.length &&
                     Array.from(e.childNodes).some(n => n.nodeType === 3 && n.textContent.trim()))
        .map(e => [e.className || e.tagName, parseFloat(getComputedStyle(e).fontSize)])""")
    small = [s for s in sizes if s[1] < 16]
    assert small == [], small
    heights = page.evaluate("""() => Array.from(document.querySelectorAll('button, select, input[type=text]'))
        .filter(e => e.offsetParent !== null).map(e => [e.textContent, e.getBoundingClientRect().height])""")
    low = [h for h in heights if h[1] < 40]
    assert low == [], low


LAPTOP = {"width": 1280, "height": 800}
ADMIN = next(p for p in PEOPLE if p.role == "admin")


def open_console(page, sim, person):
    """How an admin or a manager gets into the console: `person` types 后台 in the simulator's DingTalk
    chat and follows the sign-in link Banli answers with. The console's page, at a laptop's width."""
    page.goto(f"{sim.url}/sim?platform=dingtalk&person={person.key}")
    send(page, "后台")
    link = page.locator(".md-bubble a", has_text="打开后台")
    console = page.context.new_page()
    console.set_viewport_size(LAPTOP)
    console.goto(link.get_attribute("href"))
    return console


def test_an_admin_opens_the_console_from_the_chat_and_reads_the_audit_log(demo_factory, phone, shoot):  # noqa: F811
    sim = demo_factory()
    sim.send("wecom", REP.key, "后台")  # refused, and the refusal is in the log the admin reads below
    assert "只有管理员和经理可以打开后台" in json.dumps(sim.wait_bot("wecom", REP.key, 1)[0], ensure_ascii=False)
    page = phone
    page.goto(f"{sim.url}/sim?platform=dingtalk&person={ADMIN.key}")
    send(page, "后台")
    link = page.locator(".md-bubble a", has_text="打开后台")
    expect(link).to_be_visible()
    shoot(page, "05-console-link.png")
    with page.context.expect_page() as opened:  # the link opens a new tab, as a chat app's browser would
        link.click()
    console = opened.value
    console.set_viewport_size(LAPTOP)
    expect(console.locator("h1")).to_have_text(f"{ADMIN.name}，您好")
    console.get_by_role("link", name="审计日志").first.click()
    expect(console.locator("h1")).to_have_text("审计日志")
    refused = console.locator("table.audit tr", has_text="被拒绝").filter(has_text=REP.name)
    expect(refused.first).to_contain_text("console.link")
    expect(console.locator("table.audit tr", has_text="登录后台").filter(has_text=ADMIN.name)).to_have_count(1)
    shoot(console, "06-console-audit.png")
    failed = _failed_send(sim, ADMIN)
    console.get_by_role("link", name="发送队列").click()
    expect(console.locator("h1")).to_have_text("发送队列")
    row = console.locator("tr", has_text="60020")
    expect(row).to_contain_text("not allow to access from your ip")
    shoot(console, "07-console-queue.png")
    row.get_by_role("button", name="放弃").click()  # a real form POST with its CSRF token
    expect(console.locator(".notice")).to_have_text(f"#{failed} 已放弃，不再发送。")
    expect(console.locator("tr", has_text="60020")).to_have_count(0)
    # The same link a second time: refused, in words.
    again = console.context.new_page()
    again.goto(link.get_attribute("href"))
    expect(again.locator(".problem")).to_contain_text("已经用过")


def _failed_send(sim, person) -> int:
    """A message the platform refused for good (WeCom's 60020: the server's IP is not trusted)."""
    from sqlalchemy import select

    from storage import outbox
    from storage.db import session_scope
    from storage.models import Outbox

    with session_scope(sim.demo.runtime.engine) as session:
        outbox.add(session, key="browser-test:failed", kind="message", payload={}, platform="wecom",
                   recipient=person.wecom_id)
        session.flush()
        row = session.execute(select(Outbox).where(Outbox.key == "browser-test:failed")).scalar_one()
        row.status, row.attempts = "dead", 8
        row.last_error = "errcode 60020: not allow to access from your ip, hint: [1764000000_12_ab]"
        return row.id


def test_an_admin_reads_the_rules_dry_runs_and_reorders(demo_factory, phone, shoot):  # noqa: F811
    sim = demo_factory()
    sim.send("wecom", ADMIN.key, "审批规则 新增 报销 金额 > 5000：直属上级 → 财务 → 总经理")
    added = json.dumps(sim.wait_bot("wecom", ADMIN.key, 1)[0], ensure_ascii=False)
    new_id = re.search(r"规则#(\d+)", added).group(1)
    assert "前面" in added  # put before 金额 > 1000, which would always win
    console = open_console(phone, sim, ADMIN)
    console.get_by_role("link", name="规则").first.click()
    expect(console.locator("h1")).to_have_text("规则")
    row = console.locator(f"#rule-{new_id}")
    expect(row).to_contain_text("申请人 → 直属上级 → 财务 → 总经理")
    row.get_by_role("button", name=f"下移 #{new_id}").click()  # behind 金额 > 1000: it can never apply now
    expect(console.locator(".notice")).to_contain_text(f"#{new_id} 已下移一位")
    expect(console.locator(f"#rule-{new_id}")).to_contain_text("永远不会生效")
    console.select_option("select[name=type]", "报销")
    console.fill("input[name=amount]", "8000")
    console.select_option("select[name=requester]", label=f"{REP.name}（{REP.department}）")
    console.get_by_role("button", name="试算").click()
    result = console.locator(".result")
    expect(result).to_contain_text(f"审批人：{MANAGER.name} → 财务")
    expect(result).not_to_contain_text("总经理")
    # The dry run and the 报销 rules, warning included: the top of a page taller than the screen.
    bottom = console.evaluate("[...document.querySelectorAll('h3')].find(h => h.textContent === '请假')"
                              ".getBoundingClientRect().top + window.scrollY")
    shoot(console, "08-console-rules.png", clip={"x": 0, "y": 0, "width": LAPTOP["width"], "height": bottom})


def test_an_admin_merges_two_duplicate_customers_and_sees_the_export_page(demo_factory, phone, shoot):  # noqa: F811
    sim = demo_factory()
    twin = _duplicate_of_tencent(sim)
    page = phone
    page.goto(f"{sim.url}/sim?platform=dingtalk&person={ADMIN.key}")
    send(page, "后台")
    link = page.locator(".md-bubble a", has_text="打开后台")
    with page.context.expect_page() as opened:
        link.click()
    console = opened.value
    console.set_viewport_size(LAPTOP)
    console.get_by_role("link", name="客户").first.click()
    console.fill("input[name=q]", "鹅厂")
    console.get_by_role("button", name="查找").click()
    expect(console.locator("table tr", has_text="深圳市腾讯计算机系统有限公司")).to_have_count(1)
    console.fill("input[name=keep]", str(twin["kept"]))
    console.fill("input[name=gone]", str(twin["gone"]))
    console.get_by_role("button", name="预览合并").click()
    expect(console.locator("h1")).to_have_text("合并客户")
    expect(console.locator("li", has_text="跟进记录")).to_have_text("跟进记录：1 条")
    shoot(console, "09-console-merge.png")
    console.get_by_role("button", name="确认合并").click()  # a real form POST with its CSRF token
    expect(console.locator(".notice")).to_contain_text(f"#{twin['kept']} 腾讯科技(深圳)有限公司")
    console.get_by_role("link", name="导出").first.click()
    expect(console.locator("h1")).to_have_text("导出")
    expect(console.locator("a[href$='/admin/export/customers.xlsx']")).to_be_visible()
    shoot(console, "10-console-export.png")
    send(page, "鹅厂")  # the chat now opens the kept customer by the duplicate's name
    expect(page.locator(".bubble", has_text="腾讯科技(深圳)有限公司").last).to_be_visible()


def _duplicate_of_tencent(sim) -> dict[str, int]:
    """腾讯 entered twice: a second row under its other legal name, 简称 鹅厂, with one visit."""
    from sqlalchemy import select

    from storage.db import session_scope
    from storage.models import Customer, Employee, FollowUp
    from workflows.matching import refresh_forms

    with session_scope(sim.demo.runtime.engine) as session:
        kept = session.execute(select(Customer).where(Customer.name == "腾讯科技(深圳)有限公司")).scalar_one()
        rep = session.execute(select(Employee).where(Employee.name == REP.name)).scalars().first()
        twin = Customer(name="深圳市腾讯计算机系统有限公司", short_names="鹅厂", owner_id=rep.id)
        refresh_forms(twin)
        session.add(twin)
        session.flush()
        session.add(FollowUp(customer_id=twin.id, employee_id=rep.id, content="鹅厂那边的拜访"))
        return {"kept": kept.id, "gone": twin.id}
