"""规则: admins read and set the company's rules in chat.

`规则` lists every rule; `规则 <名称或标签> <值>` sets one, written the way people type:
    规则 crm.overdue_days A=5 B=10 C=20     (or `A5 B10`, or `5 10 20`; tiers left out keep their value)
    规则 免打扰时段 22:00-07:30 08:00        (start-end, then when held pushes go out; default: the end)
    规则 crm.skip_weekends 否
    规则 crm.deal_stages 初步接触,方案报价,商务谈判,赢单,输单
    规则 owner_cap 100
The friendly form becomes the rule's JSON value and goes through `rules.put`, which validates (a bad
value is refused naming the field, nothing stored) and audits.
"""

from __future__ import annotations

import json
import re
from typing import Any

from cards import Button, Card
from handlers.menu import MENU_BUTTONS
from handlers import refusals
from handlers.router import Context, Routes
from storage.models import REQUEST_TYPES, TIERS
from workflows import roles, rules, workdays
from workflows.rules import InvalidRule, RuleSpec, show

routes = Routes()

EXAMPLE = "规则 crm.overdue_days A=5 B=10 C=20"
YES = {"是", "开", "开启", "打开", "对", "要", "true", "yes", "on", "1", "y"}
NO = {"否", "关", "关闭", "不", "不要", "false", "no", "off", "0", "n"}
LIST_BUTTON = Button("查看规则", "rules.list", command="规则")


@routes.command("规则", prefix=True)
@routes.action("rules.list")
def rules_command(ctx: Context) -> Card:
    if not roles.is_admin(ctx.session, ctx.employee):
        return refusals.refuse(ctx, attempted="rules", why="not an admin", subject="rules", title="只有管理员能改规则",
                       body="规则（超期天数、公海、免打扰时段等）由管理员设置。需要调整请联系管理员。", buttons=MENU_BUTTONS)
    rest = "" if ctx.event.kind == "action" else ctx.event.text.strip()[len("规则"):].strip()
    if not rest:
        return _listing(ctx)
    word, _, value = rest.partition(" ")
    spec = find_spec(word)
    if spec is None:
        return Card(title="没有这条规则", body=f"没有叫「{word}」的规则。发「规则」看全部名称。", buttons=(LIST_BUTTON,))
    if not value.strip():
        return Card(title=spec.label, body=f"{spec.name} 现在是：{show(spec, rules.get(ctx.session, spec.name))}\n"
                                           f"修改：规则 {spec.name} {_hint(spec)}", buttons=(LIST_BUTTON,))
    try:
        parsed = parse(spec, value.strip(), rules.get(ctx.session, spec.name))
        stored = rules.put(ctx.session, spec.name, parsed, by=ctx.employee, platform=ctx.event.platform)
    except InvalidRule as bad:
        return Card(title="没有保存", body=f"{bad.field}：{bad.message}\n例如：规则 {spec.name} {_hint(spec)}",
                    buttons=(LIST_BUTTON,))
    return Card(title=f"已修改 · {spec.label}"[:36], body=f"{spec.name} 现在是：{show(spec, stored)}",
                buttons=(LIST_BUTTON,), footer="修改已记入审计日志")


def find_spec(word: str) -> RuleSpec | None:
    """By name (`crm.owner_cap`, or without `crm.`) or by label (`免打扰时段`)."""
    word = word.strip().lower()
    for spec in rules.SPECS.values():
        if word in (spec.name, spec.name.split(".", 1)[-1], spec.label.lower()):
            return spec
    partial = [spec for spec in rules.SPECS.values() if len(word) >= 2 and word in spec.label.lower()]
    return partial[0] if len(partial) == 1 else None


def parse(spec: RuleSpec, text: str, current: Any) -> Any:
    """The friendly form → the JSON value the rule stores, by the shape of its default."""
    default = spec.default
    if isinstance(default, bool):
        word = text.strip().lower()
        if word in YES or word in NO:
            return word in YES
        raise InvalidRule(spec.label, f"应为 是/否，收到「{text}」")
    if isinstance(default, str):  # a clock time (09:00, 9:30, 9点)
        clock = re.fullmatch(r"(\d{1,2})(?:[:：](\d{2})|点半?|点)?", text.strip())
        if not clock:
            raise InvalidRule(spec.label, f"时间格式应为 HH:MM，如 {default}，收到「{text}」")
        minutes = clock.group(2) or ("30" if text.strip().endswith("点半") else "00")
        return f"{int(clock.group(1)):02d}:{minutes}"
    if isinstance(default, int):
        number = re.fullmatch(r"(-?\d+)\s*(天|家|个|次)?", text)
        if not number:
            raise InvalidRule(spec.label, f"应为整数，收到「{text}」")
        return int(number.group(1))
    if isinstance(default, list):
        return [s for s in re.split(r"[,，、;；/\s]+", text) if s]
    if isinstance(default, dict) and set(default) == set(TIERS):
        return _per_tier(spec, text, current)
    if isinstance(default, dict) and "release" in default:
        return _quiet(spec, text)
    if spec.name == "oa.auto_decide":
        return _auto_decide(spec, text, current)
    if spec.name == "oa.working_hours":
        return _working_hours(spec, text)
    try:
        return json.loads(text)
    except ValueError:
        raise InvalidRule(spec.label, f"看不懂「{text}」") from None


def _per_tier(spec: RuleSpec, text: str, current: dict[str, int]) -> dict[str, Any]:
    tagged = re.findall(r"([A-Za-z])\s*[=:：]?\s*(\d+)", text)
    if tagged:
        value = dict(current)
        for tier, days in tagged:
            if tier.upper() not in TIERS:
                raise InvalidRule(spec.label, f"等级只有 {'/'.join(TIERS)}，收到「{tier}」")
            value[tier.upper()] = int(days)
        return value
    numbers = re.findall(r"\d+", text)
    if len(numbers) == len(TIERS):
        return dict(zip(TIERS, map(int, numbers)))
    raise InvalidRule(spec.label, f"请写成 {_hint(spec)}")


def _quiet(spec: RuleSpec, text: str) -> dict[str, str]:
    times = [_hhmm(t) for t in re.findall(r"\d{1,2}[:：]\d{2}", text)]
    if len(times) not in (2, 3):
        raise InvalidRule(spec.label, f"请写成「开始-结束 补发时间」，如 {_hint(spec)}")
    start, end = times[:2]
    return {"start": start, "end": end, "release": times[2] if len(times) == 3 else end}


DECISIONS = {"approve": "approve", "同意": "approve", "自动同意": "approve", "通过": "approve", "自动通过": "approve",
             "reject": "reject", "拒绝": "reject", "自动拒绝": "reject", "驳回": "reject"}
OFF = {"关", "关闭", "取消", "不要", "停用", "off", "无"}


def _auto_decide(spec: RuleSpec, text: str, current: dict[str, Any]) -> dict[str, Any]:
    """`通用 72 approve` / `报销 48小时 拒绝; 通用 关` — each type changed, the others kept; `无` clears all."""
    if text.strip().lower() in OFF:
        return {}
    value = dict(current)
    for part in (p.strip() for p in re.split(r"[;；,，\n]+", text) if p.strip()):
        words = part.split()
        kind = words[0]
        if kind not in REQUEST_TYPES:
            raise InvalidRule(f"{spec.label} 申请类型", f"不认识「{kind}」，可用 {'、'.join(REQUEST_TYPES)}")
        if len(words) == 2 and words[1].lower() in OFF:
            value.pop(kind, None)
            continue
        hours = re.fullmatch(r"(\d+)\s*(?:小时|h)?", words[1]) if len(words) == 3 else None
        if hours is None:
            raise InvalidRule(spec.label, f"请写成「类型 小时数 同意/拒绝」，如 {_hint(spec)}；收到「{part}」")
        if words[2].lower() not in DECISIONS:
            raise InvalidRule(f"{spec.label} {kind} 处理方式", f"应为 同意 或 拒绝，收到「{words[2]}」")
        value[kind] = {"hours": int(hours.group(1)), "decision": DECISIONS[words[2].lower()]}
    return value


def _working_hours(spec: RuleSpec, text: str) -> dict[str, str]:
    times = [_hhmm(t) for t in re.findall(r"\d{1,2}[:：]\d{2}", text)]
    if len(times) != 2:
        raise InvalidRule(spec.label, f"请写成「上班-下班」，如 {_hint(spec)}，收到「{text}」")
    return {"start": times[0], "end": times[1]}


def _hhmm(text: str) -> str:
    hours, minutes = re.split(r"[:：]", text)
    return f"{int(hours):02d}:{minutes}"


def _hint(spec: RuleSpec) -> str:
    default = spec.default
    if spec.example:
        return spec.example
    if isinstance(default, bool):
        return "是 / 否"
    if isinstance(default, (int, str)):
        return str(default)
    if isinstance(default, list):
        return ",".join(default)
    if isinstance(default, dict) and "release" in default:
        return "21:00-08:00 08:30"
    if spec.name == "oa.auto_decide":
        return "通用 72 同意"
    if spec.name == "oa.working_hours":
        return "09:00-18:00"
    return " ".join(f"{t}={default[t]}" for t in TIERS)


def calendar_note(this_year: int) -> str:
    """Which years' official holidays Banli knows: next year's arrangement comes out each winter, and
    until the package knows it, days off there are only weekends plus the company's own days."""
    known = workdays.covered_until()
    note = f"· 法定节假日和调休：已收录到 {known} 年"
    if known <= this_year:
        note += (f"\n  {known + 1} 年的安排还没有收录：发布后请升级 chinese-calendar，"
                 f"或先用「规则 oa.extra_holidays 日期,日期」添加")
    return note


def _listing(ctx: Context) -> Card:
    lines = [f"· {spec.label}：{show(spec, rules.get(ctx.session, spec.name))}\n  {spec.name}"
             for spec in rules.SPECS.values()]
    lines.append(calendar_note(ctx.now.year))
    # No buttons: the card goes as plain text, which is not cut short like a button card's body.
    return Card(title="规则", body="\n".join(lines), footer=f"修改：{EXAMPLE}")
