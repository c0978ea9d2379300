"""The console's customer import at 10,000 rows: preview (import_staging.preview: importing.plan,
which writes nothing) and commit (import_staging.commit: the preview's saved plan, a fingerprint check,
the bulk write) times, and that the commit is one transaction (a database failure injected after the
last customer leaves no customer behind).

    python bench/import.py                                              # SQLite in a temporary folder
    python bench/import.py postgresql://postgres@127.0.0.1:5432/test    # a schema of its own, dropped after

The file (bench/company_names.py: realistic names such as 深圳市恒瑞网络科技有限公司, each with a contact
and phone): 10,000 rows; per 100 rows one bad (tier D), one existing customer's exact name, one existing
name mistyped by sound (腾迅 for 腾讯), one existing customer's phone under a new name, one earlier row
again under another legal form: 399 planted duplicates, 100 bad. 2,000 customers exist beforehand.
Target: preview < 10 s.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import event, func, select, text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from storage.db import make_engine, session_scope  # noqa: E402
from storage.migrate import upgrade  # noqa: E402
from storage.models import Customer, Employee  # noqa: E402
from workflows import customer_entry, import_staging, importing  # noqa: E402

from company_names import company_names, homophone  # noqa: E402

EXISTING = 2000
ROWS = 10_000


def _phone(prefix: str, i: int) -> str:
    return f"{prefix}{i:08d}"


def build(session, folder: Path) -> Path:
    """2,000 existing customers (each with a contact and phone) and the 10,000-row file; every 100
    rows hold one row of each planted kind: a bad tier, an existing customer's exact name, an existing
    name mistyped by sound (腾迅 for 腾讯), an existing customer's phone under a new name, and an
    earlier row of the file again with another legal form."""
    reps = [Employee(name=f"销售{n}") for n in range(20)]
    session.add_all(reps)
    session.flush()
    names = company_names(EXISTING + ROWS)
    existing, fresh = names[:EXISTING], iter(names[EXISTING:])
    for i, known in enumerate(existing):
        contact = customer_entry.NewContact(name="王经理", phone=_phone("139", i))
        customer_entry.create_validated(session, customer_entry.validate(name=known, contacts=[contact]), by=None,
                                        owner=reps[i % 20])
    sounds_alike = iter([h for h in map(homophone, existing) if h])
    lines = ["客户名称,等级,负责人,联系人,电话"]
    written: list[str] = []
    for i in range(ROWS):
        kind, rep, phone = i % 100, f"销售{i % 20}", _phone("138", i)
        name = next(fresh)
        if kind == 50:
            lines.append(f"{name},D,{rep},李总,{phone}")  # bad: tier
            continue
        if kind == 10:
            name = existing[i // 100]
        elif kind == 20:
            name = next(sounds_alike)
        elif kind == 30:
            phone = _phone("139", i // 100)
        elif kind == 40 and written:
            earlier = written[-40]
            name = earlier.replace("股份有限公司", "有限公司") if "股份" in earlier else earlier.replace("有限", "股份有限", 1)
        written.append(name)
        lines.append(f"{name},B,{rep},李总,{phone}")
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
            started, cpu = time.perf_counter(), time.process_time()
            staged = import_staging.preview(session, folder, token, uploader_id=admin.id)
            took, cpu = time.perf_counter() - started, time.process_time() - cpu
            session.rollback()
        with session_scope(engine) as session:  # the same file planned again: what a commit after a change pays
            started = time.perf_counter()
            again = importing.plan(session, path, owner_hint=import_staging.WEB_OWNER_HINT)
            replan = time.perf_counter() - started
            session.rollback()
        plan = staged.plan
        print(f"machine load (1 min average, {os.cpu_count()} cores): {os.getloadavg()[0]:.1f}")
        print(f"preview: {took:.1f} s ({cpu:.1f} s CPU) — {plan.rows_read} rows, {len(plan.to_create)} to add, "
              f"{len(plan.duplicates)} duplicates, {len(plan.bad)} bad")
        print(f"plan again in the same process: {replan:.1f} s ({'same plan' if import_staging.digest(again) == staged.digest else 'DIFFERENT'})")
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
            started, cpu = time.perf_counter(), time.process_time()
            _, created = import_staging.commit(session, folder, token, expected=staged.digest,
                                               actor=session.get(Employee, admin.id))
        took, cpu = time.perf_counter() - started, time.process_time() - cpu
        import_staging.finish(folder, token)
        print(f"commit: {took:.1f} s ({cpu:.1f} s CPU) — {len(created)} customers written (saved plan + fingerprint check + write)")
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
