"""workflows.when on a fixed clock (docs/architecture.md §4 "Dates and times").

Expected values are written compactly and compared with a rendering of the parsed When:
  "2026-11-25"                 a day (has_time False)
  "2026-11-25 14:00"           a moment
  "2026-11-30 前"              a deadline (deadline=True)
  "2026-11-23..2026-11-27"     a span of days; "2026-11-21 14:00..16:00" a time range
  None                         nothing understood
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from workflows.when import When, describe, has_time_word, parse_when, strip_when

TZ = ZoneInfo("Asia/Shanghai")
SAT = datetime(2026, 11, 21, 10, 0, tzinfo=TZ)       # Saturday morning
WED_EVE = datetime(2026, 11, 18, 20, 0, tzinfo=TZ)   # Wednesday evening
YEAR_END = datetime(2026, 12, 30, 10, 0, tzinfo=TZ)  # Wednesday, two days before the year wraps
NOWS = {"sat": SAT, "wed_eve": WED_EVE, "dec30": YEAR_END}


def render(w: When | None) -> str | None:
    if w is None:
        return None
    fmt = "%Y-%m-%d %H:%M" if w.has_time else "%Y-%m-%d"
    out = w.start.strftime(fmt)
    if w.end is not None:
        same_day = w.has_time and w.end.date() == w.start.date()
        out += ".." + w.end.strftime("%H:%M" if same_day else fmt)
    if w.deadline:
        out += " 前"
    return out


CASES = [
    # --- the brief's whole message, and follow-up notes
    ("msg-visit-next-wed-pm", "sat", "拜访 腾迅 聊了报价 下周三下午再跟进", "2026-11-25 14:00"),
    ("msg-next-wed-3pm", "sat", "拜访腾讯，聊了报价，下周三下午3点再跟进", "2026-11-25 15:00"),
    ("msg-next-wed-half-past", "sat", "下周三下午3点半打电话给王总", "2026-11-25 15:30"),
    ("msg-surname-zhou-then-thu", "sat", "跟周总约了周四下午两点", "2026-11-26 14:00"),
    ("msg-month-end-answer", "sat", "客户说月底前给答复", "2026-11-30 前"),
    ("msg-leave-range", "sat", "请假 12月1日至12月3日", "2026-12-01..2026-12-03"),
    ("msg-trip-mon-to-wed", "sat", "下周一到周三出差上海", "2026-11-23..2026-11-25"),
    ("msg-3-days-later", "sat", "3天后回访", "2026-11-24"),
    ("msg-two-weeks", "sat", "两周后再联系张经理", "2026-12-05"),
    ("msg-tomorrow-10am", "sat", "明天上午十点去客户那边", "2026-11-22 10:00"),
    ("msg-deadline-with-time", "sat", "明天下午3点前回复", "2026-11-22 15:00 前"),
    ("msg-time-then-count", "sat", "下午3点三个人开会", "2026-11-21 15:00"),
    # --- weekdays (Saturday 2026-11-21)
    ("bare-fri-passed-means-next", "sat", "周五", "2026-11-27"),
    ("this-week-fri-literal", "sat", "本周五", "2026-11-20"),
    ("zhe-zhou-literal", "sat", "这周五", "2026-11-20"),
    ("next-wed", "sat", "下周三", "2026-11-25"),
    ("next-next-mon", "sat", "下下周一", "2026-11-30"),
    ("last-fri", "sat", "上周五", "2026-11-13"),
    ("bare-sat-is-today", "sat", "周六", "2026-11-21"),
    ("bare-sun", "sat", "周日", "2026-11-22"),
    ("sat-9am-passed-next-week", "sat", "周六上午9点", "2026-11-28 09:00"),
    ("xingqitian", "sat", "星期天", "2026-11-22"),
    ("libai-san", "sat", "礼拜三", "2026-11-25"),
    ("xia-libai-er", "sat", "下礼拜二", "2026-11-24"),
    ("xia-ge-xingqi-yi", "sat", "下个星期一", "2026-11-23"),
    ("wed-today-bare", "wed_eve", "周三", "2026-11-18"),
    ("wed-pm-passed-next", "wed_eve", "周三下午", "2026-11-25 14:00"),
    # --- relative days
    ("today", "sat", "今天", "2026-11-21"),
    ("tomorrow", "sat", "明天", "2026-11-22"),
    ("day-after", "sat", "后天", "2026-11-23"),
    ("da-hou-tian", "sat", "大后天", "2026-11-24"),
    ("yesterday", "sat", "昨天", "2026-11-20"),
    ("tonight-8", "sat", "今晚8点", "2026-11-21 20:00"),
    ("tomorrow-morning", "sat", "明早", "2026-11-22 08:00"),
    ("today-pm-literal-even-if-passed", "wed_eve", "今天下午", "2026-11-18 14:00"),
    # --- counted offsets
    ("three-days", "sat", "三天后", "2026-11-24"),
    ("guo-liang-tian", "sat", "过两天再说", "2026-11-23"),
    ("one-month", "sat", "一个月后", "2026-12-21"),
    ("three-months", "sat", "三个月后", "2027-02-21"),
    ("half-month", "sat", "半个月后", "2026-12-06"),
    ("within-3-days", "sat", "三天内", "2026-11-24 前"),
    ("3-workdays", "sat", "3个工作日内", "2026-11-25 前"),
    ("half-hour", "sat", "半小时后", "2026-11-21 10:30"),
    ("two-hours", "sat", "两个小时后", "2026-11-21 12:00"),
    # --- days of month and calendar dates
    ("next-month-5th", "sat", "下个月5号", "2026-12-05"),
    ("dec-3", "sat", "12月3号", "2026-12-03"),
    ("dec-3-chinese", "sat", "十二月三号", "2026-12-03"),
    ("dot-date", "sat", "12.3", "2026-12-03"),
    ("slash-date", "sat", "12/3", "2026-12-03"),
    ("iso-date", "sat", "2026-12-03", "2026-12-03"),
    ("full-chinese-date", "sat", "2026年12月3日", "2026-12-03"),
    ("day-25", "sat", "二十五号", "2026-11-25"),
    ("nian-5", "sat", "廿五号", "2026-11-25"),
    ("day-21-today", "sat", "21号", "2026-11-21"),
    ("day-1-passed-next-month", "sat", "1号", "2026-12-01"),
    ("month-day-passed-next-year", "sat", "11月1日", "2027-11-01"),
    ("dec-3-pm", "sat", "12月3日下午2点", "2026-12-03 14:00"),
    ("whole-month", "sat", "12月", "2026-12-01..2026-12-31"),
    ("early-dec-xun", "sat", "12月上旬", "2026-12-01..2026-12-10"),
    ("next-month-mid-xun", "sat", "客户下个月中旬再看", "2026-12-11..2026-12-20"),
    ("month-after-next-start", "sat", "下下个月初回访", "2027-01-01"),
    ("next-year-march", "sat", "明年3月", "2027-03-01..2027-03-31"),
    ("next-week-span", "sat", "下周", "2026-11-23..2026-11-29"),
    ("weekend", "sat", "周末", "2026-11-21..2026-11-22"),
    ("next-weekend", "sat", "下周末", "2026-11-28..2026-11-29"),
    # --- deadlines
    ("month-end", "sat", "月底", "2026-11-30 前"),
    ("month-end-qian", "sat", "月底前", "2026-11-30 前"),
    ("year-end", "sat", "年底", "2026-12-31 前"),
    ("fri-before", "sat", "周五前发方案", "2026-11-27 前"),
    ("dec-end", "sat", "12月底", "2026-12-31 前"),
    ("before-december", "sat", "12月前", "2026-11-30 前"),
    ("this-week-within", "sat", "本周内", "2026-11-22 前"),
    ("before-weekend-passed", "sat", "周末前", "2026-11-27 前"),
    # --- holidays
    ("after-national-day", "sat", "国庆后再约", "2027-10-08"),
    ("shiyi-after", "sat", "十一后", "2027-10-08"),
    ("before-spring-festival", "sat", "春节前把合同签了", "2027-02-05 前"),
    # 初八 2027 is a Saturday; back at work means the Monday (2027's 调休 is not published yet).
    ("after-spring-festival", "sat", "春节后", "2027-02-15"),
    ("nian-qian", "sat", "年前", "2027-02-05 前"),
    ("new-year-day", "sat", "元旦", "2027-01-01"),
    ("may-day-span", "sat", "五一", "2027-05-01..2027-05-05"),
    ("labour-day-after", "sat", "劳动节后", "2027-05-06"),
    ("national-day-holiday-after", "sat", "国庆假期后", "2027-10-08"),
    # --- times of day
    ("morning-passed-tomorrow", "sat", "上午", "2026-11-22 09:00"),
    ("noon", "sat", "中午", "2026-11-21 12:00"),
    ("afternoon", "sat", "下午", "2026-11-21 14:00"),
    ("evening", "sat", "晚上", "2026-11-21 19:00"),
    ("bare-3-is-pm", "sat", "3点", "2026-11-21 15:00"),
    ("san-dian-ban", "sat", "三点半", "2026-11-21 15:30"),
    ("pm-3", "sat", "下午3点", "2026-11-21 15:00"),
    ("hh-mm", "sat", "15:30", "2026-11-21 15:30"),
    ("fullwidth-colon", "sat", "明天 １５：３０", "2026-11-22 15:30"),
    ("ten-fifteen-yike", "sat", "10点一刻", "2026-11-21 10:15"),
    ("tomorrow-3pm", "sat", "明天下午3点", "2026-11-22 15:00"),
    ("noon-1", "sat", "中午1点", "2026-11-21 13:00"),
    ("evening-8", "sat", "晚上八点", "2026-11-21 20:00"),
    ("bare-7-passed-tomorrow", "sat", "7点", "2026-11-22 07:00"),
    ("3-15", "sat", "3点15", "2026-11-21 15:15"),
    ("bare-3pm-passed-wed-eve", "wed_eve", "3点", "2026-11-19 15:00"),
    # --- ranges (end never before start)
    ("tomorrow-to-fri", "sat", "明天到周五", "2026-11-22..2026-11-27"),
    ("mon-to-wed", "sat", "周一至周三", "2026-11-23..2026-11-25"),
    ("nov1-nov3-next-year", "sat", "11月1日-11月3日", "2027-11-01..2027-11-03"),
    ("dec1-to-3", "sat", "12月1日-3日", "2026-12-01..2026-12-03"),
    ("pm-2-to-4", "sat", "下午2点到4点", "2026-11-21 14:00..16:00"),
    ("fri-to-mon-wraps", "wed_eve", "周五到周一", "2026-11-20..2026-11-23"),
    ("evening-7-to-9", "wed_eve", "晚上7点到9点", "2026-11-19 19:00..21:00"),
    ("hhmm-range", "wed_eve", "15:30-16:30", "2026-11-19 15:30..16:30"),
    # --- year wrap (Wednesday 2026-12-30)
    ("wrap-next-tue", "dec30", "下周二", "2027-01-05"),
    ("wrap-jan-3", "dec30", "1月3号", "2027-01-03"),
    ("wrap-3rd", "dec30", "3号", "2027-01-03"),
    ("wrap-next-month-5", "dec30", "下个月5号", "2027-01-05"),
    ("wrap-new-year", "dec30", "元旦", "2027-01-01"),
    # 2027-01-01 is a Friday: back at work on Monday.
    ("wrap-after-new-year", "dec30", "元旦后", "2027-01-04"),
    ("wrap-month-end", "dec30", "月底", "2026-12-31 前"),
    ("wrap-bare-fri", "dec30", "周五", "2027-01-01"),
    ("wrap-slash", "dec30", "1/5", "2027-01-05"),
    ("wrap-two-weeks", "dec30", "两周后", "2027-01-13"),
    ("wrap-spring", "dec30", "春节前", "2027-02-05 前"),
    # --- must yield nothing
    ("no-chat-quote", "sat", "聊了报价", None),
    ("no-follow-up-word", "sat", "再跟进", None),
    ("no-three-people", "sat", "三个人", None),
    ("no-first-meeting", "sat", "第一次见面", None),
    ("no-ordered-takeaway", "sat", "点了外卖", None),
    ("no-surname-zhou", "sat", "周总", None),
    ("no-name-wang-yue", "sat", "王月", None),
    ("no-a-bit-cheaper", "sat", "便宜一点", None),
    ("no-building-3", "sat", "三号楼", None),
    ("no-metro-line", "sat", "2号线", None),
    ("no-two-points", "sat", "有两点意见", None),
    ("no-three-times-a-week", "sat", "一周三次", None),
    ("no-eleven-customers", "sat", "十一个客户", None),
    ("no-vague-few-days", "sat", "过几天再说", None),
    ("no-money", "sat", "报销出租车86.5元", None),
    ("no-discount", "sat", "买了3.5折的票", None),
    ("no-weekly-report", "sat", "写周报", None),
    ("no-front-desk", "sat", "前台登记", None),
    ("no-wuyi-road", "sat", "五一路的客户", None),
    ("no-number-three-point-five", "sat", "价格三点五万", None),
    ("no-leave-duration", "sat", "请假三天", None),
    ("no-this-year-alone", "sat", "今年的目标", None),
]


@pytest.mark.parametrize("now_key,text,expected", [pytest.param(*c[1:], id=c[0]) for c in CASES])
def test_parse_when(now_key: str, text: str, expected: str | None) -> None:
    w = parse_when(text, NOWS[now_key])
    assert render(w) == expected
    if w is not None:
        assert w.text and w.text in text
        assert w.start.tzinfo is not None and w.start.utcoffset().total_seconds() == 8 * 3600
        assert w.end is None or w.end >= w.start


def test_naive_now_is_read_in_the_business_zone() -> None:
    w = parse_when("明天下午3点", datetime(2026, 11, 21, 10, 0))
    assert w is not None and w.start == datetime(2026, 11, 22, 15, 0, tzinfo=TZ)


def test_other_business_zone() -> None:
    now = datetime(2026, 11, 21, 1, 0, tzinfo=ZoneInfo("UTC"))  # 10:00 in Tokyo, Saturday
    w = parse_when("明天9点", now, tz="Asia/Tokyo")
    assert w is not None and w.start.isoformat() == "2026-11-22T09:00:00+09:00"


DESCRIBE = [
    ("moment", "sat", "下周三下午", "11月25日(周三) 14:00"),
    ("deadline", "sat", "月底前", "11月30日(周一) 前"),
    ("range", "sat", "下周一到周五", "11月23日(周一) 至 11月27日(周五)"),
    ("time-range", "sat", "下午2点到4点", "11月21日(周六) 14:00 至 16:00"),
    ("day", "sat", "12月3号", "12月3日(周四)"),
    ("next-year-shows-year", "dec30", "1月3号", "2027年1月3日(周日)"),
    ("deadline-with-time", "sat", "明天下午3点前", "11月22日(周日) 15:00 前"),
]


@pytest.mark.parametrize("now_key,text,expected", [pytest.param(*c[1:], id=c[0]) for c in DESCRIBE])
def test_describe(now_key: str, text: str, expected: str) -> None:
    w = parse_when(text, NOWS[now_key])
    assert w is not None
    assert describe(w, NOWS[now_key]) == expected


STRIP = [
    ("spaced", "聊了报价 下周三再跟进", "聊了报价 再跟进"),
    ("brief-message", "拜访 腾迅 聊了报价 下周三下午再跟进", "拜访 腾迅 聊了报价 再跟进"),
    ("unspaced", "拜访腾讯聊了报价明天再跟进", "拜访腾讯聊了报价再跟进"),
    ("leading-comma", "明天，给王总打电话", "给王总打电话"),
    ("deadline-phrase", "客户说月底前给答复", "客户说给答复"),
    ("range-phrase", "请假 12月1日至12月3日 回老家", "请假 回老家"),
    ("only-time", "下周三", ""),
]


@pytest.mark.parametrize("text,expected", [pytest.param(*c[1:], id=c[0]) for c in STRIP])
def test_strip_when(text: str, expected: str) -> None:
    w = parse_when(text, SAT)
    assert w is not None
    assert strip_when(text, w) == expected


TIME_WORDS = [
    ("vague-few-days", "过几天再说", True),
    ("another-day", "改天再约", True),
    ("unparsed-mid-autumn", "中秋后再联系", True),
    ("parseable", "下周三下午", True),
    ("iso-date", "2026-12-03", True),
    ("chat-quote", "聊了报价", False),
    ("surname", "拜访周总", False),
    ("takeaway", "点了外卖", False),
    ("people", "三个人", False),
    ("name-wang-yue", "王月", False),
    ("a-bit", "便宜一点", False),
    ("empty", "", False),
]


@pytest.mark.parametrize("text,expected", [pytest.param(*c[1:], id=c[0]) for c in TIME_WORDS])
def test_has_time_word(text: str, expected: bool) -> None:
    assert has_time_word(text) is expected


def test_vague_time_is_asked_not_guessed() -> None:
    """The caller's rule: nothing parsed but a time word present → ask."""
    text = "过几天再说"
    assert parse_when(text, SAT) is None and has_time_word(text)
