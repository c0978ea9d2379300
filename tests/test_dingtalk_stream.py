"""DingTalk Stream mode end to end: the real `dingtalk-stream` SDK in Banli's stream thread connects to
the gateway stand-in (bot/dingtalk/stream_standin.py), which pushes frames as DingTalk does and keeps
the ACKs; replies leave through the outbox to the DingTalk API stand-in, as in HTTP mode."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from sqlalchemy import text

import test_approval_dingtalk_cards as approvals
from bot.dingtalk.stream_standin import CARD_TOPIC, ROBOT_TOPIC, StreamGateway
from conftest import settle, wait_for
from servers import RedisServer

USER = "0147001"  # 李四 (conftest DINGTALK_USERS)
REP, BOSS, ACCOUNTANT = approvals.REP, approvals.BOSS, approvals.ACCOUNTANT
MENU = "办理 · 主菜单"


@pytest.fixture
def stream_factory(stack_factory):
    """A running Banli in DINGTALK_MODE=stream whose stream thread is connected to a gateway stand-in."""
    built = []

    def build(**overrides):
        stack = stack_factory(start_workers=False, dingtalk_mode="stream", **overrides)
        gateway = stack.gateway = _plug_gateway(stack)
        stack.start_workers()  # worker, dispatcher and the stream thread (banli/embedded.py)
        wait_for(lambda: gateway.connected == 1, timeout=15)
        built.append(stack)
        return stack

    yield build
    for stack in built:
        stack.stop_workers()
        stack.gateway.stop()


@pytest.fixture
def stream(stream_factory):
    return stream_factory()


def test_dingtalk_mode_is_read_from_the_environment_and_checked():
    from banli.settings import Settings

    base = {"DINGTALK_APP_KEY": "dingk", "DINGTALK_APP_SECRET": "sec"}
    assert Settings.from_env(base, dotenv=None).dingtalk.mode == "http"
    settings = Settings.from_env({**base, "DINGTALK_MODE": "Stream"}, dotenv=None)
    assert settings.dingtalk.stream
    assert any("stream mode" in line for line in settings.describe())
    with pytest.raises(ValueError, match="DINGTALK_MODE"):
        Settings.from_env({**base, "DINGTALK_MODE": "websocket"}, dotenv=None)


@pytest.mark.parametrize("extra, says", [({"DINGTALK_MODE": "http", "REDIS_URL": "redis://127.0.0.1:1/0"},
                                          "DINGTALK_MODE=stream"),
                                         ({"DINGTALK_MODE": "stream"}, "REDIS_URL")])
def test_banli_stream_refuses_to_start_where_it_cannot_help(tmp_path, extra, says):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DINGTALK_", "REDIS_URL", "WECOM_"))}
    env.update(DATABASE_URL=f"sqlite:///{tmp_path / 'x.db'}", DINGTALK_APP_KEY="dingk", DINGTALK_APP_SECRET="s",
               **extra)
    result = subprocess.run([sys.executable, "-m", "banli.cli", "stream"], env=env, capture_output=True, text=True,
                            timeout=60, cwd=tmp_path)
    assert result.returncode == 2 and says in result.stdout


def acks(gateway, message_id, n=1):
    return wait_for(lambda: len(gateway.acks_for(message_id)) >= n and gateway.acks_for(message_id))


def test_the_sdk_opens_the_stream_with_the_apps_credentials_and_three_subscriptions(stream):
    opened = stream.gateway.opens[0]
    app = stream.runtime.settings.dingtalk
    assert (opened["clientId"], opened["clientSecret"]) == (app.app_key, app.app_secret)
    assert opened["subscriptions"] == [{"type": "EVENT", "topic": "*"}, {"type": "CALLBACK", "topic": ROBOT_TOPIC},
                                       {"type": "CALLBACK", "topic": CARD_TOPIC}]
    assert opened["ua"].startswith("dingtalk-sdk-python/v0.24")


def test_help_over_the_stream_gets_the_menu_once_even_delivered_twice(stream):
    _, body = stream.dingtalk_peer.text(USER, "帮助")
    message_id = stream.gateway.robot_message(body)
    stream.gateway.robot_message(body, message_id=message_id)  # DingTalk's redelivery: same frame again

    both = acks(stream.gateway, message_id, 2)
    assert [(a["code"], a["data_json"]) for a in both] == [(200, {"response": "OK"})] * 2
    menu = wait_for(lambda: stream.dingtalk.messages_to(USER))[0]
    assert (menu["via"], menu["title"]) == ("webhook", MENU)
    settle(1.0)
    assert len(stream.dingtalk.messages_to(USER)) == 1
    assert stream.count("outbox", "WHERE kind = 'inbound'") == 1
    assert stream.dingtalk.refused == [] and stream.gateway.refused == []


def test_the_same_message_under_a_new_frame_id_is_still_one_answer(stream):
    _, body = stream.dingtalk_peer.text(USER, "帮助")
    first, second = stream.gateway.robot_message(body), stream.gateway.robot_message(body)
    acks(stream.gateway, first), acks(stream.gateway, second)
    wait_for(lambda: stream.dingtalk.messages_to(USER))
    settle(1.0)
    assert [m["title"] for m in stream.dingtalk.messages_to(USER)] == [MENU]


@pytest.fixture
def company(stream_factory):
    return approvals.seed_people(stream_factory(card_template_id="tpl.schema", clock=approvals.saturday_clock()))


def _tap_frame(stack, user, card, label, **options):
    """A button tap as a Stream card-callback frame: the same body an HTTP card callback carries."""
    button = next(b for b in json.loads(card["card_data"]["buttons"]) if b["text"] == label)
    _, body = stack.dingtalk_peer.card_click(user, card["out_track_id"], button["action"], button["value"])
    return stack.gateway.card_callback(body, **options)


def test_an_approval_tapped_over_the_stream_acts_like_the_http_callback(company):
    _, body = company.dingtalk_peer.text(REP, "报销 招待客户 3000 元")
    company.gateway.robot_message(body)
    confirm = approvals._nth_card(company, REP, 1)
    assert confirm["card_data"]["title"] == "报销 · 请确认"
    assert confirm["callback_type"] == "STREAM" and not confirm["route"]  # taps come back over the stream

    submit = _tap_frame(company, REP, confirm, "提交")
    ack = acks(company.gateway, submit)[0]
    assert ack["code"] == 200 and ack["data_json"]["response"]["cardUpdateOptions"] == {"updateCardDataByKey": True}
    assert approvals._nth_card(company, REP, 2)["card_data"]["title"] == "已提交 · R-1001"

    task = approvals._nth_card(company, BOSS, 1)
    assert task["card_data"]["title"] == "待你审批 · 报销"
    approve = _tap_frame(company, BOSS, task, "同意")
    _tap_frame(company, BOSS, task, "同意", message_id=approve)  # the same tap delivered twice
    assert [a["code"] for a in acks(company.gateway, approve, 2)] == [200, 200]
    wait_for(lambda: company.dingtalk.cards[task["out_track_id"]]["card_data"]["title"] == "R-1001 · 审批中")
    assert company.dingtalk.cards[task["out_track_id"]]["card_data"]["buttons"] == "[]"
    assert approvals._nth_card(company, ACCOUNTANT, 1)["card_data"]["title"] == "待你审批 · 报销"
    settle(1.0)
    assert len(approvals._cards(company, ACCOUNTANT)) == 1  # one decision, one next step
    with company.runtime.engine.connect() as conn:
        decisions = conn.execute(text("SELECT count(*) FROM outbox WHERE kind = 'inbound' AND payload LIKE '%approve%'"
                                      )).scalar_one()
    assert decisions == 1


def test_an_address_book_event_is_stored_once_and_answers_nobody(stream):
    data = {"timeStamp": str(int(time.time() * 1000)), "userId": ["0147009"], "optStaffId": "0147002"}
    first = stream.gateway.event("user_leave_org", data, event_id="evt-leave-1")
    again = stream.gateway.event("user_leave_org", data, event_id="evt-leave-1")  # pushed twice
    other = stream.gateway.event("chat_update_title", {"chatId": "c1"})

    for message_id in (first, again, other):
        ack = acks(stream.gateway, message_id)[0]
        assert ack["code"] == 200 and ack["data_json"]["status"] == "SUCCESS"
    with stream.runtime.engine.connect() as conn:
        rows = conn.execute(text("SELECT key, payload FROM outbox WHERE kind = 'inbound'")).all()
    assert [r.key for r in rows] == ["inbound:dingtalk:event|user_leave_org|evt-leave-1"]
    event = json.loads(rows[0].payload)
    assert (event["kind"], event["action"], event["sender"], event["raw"]["userId"]) == \
        ("directory", "user_leave_org", "", ["0147009"])
    wait_for(lambda: stream.count("outbox", "WHERE kind = 'inbound' AND status = 'sent'") == 1)
    settle(0.5)
    assert stream.dingtalk.sent == [] and stream.count("employee") == 0


def test_malformed_frames_are_refused_and_the_client_carries_on(stream, caplog):
    gateway = stream.gateway
    gateway.send_raw("this is not json")
    bad_data = gateway.send("CALLBACK", ROBOT_TOPIC, "{not json")
    not_an_object = gateway.send("CALLBACK", ROBOT_TOPIC, "[1, 2]")
    no_sender = gateway.robot_message({"msgtype": "text", "text": {"content": "帮助"}, "msgId": "m-ext"})

    assert acks(gateway, bad_data)[0]["code"] == 400
    assert acks(gateway, not_an_object)[0]["code"] == 400
    assert acks(gateway, no_sender)[0]["code"] == 200  # an external user's message: ignored, as over HTTP
    paused = gateway.robot_message({"msgtype": "text", "msgId": "m-quota", "senderStaffId": USER,  # §4.8
                                    "errCode": 20001, "errMsg": "受调用量超量影响，当前我的消息服务已经暂停"})
    assert acks(gateway, paused)[0]["code"] == 200
    ping = gateway.ping("op-1")
    assert acks(gateway, ping)[0]["data_json"] == {"opaque": "op-1"}

    _, body = stream.dingtalk_peer.text(USER, "帮助")
    gateway.robot_message(body)
    assert wait_for(lambda: stream.dingtalk.messages_to(USER))[0]["title"] == MENU
    assert gateway.connects == 1  # the same connection throughout
    assert stream.count("outbox", "WHERE kind = 'inbound'") == 1
    lines = [r.getMessage() for r in caplog.records if r.name == "banli.dingtalk.stream"]
    assert any("not a JSON object" in line and "skipped" in line for line in lines)
    assert any("refused" in line for line in lines)
    assert any("errCode 20001" in line for line in lines)  # said, not answered with 没听明白
    assert all("帮助" not in line for line in lines)  # what people wrote stays out of the log


def test_a_disconnect_frame_makes_the_client_reconnect_with_a_new_ticket(stream, caplog):
    stream.gateway.disconnect()
    wait_for(lambda: stream.gateway.connects == 2 and stream.gateway.connected == 1, timeout=15)
    assert len(stream.gateway.opens) == 2  # a ticket works once: a new open call
    _, body = stream.dingtalk_peer.text(USER, "帮助")
    stream.gateway.robot_message(body)
    assert wait_for(lambda: stream.dingtalk.messages_to(USER))[0]["title"] == MENU
    messages = [r.getMessage() for r in caplog.records if r.name == "banli.dingtalk.stream"]
    assert any("connection dropped" in m for m in messages) and any("reconnected" in m for m in messages)


def test_database_down_the_frame_is_not_acked_ok_and_its_redelivery_is_served(stream):
    from storage.db import make_engine

    runtime = stream.runtime
    working = {name: getattr(runtime, name) for name in ("engine", "autocommit_engine")}
    broken = make_engine("sqlite:////nonexistent-dir/banli.db")
    runtime.__dict__.update(engine=broken, autocommit_engine=broken)
    _, body = stream.dingtalk_peer.text(USER, "帮助")
    message = stream.gateway.robot_message(body)
    event = stream.gateway.event("user_add_org", {"userId": ["0147020"]}, event_id="evt-add-1")

    assert acks(stream.gateway, message)[0]["code"] == 500  # not stored: not "OK"
    assert acks(stream.gateway, event)[0]["data_json"]["status"] == "LATER"  # push it again, DingTalk

    runtime.__dict__.update(working)  # the database is back; DingTalk delivers both again
    stream.gateway.robot_message(body, message_id=message)
    stream.gateway.event("user_add_org", {"userId": ["0147020"]}, event_id="evt-add-1", message_id=event)
    assert acks(stream.gateway, message, 2)[1]["code"] == 200
    assert acks(stream.gateway, event, 2)[1]["data_json"]["status"] == "SUCCESS"
    assert wait_for(lambda: stream.dingtalk.messages_to(USER))[0]["title"] == MENU
    assert stream.count("outbox", "WHERE kind = 'inbound'") == 2


def test_redis_away_the_stream_closes_before_its_lease_could_lapse_and_comes_back(tmp_path, stream_factory, caplog):
    redis_server = RedisServer(tmp_path).start()
    try:
        stack = stream_factory(redis_url=redis_server.url)
        redis_server.stop()
        went = time.monotonic()
        wait_for(lambda: stack.gateway.connected == 0, timeout=20)
        closed_after = time.monotonic() - went
        assert closed_after < 10  # the lease is 10 s: closed before another process could take it
        messages = [r.getMessage() for r in caplog.records if r.name == "banli.stream"]
        assert any("cannot renew the lease" in m for m in messages)

        redis_server.start()  # same port, empty: the old lease is gone
        wait_for(lambda: stack.gateway.connected == 1, timeout=20)
        _, body = stack.dingtalk_peer.text(USER, "帮助")
        stack.gateway.robot_message(body)
        assert wait_for(lambda: stack.dingtalk.messages_to(USER), timeout=20)[0]["title"] == MENU
        print(f"redis away: connection closed after {closed_after:.1f} s")
    finally:
        redis_server.stop()


# -- `banli stream` and `banli web` as real processes ---------------------------------------------

def _plug_gateway(stack) -> StreamGateway:
    app = stack.runtime.settings.dingtalk
    gateway = StreamGateway(app_key=app.app_key, app_secret=app.app_secret).start()
    stack.dingtalk.gateway = gateway
    return gateway


def _env(stack, **extra: str) -> dict[str, str]:
    """The environment of a spawned banli for `stack`'s app and stand-ins."""
    app = stack.runtime.settings.dingtalk
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WECOM_", "DINGTALK_", "REDIS_URL"))}
    env.update(DINGTALK_APP_KEY=app.app_key, DINGTALK_APP_SECRET=app.app_secret, DINGTALK_MODE="stream",
               DINGTALK_API_BASE=app.api_base, DINGTALK_OAPI_BASE=app.oapi_base, BANLI_DISPATCH_INTERVAL="0.2",
               **extra)
    return env


def _spawn(args: list[str], env: dict[str, str], log_path) -> subprocess.Popen:
    with open(log_path, "w") as log:
        return subprocess.Popen([sys.executable, "-m", "banli.cli", *args], env=env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)


def _stop(*procs: subprocess.Popen | None) -> None:
    for proc in procs:
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()


def test_a_second_banli_stream_takes_over_when_the_first_is_killed(tmp_path, stack_factory):
    redis_server = RedisServer(tmp_path).start()
    stack = stack_factory(start_workers=False, dingtalk_mode="stream")  # the stand-ins and a database
    gateway = _plug_gateway(stack)
    env = _env(stack, DATABASE_URL=stack.runtime.settings.database_url, REDIS_URL=redis_server.url)
    logs = [tmp_path / "first.log", tmp_path / "second.log"]
    first = _spawn(["stream"], env, logs[0])
    second = None
    try:
        wait_for(lambda: gateway.connected == 1, timeout=30)
        second = _spawn(["stream"], env, logs[1])
        wait_for(lambda: "standing by" in logs[1].read_text(), timeout=30)
        settle(1.0)
        assert gateway.connects == 1 and gateway.connected == 1  # the second does not compete

        os.killpg(first.pid, signal.SIGKILL)  # no goodbye: the lease has to expire
        first.wait(10)
        killed = time.monotonic()
        wait_for(lambda: gateway.connects == 2 and gateway.connected == 1, timeout=30)
        took = time.monotonic() - killed
        assert took < 30
        print(f"takeover after kill -9: {took:.1f} s")

        _, body = stack.dingtalk_peer.text(USER, "帮助")
        message_id = gateway.robot_message(body)
        assert acks(gateway, message_id)[0]["code"] == 200
        assert stack.count("outbox", "WHERE kind = 'inbound'") == 1
        assert "leader for app" in logs[1].read_text()
    finally:
        _stop(first, second)
        gateway.stop()
        redis_server.stop()
    assert second.returncode == 0 and "lease released" in logs[1].read_text()


def test_banli_web_alone_in_stream_mode_runs_the_stream_too(tmp_path, stack_factory):
    from servers import free_port, wait_healthy

    stack = stack_factory(start_workers=False, dingtalk_mode="stream")  # for its DingTalk API stand-in
    gateway = _plug_gateway(stack)
    port = free_port()
    log_path = tmp_path / "web.log"
    web = _spawn(["web", "--port", str(port), "--host", "127.0.0.1"],
                 _env(stack, DATABASE_URL=f"sqlite:///{tmp_path / 'banli.db'}"), log_path)
    try:
        wait_healthy(f"http://127.0.0.1:{port}", web, log_path)
        wait_for(lambda: gateway.connected == 1, timeout=30)
        _, body = stack.dingtalk_peer.text(USER, "帮助")
        message_id = gateway.robot_message(body)
        assert acks(gateway, message_id)[0]["code"] == 200
        assert wait_for(lambda: stack.dingtalk.messages_to(USER), timeout=20)[0]["title"] == MENU
    finally:
        _stop(web)
        gateway.stop()
    assert "stream mode" in log_path.read_text()
