"""The console's form for one of the other rules (workflows/rules.py SPECS): which inputs fit its
value (numbers per customer tier, a flag, clock times, a list …), the form's words → the value that
`rules.put` checks, and the value → what the inputs show. Validation is rules.py's own, so a bad
value is refused there with the field named, exactly as in chat.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping

from sqlmodel import Session

from storage.models import REQUEST_TYPES, TIERS, Employee
from workflows import rules
from workflows.rules import RuleSpec

DECISIONS = {"approve": "同意", "reject": "驳回"}
# The two clock pairs: the keys rules.py stores, with what the form calls them.
PAIRS = {"crm.quiet_hours": (("start", "开始"), ("end", "结束"), ("release", "补发时间")),
         "oa.working_hours": (("start", "上班"), ("end", "下班"))}
_SPLIT = re.compile(r"[\s,，、;；]+")


@dataclass(frozen=True)
class Setting:
    name: str
    label: str
    kind: str  # tiers / number / flag / clock / clocks / stages / dates / auto
    value: Any  # the stored value (or the default)
    shown: str  # rules.show: the value in words
    default: str  # the default in words
    changed: bool  # an admin has set it


def kind_of(spec: RuleSpec) -> str:
    """Which form fits: by the shape of the default, as the chat parser decides."""
    default = spec.default
    if spec.name in PAIRS:
        return "clocks"
    if spec.name == "oa.auto_decide":
        return "auto"
    if isinstance(default, bool):
        return "flag"
    if isinstance(default, int):
        return "number"
    if isinstance(default, str):
        return "clock"
    if isinstance(default, dict):
        return "tiers"
    return "stages" if default else "dates"


def setting(session: Session, name: str) -> Setting | None:
    """The rule as the form shows it; None for a name that is not a rule."""
    spec = rules.SPECS.get(name)
    if spec is None:
        return None
    value = rules.get(session, name)
    return Setting(name=name, label=spec.label, kind=kind_of(spec), value=value, shown=rules.show(spec, value),
                   default=rules.show(spec, spec.default), changed=rules.version(session, name) > 0)


def form_of(spec: RuleSpec, value: Any) -> dict[str, str]:
    """The stored value as the inputs' text (the form's first showing)."""
    kind = kind_of(spec)
    if kind == "tiers":
        return {t: str(value[t]) for t in TIERS}
    if kind == "clocks":
        return {key: value[key] for key, _ in PAIRS[spec.name]}
    if kind == "auto":
        out = {}
        for t in REQUEST_TYPES:
            chosen = value.get(t)
            out[f"hours_{t}"] = str(chosen["hours"]) if chosen else ""
            out[f"decision_{t}"] = chosen["decision"] if chosen else "approve"
        return out
    if kind == "flag":
        return {"value": "yes" if value else "no"}
    if kind in ("stages", "dates"):
        return {"value": "\n".join(value)}
    return {"value": str(value)}


def value_from(spec: RuleSpec, form: Mapping[str, str]) -> Any:
    """The form's words → the value rules.put checks. Nothing is refused here: text that is not a
    number or a time goes on as typed, so the check names the field and says what it got."""
    kind = kind_of(spec)
    text = lambda key: str(form.get(key, "")).strip()[:2000]  # noqa: E731
    if kind == "tiers":
        return {t: _number(text(t)) for t in TIERS}
    if kind == "number":
        return _number(text("value"))
    if kind == "flag":
        return {"yes": True, "no": False}.get(text("value"), text("value"))
    if kind == "clock":
        return _clock(text("value"))
    if kind == "clocks":
        return {key: _clock(text(key)) for key, _ in PAIRS[spec.name]}
    if kind == "auto":
        chosen = {}
        for t in REQUEST_TYPES:
            if text(f"hours_{t}"):  # empty: this type waits for a person
                chosen[t] = {"hours": _number(text(f"hours_{t}").removesuffix("小时")),
                             "decision": text(f"decision_{t}")}
        return chosen
    return [part for part in _SPLIT.split(text("value")) if part]


def save(session: Session, name: str, form: Mapping[str, str], *, by: Employee, platform: str = "web") -> Any:
    """Validate and store (audited with before/after). Raises rules.InvalidRule, storing nothing."""
    return rules.put(session, name, value_from(rules.SPECS[name], form), by=by, platform=platform)


def _number(text: str) -> int | str:
    return int(text) if re.fullmatch(r"-?\d{1,9}", text) else text


def _clock(text: str) -> str:
    """9:00 / 9：00 → 09:00; anything else as typed, for the check to name."""
    match = re.fullmatch(r"(\d{1,2})[:：](\d{2})", text)
    return f"{int(match.group(1)):02d}:{match.group(2)}" if match else text
