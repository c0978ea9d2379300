"""The CRM ↔ OA loop through the chat routes: a deal moved to 赢单 raises a contract approval with
the customer and amount filled in; approved → the deal is 已签约 and a 回款计划 appears, with
reminders to the owner and finance before the due date and an alert after; finance records money
in; rejected → the deal goes back to 商务谈判 and the owner hears why."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import text
from sqlmodel import select

from conftest import settle, wait_for
from storage.db import session_scope
from storage.models import Customer, Deal, DealStageChange, Employee
from workflows.matching import refresh_forms

from test_approvals import _nth, _said, _tap, _title, oa  # noqa: F401


@pytest.fixture
def sales(oa):  # noqa: F811
    with session_scope(oa.runtime.engine) as session:
        rep = session.exec(select(Employee).where(Employee.name == "张三")).one()
        customer = Customer(name="腾讯科技(深圳)有限公司", short_names="腾讯", tier="A", owner_id=rep.id)
        refresh_forms(customer)
        session.add(customer)
        session.flush()
        deal = Deal(customer_id=customer.id, owner_id=rep.id, title="腾讯 云服务", amount=Decimal("30000"),
                    stage="商务谈判")
        session.add(deal)
        session.flush()
        session.add(DealStageChange(deal_id=deal.id, from_stage="", to_stage="商务谈判", employee_id=rep.id))
    return oa


def _deal(stack):
    with stack.runtime.engine.connect() as conn:
        return conn.execute(text("SELECT stage FROM deal")).scalar()


def _plan(stack):
    with stack.runtime.engine.connect() as conn:
        return conn.execute(text("SELECT seq, amount, paid, due_date, status FROM payment_plan ORDER BY seq")).all()


def _win(stack):
    stack.post_wecom(stack.wecom_peer.text("zhangsan", "商机 腾讯 赢单"))
    return _nth(stack, "director", 1)


def test_a_won_deal_raises_a_contract_approval_filled_in(sales):
    task = _win(sales)
    assert _title(task) == "待你审批 · 合同"
    fields = {f["keyname"]: f["value"] for f in task["template_card"]["horizontal_content_list"]}
    assert fields["客户"] == "腾讯科技(深圳)有限公司" and fields["金额"] == "¥30,000.00"
    said = [_said(m) for m in wait_for(lambda: len(sales.wecom.messages_to("zhangsan")) >= 2
                                       and sales.wecom.messages_to("zhangsan"))]
    assert any("合同审批已自动发起" in s for s in said)
    assert _deal(sales) == "赢单"


def test_approved_contract_signs_the_deal_and_plans_the_payment_with_reminders(sales):
    task = _win(sales)
    _tap(sales, "director", task, "同意")
    signed = wait_for(lambda: [m for m in sales.wecom.messages_to("zhangsan") if "已签约" in _title(m)])[0]
    assert "第1期 ¥30,000.00 12月21日(周一)到期" in _said(signed)  # approved Sat 21 Nov + 30 days
    assert _deal(sales) == "已签约"
    (seq, amount, paid, due, status), = _plan(sales)
    assert (seq, Decimal(amount), status) == (1, Decimal("30000"), "open")

    sales.shift(timedelta(days=27))  # Friday 18 Dec, 11:30: after the 09:00 reminder three days ahead
    for person in ("zhangsan", "qian", "zheng"):
        wait_for(lambda: any(_title(m) == "回款提醒 · 腾讯" for m in sales.wecom.messages_to(person)))
    sales.post_wecom(sales.wecom_peer.text("qian", "回款 腾讯 30000"))
    recorded = wait_for(lambda: [m for m in sales.wecom.messages_to("qian") if "已登记回款" in _title(m)])[0]
    assert "第1期 记入 ¥30,000.00，已结清" in _said(recorded)
    sales.shift(timedelta(days=5))  # past the due date: paid, so no overdue alert
    settle(1.0)
    titles = [_title(m) for m in sales.wecom.messages_to("zhangsan")]
    assert titles.count("回款提醒 · 腾讯") == 1 and "回款逾期 · 腾讯" not in titles


def test_an_unpaid_instalment_is_flagged_overdue_once(sales):
    _tap(sales, "director", _win(sales), "同意")
    wait_for(lambda: _plan(sales))
    sales.shift(timedelta(days=31))
    wait_for(lambda: any(_title(m) == "回款逾期 · 腾讯" for m in sales.wecom.messages_to("qian")))
    sales.shift(timedelta(days=3))
    settle(1.0)
    assert [_title(m) for m in sales.wecom.messages_to("qian")].count("回款逾期 · 腾讯") == 1


def test_a_rejected_contract_sends_the_deal_back_and_tells_the_owner_why(sales):
    _tap(sales, "director", _win(sales), "拒绝")
    _tap(sales, "director", _nth(sales, "director", 2), "金额不对", 1)
    told = wait_for(lambda: [m for m in sales.wecom.messages_to("zhangsan") if "合同未通过" in _title(m)])[0]
    assert "原因：金额不对" in _said(told)
    assert _deal(sales) == "商务谈判" and _plan(sales) == []


def test_only_finance_records_money_and_the_owner_can_split_the_plan(sales):
    _tap(sales, "director", _win(sales), "同意")
    wait_for(lambda: _plan(sales))
    sales.post_wecom(sales.wecom_peer.text("zhangsan", "回款 腾讯 30000"))
    wait_for(lambda: any(_title(m) == "由财务登记回款" for m in sales.wecom.messages_to("zhangsan")))
    assert _plan(sales)[0].status == "open"
    sales.post_wecom(sales.wecom_peer.text("zhangsan", "回款计划 腾讯 10000 12月15日, 20000 1月15日"))
    plan = wait_for(lambda: [m for m in sales.wecom.messages_to("zhangsan") if "回款计划" in _title(m)])[0]
    assert "第1期 ¥10,000.00 12月15日" in _said(plan) and "第2期 ¥20,000.00 1月15日" in _said(plan)
    assert [Decimal(r.amount) for r in _plan(sales)] == [Decimal("10000"), Decimal("20000")]


def test_from_dingtalk_the_owner_wins_and_hears_back(sales):
    sales.post_dingtalk(sales.dingtalk_peer.text("0147001", "商机 腾讯 赢单"))
    wait_for(lambda: any("合同审批已自动发起" in json.dumps(m, ensure_ascii=False)
                         for m in sales.dingtalk.messages_to("0147001") + sales.wecom.messages_to("zhangsan")))
    assert _title(_nth(sales, "director", 1)) == "待你审批 · 合同"


def test_a_contract_typed_by_hand_goes_by_the_contract_rules(sales):
    sales.post_wecom(sales.wecom_peer.text("zhangsan", "合同 腾讯 8万"))
    confirm = _nth(sales, "zhangsan", 1)
    assert _title(confirm) == "合同 · 请确认"
    fields = {f["keyname"]: f["value"] for f in confirm["template_card"]["horizontal_content_list"]}
    assert fields["客户"] == "腾讯科技(深圳)有限公司" and fields["金额"] == "¥80,000.00"
    # ≥ 50,000: legal then the CEO; this company has no legal person and no admin, so the manager stands in.
    assert fields["预计审批人"] == "王经理 → 总经理 陈总"
    sales.post_wecom(sales.wecom_peer.text("lisi", "合同 腾讯 8万"))
    assert _title(_nth(sales, "lisi", 1)) == "不是你的客户"
