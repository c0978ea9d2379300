"""The console's customer import in a real Chromium: an admin opens the console from the chat, uploads
a CSV with a duplicate (of the demo's 腾讯) and a bad row, reads the preview, and confirms it."""

from __future__ import annotations

from test_browser import ADMIN, open_console, phone, pytestmark, shoot  # noqa: F401 — fixtures and skips
from test_sim import demo_factory  # noqa: F401 — a fixture

from playwright.sync_api import expect

CSV = "\n".join(["客户名称,简称,等级,负责人", "苏州园区设计院,园区设计,A,公海",
                 "腾讯科技(深圳)有限公司,腾讯,A,公海", "北京某某商贸有限公司,,D,公海",
                 "无锡锡山物流有限公司,,B,公海"]) + "\n"


def test_an_admin_imports_a_csv_with_a_duplicate_and_a_bad_row(demo_factory, phone, shoot, tmp_path):  # noqa: F811
    sim = demo_factory()
    console = open_console(phone, sim, ADMIN)
    console.get_by_role("link", name="导入").first.click()
    expect(console.locator("h1")).to_have_text("导入客户")
    file = tmp_path / "客户表.csv"
    file.write_text(CSV, encoding="utf-8")
    console.set_input_files("input[name=file]", str(file))
    console.get_by_role("button", name="上传并预览").click()
    expect(console.locator("tr", has_text="第3行")).to_contain_text("已有客户「腾讯科技(深圳)有限公司」")
    expect(console.locator("tr", has_text="第4行")).to_contain_text("等级")
    shoot(console, "15-import-preview.png", clip={"x": 0, "y": 0, "width": 1280, "height": 800})
    console.get_by_role("button", name="确认导入 2 个客户").click()
    expect(console.locator(".notice")).to_contain_text("已导入 2 个客户")
