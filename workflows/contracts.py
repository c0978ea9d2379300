"""The CRM ↔ OA loop: a won deal raises a contract approval; an approved contract signs the deal
and starts its 回款计划; a rejected one sends the deal back to 商务谈判 and tells the owner why.

Both reactions are signal subscribers, so they run in the transaction of the change that caused
them: a deal marked 赢单 and its contract request commit together, or neither does.
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal

from sqlalchemy import func, select
from sqlmodel import Session

from cards import Button, Card
from storage.models import ApprovalRequest, Customer, Deal, DealStageChange, Employee, utcnow
from workflows import deals, payments, signals
from workflows.approvals import cards as approval_cards
from workflows.approvals import requests
from workflows.approvals.parse import Draft
from workflows.followups import short_name
from workflows.pushes import push

SIGNED, RENEGOTIATE = deals.SIGNED, "商务谈判"


@signals.subscribe(signals.DEAL_STAGE_CHANGED)
def raise_contract(session: Session, *, deal: Deal, from_stage: str, to_stage: str, by: Employee | None,
                   now: datetime | None = None, tz: str = deals.DEFAULT_TZ, **_) -> None:
    if to_stage != deals.WON:
        return
    now = now or utcnow()
    owner = session.get(Employee, deal.owner_id)
    customer = session.get(Customer, deal.customer_id)
    wins = session.execute(select(func.count(DealStageChange.id)).where(
        DealStageChange.deal_id == deal.id, DealStageChange.to_stage == deals.WON)).scalar()
    draft = contract_draft(customer, deal.amount, deal)
    request = requests.draft(session, owner, draft, source_key=f"deal:{deal.id}:won:{wins}", now=now)
    if request.status != "draft":
        return  # this win already raised its contract
    key = f"approval:contract:{request.id}"
    requests.submit(session, request, by=owner, now=now, platform="system", tz=tz, card_key=key)
    _push(session, owner.id, key, approval_cards.submitted_card(
        session, request, headline=f"{short_name(customer)}赢单了！合同审批已自动发起，审批结果会告诉你。"))


def contract_draft(customer: Customer, amount: Decimal, deal: Deal | None) -> Draft:
    """A 合同 request for `customer` (and its deal, when there is one)."""
    title = deal.title if deal else "合同"
    return Draft(type="合同", summary=f"{short_name(customer)} {title}"[:60], amount=amount,
                 details={"customer_id": customer.id, "customer": customer.name, "deal_id": deal.id if deal else None,
                          "tier": customer.tier})


@signals.subscribe(requests.APPROVAL_DECIDED)
def contract_decided(session: Session, *, request: ApprovalRequest, approved: bool, by: Employee | None,
                     tz: str = deals.DEFAULT_TZ, **_) -> None:
    if request.type != "合同":
        return
    details = json.loads(request.details)
    deal = session.get(Deal, details["deal_id"]) if details.get("deal_id") else None
    if deal is None:
        return  # a contract typed for a customer without a deal: nothing on the CRM side to move
    now = request.decided_at or utcnow()
    if approved:
        deals.set_stage_by_system(session, deal, SIGNED, now=now, reason=f"合同 {request.number} 审批通过", tz=tz)
        rows = payments.plan_default(session, deal, request_id=request.id, now=now, tz=tz)
        _push(session, deal.owner_id, f"contract:signed:{request.id}", Card(
            title=f"已签约 · {deal.title[:20]}", body="合同审批通过，回款计划已生成：\n" + payments.plan_text(rows),
            footer="到期前3天会提醒你和财务；要分期，发「回款计划 客户名 金额 日期, 金额 日期」",
            buttons=(Button("查看客户", "customer.show", str(deal.customer_id)),)))
    else:
        reason = _rejection_reason(session, request)
        deals.set_stage_by_system(session, deal, RENEGOTIATE, now=now, reason=f"合同 {request.number} 被拒绝：{reason}",
                                  tz=tz)
        _push(session, deal.owner_id, f"contract:rejected:{request.id}", Card(
            title=f"合同未通过 · {deal.title[:18]}", body=f"原因：{reason}\n商机已退回「{RENEGOTIATE}」，改好后再推进到赢单即可重新发起。",
            buttons=(Button("查看客户", "customer.show", str(deal.customer_id)),)))


def _rejection_reason(session: Session, request: ApprovalRequest) -> str:
    tasks = [t for t in requests.tasks_of(session, request) if t.status == "rejected"]
    return (tasks[-1].comment if tasks and tasks[-1].comment else "未说明")


def _push(session: Session, employee_id: int, key: str, card: Card) -> None:
    push(session, employee_id, key, card)

