"""The public test set (tests/everyday_messages.tsv): everyday messages, typed and spoken, sent
through the real WeCom route one after another, and what each produced — a draft, a logged or
asked-about follow-up, a list, a customer's card, small talk, or the hint — read back from the reply
and the database, compared with what it must produce.

Target: at least 95% understood, and no wrong action: no follow-up filed at once against another
customer or another day than the one meant. `bench/understanding.py` prints the same report.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import text

from chat import Chat, rows, sales_team
from sim_company import add_customer

SHANGHAI = timezone(timedelta(hours=8))
MORE_CUSTOMERS = (("北京字节跳动科技有限公司", "字节,抖音"), ("阿里巴巴(中国)有限公司", "阿里"),
                  ("华为技术有限公司", "华为"), ("小米科技有限责任公司", "小米"))
TARGET = 0.95
# The reply's title → the intent it shows (lists, menu, small talk, a customer, the hint).
TITLES = (("我的客户", "我的客户"), ("我的审批", "我的审批"), ("待我审批", "我的审批"), ("我的申请", "我的申请"),
          ("今天跟进", "今天跟进"), ("本周跟进", "本周拜访"), ("公海", "公海"), ("办理 · 主菜单", "帮助"),
          ("客户跟进", "帮助"), ("办理", "small_talk"), ("客户 · ", "客户"), ("电话 · ", "客户"),
          ("看不了电话", "客户"), ("您要找哪家客户？", "客户"), ("没听明白", "-"),
          ("记拜访", "拜访"), ("记电话", "电话"), ("记微信", "微信"), ("记一条拜访", "拜访"),
          ("记一条电话", "电话"), ("记一条微信", "微信"), ("您说的是哪家？", "拜访"),
          ("报销", "报销"), ("请假", "请假"), ("出差", "出差"), ("采购", "采购"), ("申请", "通用"))


@dataclass
class Case:
    how: str
    said: str
    intent: str
    slots: dict[str, str]


@dataclass
class Outcome:
    intent: str
    slots: dict[str, str] = field(default_factory=dict)
    filed: bool = False  # a follow-up was logged at once, without a confirmation


def cases(path: Path) -> list[Case]:
    found = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        how, said, intent, *rest = line.split("\t")
        slots = dict(pair.split("=", 1) for pair in (rest[0].split() if rest else []))
        found.append(Case(how, said, intent, slots))
    return found


@pytest.fixture
def team(stack_factory):
    team = sales_team(stack_factory)
    (rep,), = rows(team, "SELECT id FROM employee WHERE name = '张三'")
    with team.runtime.engine.begin() as conn:
        conn.execute(text("UPDATE customer SET owner_id = :rep WHERE short_names = '美团'"), {"rep": rep})
    for name, short in MORE_CUSTOMERS:
        add_customer(team, name, short, owner_id=rep, since=datetime(2026, 1, 1, tzinfo=timezone.utc))
    return team


# bench/understanding.py --set FILE measures a new blind set once, before any rule is tuned for it:
# it is reported, not held to the target (that is what the first run is for).
MEASURED_ONLY = os.environ.get("BANLI_EVERYDAY_EXTRA", "")


@pytest.mark.parametrize("name", ["everyday_messages.tsv", "held_out_messages.tsv"]
                         + ([MEASURED_ONLY] if MEASURED_ONLY else []))
def test_everyday_messages_are_understood(team, name):
    chat = Chat(team, "wecom")
    path = Path(name) if name == MEASURED_ONLY else Path(__file__).with_name(name)
    name = path.name
    results = [(case, _send(team, chat, case)) for case in cases(path)]
    misses = [(c, o) for c, o in results if not _matches(c, o)]
    wrong = [(c, o) for c, o in misses if o.filed]
    share = 1 - len(misses) / len(results)
    report = {"messages": len(results), "understood": len(results) - len(misses), "share": round(share, 4),
              "wrong_actions": len(wrong),
              "misses": [{"said": c.said, "wanted": [c.intent, c.slots], "got": [o.intent, o.slots]} for c, o in misses]}
    if os.environ.get("BANLI_EVERYDAY_REPORT"):
        Path(os.environ["BANLI_EVERYDAY_REPORT"] + "." + name + ".json").write_text(json.dumps(report, ensure_ascii=False, indent=1))
    print(json.dumps(report, ensure_ascii=False, indent=1))
    if path.name == Path(MEASURED_ONLY).name:
        return
    assert len(results) >= (150 if name == "everyday_messages.tsv" else 80)
    assert not wrong, f"wrong actions: {report['misses']}"
    assert share >= TARGET, f"{share:.1%} understood; misses: {report['misses']}"


def _send(team, chat: Chat, case: Case) -> Outcome:
    last_request, last_visit = _last_id(team, "approval_request"), _last_id(team, "follow_up")
    if case.how == "voice":
        reply = chat._expect_reply(lambda: team.post_wecom(team.wecom_peer.voice(chat.user, case.said)))
    else:
        reply = chat.say(case.said)
    outcome = _filed(team, last_request, last_visit) or _shown(team, reply)
    with team.runtime.engine.begin() as conn:  # each message starts fresh: no question left open
        conn.execute(text("DELETE FROM conversation"))
    return outcome


def _filed(team, last_request: int, last_visit: int) -> Outcome | None:
    for kind, summary, amount, details in rows(team, "SELECT type, summary, amount, details FROM approval_request "
                                                     f"WHERE id > {last_request}"):
        days = json.loads(details) if isinstance(details, str) else (details or {})
        slots = {"category": f"{summary} {days.get('category', '')} {days.get('place', '')} {days.get('item', '')}",
                 "start": days.get("start", ""), "end": days.get("end", "")}
        if amount is not None:
            slots["amount"] = f"{float(amount):g}"
        return Outcome(kind, slots)
    for method, short, next_at in rows(team, "SELECT f.method, c.short_names, f.next_at FROM follow_up f "
                                             f"JOIN customer c ON c.id = f.customer_id WHERE f.id > {last_visit}"):
        return Outcome(method, {"customer": short.split(",")[0], "next": _day(next_at)}, filed=True)
    return None


def _shown(team, reply) -> Outcome:
    intent = next((i for prefix, i in TITLES if reply.title.startswith(prefix)), "?" + reply.title)
    slots: dict[str, str] = {}
    if reply.title.startswith(("客户 · ", "电话 · ")):
        slots["customer"] = reply.title.split(" · ", 1)[1]
    elif intent in ("拜访", "电话", "微信", "客户"):
        names = [n for n in _short_names(team) if n in reply.text]
        if reply.title.startswith("记一条") and reply.field("客户"):
            slots.update(customer=_short_of(team, reply.field("客户")), asked="yes")
        elif names:
            slots["customer"] = "?" + ",".join(names)
    return Outcome(intent, slots)


def _matches(case: Case, got: Outcome) -> bool:
    if case.intent != got.intent:
        return False
    for key, wanted in case.slots.items():
        have = got.slots.get(key, "")
        if key == "category" and wanted in have:
            continue
        if key == "customer" and wanted.startswith("?") and have.startswith("?"):
            if wanted[1:] in have[1:].split(","):
                continue
            return False
        if key == "amount" and have and float(have) == float(wanted):
            continue
        if have != wanted:
            return False
    return True


def _last_id(team, table: str) -> int:
    (value,), = rows(team, f"SELECT COALESCE(MAX(id), 0) FROM {table}")
    return value


def _day(value) -> str:
    if value is None:
        return "none"
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    moment = moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment
    return moment.astimezone(SHANGHAI).date().isoformat()


def _short_names(team) -> list[str]:
    return [s.split(",")[0] for s, in rows(team, "SELECT short_names FROM customer")]


def _short_of(team, legal: str) -> str:
    found = [s.split(",")[0] for s, name in rows(team, "SELECT short_names, name FROM customer")
             if name.startswith(legal.rstrip("…"))]
    return found[0] if found else legal
