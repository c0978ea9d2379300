"""The console's customer import at 10,000 rows: preview (importing.plan, which writes nothing) and
commit (import_staging.commit: re-plan, check the digest, write) times, and that the commit is one
transaction (a database failure injected after the last customer leaves no customer behind).

    python bench/import.py                                              # SQLite in a temporary folder
    python bench/import.py postgresql://postgres@127.0.0.1:5432/test    # a schema of its own, dropped after

The file: 10,000 rows, 9,700 new, 200 duplicates of existing customers or earlier rows, 100 bad rows
(a tier D). 2,000 customers exist beforehand. Target: preview < 10 s.
"""

from __future__ import annotations

import argparse
import secrets
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import event, func, select, text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from storage.db import make_engine, session_scope  # noqa: E402
from storage.migrate import upgrade  # noqa: E402
from storage.models import Customer, Employee  # noqa: E402
from workflows import customer_entry, import_staging  # noqa: E402

CITIES = "北京上海广州深圳杭州成都南京苏州武汉西安"
TRADES = ["科技", "教育", "物流", "商贸", "医疗", "软件", "咨询", "建材", "食品", "传媒"]


def name(i: int) -> str:
    # distinct enough that the fuzzy matcher does not call them one another: a number spelled in
    # characters in the middle of the name
    digits = "零一二三四五六七八九"
    return f"{CITIES[i % 10 * 2:i % 10 * 2 + 2]}{''.join(digits[int(d)] for d in str(i))}{TRADES[i // 10 % 10]}有限公司"


def build(session, folder: Path) -> Path:
    reps = [Employee(name=f"销售{n}") for n in range(20)]
    session.add_all(reps)
    session.flush()
    for i in range(2000):
        customer_entry.create_validated(session, customer_entry.validate(name=name(100_000 + i)), by=None,
                                        owner=reps[i % 20])
    lines = ["客户名称,等级,负责人"]
    for i in range(10_000):
        if i % 100 == 50:
            lines.append(f"{name(i)},D,销售1")  # bad: tier
        elif i % 50 == 25:
            lines.append(f"{name(100_000 + i % 2000)},A,销售2")  # an existing customer
        else:
            lines.append(f"{name(i)},B,销售{i % 20}")
    path = folder / "customers.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url", nargs="?")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp())
    url, schema = args.url or f"sqlite:///{folder / 'import.db'}", ""
    if url.startswith("postgresql"):
        schema = "bench_import_" + secrets.token_hex(4)
        with make_engine(url).begin() as conn:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
        url = f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"
    engine = make_engine(url)
    upgrade(engine)
    try:
        with session_scope(engine) as session:
            path = build(session, folder)
            admin = Employee(name="管理员")
            session.add(admin)
        token = import_staging.stage(folder, path.read_bytes(), "customers.csv", uploader_id=admin.id)
        with session_scope(engine) as session:
            started = time.perf_counter()
            staged = import_staging.preview(session, folder, token, uploader_id=admin.id)
            took = time.perf_counter() - started
            session.rollback()
        plan = staged.plan
        print(f"preview: {took:.1f} s — {plan.rows_read} rows, {len(plan.to_create)} to add, "
              f"{len(plan.duplicates)} duplicates, {len(plan.bad)} bad")
        count = lambda: session_scope(engine)  # noqa: E731
        with count() as session:
            before = session.execute(select(func.count()).select_from(Customer)).scalar_one()
        # One transaction: fail the audit row written after the last customer; nothing may stay.
        fail = event.listens_for(engine, "before_cursor_execute")(_fail_on_audit)
        try:
            with session_scope(engine) as session:
                import_staging.commit(session, folder, token, expected=staged.digest,
                                      actor=session.get(Employee, admin.id))
        except Exception as exc:  # the injected failure
            import_staging.release(folder, token)
            print(f"injected failure at the audit row ({exc.__class__.__name__}): ", end="")
        event.remove(engine, "before_cursor_execute", fail)
        with count() as session:
            after = session.execute(select(func.count()).select_from(Customer)).scalar_one()
        print(f"customers before {before}, after {after} ({'nothing written' if after == before else 'HALF WRITTEN'})")
        with session_scope(engine) as session:
            started = time.perf_counter()
            _, created = import_staging.commit(session, folder, token, expected=staged.digest,
                                               actor=session.get(Employee, admin.id))
        took = time.perf_counter() - started
        import_staging.finish(folder, token)
        print(f"commit: {took:.1f} s — {len(created)} customers written (re-plan + digest check + write)")
    finally:
        engine.dispose()
        if schema:
            with make_engine(args.url).begin() as conn:
                conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))


def _fail_on_audit(conn, cursor, statement, parameters, context, executemany):
    if statement.lstrip().upper().startswith("INSERT INTO AUDIT_LOG") and "customer.import" in str(parameters):
        raise RuntimeError("injected failure")


if __name__ == "__main__":
    main()
