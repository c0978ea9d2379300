"""公海: the nightly sweep warns then releases an untouched customer; 公海 lists the pool; 领取 claims
within the admin's limits; of two people claiming one customer at once, exactly one gets it."""

from __future__ import annotations

import json
import threading

import pytest
from sqlalchemy import text

from conftest import settle, wait_for
from sim_company import PLATFORMS, Chat, Clock, add_customer, seed_team, sh
from storage.db import session_scope
from storage.models import Customer, Employee
from workflows import pool
from workflows.pool import Refused


def _owner(stack, customer_id):
    with stack.runtime.engine.connect() as conn:
        return conn.execute(text("SELECT owner_id FROM customer WHERE id = :id"), {"id": customer_id}).scalar()


@pytest.mark.parametrize("platform", PLATFORMS)
def test_warned_then_released_then_claimed_by_someone_else(stack_factory, platform):
    clock = Clock(sh(20, 10, 30))  # Friday
    stack = stack_factory(start_workers=False, clock=clock)
    team = seed_team(stack, platform, at=clock())
    # Tier A returns after 30 days: last touched 24 Oct 10:00 → released 23 Nov, warned from the 20th.
    tencent = add_customer(stack, "腾讯科技(深圳)有限公司", "腾讯", tier="A", owner_id=team["rep"],
                           since=sh(1, 10).replace(month=10, day=24), industry="互联网", region="深圳")
    stack.start_workers()
    chat = Chat(stack, platform)

    warning = wait_for(lambda: [m for m in chat.messages("zhangsan") if m["title"] == "即将退回公海 · 腾讯"])[0]
    assert "11月23日(周一)将退回公海" in warning["text"]
    if platform == "dingtalk":  # 记跟进 sends words a person could type, not `#customer.visit 12`
        assert "#customer" not in warning["text"] and "content=%E6%8B%9C%E8%AE%BF" in warning["text"]
    clock.set(sh(21, 10, 30))  # Saturday's sweep: no second warning
    wait_for(lambda: stack.count("outbox", "WHERE key LIKE 'cron:pool:%-21T02:15%' AND status = 'sent'"))
    settle(0.5)
    assert chat.titles("zhangsan").count("即将退回公海 · 腾讯") == 1
    assert _owner(stack, tencent) == team["rep"]

    clock.set(sh(23, 10, 40))  # Monday: 30 days are up, and the warning is 3 days old
    notice = wait_for(lambda: [m for m in chat.messages("zhangsan") if m["title"] == "已退回公海 · 腾讯"])[0]
    assert "30 天后才能重新领取" in notice["text"]
    assert _owner(stack, tencent) is None
    assert stack.count("ownership_change", f"WHERE customer_id = {tencent} AND reason = 'pool' "
                                           f"AND from_owner_id = {team['rep']} AND to_owner_id IS NULL") == 1
    assert stack.count("audit_log", f"WHERE action = 'customer.pool' AND subject = 'customer:{tencent}' "
                                    "AND actor_id IS NULL") == 1

    chat.say("zhangsan", "领取 腾讯")  # the former owner waits 30 days
    refusal = wait_for(lambda: [m for m in chat.messages("zhangsan") if m["title"] == "领取不了"])[0]
    assert "你11月23日刚放弃这家，12月23日后才能再领" in refusal["text"]
    assert _owner(stack, tencent) is None

    chat.say("lisi", "公海")
    listing = wait_for(lambda: [m for m in chat.messages("lisi") if m["title"] == "公海 · 1 家"])[0]
    assert "A级 · 互联网 · 深圳 · 今天进公海" in listing["text"] and "领取腾讯" in listing["text"]
    chat.tap("lisi", listing, "领取腾讯")
    claimed = wait_for(lambda: [m for m in chat.messages("lisi") if m["title"] == "已领取 · 腾讯"])[0]
    assert "每 7 天至少跟进一次" in claimed["text"]
    assert _owner(stack, tencent) == team["other"]
    assert stack.count("audit_log", f"WHERE action = 'customer.claim' AND actor_id = {team['other']}") == 1


@pytest.mark.parametrize("platform", PLATFORMS)
def test_claim_limits_name_the_limit(stack_factory, platform):
    clock = Clock(sh(24, 10, 0))  # Tuesday
    stack = stack_factory(start_workers=False, clock=clock)
    team = seed_team(stack, platform, at=clock())
    add_customer(stack, "阿里巴巴(中国)有限公司", "阿里", owner_id=team["rep"], since=sh(24, 9))
    add_customer(stack, "北京三快在线科技有限公司", "美团", owner_id=team["other"], since=sh(24, 9))
    for name, short in (("深圳市腾讯计算机系统有限公司", "腾讯"), ("招商银行股份有限公司", "招行"),
                        ("北京字节跳动科技有限公司", "字节"), ("深圳市大疆创新科技有限公司", "大疆")):
        add_customer(stack, name, short, tier="B", owner_id=None, since=sh(20, 2))
    stack.start_workers()
    chat = Chat(stack, platform)
    chat.say("admin01", "规则 crm.claims_per_day 2")
    wait_for(lambda: "已修改 · 每人每天最多领取公海客户数" in chat.titles("admin01"))

    def reply_to(text_, n):
        chat.say("zhangsan", text_)
        return wait_for(lambda: len(chat.messages("zhangsan")) >= n and chat.messages("zhangsan")[n - 1])

    assert reply_to("领取 腾讯", 1)["title"] == "已领取 · 腾讯"
    assert reply_to("领取招行", 2)["title"] == "已领取 · 招行"
    third = reply_to("领取 字节", 3)
    assert third["title"] == "领取不了" and "今天已领取 2 家" in third["text"]
    taken = reply_to("领取 美团", 4)
    assert taken["title"] == "这家不在公海里" and "李四" in taken["text"]
    assert reply_to("领取 阿里", 5)["title"] == "已经是你的客户"

    clock.set(sh(25, 10, 0))  # a new day; now the cap: 张三 holds 阿里, 腾讯, 招行
    chat.say("admin01", "规则 owner_cap 3")
    wait_for(lambda: "已修改 · 每人最多持有客户数" in chat.titles("admin01"))
    capped = reply_to("领取 字节", 6)
    assert capped["title"] == "领取不了" and "已达上限 3 家" in capped["text"]
    with stack.runtime.engine.connect() as conn:
        owned = conn.execute(text("SELECT short_names FROM customer WHERE owner_id = :r ORDER BY id"),
                             {"r": team["rep"]}).scalars().all()
    assert owned == ["阿里", "腾讯", "招行"]


def test_two_people_claiming_one_customer_at_once_one_gets_it(stack_factory):
    """Two sessions, two threads, one pool customer: exactly one claim wins (PostgreSQL in CI)."""
    stack = stack_factory(start_workers=False)
    team = seed_team(stack, "wecom", at=sh(24, 9))
    target = add_customer(stack, "招商银行股份有限公司", "招行", owner_id=None, since=sh(20, 2))
    start = threading.Barrier(2)
    outcomes: dict[str, str] = {}

    def attempt(who: str) -> None:
        start.wait()
        try:
            with session_scope(stack.runtime.engine) as session:
                pool.claim(session, session.get(Employee, team[who]), session.get(Customer, target),
                           now=sh(24, 10), tz="Asia/Shanghai")
            outcomes[who] = "won"
        except Refused as refusal:
            outcomes[who] = refusal.limit

    threads = [threading.Thread(target=attempt, args=(who,)) for who in ("rep", "other")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes.values()) == ["taken", "won"]
    winner = next(who for who, outcome in outcomes.items() if outcome == "won")
    assert _owner(stack, target) == team[winner]
    assert stack.count("ownership_change", "WHERE reason = 'claim'") == 1
    assert stack.count("audit_log", "WHERE action = 'customer.claim'") == 1


def test_the_pool_list_shows_no_phones_and_points_to_more(stack_factory):
    stack = stack_factory(clock=Clock(sh(24, 10)))
    seed_team(stack, "wecom", at=sh(24, 9))
    with session_scope(stack.runtime.engine) as session:
        from storage.models import Contact
        for n in range(7):
            customer = Customer(name=f"测试客户{n}有限公司", short_names=f"客户{n}", tier="C", owner_id=None,
                                owned_since=sh(20 - n, 2))
            session.add(customer)
            session.flush()
            session.add(Contact(customer_id=customer.id, name="王总", phone="13800138000"))
    chat = Chat(stack, "wecom")
    chat.say("lisi", "公海")
    listing = wait_for(lambda: chat.messages("lisi"))[0]
    assert listing["title"] == "公海 · 7 家"
    card = listing["raw"]["template_card"]
    assert len(card["button_list"]) == 5 and "138" not in json.dumps(card, ensure_ascii=False)
    assert [f["keyname"] for f in card["horizontal_content_list"]][0] == "客户6"  # longest waiting first
    assert "还有 2 家没列出" in listing["text"]


def test_the_database_guard_refuses_a_claim_read_before_someone_else_won(stack_factory):
    """The Python checks pass on a stale read; the conditional UPDATE still refuses, nothing changes."""
    stack = stack_factory(start_workers=False)
    team = seed_team(stack, "wecom", at=sh(24, 9))
    target = add_customer(stack, "招商银行股份有限公司", "招行", owner_id=None, since=sh(20, 2))
    with session_scope(stack.runtime.engine) as session:
        stale = session.get(Customer, target)
        assert stale.owner_id is None
        with stack.runtime.engine.begin() as other:  # 李四 wins meanwhile, on another connection
            other.execute(text("UPDATE customer SET owner_id = :o WHERE id = :id"), {"o": team["other"], "id": target})
        with pytest.raises(Refused) as refused:
            pool.claim(session, session.get(Employee, team["rep"]), stale, now=sh(24, 10), tz="Asia/Shanghai")
        assert refused.value.limit == "taken" and "李四" in refused.value.message
    assert _owner(stack, target) == team["other"]
    assert stack.count("ownership_change") == 0


@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_customer_found_long_past_its_days_is_warned_before_it_goes(stack_factory, platform):
    """Banli installed over old data (or a rule shortened): a warning first, the release days later."""
    clock = Clock(sh(24, 10, 30))  # Tuesday
    stack = stack_factory(start_workers=False, clock=clock)
    team = seed_team(stack, platform, at=clock())
    old = add_customer(stack, "招商银行股份有限公司", "招行", tier="A", owner_id=team["rep"],
                       since=sh(1, 10).replace(month=9))  # 84 days untouched
    stack.start_workers()
    chat = Chat(stack, platform)
    warning = wait_for(lambda: [m for m in chat.messages("zhangsan") if m["title"] == "即将退回公海 · 招行"])[0]
    assert "11月27日(周五)将退回公海" in warning["text"]
    assert _owner(stack, old) == team["rep"]
    clock.set(sh(26, 10, 30))
    wait_for(lambda: stack.count("outbox", "WHERE key LIKE 'cron:pool:%-26T02:15%' AND status = 'sent'"))
    settle(0.5)
    assert _owner(stack, old) == team["rep"] and chat.titles("zhangsan").count("即将退回公海 · 招行") == 1
    clock.set(sh(27, 10, 40))
    wait_for(lambda: "已退回公海 · 招行" in chat.titles("zhangsan"))
    assert _owner(stack, old) is None


def test_one_night_warns_at_most_five_customers_per_owner(stack_factory):
    stack = stack_factory(start_workers=False)
    team = seed_team(stack, "wecom", at=sh(24, 9))
    for n in range(7):
        add_customer(stack, f"老客户{n}有限公司", f"老客户{n}", tier="C", owner_id=team["rep"], since=sh(1, 10).replace(month=8))
    with session_scope(stack.runtime.engine) as session:
        assert pool.sweep(session, now=sh(24, 10), tz="Asia/Shanghai") == {"warned": 5, "released": 0}
    with session_scope(stack.runtime.engine) as session:  # the next night: the other two
        assert pool.sweep(session, now=sh(25, 10), tz="Asia/Shanghai") == {"warned": 2, "released": 0}
    assert stack.count("customer", "WHERE owner_id IS NULL") == 0
