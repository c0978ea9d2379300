"""`banli doctor`: is this Banli set up right for the real WeCom / DingTalk? A checklist for an IT admin.

Each configured platform is checked against its real API (bot/wecom/doctor.py, bot/dingtalk/doctor.py):
token, sending rights, directory reads, card template, callback or stream. Every failure says what the
platform answered and where to fix it. Secrets are never printed, only masked. Exit 1 on any failure.
"""

from __future__ import annotations

from typing import Callable, Iterable

from banli.settings import DINGTALK_VARS, WECOM_VARS, Settings
from bot.checks import FAIL, INFO, PASS, Check, mask

MARKS = {PASS: "✓", FAIL: "✗", INFO: "–"}


def run(settings: Settings, *, public_url: str = "", out: Callable[[str], None] = print) -> int:
    """Print the checklist; 1 if any check failed, else 0."""
    public_url = (public_url or settings.public_url).rstrip("/")
    out("办理 Banli doctor — 上线前检查 / setup check")
    results: list[Check] = []
    if settings.wecom:
        from bot.wecom.doctor import checks as wecom_checks

        w = settings.wecom
        out(f"\n企业微信 WeCom — corp {w.corp_id}, agent {w.agent_id}, secret {mask(w.secret)}, "
            f"api {w.api_base}")
        results += _print(wecom_checks(w, public_url), out)
    else:
        out(f"\n企业微信 WeCom — 未配置，跳过 not configured, skipped (set {', '.join(WECOM_VARS)})")
    if settings.dingtalk:
        from bot.dingtalk.doctor import checks as dingtalk_checks

        d = settings.dingtalk
        out(f"\n钉钉 DingTalk — app {d.app_key}, secret {mask(d.app_secret)}, robot {d.robot_code}, "
            f"mode {d.mode}, api {d.api_base}")
        results += _print(dingtalk_checks(d, public_url), out)
    else:
        out(f"\n钉钉 DingTalk — 未配置，跳过 not configured, skipped (set {', '.join(DINGTALK_VARS)}; "
            "optional DINGTALK_ROBOT_CODE, DINGTALK_CARD_TEMPLATE_ID, DINGTALK_MODE)")
    if settings.language_model:  # optional; unset, nothing to check and nothing said
        from bot.llm import doctor_checks as model_checks

        m = settings.language_model
        out(f"\n语言模型 language model (optional) — {m.model} at {m.url}, key {mask(m.key) if m.key else 'none'}")
        results += _print(model_checks(m), out)
    failures = sum(c.failed for c in results)
    passes = sum(c.status == PASS for c in results)
    out("")
    if not settings.wecom and not settings.dingtalk:
        out("✗ 没有配置任何平台 no platform is configured (see README: Connecting a real WeCom / DingTalk app)")
        return 1
    out(f"{'✗' if failures else '✓'} 结果 result: {failures} 项失败 failed, {passes} 项通过 passed"
        + ("" if failures else " — 可以上线 ready"))
    return 1 if failures else 0


def _print(checks: Iterable[Check], out: Callable[[str], None]) -> list[Check]:
    checks = list(checks)
    for check in checks:
        line = f"  {MARKS[check.status]} {check.title}: {check.detail}"
        out(line + (f" — {check.fix}" if check.fix else ""))
    return checks
