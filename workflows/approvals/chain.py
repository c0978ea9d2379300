"""Who approves a request: pick the routing rule, then resolve each step to people.

A step names approvers by position, not by person, so the chart can change under it:
`manager` (direct manager), `manager:2` (the manager's manager), `dept_head` (the highest manager
still in the requester's department), `role:finance` (everyone holding 财务: workflows/roles.py),
`person:<employee id>`. The result is a list of concrete people per step, which the request keeps
(pinned) from submission on.

Choices: the requester never approves their own request (that step goes one level up); a departed
approver is replaced by their manager; a step that resolves to exactly the previous step's people is
dropped (a manager who is also the department head signs once); a step with nobody follows the
rule's `no_approver` (auto_pass | admin | person:<id>); with no admin in the company yet, "admin"
means the requester's manager, and only a requester with neither passes unseen.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Sequence

from sqlalchemy import select
from sqlmodel import Session

from storage.models import ApprovalRule, Employee, REQUEST_TYPES
from workflows import roles
from workflows.approvals.conditions import BadCondition, compile_condition, matches

MODES = {"any": "或签", "all": "会签"}
CHAIN_LIMIT = 10  # manager chains longer than this are a loop in the data
CHOSEN = "chosen"  # the requester picks this step's approver when submitting
AFTER = "after:"  # a CC spec with this prefix is told when the request is approved, not when submitted


@dataclass(frozen=True)
class Step:
    label: str  # 直属上级, 财务 …
    mode: str  # any (或签) | all (会签)
    approvers: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "mode": self.mode, "approvers": list(self.approvers)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Step":
        return cls(label=data["label"], mode=data["mode"], approvers=tuple(data["approvers"]))


@dataclass(frozen=True)
class Plan:
    rule: ApprovalRule | None
    steps: tuple[Step, ...]
    cc: tuple[int, ...] = ()  # told at submission
    cc_after: tuple[int, ...] = ()  # told once it is approved
    needs_choice: bool = False  # a step is the requester's choice and nobody is chosen yet


def plan(session: Session, requester: Employee, request_type: str, facts: dict[str, Any],
         rules: Sequence[ApprovalRule] | None = None) -> Plan:
    """The chain a request with these facts would get now; `rules`, when given, are tried instead of
    the stored ones (the console's dry run of an edit not yet saved, or of an older version)."""
    # `role` is every role the requester holds: `角色 == "销售经理"` asks whether 销售经理 is among them.
    facts = {"type": request_type, "department": requester.department,
             "role": frozenset(roles.roles_of(session, requester)), **facts}
    rule = choose_rule(session, request_type, facts, rules)
    if rule is None:
        return Plan(rule=None, steps=_fallback(session, requester, "admin"))
    steps: list[Step] = []
    needs_choice = False
    for raw in json.loads(rule.steps):
        if CHOSEN in raw["approvers"] and not facts.get("chosen"):
            needs_choice = True
            continue
        people = _unique(p for spec in raw["approvers"]
                         for p in resolve(session, requester, _chosen(spec, facts)))
        step = Step(label="、".join(spec_label(spec) for spec in raw["approvers"]), mode=raw.get("mode", "any"),
                    approvers=tuple(p.id for p in people))
        if not step.approvers:
            steps.extend(_fallback(session, requester, rule.no_approver))
        elif not steps or set(steps[-1].approvers) != set(step.approvers):
            steps.append(step)
    specs = json.loads(rule.cc or "[]")
    cc = _unique(p for spec in specs if not spec.startswith(AFTER) for p in resolve(session, requester, spec))
    after = _unique(p for spec in specs if spec.startswith(AFTER)
                    for p in resolve(session, requester, spec[len(AFTER):]))
    return Plan(rule=rule, steps=tuple(steps), cc=tuple(p.id for p in cc), cc_after=tuple(p.id for p in after),
                needs_choice=needs_choice)


def _chosen(spec: str, facts: dict[str, Any]) -> str:
    """The requester's choice is a named person once they have picked one."""
    return f"person:{facts['chosen']}" if spec == CHOSEN else spec


def choose_rule(session: Session, request_type: str, facts: dict[str, Any],
                rules: Sequence[ApprovalRule] | None = None) -> ApprovalRule | None:
    """The first matching rule; `rules` (in the order to try, already of this type and active)
    stands in for the stored ones when given."""
    if rules is None:
        rules = session.execute(select(ApprovalRule).where(
            ApprovalRule.active, ApprovalRule.request_type.in_((request_type, "*")))
            .order_by(ApprovalRule.priority, ApprovalRule.id)).scalars()
    return next((rule for rule in rules if matches(rule.condition, facts)), None)


def resolve(session: Session, requester: Employee, spec: str) -> list[Employee]:
    kind, _, arg = spec.partition(":")
    if kind == "manager":
        person = _manager_at(session, requester, int(arg or 1))
        return [person] if person else []
    if kind == "dept_head":
        person = _department_head(session, requester)
        return [person] if person else []
    if kind == "role":
        return [p for p in roles.people_with(session, arg) if p.id != requester.id]
    if kind == "person":
        person = session.get(Employee, int(arg)) if arg.isdigit() else None
        return [_present(session, person)] if person and person.id != requester.id else []
    return []


def instead_of_requester(session: Session, requester: Employee) -> Employee | None:
    """Who takes a seat that would otherwise fall to the requester: the first active manager above
    them, else an admin, else nobody (a company with no one above the requester)."""
    boss = _manager_at(session, requester, 1)
    if boss is not None and boss.id != requester.id:
        return boss
    admins = resolve(session, requester, "role:admin")
    return admins[0] if admins else None


def check_spec(spec: str) -> None:
    """Raise ValueError naming the problem if `spec` is not an approver description."""
    kind, _, arg = spec.partition(":")
    ok = ((kind == "manager" and (not arg or (arg.isdigit() and 1 <= int(arg) <= 5)))
          or (kind == "dept_head" and not arg) or (kind == "role" and roles.role_id(arg) is not None)
          or (kind == "person" and arg.isdigit()) or spec == CHOSEN)
    if not ok:
        raise ValueError(f"审批人写法不对：{spec}（可用 直属上级、第N级上级、部门负责人、指定人，"
                         f"或角色 {roles.names()}）")


def check_rule(request_type: str, condition: str, steps: list[dict[str, Any]], no_approver: str,
               cc: list[str] = ()) -> None:
    """Validate a rule before it is saved; ValueError / BadCondition name the bad field."""
    if request_type not in (*REQUEST_TYPES, "*"):
        raise ValueError(f"类型：不认识「{request_type}」，可用 {'、'.join(REQUEST_TYPES)}")
    try:
        compile_condition(condition)
    except BadCondition as e:
        raise ValueError(f"条件：{e}") from None
    if not 1 <= len(steps) <= 8:
        raise ValueError("审批步骤：要有 1–8 步")
    for n, step in enumerate(steps, 1):
        if step.get("mode", "any") not in MODES or not step.get("approvers"):
            raise ValueError(f"审批步骤 第{n}步：要有审批人，方式为或签或会签")
        for spec in step["approvers"]:
            check_spec(spec)
    for spec in cc:
        check_spec(spec.removeprefix(AFTER))
    if no_approver not in ("auto_pass", "admin") and not (no_approver.startswith("person:")
                                                         and no_approver[7:].isdigit()):
        raise ValueError("找不到审批人时：可用 自动通过、管理员、指定人")


def spec_label(spec: str) -> str:
    kind, _, arg = spec.partition(":")
    if kind == "manager":
        return "直属上级" if arg in ("", "1") else f"第{arg}级上级"
    if kind == "dept_head":
        return "部门负责人"
    if spec == CHOSEN:
        return "申请人自选"
    if kind == "role":
        return roles.name_of(roles.role_id(arg) or arg)
    return "指定人"


# -- helpers ------------------------------------------------------------------------------------


def _manager_at(session: Session, requester: Employee, level: int) -> Employee | None:
    person: Employee | None = requester
    for _ in range(level):
        person = session.get(Employee, person.manager_id) if person and person.manager_id else None
    return _present(session, person)


def _department_head(session: Session, requester: Employee) -> Employee | None:
    """The highest manager above the requester who is still in the requester's department; if the
    direct manager is already outside it (a small team), that manager."""
    head, current = None, requester
    for _ in range(CHAIN_LIMIT):
        boss = session.get(Employee, current.manager_id) if current.manager_id else None
        if boss is None or (boss.department != requester.department and head is not None):
            break
        head, current = boss, boss
        if boss.department != requester.department:
            break
    return _present(session, head)


def _present(session: Session, person: Employee | None) -> Employee | None:
    """A departed approver's work goes to their manager."""
    for _ in range(CHAIN_LIMIT):
        if person is None or person.active:
            return person
        person = session.get(Employee, person.manager_id) if person.manager_id else None
    return None


def _fallback(session: Session, requester: Employee, policy: str) -> list[Step]:
    if policy == "auto_pass":
        return []
    if policy.startswith("person:"):
        people = resolve(session, requester, policy)
        return [Step(label="指定人", mode="any", approvers=tuple(p.id for p in people))] if people else []
    admins = resolve(session, requester, "role:admin")
    if admins:
        return [Step(label="管理员", mode="any", approvers=tuple(p.id for p in admins))]
    boss = _manager_at(session, requester, 1)  # no admin set up yet: never pass a request unseen
    return [Step(label="直属上级", mode="any", approvers=(boss.id,))] if boss else []


def _unique(people) -> list[Employee]:
    seen: dict[int, Employee] = {}
    for person in people:
        if person is not None:
            seen.setdefault(person.id, person)
    return list(seen.values())
