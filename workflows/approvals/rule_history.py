"""A routing rule's history: its versions newest first, each with what changed from the one before
in words (条件: 金额 > 1000 → 金额 > 5000; 第2步: 财务 → 财务（会签）)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from storage.models import ApprovalRuleVersion, Employee
from workflows.approvals.chain import AFTER
from workflows.approvals.conditions import display
from workflows.approvals.rule_admin import approver_words

NO_APPROVER = {"auto_pass": "自动通过", "admin": "交给管理员"}


@dataclass(frozen=True)
class VersionRow:
    version: int
    by: str
    at: datetime
    changes: list[str]  # empty for the first version


def versions(session: Session, rule_id: int) -> list[VersionRow]:
    """Newest first; each version with its changes from the previous one."""
    kept = list(session.execute(select(ApprovalRuleVersion).where(ApprovalRuleVersion.rule_id == rule_id)
                                .order_by(ApprovalRuleVersion.version)).scalars())
    out, before = [], None
    for v in kept:
        data = json.loads(v.data)
        person = session.get(Employee, v.by_id) if v.by_id else None
        out.append(VersionRow(v.version, person.name if person else "系统", v.at,
                              diff(session, before, data) if before is not None else []))
        before = data
    return out[::-1]


def diff(session: Session, before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """What a reader needs to see changed, one line per part, old → new."""
    lines = []
    if before["type"] != after["type"]:
        lines.append(f"类型：{_type(before['type'])} → {_type(after['type'])}")
    old, new = display(before["condition"]) or "其他情况", display(after["condition"]) or "其他情况"
    if old != new:
        lines.append(f"条件：{old} → {new}")
    a, b = before["steps"], after["steps"]
    for n in range(max(len(a), len(b))):
        was = _step(session, a[n]) if n < len(a) else "（无）"
        now = _step(session, b[n]) if n < len(b) else "（删除）"
        if was != now:
            lines.append(f"第{n + 1}步：{was} → {now}")
    for label, pick in (("抄送", lambda s: not s.startswith(AFTER)), ("通过后抄送", lambda s: s.startswith(AFTER))):
        was, now = (_people(session, [s for s in d["cc"] if pick(s)]) for d in (before, after))
        if was != now:
            lines.append(f"{label}：{was} → {now}")
    if before["no_approver"] != after["no_approver"]:
        lines.append(f"找不到审批人时：{_fallback(session, before['no_approver'])} → "
                     f"{_fallback(session, after['no_approver'])}")
    if before["active"] != after["active"]:
        lines.append("状态：" + ("启用 → 停用" if before["active"] else "停用 → 启用"))
    if before["priority"] != after["priority"]:
        lines.append(f"顺序（优先级）：{before['priority']} → {after['priority']}")
    return lines or ["（内容没有变化）"]


def _step(session: Session, step: dict[str, Any]) -> str:
    names = " / ".join(approver_words(session, s) for s in step["approvers"])
    return names + ("（会签）" if step.get("mode") == "all" else "")


def _people(session: Session, specs: list[str]) -> str:
    return "、".join(approver_words(session, s.removeprefix(AFTER)) for s in specs) or "（无）"


def _type(kind: str) -> str:
    return "所有类型" if kind == "*" else kind


def _fallback(session: Session, policy: str) -> str:
    return NO_APPROVER.get(policy) or f"交给 {approver_words(session, policy)}"
