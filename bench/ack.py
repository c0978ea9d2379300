"""How fast does Banli acknowledge WeCom callbacks? Encrypted text callbacks per second and p50/p99
time to the HTTP 200, compared with a bare Flask app that only verifies and decrypts.

Method
------
For each gunicorn config (workers x threads, gthread worker class, same for both servers) and each
server — `baseline` (bench/baseline_app.py: wechatpy signature check + decrypt, empty 200) and
`banli` (`bot.app:create_app()` against PostgreSQL and Redis, configured by environment variables):

1. start gunicorn as a subprocess on a free 127.0.0.1 port and wait for GET /healthz;
   for Banli, first drop, recreate and migrate a dedicated database (default `banli_bench`);
   each worker accepts at most its share of wrk's keep-alive connections (`--worker-connections`,
   bench/gunicorn_bench.py): otherwise one worker often grabs most of them and, being one GIL,
   caps the server at about one core — a random halving that decided earlier results;
2. warm up: pre-generate callbacks, run wrk for --warmup seconds (this also creates the
   --users employees, so the timed run measures the steady state: known senders, new messages);
3. pre-generate a fresh pool of distinct callbacks (unique MsgId, text "帮助", round-robin over
   --users senders, timestamp = now, signed and encrypted by bot.wecom.standin.WeComPeer), sized
   from the warm-up rate so the timed run never repeats one; generation happens before timing;
4. run wrk (C, epoll, keep-alive; bench/wrk_callbacks.lua feeds the pool) for --duration seconds
   with --connections connections, closed loop; wrk's latency histogram gives p50/p99, which is the
   time from writing the request to reading the whole response; the Lua script counts non-200s;
5. before timing, wait (--quiet-wait) until other processes leave the machine nearly idle; while
   timing, sample CPU from /proc (each gunicorn process, postgres, redis, wrk, everything else) to
   show whether the load generator or something else competed for the 2 cores;
6. stop gunicorn gracefully (in-flight requests finish), then for Banli check the database:
   `inbound` outbox rows == distinct callbacks sent (warm-up + timed) — nothing lost, nothing
   recorded twice.

The table reports wrk's connections per worker (sampled 1 s into each run), gunicorn's CPU per
request (little moved by other load, unlike req/s), and flags a run during which other work (live
processes, plus busy time no live process accounts for) used >= 10 % of the machine.

Afterwards the bench database is dropped (unless --keep-db) and the Redis keys Banli wrote
(`banli:*`, `rq:queue:banli`) are deleted — in Redis db 15 by default, not db 0, because other
Banli processes on the same Redis (test runs) share key names such as `banli:doorbell`. Results are printed and written into bench/README.md
between the results markers.

    python bench/ack.py                       # defaults: --configs 2x4 --duration 20 --connections 8
    python bench/ack.py --configs 2x4,2x8,4x2 --duration 30
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
OUT_DIR = BENCH_DIR / "out"  # pools and server logs (git-ignored)
README = BENCH_DIR / "README.md"
LUA = BENCH_DIR / "wrk_callbacks.lua"
GUNICORN_CONF = BENCH_DIR / "gunicorn_bench.py"
RESULTS_START, RESULTS_END = "<!-- results:start -->", "<!-- results:end -->"

# WeCom's documented test credentials; nothing here reaches a real WeCom.
WECOM_TOKEN = "QDG6eK"
WECOM_AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
WECOM_CORP_ID = "wwbench0001"
WECOM_AGENT_ID = 1000002

SERVERS = {"baseline": "baseline_app:create_app()", "banli": "bot.app:create_app()"}
TARGET_RATIO, TARGET_P99_MS = 0.5, 50.0
CALLBACK_MAX_AGE = 600  # Banli refuses older callbacks


@dataclass
class Result:
    config: str
    server: str
    wrk: dict
    cpu: dict = field(default_factory=dict)  # share of the whole machine during the timed run, %
    warmup_rps: float = 0.0
    check: dict = field(default_factory=dict)  # Banli's database check

    @property
    def rps(self) -> float:
        return self.wrk["completed"] / (self.wrk["duration_us"] / 1e6)

    @property
    def cpu_ms(self) -> float:
        """gunicorn CPU per completed request, ms (all cores): unlike req/s, barely moved by other load."""
        return self.cpu["server_seconds"] * 1000 / max(self.wrk["completed"], 1)

    @property
    def errors(self) -> int:
        w = self.wrk
        return w["non200"] + w["err_connect"] + w["err_read"] + w["err_write"] + w["err_timeout"]

    def ms(self, key: str) -> float:
        return self.wrk[key] / 1000


# -- machine and backends ---------------------------------------------------------------------------

def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    return {"nproc": os.cpu_count(), "cpu": cpu, "kernel": platform.release(),
            "python": platform.python_version(), "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}


def tool_versions() -> dict:
    import gunicorn
    import psycopg
    import sqlalchemy

    wrk = subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    pg = _admin_query("SHOW server_version")
    return {"wrk": wrk.split(" [")[0].removeprefix("wrk "), "gunicorn": gunicorn.__version__, "postgresql": pg,
            "sqlalchemy": sqlalchemy.__version__, "psycopg": psycopg.__version__}


_admin_url = ""


def _admin_query(sql: str, *, fetch: bool = True):
    import psycopg

    with psycopg.connect(_admin_url, autocommit=True) as conn:
        cur = conn.execute(sql)
        return cur.fetchone()[0] if fetch else None


def bench_database_url(admin_url: str, name: str) -> str:
    base, _, query = admin_url.partition("?")
    scheme, rest = base.split("://", 1)
    host = rest.split("/", 1)[0]
    return f"{scheme}://{host}/{name}" + (f"?{query}" if query else "")


def reset_database(admin_url: str, name: str) -> str:
    """Drop and recreate the bench database, migrate it; returns its URL."""
    drop_database(name)
    _admin_query(f'CREATE DATABASE "{name}"', fetch=False)
    url = bench_database_url(admin_url, name)
    from storage.db import make_engine
    from storage.migrate import upgrade

    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    return url


def drop_database(name: str) -> None:
    _admin_query(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', fetch=False)


def database_counts(url: str) -> dict:
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        one = lambda sql: conn.execute(sql).fetchone()[0]  # noqa: E731
        return {
            "inbound": one("SELECT count(*) FROM outbox WHERE kind = 'inbound'"),
            "pending": one("SELECT count(*) FROM outbox WHERE kind = 'inbound' AND status = 'pending'"),
        }


def clean_redis(url: str) -> int:
    from redis import Redis

    r = Redis.from_url(url)
    keys = ["rq:queue:banli", *r.scan_iter("banli:*")]
    return r.delete(*keys) if keys else 0


# -- callbacks --------------------------------------------------------------------------------------

def make_peer():
    from bot.wecom.standin import WeComPeer

    return WeComPeer(token=WECOM_TOKEN, aes_key=WECOM_AES_KEY, corp_id=WECOM_CORP_ID, agent_id=WECOM_AGENT_ID)


def write_pool(peer, count: int, users: int, path: Path) -> float:
    """`count` distinct encrypted "帮助" callbacks, one per line as "query\\tbody"; returns seconds taken."""
    started, now = time.perf_counter(), int(time.time())
    with path.open("w") as out:
        for i in range(count):
            user = f"bench{i % users:03d}"
            query, body = peer.callback(peer.text(user, "帮助", msg_id=peer.next_msg_id()), timestamp=now)
            out.write(f"{query}\t{body.decode()}\n")
    return time.perf_counter() - started


# -- gunicorn ---------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_env(server: str, database_url: str, redis_url: str) -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("WECOM_", "DINGTALK_", "BANLI_")) and k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(WECOM_CORP_ID=WECOM_CORP_ID, WECOM_AGENT_ID=str(WECOM_AGENT_ID), WECOM_SECRET="bench-secret",
               WECOM_TOKEN=WECOM_TOKEN, WECOM_AES_KEY=WECOM_AES_KEY,
               WECOM_API_BASE="http://127.0.0.1:9")  # never called: no worker runs
    if server == "banli":
        env.update(DATABASE_URL=database_url, REDIS_URL=redis_url)
    return env


def start_gunicorn(server: str, workers: int, threads: int, port: int, env: dict, log: Path,
                   connections: int) -> subprocess.Popen:
    # --worker-connections: each worker takes at most its share of wrk's connections, so they are
    # spread evenly (without it a random 8/0 .. 4/4 split decided the throughput; see GUNICORN_CONF).
    cmd = [sys.executable, "-m", "gunicorn", "-k", "gthread", "-w", str(workers), "--threads", str(threads),
           "--worker-connections", str(math.ceil(connections / workers)), "-c", str(GUNICORN_CONF),
           "-b", f"127.0.0.1:{port}", "--chdir", str(BENCH_DIR), "--log-level", "warning", SERVERS[server]]
    # cwd=bench/: no stray .env is picked up by Settings.from_env.
    return subprocess.Popen(cmd, cwd=BENCH_DIR, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)


def wait_ready(proc: subprocess.Popen, url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {proc.returncode}; see its log in {OUT_DIR}")
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} not ready after {timeout}s")


def stop_gunicorn(proc: subprocess.Popen) -> None:
    """SIGTERM is gunicorn's graceful stop: workers finish in-flight requests first."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=40)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# -- CPU accounting ---------------------------------------------------------------------------------

def process_ticks() -> dict[int, tuple[str, int]]:
    """pid -> (command name, user+system clock ticks) for every process we can read."""
    ticks = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        comm = text[text.index("(") + 1:text.rindex(")")]
        fields = text[text.rindex(")") + 2:].split()
        ticks[int(stat.parent.name)] = (comm, int(fields[11]) + int(fields[12]))
    return ticks


def machine_ticks() -> tuple[int, int, int]:
    """(total, idle+iowait, steal) jiffies summed over all CPUs."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    return sum(values[:8]), values[3] + values[4], values[7]


def cpu_shares(before: tuple, after: tuple, server_pids: set[int], wrk_seconds: float, wall: float) -> dict:
    """Percent of the whole machine (100 % = all cores busy) per consumer during the timed run."""
    (procs0, mach0), (procs1, mach1) = before, after
    hz, cores = os.sysconf("SC_CLK_TCK"), os.cpu_count()
    groups: dict[str, float] = {"server": 0.0, "postgres": 0.0, "redis": 0.0, "other": 0.0}
    others: dict[str, float] = {}
    per_worker = []
    for pid, (comm, ticks) in procs1.items():
        used = (ticks - procs0.get(pid, (comm, 0))[1]) / hz
        group = ("server" if pid in server_pids else "postgres" if comm == "postgres"
                 else "redis" if comm.startswith("redis") else "other")
        groups[group] += used
        if group == "server":
            per_worker.append(100 * used / wall)  # % of one core: a worker is GIL-bound near 100
        if group == "other" and used:
            others[comm] = others.get(comm, 0.0) + used
    shares: dict = {k: 100 * v / (wall * cores) for k, v in groups.items()}
    shares["server_seconds"], shares["postgres_seconds"] = groups["server"], groups["postgres"]
    top = sorted(others.items(), key=lambda kv: -kv[1])[:4]
    shares["workers"] = "/".join(f"{w:.0f}" for w in sorted(per_worker, reverse=True) if w >= 0.5)
    shares["other_top"] = ", ".join(f"{comm} {100 * used / (wall * cores):.0f}%" for comm, used in top)
    shares["wrk"] = 100 * wrk_seconds / (wall * cores)
    total, idle, steal = (a - b for a, b in zip(mach1, mach0))
    shares["machine_busy"] = 100 * (1 - idle / total) if total else 0.0
    shares["steal"] = 100 * steal / total if total else 0.0
    # Busy time no live process accounts for: processes that exited during the run (another test
    # suite's subprocesses), interrupts. Counted with "other" when judging whether a run was clean.
    shares["unattributed"] = max(0.0, shares["machine_busy"] - shares["steal"] - shares["wrk"]
                                 - sum(shares[k] for k in groups))
    return shares


def children_of(pid: int) -> set[int]:
    kids = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        if int(text[text.rindex(")") + 2:].split()[1]) == pid:
            kids.add(int(stat.parent.name))
    return kids


def wait_for_quiet(limit: int, ours: set[int], busy_ceiling: float = 15.0, steal_ceiling: float = 5.0) -> float:
    """Wait (up to `limit` s) until processes other than ours use < `busy_ceiling` % of the machine, and
    the hypervisor steals < `steal_ceiling` % of it, over a 2 s sample — other test runs on a shared
    box, or a busy host, would otherwise skew the numbers. Returns the other processes' %."""
    deadline, busy, steal = time.monotonic() + limit, 100.0, 100.0
    while True:
        p0, m0, t0 = process_ticks(), machine_ticks(), time.monotonic()
        time.sleep(2)
        p1, m1, wall = process_ticks(), machine_ticks(), time.monotonic() - t0
        # Whole-machine busy time minus ours, not a sum over processes: short-lived processes (a test
        # suite's subprocesses) have exited before the second sample and would go unseen.
        total, idle, stolen = (a - b for a, b in zip(m1, m0))
        ours_used = sum(ticks - p0.get(pid, (comm, 0))[1] for pid, (comm, ticks) in p1.items() if pid in ours)
        busy = max(0.0, 100 * (total - idle - stolen) / max(total, 1)
                   - 100 * ours_used / os.sysconf("SC_CLK_TCK") / (wall * os.cpu_count()))
        steal = 100 * stolen / max(total, 1)
        if (busy < busy_ceiling and steal < steal_ceiling) or time.monotonic() > deadline:
            break
        print(f"   machine busy with other work ({busy:.0f}%, {steal:.0f}% steal), waiting ...", flush=True)
    if busy >= busy_ceiling or steal >= steal_ceiling:
        print(f"   WARNING: timing anyway with {busy:.0f}% of the machine used by other processes "
              f"and {steal:.0f}% stolen", flush=True)
    return busy


# -- load -------------------------------------------------------------------------------------------

def worker_connections(port: int, pids: set[int]) -> list[int]:
    """Established client connections to `port` held by each of `pids`, most first."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            f = line.split()
            if f[3] == "01" and int(f[1].rsplit(":", 1)[1], 16) == port:  # 01 = ESTABLISHED
                inodes.add(f"socket:[{f[9]}]")
    counts = []
    for pid in pids:
        n = 0
        try:
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                try:
                    n += os.readlink(fd) in inodes
                except OSError:
                    pass
        except OSError:
            pass
        counts.append(n)
    return sorted(counts, reverse=True)


def run_wrk(url: str, pool: Path, seconds: int, connections: int, threads: int,
            workers: set[int] = frozenset()) -> tuple[dict, float, str]:
    """Run wrk; returns (its BENCH summary, its CPU seconds, its full output). With `workers` (gunicorn
    worker pids), the summary also gets "conns": wrk's connections per worker, 1 s into the run."""
    cmd = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s", "--timeout", "10s",
           "--latency", "-s", str(LUA), url, "--", str(pool), str(threads)]
    used0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    conns = None
    if workers:
        time.sleep(min(1.0, seconds / 4))
        conns = worker_connections(int(url.rsplit(":", 1)[1]), set(workers))
    try:
        out, err = proc.communicate(timeout=seconds + 120)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    used1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {err or out}")
    line = next(line for line in out.splitlines() if line.startswith("BENCH "))
    cpu = (used1.ru_utime - used0.ru_utime) + (used1.ru_stime - used0.ru_stime)
    summary = json.loads(line[len("BENCH "):])
    if conns is not None:
        summary["conns"] = conns
    return summary, cpu, out


def bench_server(server: str, workers: int, threads: int, args, peer, database_url: str) -> Result:
    config = f"{workers}x{threads}"
    print(f"\n== {server}  (gunicorn gthread, {workers} workers x {threads} threads)", flush=True)
    if server == "banli":
        database_url = reset_database(args.database_url, args.database_name)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start_gunicorn(server, workers, threads, port, server_env(server, database_url, args.redis_url),
                          OUT_DIR / f"{server}-{config}.log", args.connections)
    try:
        wait_ready(proc, url)
        warm_pool = OUT_DIR / "warmup.pool"
        write_pool(peer, args.warmup_pool, args.users, warm_pool)
        worker_pids = children_of(proc.pid)
        warm, _, _ = run_wrk(url, warm_pool, args.warmup, args.connections, args.wrk_threads, worker_pids)
        warm_rps = warm["completed"] / (warm["duration_us"] / 1e6)
        print(f"   warm-up: {warm['completed']} requests, {warm_rps:.0f} req/s, connections per worker "
              f"{'/'.join(map(str, warm['conns']))}", flush=True)

        rate = max(warm_rps, args.min_rate)
        size = min(args.max_pool, math.ceil(rate * args.duration * args.pool_factor) + 20 * args.connections)
        pool = OUT_DIR / "timed.pool"
        took = write_pool(peer, size, args.users, pool)
        print(f"   generated {size} distinct callbacks in {took:.1f}s; timing {args.duration}s ...", flush=True)

        server_pids = worker_pids | {proc.pid}
        background = wait_for_quiet(args.quiet_wait, server_pids)
        before = (process_ticks(), machine_ticks())
        started = time.monotonic()
        timed, wrk_cpu, wrk_out = run_wrk(url, pool, args.duration, args.connections, args.wrk_threads,
                                          worker_pids)
        wall = time.monotonic() - started
        after = (process_ticks(), machine_ticks())
        (OUT_DIR / f"{server}-{config}.wrk.txt").write_text(wrk_out)
    finally:
        stop_gunicorn(proc)

    result = Result(config, server, timed, cpu_shares(before, after, server_pids, wrk_cpu, wall), warm_rps)
    result.cpu["background_before"] = background
    if server == "banli":
        result.check = banli_check(database_url, warm, timed, args.users)
    print(f"   {result.rps:.0f} req/s, p50 {result.ms('p50_us'):.1f} ms, p99 {result.ms('p99_us'):.1f} ms, "
          f"errors {result.errors}; gunicorn processes (% of a core) {result.cpu['workers']}, connections "
          f"{'/'.join(map(str, timed['conns']))}; "
          f"other CPU: {result.cpu['other_top'] or '-'}", flush=True)
    return result


def banli_check(database_url: str, warm: dict, timed: dict, users: int) -> dict:
    """Every distinct callback sent is recorded exactly once (as a pending `inbound` outbox row: the
    handler runs in a worker, and none runs during the bench)."""
    counts = database_counts(database_url)
    sent = warm["distinct"] + timed["distinct"]
    counts["distinct_sent"] = sent
    counts["ok"] = (counts["inbound"] == sent == counts["pending"]
                    and warm["non200"] == 0 and timed["non200"] == 0)
    return counts


# -- report -----------------------------------------------------------------------------------------

def table(results: list[Result]) -> str:
    head = ("| config | server | requests | req/s | p50 ms | p90 ms | p99 ms | max ms | errors "
            "| CPU ms/request: gunicorn + postgres | gunicorn processes (% of one core) "
            "| wrk connections per worker "
            "| CPU server / postgres / redis / wrk / other / unattributed (% of machine) |")
    lines = [head, "|---" * (head.count("|") - 1) + "|"]
    for r in results:
        c = r.cpu
        lines.append(f"| {r.config} | {r.server} | {r.wrk['completed']} | {r.rps:.0f} | {r.ms('p50_us'):.1f} "
                     f"| {r.ms('p90_us'):.1f} | {r.ms('p99_us'):.1f} | {r.ms('max_us'):.1f} | {r.errors} "
                     f"| {r.cpu_ms:.2f} + {c['postgres_seconds'] * 1000 / max(r.wrk['completed'], 1):.2f} "
                     f"| {c['workers']} | {'/'.join(map(str, r.wrk.get('conns', [])))} "
                     f"| {c['server']:.0f} / {c['postgres']:.0f} / {c['redis']:.0f} / {c['wrk']:.0f} "
                     f"/ {c['other']:.0f} / {c['unattributed']:.0f} "
                     f"({c['machine_busy']:.0f} busy, {c['steal']:.0f} steal) |")
    return "\n".join(lines)


def noisy_run(r: Result) -> bool:
    """Other work (live processes or busy time none accounts for) used >= 10 % of the machine."""
    return r.cpu["other"] + r.cpu["unattributed"] >= 10


def verdicts(results: list[Result]) -> list[str]:
    lines = [f"- {r.config} {r.server}: **{r.wrk['issued'] - r.wrk['distinct']} of {r.wrk['issued']} timed requests "
             f"repeated a callback** (pool too small; raise --min-rate)" for r in results
             if r.wrk["issued"] > r.wrk["distinct"]]
    lines += [f"- {r.config} {r.server}: **other work used {r.cpu['other'] + r.cpu['unattributed']:.0f} % of the "
              f"machine during the timed run** (live processes: {r.cpu['other_top']}; exited or unattributed "
              f"{r.cpu['unattributed']:.0f} %); this row is not comparable" for r in results
              if noisy_run(r)]
    for config in dict.fromkeys(r.config for r in results):
        pair = {r.server: r for r in results if r.config == config}
        if {"baseline", "banli"} <= pair.keys():
            base, banli = pair["baseline"], pair["banli"]
            ratio = banli.rps / base.rps
            ok = ratio >= TARGET_RATIO and banli.ms("p99_us") < TARGET_P99_MS
            noisy = [r.server for r in (base, banli) if noisy_run(r)]
            lines.append(f"- {config}: banli/baseline throughput **{ratio:.2f}x**, banli p99 "
                         f"{banli.ms('p99_us'):.1f} ms → target {'**met**' if ok else '**missed**'} "
                         f"(gunicorn CPU per request: baseline {base.cpu_ms:.2f} ms, banli {banli.cpu_ms:.2f} ms "
                         f"= {base.cpu_ms / banli.cpu_ms:.2f}x)"
                         + (f" — **not a valid comparison**: other work on the machine during the "
                            f"{' and '.join(noisy)} run; run again" if noisy else ""))
        if "banli" in pair:
            chk = pair["banli"].check
            lines.append(f"- {config}: Banli database check {'ok' if chk['ok'] else '**FAILED**'} — "
                         f"{chk['distinct_sent']} distinct callbacks sent (warm-up + timed), "
                         f"{chk['inbound']} inbound rows, each once (unique key), all pending for a worker")
    return lines


def results_markdown(results: list[Result], info: dict, versions: dict, args) -> str:
    return "\n".join([
        f"Run {info['date']} on {info['nproc']} × {info['cpu']} (kernel {info['kernel']}, Python {info['python']}); "
        + ", ".join(f"{k} {v}" for k, v in versions.items()) + ".",
        "",
        f"Command: `{' '.join(['python bench/ack.py', *args.argv])}` — gunicorn gthread, wrk {args.wrk_threads} thread(s) × {args.connections} connections (closed loop, "
        f"keep-alive), warm-up {args.warmup}s, timed {args.duration}s, {args.users} senders.",
        "",
        table(results),
        "",
        f"Target: Banli ≥ {TARGET_RATIO}× baseline throughput with p99 < {TARGET_P99_MS:.0f} ms.",
        "",
        *verdicts(results),
    ])


def update_readme(markdown: str) -> None:
    text = README.read_text() if README.exists() else f"# Benchmarks\n\n{RESULTS_START}\n{RESULTS_END}\n"
    block = f"{RESULTS_START}\n{markdown}\n{RESULTS_END}"
    if RESULTS_START in text:
        text = re.sub(re.escape(RESULTS_START) + ".*?" + re.escape(RESULTS_END), lambda _: block, text, flags=re.S)
    else:
        text += "\n" + block + "\n"
    README.write_text(text)


# -- main -------------------------------------------------------------------------------------------

def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--configs", default="2x4", help="gunicorn WORKERSxTHREADS, comma-separated (default 2x4)")
    p.add_argument("--servers", default="baseline,banli", help="which servers, in order (default both)")
    p.add_argument("--duration", type=int, default=20, help="timed seconds per server (default 20)")
    p.add_argument("--warmup", type=int, default=5, help="warm-up seconds per server (default 5)")
    p.add_argument("--connections", type=int, default=8, help="wrk connections, closed loop (default 8)")
    p.add_argument("--wrk-threads", type=int, default=1, help="wrk threads (default 1)")
    p.add_argument("--users", type=int, default=200, help="distinct senders (default 200)")
    p.add_argument("--warmup-pool", type=int, default=6000, help="callbacks generated for the warm-up")
    p.add_argument("--pool-factor", type=float, default=2.0,
                   help="timed pool = max(warm-up rate, --min-rate) x duration x this (default 2)")
    p.add_argument("--min-rate", type=float, default=1000, help="floor for the pool estimate (req/s)")
    p.add_argument("--quiet-wait", type=int, default=120,
                   help="wait up to this many seconds for other load on the machine to stop before timing")
    p.add_argument("--max-pool", type=int, default=150_000, help="cap on the timed pool")
    p.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/test",
                   help="an existing database on the server to use; the bench creates its own next to it")
    p.add_argument("--database-name", default="banli_bench", help="dropped and recreated each run")
    p.add_argument("--redis-url", default="redis://127.0.0.1:6379/15",
                   help="a Redis database of its own: banli:* keys in it are deleted afterwards (default db 15)")
    p.add_argument("--keep-db", action="store_true", help="leave the bench database for inspection")
    p.add_argument("--no-readme", action="store_true", help="print only; leave bench/README.md alone")
    args = p.parse_args(argv)
    args.argv = argv
    if args.warmup + args.duration + 60 > CALLBACK_MAX_AGE:
        p.error(f"warm-up + duration must stay well under Banli's {CALLBACK_MAX_AGE}s callback window")
    if args.database_name == args.database_url.rsplit("/", 1)[-1].split("?")[0]:
        p.error("--database-name must differ from the database in --database-url (it is dropped)")
    return args


def main(argv: list[str]) -> int:
    global _admin_url
    args = parse_args(argv)
    for tool in ("wrk",):
        if not shutil.which(tool):
            print(f"{tool} not found: apt-get install -y {tool}")
            return 2
    _admin_url = args.database_url
    OUT_DIR.mkdir(exist_ok=True)
    info, versions = machine(), tool_versions()
    print(f"{info['nproc']} × {info['cpu']}, {info['date']}; " + ", ".join(f"{k} {v}" for k, v in versions.items()))

    peer, results = make_peer(), []
    bench_url = bench_database_url(args.database_url, args.database_name)
    try:
        for config in args.configs.split(","):
            workers, threads = (int(n) for n in config.lower().split("x"))
            for server in args.servers.split(","):
                results.append(bench_server(server, workers, threads, args, peer, bench_url))
    finally:
        removed = clean_redis(args.redis_url)
        print(f"\nredis: deleted {removed} banli key(s)")
        if not args.keep_db:
            drop_database(args.database_name)

    markdown = results_markdown(results, info, versions, args)
    print("\n" + markdown)
    if not args.no_readme:
        update_readme(markdown)
        print(f"\nwritten to {README.relative_to(BENCH_DIR.parent)}")
    ok = all(r.check.get("ok", True) for r in results)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
