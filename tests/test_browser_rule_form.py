"""The rule form in a real Chromium: an admin opens the console from chat, edits a routing rule (a
step added with 加一步), dry-runs the edit next to today's chain, publishes it; in the simulator a new
request then follows the new chain while one submitted before keeps the chain it was given."""

from __future__ import annotations

import json

from sqlalchemy import select

from sim.seed import PEOPLE
from storage.db import session_scope
from storage.models import ApprovalRequest, ApprovalRule
from test_browser import LAPTOP, expect, open_console, phone, send, shoot  # noqa: F401 — fixtures used below
from test_browser import pytestmark  # noqa: F401 — skipped where Chromium is missing
from test_sim import MANAGER, REP, _link_words, demo_factory  # noqa: F401

CEO = next(p for p in PEOPLE if p.role == "ceo")


def test_an_admin_edits_dry_runs_and_publishes_a_rule(demo_factory, phone, shoot):  # noqa: F811
    sim = demo_factory()
    sim.send("dingtalk", REP.key, "报销 出租车 3000")  # submitted before the edit: keeps 上级 → 财务
    sim.send("dingtalk", REP.key, _link_words(sim.wait_bot("dingtalk", REP.key, 1)[0])["提交"])
    sim.wait_bot("dingtalk", REP.key, 2)
    rule_id = _rule_for(sim, "amount > 1000")

    page = phone
    console = open_console(page, sim)
    console.get_by_role("link", name="规则").first.click()
    console.get_by_role("link", name=f"编辑 #{rule_id}").click()
    expect(console.locator("h1")).to_have_text(f"编辑规则 #{rule_id}")
    expect(console.locator("tr.step:visible")).to_have_count(2)  # its 2 steps; empty rows wait for 加一步
    console.select_option("select[name=step2_mode]", "会签")
    console.get_by_role("button", name="＋ 加一步").click()
    console.select_option("select[name=step3_kind]", "角色")
    console.select_option("select[name=step3_role]", "总经理")
    expect(console.locator("select[name=step3_person]")).to_be_hidden()  # only the picker the kind needs
    console.select_option("select[name=try_type]", "报销")
    console.fill("input[name=try_amount]", "3000")
    console.select_option("select[name=try_requester]", label=f"{REP.name}（{REP.department}）")
    console.get_by_role("button", name="试算").click()
    result = console.locator("#dry-run-result")
    now, then = result.locator(".side").nth(0), result.locator(".side").nth(1)
    expect(now).to_contain_text(f"审批人：{MANAGER.name} → 财务")
    expect(now).not_to_contain_text(CEO.name)
    expect(then).to_contain_text(f"(会签) → 总经理 {CEO.name}")
    expect(console.locator("select[name=step3_role]")).to_have_value("总经理")  # the edit is kept
    shoot(console, "11-rule-edit.png", clip=_clip(console, "h1", "fieldset:has(legend:text('抄送与例外'))"))
    shoot(console, "12-rule-dry-run.png", clip=_clip(console, "fieldset#dry-run", ".publish"))

    console.get_by_role("button", name="发布第2版").click()
    expect(console.locator(".notice")).to_contain_text("已发布第2版")
    console.get_by_role("link", name="规则").first.click()
    expect(console.locator(f"#rule-{rule_id}")).to_contain_text("第2版")
    expect(console.locator(f"#rule-{rule_id}")).to_contain_text("财务（会签） → 总经理")

    page.goto(f"{sim.url}/sim?platform=dingtalk&person={REP.key}")
    send(page, "报销 住宿 4000")
    confirm = page.locator(".md-bubble", has_text="住宿").last
    expect(confirm).to_contain_text("财务 钱丽华/郑晓燕(会签) → 总经理")  # the new chain, before it is submitted
    confirm.get_by_role("button", name="提交").click()
    expect(page.locator(".md-bubble h3", has_text="已提交")).to_have_count(2)  # the first one and this one
    assert _chains(sim) == [["直属上级", "财务"], ["直属上级", "财务", "总经理"]]


def _rule_for(sim, condition: str) -> int:
    with session_scope(sim.demo.runtime.engine) as session:
        return session.execute(select(ApprovalRule.id).where(ApprovalRule.request_type == "报销",
                                                             ApprovalRule.condition == condition)).scalar_one()


def _chains(sim) -> list[list[str]]:
    with session_scope(sim.demo.runtime.engine) as session:
        found = session.execute(select(ApprovalRequest).where(ApprovalRequest.status == "pending")
                                .order_by(ApprovalRequest.id)).scalars()
        return [[step["label"] for step in json.loads(r.chain)] for r in found]


def _clip(page, top: str, bottom: str) -> dict:
    """From the top of `top` to the bottom of `bottom`, the page's full width."""
    start = page.locator(top).first.bounding_box()["y"] + page.evaluate("window.scrollY")
    box = page.locator(bottom).first.bounding_box()
    end = box["y"] + box["height"] + page.evaluate("window.scrollY")
    return {"x": 0, "y": max(start - 12, 0), "width": LAPTOP["width"], "height": end - start + 24}
