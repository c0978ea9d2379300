"""`banli demo` and its simulator, through the simulator's JSON API (no browser).

The demo is always embedded (SQLite + in-process queue), whatever backend the rest of the suite
uses; each test builds its own demo on a free port, in-process, except the one that runs the real
`banli demo` command.
"""

from __future__ import annotations

import io
import json
import os
import re
import secrets
import subprocess
import sys
import time
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from sqlalchemy import text

from banli.cron import CRON_JOBS
from bot.serving import ServerThread
from bot.wecom.standin import WeComPeer
from cards import Card
from conftest import wait_for
from servers import free_port, wait_healthy
from sim.demo import Demo, build_demo, prepare_database
from sim.platforms import AGENT_ID, WECOM_AES_KEY, WECOM_TOKEN
from sim.seed import PEOPLE
from storage import outbox
from storage.db import session_scope

REP = next(p for p in PEOPLE if p.role == "rep")
MANAGER = next(p for p in PEOPLE if p.key == REP.manager_key)


class SimClient:
    """The simulator page's calls, made from Python."""

    def __init__(self, url: str, demo: Demo) -> None:
        self.url, self.demo = url, demo

    def send(self, platform: str, person: str, words: str) -> dict:
        return self._post("/sim/api/send", platform=platform, person=person, text=words)

    def tap(self, platform: str, person: str, **fields: str) -> dict:
        return self._post("/sim/api/tap", platform=platform, person=person, **fields)

    def chat(self, platform: str, person: str) -> dict:
        answer = requests.get(f"{self.url}/sim/api/chat", params={"platform": platform, "person": person}, timeout=10)
        answer.raise_for_status()
        return answer.json()

    def bot_messages(self, platform: str, person: str) -> list[dict]:
        return [m for m in self.chat(platform, person)["messages"] if m["who"] == "bot"]

    def wait_bot(self, platform: str, person: str, count: int) -> list[dict]:
        """The first `count` bot messages, once there are that many."""
        return wait_for(lambda: (lambda got: got[:count] if len(got) >= count else None)(
            self.bot_messages(platform, person)), timeout=15)

    def _post(self, path: str, **body: str) -> dict:
        answer = requests.post(self.url + path, json=body, timeout=15)
        assert answer.status_code == 200, answer.text
        return answer.json()


@pytest.fixture
def demo_factory(tmp_path):
    running: list[tuple[Demo, ServerThread]] = []

    def build(**options) -> SimClient:
        database_url = f"sqlite:///{tmp_path / f'demo{len(running)}.db'}"
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        tenant = secrets.token_hex(3)
        demo = build_demo(base_url=url, database_url=database_url, queue_name=f"banli-demo-{tenant}",
                          tenant=tenant, **options)
        # 14:00 business time: past the 08:00 digest's catch-up window, so only what a test does
        # reaches anyone's screen, whenever the suite runs.
        demo.clock.jump_to(14)
        prepare_database(database_url, now=demo.clock())
        _no_background_alerts(demo)
        server = ServerThread(demo.wsgi, port=port).start()
        running.append((demo, server))
        demo.start()
        return SimClient(url, demo)

    yield build
    for demo, server in running:
        demo.stop()
        server.stop()
        demo.runtime.close()


@pytest.fixture
def sim(demo_factory) -> SimClient:
    return demo_factory()


def _title(message: dict) -> str:
    """A bot message's title, whatever form the platform gave it."""
    if message["kind"] == "wecom_card":
        return message["card"]["main_title"]["title"]
    if message["kind"] == "dt_card":
        return message["card"]["title"]
    if message["kind"] == "markdown":
        return message["title"]
    return message.get("text", "")


def _button(card_message: dict, label: str) -> dict:
    return next(b for b in card_message["card"]["button_list"] if b["text"] == label)


# -- the menu and a tap, on each platform --------------------------------------------------------

def test_help_shows_the_menu_card_on_wecom_and_tapping_expense_opens_the_expense_form(sim):
    assert sim.send("wecom", REP.key, "帮助") == {"ok": True, "status": 200}
    menu = sim.wait_bot("wecom", REP.key, 1)[0]
    assert menu["kind"] == "wecom_card" and _title(menu) == "办理 · 主菜单"
    assert REP.name in menu["card"]["sub_title_text"]  # the seeded directory names the rep

    answer = sim.tap("wecom", REP.key, card_id=menu["card_id"], key=_button(menu, "报销")["key"], label="报销")
    assert answer["ok"]
    expense = sim.wait_bot("wecom", REP.key, 2)[1]
    assert _title(expense) == "报销"
    assert "报销多少钱" in expense["card"]["sub_title_text"]  # the expense form asks its first question
    mine = [m for m in sim.chat("wecom", REP.key)["messages"] if m["who"] != "bot"]
    assert [(m["kind"], m["text"]) for m in mine] == [("text", "帮助"), ("note", "你点了「报销」")]


def test_help_shows_the_markdown_menu_on_dingtalk_and_its_link_sends_the_words(sim):
    sim.send("dingtalk", REP.key, "帮助")
    menu = sim.wait_bot("dingtalk", REP.key, 1)[0]
    assert menu["kind"] == "markdown" and menu["text"].startswith("### 办理 · 主菜单")
    assert "[报销](dtmd://dingtalkclient/sendMessage?content=%E6%8A%A5%E9%94%80)" in menu["text"]
    # The page turns that link into a button that sends its content as the user, as DingTalk does.
    sim.send("dingtalk", REP.key, "报销")
    assert _title(sim.wait_bot("dingtalk", REP.key, 2)[1]) == "报销"
    # Each platform keeps its own conversation.
    assert sim.chat("wecom", REP.key)["messages"] == []


def test_dingtalk_template_cards_are_shown_as_cards_and_taps_go_to_the_card_callback(demo_factory):
    sim = demo_factory(dingtalk_cards=True)
    sim.send("dingtalk", REP.key, "帮助")
    menu = sim.wait_bot("dingtalk", REP.key, 1)[0]
    assert menu["kind"] == "dt_card" and _title(menu) == "办理 · 主菜单"
    button = next(b for b in json.loads(menu["card"]["buttons"]) if b["text"] == "报销")
    sim.tap("dingtalk", REP.key, card_id=menu["card_id"], action=button["action"], value=button["value"], label="报销")
    assert _title(sim.wait_bot("dingtalk", REP.key, 2)[1]) == "报销"
    inbound = _outbox(sim.demo, "inbound")
    assert inbound[-1]["payload"]["reply"] == {"out_track_id": menu["card_id"]}  # it came in via /dingtalk/card


def test_the_page_switches_dingtalk_between_markdown_and_interactive_cards_and_both_taps_work(sim):
    assert sim.chat("dingtalk", REP.key)["dingtalk_cards"] is False  # a company without a card template
    sim.send("dingtalk", REP.key, "帮助")
    markdown = sim.wait_bot("dingtalk", REP.key, 1)[0]
    assert markdown["kind"] == "markdown"

    assert sim._post("/sim/api/dingtalk-cards", on=True) == {"dingtalk_cards": True}
    sim.send("dingtalk", REP.key, "帮助")
    card = sim.wait_bot("dingtalk", REP.key, 2)[1]
    assert card["kind"] == "dt_card" and _title(card) == "办理 · 主菜单"
    assert sim.chat("dingtalk", REP.key)["dingtalk_cards"] is True
    button = next(b for b in json.loads(card["card"]["buttons"]) if b["text"] == "报销")
    sim.tap("dingtalk", REP.key, card_id=card["card_id"], action=button["action"], value=button["value"], label="报销")
    assert _title(sim.wait_bot("dingtalk", REP.key, 3)[2]) == "报销"  # a card tap, through /dingtalk/card

    assert sim._post("/sim/api/dingtalk-cards", on=False) == {"dingtalk_cards": False}
    sim.send("dingtalk", REP.key, "帮助")
    again = sim.wait_bot("dingtalk", REP.key, 4)[3]
    assert again["kind"] == "markdown" and markdown["kind"] == "markdown"
    sim.send("dingtalk", REP.key, "请假")  # what the markdown menu's 请假 link sends
    assert _title(sim.wait_bot("dingtalk", REP.key, 5)[4]) == "请假"
    assert requests.post(sim.url + "/sim/api/dingtalk-cards", json={"on": "yes"}, timeout=10).status_code == 400


def _link_words(markdown_message: dict) -> dict[str, str]:
    """{label: what the page's tap-to-send button sends as the person} for a DingTalk markdown message."""
    links = re.findall(r"\[([^\]]+)\]\((dtmd://dingtalkclient/sendMessage\?[^)]+)\)", markdown_message["text"])
    return {label: parse_qs(urlsplit(url).query)["content"][0] for label, url in links}


def test_on_dingtalk_markdown_a_managers_agree_shows_in_the_chat_as_words_he_could_have_typed(sim):
    sim.send("dingtalk", MANAGER.key, "帮助")  # he uses DingTalk: his approval cards come there
    sim.wait_bot("dingtalk", MANAGER.key, 1)
    sim.send("dingtalk", REP.key, "报销 出租车 86.5")
    confirm = sim.wait_bot("dingtalk", REP.key, 1)[0]
    submit = _link_words(confirm)["提交"]
    assert submit.startswith("提交 R-")
    sim.send("dingtalk", REP.key, submit)  # what the page's 提交 button sends, as DingTalk does
    number = submit.split()[1]
    card = wait_for(lambda: [m for m in sim.bot_messages("dingtalk", MANAGER.key)
                             if m["kind"] == "markdown" and "待你审批" in m["title"]] or None)[0]
    agree = _link_words(card)["同意"]
    assert agree == f"同意 {number} 第1步"

    sim.send("dingtalk", MANAGER.key, agree)

    done = wait_for(lambda: [m for m in sim.bot_messages("dingtalk", MANAGER.key) if "已通过" in _title(m)] or None)
    assert done
    said = [m["text"] for m in sim.chat("dingtalk", MANAGER.key)["messages"] if m["who"] != "bot"]
    assert said == ["帮助", agree]  # the manager's side of the chat: the words, no internal code


# -- nothing bypasses the webhook routes -----------------------------------------------------------

def test_a_simulator_tap_and_a_hand_made_callback_leave_identical_state(demo_factory):
    by_sim, by_hand = demo_factory(), demo_factory()

    by_sim.send("wecom", REP.key, "帮助")
    menu = by_sim.wait_bot("wecom", REP.key, 1)[0]
    by_sim.tap("wecom", REP.key, card_id=menu["card_id"], key=_button(menu, "报销")["key"], label="报销")
    by_sim.wait_bot("wecom", REP.key, 2)

    # The same two steps as WeCom itself would send them, built and signed here, posted with requests.
    settings = by_hand.demo.runtime.settings.wecom
    peer = WeComPeer(token=WECOM_TOKEN, aes_key=WECOM_AES_KEY, corp_id=settings.corp_id, agent_id=AGENT_ID)
    _post_wecom(by_hand.url, peer, peer.text(REP.wecom_id, "帮助"))
    standin = by_hand.demo.platforms.wecom
    card = wait_for(lambda: standin.cards_to(REP.wecom_id), timeout=15)[0]["template_card"]
    key = next(b["key"] for b in card["button_list"] if b["text"] == "报销")
    code = standin.issue_response_code(card["task_id"])
    _post_wecom(by_hand.url, peer, peer.card_click(REP.wecom_id, key, card["task_id"], code))
    wait_for(lambda: len(standin.cards_to(REP.wecom_id)) == 2, timeout=15)

    wait_for(lambda: _settled(by_sim.demo) and _settled(by_hand.demo), timeout=10)
    assert _state(by_sim.demo) == _state(by_hand.demo)
    assert _sent(by_sim.demo) == _sent(by_hand.demo)
    assert [m["kind"] for m in by_hand.bot_messages("wecom", REP.key)] == ["wecom_card", "wecom_card"]


def _no_background_alerts(demo: Demo) -> None:
    """The seeded history has stale customers; their 超期/公海 pushes (tested in test_overdue and
    test_pool) would otherwise reach screens at whatever hour the suite runs."""
    from storage.db import session_scope
    from workflows import rules

    never = {"A": 3650, "B": 3650, "C": 3650}
    with session_scope(demo.runtime.engine) as session:
        rules.put(session, "crm.overdue_days", never, by=None)
        rules.put(session, "crm.pool_days", never, by=None)


def _post_wecom(url: str, peer: WeComPeer, inner_xml: str) -> None:
    query, body = peer.callback(inner_xml)
    assert requests.post(f"{url}/wecom/callback?{query}", data=body, timeout=10).status_code == 200


def _outbox(demo: Demo, kind: str | None = None) -> list[dict]:
    with demo.runtime.engine.connect() as conn:
        rows = conn.execute(text("SELECT kind, platform, recipient, conversation, status, payload FROM outbox "
                                 "ORDER BY id")).mappings().all()
    return [{**row, "payload": json.loads(row["payload"])} for row in rows if kind in (None, row["kind"])]


def _has_key(demo: Demo, key: str) -> bool:
    with demo.runtime.engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM outbox WHERE key = :k"), {"k": key}).scalar_one() == 1


def _settled(demo: Demo) -> bool:
    return all(row["status"] == "sent" for row in _outbox(demo) if row["kind"] != "cron")


def _state(demo: Demo) -> list[tuple]:
    """What Banli recorded, without ids, keys and times that differ between any two runs."""
    state = []
    for row in _outbox(demo):
        p = row["payload"]
        if row["kind"] == "inbound":
            detail = (p["kind"], p["sender"], p["text"], p["action"], p["value"])
        elif row["kind"] == "message":
            detail = (json.dumps(p["card"], ensure_ascii=False, sort_keys=True),)
        else:
            detail = (p.get("name", ""),)
        state.append((row["kind"], row["platform"], row["recipient"], row["conversation"], row["status"], *detail))
    with demo.runtime.engine.connect() as conn:
        for table in ("employee", "identity", "customer", "deal", "follow_up"):
            state.append((table, conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()))
    return sorted(state)


def _sent(demo: Demo) -> list[dict]:
    """What reached the WeCom API, less the per-message task id."""
    bodies = json.loads(json.dumps(demo.platforms.wecom.sent))
    for body in bodies:
        body.get("template_card", {}).pop("task_id", None)
    return bodies


# -- photos, locations, card updates ------------------------------------------------------------------

PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082")


@pytest.mark.parametrize("platform", ["wecom", "dingtalk"])
def test_a_photo_becomes_an_image_callback_and_is_shown(sim, platform):
    answer = requests.post(f"{sim.url}/sim/api/photo", data={"platform": platform, "person": REP.key},
                           files={"photo": ("invoice.png", io.BytesIO(PNG), "image/png")}, timeout=10)
    assert answer.json()["ok"]
    assert _title(sim.wait_bot(platform, REP.key, 1)[0]) == "收到图片"
    sent = next(m for m in sim.chat(platform, REP.key)["messages"] if m["kind"] == "image")
    assert requests.get(f"{sim.url}/sim/media/{sent['media_id']}", timeout=5).content == PNG
    inbound = _outbox(sim.demo, "inbound")[-1]["payload"]
    assert inbound["kind"] == "image" and inbound["media_id"] == sent["media_id"]


def test_a_location_is_a_wecom_location_message_and_refused_for_dingtalk(sim):
    assert requests.post(f"{sim.url}/sim/api/location", json={"platform": "wecom", "person": REP.key,
                                                              "place": "nanshan"}, timeout=10).json()["ok"]
    reply = sim.wait_bot("wecom", REP.key, 1)[0]
    assert _title(reply) == "收到位置" and "南山区科技园" in reply["card"]["sub_title_text"]
    refused = requests.post(f"{sim.url}/sim/api/location", json={"platform": "dingtalk", "person": REP.key,
                                                                 "place": "nanshan"}, timeout=10)
    assert refused.status_code == 400 and "钉钉" in refused.json()["error"]


def test_a_wecom_card_update_changes_the_card_on_screen(sim):
    sim.send("wecom", REP.key, "帮助")
    menu = sim.wait_bot("wecom", REP.key, 1)[0]
    sent = wait_for(lambda: _sent_result(sim.demo, menu["card_id"]))
    _queue_card_update(sim.demo, "wecom", sent, Card(title="已处理", body="这张卡片已被更新"))
    updated = wait_for(lambda: (lambda m: m if m["updated"] else None)(sim.bot_messages("wecom", REP.key)[0]))
    assert _title(updated) == "已处理" and updated["card"]["sub_title_text"] == "这张卡片已被更新"
    assert sim.demo.platforms.wecom.updates[0]["atall"] == 1


def test_a_dingtalk_card_update_changes_the_card_on_screen(demo_factory):
    sim = demo_factory(dingtalk_cards=True)
    sim.send("dingtalk", REP.key, "帮助")
    menu = sim.wait_bot("dingtalk", REP.key, 1)[0]
    sent = wait_for(lambda: _sent_result(sim.demo, menu["card_id"]))
    _queue_card_update(sim.demo, "dingtalk", sent, Card(title="已处理", body="这张卡片已被更新"))
    updated = wait_for(lambda: (lambda m: m if m["updated"] else None)(sim.bot_messages("dingtalk", REP.key)[0]))
    assert _title(updated) == "已处理"


def _sent_result(demo: Demo, card_id: str) -> dict | None:
    """The send result Banli stored for the message that delivered `card_id`."""
    with demo.runtime.engine.connect() as conn:
        for (result,) in conn.execute(text("SELECT result FROM outbox WHERE kind = 'message' AND status = 'sent'")):
            found = json.loads(result)
            if card_id in (found.get("task_id"), found.get("out_track_id")):
                return found
    return None


def _queue_card_update(demo: Demo, platform: str, sent: dict, card: Card) -> None:
    """A card_update row, as a workflow writes one when a request changes (nothing in Banli does yet)."""
    with session_scope(demo.runtime.engine) as session:
        outbox.add(session, key=f"card_update:test:{secrets.token_hex(4)}", kind="card_update", platform=platform,
                   payload={"sent": sent, "card": card.to_dict()})
    demo.runtime.ring()


# -- people, unread counts, the clock -------------------------------------------------------------------

def test_each_person_has_their_own_conversation_and_others_show_as_unread(sim):
    sim.send("wecom", REP.key, "帮助")
    wait_for(lambda: sim.demo.platforms.wecom.cards_to(REP.wecom_id))
    as_manager = sim.chat("wecom", MANAGER.key)
    assert as_manager["messages"] == [] and as_manager["unread"] == {REP.key: 1}
    sim.chat("wecom", REP.key)  # looking at it reads it
    assert sim.chat("wecom", MANAGER.key)["unread"] == {}
    sim.send("wecom", MANAGER.key, "帮助")
    assert MANAGER.name in sim.wait_bot("wecom", MANAGER.key, 1)[0]["card"]["sub_title_text"]


def test_the_clock_moves_banli_time_forward_and_the_dispatcher_sees_it(sim):
    runtime = sim.demo.runtime
    before = runtime.now()
    assert requests.post(f"{sim.url}/sim/api/clock", json={"jump": "hour"}, timeout=5).ok
    assert timedelta(minutes=59) < runtime.now() - before < timedelta(minutes=61)

    clock = requests.post(f"{sim.url}/sim/api/clock", json={"jump": "morning"}, timeout=5).json()["clock"]
    local = sim.demo.clock.local()
    assert (local.hour, local.minute) == (8, 0) and clock["text"].endswith(" 08:00")

    requests.post(f"{sim.url}/sim/api/clock", json={"jump": "day"}, timeout=5)
    # A day later there is a new daily slot, and the dispatcher claims it at the simulated time.
    slot = CRON_JOBS["purge"].latest_slot(runtime.now(), runtime.settings.timezone)
    assert slot.date() == sim.demo.clock.local().date()
    wait_for(lambda: _has_key(sim.demo, f"cron:purge:{slot.isoformat()}"), timeout=10)
    assert requests.post(f"{sim.url}/sim/api/clock", json={"jump": "back"}, timeout=5).status_code == 400


def test_the_simulator_refuses_unknown_people_and_platforms(sim):
    for body in ({"platform": "wecom", "person": "nobody", "text": "帮助"},
                 {"platform": "feishu", "person": REP.key, "text": "帮助"}):
        answer = requests.post(f"{sim.url}/sim/api/send", json=body, timeout=5)
        assert answer.status_code == 400 and answer.json()["error"]
    assert _outbox(sim.demo, "inbound") == []


def test_the_page_lists_every_seeded_person_and_ships_its_assets(sim):
    page = requests.get(f"{sim.url}/sim", timeout=5).text
    assert "模拟时钟" in page and "这是办理的模拟器" in page
    for person in PEOPLE:
        assert f"{person.name} · {person.title} · {person.department}" in page
    for asset in ("sim.js", "sim.css"):
        assert requests.get(f"{sim.url}/sim/static/{asset}", timeout=5).ok


# -- the real command ------------------------------------------------------------------------------------

def test_banli_demo_command_seeds_serves_the_simulator_and_answers(tmp_path):
    port = free_port()
    # The demo ignores the environment's platform, database and Redis settings.
    env = {**os.environ, "REDIS_URL": "redis://127.0.0.1:1/0", "DATABASE_URL": "sqlite:////nonexistent/x.db",
           "WECOM_CORP_ID": "wwsomeoneelse", "PYTHONUNBUFFERED": "1"}
    log_path = tmp_path / "demo.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "banli.cli", "demo", "--port", str(port)], cwd=tmp_path,
                                env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc, log_path)
        assert requests.get(url + "/healthz", timeout=5).json() == {"ok": True, "wecom": True, "dingtalk": True}
        page = requests.get(url + "/sim", timeout=5)
        assert page.status_code == 200 and "模拟时钟" in page.text
        assert (tmp_path / "banli-demo.db").exists()
        answer = requests.post(url + "/sim/api/send", json={"platform": "wecom", "person": REP.key, "text": "帮助"},
                               timeout=15)
        assert answer.json()["ok"]
        # Between 08:00 and 11:00 the daily digest may arrive too: look for the menu by its title.
        menu = wait_for(lambda: [m for m in requests.get(url + "/sim/api/chat", timeout=5, params={
            "platform": "wecom", "person": REP.key}).json()["messages"] if _title(m) == "办理 · 主菜单"], timeout=20)[0]
        assert REP.name in menu["card"]["sub_title_text"]
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
    output = log_path.read_text()
    assert f"办理 Banli 演示已启动: http://127.0.0.1:{port}/sim" in output
    assert "seeded the demo company" in output




def test_jumping_to_eight_brings_the_managers_daily_team_digest(sim):
    assert sim.chat("wecom", MANAGER.key)["messages"] == []
    requests.post(f"{sim.url}/sim/api/clock", json={"jump": "morning"}, timeout=5)
    # It links to the team's report page, so on WeCom it is a text message (only text makes an
    # address tappable there): 【团队跟进 · …】, a line per rep, the link last.
    digest = wait_for(lambda: [m for m in sim.bot_messages("wecom", MANAGER.key)
                               if _title(m).lstrip("【").startswith("团队跟进")], timeout=15)[0]
    lines = digest["text"].splitlines()
    team = {line.split("：")[0] for line in lines if "今天" in line and "逾期" in line and "：" in line}
    assert team and team <= {p.name for p in PEOPLE if p.manager_key == MANAGER.key}
    assert lines[-1].startswith(f"团队报表：{sim.url}/admin/reports/followups?team=")


def test_the_demo_database_is_seeded_once_and_reset_starts_over(tmp_path, monkeypatch):
    from sim import demo as demo_module

    monkeypatch.chdir(tmp_path)
    url = f"sqlite:///{demo_module.DEMO_DB}"
    now = demo_module.SimClock()()
    assert demo_module.prepare_database(url, now=now) is True
    assert demo_module.prepare_database(url, now=now) is False  # a restart keeps yesterday's demo
    demo_module._delete_sqlite(tmp_path / demo_module.DEMO_DB)  # what --reset does first
    assert not (tmp_path / demo_module.DEMO_DB).exists()
    assert demo_module.prepare_database(url, now=now) is True


def test_a_rep_logs_a_visit_on_a_seeded_customer_and_the_reminder_is_scheduled(sim):
    from sqlalchemy import select

    from storage.models import Customer, Employee

    with session_scope(sim.demo.runtime.engine) as session:
        rep = session.execute(select(Employee).where(Employee.name == REP.name)).scalars().one()
        mine = session.execute(select(Customer).where(Customer.owner_id == rep.id, Customer.tier == "A")
                               .order_by(Customer.id)).scalars().first()
        short = mine.short_names.split(",")[0]
    sim.send("wecom", REP.key, f"拜访 {short} 聊了报价 明天下午3点再跟进")
    card = sim.wait_bot("wecom", REP.key, 1)[0]
    assert _title(card) == f"已记录 · {short[:12]}"
    fields = {f["keyname"]: f["value"] for f in card["card"]["horizontal_content_list"]}
    assert fields["客户"] == mine.name[:26] and fields["下次跟进"].endswith("15:00")
    with sim.demo.runtime.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM outbox WHERE key LIKE 'remind:followup:%' "
                                 "AND status = 'pending'")).scalar_one() == 1
    # Jump the simulated clock past tomorrow 15:00: the reminder card arrives, once.
    for jump in ("day", "hour", "hour"):
        assert requests.post(f"{sim.url}/sim/api/clock", json={"jump": jump}, timeout=5).ok
    titles = lambda: [_title(m) for m in sim.bot_messages("wecom", REP.key)]  # noqa: E731
    wait_for(lambda: f"跟进提醒 · {short[:12]}" in titles(), timeout=15)
    time.sleep(1.0)
    assert titles().count(f"跟进提醒 · {short[:12]}") == 1
