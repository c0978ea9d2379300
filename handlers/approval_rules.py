"""`审批规则`: admins read and edit who approves what, from the chat (or the console's rule form, /admin/rules).

    审批规则                       list, in the order they are tried
    审批规则 新增 报销 金额 > 5000：直属上级 → 财务 → 总经理
    审批规则 修改 3 金额 > 2000：直属上级 → 财务(会签) 抄送 法务 找不到时 自动通过
    审批规则 停用 3 · 审批规则 启用 3 · 审批规则 优先级 3 15
"""

from __future__ import annotations

import re
from dataclasses import replace

from sqlalchemy import select

from cards import Button, Card
from handlers import refusals
from handlers.router import Context, Routes
from storage.models import REQUEST_TYPES, ApprovalRule
from workflows import roles
from workflows.approvals.conditions import display
from workflows.approvals.rule_admin import (RuleError, add_rule, change_rule, describe, parse_rule_text, place,
                                            warnings)

routes = Routes()

HELP_BUTTON = Button("帮助", "help", command="帮助")
EXAMPLES = ("审批规则 新增 报销 金额 > 5000：直属上级 → 财务 → 总经理\n"
            "审批规则 修改 3 金额 > 2000：直属上级 → 财务(会签)\n"
            "审批规则 停用 3 · 审批规则 启用 3 · 审批规则 优先级 3 15")


@routes.command("审批规则", "审批流程", prefix=True)
def approval_rules(ctx: Context) -> Card:
    if not roles.is_admin(ctx.session, ctx.employee):
        return refusals.refuse(ctx, attempted="approval_rules", why="not an admin", subject="approval_rules",
                       title="只有管理员能改", body="审批规则由管理员设置。想知道谁审批，发「谁审批 报销 3000」。")
    words = re.sub(r"^(审批规则|审批流程)\s*", "", ctx.event.text.strip())
    verb, _, rest = words.partition(" ")
    try:
        if not words:
            return _listing(ctx)
        if verb in ("新增", "添加", "加"):
            return _add(ctx, rest.strip())
        if verb in ("修改", "改"):
            rule, rest = _numbered(ctx, rest)
            change_rule(ctx.session, rule, by=ctx.employee, platform=ctx.event.platform,
                        words=parse_rule_text(ctx.session, rest))
            return _saved(ctx, rule, "已修改")
        if verb in ("停用", "启用"):
            rule, _ = _numbered(ctx, rest)
            change_rule(ctx.session, rule, by=ctx.employee, platform=ctx.event.platform, active=verb == "启用")
            return _saved(ctx, rule, f"已{verb}")
        if verb == "优先级":
            rule, rest = _numbered(ctx, rest)
            if not rest.strip().isdigit():
                raise RuleError("优先级：写一个数字，越小越先匹配，比如「审批规则 优先级 3 15」")
            change_rule(ctx.session, rule, by=ctx.employee, platform=ctx.event.platform, priority=int(rest))
            return _saved(ctx, rule, "已调整顺序")
    except RuleError as problem:
        return Card(title="规则没有保存", body=f"{problem}\n\n写法：\n{EXAMPLES}", buttons=(HELP_BUTTON,))
    return Card(title="审批规则", body=f"没看懂「{verb}」。\n写法：\n{EXAMPLES}", buttons=(HELP_BUTTON,))


def _listing(ctx: Context) -> Card:
    rules = ctx.session.execute(select(ApprovalRule).order_by(ApprovalRule.request_type, ApprovalRule.priority,
                                                              ApprovalRule.id)).scalars().all()
    dead = {n: d for kind in {r.request_type for r in rules} for n, d in warnings(ctx.session, kind).items()}
    lines = [describe(ctx.session, rule) + (f"\n  ⚠ {dead[rule.id].text()}" if rule.id in dead else "")
             for rule in rules]
    return Card(title=f"审批规则 · {len(rules)}条", body="\n".join(lines) + "\n\n同类型按顺序匹配，第一条符合的生效。",
                footer="改法：审批规则 修改 编号 条件：审批人 → 审批人")


def _add(ctx: Context, rest: str) -> Card:
    request_type, _, text = rest.partition(" ")
    if request_type not in REQUEST_TYPES:
        raise RuleError(f"类型：不认识「{request_type}」，可用 {'、'.join(REQUEST_TYPES)}")
    rule = add_rule(ctx.session, request_type, parse_rule_text(ctx.session, text), by=ctx.employee,
                    platform=ctx.event.platform)
    placed = place(ctx.session, rule, by=ctx.employee, platform=ctx.event.platform)
    note = ""
    if placed and placed.before is not None:
        note = (f"排在 #{placed.before.id}（{display(placed.before.condition) or '其他情况'}）前面："
                f"放在最后的话，前面的规则总是先匹配，这条永远用不上。")
    return _saved(ctx, rule, "已新增", note)


def _numbered(ctx: Context, rest: str) -> tuple[ApprovalRule, str]:
    match = re.match(r"\s*#?(\d+)\s*", rest)
    rule = ctx.session.get(ApprovalRule, int(match.group(1))) if match else None
    if rule is None:
        raise RuleError("编号：先发「审批规则」看每条规则的编号（#3 这样的）")
    return rule, rest[match.end():]


def _saved(ctx: Context, rule: ApprovalRule, what: str, note: str = "") -> Card:
    dead = warnings(ctx.session, rule.request_type)
    lines = [describe(ctx.session, rule), note] + [
        f"⚠ #{n} {d.text()}" + (f"。调整顺序：审批规则 优先级 {n} 数字（越小越先）" if n == rule.id else "")
        for n, d in dead.items()]
    return Card(title=f"{what} · 规则#{rule.id}", body="\n".join(line for line in lines if line),
                footer="已提交的申请仍按提交时的审批人走；新申请按新规则。",
                buttons=(Button("全部规则", "approval.rules", command="审批规则"),))


@routes.action("approval.rules")
def rules_by_tap(ctx: Context) -> Card:
    ctx.event = replace(ctx.event, kind="text", text="审批规则")
    return approval_rules(ctx)
