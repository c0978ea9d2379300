"""超期未跟进 alerts through the real cron, timers, queue and both platforms, with a moving clock:
one card per person per scan listing the customers worst first, 更多 for the rest, 记跟进 on a line
opening the visit form about that customer; a later scan in the same period sends nothing; the
manager's one card after the grace days; quiet hours and weekends hold the card, the admin can allow
weekends, and a follow-up logged while the card is held leaves that customer off it."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from urllib.parse import unquote

import pytest

from conftest import settle, wait_for
from sim_company import PLATFORMS, Chat, Clock, add_customer, seed_team, sh

OWNER = "超期未跟进"
MANAGER = "团队客户超期"
TIER_DAYS = {"A": 7, "B": 14, "C": 30}

# (short name, tier, days overdue at the jump, extra hours): the order a card must show them in —
# most days overdue first, then tier A before B before C (美团 is overdue hours longer than 腾讯,
# but both count 9 whole days, and 腾讯 is tier A).
THIRTEEN = [("腾讯", "A", 9, 1), ("美团", "B", 9, 5), ("华为", "A", 8, 1), ("京东", "C", 8, 2), ("小米", "A", 7, 1),
            ("百度", "A", 6, 1), ("网易", "B", 6, 1), ("滴滴", "A", 5, 1), ("携程", "A", 4, 1), ("顺丰", "C", 3, 1),
            ("招行", "A", 2, 1), ("平安", "A", 1, 1), ("万科", "A", 0, 1)]
JUMP = sh(23, 10, 10)  # Monday 10:10: the 10:05 scan runs right after the jump


def _world(stack_factory, platform, start, *, overdue_at):
    """Tier-A 腾讯, owned by 张三, untouched since 7 days before `overdue_at`."""
    clock = Clock(start)
    stack = stack_factory(start_workers=False, clock=clock)
    team = seed_team(stack, platform, at=start)
    add_customer(stack, "腾讯科技(深圳)有限公司", "腾讯", tier="A", owner_id=team["rep"],
                 since=overdue_at - timedelta(days=7))
    stack.start_workers()
    return stack, clock, Chat(stack, platform)


def _cards(chat, user, title=OWNER):
    return [m for m in chat.messages(user) if m["title"].startswith(title)]


def _lines(message) -> list[str]:
    """The customer lines of a card, whatever the platform rendered."""
    raw = message["raw"]
    text = raw["template_card"].get("sub_title_text", "") if "template_card" in raw else message["text"]
    return [line.strip().lstrip("·").strip().split("（")[0] for line in text.splitlines() if "天没有跟进" in line]


def card_more(message) -> str:
    """The value of a card's 更多 button."""
    raw = message["raw"]
    if "template_card" in raw:
        key = next(b["key"] for b in raw["template_card"]["button_list"] if b["text"] == "更多")
        return key.split("|", 1)[1]
    link = re.search(r"\[更多\]\(dtmd://dingtalkclient/sendMessage\?content=([^)]*)\)", raw["text"])
    return unquote(link.group(1)).split(" ", 1)[1]


def _thirteen_overdue_at_once(stack_factory, platform):
    """张三's 13 customers, none overdue on Friday the 13th; the clock then jumps ten days."""
    start = sh(13, 9, 50)
    clock = Clock(start)
    stack = stack_factory(start_workers=False, clock=clock)
    team = seed_team(stack, platform, at=start)
    for short, tier, late, hours in THIRTEEN:
        touched = JUMP - timedelta(days=TIER_DAYS[tier] + late, hours=hours)
        add_customer(stack, f"{short}有限公司", short, tier=tier, owner_id=team["rep"], since=touched)
    stack.start_workers()
    chat = Chat(stack, platform)
    wait_for(lambda: stack.count("outbox", "WHERE key LIKE 'cron:overdue:%' AND status = 'sent'"))
    assert _cards(chat, "zhangsan") == []  # 09:05 on the 13th: nobody is overdue yet
    clock.set(JUMP)
    return stack, clock, chat, team


@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_clock_jump_gives_one_card_worst_first_with_more_and_visit_buttons(stack_factory, platform):
    stack, clock, chat, team = _thirteen_overdue_at_once(stack_factory, platform)
    card = wait_for(lambda: _cards(chat, "zhangsan"))[0]
    settle(1.0)
    assert len(_cards(chat, "zhangsan")) == 1  # one card, not thirteen
    assert card["title"] == "超期未跟进 · 13 家"
    order = [short for short, *_ in THIRTEEN]
    assert _lines(card) == order[:5]
    assert "16 天没有跟进" in card["text"]  # 腾讯: A (7 days) + 9 overdue
    assert "记跟进·腾讯" in card["text"] and "更多" in card["text"]

    chat.tap("zhangsan", card, "更多")
    second = wait_for(lambda: [m for m in chat.messages("zhangsan")[1:] if m["title"].startswith(OWNER)])[0]
    assert _lines(second) == order[5:10]
    chat.tap("zhangsan", second, "更多")
    third = wait_for(lambda: [m for m in chat.messages("zhangsan")[2:] if m["title"].startswith(OWNER)])[0]
    assert _lines(third) == order[10:] and "更多" not in third["text"]

    chat.say("zhangsan", "#overdue.more 5:owner")  # a broken 更多 (typed, or a mangled link): a plain answer
    wait_for(lambda: any("按钮已经失效" in m["text"] for m in chat.messages("zhangsan")))
    chat.say("lisi", "#overdue.more 5:" + card_more(card).split(":", 1)[1])  # 张三's card forwarded to 李四
    wait_for(lambda: any("没有还要跟进的客户" in m["text"] for m in chat.messages("lisi")))
    assert not any("网易" in m["text"] for m in chat.messages("lisi"))

    if platform == "dingtalk":  # the link sends words a person could type, not an internal code
        assert "#customer.visit" not in second["text"] and "content=%E6%8B%9C%E8%AE%BF" in second["text"]
    chat.tap("zhangsan", second, "记跟进·网易")  # 记跟进 on a line: the visit form about that customer
    form = wait_for(lambda: [m for m in chat.messages("zhangsan") if m["title"] == "记拜访 · 网易"])
    assert "聊了什么" in form[0]["text"]
    chat.say("zhangsan", "聊了续约的报价 明天再联系")
    wait_for(lambda: any(t.startswith("已记录") for t in chat.titles("zhangsan")))
    assert stack.count("follow_up", "WHERE content LIKE '%续约的报价%' AND customer_id = "
                                    "(SELECT id FROM customer WHERE short_names = '网易')") == 1

    # The next hourly scan, same overdue period: every customer was told about once — nothing new.
    sent_before = len(chat.messages("zhangsan"))
    clock.set(JUMP + timedelta(hours=1))
    wait_for(lambda: stack.count("outbox", "WHERE key LIKE 'cron:overdue:%T11:05%' AND status = 'sent'"))
    settle(0.8)
    assert len(chat.messages("zhangsan")) == sent_before
    assert stack.count("overdue_mark", "WHERE key LIKE 'overdue:owner:%'") == 13  # one record per customer


@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_later_scan_lists_only_the_newly_overdue(stack_factory, platform):
    stack, clock, chat, team = _thirteen_overdue_at_once(stack_factory, platform)
    wait_for(lambda: _cards(chat, "zhangsan"))
    add_customer(stack, "字节跳动有限公司", "字节", tier="A", owner_id=team["rep"],
                 since=JUMP + timedelta(hours=2) - timedelta(days=7))
    clock.set(JUMP + timedelta(hours=3))  # 13:05: 字节 is overdue now, the thirteen still are
    later = wait_for(lambda: _cards(chat, "zhangsan")[1:])
    settle(0.8)
    assert len(_cards(chat, "zhangsan")) == 2
    assert later[0]["title"] == "超期未跟进 · 1 家" and _lines(later[0]) == ["字节"]
    assert "另有 13 家之前提醒过" in json.dumps(later[0]["raw"], ensure_ascii=False)


@pytest.mark.parametrize("platform", PLATFORMS)
def test_owner_card_once_then_one_manager_card_after_grace(stack_factory, platform):
    stack, clock, chat = _world(stack_factory, platform, sh(23, 9, 50), overdue_at=sh(23, 10, 0))
    settle(1.0)  # the 09:05 scan ran: 腾讯 is not overdue yet
    assert chat.titles("zhangsan") == []

    clock.set(sh(23, 10, 10))  # Monday: the 10:05 scan sees 7 days without a follow-up
    alert = wait_for(lambda: _cards(chat, "zhangsan"))[0]
    assert alert["title"] == "超期未跟进 · 1 家" and "7 天没有跟进" in alert["text"]
    assert "记跟进·腾讯" in alert["text"]
    clock.set(sh(23, 11, 10))  # the next hourly scan: nothing new
    wait_for(lambda: stack.count("outbox", "WHERE key LIKE 'cron:overdue:%T11:05%' AND status = 'sent'"))
    settle(0.5)
    assert len(_cards(chat, "zhangsan")) == 1 and chat.titles("wangjl") == []

    clock.set(sh(25, 10, 10))  # two grace days later, still untouched: the manager hears of it
    manager = wait_for(lambda: _cards(chat, "wangjl", MANAGER))[0]
    assert manager["title"] == "团队客户超期 · 1 家"
    assert "张三的腾讯" in manager["text"] and "9 天没有跟进" in manager["text"] and "查看·腾讯" in manager["text"]
    clock.set(sh(25, 11, 10))
    wait_for(lambda: stack.count("outbox", "WHERE key LIKE 'cron:overdue:%-25T11:05%' AND status = 'sent'"))
    settle(0.5)
    assert len(_cards(chat, "zhangsan")) == 1 and len(_cards(chat, "wangjl", MANAGER)) == 1


@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_scan_at_night_holds_the_card_until_half_past_eight(stack_factory, platform):
    stack, clock, chat = _world(stack_factory, platform, sh(24, 22, 10), overdue_at=sh(24, 20, 0))
    wait_for(lambda: stack.count("outbox", "WHERE key LIKE 'overdue:card:owner:%' AND status = 'pending'"))
    settle(0.8)
    assert chat.titles("zhangsan") == []  # 22:10 Tuesday: quiet hours
    clock.set(sh(25, 8, 20))  # quiet hours are over at 08:00, but held pushes go out at 08:30
    settle(1.0)
    assert chat.titles("zhangsan") == []
    clock.set(sh(25, 8, 31))
    wait_for(lambda: _cards(chat, "zhangsan"))
    settle(0.5)
    assert len(_cards(chat, "zhangsan")) == 1


@pytest.mark.parametrize("platform", PLATFORMS)
def test_saturday_waits_for_monday(stack_factory, platform):
    stack, clock, chat = _world(stack_factory, platform, sh(21, 10, 10), overdue_at=sh(21, 9, 30))
    wait_for(lambda: stack.count("outbox", "WHERE key LIKE 'overdue:card:owner:%' AND status = 'pending'"))
    clock.set(sh(22, 15, 10))  # Sunday afternoon: still held
    settle(1.0)
    assert chat.titles("zhangsan") == []
    clock.set(sh(23, 8, 31))  # Monday 08:30
    wait_for(lambda: _cards(chat, "zhangsan"))
    settle(0.5)
    assert len(_cards(chat, "zhangsan")) == 1


@pytest.mark.parametrize("platform", PLATFORMS)
def test_saturday_pushes_when_the_admin_allows_weekends(stack_factory, platform):
    stack, clock, chat = _world(stack_factory, platform, sh(21, 9, 15), overdue_at=sh(21, 9, 30))
    chat.say("admin01", "规则 crm.skip_weekends 否")
    wait_for(lambda: any(t.startswith("已修改") for t in chat.titles("admin01")))
    clock.set(sh(21, 10, 10))  # Saturday's 10:05 scan
    wait_for(lambda: _cards(chat, "zhangsan"))
    settle(0.5)
    assert len(_cards(chat, "zhangsan")) == 1


@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_follow_up_while_the_card_is_held_leaves_that_customer_off(stack_factory, platform):
    stack, clock, chat = _world(stack_factory, platform, sh(24, 22, 10), overdue_at=sh(24, 20, 0))
    wait_for(lambda: stack.count("outbox", "WHERE key LIKE 'overdue:card:owner:%' AND status = 'pending'"))
    chat.say("zhangsan", "拜访 腾讯 晚上吃饭聊了续约")
    wait_for(lambda: any(t.startswith("已记录") for t in chat.titles("zhangsan")))
    clock.set(sh(25, 8, 31))  # the held card's moment: nobody is left on it, so nothing is sent
    wait_for(lambda: stack.count("outbox", "WHERE key LIKE 'overdue:card:owner:%' AND status = 'sent'"))
    settle(1.0)
    assert _cards(chat, "zhangsan") == []
