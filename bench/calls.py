"""Per-call cost of the webhook's steps, in-process and sequential: CPU and wall time per call.

Complements ack.py on a shared box: CPU time per call moves far less with other load than req/s.
Needs the same PostgreSQL and Redis as ack.py (creates and drops `banli_calls`; Redis db 15).

    python bench/calls.py [--n 3000] [--database-url …] [--redis-url …]

Rows:
- wsgi banli / wsgi baseline: one whole encrypted "帮助" callback through each Flask app's WSGI
  callable (no gunicorn, no HTTP parsing): what each server's view + Flask cost;
- accept: `bot/pipeline.py:accept` as the webhook runs it; accept (Core): the same row through
  SQLAlchemy Core on a connection of the same autocommit pool (the path before the raw INSERT);
- ring, parse_xml (ElementTree) vs xmltodict, decrypt, json.dumps of the payload.
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit

import ack  # bench/ack.py: credentials, peer and database helpers

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def per_call(fn: Callable[[int], object], n: int) -> tuple[float, float]:
    """(CPU ms, wall ms) per call, after n // 5 warm-up calls."""
    for i in range(n // 5):
        fn(i)
    c0, w0 = time.process_time(), time.perf_counter()
    for i in range(n // 5, n // 5 + n):
        fn(i)
    return (time.process_time() - c0) / n * 1e3, (time.perf_counter() - w0) / n * 1e3


def wsgi_caller(app, requests: list[tuple[str, bytes]]) -> Callable[[int], object]:
    def call(i: int) -> object:
        query, body = requests[i]
        environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/wecom/callback", "QUERY_STRING": query,
                   "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1",
                   "CONTENT_LENGTH": str(len(body)), "CONTENT_TYPE": "text/xml", "wsgi.url_scheme": "http",
                   "wsgi.input": io.BytesIO(body), "wsgi.errors": sys.stderr, "wsgi.multithread": True,
                   "wsgi.multiprocess": True, "wsgi.run_once": False, "wsgi.version": (1, 0)}
        status = []
        b"".join(app(environ, lambda s, h, e=None: status.append(s)))
        if not status[0].startswith("200"):
            raise RuntimeError(f"callback answered {status[0]}")
        return status
    return call


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=3000, help="timed calls per row")
    p.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/test")
    p.add_argument("--redis-url", default="redis://127.0.0.1:6379/15")
    args = p.parse_args(argv)
    ack._admin_url = args.database_url
    db_url = ack.reset_database(args.database_url, "banli_calls")
    import os

    os.environ.update(ack.server_env("banli", db_url, args.redis_url))
    import json

    import xmltodict
    from sqlalchemy import text

    import baseline_app
    from bot import pipeline
    from bot.app import create_app
    from bot.wecom.crypto import CallbackCrypto
    from bot.wecom.parse import extract_encrypt, parse_xml, to_event
    from storage import outbox

    peer = ack.make_peer()
    n = args.n
    total = n + n // 5
    banli = create_app()
    runtime = banli.extensions["banli"]
    base = baseline_app.create_app()
    rows: list[tuple[str, tuple[float, float]]] = []
    try:
        rows.append(("wsgi baseline (verify + decrypt)",
                     per_call(wsgi_caller(base, [peer.callback(peer.text(f"u{i % 200}", "帮助"))
                                                  for i in range(total)]), n)))
        rows.append(("wsgi banli (whole view: verify … accept)",
                     per_call(wsgi_caller(banli, [peer.callback(peer.text(f"u{i % 200}", "帮助"))
                                                   for i in range(total)]), n)))
        inner = peer.text("zhangsan", "帮助")
        msg = parse_xml(inner)
        events = [to_event(parse_xml(peer.text(f"u{i % 200}", "帮助"))) for i in range(2 * total)]
        rows.append(("accept (raw psycopg INSERT + ring)", per_call(lambda i: pipeline.accept(runtime, events[i]), n)))

        def core(i: int) -> bool:
            event = events[total + i]
            with runtime.autocommit_engine.begin() as conn:
                return outbox.add(conn, key=pipeline.inbound_key(event), kind="inbound", platform=event.platform,
                                  recipient=event.sender, payload=event.to_dict())
        rows.append(("accept's INSERT through SQLAlchemy Core (before)", per_call(core, n)))
        rows.append(("ring (sets the doorbell flag)", per_call(lambda i: runtime.ring(), n)))
        rows.append(("Redis RPUSH itself (now on the doorbell thread)",
                     per_call(lambda i: runtime.redis.rpush("banli:calls", "1"), n)))
        rows.append(("parse_xml (ElementTree)", per_call(lambda i: parse_xml(inner), n)))
        rows.append(("xmltodict.parse (before)", per_call(lambda i: xmltodict.parse(inner), n)))
        crypto = CallbackCrypto(ack.WECOM_TOKEN, ack.WECOM_AES_KEY, ack.WECOM_CORP_ID)
        encrypt = extract_encrypt(peer.callback(inner)[1])
        rows.append(("CallbackCrypto.decrypt", per_call(lambda i: crypto.decrypt(encrypt), n)))
        payload = to_event(msg).to_dict()
        rows.append(("json.dumps of the payload", per_call(lambda i: json.dumps(payload, ensure_ascii=False), n)))
        with runtime.engine.connect() as conn:
            inbound = conn.execute(text("SELECT count(*) FROM outbox WHERE kind = 'inbound'")).scalar_one()
        expected = total * 3  # the banli wsgi row, accept, accept through Core
        print(f"inbound rows: {inbound} (expected {expected})")
    finally:
        runtime.redis.delete("banli:calls", "banli:doorbell")
        runtime.engine.dispose()
        runtime.autocommit_engine.dispose()
        ack.drop_database("banli_calls")
    print(f"\n{n} calls per row, sequential, {urlsplit(args.database_url).hostname} PostgreSQL\n")
    print("| operation | CPU ms / call | wall ms / call |\n|---|---|---|")
    for name, (cpu, wall) in rows:
        print(f"| {name} | {cpu:.3f} | {wall:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
