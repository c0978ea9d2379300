"""发送队列's health in a real browser: the demo's own threads (web, worker, dispatcher) beating, a
worker on another host that stopped, and DingTalk's calls this month past 80 % of the quota."""

from __future__ import annotations

from datetime import timedelta

from playwright.sync_api import expect
from sqlalchemy import text

from test_browser import ADMIN, open_console, phone, shoot  # noqa: F401 — fixtures
from test_browser import pytestmark  # noqa: F401 — skipped where Chromium is missing
from test_sim import demo_factory  # noqa: F401 — fixture
from conftest import wait_for
from storage.db import session_scope
from storage.models import ProcessBeat
from workflows import api_usage


def test_an_admin_sees_which_processes_run_and_the_months_dingtalk_calls(demo_factory, phone, shoot):  # noqa: F811
    sim = demo_factory()
    runtime = sim.demo.runtime
    wait_for(lambda: _beats(runtime) >= 3)  # the demo's web process, worker thread and dispatcher
    now = runtime.now()
    with session_scope(runtime.engine) as session:
        session.add(ProcessBeat(kind="worker", name="banli-worker-1", host="banli-2", pid=4242, jobs=1318,
                                started_at=now - timedelta(hours=6), last_seen=now - timedelta(minutes=20)))
        month = api_usage.month_of(now, runtime.settings.timezone)
        totals = api_usage.add_calls(session, {("dingtalk", month): 4_180, ("wecom", month): 2_946}, now=now)
        api_usage.warn_if_near(session, "dingtalk", month, totals[("dingtalk", month)], quota=5000, now=now)
    console = open_console(phone, sim, ADMIN)
    console.get_by_role("link", name="发送队列").first.click()
    expect(console.locator("h1")).to_have_text("发送队列")
    expect(console.locator("table.processes tr.alive")).to_have_count(3)
    expect(console.locator("table.processes tr.stopped")).to_contain_text("已停止")
    expect(console.locator(".meter.warn")).to_contain_text(" / 5,000 次（83%）")  # 4,180, and the demo's own calls
    expect(console.locator(".meter.warn")).to_contain_text("已提醒管理员")
    shoot(console, "16-queue-health.png", clip={"x": 0, "y": 0, "width": 1280, "height": 1330})


def _beats(runtime) -> int:
    with runtime.engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM process_beat")).scalar_one()
