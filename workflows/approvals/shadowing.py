"""Which routing rules can never apply: the first matching rule wins, so a rule whose every case an
earlier rule already takes (`报销 金额 > 5000` behind `报销 金额 > 1000`) is dead, as is one whose
condition can never hold.

Conditions compare a field with constants, so the answer only changes at those constants: trying each
constant, a value between each pair, one beyond either end and "missing" for every field the rules
mention covers every case. A condition comparing two fields with each other is outside that; such a
list is not judged (no warning rather than a wrong one).
"""

from __future__ import annotations

import ast
import itertools
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Iterable

from sqlalchemy import or_, select
from sqlmodel import Session

from storage.models import ApprovalRule
from workflows import roles
from workflows.approvals.conditions import BadCondition, compile_condition, matches

MAX_CASES = 20000  # beyond this many combinations the list is not judged
OTHER = "（其他）"  # a text value no condition names


@dataclass(frozen=True)
class Dead:
    rule_id: int
    winners: tuple[int, ...]  # the earlier rules that take its cases; empty: its condition never holds

    def text(self) -> str:
        if not self.winners:
            return "永远不会生效：条件不可能成立"
        return f"永远不会生效：{'、'.join(f'#{n}' for n in self.winners)} 总是先匹配"


def in_order(session: Session, request_type: str) -> list[ApprovalRule]:
    """The active rules a request of this type is tried against, first to last (as chain.choose_rule)."""
    return list(session.execute(select(ApprovalRule).where(
        ApprovalRule.active, or_(ApprovalRule.request_type == request_type, ApprovalRule.request_type == "*"))
        .order_by(ApprovalRule.priority, ApprovalRule.id)).scalars())


def dead_rules(rules: list[ApprovalRule], request_type: str) -> dict[int, Dead]:
    """rule id → why it never applies, for the rules (in trial order) of one request type."""
    cases = _cases(rules, request_type)
    if cases is None:
        return {}
    first: list[int | None] = [next((i for i, r in enumerate(rules) if matches(r.condition, c)), None) for c in cases]
    dead = {}
    for i, rule in enumerate(rules):
        mine = [n for n, c in enumerate(cases) if matches(rule.condition, c)]
        if all(first[n] != i for n in mine):
            winners = sorted({rules[first[n]].id for n in mine})
            dead[rule.id] = Dead(rule.id, tuple(winners))
    return dead


def _cases(rules: list[ApprovalRule], request_type: str) -> list[dict[str, Any]] | None:
    constants: dict[str, set] = {}
    for rule in rules:
        try:
            tree = compile_condition(rule.condition)
        except BadCondition:
            return None
        for node in ast.walk(tree.body) if tree else ():
            if isinstance(node, ast.Compare) and not _collect(node, constants):
                return None
    fields = sorted(f for f in constants if f != "type")
    values = [_probes(f, constants[f]) for f in fields]
    size = 1
    for v in values:
        size *= len(v)
    if size > MAX_CASES:
        return None
    return [{"type": request_type, **dict(zip(fields, combo))} for combo in itertools.product(*values)]


def _collect(node: ast.Compare, constants: dict[str, set]) -> bool:
    operands = [node.left, *node.comparators]
    names = [o.id for o in operands if isinstance(o, ast.Name)]
    if len(names) != 1:
        return len(names) == 0
    found = constants.setdefault(names[0], set())
    for operand in operands:
        for element in operand.elts if isinstance(operand, (ast.List, ast.Tuple)) else [operand]:
            if isinstance(element, ast.Constant):
                found.add(element.value)
    return True


def _probes(field: str, constants: set) -> list[Any]:
    if field == "role":
        held = {roles.role_id(str(w)) or str(w) for w in constants}
        return [frozenset(), *(frozenset({r}) for r in sorted(held)), frozenset(held)]
    numbers = sorted(Decimal(str(c)) for c in constants if isinstance(c, (int, float)))
    texts = sorted(str(c) for c in constants if isinstance(c, str))
    between = [(a + b) / 2 for a, b in zip(numbers, numbers[1:])]
    ends = [numbers[0] - 1, numbers[-1] + 1] if numbers else [Decimal(0)]
    return [None, *_unique(numbers + between + ends), *texts, OTHER]


def _unique(values: Iterable[Any]) -> list[Any]:
    return sorted(set(values))
