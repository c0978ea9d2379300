"""The CRM ↔ OA loop: a won deal raises a contract approval; an approved contract signs the deal
and starts its 回款计划 (for the approved contract's amount); a rejected one sends the deal back to
商务谈判 and tells the owner why.

A contract typed by hand (`合同 腾讯 8万`) belongs to no deal unless its requester picks one of the
customer's open deals on the confirmation card (`deal_question`, `link_deal`): nothing is guessed.

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
from workflows import audit, deals, payments
from workflows.approvals import cards as approval_cards
from workflows.approvals import requests
from workflows.approvals.parse import Draft
from workflows.customer_views import amount_text
from workflows.customers import words_naming
from workflows.followups import short_name
from workflows.pushes import push

SIGNED, RENEGOTIATE = deals.SIGNED, "商务谈判"
PICK = "contract.deal"  # a confirmation card's deal button: value "<request id>:<deal id>", 0 for no deal
NO_DEAL = "不关联商机"
MAX_PICKS = 3  # 提交 + three deals + 不关联商机 + 取消: the card's six buttons


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
                          "deal": deal.title if deal else None, "tier": customer.tier})


class PickRefused(Exception):
    """A deal pick that changed nothing (already on record as an audit `refused` row, with `why`)."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


def deal_question(session: Session, request: ApprovalRequest) -> tuple[str, tuple[Button, ...]]:
    """What a 合同 draft's confirmation card asks about the deal, and its buttons: one per open deal of
    the customer (the linked one first, then the newest) and 「不关联商机」. ("", ()) when there is
    nothing to pick: not a draft contract, or a customer without an open deal."""
    if request.type != "合同" or request.status != "draft":
        return "", ()
    details = json.loads(request.details)
    linked = details.get("deal_id")
    opened = deals.open_deals(session, details["customer_id"])
    if not opened and not linked:
        return "", ()
    requester = session.get(Employee, request.requester_id)
    shown = sorted(opened, key=lambda d: (d.id != linked, -d.id))[:MAX_PICKS]
    labels = [d.title[:10] for d in shown]
    for i, deal in enumerate(shown):
        if labels.count(labels[i]) > 1:  # two deals with one title: tell them apart by stage and amount
            amount = amount_text(deal.amount) if deal.amount and deals.may_see_amount(session, requester, deal) else ""
            labels[i] = f"{deal.stage}{amount}"[:10]
    buttons = tuple(Button(label, PICK, f"{request.id}:{deal.id}", style="primary" if deal.id == linked else "default")
                    for label, deal in zip(labels, shown)) + (Button(NO_DEAL, PICK, f"{request.id}:0"),)
    more = f"（另有{len(opened) - len(shown)}个较早的商机没列出）" if len(opened) > len(shown) else ""
    if linked:
        ask = (f"已关联商机「{details.get('deal') or linked}」：审批通过后它会变成已签约，回款按这份合同的金额。"
               f"要改就点别的商机{more}。")
    else:
        ask = f"这位客户有进行中的商机{more}。合同属于哪个就点哪个；不点就不关联，审批通过也不动商机。"
    return ask, buttons


def link_deal(session: Session, request: ApprovalRequest | None, deal_id: int | None, *, by: Employee,
              platform: str, now: datetime) -> Deal | None:
    """Link the requester's own 合同 draft to one of its customer's open deals, or (None) to no deal.
    Anything else changes nothing: an audit `refused` row, then PickRefused."""
    def refuse(why: str) -> PickRefused:
        audit.refused(session, actor=by, attempted=PICK, why=why, platform=platform, at=now,
                      subject=f"approval:{request.id}" if request is not None else "")
        return PickRefused(why)

    if request is None or request.type != "合同":
        raise refuse(f"no such contract request (deal {deal_id})")
    if request.requester_id != by.id:
        raise refuse(f"not the requester's own request (deal {deal_id})")
    if request.status != "draft":
        raise refuse(f"request is {request.status}, not a draft (deal {deal_id})")
    details = json.loads(request.details)
    customer = session.get(Customer, details["customer_id"])
    deal = session.get(Deal, deal_id) if deal_id else None
    if deal_id and (deal is None or deal.customer_id != customer.id or deals.is_closed(deal)):
        raise refuse(f"deal {deal_id} is not an open deal of customer {customer.id}")
    if deal is not None and not deals.may_move(session, by, deal):
        raise refuse(f"may not move deal {deal_id}")
    before = details.get("deal_id")
    if before == (deal.id if deal else None):
        return deal  # tapped again: already so
    fresh = contract_draft(customer, request.amount, deal)
    changed = {**details, "deal_id": fresh.details["deal_id"], "deal": fresh.details["deal"]}
    # A submit that got in first (or a second pick) wins; this one then changes nothing.
    if not requests.change_draft(session, request, summary=fresh.summary[:128],
                                 details=json.dumps(changed, ensure_ascii=False)):
        raise refuse(f"request changed meanwhile (now {request.status})")
    audit.record(session, actor=by, action="contract.link_deal", subject=f"approval:{request.id}", platform=platform,
                 detail={"deal_id": deal.id if deal else None, "before": before}, at=now)
    return deal


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
        # What was approved is the contract's amount; the deal's may differ (typed by hand, or changed since).
        rows = payments.plan_default(session, deal, request.amount, request_id=request.id, now=now, tz=tz)
        _push(session, deal.owner_id, f"contract:signed:{request.id}", Card(
            title=f"已签约 · {deal.title[:20]}", body="合同审批通过，回款计划已生成：\n" + payments.plan_text(rows),
            footer="到期前3天会提醒你和财务；要分期，发「回款计划 客户名 金额 日期, 金额 日期」",
            buttons=(_customer_button(session, deal),)))
    else:
        reason = _rejection_reason(session, request)
        deals.set_stage_by_system(session, deal, RENEGOTIATE, now=now, reason=f"合同 {request.number} 被拒绝：{reason}",
                                  tz=tz)
        _push(session, deal.owner_id, f"contract:rejected:{request.id}", Card(
            title=f"合同未通过 · {deal.title[:18]}", body=f"原因：{reason}\n商机已退回「{RENEGOTIATE}」，改好后再推进到赢单即可重新发起。",
            buttons=(_customer_button(session, deal),)))


def _rejection_reason(session: Session, request: ApprovalRequest) -> str:
    tasks = [t for t in requests.tasks_of(session, request) if t.status == "rejected"]
    return (tasks[-1].comment if tasks and tasks[-1].comment else "未说明")


def _push(session: Session, employee_id: int, key: str, card: Card) -> None:
    push(session, employee_id, key, card)


def _customer_button(session: Session, deal: Deal) -> Button:
    customer = session.get(Customer, deal.customer_id)
    return Button("查看客户", "customer.show", str(deal.customer_id),
                  command=words_naming(session, customer, "查看") if customer else "")
