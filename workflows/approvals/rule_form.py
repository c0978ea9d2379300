"""The console's rule form (/admin/rules/new, /admin/rules/<id>/edit): a routing rule as fields an
admin picks — type, a condition built from 金额 / 天数 / 部门 / 角色 comparisons, an ordered list of
steps, 抄送, 找不到审批人时, 启用/停用 — read back into the same RuleText chat produces, so a save goes
through the same checks (rule_admin.validate) and the same versioned, audited change.

Every value the page carries is a word the admin reads (直属上级, 财务, 会签) or a colleague's number
from a picker; the stored codes (manager:2, role:finance) never reach the page. A fixed number of
step rows works without JavaScript: empty rows are ignored.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from storage.models import REQUEST_TYPES, ApprovalRule, Employee
from workflows import roles
from workflows.approvals.chain import AFTER, CHOSEN
from workflows.approvals.conditions import conjuncts, display
from workflows.approvals.rule_admin import RuleError, RuleText, add_rule, change_rule, place, validate

ALL_TYPES = "所有类型"  # the 通配 rule (request_type "*"), tried for every type
STEP_ROWS = 6  # rows shown for a new rule; an edit shows its steps plus two empty rows, up to MAX_STEPS
MAX_STEPS = 8
NUMBER_SLOTS = 2  # 金额 > 1000 且 金额 <= 5000: two comparisons per number field
# The approver a step or a CC may name by position, in the words of the picker, and the stored spec.
POSITIONS = {"直属上级": "manager", "上上级": "manager:2", "第3级上级": "manager:3", "第4级上级": "manager:4",
             "第5级上级": "manager:5", "部门负责人": "dept_head", "申请人自选": CHOSEN}
ROLE, PERSON = "角色", "指定人"  # the step kinds that need a second pick
KINDS = (*POSITIONS, ROLE, PERSON)
CC_POSITIONS = tuple(w for w, spec in POSITIONS.items() if spec != CHOSEN)  # who a CC may name by position
TYPES = (*REQUEST_TYPES, ALL_TYPES)
MODES = {"任一人": "any", "会签": "all"}
MODE_LABELS = {"任一人": "任一人同意即可", "会签": "会签（全部同意）"}
NUMBER_OPS = {">": "大于", ">=": "大于等于", "<": "小于", "<=": "小于等于", "==": "等于"}
IS_OPS = {"==": "是", "!=": "不是"}
NO_APPROVER = {"管理员": "admin", "自动通过": "auto_pass", PERSON: "person"}
NO_APPROVER_LABELS = {"管理员": "交给管理员", "自动通过": "自动通过", PERSON: "交给指定的同事"}
NUMBERS = {"amount": "金额", "days": "天数"}
PICKED = {"department": "部门", "role": "角色"}  # 申请人的部门 / 申请人的角色


@dataclass
class StepRow:
    kind: str = ""  # one of KINDS; "" = an empty row
    role: str = ""  # a role's Chinese name, for kind 角色
    person: str = ""  # an employee id, for kind 指定人
    mode: str = "任一人"
    join: bool = False  # approves in the same step as the row above


@dataclass
class RuleForm:
    """What the form shows: the rule's values, or what the admin typed (kept on an error)."""
    type: str = REQUEST_TYPES[0]
    numbers: dict[str, list[tuple[str, str]]] = field(
        default_factory=lambda: {f: [("", "")] * NUMBER_SLOTS for f in NUMBERS})
    picked: dict[str, tuple[str, str]] = field(default_factory=lambda: {f: ("==", "") for f in PICKED})
    more: str = ""  # the rest of the condition, in words (anything the fields above cannot say)
    steps: list[StepRow] = field(default_factory=lambda: [StepRow() for _ in range(STEP_ROWS)])
    cc: list[str] = field(default_factory=list)
    cc_after: list[str] = field(default_factory=list)
    no_approver: str = "管理员"
    no_approver_person: str = ""
    active: bool = True
    version: int = 0  # the version being edited (0 for a new rule): a save over a newer one is refused


@dataclass(frozen=True)
class Choices:
    """The pickers' lists."""
    types: tuple[str, ...]
    departments: list[str]
    roles: list[str]
    people: list[Employee]


def choices(session: Session, form: RuleForm) -> Choices:
    departments = set(session.execute(select(Employee.department).where(Employee.active)).scalars())
    departments.add(form.picked["department"][1])  # a rule's department whoever has left it
    return Choices(types=TYPES, departments=sorted(d for d in departments if d),
                   roles=list(roles.ROLES.values()),
                   people=list(session.execute(select(Employee).where(Employee.active)
                                               .order_by(Employee.name)).scalars()))


def from_rule(session: Session, rule: ApprovalRule) -> RuleForm:
    """The form for a saved rule; a condition part the fields cannot hold stays in 其他条件 as words."""
    form = RuleForm(type=ALL_TYPES if rule.request_type == "*" else rule.request_type, active=rule.active,
                    version=rule.version)
    more = []
    for part in conjuncts(rule.condition):
        if not _fill(form, part):
            more.append(part if isinstance(part, str) else _part_words(part))
    form.more = " 且 ".join(more)
    steps = json.loads(rule.steps)
    form.steps = [row for step in steps for row in _rows(step)]
    form.steps += [StepRow() for _ in range(min(max(STEP_ROWS - len(form.steps), 2), MAX_STEPS - len(form.steps)))]
    specs = json.loads(rule.cc or "[]")
    form.cc = [_word(s) for s in specs if not s.startswith(AFTER)]
    form.cc_after = [_word(s[len(AFTER):]) for s in specs if s.startswith(AFTER)]
    if rule.no_approver.startswith("person:"):
        form.no_approver, form.no_approver_person = PERSON, rule.no_approver[7:]
    else:
        form.no_approver = next((w for w, v in NO_APPROVER.items() if v == rule.no_approver), "管理员")
    return form


def read(posted: dict[str, list[str]]) -> RuleForm:
    """The form as posted (Flask's `form.to_dict(flat=False)`), kept as typed."""
    def one(name: str) -> str:
        return (posted.get(name) or [""])[0].strip()[:200]

    form = RuleForm(type=one("type"), more=one("more"), cc=[w.strip()[:40] for w in posted.get("cc", [])[:40]],
                    cc_after=[w.strip()[:40] for w in posted.get("cc_after", [])[:40]], no_approver=one("no_approver"),
                    no_approver_person=one("no_approver_person"), active=one("active") != "停用",
                    version=int(one("version")) if one("version").isdigit() else 0)
    form.numbers = {f: [(one(f"{f}_op{n}"), one(f"{f}{n}")) for n in range(NUMBER_SLOTS)] for f in NUMBERS}
    form.picked = {f: (one(f"{f}_op"), one(f)) for f in PICKED}
    rows = min(int(one("rows")) if one("rows").isdigit() else STEP_ROWS, MAX_STEPS)
    form.steps = [StepRow(kind=one(f"step{n}_kind"), role=one(f"step{n}_role"), person=one(f"step{n}_person"),
                          mode=one(f"step{n}_mode") or "任一人", join=bool(one(f"step{n}_join")))
                  for n in range(1, rows + 1)]
    return form


def to_rule(session: Session, form: RuleForm) -> tuple[str, RuleText, list[str]]:
    """(request type, the rule's words, problems naming the field). With no problem the words have
    passed the same checks as a chat edit (rule_admin.validate)."""
    problems: list[str] = []
    request_type = "*" if form.type == ALL_TYPES else form.type
    if request_type not in (*REQUEST_TYPES, "*"):
        problems.append(f"类型：请选择 {'、'.join(REQUEST_TYPES)} 或{ALL_TYPES}")
    condition = _condition(form, problems)
    steps = _steps(session, form, problems)
    cc = [spec for word in form.cc if (spec := _cc_spec(session, word, "抄送", problems))]
    cc += [AFTER + spec for word in form.cc_after if (spec := _cc_spec(session, word, "通过后抄送", problems))]
    no_approver = _no_approver(session, form, problems)
    words = RuleText(condition=condition, steps=steps, cc=cc, no_approver=no_approver)
    if not problems:
        try:
            validate(request_type, words)
        except RuleError as problem:
            problems.append(str(problem))
    return request_type, words, problems


@dataclass(frozen=True)
class Published:
    problems: list[str]  # non-empty: nothing was stored
    rule_id: int | None = None
    version: int = 0
    placed_before: int | None = None  # a new rule put in front of this one (rule_admin.place)
    unchanged: bool = False  # the form said what the rule already says: no new version


def publish(session: Session, rule: ApprovalRule | None, form: RuleForm, *, by: Employee) -> Published:
    """发布: the form as a new rule, or as `rule`'s next version — validated, versioned and audited
    (with before and after) exactly as a chat edit. A form opened on an older version is refused
    rather than overwrite what someone saved since."""
    request_type, words, problems = to_rule(session, form)
    if rule is not None and form.version != rule.version:
        problems.append(f"这条规则刚被改过（现在是第{rule.version}版）：请刷新页面，在最新版本上修改")
    if problems:
        return Published(problems)
    if rule is None:
        rule = add_rule(session, request_type, words, by=by, platform="web", active=form.active)
        placed = place(session, rule, by=by, platform="web")
        return Published([], rule.id, rule.version, placed.before.id if placed and placed.before else None)
    if not changed(rule, request_type, words, form.active):
        return Published([], rule.id, rule.version, unchanged=True)
    change_rule(session, rule, by=by, platform="web", words=words, active=form.active, request_type=request_type)
    return Published([], rule.id, rule.version)


def changed(rule: ApprovalRule, request_type: str, words: RuleText, active: bool) -> bool:
    """Whether publishing would change anything (an unchanged form makes no new version)."""
    return ((rule.request_type, display(rule.condition), json.loads(rule.steps), json.loads(rule.cc or "[]"),
             rule.no_approver, rule.active)
            != (request_type, display(words.condition), words.steps, words.cc, words.no_approver, active))


# -- reading the fields -----------------------------------------------------------------------------


def _condition(form: RuleForm, problems: list[str]) -> str:
    parts = []
    for name, label in NUMBERS.items():
        for op, text in form.numbers.get(name, []):
            number = text.replace(",", "").replace("，", "")
            if not op and not number:
                continue
            if op not in NUMBER_OPS:
                problems.append(f"{label}：请选择比较方式（大于、小于……）")
                continue
            try:
                value = Decimal(number)
            except InvalidOperation:
                problems.append(f"{label}：「{text[:20]}」不是数字" if text else f"{label}：请填写数字")
                continue
            if not value.is_finite() or value < 0:
                problems.append(f"{label}：不能是负数")
                continue
            parts.append(f"{label} {op} {_number(value)}")
    for name, label in PICKED.items():
        op, value = form.picked.get(name, ("==", ""))
        if not value:
            continue
        if op not in IS_OPS or '"' in value:
            problems.append(f"{label}：请从列表里选择")
            continue
        if name == "role" and roles.role_id(value) is None:
            problems.append(f"{label}：不认识「{value}」")
            continue
        parts.append(f'{label} {op} "{value}"')
    if form.more:
        parts.append(f"({form.more})" if parts else form.more)
    return " 且 ".join(parts)


def _steps(session: Session, form: RuleForm, problems: list[str]) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = []
    for n, row in enumerate(form.steps, 1):
        if not row.kind:
            if row.role or row.person:
                problems.append(f"第{n}步：请选择审批人")
            continue
        spec = _step_spec(session, row, f"第{n}步", problems)
        if spec is None:
            continue
        if row.mode not in MODES:
            problems.append(f"第{n}步：审批方式请选 任一人 或 会签")
        if row.join and steps:
            steps[-1]["approvers"].append(spec)
        else:
            steps.append({"approvers": [spec], "mode": MODES.get(row.mode, "any")})
    if not steps and not problems:
        problems.append("第1步：请选择审批人（至少要有一步）")
    return steps


def _step_spec(session: Session, row: StepRow, label: str, problems: list[str]) -> str | None:
    if row.kind in POSITIONS:
        return POSITIONS[row.kind]
    if row.kind == ROLE:
        role = roles.role_id(row.role)
        if role is None:
            problems.append(f"{label}：请选择角色")
        return f"role:{role}" if role else None
    if row.kind == PERSON:
        return _person(session, row.person, label, problems)
    problems.append(f"{label}：请选择审批人")
    return None


def _person(session: Session, number: str, label: str, problems: list[str]) -> str | None:
    if not number:
        problems.append(f"{label}：请选择审批人")
        return None
    person = session.get(Employee, int(number)) if number.isdigit() else None
    if person is None or not person.active:
        problems.append(f"{label}：这位同事不在名单里（可能已离职）")
        return None
    return f"person:{person.id}"


def _cc_spec(session: Session, word: str, label: str, problems: list[str]) -> str | None:
    if word in CC_POSITIONS:
        return POSITIONS[word]
    if word.isdigit():
        return _person(session, word, label, problems)
    if roles.role_id(word):
        return f"role:{roles.role_id(word)}"
    problems.append(f"{label}：不认识「{word[:20]}」")
    return None


def _no_approver(session: Session, form: RuleForm, problems: list[str]) -> str:
    choice = NO_APPROVER.get(form.no_approver)
    if choice is None:
        problems.append("找不到审批人时：请选择 交给管理员、自动通过 或 交给指定的同事")
        return "admin"
    if choice == "person":
        return _person(session, form.no_approver_person, "找不到审批人时", problems) or "admin"
    return choice


def _number(value: Decimal) -> str:
    return format(value.normalize(), "f")  # 1000, not 1E+3


# -- filling the fields from a saved rule -----------------------------------------------------------


def _fill(form: RuleForm, part: tuple[str, str, Any] | str) -> bool:
    """Put one simple comparison into its field; False when no field is free for it."""
    if isinstance(part, str):
        return False
    name, op, value = part
    if name in NUMBERS and op in NUMBER_OPS and isinstance(value, (int, float)):
        slots = form.numbers[name]
        free = next((i for i, (o, _) in enumerate(slots) if not o), None)
        if free is None:
            return False
        slots[free] = (op, _number(Decimal(str(value))))
        return True
    if name in PICKED and op in IS_OPS and isinstance(value, str) and not form.picked[name][1]:
        form.picked[name] = (op, roles.name_of(roles.role_id(value) or value) if name == "role" else value)
        return True
    return False


def _part_words(part: tuple[str, str, Any]) -> str:
    name, op, value = part
    return display(f"{name} {op} {json.dumps(value, ensure_ascii=False)}")


def _rows(step: dict[str, Any]) -> list[StepRow]:
    mode = next((w for w, v in MODES.items() if v == step.get("mode", "any")), "任一人")
    rows = []
    for i, spec in enumerate(step["approvers"]):
        row = StepRow(mode=mode, join=i > 0)
        if spec.startswith("role:"):
            row.kind, row.role = ROLE, roles.name_of(spec[5:])
        elif spec.startswith("person:"):
            row.kind, row.person = PERSON, spec[7:]
        else:
            row.kind = _word(spec)
        rows.append(row)
    return rows


def _word(spec: str) -> str:
    """A stored CC / approver spec as the picker's value: 直属上级, 财务, or a colleague's number."""
    if spec.startswith("person:"):
        return spec[7:]
    if spec.startswith("role:"):
        return roles.name_of(spec[5:])
    return next((w for w, s in POSITIONS.items() if s == spec or (spec == "manager:1" and s == "manager")), spec)
