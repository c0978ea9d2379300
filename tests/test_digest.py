"""The 08:00 digest: owners get their follow-ups due today and overdue; managers a team summary —
on working days (a 调休 Saturday included), not at weekends or on public holidays."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone

import pytest

from sqlalchemy import text

from conftest import settle, wait_for
from storage.db import session_scope
from storage.models import Customer, Employee, Identity
from workflows import rules
from workflows.digest import queue_daily_digests

# Monday 23 Nov 2026, 08:00 in Shanghai.
EIGHT_AM = datetime(2026, 11, 23, 0, 0, tzinfo=timezone.utc)
SHANGHAI = timezone(timedelta(hours=8))


def _company(session) -> dict[str, Employee]:
    boss = Employee(name="周经理", synced_at=EIGHT_AM)
    session.add(boss)
    session.flush()
    rep = Employee(name="张三", manager_id=boss.id, synced_at=EIGHT_AM)
    idle = Employee(name="闲人", manager_id=boss.id, synced_at=EIGHT_AM)
    session.add_all([rep, idle])
    session.flush()
    session.add_all([Identity(platform="wecom", user_id="wangjl", employee_id=boss.id),
                     Identity(platform="wecom", user_id="zhangsan", employee_id=rep.id),
                     Identity(platform="dingtalk", user_id="0147001", employee_id=rep.id),
                     Identity(platform="wecom", user_id="xianren", employee_id=idle.id)])

    def customer(name, short, when):
        session.add(Customer(name=name, short_names=short, tier="A", owner_id=rep.id, next_followup_at=when))

    customer("腾讯科技(深圳)有限公司", "腾讯", datetime(2026, 11, 23, 14, 0, tzinfo=SHANGHAI))
    customer("北京三快在线科技有限公司", "美团,三快", datetime(2026, 11, 23, 7, 30, tzinfo=SHANGHAI))
    customer("招商银行股份有限公司", "招行", datetime(2026, 11, 20, 10, 0, tzinfo=SHANGHAI))
    customer("未来的客户有限公司", "未来", datetime(2026, 11, 30, 10, 0, tzinfo=SHANGHAI))
    session.flush()
    return {"boss": boss, "rep": rep, "idle": idle}


def _digests(stack) -> dict[str, dict]:
    import json

    with stack.runtime.engine.connect() as conn:
        rows = conn.execute(text("SELECT key, platform, recipient, payload FROM outbox WHERE key LIKE 'digest:%'")).all()
    return {r.recipient: {"key": r.key, "platform": r.platform, **json.loads(r.payload)["card"]} for r in rows}


def test_owner_and_manager_digests(stack_factory):
    stack = stack_factory(start_workers=False)
    with session_scope(stack.runtime.engine) as session:
        _company(session)
        assert queue_daily_digests(session, now=EIGHT_AM, tz="Asia/Shanghai") == 2
    digests = _digests(stack)
    assert set(digests) == {"zhangsan", "wangjl"}  # nobody is told they have nothing to do

    mine = digests["zhangsan"]
    assert mine["title"] == "今日跟进 · 11月23日(周一)"
    assert dict(map(tuple, mine["fields"])) == {"今天": "2 家", "逾期": "1 家"}
    # Local dates, earliest first: 07:30 is still "today" at 08:00; the 20th is 3 days overdue.
    assert mine["body"] == "今天要跟进：\n· 美团 07:30\n· 腾讯 14:00\n逾期未跟进：\n· 招行 已逾期3天"
    team = digests["wangjl"]
    assert team["title"] == "团队跟进 · 11月23日(周一)"
    assert dict(map(tuple, team["fields"])) == {"张三": "今天2 · 逾期1"}


def test_a_person_on_two_platforms_gets_one_digest_where_they_last_wrote(stack_factory):
    stack = stack_factory(start_workers=False)
    with session_scope(stack.runtime.engine) as session:
        _company(session)
    stack.post_dingtalk(stack.dingtalk_peer.text("0147001", "你好"))  # 张三 last used DingTalk
    with session_scope(stack.runtime.engine) as session:
        queue_daily_digests(session, now=EIGHT_AM, tz="Asia/Shanghai")
    assert _digests(stack)["0147001"]["platform"] == "dingtalk"
    assert "zhangsan" not in _digests(stack)


def test_at_eight_the_dispatcher_fires_the_digest_once_and_the_cards_arrive(stack_factory):
    started = datetime.now(timezone.utc)
    # A clock that reads 07:59:58 on Monday when the test starts and runs on from there.
    stack = stack_factory(start_workers=False,
                          clock=lambda: EIGHT_AM - timedelta(seconds=2) + (datetime.now(timezone.utc) - started))
    with session_scope(stack.runtime.engine) as session:
        _company(session)
    stack.start_workers()
    wait_for(lambda: stack.wecom.cards_to("zhangsan") and stack.wecom.cards_to("wangjl"))
    settle(1.5)  # many dispatcher rounds inside the 08:00 slot
    assert len(stack.wecom.cards_to("zhangsan")) == 1 and len(stack.wecom.cards_to("wangjl")) == 1
    assert stack.wecom.cards_to("zhangsan")[0]["template_card"]["main_title"]["title"].startswith("今日跟进")
    with session_scope(stack.runtime.engine) as session:  # the same day again: nothing new
        assert queue_daily_digests(session, now=EIGHT_AM + timedelta(hours=1), tz="Asia/Shanghai") == 0


@pytest.mark.parametrize("day, weekends_off, sent", [
    (date(2026, 11, 21), True, False),  # a Saturday: Banli's own pushes wait for the working week
    (date(2026, 10, 10), True, True),  # the 调休 Saturday after 国庆 is worked: the digest comes
    (date(2026, 10, 1), True, False),  # 国庆, a Thursday: a public holiday
    (date(2026, 11, 21), False, True),  # an admin who turned 周末和节假日不推送 off gets it on Saturday
])
def test_the_digest_slot_keeps_to_working_days(stack_factory, day, weekends_off, sent):
    eight = datetime.combine(day, time(8), tzinfo=SHANGHAI)
    started = datetime.now(timezone.utc)
    stack = stack_factory(start_workers=False,
                          clock=lambda: eight - timedelta(seconds=1) + (datetime.now(timezone.utc) - started))
    with session_scope(stack.runtime.engine) as session:
        people = _company(session)
        for short, when in (("今日", eight + timedelta(hours=6)), ("逾期", eight - timedelta(days=3))):
            session.add(Customer(name=f"{short}客户有限公司", short_names=short, tier="A", owner_id=people["rep"].id,
                                 next_followup_at=when))
        if not weekends_off:
            admin = Employee(name="管理员", synced_at=EIGHT_AM)
            session.add(admin)
            session.flush()
            rules.put(session, "crm.skip_weekends", False, by=admin)
    stack.start_workers()
    wait_for(lambda: stack.count("outbox", f"WHERE key = 'cron:digest:{eight.isoformat()}' AND status = 'sent'"))
    settle(0.8)
    got = stack.wecom.cards_to("zhangsan")
    assert bool(got) == sent and len(got) == (1 if sent else 0)
    assert bool(stack.wecom.cards_to("wangjl")) == sent
    if sent:
        assert got[0]["template_card"]["main_title"]["title"].startswith(f"今日跟进 · {day.month}月{day.day}日")
