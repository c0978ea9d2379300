"""Deals (商机): one customer's sales opportunities, moved through admin-editable stages.

The stage list is the `crm.deal_stages` rule. Every move — creation included, with from_stage "" —
is a `DealStageChange` row, an audit entry and a `DEAL_STAGE_CHANGED` signal, all in the caller's
transaction, so a subscriber's reaction (the OA contract approval on 赢单) commits or rolls back
with the move that caused it.

A closed deal (赢单/输单) is reopened, or switched between 赢单 and 输单, only by someone above its
owner or an admin (`may_reopen`): a rep cannot quietly undo a win or a loss.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from pypinyin import lazy_pinyin
from rapidfuzz import fuzz
from sqlalchemy import func, select
from sqlmodel import Session

from storage.models import Customer, Deal, DealStageChange, Employee, utcnow
from workflows import audit, customers, roles, rules, signals

WON, LOST = "赢单", "输单"
SIGNED = "已签约"  # after 赢单, once the contract approval passes (workflows/contracts.py); not on the list
DEFAULT_TZ = "Asia/Shanghai"  # callers pass the configured business zone (settings.timezone)
ENDINGS = (WON, LOST)  # the closing stages a person picks
CLOSED = (WON, LOST, SIGNED)

# Ways people say a deal closed; a typed word is tried against these before the stage names.
SAYINGS = {
    WON: ("赢了", "签了", "签单", "签约", "成交", "成交了", "拿下", "拿下了", "赢", "签了合同", "中标", "中标了"),
    LOST: ("丢了", "输了", "丢单", "黄了", "没戏", "没戏了", "输", "丢", "放弃", "失败"),
}


class StageRefused(Exception):
    """A move the asker may not make, or to a stage that is not on the list; `reason` is for users."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# -- reading --------------------------------------------------------------------------------------


def stages(session: Session) -> list[str]:
    return list(rules.get(session, "crm.deal_stages"))


def open_stages(session: Session) -> list[str]:
    return [s for s in stages(session) if s not in CLOSED]


def is_closed(deal: Deal) -> bool:
    return deal.stage in CLOSED


def get(session: Session, deal_id: int) -> Deal | None:
    return session.get(Deal, deal_id)


def open_deals(session: Session, customer_id: int) -> list[Deal]:
    """The customer's deals not yet won or lost, oldest first."""
    return list(session.execute(select(Deal).where(Deal.customer_id == customer_id, Deal.stage.not_in(CLOSED))
                                .order_by(Deal.created_at, Deal.id)).scalars())


def latest_deal(session: Session, customer_id: int) -> Deal | None:
    """The most recently created deal, open or closed (what `商机 腾讯` shows when none is open)."""
    return session.execute(select(Deal).where(Deal.customer_id == customer_id)
                           .order_by(Deal.created_at.desc(), Deal.id.desc())).scalars().first()


def history(session: Session, deal_id: int, limit: int | None = None) -> list[DealStageChange]:
    """Stage changes, newest first."""
    query = select(DealStageChange).where(DealStageChange.deal_id == deal_id).order_by(
        DealStageChange.at.desc(), DealStageChange.id.desc())
    if limit:
        query = query.limit(limit)
    return list(session.execute(query).scalars())


def version(session: Session, deal_id: int) -> int:
    """Id of the latest stage change (0 for none): a card's buttons carry it, so a tap after someone
    else moved the deal is recognised as stale."""
    latest = session.execute(select(func.max(DealStageChange.id)).where(DealStageChange.deal_id == deal_id)).scalar()
    return latest or 0


def may_move(session: Session, employee: Employee, deal: Deal) -> bool:
    """Whoever may log on the customer: its owner, the owner's managers, admins (公海: anyone)."""
    return customers.may_log(session, employee, customers.get(session, deal.customer_id))


def may_reopen(session: Session, employee: Employee, deal: Deal) -> bool:
    """Move a closed deal: only the deal owner's managers up the chain, and admins."""
    return roles.is_admin(session, employee) or employee.id in customers.managers_of(session, deal.owner_id)


def may_see_amount(session: Session, employee: Employee, deal: Deal) -> bool:
    return deal.owner_id == employee.id or customers.may_see_details(
        session, employee, customers.get(session, deal.customer_id))


def match_stage(session: Session, word: str) -> str | None:
    """A stage from what someone typed: exact, a saying (签了 → 赢单), part of a name (报价 → 方案报价),
    or a typo/homophone (方案报介 → 方案报价). None unless exactly one stage fits."""
    word = word.strip()
    names = stages(session)
    if not word:
        return None
    if word in names:
        return word
    for stage, sayings in SAYINGS.items():
        if stage in names and word in sayings:
            return stage
    for test in (lambda s: word in s and len(word) >= 2, lambda s: s in word):
        hits = [s for s in names if test(s)]
        if len(hits) == 1:
            return hits[0]
    if len(word) < 2:
        return None
    spoken = " ".join(lazy_pinyin(word))
    scored = sorted(((fuzz.ratio(spoken, " ".join(lazy_pinyin(s))), s) for s in names), reverse=True)
    best = scored[0]
    runner_up = scored[1][0] if len(scored) > 1 else 0
    return best[1] if best[0] >= 85 and best[0] - runner_up >= 10 else None


# -- writing --------------------------------------------------------------------------------------


def create_deal(session: Session, *, customer: Customer, by: Employee, stage: str | None = None,
                amount: Decimal | None = None, expected_close: date | None = None, title: str = "",
                platform: str = "", now: datetime | None = None, tz: str = DEFAULT_TZ) -> Deal:
    """A new deal at `stage` (default: the first one). The owner is the customer's owner, or the
    creator for a 公海 customer. Raises StageRefused for a stage not on the list."""
    if not customers.may_log(session, by, customer):
        raise StageRefused(f"{customer.name[:12]}由{customers.owner_name(session, customer)}负责，你不能为它建商机")
    names = stages(session)
    stage = stage or names[0]
    if stage not in names:
        raise StageRefused(f"没有「{stage}」这个阶段，可选：{'、'.join(names)}")
    at = now or utcnow()
    deal = Deal(customer_id=customer.id, owner_id=customer.owner_id or by.id,
                title=(title or _default_title(customer, at, tz))[:128], amount=amount or Decimal("0"),
                stage=stage, expected_close=expected_close, created_at=at)
    session.add(deal)
    session.flush()
    session.add(DealStageChange(deal_id=deal.id, from_stage="", to_stage=stage, employee_id=by.id, at=at))
    audit.record(session, actor=by, action="deal.create", subject=f"deal:{deal.id}", platform=platform,
                 detail={"customer_id": customer.id, "title": deal.title, "stage": stage,
                         "amount": str(deal.amount), "expected_close": expected_close})
    session.flush()
    signals.emit(session, signals.DEAL_STAGE_CHANGED, deal=deal, from_stage="", to_stage=stage, by=by, now=at,
                 tz=tz)
    return deal


def move_stage(session: Session, deal: Deal, to_stage: str, *, by: Employee, platform: str = "",
               now: datetime | None = None, tz: str = DEFAULT_TZ) -> DealStageChange | None:
    """Move `deal` to `to_stage`; None (and nothing written) if it is already there.
    Raises StageRefused for an unknown stage, a non-permitted asker, or a closed deal moved by
    someone other than the owner's managers or an admin."""
    names = stages(session)
    if to_stage not in names:
        raise StageRefused(f"没有「{to_stage}」这个阶段，可选：{'、'.join(names)}")
    if deal.stage == to_stage:
        return None
    if not may_move(session, by, deal):
        raise StageRefused("只有负责人、负责人的经理或管理员可以推进这个商机")
    if is_closed(deal) and not may_reopen(session, by, deal):
        raise StageRefused(f"这个商机已经{deal.stage}，要改请找你的经理或管理员")
    change = DealStageChange(deal_id=deal.id, from_stage=deal.stage, to_stage=to_stage, employee_id=by.id,
                             at=now or utcnow())
    from_stage, deal.stage = deal.stage, to_stage
    session.add_all([deal, change])
    audit.record(session, actor=by, action="deal.stage", subject=f"deal:{deal.id}", platform=platform,
                 detail={"from": from_stage, "to": to_stage, "reopened": from_stage in CLOSED})
    session.flush()
    signals.emit(session, signals.DEAL_STAGE_CHANGED, deal=deal, from_stage=from_stage, to_stage=to_stage, by=by,
                 now=change.at, tz=tz)
    return change


def set_stage_by_system(session: Session, deal: Deal, to_stage: str, *, now: datetime, reason: str,
                        tz: str = DEFAULT_TZ) -> DealStageChange:
    """A move made by Banli itself (a contract approved → 已签约, rejected → back to 商务谈判): no
    permission check, no stage-list check (已签约 comes after the list), audited with the reason."""
    change = DealStageChange(deal_id=deal.id, from_stage=deal.stage, to_stage=to_stage, employee_id=None, at=now)
    from_stage, deal.stage = deal.stage, to_stage
    session.add_all([deal, change])
    audit.record(session, actor=None, action="deal.stage", subject=f"deal:{deal.id}",
                 detail={"from": from_stage, "to": to_stage, "reason": reason}, at=now)
    session.flush()
    signals.emit(session, signals.DEAL_STAGE_CHANGED, deal=deal, from_stage=from_stage, to_stage=to_stage, by=None,
                 now=now, tz=tz)
    return change


def set_amount(session: Session, deal: Deal, amount: Decimal, *, by: Employee, platform: str = "") -> bool:
    """Change the amount (audited); False if unchanged."""
    if deal.amount == amount:
        return False
    before, deal.amount = deal.amount, amount
    session.add(deal)
    audit.record(session, actor=by, action="deal.amount", subject=f"deal:{deal.id}", platform=platform,
                 detail={"before": str(before), "after": str(amount)})
    return True


def set_expected_close(session: Session, deal: Deal, day: date, *, by: Employee, platform: str = "") -> bool:
    """Change the expected close date (audited); False if unchanged."""
    if deal.expected_close == day:
        return False
    before, deal.expected_close = deal.expected_close, day
    session.add(deal)
    audit.record(session, actor=by, action="deal.expected_close", subject=f"deal:{deal.id}", platform=platform,
                 detail={"before": before, "after": day})
    return True


def _default_title(customer: Customer, started: datetime, tz: str) -> str:
    """Customer short name + the day it started, e.g. 腾讯 11月21日: enough to tell two deals apart."""
    short = (customer.short_names.split(",")[0] or customer.name)[:12]
    day = started.astimezone(ZoneInfo(tz)) if started.tzinfo else started
    return f"{short} {day.month}月{day.day}日"
