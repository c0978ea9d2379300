"""The Chinese calendar: public holidays and 调休 working days in leave days, approval reminders,
held pushes and date words; the company's own days through 规则."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from conftest import wait_for
from storage.db import session_scope
from storage.models import Outbox
from workflows import rules
from workflows.business_time import next_working_moment, push_time
from workflows.when import parse_when
from workflows.workdays import STATUTORY, Workdays, covered_until

from test_admin_rules import _ask, office  # noqa: F401
from test_approvals import SATURDAY_1130, _nth, _said, _tap, _title, oa  # noqa: F401

SHANGHAI = timezone(timedelta(hours=8))
QUIET = {"start": "21:00", "end": "08:00", "release": "08:30"}
TUESDAY_22_SEPT = datetime(2026, 9, 22, 10, 0, tzinfo=SHANGHAI)


def _back_to(stack, moment: datetime) -> None:
    """The oa company's clock starts on Saturday 21 November 2026; these tests live around 国庆."""
    stack.shift(moment - SATURDAY_1130)


def test_national_day_is_not_leave(oa):  # noqa: F811
    _back_to(oa, TUESDAY_22_SEPT)
    oa.post_wecom(oa.wecom_peer.text("zhangsan", "请假 年假 10月1日到10月7日"))
    said = _said(_nth(oa, "zhangsan", 1))
    assert "是国庆假期，不用请假" in said


def test_leave_across_national_day_counts_only_working_days(oa):  # noqa: F811
    """28 Sept – 9 Oct 2026: ten weekdays on a plain calendar, five working days in China
    (1–7 Oct off); the 调休 Saturday 10 Oct is outside the range."""
    _back_to(oa, TUESDAY_22_SEPT)
    oa.post_wecom(oa.wecom_peer.text("zhangsan", "请假 年假 9月28日到10月9日 回老家"))
    confirm = _nth(oa, "zhangsan", 1)
    assert _title(confirm) == "请假 · 请确认" and "年假 5天" in _said(confirm)


def test_a_make_up_saturday_is_a_leave_day(oa):  # noqa: F811
    _back_to(oa, TUESDAY_22_SEPT)
    oa.post_wecom(oa.wecom_peer.text("zhangsan", "请假 事假 10月10日"))  # a Saturday, worked in 2026
    confirm = _nth(oa, "zhangsan", 1)
    assert "事假 1天" in _said(confirm)


def test_an_approval_submitted_before_the_holiday_is_reminded_after_it(oa):  # noqa: F811
    """Submitted on 30 Sept at 17:00: 24 h later is 国庆, so the reminder waits for 8 Oct 09:00."""
    _back_to(oa, datetime(2026, 9, 30, 17, 0, tzinfo=SHANGHAI))
    oa.post_wecom(oa.wecom_peer.text("zhangsan", "报销 出租车 86.5"))
    _tap(oa, "zhangsan", _nth(oa, "zhangsan", 1), "提交")
    _nth(oa, "wangjl", 1)
    with session_scope(oa.runtime.engine) as session:
        due = session.execute(select(Outbox.due_at).where(Outbox.key.like("approval:timer:remind:%"))).scalar_one()
    assert due.replace(tzinfo=due.tzinfo or timezone.utc).astimezone(SHANGHAI) == \
        datetime(2026, 10, 8, 9, 0, tzinfo=SHANGHAI)


def test_company_days_off_come_from_the_rules_and_count(office):  # noqa: F811
    stack, chat = office
    bad = _ask(chat, "admin01", "规则 oa.extra_holidays 明天")
    assert bad["title"] == "没有保存" and "「明天」不是日期" in bad["text"]
    saved = _ask(chat, "admin01", "规则 公司自定假日 2026-12-31，2026年12月30日")
    assert saved["title"].startswith("已修改") and "2026-12-30，2026-12-31" in saved["text"]
    with session_scope(stack.runtime.engine) as session:
        assert rules.get(session, "oa.extra_holidays") == ["2026-12-30", "2026-12-31"]
    leave = _ask(chat, "zhangsan", "请假 年假 12月30日到12月31日")
    assert "12月30日到12月31日是公司假日，不用请假" in leave["text"]


def test_the_rules_listing_says_which_years_the_calendar_knows(office):  # noqa: F811
    stack, chat = office
    listing = _ask(chat, "admin01", "规则")
    assert f"法定节假日和调休：已收录到 {covered_until()} 年" in listing["text"]


# -- the calendar itself, where a chat cannot reach a date (holds, a year not covered) ------------


@pytest.mark.parametrize("moment, expected", [
    (datetime(2026, 10, 2, 10, 0, tzinfo=SHANGHAI), datetime(2026, 10, 8, 8, 30, tzinfo=SHANGHAI)),  # 国庆
    (datetime(2026, 9, 30, 22, 0, tzinfo=SHANGHAI), datetime(2026, 10, 8, 8, 30, tzinfo=SHANGHAI)),  # eve, quiet
    (datetime(2026, 10, 10, 10, 0, tzinfo=SHANGHAI), datetime(2026, 10, 10, 10, 0, tzinfo=SHANGHAI)),  # 调休 Sat
    (datetime(2026, 9, 19, 10, 0, tzinfo=SHANGHAI), datetime(2026, 9, 20, 8, 30, tzinfo=SHANGHAI)),  # Sat → 调休 Sun
])
def test_pushes_wait_for_the_next_working_day(moment, expected):
    assert push_time(moment, quiet=QUIET, skip_weekends=True, tz="Asia/Shanghai") == expected


def test_reminders_skip_holidays_and_work_make_up_days():
    assert next_working_moment(datetime(2026, 10, 3, 11, 0, tzinfo=SHANGHAI), "Asia/Shanghai") == \
        datetime(2026, 10, 8, 9, 0, tzinfo=SHANGHAI)
    assert next_working_moment(datetime(2026, 10, 10, 11, 0, tzinfo=SHANGHAI), "Asia/Shanghai") == \
        datetime(2026, 10, 10, 11, 0, tzinfo=SHANGHAI)


@pytest.mark.parametrize("said_on, text, expected", [
    (date(2026, 9, 28), "节后再联系", date(2026, 10, 8)),  # 中秋 is over: the next break is 国庆
    (date(2026, 9, 10), "中秋后", date(2026, 9, 28)),  # 中秋 2026: 25–27 Sept
    (date(2026, 9, 10), "节前", date(2026, 9, 24)),  # a deadline: the day before the break
    (date(2026, 9, 29), "3个工作日后", date(2026, 10, 9)),  # 30 Sept, 8 Oct, 9 Oct
    (date(2026, 12, 2), "节后", date(2027, 1, 4)),  # 2027 not published: 元旦 by law, a Friday
])
def test_date_words_know_the_holidays(said_on, text, expected):
    now = datetime.combine(said_on, datetime.min.time(), tzinfo=SHANGHAI).replace(hour=10)
    when = parse_when(text, now)
    assert when is not None and when.start.date() == expected


def test_a_year_not_published_yet_still_has_the_days_off_the_law_fixes():
    year = covered_until() + 1
    assert not STATUTORY.is_workday(date(year, 10, 1)) and not STATUTORY.is_workday(date(year, 1, 1))
    assert STATUTORY.holiday_name(date(year, 5, 2)) == "劳动节"
    company = Workdays(extra_workdays=frozenset({date(2026, 10, 8)}), extra_holidays=frozenset({date(2026, 10, 9)}))
    assert company.count(date(2026, 10, 8), date(2026, 10, 9)) == 1
