"""`banli directory sync` at company scale: a WeCom stand-in directory of 100,000 people in 2,000
departments, synced into a fresh database through the real client over HTTP, then synced again.

    python bench/directory.py [DATABASE_URL] [--people N] [--departments N]
        # default: a SQLite file in a temporary folder; a postgresql:// URL gets a schema of its own

Target: minutes at most for the first run, the re-run writes nothing, and memory bounded — the
sync streams people in chunks of 1,000 with set-based statements, so its peak memory does not grow
with the company. Reports wall time for each run and the process's peak RSS growth during each
(the stand-in's own copy of the directory is built before the baseline is taken).
"""

from __future__ import annotations

import argparse
import logging
import resource
import secrets
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import text

from banli.directory import sync_all
from banli.settings import Settings, WeComSettings
from bot.runtime import Runtime
from bot.serving import ServerThread
from bot.wecom.standin import WeComStandin
from storage.db import make_engine
from storage.migrate import upgrade

AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂"


def company(people: int, departments: int) -> tuple[dict[int, str], dict[int, int], dict[str, dict]]:
    """Departments in a tree (ten children each), people spread over them; each department's first
    person leads it and reports to the parent department's lead."""
    names = {1: "全公司", **{d: f"部门{d:04d}" for d in range(2, departments + 1)}}
    parents = {d: (d - 2) // 10 + 1 for d in range(2, departments + 1)}
    leads: dict[int, str] = {}
    users: dict[str, dict] = {}
    for n in range(people):
        dept = n % departments + 1
        uid = f"u{n:06d}"
        leads.setdefault(dept, uid)
        boss = leads[dept] if leads[dept] != uid else leads.get(parents.get(dept, 0), "")
        users[uid] = {"name": SURNAMES[n % 20] + GIVEN[(n // 20) % 20] + GIVEN[(n // 400) % 20],
                      "department": [dept], "main_department": dept, "direct_leader": [boss] if boss else [],
                      "mobile": f"139{n:08d}", "email": f"{uid}@example.com", "status": 1}
    return names, parents, users


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url", nargs="?")
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--departments", type=int, default=2_000)
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    url, schema = args.url or f"sqlite:///{Path(tempfile.mkdtemp()) / 'directory.db'}", ""
    if url.startswith("postgresql"):
        schema = "bench_dir_" + secrets.token_hex(4)
        with make_engine(url).begin() as conn:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
        url = f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"
    upgrade(make_engine(url))

    names, parents, users = company(args.people, args.departments)
    standin = WeComStandin(corp_id="wwbench", secret="s", agent_id=1, users=users, departments=names, parents=parents)
    del users
    server = ServerThread(standin.app).start()
    settings = Settings(database_url=url, wecom=WeComSettings(corp_id="wwbench", agent_id=1, secret="s", token="t",
                                                              aes_key=AES_KEY, api_base=server.url))
    runtime = Runtime(settings)
    try:
        for label in ("first run", "re-run"):
            baseline = peak_rss_mb()
            started = time.perf_counter()
            lines = 0

            def progress(_line: str) -> None:
                nonlocal lines
                lines += 1

            report = sync_all(runtime, ["wecom"], progress=progress)[0]
            took = time.perf_counter() - started
            print(f"{label}: {took:.1f} s, {report.people_read} people, +{report.people_added} "
                  f"~{report.people_changed} managers ~{report.managers_changed} left {report.people_left}, "
                  f"{report.departments_added} departments added, {lines} progress lines, "
                  f"peak RSS +{max(0.0, peak_rss_mb() - baseline):.0f} MB (process peak {peak_rss_mb():.0f} MB)"
                  + ("" if report.changed or label == "first run" else " — nothing changed"))
        print(f"stand-in calls: {standin.list_calls}")
    finally:
        runtime.close()
        server.stop()
        if schema:
            with make_engine(args.url).begin() as conn:
                conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))


if __name__ == "__main__":
    sys.exit(main())
