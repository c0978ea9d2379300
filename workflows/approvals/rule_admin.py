"""Admins edit routing rules in words:

    审批规则 新增 报销 金额 > 5000：直属上级 → 财务 → 总经理
    审批规则 修改 3 金额 > 2000：直属上级 → 财务(会签)  抄送 法务  找不到时 自动通过
    审批规则 停用 3 / 启用 3 / 优先级 3 15

The words become the rule's data, are validated (a bad part is named, nothing stored) and audited
with the before and after. Requests already submitted keep their pinned chain.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session

from storage.models import ApprovalRule, ApprovalRuleVersion, Employee, utcnow
from workflows import audit, roles
from workflows.identity import employees_named
from workflows.approvals.chain import AFTER, check_rule, spec_label
from workflows.approvals.conditions import display
from workflows.approvals.shadowing import Dead, dead_rules, in_order

ARROWS = re.compile(r"\s*(?:→|->|=>|＞＞|>>|，然后|然后)\s*")
_POSITION_WORDS = {"申请人自选": "chosen", "自选": "chosen", "直属上级": "manager", "上级": "manager", "经理": "manager", "主管": "manager",
                   "上上级": "manager:2", "部门负责人": "dept_head", "部门领导": "dept_head"}
_NO_APPROVER = {"自动通过": "auto_pass", "管理员": "admin"}
_LEVELS = {"2": 2, "3": 3, "4": 4, "5": 5, "二": 2, "三": 3, "四": 4, "五": 5}


class RuleError(ValueError):
    """What is wrong, naming the part of the command (Chinese, shown to the admin)."""


@dataclass(frozen=True)
class RuleText:
    condition: str
    steps: list[dict[str, Any]]
    cc: list[str]
    no_approver: str


def parse_rule_text(session: Session, text: str) -> RuleText:
    """`金额 > 5000：直属上级 → 财务(会签)  抄送 法务  找不到时 自动通过`."""
    text, no_approver = _take(text, r"找不到(?:审批人)?时?\s*(\S+)")
    text, after_words = _take(text, r"(?:通过后|批准后)抄送\s*(\S+)")
    text, cc_words = _take(text, r"抄送\s*(\S+)")
    condition, sep, chain = re.split(r"([:：])", text, maxsplit=1) if re.search(r"[:：]", text) else ("", "", text)
    if not chain.strip():
        raise RuleError("审批步骤：冒号后面写审批人，比如「金额 > 5000：直属上级 → 财务」")
    steps = [_step(session, part) for part in ARROWS.split(chain.strip()) if part.strip()]
    cc = [_approver(session, word) for word in re.split(r"[、,，/]", cc_words) if word] if cc_words else []
    cc += [AFTER + _approver(session, word) for word in re.split(r"[、,，/]", after_words) if word]
    return RuleText(condition=condition.strip(), steps=steps, cc=cc,
                    no_approver=_no_approver(session, no_approver) if no_approver else "admin")


def add_rule(session: Session, request_type: str, words: RuleText, *, by: Employee | None, platform: str,
             priority: int | None = None, active: bool = True) -> ApprovalRule:
    validate(request_type, words)
    if priority is None:  # after the type's existing rules, so it never shadows them by surprise
        priority = last_priority(session, request_type) + 10
    rule = ApprovalRule(request_type=request_type, priority=priority, condition=words.condition,
                        steps=json.dumps(words.steps, ensure_ascii=False), cc=json.dumps(words.cc),
                        no_approver=words.no_approver, active=active, updated_by=by.id if by else None,
                        updated_at=utcnow())
    session.add(rule)
    session.flush()
    keep_version(session, rule, by=by)
    audit.record(session, actor=by, action="approval_rule.create", subject=f"approval_rule:{rule.id}",
                 platform=platform, detail={"after": snapshot(rule)})
    return rule


@dataclass(frozen=True)
class Placed:
    """Where a new rule went when the end of the list would have made it useless."""
    before: ApprovalRule | None  # the rule it was put in front of; None: left at the end
    dead: Dead | None  # set when no place makes it apply: it is saved, and the admin is told


def place(session: Session, rule: ApprovalRule, *, by: Employee, platform: str) -> Placed | None:
    """A new rule added after the rules that would always beat it (`金额 > 5000` behind `金额 > 1000`)
    moves up to the latest place where it applies and every rule that applied still does. None when
    it applies where it is. With no such place it stays last and the answer says why it never applies."""
    if rule.request_type == "*":
        return None
    order = in_order(session, rule.request_type)
    dead = dead_rules(order, rule.request_type)
    if rule.id not in dead:
        return None
    others = [r for r in order if r.id != rule.id]
    k = best_place(others, rule)
    if k is None:
        return Placed(before=None, dead=dead[rule.id])
    _put_before(session, rule, others, k, by=by, platform=platform)
    return Placed(before=others[k], dead=None)


def best_place(others: list[ApprovalRule], rule: ApprovalRule) -> int | None:
    """The latest index in `others` (the rules it is tried with, in order) before which `rule`
    applies while every rule that applied still does; None when there is no such place."""
    alive = {r.id for r in others} - set(dead_rules(others, rule.request_type))
    for k in range(len(others) - 1, -1, -1):
        now_dead = dead_rules(others[:k] + [rule] + others[k:], rule.request_type)
        if rule.id not in now_dead and not alive & set(now_dead):
            return k
    return None


def last_priority(session: Session, request_type: str) -> int:
    """The highest priority among the type's rules (0 with none): a new rule goes after it."""
    return session.execute(select(func.max(ApprovalRule.priority))
                           .where(ApprovalRule.request_type == request_type)).scalar() or 0


def _put_before(session: Session, rule: ApprovalRule, others: list[ApprovalRule], k: int, *, by: Employee,
                platform: str) -> None:
    """A priority between others[k-1] and others[k]; when they sit on neighbouring numbers, the rules
    from k on move down by 10 first (each move audited)."""
    low = others[k - 1].priority if k else others[k].priority - 10
    if others[k].priority - low < 2:
        for later in others[k:]:
            if later.request_type == rule.request_type:
                change_rule(session, later, by=by, platform=platform, priority=later.priority + 10)
    before = snapshot(rule)
    rule.priority = (low + others[k].priority) // 2 if others[k].priority - low >= 2 else low + 5
    session.add(rule)
    audit.record(session, actor=by, action="approval_rule.edit", subject=f"approval_rule:{rule.id}",
                 platform=platform, detail={"before": before, "after": snapshot(rule), "why": "placed"})


def move(session: Session, rule: ApprovalRule, *, up: bool, by: Employee, platform: str) -> bool:
    """One place up or down among its type's rules (the order they are tried). False at either end.
    Each rule whose priority changes is audited with before/after; requests already submitted keep
    the chain pinned at submission, so only new ones follow the new order."""
    order = list(session.execute(select(ApprovalRule).where(ApprovalRule.request_type == rule.request_type)
                                 .order_by(ApprovalRule.priority, ApprovalRule.id)).scalars())
    i = next(n for n, r in enumerate(order) if r.id == rule.id)
    j = i - 1 if up else i + 1
    if not 0 <= j < len(order):
        return False
    other = order[j]
    if other.priority != rule.priority:
        mine, theirs = rule.priority, other.priority
        change_rule(session, rule, by=by, platform=platform, priority=theirs)
        change_rule(session, other, by=by, platform=platform, priority=mine)
        return True
    order[i], order[j] = order[j], order[i]  # equal priorities: number the whole list afresh
    for n, r in enumerate(order, 1):
        if r.priority != n * 10:
            change_rule(session, r, by=by, platform=platform, priority=n * 10)
    return True


def warnings(session: Session, request_type: str) -> dict[int, Dead]:
    """The rules of this type (and of 通配 *) that never apply, by id."""
    return dead_rules(in_order(session, request_type), request_type)


def change_rule(session: Session, rule: ApprovalRule, *, by: Employee | None, platform: str,
                words: RuleText | None = None, active: bool | None = None, priority: int | None = None,
                request_type: str | None = None) -> None:
    """Save a change as the rule's next version, audited with before and after. A rule moved to
    another type goes after that type's rules, as a new one would."""
    before = snapshot(rule)
    if words is not None:
        validate(request_type or rule.request_type, words)
    keep_first_version(session, rule)
    if request_type is not None and request_type != rule.request_type:
        rule.priority = last_priority(session, request_type) + 10
        rule.request_type = request_type
    if words is not None:
        rule.condition, rule.no_approver = words.condition, words.no_approver
        rule.steps, rule.cc = json.dumps(words.steps, ensure_ascii=False), json.dumps(words.cc)
    if active is not None:
        rule.active = active
    if priority is not None:
        rule.priority = priority
    rule.version += 1
    rule.updated_by, rule.updated_at = (by.id if by else None), utcnow()  # None: the CLI
    session.add(rule)
    keep_version(session, rule, by=by)
    audit.record(session, actor=by, action="approval_rule.edit", subject=f"approval_rule:{rule.id}",
                 platform=platform, detail={"before": before, "after": snapshot(rule)})


def keep_version(session: Session, rule: ApprovalRule, *, by: Employee | None) -> None:
    """The rule as it now is becomes version `rule.version` in its history."""
    session.add(ApprovalRuleVersion(rule_id=rule.id, version=rule.version, by_id=by.id if by else None,
                                    at=rule.updated_at or utcnow(),
                                    data=json.dumps(snapshot(rule), ensure_ascii=False)))
    session.flush()


def keep_first_version(session: Session, rule: ApprovalRule) -> None:
    """A rule seeded or saved before versions were kept has no history yet: its state before this
    first change is written as its earliest version, so the diff has something to compare with."""
    known = session.execute(select(func.count()).select_from(ApprovalRuleVersion)
                            .where(ApprovalRuleVersion.rule_id == rule.id)).scalar()
    if not known:
        session.add(ApprovalRuleVersion(rule_id=rule.id, version=rule.version, by_id=rule.updated_by,
                                        at=rule.updated_at or utcnow(),
                                        data=json.dumps(snapshot(rule), ensure_ascii=False)))


def describe(session: Session, rule: ApprovalRule) -> str:
    """#3 报销 金额 > 1000：直属上级 → 财务"""
    steps = json.loads(rule.steps)
    chain = " → ".join("、".join(approver_words(session, s) for s in step["approvers"])
                       + ("(会签)" if step.get("mode") == "all" else "") for step in steps)
    cc = json.loads(rule.cc or "[]")
    now_cc = [approver_words(session, s) for s in cc if not s.startswith(AFTER)]
    after_cc = [approver_words(session, s[len(AFTER):]) for s in cc if s.startswith(AFTER)]
    extra = (f" 抄送{'、'.join(now_cc)}" if now_cc else "") + (f" 通过后抄送{'、'.join(after_cc)}" if after_cc else "")
    off = "（已停用）" if not rule.active else ""
    return f"#{rule.id} {rule.request_type} {display(rule.condition) or '其他情况'}：{chain}{extra}{off}"


def snapshot(rule: ApprovalRule) -> dict[str, Any]:
    return {"type": rule.request_type, "priority": rule.priority, "condition": rule.condition,
            "steps": json.loads(rule.steps), "cc": json.loads(rule.cc or "[]"), "no_approver": rule.no_approver,
            "active": rule.active, "version": rule.version}


# -- helpers ------------------------------------------------------------------------------------


def validate(request_type: str, words: RuleText) -> None:
    """The checks every save goes through (chat and console): RuleError naming the bad field."""
    try:
        check_rule(request_type, words.condition, words.steps, words.no_approver, words.cc)
    except ValueError as e:
        raise RuleError(str(e)) from None


def _take(text: str, pattern: str) -> tuple[str, str]:
    match = re.search(pattern, text)
    if not match:
        return text, ""
    return (text[:match.start()] + text[match.end():]).strip(), match.group(1)


def _step(session: Session, part: str) -> dict[str, Any]:
    mode = "all" if re.search(r"[(（]会签[)）]", part) else "any"
    words = re.sub(r"[(（](?:会签|或签)[)）]", "", part)
    return {"approvers": [_approver(session, w) for w in re.split(r"[、,，/]", words) if w.strip()], "mode": mode}


def _approver(session: Session, word: str) -> str:
    word = word.strip()
    if word in _POSITION_WORDS:
        return _POSITION_WORDS[word]
    if roles.role_id(word):  # 财务, 会计, 老板 …
        return f"role:{roles.role_id(word)}"
    level = re.fullmatch(r"第([2-5二三四五])级上级", word)
    if level:
        return f"manager:{_LEVELS[level.group(1)]}"
    people = employees_named(session, word)
    if len(people) == 1:
        return f"person:{people[0].id}"
    if len(people) > 1:
        raise RuleError(f"审批人：有 {len(people)} 位叫「{word}」，请改用角色或先在通讯录里区分")
    raise RuleError(f"审批人：不认识「{word}」（可用 直属上级、上上级、部门负责人、或同事姓名，或角色 {roles.names()}）")


def _no_approver(session: Session, word: str) -> str:
    if word in _NO_APPROVER:
        return _NO_APPROVER[word]
    spec = _approver(session, word)
    if not spec.startswith("person:"):
        raise RuleError("找不到审批人时：可用 自动通过、管理员 或某位同事的姓名")
    return spec


def approver_words(session: Session, spec: str) -> str:
    if spec.startswith("person:"):
        person = session.get(Employee, int(spec[7:]))
        return person.name if person else "（已删除）"
    return spec_label(spec)
