"""Reading a rules file (workflows/rules_yaml.py) back: first a plan — per rule new / changed (with what
changes) / unchanged / kept because the file leaves it out, and every problem naming the rule and the
field — then, only when there is no problem, `apply` makes all of it in the caller's one transaction.

Routing rule changes go through rule_admin (validated, a new version in the rule's history, audited);
other rules through rules.put (validated, audited). A file that leaves a rule out never deletes it.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from storage.models import REQUEST_TYPES, ApprovalRule, Employee
from workflows import audit, rules
from workflows.approvals import rule_admin
from workflows.approvals.chain import check_rule
from workflows.approvals.rule_admin import RuleError, RuleText
from workflows.rules_yaml import NO, OTHERS, OTHERWISE, ROUTING, WILDCARD, YES, entry, load, stored_value

KEYS = ("编号", "优先级", "条件", "审批", "抄送", "通过后抄送", "找不到审批人时", "启用")
_SPACES = re.compile(r"\s+")
STATES = {"new": "新增", "changed": "修改", "kept": "文件里没有，保留不变", "unchanged": "不变"}


@dataclass
class Change:
    section: str  # 审批路由 / 其他规则
    name: str  # 报销 #3 / 超期未跟进天数（crm.overdue_days）
    state: str  # a key of STATES
    lines: list[str] = field(default_factory=list)  # 条件：「金额 > 1000」改为「金额 > 2000」


@dataclass
class Plan:
    changes: list[Change] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    _routing: list[tuple[ApprovalRule | None, str, RuleText, int | None, bool]] = field(default_factory=list)
    _others: list[tuple[str, Any]] = field(default_factory=list)

    @property
    def to_change(self) -> list[Change]:
        return [c for c in self.changes if c.state in ("new", "changed")]

    @property
    def in_order(self) -> list[Change]:
        """What changes first, then what the file leaves out, then what stays as it is."""
        return sorted(self.changes, key=lambda c: list(STATES).index(c.state))

    @property
    def digest(self) -> str:
        """What the preview showed, so 确认导入 can refuse when the rules changed in between."""
        shown = [(c.section, c.name, c.state, c.lines) for c in self.changes]
        return hashlib.sha256(json.dumps(shown, ensure_ascii=False).encode()).hexdigest()[:16]


class ImportRefused(ValueError):
    """The file cannot be applied; the plan says why."""

    def __init__(self, plan: Plan) -> None:
        super().__init__("；".join(plan.problems) or "规则在预览后被改过，请重新预览")
        self.plan = plan


def plan(session: Session, text: str) -> Plan:
    """What importing `text` would do; writes nothing."""
    result = Plan()
    try:
        data = load(text)
    except ValueError as bad:
        result.problems.append(str(bad))
        return result
    if not isinstance(data, dict):
        result.problems.append(f"文件：应以「{ROUTING}:」和「{OTHERS}:」两部分写成，这个文件不是")
        return result
    for key in data:
        if key not in (ROUTING, OTHERS):
            result.problems.append(f"文件：不认识「{key}」这一部分（只有 {ROUTING} 和 {OTHERS}）")
    _plan_routing(session, data.get(ROUTING), result, given=ROUTING in data)
    _plan_others(session, data.get(OTHERS), result, given=OTHERS in data)
    return result


def apply(session: Session, text: str, *, by: Employee | None, platform: str, expected: str = "") -> Plan:
    """Make every change of the plan (the caller's transaction: all or nothing). Raises ImportRefused,
    changing nothing, on any problem or when `expected` (a preview's digest) no longer matches."""
    todo = plan(session, text)
    if todo.problems or (expected and expected != todo.digest):
        raise ImportRefused(todo)
    for rule, kind, words, priority, active in todo._routing:
        if rule is None:
            rule = rule_admin.add_rule(session, kind, words, by=by, platform=platform, priority=priority)
            if not active:
                rule_admin.change_rule(session, rule, by=by, platform=platform, active=False)
        else:
            rule_admin.change_rule(session, rule, by=by, platform=platform, words=words, active=active,
                                   priority=rule.priority if priority is None else priority)
    for name, value in todo._others:
        rules.put(session, name, value, by=by, platform=platform)
    audit.record(session, actor=by, action="rules.import", subject="rules", platform=platform,
                 detail={"changed": [f"{c.section} {c.name}" for c in todo.to_change]})
    return todo


# -- routing rules ------------------------------------------------------------------------------


def _plan_routing(session: Session, groups: Any, result: Plan, *, given: bool) -> None:
    existing = {r.id: r for r in session.execute(select(ApprovalRule)).scalars()}
    seen: set[int] = set()
    groups = _mapping(groups, result, f"{ROUTING}：应按申请类型分组，如「报销:」下面一条条列出")
    for kind_word, entries in groups.items():
        kind = "*" if kind_word in (WILDCARD, "*") else str(kind_word)
        where = f"{ROUTING} {kind_word}"
        if kind not in (*REQUEST_TYPES, "*"):
            result.problems.append(f"{where}：不认识这个申请类型（可用 {'、'.join(REQUEST_TYPES)}、{WILDCARD}）")
            continue
        if not isinstance(entries, list):
            result.problems.append(f"{where}：应为规则列表（每条以「- 」开头）")
            continue
        for n, item in enumerate(entries, 1):
            _plan_one(session, kind, item, f"{where} 第{n}条", existing, seen, result)
    for rule_id, rule in sorted(existing.items(), key=lambda pair: (pair[1].request_type, pair[1].priority)):
        if rule_id not in seen:
            note = "导入不会删除规则；要停用请写 启用: 否" if given else f"文件里没有「{ROUTING}」，审批路由都不变"
            result.changes.append(Change(ROUTING, _name(rule.request_type, rule_id), "kept", [note]))


def _plan_one(session: Session, kind: str, item: Any, where: str, existing: dict[int, ApprovalRule],
              seen: set[int], result: Plan) -> None:
    if not isinstance(item, dict):
        result.problems.append(f"{where}：应写成 条件、审批 等几行")
        return
    unknown = [str(k) for k in item if k not in KEYS]
    if unknown:
        result.problems.append(f"{where}：不认识「{'、'.join(unknown)}」（可用 {'、'.join(KEYS)}）")
        return
    rule = None
    if "编号" in item:
        rule = existing.get(item["编号"]) if isinstance(item["编号"], int) else None
        if rule is None or rule.request_type != kind or rule.id in seen:
            why = ("重复了" if rule is not None and rule.id in seen else
                   f"是{rule.request_type}的规则" if rule is not None else "没有这条规则（新规则不写编号）")
            result.problems.append(f"{where} 编号：#{item['编号']} {why}")
            return
        seen.add(rule.id)
        where = f"{ROUTING} {_name(kind, rule.id)}"
    try:
        words, priority, active = _read(session, kind, item)
    except RuleError as bad:
        result.problems.append(f"{where} {bad}")
        return
    if rule is None:
        result.changes.append(Change(ROUTING, f"{_kind_word(kind)} 新规则", "new",
                                     [f"{k}：{v}" for k, v in _words_of(session, words, priority, active).items()]))
        result._routing.append((None, kind, words, priority, active))
        return
    lines = _diff(entry(session, rule),
                  _words_of(session, words, rule.priority if priority is None else priority, active))
    result.changes.append(Change(ROUTING, _name(kind, rule.id), "changed" if lines else "unchanged", lines))
    if lines:
        result._routing.append((rule, kind, words, priority, active))


def _read(session: Session, kind: str, item: dict[str, Any]) -> tuple[RuleText, int | None, bool]:
    """One entry → the rule's words (through parse_rule_text, as chat reads them), priority, active."""
    chain = item.get("审批")
    if not isinstance(chain, str) or not chain.strip():
        raise RuleError("审批：要写审批人，如「直属上级 → 财务」")
    condition = str(item.get("条件") or "").strip()
    text = f"{'' if condition == OTHERWISE else condition}：{chain}"
    for key, word in (("抄送", "抄送"), ("通过后抄送", "通过后抄送"), ("找不到审批人时", "找不到时")):
        if item.get(key):
            text += f" {word} {_SPACES.sub('', str(item[key]))}"  # parse_rule_text reads up to a space
    words = rule_admin.parse_rule_text(session, text)
    try:
        check_rule(kind, words.condition, words.steps, words.no_approver, words.cc)
    except ValueError as bad:
        raise RuleError(str(bad)) from None
    priority = item.get("优先级")
    if priority is not None and (isinstance(priority, bool) or not isinstance(priority, int)
                                 or not 0 <= priority <= 100000):
        raise RuleError(f"优先级：应为 0–100000 的整数，收到「{priority}」")
    active = item.get("启用", YES)
    if active not in (True, False, YES, NO):
        raise RuleError(f"启用：应为 是 或 否，收到「{active}」")
    return words, priority, active in (True, YES)


def _words_of(session: Session, words: RuleText, priority: int | None, active: bool) -> dict[str, Any]:
    """The entry as export would write it, to compare with the rule as it is."""
    rule = ApprovalRule(request_type="", priority=priority if priority is not None else 0, condition=words.condition,
                        steps=json.dumps(words.steps), cc=json.dumps(words.cc), no_approver=words.no_approver,
                        active=active)
    shown = entry(session, rule)
    shown.pop("编号", None)
    if priority is None:
        shown["优先级"] = "排在最后"
    return shown


def _diff(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    lines = []
    for key in KEYS[1:]:
        old, new = before.get(key, "—"), after.get(key, "—")
        if old != new:
            lines.append(f"{key}：「{old}」改为「{new}」")  # 「」: a chain has arrows of its own
    return lines


def _mapping(part: Any, result: Plan, problem: str) -> dict:
    """A part of the file that must be a mapping: absent is empty, anything else is a problem."""
    if part is not None and not isinstance(part, dict):
        result.problems.append(problem)
    return part if isinstance(part, dict) else {}


def _name(kind: str, rule_id: int) -> str:
    return f"{_kind_word(kind)} #{rule_id}"


def _kind_word(kind: str) -> str:
    return WILDCARD if kind == "*" else kind


# -- the other rules ----------------------------------------------------------------------------


def _plan_others(session: Session, values: Any, result: Plan, *, given: bool) -> None:
    values = _mapping(values, result, f"{OTHERS}：应写成「名称: 值」一行一条")
    for name, value in values.items():
        spec = rules.SPECS.get(str(name))
        if spec is None:
            result.problems.append(f"{OTHERS} {name}：没有这条规则")
            continue
        if isinstance(spec.default, bool) and value in (YES, NO):
            value = value == YES
        value = stored_value(spec.name, value)
        title = f"{spec.label}（{spec.name}）"
        try:
            cleaned = spec.check(spec.label, value)
        except rules.InvalidRule as bad:
            result.problems.append(f"{OTHERS} {spec.name} {bad}")
            continue
        before = rules.get(session, spec.name)
        if cleaned == before:
            result.changes.append(Change(OTHERS, title, "unchanged"))
            continue
        result.changes.append(Change(OTHERS, title, "changed",
                                     [f"「{rules.show(spec, before)}」改为「{rules.show(spec, cleaned)}」"]))
        result._others.append((spec.name, cleaned))
    for spec in rules.SPECS.values():
        if spec.name not in values:
            note = "保持现在的值" if given else f"文件里没有「{OTHERS}」，其他规则都不变"
            result.changes.append(Change(OTHERS, f"{spec.label}（{spec.name}）", "kept", [note]))


def report_lines(plan: Plan) -> list[str]:
    """The plan as lines for a terminal (banli rules import): what changes, then the problems."""
    lines = [f"[{STATES[c.state]}] {c.section} {c.name}" + "".join(f"\n    {line}" for line in c.lines)
             for c in plan.changes if c.state in ("new", "changed")]
    counts = {state: sum(c.state == state for c in plan.changes) for state in STATES}
    lines.append("，".join(f"{STATES[s]} {n} 条" for s, n in counts.items() if n) or "文件里没有规则")
    lines += [f"问题：{p}" for p in plan.problems]
    return lines
