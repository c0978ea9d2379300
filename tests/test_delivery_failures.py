"""Nothing lost: platform errors are retried with backoff counted in SQL; hopeless ones stop."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import text

from banli import dispatcher
from conftest import settle, wait_for


def _message_row(stack):
    with stack.runtime.engine.connect() as conn:
        return conn.execute(text("SELECT status, attempts, last_error, due_at FROM outbox WHERE kind = 'message'")).first()


def _row(stack, kind):
    with stack.runtime.engine.connect() as conn:
        return conn.execute(text("SELECT status, attempts FROM outbox WHERE kind = :kind"), {"kind": kind}).first()


def test_a_busy_platform_is_retried_until_the_card_arrives(stack):
    stack.wecom.fail_next = [{"errcode": -1, "errmsg": "system busy"}]
    stack.post_wecom(stack.wecom_peer.text("zhangsan", "帮助"))
    # First attempt fails; the retry is due 5 s later (backoff lives in SQL, not in RQ).
    wait_for(lambda: (_message_row(stack) or (0, 0))[1] == 1)
    status, attempts, error, due_at = _message_row(stack)
    assert (status, attempts) == ("pending", 1) and "system busy" in error
    card = wait_for(lambda: stack.wecom.cards_to("zhangsan"), timeout=15)
    assert len(card) == 1
    wait_for(lambda: _message_row(stack).status == "sent")  # recorded just after the send returns


def test_an_answer_no_retry_can_change_stops_at_once(stack, caplog):
    stack.wecom.fail_next = [{"errcode": 81013, "errmsg": "user & party & tag all invalid"}]
    stack.post_wecom(stack.wecom_peer.text("zhangsan", "帮助"))
    wait_for(lambda: (_message_row(stack) or ("",))[0] == "dead")
    settle()
    assert _message_row(stack).attempts == 1
    assert stack.wecom.sent == []
    assert any("81013" in r.getMessage() for r in caplog.records if r.name == "banli.delivery")


def test_rows_give_up_after_the_last_attempt(stack_factory):
    from banli import delivery
    from storage import outbox
    from storage.db import session_scope
    from test_exactly_once import _queued_menu

    stack = stack_factory(start_workers=False)
    _queued_menu(stack)
    stack.wecom.fail_next = [{"errcode": -1, "errmsg": "busy"}] * 20
    now = stack.runtime.now()
    for attempt in range(outbox.MAX_ATTEMPTS):
        with session_scope(stack.runtime.engine) as session:
            leased = outbox.lease_due(session, now=now, lease_seconds=30)
        for row_id, token in leased:
            delivery.perform(stack.runtime, row_id, token)
        now += timedelta(hours=2)
    assert _message_row(stack).status == "dead"
    assert _message_row(stack).attempts == outbox.MAX_ATTEMPTS


def test_an_expired_token_is_refreshed_once_and_the_send_goes_through(stack):
    stack.post_wecom(stack.wecom_peer.text("zhangsan", "帮助"))
    wait_for(lambda: stack.wecom.cards_to("zhangsan"))
    fetches = stack.wecom.token_fetches
    stack.wecom.expire_tokens()
    stack.post_wecom(stack.wecom_peer.text("zhangsan", "菜单"))
    wait_for(lambda: len(stack.wecom.cards_to("zhangsan")) == 2)
    assert stack.wecom.token_fetches == fetches + 1


def test_one_token_serves_every_process(stack):
    """Two clients (as in two worker processes) share the token cached in Redis."""
    from bot.wecom.client import WeComClient

    other = WeComClient(stack.runtime.settings.wecom, stack.runtime.redis)
    first = stack.runtime.clients["wecom"].tokens.get()
    assert other.tokens.get() == first
    assert stack.wecom.token_fetches == 1


def test_platform_down_then_up_delivers_once(stack):
    """A network failure (the API unreachable) is retried like any other."""
    real = stack.runtime.clients["wecom"].http
    stack.runtime.clients["wecom"].base = "http://127.0.0.1:9/cgi-bin/"  # nothing listens on port 9
    stack.post_wecom(stack.wecom_peer.text("zhangsan", "帮助"))
    # A first contact reads the directory before answering: that read is what fails and is retried.
    wait_for(lambda: (_row(stack, "inbound") or (0, 0))[1] >= 1)
    stack.runtime.clients["wecom"].base = stack.runtime.settings.wecom.api_base + "/cgi-bin/"
    wait_for(lambda: stack.wecom.cards_to("zhangsan"), timeout=20)
    settle(1)
    assert len(stack.wecom.cards_to("zhangsan")) == 1
    assert real is stack.runtime.clients["wecom"].http


def test_handler_crash_answers_with_an_apology_and_keeps_nothing_half_written(stack, monkeypatch):
    from storage.models import Employee

    def boom(ctx):
        ctx.session.add(Employee(name="半截记录"))  # a write the failure must take back
        ctx.session.flush()
        raise RuntimeError("bug in a handler")

    stack.runtime.router.add_command("崩溃测试", boom)
    response = stack.post_wecom(stack.wecom_peer.text("zhangsan", "崩溃测试"))
    assert response.status_code == 200
    sorry = wait_for(lambda: stack.wecom.messages_to("zhangsan"))[0]
    assert sorry["msgtype"] == "text" and "抱歉" in sorry["text"]["content"]
    assert "Traceback" not in sorry["text"]["content"] and "RuntimeError" not in sorry["text"]["content"]
    assert stack.count("outbox", "WHERE kind = 'inbound' AND status = 'sent'") == 1
    # The rolled-back transaction took the new employee with it.
    assert stack.count("employee") == 0


def test_dispatcher_survives_its_own_tick_errors(stack, monkeypatch, caplog):
    calls = []

    def broken_tick(runtime):
        calls.append(1)
        raise RuntimeError("database hiccup")

    import threading

    monkeypatch.setattr(dispatcher, "tick", broken_tick)
    stop = threading.Event()
    thread = threading.Thread(target=dispatcher.run, args=(stack.runtime, stop), daemon=True)
    thread.start()
    wait_for(lambda: len(calls) >= 2)
    stop.set()
    assert any("dispatcher tick failed" in r.getMessage() for r in caplog.records)


def test_database_down_asks_the_platform_to_retry_and_the_retry_is_served(stack, caplog):
    import requests

    from storage.db import make_engine

    runtime = stack.runtime
    working = {name: getattr(runtime, name) for name in ("engine", "autocommit_engine")}
    broken = make_engine("sqlite:////nonexistent-dir/banli.db")
    runtime.__dict__.update(engine=broken, autocommit_engine=broken)
    query, body = stack.wecom_peer.callback(stack.wecom_peer.text("zhangsan", "帮助"))

    response = requests.post(f"{stack.url}/wecom/callback?{query}", data=body, timeout=5)
    assert response.status_code == 503 and response.text == ""
    assert any("database unavailable" in r.getMessage() for r in caplog.records)

    runtime.__dict__.update(working)  # the database is back; WeCom retries the same callback
    assert requests.post(f"{stack.url}/wecom/callback?{query}", data=body, timeout=5).status_code == 200
    wait_for(lambda: stack.wecom.cards_to("zhangsan"))
