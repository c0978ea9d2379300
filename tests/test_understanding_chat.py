"""People who type naturally are understood, through the real routes on both platforms: no spaces,
little words before the name, everyday phrasing, a mistyped command word, small talk, a visit told
as a story (asked before it is logged), questions about a customer, a voice transcript."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from chat import Chat, rows, sales_team, visits
from conftest import settle, wait_for

PLATFORMS = ["wecom", "dingtalk"]


@pytest.fixture
def team(stack_factory):
    team = sales_team(stack_factory)
    with team.runtime.engine.begin() as conn:  # 美团 is 张三's in these stories
        conn.execute(text("UPDATE customer SET owner_id = (SELECT id FROM employee WHERE name = '张三') "
                          "WHERE short_names = '美团'"))
    return team


def _requests(team) -> list:
    return rows(team, "SELECT type, status, amount, summary, details FROM approval_request ORDER BY id")


@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_visit_typed_without_spaces(team, platform):
    done = Chat(team, platform).say("拜访美团聊了合作方案后天上午再联系")
    assert done.title == "已记录 · 美团"
    assert done.field("内容") == "聊了合作方案" and done.field("下次跟进").startswith("11月23日(周一)")
    (short, method, content, next_at), = visits(team)
    assert (short, method, content) == ("美团", "拜访", "聊了合作方案") and next_at is not None


@pytest.mark.parametrize("platform", PLATFORMS)
def test_little_words_before_the_name(team, platform):
    done = Chat(team, platform).say("打电话给美团 聊了续约")
    assert done.title == "已记录 · 美团" and done.field("方式") == "电话"
    assert [v[:3] for v in visits(team)] == [("美团", "电话", "聊了续约")]


@pytest.mark.parametrize("platform", PLATFORMS)
@pytest.mark.parametrize("said,kind,amount,summary", [
    ("我要报一下上周出差的住宿费 480", "报销", 480, "住宿费"),
    ("保销 打车 30", "报销", 30, "打车"),
    ("bx 打车 30", "报销", 30, "打车"),
    ("打车费86.5能报吗", "报销", 86.5, "打车费"),
])
def test_expenses_said_in_everyday_words(team, platform, said, kind, amount, summary):
    card = Chat(team, platform).say(said)
    assert "提交" in card.buttons  # the draft's own confirmation: nothing is filed before 提交
    (got_kind, status, got_amount, got_summary, _), = _requests(team)
    assert (got_kind, status, float(got_amount)) == (kind, "draft", amount) and summary in got_summary


@pytest.mark.parametrize("platform", PLATFORMS)
@pytest.mark.parametrize("said,start,reason", [
    ("请价 周五", "2026-11-27", ""),
    ("想请个假 下周二 孩子开家长会", "2026-11-24", "孩子开家长会"),
    ("下周一请一天假 看病", "2026-11-23", "看病"),
])
def test_leave_said_in_everyday_words(team, platform, said, start, reason):
    card = Chat(team, platform).say(said)
    requests = _requests(team)
    assert "提交" in card.buttons
    (kind, status, _, _, details), = requests
    assert kind == "请假" and status == "draft" and f'"start": "{start}"' in details and reason in details


@pytest.mark.parametrize("platform", PLATFORMS)
@pytest.mark.parametrize("said,title", [("我的客户有哪些", "我的客户"), ("有要我批的吗", "我的审批"),
                                        ("怎么用", "办理 · 主菜单"), ("shenpi", "我的审批"),
                                        ("我提交的单子到哪了", "我的申请")])
def test_a_list_or_help_said_in_words(team, platform, said, title):
    assert Chat(team, platform).say(said).title.startswith(title)


@pytest.mark.parametrize("platform", PLATFORMS)
@pytest.mark.parametrize("said,answer", [("多谢", "不客气"), ("收到", "好的"), ("在吗", "在的")])
def test_small_talk_gets_a_kind_line_and_the_menu(team, platform, said, answer):
    reply = Chat(team, platform).say(said)
    assert answer in reply.text and "报销" in reply.buttons and "没听明白" not in reply.text


@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_visit_told_as_a_story_is_asked_first_and_logged_once(team, platform):
    chat = Chat(team, platform)
    asked = chat.say("今天去了腾讯 聊了报价")
    assert asked.title == "记一条拜访？" and asked.field("客户").startswith("腾讯科技")
    assert visits(team) == []  # a guess files nothing by itself
    done = chat.tap(asked, "记上")
    assert done.title == "已记录 · 腾讯" and [v[:3] for v in visits(team)] == [("腾讯", "拜访", "聊了报价")]
    again = chat.tap(asked, "记上")
    assert again.title == "已经记过了" and len(visits(team)) == 1


@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_mistyped_visit_word_is_asked_first(team, platform):
    chat = Chat(team, platform)
    asked = chat.say("摆放 腾迅 聊了报价")
    assert asked.title == "记一条拜访？" and visits(team) == []
    assert chat.tap(asked, "不是").title == "好的，没有记"
    settle(0.3)
    assert visits(team) == []


@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_name_then_a_report_is_asked_as_a_visit(team, platform):
    chat = Chat(team, platform)
    asked = chat.say("美团聊了续约下周再联系")
    assert asked.title == "记一条拜访？" and asked.field("内容").startswith("聊了续约")
    assert chat.tap(asked, "记上").title == "已记录 · 美团"


@pytest.mark.parametrize("platform", PLATFORMS)
def test_questions_about_a_customer(team, platform):
    chat = Chat(team, platform)
    owner = chat.say("美团最近谁在跟")
    assert owner.title == "客户 · 美团" and "美团由张三负责" in owner.text
    where = chat.say("美团的地址在哪")
    assert where.title == "客户 · 美团" and "地址还没有登记" in where.text


def test_a_question_about_someone_elses_customer_shows_only_what_they_may_see(team):
    """李四 asks about 腾讯 (张三's): who owns it, not its phones or history."""
    chat = Chat(team, "wecom", user="lisi")
    owner = chat.say("腾讯是谁的客户")
    assert "腾讯由张三负责" in owner.text and "只有负责人和他的上级能看" in owner.text


def test_a_voice_transcript_is_understood_like_text(team):
    chat = Chat(team, "wecom")
    before = len(chat.messages())
    team.post_wecom(team.wecom_peer.voice("zhangsan", "我的客户有哪些"))
    wait_for(lambda: len(chat.messages()) > before)
    assert chat.replies()[before].title.startswith("我的客户")


@pytest.mark.parametrize("platform", PLATFORMS)
def test_what_is_not_understood_gets_a_hint_and_buttons(team, platform):
    reply = Chat(team, platform).say("今天天气不错")
    assert reply.title == "没听明白" and "报销" in reply.buttons


def test_a_story_about_someone_elses_customer_is_refused_not_asked(team):
    """李四 tells of a visit to 腾讯 (张三's): no 「记上」 card to tap in vain — the refusal, audited."""
    reply = Chat(team, "wecom", user="lisi").say("今天去了腾讯 聊了报价")
    assert reply.title == "不是你的客户" and "记上" not in reply.buttons
    assert visits(team) == []
    (refused,), = rows(team, "SELECT COUNT(*) FROM audit_log WHERE action = 'refused'")
    assert refused == 1
