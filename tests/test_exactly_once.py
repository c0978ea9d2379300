"""Nothing doubled: repeated callbacks, duplicate jobs and retried sends have one effect."""

from __future__ import annotations

import threading

import requests

from banli import delivery, dispatcher
from conftest import settle, wait_for
from storage import outbox
from storage.db import session_scope


def test_same_callback_three_times_one_effect_one_reply(stack):
    query, body = stack.wecom_peer.callback(stack.wecom_peer.text("zhangsan", "帮助", msg_id="777001"))
    statuses = [requests.post(f"{stack.url}/wecom/callback?{query}", data=body, timeout=5).status_code
                for _ in range(3)]
    assert statuses == [200, 200, 200]
    wait_for(lambda: stack.wecom.cards_to("zhangsan"))
    settle(1.0)
    assert len(stack.wecom.cards_to("zhangsan")) == 1
    assert stack.count("outbox", "WHERE kind = 'inbound'") == 1
    assert stack.count("outbox", "WHERE kind = 'message'") == 1


def test_concurrent_duplicate_deliveries_act_once(stack):
    query, body = stack.wecom_peer.callback(stack.wecom_peer.text("zhangsan", "帮助", msg_id="777002"))
    results = []

    def post():
        results.append(requests.post(f"{stack.url}/wecom/callback?{query}", data=body, timeout=10).status_code)

    threads = [threading.Thread(target=post) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [200] * 6
    wait_for(lambda: stack.wecom.cards_to("zhangsan"))
    settle(1.0)
    assert len(stack.wecom.cards_to("zhangsan")) == 1
    assert stack.count("outbox", "WHERE kind = 'inbound'") == 1


def test_two_taps_in_the_same_second_are_two_events(stack):
    peer = stack.wecom_peer
    stack.post_wecom(peer.card_click("zhangsan", "menu.crm", "bl_t1", "rc1", create_time=1_800_000_000))
    stack.post_wecom(peer.card_click("zhangsan", "menu.leave", "bl_t1", "rc2", create_time=1_800_000_000))
    cards = wait_for(lambda: len(stack.wecom.cards_to("zhangsan")) == 2 and stack.wecom.cards_to("zhangsan"))
    assert sorted(c["template_card"]["main_title"]["title"] for c in cards) == ["客户跟进", "请假"]


def _queued_menu(stack) -> int:
    """A reply waiting in the outbox, as a worker leaves it after acting on 帮助 (nobody sends it)."""
    from bot import pipeline
    from cards import Card
    from handlers.events import InboundEvent
    from handlers.menu import MENU_BUTTONS

    event = InboundEvent(platform="wecom", event_id="777100", kind="text", sender="zhangsan", text="帮助")
    with session_scope(stack.runtime.engine) as session:
        pipeline.reply(session, event, Card(title="办理 · 主菜单", buttons=MENU_BUTTONS))
    return _message_row_id(stack)


def _message_row_id(stack) -> int:
    from sqlalchemy import text

    with stack.runtime.engine.connect() as conn:
        return conn.execute(text("SELECT id FROM outbox WHERE kind = 'message'")).scalar_one()


def test_duplicate_jobs_for_one_row_send_once(stack_factory):
    stack = stack_factory(start_workers=False)
    row_id = _queued_menu(stack)
    with session_scope(stack.runtime.engine) as session:
        leased = dict(outbox.lease_due(session, now=stack.runtime.now(), lease_seconds=30))
    outcomes = [delivery.perform(stack.runtime, row_id, leased[row_id]) for _ in range(3)]
    assert outcomes == ["done", "skipped", "skipped"]
    assert len(stack.wecom.cards_to("zhangsan")) == 1


def test_a_stale_lease_holder_cannot_send_after_the_row_was_re_leased(stack_factory):
    from datetime import timedelta

    stack = stack_factory(start_workers=False)
    row_id = _queued_menu(stack)
    now = stack.runtime.now()
    with session_scope(stack.runtime.engine) as session:
        first = dict(outbox.lease_due(session, now=now, lease_seconds=1))
    with session_scope(stack.runtime.engine) as session:
        second = dict(outbox.lease_due(session, now=now + timedelta(seconds=5), lease_seconds=30))
    assert first[row_id] != second[row_id]
    assert delivery.perform(stack.runtime, row_id, first[row_id]) == "skipped"
    assert delivery.perform(stack.runtime, row_id, second[row_id]) == "done"
    assert len(stack.wecom.messages_to("zhangsan")) == 1


def test_a_retried_send_after_an_unrecorded_success_is_not_shown_twice(stack_factory):
    """Worker sent, then died before marking the row: the re-send carries the same task id and
    duplicate-check body, so WeCom does not show the card twice."""
    import json

    from bot.platform import Outgoing
    from cards import Card
    from storage.models import Outbox

    stack = stack_factory(start_workers=False)
    row_id = _queued_menu(stack)
    with session_scope(stack.runtime.engine) as session:
        row = session.get(Outbox, row_id)
        message = Outgoing(key=row.key, recipient=row.recipient, card=Card.from_dict(json.loads(row.payload)["card"]))
    stack.runtime.clients["wecom"].send(message)  # the "lost" first attempt
    stack.start_workers()
    wait_for(lambda: stack.count("outbox", "WHERE kind = 'message' AND status = 'sent'") == 1)
    assert len(stack.wecom.cards_to("zhangsan")) == 1


def test_dispatcher_tick_hands_each_due_row_to_the_queue_once(stack_factory):
    stack = stack_factory(start_workers=False)
    stack.post_wecom(stack.wecom_peer.text("zhangsan", "帮助"))
    assert dispatcher.tick(stack.runtime) >= 1
    assert dispatcher.tick(stack.runtime) == 0  # leased rows are not offered again until the lease ends
