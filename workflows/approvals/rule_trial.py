"""Dry runs of a rule that is not (or no longer) in force: the console form's edit before it is
published, or a kept version from the rule's history. Each is tried with the other rules as they are
now, through chain.plan with the candidate rules given, so the answer is the chain a request would
get if that version were in force — next to the chain it gets today."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from storage.models import ApprovalRule, ApprovalRuleVersion
from workflows.approvals.rule_admin import RuleText, best_place, last_priority
from workflows.approvals.rule_view import DryRun, dry_run
from workflows.approvals.shadowing import dead_rules, in_order

NEW = 0  # the id a rule not saved yet stands under in a dry run (no stored rule has it)


@dataclass(frozen=True)
class Comparison:
    now: DryRun | str  # the chain with the rules in force (or a problem naming the field)
    then: DryRun | str  # the chain with the edit / the old version in its place
    rule_id: int  # which rule in `then` is the edited one (NEW for a rule not saved yet)


def draft(session: Session, request_type: str, words: RuleText, active: bool,
          rule: ApprovalRule | None) -> ApprovalRule:
    """The edit as a rule object that is never added to the session (nothing is stored)."""
    if rule is not None and rule.request_type == request_type:
        priority = rule.priority
    else:  # new, or moved to another type: after that type's rules, as publishing would put it
        priority = last_priority(session, request_type) + 10
    return ApprovalRule(id=rule.id if rule else NEW, request_type=request_type, priority=priority,
                        condition=words.condition, steps=json.dumps(words.steps, ensure_ascii=False),
                        cc=json.dumps(words.cc), no_approver=words.no_approver, active=active,
                        version=rule.version + 1 if rule else 1)


def kept_version(session: Session, rule_id: int, version: int) -> ApprovalRule | None:
    """A version from the rule's history as a rule object (not added to the session)."""
    kept = session.execute(select(ApprovalRuleVersion).where(
        ApprovalRuleVersion.rule_id == rule_id, ApprovalRuleVersion.version == version)).scalar_one_or_none()
    if kept is None:
        return None
    data = json.loads(kept.data)
    return ApprovalRule(id=rule_id, request_type=data["type"], priority=data["priority"],
                        condition=data["condition"], steps=json.dumps(data["steps"], ensure_ascii=False),
                        cc=json.dumps(data["cc"]), no_approver=data["no_approver"], active=data["active"],
                        version=data["version"])


def candidates(session: Session, request_type: str, trial: ApprovalRule) -> list[ApprovalRule]:
    """The rules a request of `request_type` would be tried against with `trial` in force, in order.
    A new rule goes where publishing would place it (rule_admin.place): in front of rules that would
    otherwise always win."""
    others = [r for r in in_order(session, request_type) if r.id != trial.id]
    if not trial.active or trial.request_type not in (request_type, "*"):
        return others
    order = sorted([*others, trial], key=lambda r: (r.priority, r.id))
    if trial.id == NEW and trial.request_type != "*" and trial.id in dead_rules(order, request_type):
        at = best_place(others, trial)
        if at is not None:
            order = others[:at] + [trial] + others[at:]
    return order


def compare(session: Session, values: dict[str, Any], trial: ApprovalRule) -> Comparison:
    """The dry run (rule_view.parse_dry_run's values) today and with `trial` in force."""
    return Comparison(now=dry_run(session, values),
                      then=dry_run(session, values, rules=candidates(session, values["type"], trial)),
                      rule_id=trial.id)
