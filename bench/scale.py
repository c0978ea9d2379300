"""The periodic scans over a big company: 1,000,000 customers, 3,000,000 follow-ups, 200 reps.

    python bench/scale.py                        # full size, ~10 min (seeding is most of it)
    python bench/scale.py --customers 20000      # a quick run
    python bench/scale.py --keep                 # leave the banli_scale database for a look

Creates (and at the end drops) the PostgreSQL database `banli_scale` next to --url's (default
postgresql://postgres@127.0.0.1:5432/test), migrates it, seeds it in SQL (generate_series, so a
million customers take a minute, not an hour), then times, each in a fresh Python process so its
peak memory is its own:

- the overdue scan (workflows/overdue.py scan): first run, which marks every overdue customer and
  queues one card timer per person; then a re-run, the steady state of an hourly scan, which must
  mark and queue nothing;
- the overdue cards going out: every card timer the first run queued fired (workflows/overdue.py
  send_card, one transaction each, as the worker runs them), then all fired again (a redelivered
  timer), which must claim and push nothing;
- the 公海 sweep (workflows/pool.py sweep): first run and an immediate re-run;
- the 08:00 digest (workflows/digest.py queue_daily_digests): first run and a re-run (0 new);
- a follow-up logged over that data: workflows.followups.log_followup with the FOLLOWUP_LOGGED
  subscribers wired (their outbox cancels by key prefix), one transaction each.

Each line gives wall time, SQL statements (counted with a SQLAlchemy event listener) and the
process's peak RSS (ru_maxrss). Targets: each scan < 5 s and < 300 MB; every alert written once
(keys are unique; a re-run adds 0); a follow-up well under 100 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import Engine, event, text  # noqa: E402

from storage.db import make_engine, session_scope  # noqa: E402

TZ = "Asia/Shanghai"
NOW = datetime(2026, 12, 2, 2, 5, tzinfo=timezone.utc)  # Wednesday 10:05 in Shanghai
MANAGERS, REPS = 20, 200
DEPARTED = (21, 71, 121, 171)  # reps marked departed: their customers go to the pool unwarned


def seed(url: str, customers: int) -> dict[str, float]:
    """Employees, identities, customers, follow-ups and a realistic outbox, all generated in SQL."""
    engine = make_engine(url)
    took: dict[str, float] = {}
    followed = customers * 4 // 5  # customers with id % 5 != 0 have follow-ups
    steps = [
        ("employees", f"""
            INSERT INTO employee (id, name, department, manager_id, active, synced_at, created_at)
            SELECT g, '经理' || g, '销售' || g, NULL, true, :now, :now
            FROM generate_series(1, {MANAGERS}) g;
            INSERT INTO employee (id, name, department, manager_id, active, synced_at, created_at)
            SELECT g, '销售' || g, '销售' || (1 + (g - 21) / 10), 1 + (g - 21) / 10,
                   g NOT IN {DEPARTED}, :now, :now
            FROM generate_series(21, {20 + REPS}) g;
            -- roles (employee_role) do not matter to the scans
            INSERT INTO employee (id, name, active, created_at, department)
            VALUES ({21 + REPS}, '管理员', true, :now, '');
            SELECT setval('employee_id_seq', {21 + REPS});
            INSERT INTO identity (platform, user_id, employee_id, created_at)
            SELECT 'wecom', 'u' || g, g, :now FROM generate_series(1, {21 + REPS}) g;
            -- ten reps use both platforms: their pushes go where they last wrote
            INSERT INTO identity (platform, user_id, employee_id, created_at)
            SELECT 'dingtalk', 'd' || g, g, :now FROM generate_series(22, 31) g;
        """),
        # Tiers A 20% / B 30% / C 50%; 85% owned. Followed customers were created long ago and last
        # touched up to 1.3× their tier's overdue days ago (so ~23% are overdue); the others are
        # recent, never followed up, up to 45 days old (some past the 公海 days), 0.1% from old data.
        ("customers", f"""
            INSERT INTO customer (id, name, short_names, industry, region, tier, status, owner_id,
                                  owned_since, last_followup_at, next_followup_at, created_at, match_forms)
            SELECT g, '测试客户' || g || '有限公司', '客户' || g, '', '', tier, '潜在',
                   CASE WHEN g % 100 < 85 THEN 21 + (g * 37) % {REPS} END, created, last,
                   CASE WHEN g % 3 = 0 THEN coalesce(last, created) + make_interval(days => (g * 11) % 21) END,
                   created, ''
            FROM (SELECT g, tier,
                         CASE WHEN g % 5 <> 0 THEN :now - make_interval(days => 200 + (g * 13) % 300)
                              WHEN g % 1000 = 5 THEN :now - make_interval(days => 400)
                              ELSE :now - make_interval(days => (g * 13) % 45, secs => (g * 7) % 86400) END AS created,
                         CASE WHEN g % 5 <> 0 THEN :now - make_interval(
                              secs => ((g::bigint * 7919) % 1000) * 1.3 / 1000 * 86400 *
                                      CASE tier WHEN 'A' THEN 7 WHEN 'B' THEN 14 ELSE 30 END) END AS last
                  FROM (SELECT g, CASE WHEN g % 10 < 2 THEN 'A' WHEN g % 10 < 5 THEN 'B' ELSE 'C' END AS tier
                        FROM generate_series(1, {customers}) g) t) s;
            SELECT setval('customer_id_seq', {customers});
        """),
        # 3 follow-ups per customer on average, over the followed 80%: the latest at last_followup_at.
        ("follow-ups", f"""
            INSERT INTO follow_up (customer_id, employee_id, method, content, happened_at, next_at, place, photos)
            SELECT c.id, coalesce(c.owner_id, 21), '拜访', '聊了报价', c.last_followup_at - make_interval(days => f.n * 10),
                   CASE WHEN f.n = 0 THEN c.next_followup_at END, '', '[]'
            FROM (SELECT (g % {followed}) AS k, g / {followed} AS n FROM generate_series(0, {customers * 3 - 1}) g) f
            JOIN customer c ON c.id = (f.k / 4) * 5 + f.k % 4 + 1;
        """),
        # The outbox as a busy company has it: a quarter-million pending reminders, and sent
        # inbound deliveries from everyone (which preferred_identity reads for two-platform people).
        ("outbox", f"""
            INSERT INTO outbox (key, kind, platform, recipient, conversation, payload, status, due_at, attempts,
                                lease_token, last_error, result, card_ref, created_at)
            SELECT 'remind:followup:' || g || chr(58) || '2026-12-' || lpad((3 + g % 20)::text, 2, '0') || 'T02:00:00+00:00',
                   'message', 'wecom', 'u' || (21 + g % {REPS}), '', '{{}}', 'pending',
                   :now + make_interval(days => 1 + g % 20), 0, '', '', '{{}}', '', :now
            FROM generate_series(1, {customers * 257 // 1000}) g;
            INSERT INTO outbox (key, kind, platform, recipient, conversation, payload, status, due_at, attempts,
                                lease_token, last_error, result, card_ref, created_at, sent_at)
            SELECT 'inbound:' || CASE WHEN g % 7 = 0 THEN 'dingtalk:' ELSE 'wecom:' END || g, 'inbound',
                   CASE WHEN g % 7 = 0 THEN 'dingtalk' ELSE 'wecom' END,
                   CASE WHEN g % 7 = 0 THEN 'd' ELSE 'u' END || (21 + g % {REPS}), '', '{{}}', 'sent',
                   :now - make_interval(secs => g), 1, '', '', '{{}}', '', :now - make_interval(secs => g), :now
            FROM generate_series(1, {customers // 2}) g;
        """),
    ]
    took.update(run_steps(engine, steps, NOW))
    engine.dispose()
    return took


def run_steps(engine: Engine, steps: list[tuple[str, str]], now: datetime) -> dict[str, float]:
    """Run each named step's SQL (statements split on ';', `:now` bound) in one transaction, then
    VACUUM ANALYZE so the planner knows the new sizes; returns seconds per step."""
    took: dict[str, float] = {}
    with engine.begin() as conn:
        for name, sql in steps:
            started = time.perf_counter()
            for statement in filter(str.strip, sql.split(";")):
                conn.execute(text(statement), {"now": now})
            took[name] = time.perf_counter() - started
    started = time.perf_counter()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
    took["vacuum analyze"] = time.perf_counter() - started
    return took


# -- one measured run, in its own process --------------------------------------------------------


def run_one(url: str, what: str) -> dict:
    from banli.wiring import subscribers
    from storage.models import Customer, Employee
    from workflows import digest, followups, overdue, pool, signals

    engine = make_engine(url)
    signals.attach(engine, subscribers())
    statements = [0]
    event.listen(engine, "before_cursor_execute", lambda *a: statements.__setitem__(0, statements[0] + 1))
    with engine.connect() as conn:  # connect first: the pool's warm-up is not the scan's cost
        conn.execute(text("SELECT 1"))
    baseline_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    statements[0] = 0
    started = time.perf_counter()
    result: object
    if what == "cards":
        result = _send_cards(engine)
    elif what == "lookup":
        result = _lookups(engine, statements)
    elif what == "followup":
        times = []
        with session_scope(engine) as session:
            picks = session.execute(text(
                "SELECT id, owner_id FROM customer WHERE owner_id IS NOT NULL AND owner_id NOT IN (21, 71, 121, 171)"
                " ORDER BY id LIMIT 40")).all()
        statements[0] = 0
        for n, (customer_id, owner_id) in enumerate(picks):
            one = time.perf_counter()
            with session_scope(engine) as session:
                customer, employee = session.get(Customer, customer_id), session.get(Employee, owner_id)
                followups.log_followup(session, employee=employee, customer=customer, method="拜访", content="聊了报价",
                                       next_at=NOW + timedelta(days=3), now=NOW + timedelta(minutes=n), tz=TZ,
                                       source_key=f"bench:{customer_id}:{time.time_ns()}")
            times.append(time.perf_counter() - one)
        times.sort()
        result = {"followups": len(times), "median_ms": round(1000 * times[len(times) // 2], 1),
                  "max_ms": round(1000 * times[-1], 1), "statements_each": round(statements[0] / len(times), 1)}
    else:
        with session_scope(engine) as session:
            if what == "overdue":
                result = overdue.scan(session, now=NOW, tz=TZ)
            elif what == "pool":
                result = pool.sweep(session, now=NOW, tz=TZ)
            else:
                result = digest.queue_daily_digests(session, now=NOW, tz=TZ)
    took = time.perf_counter() - started
    engine.dispose()
    return {"what": what, "seconds": round(took, 2), "statements": statements[0], "result": result,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
            "rss_before_mb": baseline_rss}


def _send_cards(engine: Engine) -> dict:
    """Fire every queued overdue card timer at its due moment, one transaction each."""
    from workflows import overdue

    with session_scope(engine) as session:
        timers = session.execute(text(
            "SELECT payload, due_at FROM outbox WHERE key LIKE 'overdue:card:%' ORDER BY key")).all()
    times, customers, pushed = [], 0, 0
    for payload, due_at in timers:
        one = time.perf_counter()
        with session_scope(engine) as session:
            done = overdue.send_card(session, json.loads(payload), due_at, TZ)
        times.append(time.perf_counter() - one)
        customers += done["customers"]
        pushed += bool(done["pushed"])
    times.sort()
    return {"cards": len(times), "pushed": pushed, "customers": customers,
            "median_ms": round(1000 * times[len(times) // 2], 1) if times else 0,
            "max_ms": round(1000 * times[-1], 1) if times else 0}


def _lookups(engine: Engine, statements: list[int]) -> dict:
    """A rep's `拜访 <name>`: the matcher's first build in a fresh process, then 40 lookups, with a
    customer added by another connection halfway (the next lookup must find it)."""
    from storage.models import Customer
    from workflows import customers
    from workflows.matching import refresh_forms

    one = time.perf_counter()
    with session_scope(engine) as session:
        customers.find(session, "客户1", owner_id=22)
    build = time.perf_counter() - one
    statements[0], refresh, matching, found_new = 0, [], [], False
    for n in range(40):
        if n == 20:
            with session_scope(engine) as session:
                added = Customer(name="深圳市办理基准新客户有限公司", short_names="办理基准")
                refresh_forms(added)
                session.add(added)
        with session_scope(engine) as session:
            one = time.perf_counter()
            index = customers.index(session)  # brought up to date: what every lookup pays first
            two = time.perf_counter()
            match = index.match("办理基准" if n >= 20 else f"测试客户{n * 997 + 1}有限公司")
            refresh.append(two - one)
            matching.append(time.perf_counter() - two)
        found_new = found_new or (n >= 20 and match.customer_id is not None)
    return {"first_build_s": round(build, 1), "lookups": len(refresh),
            "refresh_median_ms": _ms(sorted(refresh)[20]), "refresh_max_ms": _ms(max(refresh)),
            "match_median_ms": _ms(sorted(matching)[20]), "match_max_ms": _ms(max(matching)),
            "statements_each": round(statements[0] / len(refresh), 1), "new_customer_found": found_new}


def _ms(seconds: float) -> float:
    return round(1000 * seconds, 2)


def measured(url: str, what: str, label: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--url", url, "--run", what], capture_output=True, text=True,
                         check=True, cwd=ROOT)
    found = json.loads(out.stdout.strip().splitlines()[-1])
    found["label"] = label
    print(f"{label:<34} {found['seconds']:>7.2f} s  {found['statements']:>6} statements  "
          f"peak {found['peak_rss_mb']:>4} MB (at start {found['rss_before_mb']} MB)  → {found['result']}", flush=True)
    return found


def counts(url: str) -> dict[str, int]:
    engine = make_engine(url)
    with engine.connect() as conn:
        row = conn.execute(text(
            "SELECT (SELECT count(*) FROM overdue_mark WHERE level = 'owner'),"
            " (SELECT count(*) FROM overdue_mark WHERE level = 'manager'),"
            " count(*) FILTER (WHERE key LIKE 'overdue:card:%'), count(*) FILTER (WHERE key LIKE 'overdue:push:%'),"
            " count(*) FILTER (WHERE key LIKE 'pool:warn:%'), count(*) FILTER (WHERE key LIKE 'pool:released:%'),"
            " count(*) FILTER (WHERE key LIKE 'digest:%'), count(*) - count(DISTINCT key) FROM outbox")).one()
        pooled = conn.execute(text("SELECT count(*) FROM customer WHERE owner_id IS NULL")).scalar()
    engine.dispose()
    return dict(zip(("overdue_owner", "overdue_manager", "overdue_cards", "overdue_pushed", "pool_warn", "pool_released", "digest", "duplicate_keys",
                     "pool_customers"), (*row, pooled)))


def explain_cancel(url: str) -> None:
    """outbox.cancel's UPDATE as psycopg sends it (bound parameters), as a prepared statement under a
    generic plan (what PostgreSQL may switch to after five runs), beside the old LIKE; rolled back."""
    engine = make_engine(url)
    prefix = "overdue:owner:12:"
    old = "UPDATE outbox SET status = 'cancelled', lease_until = NULL WHERE key LIKE $1 AND status = 'pending'"
    new = ("UPDATE outbox SET status = 'cancelled', lease_until = NULL WHERE key COLLATE \"C\" >= $1"
           " AND key COLLATE \"C\" < $2 AND status = 'pending'")
    with engine.connect() as conn:
        conn.execute(text("SET plan_cache_mode = force_generic_plan"))
        conn.execute(text(f"PREPARE old_cancel (varchar) AS {old}"))
        conn.execute(text(f"PREPARE new_cancel (varchar, varchar) AS {new}"))
        for name, args in (("old LIKE", f"('{prefix}%')"), ("range", f"('{prefix}', '{prefix[:-1]};')")):
            plan = conn.execute(text(f"EXPLAIN (ANALYZE, COSTS OFF) EXECUTE {'old_cancel' if name == 'old LIKE' else 'new_cancel'} {args}")).scalars().all()
            scan = next(line.strip() for line in plan if "Scan" in line)
            print(f"  cancel, {name:<8} generic plan: {scan}; {plan[-1].strip()}", flush=True)
        conn.rollback()
    engine.dispose()


def drop_database(admin: Engine, name: str) -> None:
    """Drop the bench's own database, whoever is still connected to it."""
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--database", default="banli_scale")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--run", help=argparse.SUPPRESS)
    parser.add_argument("--only", choices=("overdue", "lookup"), help="seed, then measure only that step")
    args = parser.parse_args()
    if args.run == "explain":  # on a kept database: --url postgresql://…/banli_scale --run explain
        explain_cancel(args.url)
        return
    if args.run:
        print(json.dumps(run_one(args.url, args.run), ensure_ascii=False))
        return
    from storage.migrate import upgrade

    admin = make_engine(args.url, autocommit=True)
    url = admin.url.set(database=args.database).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{args.database}"'))
        conn.execute(text(f'CREATE DATABASE "{args.database}"'))
    print(f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, load {os.getloadavg()[0]:.2f}; "
          f"{args.customers:,} customers into {args.database}", flush=True)
    try:
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        for step, took in seed(url, args.customers).items():
            print(f"seed {step:<29} {took:>7.2f} s", flush=True)
        print(f"load {os.getloadavg()[0]:.2f}", flush=True)
        if args.only == "lookup":
            measured(url, "lookup", "a customer looked up by name (first build, then 40)")
            return
        measured(url, "overdue", "overdue scan, first run")
        measured(url, "overdue", "overdue scan, steady state")
        if args.only == "overdue":
            print(f"outbox: {counts(url)}; load {os.getloadavg()[0]:.2f}", flush=True)
            return
        measured(url, "cards", "overdue cards sent (timers fired)")
        measured(url, "cards", "overdue cards, timers fired again")
        measured(url, "pool", "公海 sweep, first run")
        measured(url, "pool", "公海 sweep, re-run")
        measured(url, "digest", "08:00 digest, first run")
        measured(url, "digest", "08:00 digest, re-run")
        measured(url, "followup", "a follow-up logged (40, each)")
        measured(url, "lookup", "a customer looked up by name (first build, then 40)")
        explain_cancel(url)
        print(f"outbox: {counts(url)}; load {os.getloadavg()[0]:.2f}", flush=True)
    finally:
        if not args.keep:
            drop_database(admin, args.database)
        admin.dispose()


if __name__ == "__main__":
    main()
