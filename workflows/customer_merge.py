"""Merging two duplicate customers (合并客户): one is kept, the other's records all move to it.

What moves, in one transaction: contacts, deals, follow-ups (and with them their 签到 photos, which
are attached to the follow-up, not the customer), ownership history, 回款 plans, the customer named
in contract requests (`details.customer_id`) and in guided forms still open, and every audit row
about the duplicate (`customer:<id>` becomes the kept one's, so its history reads whole).

The duplicate's row is then deleted, not kept beside it: every list, sweep, digest and the matcher
read `customer` directly, and a second row marked "merged" would need every one of them to skip it.
What stays of it is the redirect — an audit row `customer.merged_into` under its old subject,
`customer:<old id>` — which `customers.get` follows (`customers.redirect`), so a card or form still
naming the old id lands on the kept customer. The duplicate's legal name and 简称 become 简称 of the
kept one, so the chat finds it by either name. Who may merge: admins only (`may_merge`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlmodel import Session

from storage.models import (ApprovalRequest, AuditLog, Contact, Conversation, Customer, Deal, Employee, FollowUp,
                            OwnershipChange, PaymentPlan)
from workflows import audit, followups, roles
from workflows.customers import MERGED_INTO
from workflows.matching import refresh_forms, split_short_names

SHORT_NAMES_MAX = 255  # Customer.short_names
# Tables whose rows belong to a customer by `customer_id`, with the names people read.
MOVED = ((Contact, "联系人"), (Deal, "商机"), (FollowUp, "跟进记录"), (OwnershipChange, "负责人变更"),
         (PaymentPlan, "回款计划"))
TIER_ORDER = "ABC"


class MergeRefused(Exception):
    """A merge that cannot be done; the message is the Chinese reason to show."""


@dataclass(frozen=True)
class Preview:
    keep: Customer
    gone: Customer
    counts: dict[str, int]  # what moves: 联系人 → 2, …, 审计记录, 合同申请
    after: dict[str, str]  # the kept customer's fields after the merge


def may_merge(session: Session, employee: Employee) -> bool:
    return roles.is_admin(session, employee)


def preview(session: Session, keep_id: int, gone_id: int) -> Preview:
    """What merging `gone_id` into `keep_id` would do; nothing is changed. MergeRefused if it cannot."""
    keep, gone = _pair(session, keep_id, gone_id)
    counts = {label: session.execute(select(func.count()).select_from(model)
                                     .where(model.customer_id == gone.id)).scalar_one() for model, label in MOVED}
    counts["审计记录"] = session.execute(select(func.count()).select_from(AuditLog)
                                      .where(AuditLog.subject == f"customer:{gone.id}")).scalar_one()
    counts["合同申请"] = len(_requests_naming(session, gone.id))
    return Preview(keep, gone, counts, _merged_fields(session, keep, gone))


def merge(session: Session, keep_id: int, gone_id: int, *, actor: Employee, platform: str = "web",
          at: datetime | None = None) -> Preview:
    """Merge `gone_id` into `keep_id` (the caller commits; a failure rolls all of it back)."""
    if not may_merge(session, actor):
        raise MergeRefused("只有管理员可以合并客户")
    # Both rows locked, in id order: a second admin merging the same pair waits, then finds the
    # duplicate gone (a refusal, not a half-done merge); opposite pairs cannot deadlock.
    session.execute(select(Customer.id).where(Customer.id.in_((keep_id, gone_id))).order_by(Customer.id)
                    .with_for_update())
    plan = preview(session, keep_id, gone_id)
    keep, gone = plan.keep, plan.gone
    before = {"kept": _snapshot(keep), "merged": _snapshot(gone)}
    for model, _label in MOVED:
        session.execute(update(model).where(model.customer_id == gone.id).values(customer_id=keep.id))
    _move_json(session, gone, keep)
    moved_audit = list(session.execute(select(AuditLog.id).where(AuditLog.subject == f"customer:{gone.id}")).scalars())
    session.execute(update(AuditLog).where(AuditLog.id.in_(moved_audit)).values(subject=f"customer:{keep.id}"))
    _apply_fields(session, keep, gone)
    session.flush()
    followups.recompute_times(session, keep)
    refresh_forms(keep)
    session.add(keep)
    session.delete(gone)
    session.flush()
    audit.record(session, actor=actor, action="customer.merge", subject=f"customer:{keep.id}", platform=platform,
                 at=at, detail={"before": before, "after": _snapshot(keep), "moved": plan.counts,
                                "audit_rows": moved_audit})
    audit.record(session, actor=actor, action=MERGED_INTO, subject=f"customer:{gone.id}", platform=platform, at=at,
                 detail={"into": keep.id, "name": before["merged"]["name"]})
    return Preview(keep, gone, plan.counts, plan.after)


def _pair(session: Session, keep_id: int, gone_id: int) -> tuple[Customer, Customer]:
    if keep_id == gone_id:
        raise MergeRefused("保留的客户和要合并的客户是同一个")
    keep, gone = session.get(Customer, keep_id), session.get(Customer, gone_id)
    for wanted, found in ((keep_id, keep), (gone_id, gone)):
        if found is None:
            raise MergeRefused(f"客户 #{wanted} 不存在（可能刚被合并或删除）")
    return keep, gone


def _merged_fields(session: Session, keep: Customer, gone: Customer) -> dict[str, str]:
    owner_id = keep.owner_id if keep.owner_id is not None else gone.owner_id
    owner = session.get(Employee, owner_id) if owner_id else None
    return {"客户名称": keep.name, "简称": _short_names(keep, gone), "等级": _tier(keep, gone),
            "行业": keep.industry or gone.industry, "地区": keep.region or gone.region,
            "负责人": owner.name if owner else "公海"}


def _apply_fields(session: Session, keep: Customer, gone: Customer) -> None:
    """The kept row's own values win; blanks are filled from the duplicate, the better tier is kept,
    and a 公海 customer takes the duplicate's owner (that owner was working it)."""
    keep.short_names = _short_names(keep, gone)
    keep.tier = _tier(keep, gone)
    keep.industry = keep.industry or gone.industry
    keep.region = keep.region or gone.region
    if keep.owner_id is None and gone.owner_id is not None:
        keep.owner_id, keep.owned_since = gone.owner_id, gone.owned_since
    keep.created_at = min(keep.created_at, gone.created_at)


def _short_names(keep: Customer, gone: Customer) -> str:
    """The kept 简称, then the duplicate's legal name and 简称: the names people used for either."""
    names: list[str] = []
    for name in [*split_short_names(keep.short_names), gone.name, *split_short_names(gone.short_names)]:
        if name and name != keep.name and name not in names and len(",".join([*names, name])) <= SHORT_NAMES_MAX:
            names.append(name)
    return ",".join(names)


def _tier(keep: Customer, gone: Customer) -> str:
    return min((keep.tier or "C", gone.tier or "C"), key=lambda t: TIER_ORDER.index(t) if t in TIER_ORDER else len(TIER_ORDER))


def _requests_naming(session: Session, customer_id: int) -> list[tuple[ApprovalRequest, dict]]:
    """Requests whose details name the customer (contracts): a text pre-filter, then the JSON itself."""
    found = []
    for request in session.execute(select(ApprovalRequest).where(ApprovalRequest.details.contains('"customer_id"'))
                                   ).scalars():
        details = _json(request.details)
        if details.get("customer_id") == customer_id:
            found.append((request, details))
    return found


def _move_json(session: Session, gone: Customer, keep: Customer) -> None:
    for request, details in _requests_naming(session, gone.id):
        details.update(customer_id=keep.id, customer=keep.name)
        request.details = json.dumps(details, ensure_ascii=False, default=str)
        session.add(request)
    for form in session.execute(select(Conversation).where(Conversation.data.contains('"customer_id"'))).scalars():
        data = _json(form.data)
        if data.get("customer_id") == gone.id:
            data["customer_id"] = keep.id
            form.data = json.dumps(data, ensure_ascii=False, default=str)
            session.add(form)


def _json(text: str) -> dict:
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _snapshot(customer: Customer) -> dict:
    return {"id": customer.id, "name": customer.name, "short_names": customer.short_names, "tier": customer.tier,
            "status": customer.status, "industry": customer.industry, "region": customer.region,
            "owner_id": customer.owner_id, "last_followup_at": customer.last_followup_at,
            "next_followup_at": customer.next_followup_at}
