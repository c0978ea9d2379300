"""Reading the audit log: filter by person, object, action and date, newest first, a page at a time,
and the same rows as CSV. A manager's view holds only rows their team made (as actor or on whose
behalf); an admin's holds everything, Banli's own rows included.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_, select
from sqlalchemy.orm import aliased
from sqlmodel import Session

from storage.models import AuditLog, Employee

PAGE_SIZE = 50
CSV_LIMIT = 100_000
# Actions people read in Chinese; any other shows as written.
ACTION_NAMES = {
    "refused": "被拒绝", "customer.create": "新建客户", "customer.view_phone": "查看电话", "customer.claim": "领取客户",
    "customer.pool": "退回公海", "customer.import": "导入客户", "followup.create": "记跟进", "followup.undo": "撤销跟进",
    "followup.checkin": "签到", "deal.create": "新建商机", "deal.stage": "商机阶段", "deal.amount": "商机金额",
    "payment.receive": "回款", "approval.submit": "提交申请", "approval.approve": "同意", "approval.reject": "拒绝",
    "approval.withdraw": "撤回", "approval.transfer": "转交", "approval.escalate": "升级", "approval.remind": "提醒",
    "role.grant": "授予角色", "role.revoke": "去掉角色", "rule.edit": "修改规则", "approval_rule.edit": "修改审批规则",
    "approval_rule.create": "新增审批规则", "employee.depart": "离职交接", "console.login": "登录后台",
    "outbox.retry": "重试发送", "outbox.discard": "放弃发送", "export": "导出", "customer.merge": "合并客户",
    "customer.owner": "更换负责人", "employee.link": "关联账号", "directory.resync": "同步通讯录",
    "approval.delegate": "设置代理", "approval.delegate_end": "取消代理", "rules.import": "导入规则",
    "rules.export": "导出规则",
}
CSV_HEADER = ("时间", "操作人", "代谁操作", "平台", "动作", "对象", "详情")


@dataclass(frozen=True)
class AuditFilter:
    person_id: int | None = None
    subject: str = ""  # "customer:12" exactly, or a prefix such as "customer"
    action: str = ""
    since: date | None = None
    until: date | None = None  # inclusive

    def is_empty(self) -> bool:
        return self == AuditFilter()


@dataclass(frozen=True)
class AuditRow:
    id: int
    at: str  # business time, 2026-11-21 10:00
    actor: str
    on_behalf_of: str
    platform: str
    action: str
    action_name: str
    subject: str
    detail: str  # the JSON detail as readable text


def page(session: Session, wanted: AuditFilter, *, team: frozenset[int] | None, tz: str,
         number: int = 1) -> tuple[list[AuditRow], int]:
    """One page (1-based) of matching rows, newest first, and how many match in all."""
    query = _query(wanted, team, tz)
    total = session.execute(select(func.count()).select_from(query.subquery())).scalar_one()
    rows = session.execute(query.order_by(AuditLog.id.desc()).offset((max(number, 1) - 1) * PAGE_SIZE)
                           .limit(PAGE_SIZE)).all()
    return [_row(r, tz) for r in rows], total


def csv_bytes(session: Session, wanted: AuditFilter, *, team: frozenset[int] | None, tz: str) -> bytes:
    """Every matching row (up to CSV_LIMIT) as CSV in UTF-8 with a BOM, so Excel reads the Chinese."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_HEADER)
    for r in session.execute(_query(wanted, team, tz).order_by(AuditLog.id.desc()).limit(CSV_LIMIT)):
        row = _row(r, tz)
        writer.writerow([_cell(v) for v in (row.at, row.actor, row.on_behalf_of, row.platform, row.action_name,
                                            row.subject, row.detail)])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def actions(session: Session) -> list[str]:
    """Every action the log holds, for the filter's picker."""
    return sorted(a for a in session.execute(select(AuditLog.action).distinct()).scalars())


def people(session: Session, team: frozenset[int] | None) -> list[Employee]:
    """Whom the person filter offers: the team, or everyone for an admin."""
    query = select(Employee).where(Employee.merged_into_id.is_(None)).order_by(Employee.name, Employee.id)
    if team is not None:
        query = query.where(Employee.id.in_(team))
    return list(session.execute(query).scalars())


_Actor = aliased(Employee)
_Behalf = aliased(Employee)


def _query(wanted: AuditFilter, team: frozenset[int] | None, tz: str):
    query = (select(AuditLog, _Actor.name, _Behalf.name)
             .outerjoin(_Actor, _Actor.id == AuditLog.actor_id)
             .outerjoin(_Behalf, _Behalf.id == AuditLog.on_behalf_of_id))
    if team is not None:
        query = query.where(or_(AuditLog.actor_id.in_(team), AuditLog.on_behalf_of_id.in_(team)))
    if wanted.person_id is not None:
        query = query.where(or_(AuditLog.actor_id == wanted.person_id, AuditLog.on_behalf_of_id == wanted.person_id))
    if wanted.subject:
        subject = wanted.subject.strip()
        query = query.where(or_(AuditLog.subject == subject, AuditLog.subject.startswith(subject.rstrip(":") + ":",
                                                                                         autoescape=True)))
    if wanted.action:
        query = query.where(AuditLog.action == wanted.action)
    zone = ZoneInfo(tz)
    if wanted.since:
        query = query.where(AuditLog.at >= datetime.combine(wanted.since, time(), zone))
    if wanted.until:
        query = query.where(AuditLog.at < datetime.combine(wanted.until + timedelta(days=1), time(), zone))
    return query


def _row(result, tz: str) -> AuditRow:
    entry, actor, behalf = result
    return AuditRow(id=entry.id, at=entry.at.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M"),
                    actor=actor or ("办理（系统）" if entry.actor_id is None else f"#{entry.actor_id}"),
                    on_behalf_of=behalf or "", platform=entry.platform, action=entry.action,
                    action_name=ACTION_NAMES.get(entry.action, entry.action), subject=entry.subject,
                    detail=_detail(entry.detail))


def _detail(raw: str) -> str:
    """`{"attempted": "x", "why": "y"}` → `attempted：x · why：y`; anything else as stored."""
    try:
        data = json.loads(raw or "{}")
    except ValueError:
        return raw
    if not isinstance(data, dict):
        return raw
    return " · ".join(f"{k}：{v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)}" for k, v in data.items())


def _cell(value: str) -> str:
    """A cell Excel would run as a formula (=, +, -, @ first) is kept as text."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value
