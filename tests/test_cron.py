"""Periodic slots: exactly one winner per slot, however many dispatchers; a missed slot fires once."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

from sqlalchemy import text

from banli.cron import CronJob, claim_due_slots
from storage.db import session_scope

RUNS: list[str] = []


def _record(runtime, session):
    RUNS.append("ran")
    return {"ok": True}


JOBS = {"digest": CronJob("digest", "0 8 * * *", _record, catch_up=timedelta(hours=6))}


def test_two_dispatchers_one_slot_one_winner(stack_factory):
    stack = stack_factory(start_workers=False)
    now = datetime(2026, 11, 23, 0, 5, tzinfo=timezone.utc)  # 08:05 in Shanghai
    won: list[list[str]] = []
    start = threading.Barrier(4)

    def dispatcher_round():
        start.wait()
        with session_scope(stack.runtime.engine) as session:
            won.append(claim_due_slots(session, now=now, tz="Asia/Shanghai", jobs=JOBS))

    threads = [threading.Thread(target=dispatcher_round) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(won) == [[], [], [], ["cron:digest:2026-11-23T08:00:00+08:00"]]
    assert stack.count("outbox", "WHERE kind = 'cron' AND key LIKE 'cron:digest:%'") == 1


def test_a_slot_missed_while_down_fires_once_and_old_slots_do_not(stack_factory):
    stack = stack_factory(start_workers=False)
    back_at = datetime(2026, 11, 23, 3, 0, tzinfo=timezone.utc)  # 11:00 Shanghai: 08:00 was missed
    with session_scope(stack.runtime.engine) as session:
        assert claim_due_slots(session, now=back_at, tz="Asia/Shanghai", jobs=JOBS) == \
            ["cron:digest:2026-11-23T08:00:00+08:00"]
    with session_scope(stack.runtime.engine) as session:
        assert claim_due_slots(session, now=back_at + timedelta(minutes=10), tz="Asia/Shanghai", jobs=JOBS) == []
    much_later = datetime(2026, 11, 23, 10, 0, tzinfo=timezone.utc)  # 18:00: beyond catch-up
    with session_scope(stack.runtime.engine) as session:
        assert claim_due_slots(session, now=much_later, tz="Asia/Shanghai", jobs=JOBS) == []


def test_the_purge_cron_runs_through_the_queue_and_forgets_old_finished_rows(stack):
    from conftest import wait_for

    stack.post_wecom(stack.wecom_peer.text("zhangsan", "帮助"))
    wait_for(lambda: stack.count("outbox", "WHERE kind = 'message' AND status = 'sent'") == 1)
    purged = "WHERE key LIKE 'cron:purge:%' AND status = 'sent'"
    wait_for(lambda: stack.count("outbox", purged) == 1)
    with stack.runtime.engine.begin() as conn:
        conn.execute(text("UPDATE outbox SET sent_at = :t WHERE kind IN ('inbound', 'message')"),
                     {"t": datetime(2020, 1, 1, tzinfo=timezone.utc)})
        conn.execute(text("DELETE FROM outbox WHERE kind = 'cron'"))  # so the next tick claims the slot again
    wait_for(lambda: stack.count("outbox", purged) == 1)
    assert stack.count("outbox", "WHERE kind IN ('inbound', 'message')") == 0
