"""One explicit wiring per process: handlers and signal subscribers come from `wire(runtime)`, never
from what a process happened to import — so a fresh worker whose very first job is a timer reacts
to it exactly as a web process would, and a route claimed twice stops the process at start."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import text, update

from banli.settings import Settings
from banli.wiring import wire
from bot.runtime import Runtime
from cards import Card
from conftest import wait_for
from handlers import build_router
from handlers.router import DuplicateRoute, Router, Routes
from servers import RedisServer
from storage import outbox
from storage.db import make_engine, session_scope
from storage.models import Customer, Deal, Employee, Outbox, utcnow
from workflows import deals, roles, rules, signals
from workflows.matching import refresh_forms


def _answer(ctx) -> Card:
    return Card(title="ok")


def test_a_route_claimed_twice_stops_the_process_at_start():
    first, second = Routes(), Routes()
    first.command("报销", prefix=True)(_answer)
    second.command("报销", prefix=True)(_answer)
    with pytest.raises(DuplicateRoute, match="报销"):
        Router().include(first).include(second)
    for register in (lambda r: r.action("approval.approve"), lambda r: r.kind("image"),
                     lambda r: r.command("帮助"), lambda r: r.step("f", "s", ask=_answer)):
        a, b = Routes(), Routes()
        register(a)(_answer)
        register(b)(_answer)
        with pytest.raises(DuplicateRoute):
            Router().include(a).include(b)


def test_every_process_builds_the_same_complete_router():
    router = build_router()
    assert router.is_command("报销 出租车 86.5") and router.is_command("帮助")
    assert ("crm.visit", "customer") in router.steps and "approval.new" in router.flows
    assert build_router() is not router  # one per runtime, nothing shared


def test_a_signal_on_an_engine_nobody_wired_is_refused_not_lost(tmp_path):
    from sqlmodel import Session

    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with Session(engine) as session, pytest.raises(signals.NotWired):
        signals.emit(session, signals.FOLLOWUP_LOGGED, customer=None)


def test_an_unwired_runtime_has_no_router_to_run():
    with pytest.raises(RuntimeError, match="wire"):
        Runtime(Settings(database_url="sqlite://")).router  # noqa: B018


def _won_deal_with_an_auto_decided_contract(runtime: Runtime) -> int:
    """张三's 3万 deal won: its 合同 waits at the director; 合同 auto-approves at its deadline."""
    now = utcnow()
    with session_scope(runtime.engine) as session:
        director = Employee(name="刘总监", synced_at=now)
        session.add(director)
        session.flush()
        roles.grant(session, director, "sales_director")
        rep = Employee(name="张三", manager_id=director.id, synced_at=now)
        session.add(rep)
        session.flush()
        customer = Customer(name="智远科技有限公司", short_names="智远", tier="A", owner_id=rep.id)
        refresh_forms(customer)
        session.add(customer)
        session.flush()
        rules.put(session, "oa.auto_decide", {"合同": {"hours": 1, "decision": "approve"}}, by=None)
        deal = deals.create_deal(session, customer=customer, by=rep, stage="商务谈判", amount=Decimal(30000), now=now)
        deals.move_stage(session, deal, "赢单", by=rep, now=now)  # raises the contract, schedules its timer
        timer = session.execute(text("SELECT key FROM outbox WHERE key LIKE 'approval:timer:auto:%'")).scalar_one()
        session.execute(update(Outbox).where(Outbox.key == timer).values(due_at=now - timedelta(seconds=1)))
        deal_id = deal.id
    with session_scope(runtime.engine) as session:
        row_id, token = outbox.lease_key(session, timer, now=utcnow(), lease_seconds=60)
    runtime.queue.enqueue("banli.delivery.deliver", row_id, token, job_id=f"outbox-{row_id}-{token}")
    return deal_id


def test_a_fresh_worker_whose_first_job_is_a_contract_timer_signs_the_deal(tmp_path, database_url):
    redis_server = RedisServer(tmp_path).start()
    settings = Settings(database_url=database_url, redis_url=redis_server.url, queue_name="banli")
    runtime = wire(Runtime(settings))
    deal_id = _won_deal_with_an_auto_decided_contract(runtime)
    assert len(runtime.queue) == 1  # the timer is the only job the worker will ever see
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WECOM_", "DINGTALK_"))}
    env.update(DATABASE_URL=database_url, REDIS_URL=redis_server.url)
    log_path = tmp_path / "worker.log"
    with open(log_path, "w") as log:
        worker = subprocess.Popen([sys.executable, "-m", "banli.cli", "worker"], env=env, stdout=log,
                                  stderr=subprocess.STDOUT, start_new_session=True)
    try:
        engine = runtime.engine

        def stage() -> str:
            with engine.connect() as conn:
                return conn.execute(text("SELECT stage FROM deal WHERE id = :d"), {"d": deal_id}).scalar_one()

        wait_for(lambda: stage() == deals.SIGNED, timeout=40)
        with engine.connect() as conn:
            planned = conn.execute(text("SELECT sum(amount) FROM payment_plan")).scalar_one()
        assert Decimal(str(planned)) == Decimal(30000)
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=15)
        except subprocess.TimeoutExpired:
            worker.kill()
        runtime.close()
        redis_server.stop()
        time.sleep(0)  # the log stays in tmp_path for a failing run
