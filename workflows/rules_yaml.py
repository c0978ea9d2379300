"""All the rules as one YAML file an admin can read, keep and edit: the routing rules per request type
in the order they are tried, written in the words chat uses (`金额 > 1000`, `直属上级 → 财务(会签)`),
then every other rule by name with its value. workflows/rules_import.py reads such a file back.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

import yaml
from sqlalchemy import select
from sqlmodel import Session

from storage.models import REQUEST_TYPES, ApprovalRule
from workflows import rules
from workflows.approvals.chain import AFTER
from workflows.approvals.conditions import display
from workflows.approvals.rule_admin import approver_words
from workflows.rule_settings import DECISIONS, PAIRS

ROUTING, OTHERS = "审批路由", "其他规则"
WILDCARD = "通配"  # the group of rules for every type (`*`, which YAML would read as an alias)
OTHERWISE = "其他情况"  # a rule with no condition
NO_APPROVER = {"auto_pass": "自动通过", "admin": "管理员"}
YES, NO = "是", "否"
HEADER = """\
# 办理 规则（{at} 导出）
# 审批路由：每种申请类型的规则按「优先级」从小到大试，第一条符合的生效。
#   改顺序就改优先级；新规则不写编号；文件里删掉的规则导入时保留不变（要停用请写 启用: 否）。
#   审批人的写法和聊天里一样：直属上级、上上级、部门负责人、角色（财务）、同事姓名；会签写 财务(会签)。
# 其他规则：名称: 值。文件里没有的规则保持不变。
"""


def export_text(session: Session, *, at: datetime) -> str:
    """The whole file; reading it back unchanged changes nothing."""
    routing = {}
    found = session.execute(select(ApprovalRule).order_by(ApprovalRule.priority, ApprovalRule.id)).scalars().all()
    for kind in (*REQUEST_TYPES, "*"):
        mine = [entry(session, r) for r in found if r.request_type == kind]
        if mine:
            routing[WILDCARD if kind == "*" else kind] = mine
    body = _dump({ROUTING: routing}) if routing else f"{ROUTING}: {{}}\n"
    others = _dump({spec.name: file_value(spec.name, rules.get(session, spec.name)) for spec in rules.SPECS.values()},
                   flow=True)
    body += f"{OTHERS}:\n"
    for line in others.splitlines():  # each rule's label as a comment above it
        spec = rules.SPECS.get(line.partition(":")[0])
        body += (f"  # {spec.label}\n" if spec else "") + f"  {line}\n"
    return HEADER.format(at=at.strftime("%Y-%m-%d %H:%M")) + body


def entry(session: Session, rule: ApprovalRule) -> dict[str, Any]:
    """One routing rule as the file writes it."""
    cc = json.loads(rule.cc or "[]")
    out: dict[str, Any] = {"编号": rule.id, "优先级": rule.priority, "条件": display(rule.condition) or OTHERWISE,
                           "审批": chain_words(session, json.loads(rule.steps))}
    now_cc = [s for s in cc if not s.startswith(AFTER)]
    after_cc = [s[len(AFTER):] for s in cc if s.startswith(AFTER)]
    if now_cc:
        out["抄送"] = "、".join(approver_words(session, s) for s in now_cc)
    if after_cc:
        out["通过后抄送"] = "、".join(approver_words(session, s) for s in after_cc)
    out["找不到审批人时"] = no_approver_words(session, rule.no_approver)
    out["启用"] = YES if rule.active else NO
    return out


def chain_words(session: Session, steps: list[dict[str, Any]]) -> str:
    """直属上级 → 财务、出纳(会签): what parse_rule_text reads back into the same steps."""
    return " → ".join("、".join(approver_words(session, s) for s in step["approvers"])
                      + ("(会签)" if step.get("mode") == "all" else "") for step in steps)


def no_approver_words(session: Session, spec: str) -> str:
    return NO_APPROVER.get(spec) or approver_words(session, spec)


def file_value(name: str, value: Any) -> Any:
    """A stored value with Chinese keys: 免打扰时段 {开始, 结束, 补发时间}, 自动处理 {小时, 自动: 同意}."""
    if name in PAIRS:
        return {word: value[key] for key, word in PAIRS[name]}
    if name == "oa.auto_decide":
        return {kind: {"小时": v["hours"], "自动": DECISIONS[v["decision"]]} for kind, v in value.items()}
    return value


def stored_value(name: str, value: Any) -> Any:
    """file_value backwards (the stored English keys are read too); what cannot be read goes on as it
    is, for rules.py's check to name."""
    if name in PAIRS and isinstance(value, dict):
        keys = {word: key for key, word in PAIRS[name]}
        return {keys.get(k, k): v for k, v in value.items()}
    if name == "oa.auto_decide" and isinstance(value, dict):
        decisions = {**{word: key for key, word in DECISIONS.items()}, "拒绝": "reject"}
        return {kind: {"hours": v.get("小时", v.get("hours")),
                       "decision": decisions.get(v.get("自动"), v.get("自动", v.get("decision")))}
                if isinstance(v, dict) else v for kind, v in value.items()}
    return value


class _Loader(yaml.SafeLoader):
    """safe_load's loader, except that 21:00 stays the text 21:00 (YAML 1.1 reads an unquoted time
    as a base-60 number, 1260, and a person editing the file writes times unquoted), and that aliases
    are refused: a rules file never needs one, and a few nested ones make a value that prints
    billions of items long in an error message."""

    def compose_node(self, parent, index):  # type: ignore[no-untyped-def]
        if self.check_event(yaml.AliasEvent):
            raise yaml.composer.ComposerError(None, None, "不能用别名（*名字）", self.peek_event().start_mark)
        return super().compose_node(parent, index)


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:int"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
_Loader.add_implicit_resolver("tag:yaml.org,2002:int", re.compile(r"^[-+]?(?:0|[1-9][0-9_]*)$"),
                              list("-+0123456789"))


def load(text: str) -> Any:
    """The file's data (safe: plain values only). Raises ValueError naming the line of a bad file."""
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 — a SafeLoader subclass
    except yaml.YAMLError as bad:
        mark = getattr(bad, "problem_mark", None)
        where = f"第 {mark.line + 1} 行" if mark is not None else ""
        raise ValueError(f"文件：{where}不是有效的 YAML（{getattr(bad, 'problem', None) or '格式有误'}）") from None


def _dump(data: Any, *, flow: bool = False) -> str:
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False, default_flow_style=None if flow else False,
                          width=1000)
