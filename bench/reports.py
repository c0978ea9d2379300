"""The console's report pages over a big company: 100,000 customers, 1,000,000 follow-ups.

    python bench/reports.py                      # full size, a few minutes (seeding is most of it)
    python bench/reports.py --customers 10000    # a quick run
    python bench/reports.py --keep               # leave the banli_reports_bench database for a look

Creates (and at the end drops) the PostgreSQL database `banli_reports_bench` next to --url's
(default postgresql://postgres@127.0.0.1:5432/test), migrates it and seeds it in SQL
(generate_series): 20 managers with 10 reps each and an admin; customers (tiers A 20% / B 30% /
C 50%, 90% owned, last touched up to 1.5× their tier's overdue days ago); ten follow-ups per
customer over the past year; a deal for every third customer; two 回款 instalments per won deal;
one approval request per five customers, each with two approver steps, over the past year.

Then renders every report page through the Flask test client — as the admin (everyone) and as one
manager (their ten reps) — for 本季度 and for the longest period allowed (a custom 366 days), five
times each, and prints the median and slowest render against the target (< 1 s a page). Last, the
slowest SQL statement of each report, as the admin over the year, is shown with EXPLAIN ANALYZE.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import event, text  # noqa: E402

from scale import drop_database, run_steps  # noqa: E402  (bench/ is the script's folder)
from storage.db import make_engine, session_scope  # noqa: E402

NOW = datetime(2026, 12, 2, 2, 5, tzinfo=timezone.utc)  # Wednesday 10:05 in Shanghai
MANAGERS, REPS = 20, 200
ADMIN = 1 + MANAGERS + REPS
KINDS = ("funnel", "followups", "overdue", "payments", "approvals")
YEAR = f"period=custom&since={(NOW.date() - timedelta(days=365)).isoformat()}&until={NOW.date().isoformat()}"
PERIODS = {"本季度": "period=quarter", "366 天": YEAR}
TARGET = 1.0
REPEAT = 5


def seed(url: str, customers: int) -> dict[str, float]:
    """Everyone and everything, generated in SQL. Reps are 21..220; rep r reports to 1 + (r - 21) / 10."""
    engine = make_engine(url)
    requests = customers // 5
    steps = [
        ("employees", f"""
            INSERT INTO employee (id, name, department, manager_id, active, synced_at, created_at)
            SELECT g, '经理' || g, '销售' || g || '部', NULL, true, :now, :now FROM generate_series(1, {MANAGERS}) g;
            INSERT INTO employee (id, name, department, manager_id, active, synced_at, created_at)
            SELECT g, '销售' || g, '销售' || (1 + (g - 21) / 10) || '部', 1 + (g - 21) / 10, true, :now, :now
            FROM generate_series(21, {20 + REPS}) g;
            INSERT INTO employee (id, name, department, active, synced_at, created_at)
            VALUES ({ADMIN}, '管理员', '', true, :now, :now);
            SELECT setval('employee_id_seq', {ADMIN});
            INSERT INTO employee_role (employee_id, role, source, granted_at) VALUES ({ADMIN}, 'admin', 'env', :now);
        """),
        ("customers", f"""
            INSERT INTO customer (id, name, short_names, industry, region, tier, status, owner_id, owned_since,
                                  last_followup_at, next_followup_at, created_at, match_forms)
            SELECT g, '测试客户' || g || '有限公司', '客户' || g, '', '', tier, '潜在',
                   CASE WHEN g % 10 <> 0 THEN 21 + (g * 37) % {REPS} END, :now - interval '400 days',
                   :now - make_interval(secs => ((g::bigint * 7919) % 1000) * 1.5 / 1000 * 86400 *
                                        CASE tier WHEN 'A' THEN 7 WHEN 'B' THEN 14 ELSE 30 END),
                   NULL, :now - interval '400 days', ''
            FROM (SELECT g, CASE WHEN g % 10 < 2 THEN 'A' WHEN g % 10 < 5 THEN 'B' ELSE 'C' END AS tier
                  FROM generate_series(1, {customers}) g) t;
            SELECT setval('customer_id_seq', {customers});
        """),
        ("follow-ups", f"""
            INSERT INTO follow_up (customer_id, employee_id, method, content, happened_at, place, photos)
            SELECT 1 + g % {customers}, 21 + (g * 31) % {REPS}, '拜访', '聊了报价',
                   :now - make_interval(secs => (g::bigint * 104729) % (365 * 86400)), '', '[]'
            FROM generate_series(0, {customers * 10 - 1}) g;
        """),
        ("deals", f"""
            INSERT INTO deal (customer_id, owner_id, title, amount, stage, created_at)
            SELECT g * 3, 21 + (g * 37) % {REPS}, '商机' || g, 1000 + (g * 7) % 99000,
                   (ARRAY['初步接触','需求分析','方案报价','商务谈判','赢单','输单'])[1 + g % 6],
                   :now - make_interval(secs => (g::bigint * 7777) % (365 * 86400))
            FROM generate_series(1, {customers // 3}) g;
        """),
        ("payment plans", """
            INSERT INTO payment_plan (deal_id, customer_id, seq, amount, paid, due_date, status, created_at)
            SELECT d.id, d.customer_id, s, d.amount / 2,
                   CASE WHEN (d.id + s) % 3 = 0 THEN d.amount / 2 WHEN (d.id + s) % 3 = 1 THEN d.amount / 4 ELSE 0 END,
                   (d.created_at + make_interval(days => 30 * s))::date,
                   CASE WHEN (d.id + s) % 3 = 0 THEN 'paid' ELSE 'open' END, d.created_at
            FROM deal d CROSS JOIN generate_series(1, 2) s WHERE d.stage = '赢单';
        """),
        ("approvals", f"""
            INSERT INTO approval_request (id, type, requester_id, summary, details, status, rule_version, chain, step,
                                          version, created_at, submitted_at, decided_at)
            SELECT g, (ARRAY['报销','请假','出差','采购','合同','通用'])[1 + g % 6], 21 + (g * 37) % {REPS}, '申请',
                   '{{}}', CASE WHEN g % 10 = 0 THEN 'pending' WHEN g % 7 = 0 THEN 'rejected' ELSE 'approved' END,
                   1, '[]', 1, 1, t, t, CASE WHEN g % 10 <> 0 THEN t + make_interval(secs => (g * 97) % 172800) END
            FROM (SELECT g, :now - make_interval(secs => (g::bigint * 5557) % (365 * 86400)) AS t
                  FROM generate_series(1, {requests}) g) r;
            SELECT setval('approval_request_id_seq', {requests});
            INSERT INTO approval_task (request_id, step, approver_id, status, comment, created_at, decided_at)
            SELECT r.id, s, CASE s WHEN 0 THEN 1 + (r.requester_id - 21) / 10 ELSE {ADMIN} END,
                   CASE WHEN r.decided_at IS NULL AND s = 1 THEN 'pending'
                        WHEN r.status = 'rejected' AND s = 1 THEN 'rejected' ELSE 'approved' END, '',
                   CASE s WHEN 0 THEN r.submitted_at ELSE r.submitted_at + (coalesce(r.decided_at, :now) - r.submitted_at) / 3 END,
                   CASE WHEN s = 0 THEN r.submitted_at + (coalesce(r.decided_at, :now) - r.submitted_at) / 3
                        ELSE r.decided_at END
            FROM approval_request r CROSS JOIN generate_series(0, 1) s;
        """),
    ]
    took = run_steps(engine, steps, NOW)
    with engine.connect() as conn:
        sizes = {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar() for t in
                 ("customer", "follow_up", "deal", "payment_plan", "approval_request", "approval_task")}
    print("rows: " + ", ".join(f"{t} {n:,}" for t, n in sizes.items()), flush=True)
    engine.dispose()
    return took


def clients(url: str):
    """The app on this database (clock fixed at NOW), and a signed-in test client per viewer."""
    from bot.app import create_app
    from bot.runtime import Runtime
    from banli.settings import Settings
    from storage.models import Employee
    from workflows import console

    runtime = Runtime(Settings(database_url=url), clock=lambda: NOW)
    app = create_app(runtime=runtime)
    found = {}
    for label, person in (("管理员", ADMIN), ("经理", 1)):
        client = app.test_client()
        with session_scope(runtime.engine) as session:
            key = console.signing_key(session, "")
            cookie = console.open_session(session, session.get(Employee, person), key=key, now=NOW)
        client.set_cookie("banli_console", cookie, path="/admin")
        found[label] = client
    return runtime, found


def time_pages(runtime, viewers) -> list[tuple[str, str, str, float, float]]:
    results = []
    for kind in KINDS:
        for period, query in PERIODS.items():
            for viewer, client in viewers.items():
                times = []
                for _ in range(REPEAT):
                    started = time.perf_counter()
                    page = client.get(f"/admin/reports/{kind}?{query}")
                    times.append(time.perf_counter() - started)
                    assert page.status_code == 200, page.get_data(as_text=True)[:500]
                results.append((kind, period, viewer, statistics.median(times), max(times)))
                kind_, period_, viewer_, med, worst = results[-1]
                verdict = "met" if worst < TARGET else "MISSED"
                print(f"{kind_:<10} {period_:<6} {viewer_:<4} median {med * 1000:7.1f} ms  slowest {worst * 1000:7.1f} ms"
                      f"  ({verdict})", flush=True)
    return results


def explain_slowest(runtime, client) -> None:
    """Per report, the slowest statement of one admin render over the year, under EXPLAIN ANALYZE."""
    engine = runtime.engine
    seen: list[tuple[float, str, object]] = []
    started: list[float] = []

    def before(conn, cursor, statement, parameters, context, executemany):
        started.append(time.perf_counter())

    def after(conn, cursor, statement, parameters, context, executemany):
        seen.append((time.perf_counter() - started.pop(), statement, parameters))

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    try:
        for kind in KINDS:
            seen.clear()
            client.get(f"/admin/reports/{kind}?{YEAR}")
            took, statement, parameters = max((s for s in seen if s[1].lstrip().upper().startswith("SELECT")),
                                              key=lambda s: s[0])
            with engine.connect() as conn:
                plan = conn.exec_driver_sql("EXPLAIN (ANALYZE, COSTS OFF) " + statement, parameters).scalars().all()
            print(f"\n{kind}: slowest statement {took * 1000:.1f} ms", flush=True)
            for line in plan:
                if any(word in line for word in ("Scan", "Aggregate", "Join", "Execution Time", "Sort")):
                    print("   " + line, flush=True)
    finally:
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "after_cursor_execute", after)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--database", default="banli_reports_bench")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--reuse", action="store_true", help="time a database kept by an earlier --keep run")
    args = parser.parse_args()
    from storage.migrate import upgrade

    admin = make_engine(args.url, autocommit=True)
    url = admin.url.set(database=args.database).render_as_string(hide_password=False)
    print(f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, load {os.getloadavg()[0]:.2f}; "
          f"{args.customers:,} customers into {args.database}", flush=True)
    if not args.reuse:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{args.database}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{args.database}"'))
    runtime = None
    try:
        if not args.reuse:
            engine = make_engine(url)
            upgrade(engine)
            engine.dispose()
            for step, took in seed(url, args.customers).items():
                print(f"seed {step:<16} {took:>7.2f} s", flush=True)
        runtime, viewers = clients(url)
        print(f"load {os.getloadavg()[0]:.2f}; today {NOW.astimezone().date()} (本季度 from "
              f"{date(NOW.year, 10, 1)}); {REPEAT} renders each", flush=True)
        results = time_pages(runtime, viewers)
        worst = max(results, key=lambda r: r[4])
        print(f"\nslowest page: {worst[0]} {worst[1]} {worst[2]} {worst[4] * 1000:.0f} ms — target < {TARGET:.0f} s "
              f"{'met' if worst[4] < TARGET else 'MISSED'}", flush=True)
        explain_slowest(runtime, viewers["管理员"])
    finally:
        if runtime is not None:
            runtime.close()
        if not args.keep:
            drop_database(admin, args.database)
        admin.dispose()


if __name__ == "__main__":
    main()
