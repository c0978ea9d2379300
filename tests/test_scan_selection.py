"""What the periodic scans choose, now that the database chooses it (workflows/overdue.py,
workflows/pool.py, workflows/digest.py select their candidates in SQL): one overdue card per person
listing all their newly overdue customers, pool warnings capped per owner, per-tier days from an
edited rule, a freshly claimed customer's new clock, a departed owner's customers released in one
go, a steady-state re-scan that queues nothing, and a digest that counts more than it lists.
Run on SQLite and, with BANLI_TEST_DATABASE_URL, on PostgreSQL."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import literal, select, text
from sqlmodel.sql.sqltypes import UTCDateTime

from sim_company import add_customer, seed_team, sh
from storage import outbox
from storage.db import session_scope
from storage.models import Employee, Identity
from storage.sqlexpr import add_days, iso_utc, local_date
from workflows import overdue, pool, rules
from workflows.digest import queue_daily_digests

TZ = "Asia/Shanghai"
NOW = sh(24, 10)  # Tuesday 10:00


def _keys(stack, prefix: str) -> list[str]:
    """Keys under `prefix`: the overdue records' own table, or the outbox for everything else."""
    table = "overdue_mark" if prefix.startswith(("overdue:owner:", "overdue:manager:")) else "outbox"
    with stack.runtime.engine.connect() as conn:
        return list(conn.execute(text(f"SELECT key FROM {table} WHERE key LIKE :p ORDER BY key"), {"p": prefix + "%"})
                    .scalars())


def _team_of_five(stack) -> dict[str, int]:
    """seed_team's 王经理/张三/李四 plus three more reps of 王经理's, all reachable."""
    team = seed_team(stack, "wecom", at=NOW)
    with session_scope(stack.runtime.engine) as session:
        for n in range(3):
            rep = Employee(name=f"销售{n}", manager_id=team["boss"], synced_at=NOW)
            session.add(rep)
            session.flush()
            session.add(Identity(platform="wecom", user_id=f"rep{n}", employee_id=rep.id))
            team[f"rep{n}"] = rep.id
    return team


def _scan(stack, now=NOW) -> dict[str, int]:
    with session_scope(stack.runtime.engine) as session:
        return overdue.scan(session, now=now, tz=TZ)


def _customer_ids(stack, key_prefix: str) -> list[int]:
    return sorted(int(key.split(":")[2]) for key in _keys(stack, key_prefix))


def _fire_cards(stack, now=NOW) -> dict[str, dict]:
    """Run every pending card timer the scans queued (as the worker would at its moment); returns the
    cards pushed, by card key."""
    with stack.runtime.engine.connect() as conn:
        timers = conn.execute(text("SELECT payload FROM outbox WHERE key LIKE 'overdue:card:%' AND status = 'pending'"
                                   " ORDER BY id")).scalars().all()
    with session_scope(stack.runtime.engine) as session:
        for payload in timers:
            overdue.send_card(session, json.loads(payload), now, TZ)
        session.execute(text("UPDATE outbox SET status = 'sent' WHERE key LIKE 'overdue:card:%'"))
    with stack.runtime.engine.connect() as conn:
        rows = conn.execute(text("SELECT key, payload FROM outbox WHERE key LIKE 'overdue:push:%'")).all()
    return {key: json.loads(payload)["card"] for key, payload in rows}


def test_overdue_one_card_per_person_lists_everyone_new_and_a_steady_rescan_queues_nothing(stack_factory):
    stack = stack_factory(start_workers=False)
    team = _team_of_five(stack)
    reps = [team["rep"], team["other"], team["rep0"], team["rep1"], team["rep2"]]
    made: dict[int, list[int]] = {rep: [] for rep in reps}
    for rep in reps:  # five each, untouched 8..12 days (tier A: 7), the older ones created later
        for n in range(5):
            made[rep].append(add_customer(stack, f"客户{rep}-{n}有限公司", f"客{rep}{n}", tier="A", owner_id=rep,
                                          since=NOW - timedelta(days=8 + n)))
    # Every overdue customer is marked at once (no per-person cap: they all go on one card); the
    # manager's are those past the 2 grace days too (untouched 9..12 days): four per rep.
    assert _scan(stack) == {"owner": 25, "manager": 20, "cards": 6}
    assert len(_keys(stack, "overdue:owner:")) == 25 and len(_keys(stack, "overdue:manager:")) == 20
    cards = _fire_cards(stack)
    assert len(cards) == 6  # one per rep, one for 王经理
    mine = cards[next(k for k in cards if k.startswith(f"overdue:push:owner:{team['rep']}:"))]
    assert mine["title"] == "超期未跟进 · 5 家"
    # Worst first: untouched 12 days (made last) down to 8.
    assert mine["body"] == "\n".join(f"· 客{team['rep']}{n}（A）{8 + n} 天没有跟进" for n in (4, 3, 2, 1, 0))
    assert [b["value"] for b in mine["buttons"]] == [str(c) for c in reversed(made[team["rep"]])]
    boss = cards[next(k for k in cards if k.startswith(f"overdue:push:manager:{team['boss']}:"))]
    assert boss["title"] == "团队客户超期 · 20 家" and boss["footer"] == "第 1–4 家，共 20 家"  # longer lines
    assert [b["label"] for b in boss["buttons"]][-1] == "更多"

    before = stack.count("outbox")
    assert _scan(stack) == {"owner": 0, "manager": 0, "cards": 0}  # steady state: everyone told once
    assert _scan(stack, NOW + timedelta(hours=1)) == {"owner": 0, "manager": 0, "cards": 0}
    assert stack.count("outbox") == before


def test_overdue_days_follow_an_edited_rule_and_a_fresh_claim_restarts_the_clock(stack_factory):
    stack = stack_factory(start_workers=False)
    team = seed_team(stack, "wecom", at=NOW)
    b_six = add_customer(stack, "乙六天有限公司", "乙六", tier="B", owner_id=team["rep"], since=NOW - timedelta(days=6))
    c_six = add_customer(stack, "丙六天有限公司", "丙六", tier="C", owner_id=team["rep"], since=NOW - timedelta(days=6))
    b_exact = add_customer(stack, "乙整五天有限公司", "乙整", tier="B", owner_id=team["rep"],
                           since=NOW - timedelta(days=5))
    claimed = add_customer(stack, "新领取有限公司", "新领", tier="A", owner_id=team["rep"],
                           since=NOW - timedelta(days=2), last_followup=NOW - timedelta(days=40))
    pool_one = add_customer(stack, "公海客户有限公司", "公海", tier="A", owner_id=None, since=NOW - timedelta(days=90))
    assert _scan(stack) == {"owner": 0, "manager": 0, "cards": 0}  # defaults: B 14, C 30 days
    with session_scope(stack.runtime.engine) as session:
        admin = session.get(Employee, team["admin"])
        rules.put(session, "crm.overdue_days", {"A": 3, "B": 5, "C": 10}, by=admin)
    assert _scan(stack) == {"owner": 2, "manager": 0, "cards": 1}
    # B past 5 days (exactly 5 counts); C's 10 not reached; claimed 2 days ago (A 3) is not overdue
    # although its last follow-up is 40 days old; a pool customer has nobody to tell.
    assert _customer_ids(stack, "overdue:owner:") == sorted([b_six, b_exact])
    told = _customer_ids(stack, "overdue:owner:") + _customer_ids(stack, "overdue:manager:")
    assert c_six not in told and claimed not in told and pool_one not in told
    card, = _fire_cards(stack).values()
    assert card["body"] == "· 乙六（B）6 天没有跟进\n· 乙整（B）5 天没有跟进"
    # The period is the local date the customer became overdue: 5 days after its creation.
    assert _keys(stack, f"overdue:owner:{b_six}:") == [f"overdue:owner:{b_six}:2026-11-23"]


def _payload(stack, prefix: str) -> str:
    with stack.runtime.engine.connect() as conn:
        return conn.execute(text("SELECT payload FROM outbox WHERE key LIKE :p"), {"p": prefix + "%"}).scalar_one()


def test_pool_warns_five_per_owner_across_owners_and_releases_a_departed_owners_customers(stack_factory):
    stack = stack_factory(start_workers=False)
    team = _team_of_five(stack)
    old = sh(1, 10).replace(month=8)  # untouched since August: past every tier's days
    for rep in (team["rep"], team["other"]):
        for n in range(6):
            add_customer(stack, f"老客{rep}-{n}有限公司", f"老{rep}{n}", tier="C", owner_id=rep, since=old)
    gone = [add_customer(stack, f"离职客{n}有限公司", f"离{n}", tier="C", owner_id=team["rep0"], since=old)
            for n in range(4)]
    recent = add_customer(stack, "新领取有限公司", "新领", tier="A", owner_id=team["rep1"],
                          since=NOW - timedelta(days=2), last_followup=old)
    with session_scope(stack.runtime.engine) as session:
        session.get(Employee, team["rep0"]).active = False  # departed: nobody to warn
        # a pool warning still held for one of the departed rep's customers: withdrawn on release
        outbox.add(session, key=f"pool:warn:{gone[0]}:2026-10-01", kind="message", payload={},
                   due_at=NOW + timedelta(hours=1))
    with session_scope(stack.runtime.engine) as session:
        assert pool.sweep(session, now=NOW, tz=TZ) == {"warned": 10, "released": 4}
    assert stack.count("customer", f"WHERE owner_id IS NULL AND id IN ({','.join(map(str, gone))})") == 4
    assert stack.count("ownership_change", "WHERE reason = 'pool' AND to_owner_id IS NULL") == 4
    assert stack.count("audit_log", "WHERE action = 'customer.pool' AND actor_id IS NULL") == 4
    assert stack.count("outbox", f"WHERE key = 'pool:warn:{gone[0]}:2026-10-01' AND status = 'cancelled'") == 1
    assert stack.count("outbox", "WHERE key LIKE 'pool:released:%'") == 0  # the departed hear nothing
    assert recent not in _customer_ids(stack, "pool:warn:")  # claimed two days ago: a fresh clock
    with session_scope(stack.runtime.engine) as session:  # later that night: each owner's sixth
        assert pool.sweep(session, now=NOW + timedelta(hours=1), tz=TZ) == {"warned": 2, "released": 0}
    with session_scope(stack.runtime.engine) as session:
        assert pool.sweep(session, now=NOW + timedelta(hours=2), tz=TZ) == {"warned": 0, "released": 0}
    with session_scope(stack.runtime.engine) as session:  # three warning days after the first ten
        assert pool.sweep(session, now=NOW + timedelta(days=3), tz=TZ) == {"warned": 0, "released": 10}
    assert len(_keys(stack, "pool:released:")) == 10
    assert stack.count("customer", "WHERE owner_id IS NULL") == 14


def test_the_digest_counts_everything_and_lists_the_first_five(stack_factory):
    stack = stack_factory(start_workers=False)
    team = seed_team(stack, "wecom", at=NOW)
    eight = sh(23, 8)  # Monday 08:00
    with session_scope(stack.runtime.engine) as session:
        from storage.models import Customer

        for n in range(7):  # due today, 09:00 + n hours (Shanghai), made in reverse order
            session.add(Customer(name=f"今天{n}有限公司", short_names=f"今{n}", owner_id=team["rep"], created_at=NOW,
                                 next_followup_at=sh(23, 15 - n)))
        for n in range(6):  # overdue by 1..6 days
            session.add(Customer(name=f"逾期{n}有限公司", short_names=f"逾{n}", owner_id=team["other"], created_at=NOW,
                                 next_followup_at=sh(22 - n, 10)))
        session.add(Customer(name="明天有限公司", short_names="明天", owner_id=team["other"], created_at=NOW,
                             next_followup_at=sh(24, 0, 30)))  # 00:30 tomorrow local: not today
    with session_scope(stack.runtime.engine) as session:
        assert queue_daily_digests(session, now=eight, tz=TZ) == 3
    cards = {key: json.loads(_payload(stack, key))["card"] for key in _keys(stack, "digest:")}
    mine = cards[f"digest:own:{team['rep']}:2026-11-23"]
    assert dict(map(tuple, mine["fields"])) == {"今天": "7 家", "逾期": "0 家"}
    assert mine["body"] == "今天要跟进：\n" + "\n".join(f"· 今{n} {9 + 6 - n:02d}:00" for n in (6, 5, 4, 3, 2))
    theirs = cards[f"digest:own:{team['other']}:2026-11-23"]
    assert dict(map(tuple, theirs["fields"])) == {"今天": "0 家", "逾期": "6 家"}
    assert theirs["body"] == "逾期未跟进：\n" + "\n".join(f"· 逾{n} 已逾期{n + 1}天" for n in (5, 4, 3, 2, 1))
    team_card = cards[f"digest:team:{team['boss']}:2026-11-23"]
    assert team_card["body"] == "团队今天要跟进 7 家，逾期 6 家。"
    assert dict(map(tuple, team_card["fields"])) == {"李四": "今天0 · 逾期6", "张三": "今天7 · 逾期0"}
    with session_scope(stack.runtime.engine) as session:
        assert queue_daily_digests(session, now=eight + timedelta(minutes=5), tz=TZ) == 0


@pytest.mark.parametrize("moment", [
    datetime(2026, 11, 23, 15, 59, 59, tzinfo=timezone.utc),  # 23:59:59 in Shanghai
    datetime(2026, 11, 23, 16, 0, 0, 123456, tzinfo=timezone.utc),  # just after local midnight
    datetime(2026, 3, 8, 9, 30, 0, 1, tzinfo=timezone.utc),
])
def test_sql_keys_spell_times_as_python_does(stack_factory, moment):
    """The scans build their outbox keys in SQL; an existing key written by Python must match."""
    stack = stack_factory(start_workers=False)
    with session_scope(stack.runtime.engine) as session:
        dialect = session.get_bind().dialect.name
        value = literal(moment, UTCDateTime())
        iso, day, later = session.execute(select(iso_utc(dialect, value), local_date(dialect, value, TZ),
                                                 add_days(dialect, value, literal(30)))).one()
    assert iso == moment.isoformat()
    assert day == moment.astimezone(ZoneInfo(TZ)).date().isoformat()
    assert later == moment + timedelta(days=30)


def test_cancelling_by_prefix_takes_exactly_that_prefix(stack_factory):
    stack = stack_factory(start_workers=False)
    with session_scope(stack.runtime.engine) as session:
        for key in ("pool:warn:12:a", "pool:warn:12:b", "pool:warn:123:a", "pool:warn:1:a", "pool:warn:12",
                    "pool:warn:12;x", "pool:warn:12:\u4e2d\U0010fffd"):
            outbox.add(session, key=key, kind="message", payload={})
        outbox.add(session, key="pool:warn:12:sent", kind="message", payload={})
        session.execute(text("UPDATE outbox SET status = 'sent' WHERE key = 'pool:warn:12:sent'"))
    with session_scope(stack.runtime.engine) as session:
        assert outbox.cancel(session, "pool:warn:12:")
    assert _cancelled(stack) == ["pool:warn:12:a", "pool:warn:12:b", "pool:warn:12:\u4e2d\U0010fffd"]
    with session_scope(stack.runtime.engine) as session:
        assert not outbox.cancel(session, "pool:warn:99:")


def _cancelled(stack) -> list[str]:
    with stack.runtime.engine.connect() as conn:
        return list(conn.execute(text("SELECT key FROM outbox WHERE status = 'cancelled' ORDER BY id")).scalars())
