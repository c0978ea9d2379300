"""Photo round trips, embedded mode: how long an invoice photo takes from its callback to Banli's
answer, and a 查看发票 tap to the image message arriving.

Method
------
One Banli in this process, as the tests run it: a new SQLite file, in-process fakeredis, the worker
and dispatcher threads (banli/embedded.py), the web app on a free 127.0.0.1 port, the WeCom stand-in
(bot/wecom/standin.py) on another, a fresh file store in a temporary directory. 张三 files
`报销 招待客户 800`; then for each size (100 KB, 2 MB, 9.5 MB of JPEG-typed bytes, each photo different):

- **photo → answer**: post the image callback (signed and encrypted by WeComPeer before the clock
  starts); time from the 200 to the stand-in receiving 「已附在报销…共 N 张」. It covers the worker's
  media/get download (streamed, cut at the 10 MB limit), the type check, SHA-256, the atomic write
  to the file store, the stored_file row and the reply.
- **查看发票 → image**: after submitting, 王经理 taps 查看发票 on his task card; time from the tap's
  200 to the stand-in receiving the image message/send (the photo read from the store, media/upload
  then message/send), for the request holding only that photo.

Each size `--repeat` times (a fresh request each time). The load average is recorded; the machine is
shared, so the numbers are what this host gave at that moment.

    python bench/photos.py --repeat 3
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from banli.embedded import Embedded  # noqa: E402
from banli.settings import Settings, WeComSettings  # noqa: E402
from bot.app import create_app  # noqa: E402
from bot.runtime import Runtime  # noqa: E402
from bot.serving import ServerThread  # noqa: E402
from bot.wecom.standin import WeComPeer, WeComStandin  # noqa: E402
from storage.db import make_engine  # noqa: E402
from storage.migrate import upgrade  # noqa: E402

TOKEN, AES_KEY, AGENT = "QDG6eK", "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C", 1000002
USERS = {"zhangsan": {"name": "张三", "department": [2], "main_department": 2, "direct_leader": ["wangjl"]},
         "wangjl": {"name": "王经理", "department": [2], "main_department": 2, "direct_leader": []}}
SIZES = (100 * 1024, 2 * 1024 * 1024, int(9.5 * 1024 * 1024))


def wait(predicate, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.005)
    raise SystemExit("timed out")


def jpeg(size: int) -> bytes:
    return b"\xff\xd8\xff\xe0" + secrets.token_bytes(size - 4)


def run(repeat: int) -> dict[int, tuple[list[float], list[float]]]:
    work = Path(tempfile.mkdtemp(prefix="banli-photos-"))
    corp = "wwbench" + secrets.token_hex(4)
    wecom = WeComStandin(corp_id=corp, secret="s", agent_id=AGENT, users=USERS, departments={2: "销售一部"})
    servers = [ServerThread(wecom.app).start()]
    url = f"sqlite:///{work / 'banli.db'}"
    upgrade(make_engine(url))
    settings = Settings(database_url=url, wecom=WeComSettings(corp_id=corp, agent_id=AGENT, secret="s", token=TOKEN,
                                                              aes_key=AES_KEY, api_base=servers[0].url),
                        files_dir=str(work / "files"), dispatch_interval_seconds=0.2, queue_name="bench-photos")
    runtime = Runtime(settings)
    servers.append(ServerThread(create_app(runtime=runtime)).start())
    embedded = Embedded(runtime).start()
    peer = WeComPeer(token=TOKEN, aes_key=AES_KEY, corp_id=corp, agent_id=AGENT)
    base = servers[1].url

    def post(xml: str) -> None:
        query, body = peer.callback(xml)
        assert requests.post(f"{base}/wecom/callback?{query}", data=body, timeout=30).status_code == 200

    def cards(user):
        return [m for m in wecom.messages_to(user) if m["msgtype"] != "image"]

    def arrival(user: str, msgtype_image: bool) -> float:
        """When the stand-in received the latest message/send to `user` of that sort."""
        with wecom.lock:
            pairs = list(zip(wecom.sent, wecom.sent_at))
        return next(t for m, t in reversed(pairs) if m["touser"] == user and (m["msgtype"] == "image") == msgtype_image)

    results: dict[int, tuple[list[float], list[float]]] = {size: ([], []) for size in SIZES}
    taps = 0
    post(peer.text("zhangsan", "帮助"))  # warm-up: employees, directory, token, pools
    wait(lambda: cards("zhangsan"))
    time.sleep(1.0)
    try:
        for round_no in range(repeat):
            for size in SIZES:
                before = len(cards("zhangsan"))
                post(peer.text("zhangsan", f"报销 招待客户 {800 + round_no}"))
                confirm = wait(lambda: len(cards("zhangsan")) > before and cards("zhangsan"))[before]
                xml = peer.image("zhangsan", wecom.add_media(jpeg(size)))
                query, body = peer.callback(xml)
                seen = len(cards("zhangsan"))
                assert requests.post(f"{base}/wecom/callback?{query}", data=body, timeout=30).status_code == 200
                acked = time.monotonic()
                wait(lambda: len(cards("zhangsan")) > seen)
                assert "共 1 张" in str(cards("zhangsan")[-1]), cards("zhangsan")[-1]
                results[size][0].append(arrival("zhangsan", False) - acked)

                taps += 1
                card = confirm["template_card"]
                key = next(b["key"] for b in card["button_list"] if b["text"] == "提交")
                approver = len(cards("wangjl"))
                post(peer.card_click("zhangsan", key, card["task_id"], wecom.issue_response_code(card["task_id"]),
                                     create_time=1_800_000_000 + taps))
                task = wait(lambda: len(cards("wangjl")) > approver and cards("wangjl"))[approver]["template_card"]
                key = next(b["key"] for b in task["button_list"] if b["text"] == "查看发票")
                images = len(wecom.images_to("wangjl"))
                taps += 1
                query, body = peer.callback(peer.card_click("wangjl", key, task["task_id"],
                                                            wecom.issue_response_code(task["task_id"]),
                                                            create_time=1_800_000_000 + taps))
                assert requests.post(f"{base}/wecom/callback?{query}", data=body, timeout=30).status_code == 200
                tapped = time.monotonic()
                wait(lambda: len(wecom.images_to("wangjl")) > images)
                results[size][1].append(arrival("wangjl", True) - tapped)
    finally:
        embedded.stop()
        for server in servers:
            server.stop()
        runtime.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    load = os.getloadavg()[0]
    results = run(args.repeat)
    print(f"load average {load:.2f} at start; {args.repeat} runs per size; ms (median / max)")
    print("| photo | photo → answer | 查看发票 → image |")
    print("|---|---|---|")
    for size, (answers, images) in results.items():
        label = f"{size / 1024:.0f} KB" if size < 1024 * 1024 else f"{size / 1024 / 1024:.1f} MB"
        print(f"| {label} | {statistics.median(answers) * 1000:.0f} / {max(answers) * 1000:.0f} "
              f"| {statistics.median(images) * 1000:.0f} / {max(images) * 1000:.0f} |")


if __name__ == "__main__":
    main()
