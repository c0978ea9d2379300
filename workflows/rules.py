"""Admin rules: thresholds that companies tune (overdue days, 公海, quiet hours, deal stages).

Each rule has a default in code and, once an admin edits it, a row in the `rule` table. Values are
validated here, so a bad edit is refused with a message naming the field and nothing is stored.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date
from typing import Any, Callable

from sqlalchemy import select
from sqlmodel import Session

from storage.models import Employee, Rule, TIERS, utcnow
from workflows import audit


class InvalidRule(ValueError):
    """A rule value that cannot be used; `field` names what is wrong, in words an admin reads."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}：{message}")
        self.field = field
        self.message = message


Check = Callable[[str, Any], Any]


@dataclass(frozen=True)
class RuleSpec:
    name: str
    label: str  # what an admin sees
    default: Any
    check: Check  # returns the cleaned value or raises InvalidRule
    example: str = ""  # how to type a value, when the default does not show it (an empty list)


def _days(low: int = 1, high: int = 3650) -> Check:
    def check(label: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise InvalidRule(label, f"应为 {low}–{high} 之间的整数，收到 {value!r}")
        return value
    return check


def _per_tier(low: int = 1, high: int = 3650) -> Check:
    one = _days(low, high)

    def check(label: str, value: Any) -> dict[str, int]:
        if not isinstance(value, dict) or set(value) != set(TIERS):
            raise InvalidRule(label, f"每个等级（{'/'.join(TIERS)}）都要有一个天数")
        return {tier: one(f"{label} {tier}级", value[tier]) for tier in TIERS}
    return check


def _flag(label: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise InvalidRule(label, "应为 是/否")
    return value


_CLOCK = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


def _quiet_hours(label: str, value: Any) -> dict[str, str]:
    if not isinstance(value, dict) or set(value) != {"start", "end", "release"}:
        raise InvalidRule(label, "需要 start（开始）、end（结束）和 release（补发时间），如 21:00 / 08:00 / 08:30")
    for key, word in (("start", "开始"), ("end", "结束"), ("release", "补发时间")):
        if not isinstance(value[key], str) or not _CLOCK.match(value[key]):
            raise InvalidRule(f"{label} {word}", f"时间格式应为 HH:MM，收到 {value[key]!r}")
    return dict(value)


def _clock_time(label: str, value: Any) -> str:
    if not isinstance(value, str) or not _CLOCK.match(value):
        raise InvalidRule(label, f"时间格式应为 HH:MM，如 09:00，收到 {value!r}")
    return value


def _stages(label: str, value: Any) -> list[str]:
    if not isinstance(value, list) or not 2 <= len(value) <= 12:
        raise InvalidRule(label, "应为 2–12 个阶段名")
    if any(not isinstance(s, str) or not 1 <= len(s.strip()) <= 8 for s in value):
        raise InvalidRule(label, "每个阶段名 1–8 个字")
    cleaned = [s.strip() for s in value]
    if len(set(cleaned)) != len(cleaned):
        raise InvalidRule(label, "阶段名不能重复")
    if "赢单" not in cleaned or "输单" not in cleaned:
        raise InvalidRule(label, "必须包含「赢单」和「输单」（合同审批和统计靠它们）")
    return cleaned


_DATE = re.compile(r"^(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?$")


def _dates(label: str, value: Any) -> list[str]:
    """Days as ISO dates, sorted, once each: 2027-01-15, 2027.1.15 and 2027年1月15日 are accepted."""
    if not isinstance(value, list) or len(value) > 366:
        raise InvalidRule(label, "应为日期列表，如 2027-01-15,2027-02-01")
    days = set()
    for item in value:
        match = _DATE.match(str(item).strip())
        try:
            days.add(date(*map(int, match.groups())) if match else None)
        except ValueError:
            match = None
        if not match:
            raise InvalidRule(label, f"「{item}」不是日期，请写成 2027-01-15")
    return sorted(d.isoformat() for d in days)


def _auto_decide(label: str, value: Any) -> dict[str, dict[str, Any]]:
    from storage.models import REQUEST_TYPES

    if not isinstance(value, dict):
        raise InvalidRule(label, "格式：{类型: {hours: 小时数, decision: approve 或 reject}}")
    cleaned = {}
    for kind, spec in value.items():
        if kind not in REQUEST_TYPES:
            raise InvalidRule(f"{label} {kind}", f"不认识的申请类型，可用 {'、'.join(REQUEST_TYPES)}")
        if not isinstance(spec, dict) or spec.get("decision") not in ("approve", "reject"):
            raise InvalidRule(f"{label} {kind} 处理方式", "应为 同意（approve）或 驳回（reject）")
        cleaned[kind] = {"hours": _days(1, 24 * 30)(f"{label} {kind} 小时数", spec.get("hours")),
                         "decision": spec["decision"]}
    return cleaned


def _working_hours(label: str, value: Any) -> dict[str, str]:
    if not isinstance(value, dict) or set(value) != {"start", "end"}:
        raise InvalidRule(label, "需要 start 和 end，如 09:00 / 18:00")
    for key, word in (("start", "上班"), ("end", "下班")):
        if not isinstance(value[key], str) or not _CLOCK.match(value[key]):
            raise InvalidRule(f"{label} {word}", f"时间格式应为 HH:MM，收到 {value[key]!r}")
    if value["start"] >= value["end"]:
        raise InvalidRule(label, "上班时间要早于下班时间")
    return dict(value)


SPECS: dict[str, RuleSpec] = {spec.name: spec for spec in (
    RuleSpec("crm.overdue_days", "超期未跟进天数", {"A": 7, "B": 14, "C": 30}, _per_tier()),
    RuleSpec("crm.overdue_grace_days", "超期提醒升级给经理前的宽限天数", 2, _days(0, 30)),
    RuleSpec("crm.quiet_hours", "免打扰时段", {"start": "21:00", "end": "08:00", "release": "08:30"}, _quiet_hours),
    RuleSpec("crm.followup_hour", "下次跟进默认时间（只说日期时）", "09:00", _clock_time),
    RuleSpec("crm.skip_weekends", "周末和节假日不推送提醒", True, _flag),
    RuleSpec("crm.pool_days", "未跟进退回公海天数", {"A": 30, "B": 45, "C": 60}, _per_tier(4)),
    RuleSpec("crm.pool_warn_days", "退回公海前几天预警", 3, _days(1, 30)),
    RuleSpec("crm.owner_cap", "每人最多持有客户数", 200, _days(1, 100000)),
    RuleSpec("crm.claims_per_day", "每人每天最多领取公海客户数", 5, _days(1, 1000)),
    RuleSpec("crm.reclaim_wait_days", "原负责人重新领取需等待天数", 30, _days(0, 3650)),
    RuleSpec("crm.deal_stages", "商机阶段", ["初步接触", "需求分析", "方案报价", "商务谈判", "赢单", "输单"], _stages),
    RuleSpec("oa.remind_hours", "审批多少小时未处理提醒审批人", 24, _days(1, 24 * 14)),
    RuleSpec("oa.escalate_hours", "审批多少小时未处理升级给上级", 48, _days(1, 24 * 30)),
    RuleSpec("oa.auto_decide", "到期自动处理的申请类型", {}, _auto_decide),
    RuleSpec("oa.working_hours", "工作时间（提醒只在此时段发）", {"start": "09:00", "end": "18:00"}, _working_hours),
    # On top of the official holidays and 调休 (workflows/workdays.py).
    RuleSpec("oa.extra_holidays", "公司自定假日", [], _dates, example="2027-01-15,2027-01-16"),
    RuleSpec("oa.extra_workdays", "公司自定上班日", [], _dates, example="2027-01-30"),
)}


def show(spec: RuleSpec, value: Any) -> str:
    """A rule's value in the words an admin reads (chat and console)."""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, list):
        return "，".join(value) or "无"
    if isinstance(value, dict) and set(value) == set(TIERS):
        return " / ".join(f"{t} {value[t]}天" for t in TIERS)
    if isinstance(value, dict) and "release" in value:
        return f"{value['start']}–{value['end']}，{value['release']} 补发"
    if spec.name == "oa.working_hours":
        return f"{value['start']}–{value['end']}"
    if spec.name == "oa.auto_decide":
        return "；".join(f"{kind} {v['hours']}小时未处理自动{'同意' if v['decision'] == 'approve' else '拒绝'}"
                        for kind, v in value.items()) or "无（都等人审批）"
    return str(value)


def get(session: Session, name: str) -> Any:
    """The rule's current value: the admin's, or the default."""
    row = _row(session, name)
    return json.loads(row.value) if row is not None else _spec(name).default


def version(session: Session, name: str) -> int:
    """0 while the default applies; goes up with every edit."""
    row = _row(session, name)
    return row.version if row is not None else 0


def put(session: Session, name: str, value: Any, *, by: Employee | None, platform: str = "") -> Any:
    """Validate and store a new value (audited). Raises InvalidRule, changing nothing, if it is bad."""
    spec = _spec(name)
    cleaned = spec.check(spec.label, value)
    row = _row(session, name)
    before = json.loads(row.value) if row is not None else spec.default
    if row is None:
        row = Rule(name=name, value="", version=0)
    row.value = json.dumps(cleaned, ensure_ascii=False)
    row.version += 1
    row.updated_by = by.id if by else None
    row.updated_at = utcnow()
    session.add(row)
    audit.record(session, actor=by, action="rule.edit", subject=f"rule:{name}", platform=platform,
                 detail={"before": before, "after": cleaned, "version": row.version})
    return cleaned


def _spec(name: str) -> RuleSpec:
    if name not in SPECS:
        raise InvalidRule(name, "没有这条规则")
    return SPECS[name]


def _row(session: Session, name: str) -> Rule | None:
    return session.execute(select(Rule).where(Rule.name == name)).scalars().first()


def reset(session: Session, name: str, *, by: Employee | None, platform: str = "") -> Any:
    """Back to the default in code (audited). The row goes, so the page shows （默认） again."""
    spec = _spec(name)
    row = _row(session, name)
    if row is None:
        return spec.default
    before = json.loads(row.value)
    session.delete(row)
    audit.record(session, actor=by, action="rule.edit", subject=f"rule:{name}", platform=platform,
                 detail={"before": before, "after": spec.default, "reset": True})
    return spec.default
