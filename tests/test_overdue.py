"""超期未跟进 alerts through the real cron, queue and both platforms, with a moving clock: the owner
once, the manager once after the grace days, quiet hours and weekends hold the push, the admin can
allow weekends, and a follow-up logged while an alert is held withdraws it."""

from __future__ import annotations

from datetime import timedelta

import pytest

from conftest import settle, wait_for
from sim_company import PLATFORMS, Chat, Clock, add_customer, seed_team, sh

OWNER_ALERT = "超期未跟进 · 腾讯"
MANAGER_ALERT = "团队客户超期 · 腾讯"


def _world(stack_factory, platform, start, *, overdue_at):
    """Tier-A 腾讯, owned by 张三, untouched since 7 days before `overdue_at`."""
    clock = Clock(start)
    stack = stack_factory(start_workers=False, clock=clock)
    team = seed_team(stack, platform, at=start)
    add_customer(stack, "腾讯科技(深圳)有限公司", "腾讯", tier="A", owner_id=team["rep"],
                 since=overdue_at - timedelta(days=7))
    stack.start_workers()
    return stack, clock, Chat(stack, platform)


def _count(chat, user, title):
    return chat.titles(user).count(title)


@pytest.mark.parametrize("platform", PLATFORMS)
def test_owner_alert_once_then_manager_after_grace(stack_factory, platform):
    stack, clock, chat = _world(stack_factory, platform, sh(23, 9, 50), overdue_at=sh(23, 10, 0))
    settle(1.0)  # the 09:05 scan ran: 腾讯 is not overdue yet
    assert chat.titles("zhangsan") == []

    clock.set(sh(23, 10, 10))  # Monday: the 10:05 scan sees 7 days without a follow-up
    alert = wait_for(lambda: [m for m in chat.messages("zhangsan") if m["title"] == OWNER_ALERT])[0]
    assert "7 天没有跟进" in alert["text"] and "记跟进" in alert["text"] and "查看" in alert["text"]
    clock.set(sh(23, 11, 10))  # the next hourly scan: nothing new
    wait_for(lambda: stack.count("outbox", "WHERE key LIKE 'cron:overdue:%T11:05%' AND status = 'sent'"))
    settle(0.5)
    assert _count(chat, "zhangsan", OWNER_ALERT) == 1 and chat.titles("wangjl") == []

    clock.set(sh(25, 10, 10))  # two grace days later, still untouched: the manager hears of it
    manager = wait_for(lambda: [m for m in chat.messages("wangjl") if m["title"] == MANAGER_ALERT])[0]
    assert "张三" in manager["text"] and "9 天没有跟进" in manager["text"]
    clock.set(sh(25, 11, 10))
    wait_for(lambda: stack.count("outbox", "WHERE key LIKE 'cron:overdue:%-25T11:05%' AND status = 'sent'"))
    settle(0.5)
    assert _count(chat, "zhangsan", OWNER_ALERT) == 1 and _count(chat, "wangjl", MANAGER_ALERT) == 1


@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_scan_at_night_holds_the_push_until_half_past_eight(stack_factory, platform):
    stack, clock, chat = _world(stack_factory, platform, sh(24, 22, 10), overdue_at=sh(24, 20, 0))
    wait_for(lambda: stack.count("outbox", "WHERE key LIKE 'overdue:owner:%' AND status = 'pending'"))
    settle(0.8)
    assert chat.titles("zhangsan") == []  # 22:10 Tuesday: quiet hours
    clock.set(sh(25, 8, 20))  # quiet hours are over at 08:00, but held pushes go out at 08:30
    settle(1.0)
    assert chat.titles("zhangsan") == []
    clock.set(sh(25, 8, 31))
    wait_for(lambda: OWNER_ALERT in chat.titles("zhangsan"))
    settle(0.5)
    assert _count(chat, "zhangsan", OWNER_ALERT) == 1


@pytest.mark.parametrize("platform", PLATFORMS)
def test_saturday_waits_for_monday(stack_factory, platform):
    stack, clock, chat = _world(stack_factory, platform, sh(21, 10, 10), overdue_at=sh(21, 9, 30))
    wait_for(lambda: stack.count("outbox", "WHERE key LIKE 'overdue:owner:%' AND status = 'pending'"))
    clock.set(sh(22, 15, 10))  # Sunday afternoon: still held
    settle(1.0)
    assert chat.titles("zhangsan") == []
    clock.set(sh(23, 8, 31))  # Monday 08:30
    wait_for(lambda: OWNER_ALERT in chat.titles("zhangsan"))
    settle(0.5)
    assert _count(chat, "zhangsan", OWNER_ALERT) == 1


@pytest.mark.parametrize("platform", PLATFORMS)
def test_saturday_pushes_when_the_admin_allows_weekends(stack_factory, platform):
    stack, clock, chat = _world(stack_factory, platform, sh(21, 9, 15), overdue_at=sh(21, 9, 30))
    chat.say("admin01", "规则 crm.skip_weekends 否")
    wait_for(lambda: any(t.startswith("已修改") for t in chat.titles("admin01")))
    clock.set(sh(21, 10, 10))  # Saturday's 10:05 scan
    wait_for(lambda: OWNER_ALERT in chat.titles("zhangsan"))
    settle(0.5)
    assert _count(chat, "zhangsan", OWNER_ALERT) == 1


@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_follow_up_while_the_alert_is_held_withdraws_it(stack_factory, platform):
    stack, clock, chat = _world(stack_factory, platform, sh(24, 22, 10), overdue_at=sh(24, 20, 0))
    wait_for(lambda: stack.count("outbox", "WHERE key LIKE 'overdue:owner:%' AND status = 'pending'"))
    chat.say("zhangsan", "拜访 腾讯 晚上吃饭聊了续约")
    wait_for(lambda: any(t.startswith("已记录") for t in chat.titles("zhangsan")))
    assert stack.count("outbox", "WHERE key LIKE 'overdue:owner:%' AND status = 'cancelled'") == 1
    clock.set(sh(25, 8, 31))
    wait_for(lambda: stack.count("outbox", "WHERE key LIKE 'cron:overdue:%T08:05%' AND status = 'sent'"))
    settle(1.0)
    assert OWNER_ALERT not in chat.titles("zhangsan")
