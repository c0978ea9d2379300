"""Reply time: from the callback's HTTP 200 coming back to the WeCom API (the local stand-in) receiving
Banli's reply (message/send), in embedded mode and in production mode.

Method
------
For each mode, `--repeat` times, with fresh state each time:

- **embedded**: `banli web` with no REDIS_URL on a new SQLite file (one gunicorn process; the worker
  and dispatcher are threads in it, the queue is in-process fakeredis);
- **production**: the Procfile's processes on a new PostgreSQL database (created on --admin-url,
  dropped afterwards) and a private `redis-server` started on a free port (never the shared 6379):
  `banli db upgrade` (release), then gunicorn with the Procfile's options (gthread, 8 threads,
  2 workers; bound to 127.0.0.1 instead of 0.0.0.0), `banli worker` and `banli dispatcher`, all with
  their default settings.

The WeCom stand-in (bot/wecom/standin.py) runs in this process on a free 127.0.0.1 port; it records
`time.monotonic()` as each message/send arrives (`sent_at`). Every employee has a directory entry
there, and before timing each person sends one warm-up `帮助` (not counted): it creates the employee
row, the access token, connection pools. Callbacks are signed and encrypted with `WeComPeer`
(wechatpy) before the clock starts. Then, for each kind of message (`帮助` → the menu card;
`报销 出租车 86.5` → a draft and its confirmation card):

- **sequential**: `--count` messages from one person, one after another: post, take
  `time.monotonic()` when the 200 has been read, wait until the stand-in has the reply (as many
  message/sends as that kind produced in warm-up), then the next. Reply time = the first reply's
  receive time − the 200's time. p50 / p95 / max.
- **burst**: 7 other people × 3 messages = 21 callbacks posted at once from 21 threads (a barrier
  releases them). Time = the last reply's receive time − the moment the first post started.

The machine is shared: the load average (`uptime`) is recorded before each run, and CPU is sampled
from /proc over each kind's sequential + burst part — this bench's processes, PostgreSQL, and
everything else (machine busy time minus those two), as % of the whole machine. Results go to
bench/README.md between the latency markers.

    python bench/latency.py                       # both modes, twice each
    python bench/latency.py --modes production --repeat 1 --count 20
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import requests

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
OUT_DIR = BENCH_DIR / "out" / "latency"
README = BENCH_DIR / "README.md"
START, END = "<!-- latency:start -->", "<!-- latency:end -->"
sys.path.insert(0, str(ROOT))

TOKEN, AES_KEY, CORP, AGENT, SECRET = "QDG6eK", "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C", "wwlatency01", 1000002, "s3cret"
KINDS = {"help": "帮助", "expense": "报销 出租车 86.5"}
SOLO = "lat00"
CROWD = [f"lat{i:02d}" for i in range(1, 8)]
USERS = {u: {"name": f"员工{u[-2:]}", "department": [2], "main_department": 2, "direct_leader": ["latboss"]}
         for u in [SOLO, *CROWD]}
USERS["latboss"] = {"name": "赵总", "department": [1], "main_department": 1, "direct_leader": []}
DEPARTMENTS = {1: "总经办", 2: "销售一部"}
TARGET_P50_MS, TARGET_BURST_S = 100.0, 1.5


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def load() -> str:
    """The 1, 5 and 15 minute load averages, as `uptime` shows them."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def _ticks() -> dict[int, tuple[int, str, int]]:
    """pid -> (parent pid, command name, user+system clock ticks) for every readable process."""
    out = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        comm, fields = text[text.index("(") + 1:text.rindex(")")], text[text.rindex(")") + 2:].split()
        out[int(stat.parent.name)] = (int(fields[1]), comm, int(fields[11]) + int(fields[12]))
    return out


def _machine() -> tuple[int, int]:
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    return sum(values[:8]), values[3] + values[4]


class CpuSample:
    """Shares of the whole machine (100 % = every core busy) over a timed run: this bench's own
    processes (this one, the Banli processes, their children, our redis-server), PostgreSQL (all
    backends: the server is shared), and everything else (other work on the shared box, counted as
    machine busy time minus the two, so processes that came and went are included)."""

    def __init__(self, roots: list[int]) -> None:
        self.roots, self.p0, self.m0 = set(roots), _ticks(), _machine()

    def done(self) -> dict[str, float]:
        p1, m1 = _ticks(), _machine()
        ours, changed = set(self.roots), True
        while changed:
            kids = {pid for pid, (ppid, _, _) in p1.items() if ppid in ours and pid not in ours}
            ours |= kids
            changed = bool(kids)
        used = {"ours": 0, "postgres": 0}
        for pid, (_, comm, ticks) in p1.items():
            delta = ticks - self.p0.get(pid, (0, comm, 0))[2]
            if pid in ours:
                used["ours"] += delta
            elif comm == "postgres":
                used["postgres"] += delta
        total, idle = m1[0] - self.m0[0], m1[1] - self.m0[1]
        # /proc/<pid>/stat and /proc/stat count in the same clock ticks (USER_HZ), all cores summed.
        shares = {k: 100 * v / total for k, v in used.items()} if total else {"ours": 0.0, "postgres": 0.0}
        shares["busy"] = 100 * (1 - idle / total) if total else 0.0
        shares["other"] = max(0.0, shares["busy"] - shares["ours"] - shares["postgres"])
        # CPU ms spent by each root's process tree (gunicorn's workers count with their arbiter).
        hz = os.sysconf("SC_CLK_TCK")
        for root in self.roots:
            tree, changed = {root}, root != os.getpid()  # this process alone: the others are its children
            while changed:
                kids = {pid for pid, (ppid, _, _) in p1.items() if ppid in tree and pid not in tree}
                tree |= kids
                changed = bool(kids)
            shares[f"ms_{root}"] = 1000 * sum(p1[pid][2] - self.p0.get(pid, (0, "", 0))[2]
                                              for pid in tree if pid in p1) / hz
        shares["ms_postgres"] = 1000 * used["postgres"] / hz
        return shares


def base_env(database_url: str, api: str) -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("WECOM_", "DINGTALK_", "BANLI_"))
           and k not in ("DATABASE_URL", "REDIS_URL", "PORT", "WEB_CONCURRENCY")}
    env.update(DATABASE_URL=database_url, WECOM_CORP_ID=CORP, WECOM_AGENT_ID=str(AGENT), WECOM_SECRET=SECRET,
               WECOM_TOKEN=TOKEN, WECOM_AES_KEY=AES_KEY, WECOM_API_BASE=api)
    return env


def spawn(cmd: list[str], env: dict, log: Path) -> subprocess.Popen:
    # cwd = bench/out/latency: no stray .env is read.
    return subprocess.Popen(cmd, cwd=OUT_DIR, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def stop(*procs: subprocess.Popen) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def wait_healthy(url: str, procs: list[subprocess.Popen], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for p in procs:
            if p.poll() is not None:
                raise RuntimeError(f"{p.args} exited with {p.returncode}; logs in {OUT_DIR}")
        try:
            if requests.get(url + "/healthz", timeout=1).ok:
                return
        except requests.RequestException:
            time.sleep(0.1)
    raise RuntimeError(f"{url} not healthy after {timeout}s")


class RedisServer:
    def __init__(self) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            [shutil.which("redis-server") or "redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", str(OUT_DIR)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        import redis

        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if redis.Redis(port=self.port, socket_connect_timeout=0.2).ping():
                    return
            except redis.RedisError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()


class Postgres:
    def __init__(self, admin_url: str) -> None:
        import psycopg

        self.admin_url, self.name = admin_url, f"banli_latency_{os.getpid()}"
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{self.name}"')
        host = admin_url.split("://", 1)[1].split("/", 1)[0]
        self.url = f"postgresql://{host}/{self.name}"

    def drop(self) -> None:
        import psycopg

        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


class Stack:
    """The stand-in, the Banli processes and their backends for one run."""

    def __init__(self, mode: str, admin_url: str, run: int) -> None:
        from bot.serving import ServerThread
        from bot.wecom.standin import WeComPeer, WeComStandin

        self.mode = mode
        self.standin = WeComStandin(corp_id=CORP, secret=SECRET, agent_id=AGENT, users=USERS,
                                    departments=DEPARTMENTS)
        # Waiting for a reply must not burn a core: a spin-poll here cost ~50 ms of CPU per reply on
        # the same 2 cores Banli runs on. The stand-in's answer to each send wakes the waiters instead.
        self.arrived = threading.Condition()

        @self.standin.app.after_request
        def _wake(response):
            with self.arrived:
                self.arrived.notify_all()
            return response

        self.api = ServerThread(self.standin.app).start()
        self.peer = WeComPeer(token=TOKEN, aes_key=AES_KEY, corp_id=CORP, agent_id=AGENT)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.procs: list[subprocess.Popen] = []
        self.names = ["banli web (gunicorn)"] if mode == "embedded" else ["gunicorn web", "worker", "dispatcher"]
        self.redis = self.pg = None
        banli = [sys.executable, "-m", "banli.cli"]
        tag = f"{mode}-{run}"
        if mode == "embedded":
            db = OUT_DIR / f"{tag}.db"
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(f"{db}{suffix}").unlink(missing_ok=True)
            env = base_env(f"sqlite:///{db}", self.api.url)
            self.procs.append(spawn([*banli, "web", "--host", "127.0.0.1", "--port", str(self.port)], env,
                                    OUT_DIR / f"{tag}-web.log"))
        else:
            self.pg, self.redis = Postgres(admin_url), RedisServer()
            env = base_env(self.pg.url, self.api.url) | {"REDIS_URL": self.redis.url}
            subprocess.run([*banli, "db", "upgrade"], cwd=OUT_DIR, env=env, check=True, capture_output=True)
            # The Procfile's web line, bound to 127.0.0.1 (load tests stay on the loopback).
            web = [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{self.port}", "--worker-class",
                   "gthread", "--threads", "8", "--workers", "2", "bot.app:create_app()"]
            self.procs.append(spawn(web, env, OUT_DIR / f"{tag}-web.log"))
            self.procs.append(spawn([*banli, "worker"], env, OUT_DIR / f"{tag}-worker.log"))
            self.procs.append(spawn([*banli, "dispatcher"], env, OUT_DIR / f"{tag}-dispatcher.log"))
        wait_healthy(self.url, self.procs)

    def close(self) -> None:
        stop(*self.procs)
        self.api.stop()
        if self.redis:
            self.redis.stop()
        if self.pg:
            self.pg.drop()

    # -- traffic --------------------------------------------------------------------------------
    def callback(self, user: str, text: str) -> tuple[str, bytes]:
        return self.peer.callback(self.peer.text(user, text, msg_id=self.peer.next_msg_id()))

    def post(self, session: requests.Session, cb: tuple[str, bytes]) -> float:
        query, body = cb
        answer = session.post(f"{self.url}/wecom/callback?{query}", data=body, timeout=10)
        acked = time.monotonic()
        if answer.status_code != 200:
            raise RuntimeError(f"callback answered {answer.status_code}: {answer.text[:200]}")
        return acked

    def replies(self, users: set[str], since: int) -> list[float]:
        with self.standin.lock:
            return [t for m, t in zip(self.standin.sent[since:], self.standin.sent_at[since:]) if m["touser"] in users]

    def wait_replies(self, users: set[str], since: int, count: int, timeout: float = 20) -> list[float]:
        deadline = time.monotonic() + timeout
        with self.arrived:
            while (left := deadline - time.monotonic()) > 0:
                got = self.replies(users, since)
                if len(got) >= count:
                    return got
                self.arrived.wait(min(left, 0.05))
        raise RuntimeError(f"only {len(self.replies(users, since))} of {count} replies within {timeout}s")

    def warm_up(self, session: requests.Session) -> dict[str, int]:
        """One 帮助 per person; then one of each kind from SOLO to learn how many sends a reply is."""
        since = len(self.standin.sent)
        for user in [SOLO, *CROWD]:
            self.post(session, self.callback(user, KINDS["help"]))
        self.wait_replies({SOLO, *CROWD}, since, 1 + len(CROWD))
        sends = {}
        for kind, text in KINDS.items():
            since = len(self.standin.sent)
            self.post(session, self.callback(SOLO, text))
            self.wait_replies({SOLO}, since, 1)
            time.sleep(1.0)  # anything else this message sends
            sends[kind] = len(self.replies({SOLO}, since))
        time.sleep(0.5)
        return sends

    def last_reply_title(self, user: str) -> str:
        m = self.standin.messages_to(user)[-1]
        return m["template_card"]["main_title"]["title"] if m["msgtype"] == "template_card" else m["msgtype"]

    def sequential(self, session: requests.Session, text: str, sends: int, count: int) -> list[float]:
        pool = [self.callback(SOLO, text) for _ in range(count)]  # signed before timing
        times = []
        for cb in pool:
            since = len(self.standin.sent)
            acked = self.post(session, cb)
            got = self.wait_replies({SOLO}, since, sends)
            times.append(got[0] - acked)
        return times

    def burst(self, text: str, sends: int, each: int) -> dict:
        jobs = [(user, self.callback(user, text)) for user in CROWD for _ in range(each)]
        sessions = [requests.Session() for _ in jobs]
        for s in sessions:  # open each connection before the clock starts
            s.get(self.url + "/healthz", timeout=5)
        barrier = threading.Barrier(len(jobs) + 1)
        acks: list[float] = []
        errors: list[str] = []

        def fire(session, cb):
            barrier.wait()
            try:
                acks.append(self.post(session, cb))
            except Exception as exc:  # noqa: BLE001
                errors.append(repr(exc))

        threads = [threading.Thread(target=fire, args=(s, cb)) for s, (_, cb) in zip(sessions, jobs)]
        for t in threads:
            t.start()
        since = len(self.standin.sent)
        started = time.monotonic()
        barrier.wait()
        for t in threads:
            t.join()
        if errors:
            raise RuntimeError(f"burst posts failed: {errors[:3]}")
        got = self.wait_replies(set(CROWD), since, sends * len(jobs))
        return {"total": max(got) - started, "last_ack": max(acks) - started, "first_reply": min(got) - started}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def run_once(mode: str, run: int, args) -> list[dict]:
    before = load()
    stack = Stack(mode, args.admin_url, run)
    rows = []
    try:
        session = requests.Session()
        sends = stack.warm_up(session)
        roots = [os.getpid(), *(p.pid for p in stack.procs)] + ([stack.redis.proc.pid] if stack.redis else [])
        names = {os.getpid(): "bench + stand-in", **{p.pid: n for p, n in zip(stack.procs, stack.names)}}
        if stack.redis:
            names[stack.redis.proc.pid] = "redis"
        for kind in args.kinds:
            cpu = CpuSample(roots)
            seq_cpu = CpuSample(roots)
            seq = stack.sequential(session, KINDS[kind], sends[kind], args.count)
            per = seq_cpu.done()
            split = ", ".join(f"{names[r]} {per[f'ms_{r}'] / args.count:.1f}" for r in roots) + \
                f", postgres {per['ms_postgres'] / args.count:.1f} (all backends)"
            print(f"  sequential CPU ms per reply: {split}; other load {per['other']:.0f}% of the machine",
                  flush=True)
            title = stack.last_reply_title(SOLO)
            time.sleep(0.5)
            b = stack.burst(KINDS[kind], sends[kind], args.each)
            shares = cpu.done()
            time.sleep(0.5)
            rows.append({"mode": mode, "run": run, "kind": kind, "sends": sends[kind], "load": before, "title": title, **{f"cpu_{k}": v for k, v in shares.items()},
                         "p50": 1000 * statistics.median(seq), "p95": 1000 * pct(seq, 0.95),
                         "max": 1000 * max(seq), "min": 1000 * min(seq), **b})
            r = rows[-1]
            print(f"{mode:10} run {run} {kind:7} reply {r['title']!r} x{r['sends']}  seq p50 {r['p50']:6.1f}  "
                  f"p95 {r['p95']:6.1f}  max {r['max']:6.1f} ms   burst {r['total']:.3f} s "
                  f"(last 200 at {r['last_ack']:.3f}, first reply {r['first_reply']:.3f})   load {before}  "
                  f"cpu ours {r['cpu_ours']:.0f}% postgres {r['cpu_postgres']:.0f}% other {r['cpu_other']:.0f}%",
                  flush=True)
    finally:
        stack.close()
    return rows


def table(rows: list[dict], args) -> str:
    lines = [f"`python bench/latency.py` — {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores; "
             f"sequential n={args.count} from one person, burst {len(CROWD)} people × {args.each}.", "",
             "| mode | run | message | reply | seq p50 ms | p95 ms | max ms | burst s | last 200 at s | "
             "p50 ≤ 100 | burst ≤ 1.5 | load avg before | CPU ours / pg / other |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        burst_ok = ("yes" if r["total"] <= TARGET_BURST_S else "**no**") if r["mode"] == "production" else "(n/a)"
        lines.append(f"| {r['mode']} | {r['run']} | {KINDS[r['kind']]} | {r['title']} ×{r['sends']} | {r['p50']:.1f} | "
                     f"{r['p95']:.1f} | {r['max']:.1f} | {r['total']:.3f} | {r['last_ack']:.3f} | "
                     f"{'yes' if r['p50'] <= TARGET_P50_MS else '**no**'} | {burst_ok} | {r['load']} | "
                     f"{r['cpu_ours']:.0f} / {r['cpu_postgres']:.0f} / {r['cpu_other']:.0f} % |")
    return "\n".join(lines)


def write_readme(text: str) -> None:
    body = README.read_text()
    if START in body and END in body:
        head, rest = body.split(START, 1)
        body = head + START + "\n" + text + "\n" + END + rest.split(END, 1)[1]
    else:
        body += f"\n{START}\n{text}\n{END}\n"
    README.write_text(body)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--modes", default="embedded,production")
    p.add_argument("--kinds", default="help,expense")
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--count", type=int, default=50, help="sequential messages per kind")
    p.add_argument("--each", type=int, default=3, help="burst messages per person")
    p.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    p.add_argument("--no-readme", action="store_true")
    args = p.parse_args()
    args.kinds = args.kinds.split(",")
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    import logging

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the stand-in's access log
    rows = []
    for run in range(1, args.repeat + 1):
        for mode in args.modes.split(","):
            rows += run_once(mode, run, args)
    text = table(rows, args)
    print(text)
    if not args.no_readme:
        write_readme(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
