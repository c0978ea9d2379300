"""Where does Banli's time go while it acknowledges WeCom callbacks?

Starts Banli under gunicorn exactly as bench/ack.py does (fresh `banli_bench` database, same
credentials, same pre-generated encrypted "帮助" callbacks), warms up, then loads it with wrk while
py-spy samples every gunicorn worker (`--subprocesses --nonblocking`). Two passes:

- cpu:  samples of threads holding the GIL (`--gil`) — the Python work that burns the cores;
- wall: idle samples included (`--idle`) — where a request waits (PostgreSQL round trips, the GIL).

Each sample inside the callback view (bot/wecom/routes.py `receive`) is charged to the first stage
whose frame it contains (STAGES, most specific first); samples outside it are the HTTP server and
Flask. In the wall pass most samples are idle gunicorn threads waiting for work, so read its "share
of view samples" column: where a request's time goes once it is being handled. Raw collapsed stacks
go to bench/out/banli-profile-{cpu,wall}.txt (feed them to flamegraph.pl or speedscope), the tables
to bench/out/banli-profile.md.

    pip install py-spy            # into the venv
    python bench/profile_banli.py [--duration 15] [--configs 2x4] [--connections 8]
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import ack

# (stage, substrings of a frame "function (file:line)"), checked in this order.
STAGES = [
    ("pool checkout + pre-ping", ["do_ping (", "_checkout (sqlalchemy/pool", "checkout (sqlalchemy/pool"]),
    ("redis doorbell (ring)", ["ring (bot/runtime.py"]),
    ("commit", ["commit (sqlalchemy/orm/session.py"]),
    ("record_once (inbound insert)", ["record_once (storage/inbound.py"]),
    ("employee_for (identity lookup)", ["employee_for (workflows/identity.py"]),
    ("router.dispatch (handler + card)", ["dispatch (handlers/router.py"]),
    ("outbox.add (reply row)", ["_reply (bot/pipeline.py"]),
    ("session open/close", ["session_scope (storage/db.py", "__exit__ (sqlalchemy/orm/session.py",
                            "close (sqlalchemy/orm/session.py"]),
    ("signature + decrypt", ["verify (bot/wecom/crypto.py", "decrypt (bot/wecom/crypto.py"]),
    ("xml parse + event", ["parse_xml (bot/wecom/parse.py", "to_event (bot/wecom/parse.py",
                           "extract_encrypt (bot/wecom/parse.py"]),
    ("pipeline other", ["handle (bot/pipeline.py"]),
    ("view other", ["receive (bot/wecom/routes.py"]),
]
CROSS = [("SQLAlchemy, any", "sqlalchemy/"), ("SQLAlchemy ORM layer (sqlalchemy/orm/)", "sqlalchemy/orm/"),
         ("SQLAlchemy statement building, cache keys, compiling (sqlalchemy/sql/)", "sqlalchemy/sql/"),
         ("SQLAlchemy connection pool (sqlalchemy/pool/)", "sqlalchemy/pool/"), ("psycopg", "psycopg/"),
         ("redis-py", "redis/"), ("json", "json/"), ("logging", "logging/")]


def record(pid: int, seconds: int, out: Path, *, idle: bool) -> None:
    cmd = ["py-spy", "record", "--pid", str(pid), "--subprocesses", "--nonblocking", "--rate", "250",
           "--duration", str(seconds), "--format", "raw", "--output", str(out)] + (["--idle"] if idle else ["--gil"])
    subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def summarize(raw: Path) -> tuple[Counter, Counter, int, int]:
    """(stage -> samples, cross-cutting library -> samples, samples in the view, all samples)."""
    stages, cross, in_view, total = Counter(), Counter(), 0, 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        total += n
        if "receive (bot/wecom/routes.py" not in stack:
            stages["outside the view: gunicorn, Flask, werkzeug"] += n
            continue
        in_view += n
        frames = stack.split(";")
        stage = next((name for name, marks in STAGES if any(m in f for f in frames for m in marks)), "?")
        stages[stage] += n
        for name, mark in CROSS:
            if mark in stack:
                cross[name] += n
    return stages, cross, in_view, total


def report(title: str, raw: Path) -> str:
    stages, cross, in_view, total = summarize(raw)
    lines = [f"### {title}: {total} samples, {100 * in_view / max(total, 1):.0f}% inside the callback view", "",
             "| stage | share of all samples | share of view samples |", "|---|---|---|"]
    lines += [f"| {name} | {100 * n / total:.1f}% | "
              + ("" if name.startswith("outside") else f"{100 * n / max(in_view, 1):.1f}%") + " |"
              for name, n in stages.most_common()]
    lines += ["", "| library frames anywhere in a view sample | share of view samples |", "|---|---|"]
    lines += [f"| {name} | {100 * n / max(in_view, 1):.1f}% |" for name, n in cross.most_common()]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    args = ack.parse_args(["--servers", "banli", "--no-readme", *argv])
    ack._admin_url = args.database_url
    ack.OUT_DIR.mkdir(exist_ok=True)
    workers, threads = (int(n) for n in args.configs.split(",")[0].lower().split("x"))
    url_db = ack.reset_database(args.database_url, args.database_name)
    port = ack.free_port()
    url = f"http://127.0.0.1:{port}"
    proc = ack.start_gunicorn("banli", workers, threads, port, ack.server_env("banli", url_db, args.redis_url),
                              ack.OUT_DIR / "banli-profile.log")
    peer, reports = ack.make_peer(), []
    try:
        ack.wait_ready(proc, url)
        warm = ack.OUT_DIR / "warmup.pool"
        ack.write_pool(peer, args.warmup_pool, args.users, warm)
        ack.run_wrk(url, warm, args.warmup, args.connections, args.wrk_threads)
        for mode in ("cpu", "wall"):
            pool = ack.OUT_DIR / "timed.pool"
            ack.write_pool(peer, int(max(args.min_rate, 500) * args.duration * 1.5), args.users, pool)
            ack.wait_for_quiet(args.quiet_wait, ack.children_of(proc.pid) | {proc.pid})
            raw = ack.OUT_DIR / f"banli-profile-{mode}.txt"
            record(proc.pid, args.duration, raw, idle=mode == "wall")
            time.sleep(0.5)  # let py-spy attach before the load starts
            result, _, _ = ack.run_wrk(url, pool, args.duration, args.connections, args.wrk_threads)
            time.sleep(2)  # py-spy writes its file when its --duration is over
            rps = result["completed"] / (result["duration_us"] / 1e6)
            reports.append(report(f"{mode} ({rps:.0f} req/s while sampled, p99 {result['p99_us'] / 1000:.1f} ms)",
                                  raw))
    finally:
        ack.stop_gunicorn(proc)
        ack.clean_redis(args.redis_url)
        if not args.keep_db:
            ack.drop_database(args.database_name)
    text = "\n\n".join(reports)
    (ack.OUT_DIR / "banli-profile.md").write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
