"""What the console's rules page shows: the routing rules in the order they are tried, each as a
chain in words (申请人 → 直属上级 → 财务（会签）) with a warning when it can never apply; a dry run
through the same planning code as 谁审批 (chain.plan); and the other rules with their values."""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Sequence

from sqlalchemy import select
from sqlmodel import Session

from storage.models import REQUEST_TYPES, ApprovalRule, Employee
from workflows import rules
from workflows.approvals.cards import chain_text
from workflows.approvals.chain import AFTER, plan
from workflows.approvals.conditions import display
from workflows.approvals.rule_admin import approver_words, warnings

NO_APPROVER = {"auto_pass": "自动通过", "admin": "交给管理员"}


@dataclass(frozen=True)
class RuleRow:
    id: int
    type: str
    position: int  # 1 = tried first
    condition: str  # in Chinese; 其他情况 when empty
    chain: str  # 申请人 → 直属上级 → 财务（会签）
    cc: str
    no_approver: str
    active: bool
    version: int
    warning: str  # why it never applies, or ""


@dataclass(frozen=True)
class DryRun:
    rule: RuleRow | None  # None: no rule matched (the request goes to the admins)
    chain: str  # the people: 王经理 → 财务 钱会计/郑出纳(或签)
    cc: str
    needs_choice: bool


@dataclass(frozen=True)
class OtherRule:
    name: str
    label: str
    value: str
    changed: bool  # an admin has set it (otherwise the default applies)


def routing(session: Session) -> list[tuple[str, list[RuleRow]]]:
    """Per request type (in the usual order, then 通配 *), its rules first to last (stopped ones marked)."""
    all_rules = session.execute(select(ApprovalRule).order_by(ApprovalRule.priority, ApprovalRule.id)).scalars().all()
    kinds = [k for k in (*REQUEST_TYPES, "*") if any(r.request_type == k for r in all_rules)]
    groups = []
    for kind in kinds:
        dead = warnings(session, kind)
        mine = [r for r in all_rules if r.request_type == kind]
        groups.append((kind, [row(session, r, n, dead[r.id].text() if r.id in dead else "")
                              for n, r in enumerate(mine, 1)]))
    return groups


def row(session: Session, rule: ApprovalRule, position: int = 0, warning: str = "") -> RuleRow:
    cc = json.loads(rule.cc or "[]")
    now_cc = "、".join(approver_words(session, s) for s in cc if not s.startswith(AFTER))
    after_cc = "、".join(approver_words(session, s[len(AFTER):]) for s in cc if s.startswith(AFTER))
    cc_text = "；".join(t for t in (now_cc and f"提交时抄送 {now_cc}", after_cc and f"通过后抄送 {after_cc}") if t)
    no_approver = NO_APPROVER.get(rule.no_approver) or f"交给 {approver_words(session, rule.no_approver)}"
    return RuleRow(id=rule.id, type=rule.request_type, position=position,
                   condition=display(rule.condition) or "其他情况", chain=chain_words(session, rule), cc=cc_text,
                   no_approver=no_approver, active=rule.active, version=rule.version, warning=warning)


def chain_words(session: Session, rule: ApprovalRule) -> str:
    """申请人 → 直属上级 → 财务（会签）"""
    steps = [" / ".join(approver_words(session, s) for s in step["approvers"])
             + ("（会签）" if step.get("mode") == "all" and len(step["approvers"]) > 0 else "")
             for step in json.loads(rule.steps)]
    return " → ".join(["申请人", *steps])


def people(session: Session) -> list[Employee]:
    """Who a dry run may be for: everyone still here, by name."""
    return list(session.execute(select(Employee).where(Employee.active).order_by(Employee.name)).scalars())


def parse_dry_run(form: dict[str, str]) -> tuple[dict[str, Any], list[str]]:
    """The form's words → (values, problems naming the field). Empty amount/days mean "not given"."""
    problems, values = [], {}
    kind = form.get("type", "")
    if kind not in REQUEST_TYPES:
        problems.append(f"类型：请选择 {'、'.join(REQUEST_TYPES)} 之一")
    values["type"] = kind
    for field, label in (("amount", "金额"), ("days", "天数")):
        text = form.get(field, "").strip().replace(",", "").replace("，", "")
        try:
            values[field] = Decimal(text) if text else None
        except InvalidOperation:
            problems.append(f"{label}：「{text[:20]}」不是数字")
            values[field] = None
        if values[field] is not None and (values[field] < 0 or not values[field].is_finite()):
            problems.append(f"{label}：不能是负数")
    requester = form.get("requester", "")
    values["requester"] = int(requester) if requester.isdigit() else None
    if values["requester"] is None:
        problems.append("申请人：请从名单里选一位同事")
    return values, problems


def dry_run(session: Session, values: dict[str, Any], rules: Sequence[ApprovalRule] | None = None) -> DryRun | str:
    """The chain a request with these values would get now — chain.plan, exactly as 谁审批 and 提交 —
    or a problem naming the field. `rules` (in order) stand in for the stored ones when given."""
    requester = session.get(Employee, values["requester"])
    if requester is None or not requester.active:
        return "申请人：这位同事不在名单里（可能已离职）"
    chosen = plan(session, requester, values["type"], {"amount": values["amount"], "days": values["days"]},
                  rules=rules)
    cc = "、".join(session.get(Employee, i).name for i in chosen.cc)
    return DryRun(rule=row(session, chosen.rule) if chosen.rule else None, chain=chain_text(session, chosen.steps),
                  cc=cc, needs_choice=chosen.needs_choice)


def others(session: Session) -> list[OtherRule]:
    return [OtherRule(spec.name, spec.label, rules.show(spec, rules.get(session, spec.name)),
                      rules.version(session, spec.name) > 0) for spec in rules.SPECS.values()]
