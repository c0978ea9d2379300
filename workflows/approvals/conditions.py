"""Routing conditions, evaluated safely: `amount > 1000 and department == "销售一部"`.

Admins type these, so they are parsed with Python's `ast` and walked against a whitelist — names
from FIELDS, numbers, strings, lists, comparisons, and/or/not — never `eval`ed. Chinese works too:
`金额 > 1000 且 部门 == "销售一部"`. A bad condition is refused when the rule is saved, with a message
that names what is wrong.

A person holds several roles, so `角色` is a set: `角色 == "销售经理"` is true when 销售经理 is among
them, `角色 != "财务"` when it is not, `角色 in ["财务", "法务"]` when any is. Role words are read by
workflows/roles.py (销售经理, 会计, or the id sales_manager of rules written before roles had names).
"""

from __future__ import annotations

import ast
import operator
import re
from decimal import Decimal
from typing import Any

from workflows import roles

# What a condition may look at, with the words admins use for them.
FIELDS = {"type": "类型", "amount": "金额", "days": "天数", "department": "部门", "role": "角色",
          "tier": "客户等级", "category": "类别"}
_ALIASES = {"类型": "type", "金额": "amount", "天数": "days", "部门": "department", "角色": "role",
            "客户等级": "tier", "等级": "tier", "类别": "category"}
_WORDS = ((r"\s*(?:并且|而且|且|与)\s*", " and "), (r"\s*(?:或者|或)\s*", " or "), (r"(?:^|\s)非\s*", " not "),
          ("＞", ">"), ("＜", "<"), ("＝", "="), ("≥", ">="), ("≤", "<="), ("“", '"'), ("”", '"'),
          ("，", ","), ("（", "("), ("）", ")"), ("【", "["), ("】", "]"), (r"(?<![<>=!])=(?!=)", "=="))
_COMPARE = {ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Gt: operator.gt, ast.GtE: operator.ge,
            ast.Lt: operator.lt, ast.LtE: operator.le, ast.In: lambda a, b: a in b,
            ast.NotIn: lambda a, b: a not in b}


class BadCondition(ValueError):
    """The condition cannot be used; the message says why, in Chinese."""


def compile_condition(text: str) -> ast.Expression | None:
    """Parse and check `text`; None for an empty condition (always true)."""
    source = _normalise(text)
    if not source:
        return None
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError:
        raise BadCondition(f"条件写法不对：{text}。例：金额 > 1000 且 部门 == \"销售一部\"") from None
    _check(tree.body)
    return tree


def matches(text: str, facts: dict[str, Any]) -> bool:
    tree = compile_condition(text)
    return True if tree is None else bool(_eval(tree.body, facts))


_OP_WORDS = {ast.Eq: "==", ast.NotEq: "!=", ast.Gt: ">", ast.GtE: ">=", ast.Lt: "<", ast.LtE: "<=",
             ast.In: "in", ast.NotIn: "not in"}


def display(text: str) -> str:
    """A condition written one way, in Chinese, however it was typed or seeded:
    `amount <= 1000` and `金额<=1000` both read `金额 <= 1000`; `and`/`or`/`not` read 且/或/非."""
    try:
        tree = compile_condition(text)
    except BadCondition:
        return text.strip()
    return "" if tree is None else _words(tree.body, top=True)


def conjuncts(text: str) -> list[tuple[str, str, Any] | str]:
    """A condition as the parts joined by 且, for the console's form: a part that compares one field
    with one constant is (field, op, value) — ("amount", ">", 1000) — any other part is its words
    (`部门 in ["销售一部", "销售二部"]`, `金额 > 1000 或 天数 > 3`). Empty for an empty condition."""
    tree = compile_condition(text)
    if tree is None:
        return []
    body = tree.body
    parts = body.values if isinstance(body, ast.BoolOp) and isinstance(body.op, ast.And) else [body]
    out: list[tuple[str, str, Any] | str] = []
    for part in parts:
        simple = (isinstance(part, ast.Compare) and len(part.ops) == 1 and isinstance(part.left, ast.Name)
                  and isinstance(part.comparators[0], ast.Constant))
        # Not top: an 或 keeps its brackets, so the parts can be joined by 且 again as they were.
        out.append((part.left.id, _OP_WORDS[type(part.ops[0])], part.comparators[0].value) if simple
                   else _words(part))
    return out


def _words(node: ast.AST, top: bool = False) -> str:
    if isinstance(node, ast.BoolOp):
        joined = f" {'且' if isinstance(node.op, ast.And) else '或'} ".join(_words(v) for v in node.values)
        return joined if top else f"({joined})"
    if isinstance(node, ast.UnaryOp):
        return f"非 {_words(node.operand)}"
    if isinstance(node, ast.Compare):
        parts = [_words(node.left)]
        for op, right in zip(node.ops, node.comparators):
            parts += [_OP_WORDS[type(op)], _words(right)]
        return " ".join(parts)
    if isinstance(node, ast.Name):
        return FIELDS.get(node.id, node.id)
    if isinstance(node, (ast.List, ast.Tuple)):
        return "[" + ", ".join(_words(e) for e in node.elts) + "]"
    value = node.value
    return f'"{value}"' if isinstance(value, str) else f"{value:g}" if isinstance(value, float) else str(value)


def _normalise(text: str) -> str:
    """Chinese words and punctuation → Python syntax, outside quoted text only."""
    source = text.strip().replace("“", '"').replace("”", '"')
    parts = re.split(r'("[^"]*")', source)
    for i in range(0, len(parts), 2):  # even parts are outside quotes
        for pattern, replacement in _WORDS:
            parts[i] = re.sub(pattern, replacement, parts[i])
        for word in sorted(_ALIASES, key=len, reverse=True):
            parts[i] = parts[i].replace(word, f" {_ALIASES[word]} ")
    return "".join(parts).strip()


def _check(node: ast.AST) -> None:
    if isinstance(node, ast.BoolOp):
        for value in node.values:
            _check(value)
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        _check(node.operand)
    elif isinstance(node, ast.Compare):
        if not all(type(op) in _COMPARE for op in node.ops):
            raise BadCondition("只能用 == != > >= < <= in not in 比较")
        for operand in (node.left, *node.comparators):
            _check_operand(operand)
        if any(isinstance(o, ast.Name) and o.id == "role" for o in (node.left, *node.comparators)):
            _check_role_words(node)
    else:
        raise BadCondition("条件只能由比较组成，用「且」「或」「非」连接")


def _check_operand(node: ast.AST) -> None:
    if isinstance(node, ast.Name):
        if not node.id.isascii():
            raise BadCondition(f"文字要加引号，例：部门 == \"{node.id}\"")
        if node.id not in FIELDS:
            known = "、".join(FIELDS.values())
            raise BadCondition(f"不认识「{node.id}」，可以用：{known}")
    elif isinstance(node, (ast.List, ast.Tuple)):
        for element in node.elts:
            if not (isinstance(element, ast.Constant) and isinstance(element.value, (str, int, float))):
                raise BadCondition("列表里只能放数字或带引号的文字")
    elif not (isinstance(node, ast.Constant) and isinstance(node.value, (str, int, float))
              and not isinstance(node.value, bool)):
        raise BadCondition("文字要加引号，例：部门 == \"销售一部\"")


def _check_role_words(node: ast.Compare) -> None:
    for operand in (node.left, *node.comparators):
        for element in (operand.elts if isinstance(operand, (ast.List, ast.Tuple)) else [operand]):
            if isinstance(element, ast.Constant) and roles.role_id(str(element.value)) is None:
                raise BadCondition(f"角色：不认识「{element.value}」，可用：{roles.names()}")


def _eval(node: ast.AST, facts: dict[str, Any]) -> Any:
    if isinstance(node, ast.BoolOp):
        values = (_eval(v, facts) for v in node.values)
        return all(values) if isinstance(node.op, ast.And) else any(values)
    if isinstance(node, ast.UnaryOp):
        return not _eval(node.operand, facts)
    if isinstance(node, ast.Compare):
        left = _operand(node.left, facts)
        for op, right_node in zip(node.ops, node.comparators):
            right = _operand(right_node, facts)
            if isinstance(left, frozenset) or isinstance(right, frozenset):
                if not _holds(left, right, op):
                    return False
            elif left is None or right is None or not _comparable(left, right, op):
                return False  # a request without an amount never matches "amount > 1000"
            elif not _COMPARE[type(op)](left, right):
                return False
            left = right
        return True
    raise BadCondition("条件无法计算")


def _operand(node: ast.AST, facts: dict[str, Any]) -> Any:
    if isinstance(node, ast.Name):
        value = facts.get(node.id)
        return Decimal(str(value)) if isinstance(value, (int, float)) and not isinstance(value, bool) else value
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_operand(e, facts) for e in node.elts]
    value = node.value
    return Decimal(str(value)) if isinstance(value, (int, float)) else value


def _holds(left: Any, right: Any, op: ast.cmpop) -> bool:
    """A comparison with a set-valued fact (the roles someone holds): == / in mean "among them"."""
    held, other = (left, right) if isinstance(left, frozenset) else (right, left)
    words = [_role(w) for w in other] if isinstance(other, list) else [_role(other)]
    if isinstance(op, (ast.Eq, ast.In)):
        return any(w in held for w in words)
    if isinstance(op, (ast.NotEq, ast.NotIn)):
        return not any(w in held for w in words)
    return False


def _role(word: Any) -> Any:
    return roles.role_id(word) or word if isinstance(word, str) else word


def _comparable(left: Any, right: Any, op: ast.cmpop) -> bool:
    if isinstance(op, (ast.In, ast.NotIn)):
        return isinstance(right, list)
    return isinstance(left, Decimal) == isinstance(right, Decimal)
