"""Where does Banli's time go while it acknowledges WeCom callbacks?

Starts Banli under gunicorn exactly as bench/ack.py does (fresh `banli_bench` database, same
credentials, same pre-generated encrypted "帮助" callbacks), warms up, then loads it with wrk while
py-spy samples every gunicorn worker (`--subprocesses --nonblocking`). Two passes:

- cpu:  samples of threads holding the GIL (`--gil`) — the Python work that burns the cores;
- wall: idle samples included (`--idle`) — where a request waits (PostgreSQL round trips, the GIL).

Each sample inside the callback view (bot/wecom/routes.py `receive`) is charged to the first stage
whose frame it contains (STAGES, most specific first; the hot path is `bot/pipeline.py:accept` →
`storage/outbox.py:add` → `storage/db.py:insert_ignore`, then `bot/runtime.py:ring`); samples
outside it are gunicorn, or Flask/werkzeug. In the wall pass most samples are idle gunicorn threads
waiting for work, so read its "share of view samples" column: where a request's time goes once it
is being handled. Raw collapsed stacks
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

# (stage, substrings of a frame "function (file:line)"), checked in this order. The hot path:
# bot/wecom/routes.py:receive → verify, decrypt, parse → bot/pipeline.py:accept → storage/outbox.py:add
# → storage/db.py:insert_ignore (on PostgreSQL: a pooled autocommit connection's psycopg connection
# runs the cached INSERT … ON CONFLICT DO NOTHING RETURNING id) → bot/runtime.py:ring (sets a flag;
# the Doorbell thread does the Redis RPUSH, counted apart).
STAGES = [
    ("pool checkout / return", ["_checkout (sqlalchemy/pool", "checkout (sqlalchemy/pool",
                                "_finalize_fairy (sqlalchemy/pool", "_return_conn (sqlalchemy/pool",
                                "_reset (sqlalchemy/pool"]),
    ("ring (sets the doorbell thread's flag)", ["ring (bot/runtime.py"]),
    ("commit", ["commit (sqlalchemy/engine/base.py", "_commit_impl (sqlalchemy/engine/base.py"]),
    ("insert_ignore: batched INSERT … RETURNING on psycopg (wait for the batch, execute + fetch)",
     ["insert_ignore (storage/db.py", "(storage/batch_insert.py"]),
    ("engine.begin: connect, BEGIN, close", ["begin (sqlalchemy/engine/base.py", "connect (sqlalchemy/engine/base.py",
                                             "__init__ (sqlalchemy/engine/base.py"]),
    ("outbox.add: row values (json.dumps, utcnow)", ["add (storage/outbox.py"]),
    ("event.to_dict + inbound_key", ["to_dict (handlers/events.py", "inbound_key (bot/pipeline.py"]),
    ("accept other", ["accept (bot/pipeline.py"]),
    ("signature + decrypt", ["verify (bot/wecom/crypto.py", "decrypt (bot/wecom/crypto.py"]),
    ("xml parse + event", ["parse_xml (bot/wecom/parse.py", "to_event (bot/wecom/parse.py",
                           "extract_encrypt (bot/wecom/parse.py"]),
    ("view other", ["receive (bot/wecom/routes.py"]),
]
# A view sample's CPU is charged to the innermost frame that belongs to one of these (first match
# per frame, walking from the leaf up): self time per library, so "SQLAlchemy" means time spent in
# SQLAlchemy's own code, not in psycopg below it.
LIBS = [("SQLAlchemy engine (execute, contexts, transactions)", ["sqlalchemy/engine/"]),
        ("SQLAlchemy sql (compiled params, elements)", ["sqlalchemy/sql/"]),
        ("SQLAlchemy pool", ["sqlalchemy/pool/"]), ("SQLAlchemy, other", ["sqlalchemy/"]),
        ("psycopg", ["psycopg/"]), ("redis-py", ["redis/"]),
        ("wechatpy + cryptography", ["wechatpy/", "cryptography/"]), ("xml.etree", ["xml/etree/"]),
        ("json", ["json/"]), ("dataclasses (asdict)", ["dataclasses.py"]),
        ("werkzeug (request.args, get_data, Response)", ["werkzeug/", "flask/"]),
        ("Banli's own code", ["bot/", "storage/", "handlers/", "cards/"])]


def record(pid: int, seconds: int, out: Path, *, idle: bool) -> subprocess.Popen:
    out.unlink(missing_ok=True)  # never report a previous run's stacks
    cmd = ["py-spy", "record", "--pid", str(pid), "--subprocesses", "--nonblocking", "--rate", "250",
           "--duration", str(seconds), "--format", "raw", "--output", str(out)] + (["--idle"] if idle else ["--gil"])
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def summarize(raw: Path) -> tuple[Counter, Counter, int, int]:
    """(stage -> samples, library (innermost) -> samples, samples in the view, all samples)."""
    stages, cross, in_view, total = Counter(), Counter(), 0, 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        total += n
        if "_run (bot/runtime.py" in stack:  # the Doorbell thread: RPUSHes off the request thread
            stages["outside the view: doorbell thread (Redis RPUSH)"] += n
            continue
        if "receive (bot/wecom/routes.py" not in stack:
            web = "flask/" in stack or "werkzeug/" in stack
            stages["outside the view: " + ("Flask, werkzeug (request context, routing, response)" if web
                                           else "gunicorn (HTTP parsing, sockets, thread pool)")] += n
            continue
        in_view += n
        frames = stack.split(";")
        stage = next((name for name, marks in STAGES if any(m in f for f in frames for m in marks)), "?")
        stages[stage] += n
        lib = next((name for f in reversed(frames) for name, marks in LIBS if any(m in f for m in marks)),
                   "other (stdlib)")
        cross[lib] += n
    return stages, cross, in_view, total


def report(title: str, raw: Path) -> str:
    stages, cross, in_view, total = summarize(raw)
    lines = [f"### {title}: {total} samples, {100 * in_view / max(total, 1):.0f}% inside the callback view", "",
             "| stage | share of all samples | share of view samples |", "|---|---|---|"]
    lines += [f"| {name} | {100 * n / total:.1f}% | "
              + ("" if name.startswith("outside") else f"{100 * n / max(in_view, 1):.1f}%") + " |"
              for name, n in stages.most_common()]
    lines += ["", "| view samples by innermost library (self time) | share of view samples |", "|---|---|"]
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
                              ack.OUT_DIR / "banli-profile.log", args.connections)
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
            spy = record(proc.pid, args.duration, raw, idle=mode == "wall")
            time.sleep(0.5)  # let py-spy attach before the load starts
            result, _, _ = ack.run_wrk(url, pool, args.duration, args.connections, args.wrk_threads)
            # py-spy writes its file when its --duration is over; that can be seconds after wrk ends.
            _, spy_err = spy.communicate(timeout=args.duration + 120)
            if not raw.exists():
                raise RuntimeError(f"py-spy wrote no {raw.name} (exit {spy.returncode}): {spy_err[-500:]}")
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
