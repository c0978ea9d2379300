"""A contract typed by hand (`合同 智远 8万`) through the WeCom routes, for a customer with an open
50万 deal: it belongs to that deal only when the requester taps the deal on the confirmation card.
Unpicked, its approval moves no deal and plans no 回款; picked, the deal is 已签约 and the 回款计划 is
the contract's 8万, not the deal's 50万. Nobody but the requester can pick for a draft.

And for every contract, the auto-raised one of a 赢单 included, the plan is the approved amount."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from sqlalchemy import text
from sqlmodel import select

from conftest import settle, wait_for
from storage.db import session_scope
from storage.models import Customer, Deal, DealStageChange, Employee
from workflows.matching import refresh_forms

from test_approvals import _fields, _messages, _nth, _said, _tap, _title, oa  # noqa: F401
from test_contract_loop import _plan, sales  # noqa: F401

DEAL_TITLE = "智远 平台项目"


@pytest.fixture
def zhiyuan(oa):  # noqa: F811
    """张三's customer 智远 with one open deal of 50万 (方案报价)."""
    with session_scope(oa.runtime.engine) as session:
        rep = session.exec(select(Employee).where(Employee.name == "张三")).one()
        customer = Customer(name="智远科技有限公司", short_names="智远", tier="A", owner_id=rep.id)
        refresh_forms(customer)
        session.add(customer)
        session.flush()
        deal = Deal(customer_id=customer.id, owner_id=rep.id, title=DEAL_TITLE, amount=Decimal("500000"),
                    stage="方案报价")
        session.add(deal)
        session.flush()
        session.add(DealStageChange(deal_id=deal.id, from_stage="", to_stage="方案报价", employee_id=rep.id))
    return oa


def _stage(stack):
    with stack.runtime.engine.connect() as conn:
        return conn.execute(text("SELECT stage FROM deal WHERE title = :t"), {"t": DEAL_TITLE}).scalar_one()


def _request(stack, number):
    with stack.runtime.engine.connect() as conn:
        row = conn.execute(text("SELECT id, status, details, summary FROM approval_request WHERE id = :id"),
                           {"id": int(number.removeprefix("R-")) - 1000}).one()
    return row.id, row.status, json.loads(row.details), row.summary


def _buttons(message):
    return [b["text"] for b in message["template_card"]["button_list"]]


def _type_contract(stack, words="合同 智远 8万"):
    """The owner types a contract; its confirmation card (the newest message to 张三)."""
    before = len(_messages(stack, "zhangsan"))
    stack.post_wecom(stack.wecom_peer.text("zhangsan", words))
    confirm = _nth(stack, "zhangsan", before + 1)
    assert _title(confirm) == "合同 · 请确认"
    return confirm


def _submit(stack, confirm) -> str:
    before = len(_messages(stack, "zhangsan"))
    _tap(stack, "zhangsan", confirm, "提交", before)
    submitted = _nth(stack, "zhangsan", before + 1)
    assert _title(submitted).startswith("已提交 · R-")
    return _title(submitted).removeprefix("已提交 · ")


def _approve_all(stack, number):
    """Each approver in turn taps 同意 on their card for `number`, until the request is approved."""
    taps = 0
    while _request(stack, number)[1] == "pending":
        with stack.runtime.engine.connect() as conn:
            users = conn.execute(text(
                "SELECT i.user_id FROM approval_task t JOIN identity i ON i.employee_id = t.approver_id "
                "AND i.platform = 'wecom' WHERE t.request_id = :r AND t.status = 'pending'"),
                {"r": _request(stack, number)[0]}).scalars().all()
        if not users:
            settle(0.1)
            continue
        user = users[0]
        card = wait_for(lambda: [m for m in _messages(stack, user) if m["msgtype"] == "template_card"
                                 and _title(m) == "待你审批 · 合同" and _fields(m).get("单号") == number])[-1]
        taps += 1
        _tap(stack, user, card, "同意", 100 + taps)
        wait_for(lambda: user not in _pending_approvers(stack, number))
        assert taps < 6
    assert _request(stack, number)[1] == "approved"


def _pending_approvers(stack, number):
    with stack.runtime.engine.connect() as conn:
        return conn.execute(text(
            "SELECT i.user_id FROM approval_task t JOIN identity i ON i.employee_id = t.approver_id "
            "AND i.platform = 'wecom' WHERE t.request_id = :r AND t.status = 'pending'"),
            {"r": _request(stack, number)[0]}).scalars().all()


def test_a_contract_typed_by_hand_touches_the_open_deal_only_when_picked(zhiyuan):
    stack = zhiyuan
    # 1. Typed and submitted without picking: approved, yet the 50万 deal is untouched and nothing is planned.
    first = _submit(stack, _type_contract(stack))
    _approve_all(stack, first)
    settle(0.5)
    assert _stage(stack) == "方案报价"
    assert _plan(stack) == []
    assert _request(stack, first)[2]["deal_id"] is None
    assert not any("已签约" in _title(m) for m in _messages(stack, "zhangsan"))

    # 2. Typed again, the deal tapped: the card says so; approved, the deal is signed for the contract's 8万.
    confirm = _type_contract(stack)
    before = len(_messages(stack, "zhangsan"))
    _tap(stack, "zhangsan", confirm, DEAL_TITLE, 50)
    linked = _nth(stack, "zhangsan", before + 1)
    assert _title(linked) == "合同 · 请确认"
    assert _fields(linked)["商机"] == DEAL_TITLE and "已关联商机「智远 平台项目」" in _said(linked)
    second = _submit(stack, linked)
    assert _request(stack, second)[2]["deal_id"] is not None
    assert DEAL_TITLE in _request(stack, second)[3]
    task = wait_for(lambda: [m for m in _messages(stack, "wangjl") if m["msgtype"] == "template_card"
                             and _fields(m).get("单号") == second])[0]
    assert _fields(task)["商机"] == DEAL_TITLE  # the approvers see which deal it will sign
    _approve_all(stack, second)
    wait_for(lambda: _stage(stack) == "已签约")
    plan = wait_for(lambda: _plan(stack))
    assert sum(Decimal(row.amount) for row in plan) == Decimal("80000")
    signed = wait_for(lambda: [m for m in _messages(stack, "zhangsan") if "已签约" in _title(m)])[0]
    assert "¥80,000.00" in _said(signed) and "500,000" not in _said(signed)


def test_the_card_asks_which_open_deal_with_one_button_each(zhiyuan):
    stack = zhiyuan
    with session_scope(stack.runtime.engine) as session:  # a second open deal, and a lost one (not offered)
        rep = session.exec(select(Employee).where(Employee.name == "张三")).one()
        customer = session.exec(select(Customer).where(Customer.short_names == "智远")).one()
        session.add(Deal(customer_id=customer.id, owner_id=rep.id, title="智远 运维服务", amount=Decimal("60000"),
                         stage="需求分析"))
        session.add(Deal(customer_id=customer.id, owner_id=rep.id, title="智远 旧项目", amount=Decimal("90000"),
                         stage="输单"))
    confirm = _type_contract(stack)
    assert _buttons(confirm) == ["提交", "智远 运维服务", DEAL_TITLE, "不关联商机", "取消"]
    assert _fields(confirm)["金额"] == "¥80,000.00" and _fields(confirm)["商机"] == "不关联"
    assert "不点就不关联" in _said(confirm)
    _tap(stack, "zhangsan", confirm, "智远 运维服务", 1)
    assert _fields(_nth(stack, "zhangsan", 2))["商机"] == "智远 运维服务"
    _tap(stack, "zhangsan", _nth(stack, "zhangsan", 2), "不关联商机", 2)
    unlinked = _nth(stack, "zhangsan", 3)
    assert _fields(unlinked)["商机"] == "不关联" and _request(stack, "R-1001")[2]["deal_id"] is None
    assert stack.count("audit_log", "WHERE action = 'contract.link_deal'") == 2


def test_only_the_requester_picks_the_deal_of_a_draft(zhiyuan):
    stack = zhiyuan
    confirm = _type_contract(stack)
    number = "R-1001"
    assert _request(stack, number)[1] == "draft"
    # 李四 taps the deal button of 张三's card (or sends its key as text): nothing changes, and it is on record.
    _tap(stack, "lisi", confirm, DEAL_TITLE, 1)
    answer = _nth(stack, "lisi", 1)
    assert _title(answer) == "这不是你的申请" and "智远" not in _said(answer)
    key = next(b["key"] for b in confirm["template_card"]["button_list"] if b["text"] == DEAL_TITLE)
    stack.post_wecom(stack.wecom_peer.text("lisi", "#" + key.replace("|", " ")))
    assert _title(_nth(stack, "lisi", 2)) == "这不是你的申请"
    _, status, details, summary = _request(stack, number)
    assert (status, details["deal_id"], summary) == ("draft", None, "智远 合同")
    with stack.runtime.engine.connect() as conn:
        refusals = conn.execute(text(
            "SELECT a.detail FROM audit_log a JOIN employee e ON e.id = a.actor_id "
            "WHERE a.action = 'refused' AND a.subject = 'approval:1' AND e.name = '李四'")).scalars().all()
    assert len(refusals) == 2 and all(json.loads(r)["attempted"] == "contract.deal" for r in refusals)

    # Once submitted, not even the requester can re-link it.
    number = _submit(stack, confirm)
    before = len(_messages(stack, "zhangsan"))
    _tap(stack, "zhangsan", confirm, DEAL_TITLE, 2)
    assert "已经提交了" in _said(_nth(stack, "zhangsan", before + 1))
    assert _request(stack, number)[2]["deal_id"] is None
    assert stack.count("audit_log", "WHERE action = 'refused'") == 3


def test_a_customer_without_an_open_deal_gets_the_plain_card(zhiyuan):
    stack = zhiyuan
    with stack.runtime.engine.begin() as conn:
        conn.execute(text("UPDATE deal SET stage = '输单'"))
    confirm = _type_contract(stack)
    assert _buttons(confirm) == ["提交", "取消"] and _fields(confirm)["商机"] == "不关联"
    # A closed deal's id sent by hand is no pick either.
    with stack.runtime.engine.connect() as conn:
        deal_id = conn.execute(text("SELECT id FROM deal")).scalar_one()
    stack.post_wecom(stack.wecom_peer.text("zhangsan", f"#contract.deal 1:{deal_id}"))
    assert "没能关联这个商机" in _said(_nth(stack, "zhangsan", 2))
    assert _request(stack, "R-1001")[2]["deal_id"] is None


def test_an_auto_raised_contract_plans_its_approved_amount_not_the_deals_later_one(sales):  # noqa: F811
    sales.post_wecom(sales.wecom_peer.text("zhangsan", "商机 腾讯 赢单"))
    task = _nth(sales, "director", 1)
    assert _fields(task)["金额"] == "¥30,000.00"
    with sales.runtime.engine.begin() as conn:  # the deal's figure changes while the contract is approved
        conn.execute(text("UPDATE deal SET amount = 500000"))
    _tap(sales, "director", task, "同意")
    wait_for(lambda: _plan(sales))
    assert [Decimal(row.amount) for row in _plan(sales)] == [Decimal("30000")]
    assert _fields(task)["商机"] == "腾讯 云服务"  # still linked to its own deal, as the approver saw
