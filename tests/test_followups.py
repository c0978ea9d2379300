"""Logging a follow-up schedules its reminder; undo and snooze move or withdraw it."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import text

from conftest import settle, wait_for
from storage.db import session_scope
from storage.models import Customer, Employee, Identity
from workflows.followups import TooLate, log_followup, snooze, undo_last

NOW = datetime(2026, 11, 21, 2, 0, tzinfo=timezone.utc)  # Saturday 10:00 in Shanghai
WEDNESDAY_2PM = datetime(2026, 11, 25, 6, 0, tzinfo=timezone.utc)
TZ = "Asia/Shanghai"


def _rep_and_customer(session):
    rep = Employee(name="张伟", synced_at=NOW)
    session.add(rep)
    session.flush()
    session.add(Identity(platform="wecom", user_id="zhangwei", employee_id=rep.id))
    customer = Customer(name="腾讯科技(深圳)有限公司", short_names="腾讯", tier="A", owner_id=rep.id)
    session.add(customer)
    session.flush()
    return rep, customer


def _utc(value) -> datetime:
    """Raw SQL gives SQLite's text or PostgreSQL's datetime."""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment


def _reminders(stack):
    with stack.runtime.engine.connect() as conn:
        return conn.execute(text("SELECT key, status, due_at, recipient, payload FROM outbox "
                                 "WHERE key LIKE 'remind:%' ORDER BY id")).all()


def test_logging_sets_the_customer_dates_and_schedules_one_reminder(stack_factory):
    stack = stack_factory(start_workers=False)
    with session_scope(stack.runtime.engine) as session:
        rep, customer = _rep_and_customer(session)
        log_followup(session, employee=rep, customer=customer, method="拜访", content="聊了报价",
                     next_at=WEDNESDAY_2PM, now=NOW, tz=TZ)
        assert (customer.last_followup_at, customer.next_followup_at) == (NOW, WEDNESDAY_2PM)
    (key, status, due, recipient, payload), = _reminders(stack)
    assert status == "pending" and recipient == "zhangwei"
    assert _utc(due) == WEDNESDAY_2PM
    card = json.loads(payload)["card"]
    assert card["title"] == "跟进提醒 · 腾讯" and "11月25日(周三) 14:00" in card["body"]
    assert [b["label"] for b in card["buttons"]] == ["已跟进", "推迟1天", "推迟到下周"]


def test_undo_within_ten_minutes_restores_the_customer_and_withdraws_the_reminder(stack_factory):
    stack = stack_factory(start_workers=False)
    with session_scope(stack.runtime.engine) as session:
        rep, customer = _rep_and_customer(session)
        first = log_followup(session, employee=rep, customer=customer, method="电话", content="约了见面",
                             next_at=NOW + timedelta(days=1), now=NOW - timedelta(days=3), tz=TZ)
        second = log_followup(session, employee=rep, customer=customer, method="拜访", content="聊了报价",
                              next_at=WEDNESDAY_2PM, now=NOW, tz=TZ)
        with pytest.raises(TooLate):  # not the latest record
            undo_last(session, employee=rep, followup_id=first.id, now=NOW)
        undo_last(session, employee=rep, followup_id=second.id, now=NOW + timedelta(minutes=9))
        assert customer.last_followup_at == NOW - timedelta(days=3)
        assert customer.next_followup_at == NOW + timedelta(days=1)
    # The second plan replaced the first (its reminder withdrawn); undoing it brings the first back.
    pending = [(_utc(due), key) for key, status, due, *_ in _reminders(stack) if status == "pending"]
    assert [due for due, _ in pending] == [NOW + timedelta(days=1)]


def test_undo_after_ten_minutes_is_refused(stack_factory):
    stack = stack_factory(start_workers=False)
    with session_scope(stack.runtime.engine) as session:
        rep, customer = _rep_and_customer(session)
        record = log_followup(session, employee=rep, customer=customer, method="拜访", content="",
                              next_at=None, now=NOW, tz=TZ)
        with pytest.raises(TooLate):
            undo_last(session, employee=rep, followup_id=record.id, now=NOW + timedelta(minutes=11))


def test_snooze_moves_the_reminder(stack_factory):
    stack = stack_factory(start_workers=False)
    with session_scope(stack.runtime.engine) as session:
        rep, customer = _rep_and_customer(session)
        record = log_followup(session, employee=rep, customer=customer, method="拜访", content="",
                              next_at=WEDNESDAY_2PM, now=NOW, tz=TZ)
        snooze(session, employee=rep, followup_id=record.id, until=WEDNESDAY_2PM + timedelta(days=1), tz=TZ)
        assert customer.next_followup_at == WEDNESDAY_2PM + timedelta(days=1)
    rows = _reminders(stack)
    assert [r.status for r in rows] == ["cancelled", "pending"]
    assert _utc(rows[1].due_at) == WEDNESDAY_2PM + timedelta(days=1)


def test_the_reminder_arrives_once_when_due_even_across_a_restart(stack_factory):
    """Scheduled, the system goes down (workers stopped), comes back after the due time: one card."""
    started = datetime.now(timezone.utc)
    afternoon = datetime(2026, 11, 21, 6, 0, tzinfo=timezone.utc)  # 14:00 Shanghai: no digest slot near
    stack = stack_factory(start_workers=False, clock=lambda: afternoon + (datetime.now(timezone.utc) - started))
    with session_scope(stack.runtime.engine) as session:
        rep, customer = _rep_and_customer(session)
        log_followup(session, employee=rep, customer=customer, method="拜访", content="聊了报价",
                     next_at=stack.runtime.now() + timedelta(seconds=1), now=stack.runtime.now(), tz=TZ)
    settle(1.5)  # due while nothing runs
    stack.start_workers()
    wait_for(lambda: stack.wecom.cards_to("zhangwei"))
    settle(1.0)
    cards = stack.wecom.cards_to("zhangwei")
    assert len(cards) == 1 and cards[0]["template_card"]["main_title"]["title"] == "跟进提醒 · 腾讯"
