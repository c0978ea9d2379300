"""Times in a visit note that make sense: 今天 is when the visit happened, a day without a time is the
company's follow-up hour, a time already past is never planned, a time Banli picks stays out of
quiet hours, and a later visit keeps the plan it does not replace."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from chat import Chat, rows, sales_team, visits
from storage.db import session_scope
from workflows import rules

PLATFORMS = ["wecom", "dingtalk"]
SHANGHAI = timezone(timedelta(hours=8))


@pytest.fixture
def team(stack_factory):
    return sales_team(stack_factory)


def _utc(value) -> datetime | None:
    if value is None:
        return None
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment


def _pending_reminders(team) -> list[datetime]:
    return [_utc(due) for due, in rows(team, "SELECT due_at FROM outbox WHERE key LIKE 'remind:followup:%' "
                                             "AND status = 'pending' ORDER BY due_at")]


def _planned(team, short: str) -> datetime | None:
    (value,), = rows(team, f"SELECT next_followup_at FROM customer WHERE short_names = '{short}'")
    return _utc(value)


@pytest.mark.parametrize("platform", PLATFORMS)
def test_today_in_a_visit_note_is_when_it_happened(team, platform):
    done = Chat(team, platform).say("拜访 腾讯 今天和李总见了面")
    assert done.title == "已记录 · 腾讯" and done.field("下次跟进") == "未设置"
    (_, _, content, next_at), = visits(team)
    assert content == "今天和李总见了面" and next_at is None
    assert _pending_reminders(team) == []


@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_morning_already_past_is_not_tomorrow(team, platform):
    """Said at 10:00 on Saturday: 上午…见了面 is this morning's visit, not a plan for Sunday 09:00."""
    done = Chat(team, platform).say("拜访 腾讯 上午和李总见了面")
    assert done.field("下次跟进") == "未设置" and _pending_reminders(team) == []


@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_day_without_a_time_is_the_follow_up_hour(team, platform):
    done = Chat(team, platform).say("拜访 腾讯 聊了报价 后天再联系")
    assert done.field("下次跟进") == "11月23日(周一) 09:00"
    assert _pending_reminders(team) == [datetime(2026, 11, 23, 9, 0, tzinfo=SHANGHAI)]


def test_the_follow_up_hour_is_an_admin_rule(team):
    with session_scope(team.runtime.engine) as session:
        rules.put(session, "crm.followup_hour", "10:30", by=None)
    Chat(team, "wecom").say("拜访 腾讯 聊了报价 后天再联系")
    assert _pending_reminders(team) == [datetime(2026, 11, 23, 10, 30, tzinfo=SHANGHAI)]


def test_a_picked_hour_inside_quiet_hours_waits_for_their_end(team):
    with session_scope(team.runtime.engine) as session:
        rules.put(session, "crm.quiet_hours", {"start": "21:00", "end": "09:30", "release": "09:30"}, by=None)
    Chat(team, "wecom").say("拜访 腾讯 聊了报价 后天再联系")
    assert _pending_reminders(team) == [datetime(2026, 11, 23, 9, 30, tzinfo=SHANGHAI)]


def test_a_time_the_person_typed_is_kept_even_in_quiet_hours(team):
    Chat(team, "wecom").say("电话 腾讯 约了 明晚10点再打")
    assert _pending_reminders(team) == [datetime(2026, 11, 22, 22, 0, tzinfo=SHANGHAI)]


@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_later_visit_without_a_date_keeps_the_plan(team, platform):
    chat = Chat(team, platform)
    chat.say("拜访 腾讯 聊了报价 下周三再跟进")
    wednesday = datetime(2026, 11, 25, 9, 0, tzinfo=SHANGHAI)
    later = chat.say("电话 腾讯 发了合同草稿")
    assert later.field("下次跟进") == "11月25日(周三) 09:00（原计划）"
    assert _planned(team, "腾讯") == wednesday and _pending_reminders(team) == [wednesday]


def test_a_new_date_replaces_the_plan_and_its_reminder(team):
    chat = Chat(team, "wecom")
    chat.say("拜访 腾讯 聊了报价 下周三再跟进")
    chat.say("电话 腾讯 改到下周五再聊")
    friday = datetime(2026, 11, 27, 9, 0, tzinfo=SHANGHAI)
    assert _planned(team, "腾讯") == friday and _pending_reminders(team) == [friday]


def test_a_visit_after_the_planned_day_has_done_it(team):
    chat = Chat(team, "wecom")
    chat.say("拜访 腾讯 聊了报价 明天再跟进")
    team.clock.skip(days=2)
    chat.say("拜访 腾讯 签了意向书")
    assert _planned(team, "腾讯") is None


@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_past_answer_to_the_next_time_question_is_asked_again(team, platform):
    chat = Chat(team, platform)
    ask = chat.tap(chat.tap(chat.say("拜访"), "招行"), "跳过")
    assert "下次什么时候跟进" in ask.text
    again = chat.say("昨天")
    assert "已经过了" in again.text and visits(team) == []
    done = chat.say("周二")
    assert done.field("下次跟进") == "11月24日(周二) 09:00"


def test_snoozing_a_day_from_the_evening_waits_for_the_morning(team):
    chat = Chat(team, "wecom")
    chat.say("拜访 腾讯 聊了报价 今晚9点半再打")  # typed: kept at 21:30, inside quiet hours
    assert _pending_reminders(team) == [datetime(2026, 11, 21, 21, 30, tzinfo=SHANGHAI)]
    team.clock.skip(hours=11, minutes=31)  # 21:31: the reminder card is on the phone
    reminder = next(r for r in _wait_reminder(team, chat) if r.title.startswith("跟进提醒"))
    moved = chat.tap(reminder, "推迟1天")
    # Same time tomorrow would be 21:31, inside quiet hours: Banli picked it, so it waits for 08:30.
    assert moved.title == "已推迟" and "11月23日(周一) 08:30" in moved.text


def _wait_reminder(team, chat):
    from conftest import wait_for

    wait_for(lambda: any(r.title.startswith("跟进提醒") for r in chat.replies()), timeout=15)
    return chat.replies()

