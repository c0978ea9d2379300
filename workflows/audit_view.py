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
                    detail=detail_text(entry.detail))


# The detail keys the code writes, as an admin reads them; any other key shows as written.
DETAIL_NAMES = {
    "after": "修改后", "amount": "金额", "applied": "已生效", "approver": "审批人", "approvers": "审批人",
    "attempted": "尝试的操作", "audit_rows": "审计记录", "bad": "有问题的行", "before": "修改前", "by": "经办人",
    "chain": "审批链", "comment": "意见", "contacts": "联系人数", "content": "内容", "created": "新建",
    "customer_id": "客户编号", "customers": "客户数", "customers_to": "客户交给", "deal_id": "商机编号",
    "duplicates": "疑似重复", "ended": "结束", "expected_close": "预计成交", "file": "文件", "first": "第一条",
    "followup": "跟进", "format": "格式", "from": "原来", "from_owner_id": "原负责人编号", "from_step": "原来的步骤",
    "identities": "账号", "into": "并入", "key": "键", "kind": "类型", "last": "最后一条", "latitude": "纬度",
    "left_over": "剩下", "longitude": "经度", "media_id": "图片编号", "merged": "合并的", "method": "方式",
    "moved": "移过来的记录", "name": "名称", "next_at": "下次", "owner": "负责人", "owner_id": "负责人编号",
    "photo": "照片", "photos": "照片数", "place": "地点", "platform": "平台", "reason": "原因",
    "references": "移过来的记录", "reopened": "重新打开", "role": "角色", "rows": "行数", "rule": "规则",
    "rule_version": "规则版本", "said_step": "说的步骤", "scope": "范围", "sent": "已发送", "source": "来源",
    "stage": "阶段", "step": "步骤", "task": "任务", "tasks": "任务数", "tasks_to": "任务交给", "text": "文字",
    "tier": "等级", "title": "标题", "to": "改为", "to_step": "新的步骤", "version": "版本", "via": "途径",
    "what": "内容", "who": "谁", "why": "原因",
}
# Code words some details hold as values.
VALUE_NAMES = {"import": "导入", "create": "新建", "chat": "聊天", "web": "后台", "cli": "命令行",
               "csrf_missing": "表单缺少校验码", "csrf_wrong": "表单校验码不对", "not_admin": "不是管理员",
               "not_admin_or_manager": "不是管理员或经理"}


def detail_text(raw: str) -> str:
    """An audit row's JSON detail as an admin reads it: `{"attempted": "x", "why": "y"}` →
    `尝试的操作：x · 原因：y`, a before/after pair nested in brackets, yes/no and lists in words;
    text that is not a JSON object as stored. Shared by the audit page and a customer's page."""
    try:
        data = json.loads(raw or "{}")
    except ValueError:
        return raw
    if not isinstance(data, dict):
        return raw
    return " · ".join(f"{DETAIL_NAMES.get(k, k)}：{_value(v)}" for k, v in data.items())


def _value(value) -> str:
    if isinstance(value, bool):
        return "是" if value else "否"
    if value is None or value == "":
        return "无"
    if isinstance(value, dict):
        return "（" + "，".join(f"{DETAIL_NAMES.get(k, k)} {_value(v)}" for k, v in value.items()) + "）"
    if isinstance(value, list):
        return "、".join(_value(v) for v in value) or "无"
    return VALUE_NAMES.get(value, str(value)) if isinstance(value, str) else str(value)


def _cell(value: str) -> str:
    """A cell Excel would run as a formula (=, +, -, @ first) is kept as text."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value
