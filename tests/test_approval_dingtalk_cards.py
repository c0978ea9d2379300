"""The whole 报销 round on DingTalk with interactive cards: the rep submits with an invoice photo, the
manager looks at it (查看发票: the photo arrives as an image message) and approves from the card
callback, finance approves, the rep is told, and every card of the request is replaced (card PUT)
for everyone who has it."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from conftest import photo_bytes, settle, wait_for
from storage.db import session_scope
from storage.models import Employee, Identity
from workflows import roles

SATURDAY_1130 = datetime(2026, 11, 21, 3, 30, tzinfo=timezone.utc)
REP, BOSS, ACCOUNTANT = "0147001", "0147002", "0147011"


@pytest.fixture
def company(stack_factory):
    return seed_people(stack_factory(card_template_id="tpl.schema", clock=saturday_clock()))


def saturday_clock():
    started = datetime.now(timezone.utc)
    return lambda: SATURDAY_1130 + (datetime.now(timezone.utc) - started)


def seed_people(stack):
    """李四 (rep) → 周经理 (his manager) → 钱会计 (finance), known to Banli with their DingTalk ids."""
    with session_scope(stack.runtime.engine) as session:
        boss = Employee(name="周经理", department="销售二部", synced_at=SATURDAY_1130)
        finance = Employee(name="钱会计", department="财务部", synced_at=SATURDAY_1130)
        session.add_all([boss, finance])
        session.flush()
        roles.grant(session, finance, "finance")
        rep = Employee(name="李四", department="销售二部", manager_id=boss.id, synced_at=SATURDAY_1130)
        session.add(rep)
        session.flush()
        session.add_all([Identity(platform="dingtalk", user_id=REP, employee_id=rep.id),
                         Identity(platform="dingtalk", user_id=BOSS, employee_id=boss.id),
                         Identity(platform="dingtalk", user_id=ACCOUNTANT, employee_id=finance.id)])
    return stack


def _cards(stack, user):
    return [m for m in stack.dingtalk.messages_to(user) if m.get("via") == "card"]


def _nth_card(stack, user, n):
    return wait_for(lambda: len(_cards(stack, user)) >= n and _cards(stack, user))[n - 1]


def _tap(stack, user, card, label):
    button = next(b for b in json.loads(card["card_data"]["buttons"]) if b["text"] == label)
    stack.post_dingtalk(stack.dingtalk_peer.card_click(user, card["out_track_id"], button["action"], button["value"]),
                        path="/dingtalk/card")


def _latest(stack, track):
    return stack.dingtalk.cards[track]["card_data"]


def test_expense_with_photo_approved_in_two_steps_and_every_card_follows(company):
    peer = company.dingtalk_peer
    company.post_dingtalk(peer.text(REP, "报销 招待客户 3000 元"))
    confirm = _nth_card(company, REP, 1)
    assert confirm["card_data"]["title"] == "报销 · 请确认"
    assert "周经理 → 财务 钱会计" in confirm["card_data"]["fields"]
    invoice = photo_bytes("invoice on DingTalk", size=50_000)
    company.post_dingtalk(peer.picture(REP, download_code=company.dingtalk.add_file(invoice, "image/png")))
    wait_for(lambda: any("共 1 张" in json.dumps(m, ensure_ascii=False) for m in company.dingtalk.messages_to(REP)))

    _tap(company, REP, confirm, "提交")
    submitted = _nth_card(company, REP, 2)
    assert submitted["card_data"]["title"] == "已提交 · R-1001"

    task = _nth_card(company, BOSS, 1)
    assert task["card_data"]["title"] == "待你审批 · 报销" and "照片 1 张" in task["card_data"]["fields"]
    _tap(company, BOSS, task, "查看发票")
    wait_for(lambda: company.dingtalk.images_to(BOSS))
    _tap(company, BOSS, task, "查看发票")  # a second tap: the same callback, nothing more
    settle(0.5)
    assert company.dingtalk.images_to(BOSS) == [invoice]  # uploaded (oapi media/upload), sent by media_id
    _tap(company, BOSS, task, "同意")
    wait_for(lambda: _latest(company, task["out_track_id"])["title"] == "R-1001 · 审批中")
    assert _latest(company, task["out_track_id"])["buttons"] == "[]"  # nothing left to tap
    wait_for(lambda: "周经理同意了，等下一位审批。" in _latest(company, submitted["out_track_id"])["body"])

    second = _nth_card(company, ACCOUNTANT, 1)
    _tap(company, ACCOUNTANT, second, "同意")
    wait_for(lambda: _latest(company, submitted["out_track_id"])["title"] == "R-1001 · 已通过")
    wait_for(lambda: _latest(company, second["out_track_id"])["title"] == "R-1001 · 已通过")
    assert _latest(company, task["out_track_id"])["title"] == "R-1001 · 已通过"  # the first approver's too
    told = wait_for(lambda: [m for m in company.dingtalk.messages_to(REP)
                             if "审批通过了" in json.dumps(m, ensure_ascii=False)])
    assert len(told) == 1

    before = len(company.dingtalk.messages_to(BOSS))
    _tap(company, BOSS, task, "同意")  # the same tap again is the same delivery (DingTalk's key): no effect
    assert company.count("approval_task", "WHERE status = 'approved'") == 2
    assert len(company.dingtalk.messages_to(BOSS)) == before
