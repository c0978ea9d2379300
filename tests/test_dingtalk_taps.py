"""DingTalk without a card template: every button is a tap-to-send link, and what a tap makes the
person send is words they could have typed (`同意 R-1001 第1步`), not internal codes — still as safe
as a card callback: a second tap, a forwarded tap and a tap on an old step's card decide nothing.

Through the real route: Chat(stack, "dingtalk") taps by reading the dtmd links off the markdown and
sending their words as the person (tests/chat.py)."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text
from sqlmodel import select

from chat import Chat, _tap_words, rows, sales_team
from conftest import wait_for
from storage.db import session_scope
from storage.models import Contact, Customer, Employee, Identity
from workflows.matching import refresh_forms
from test_approval_dingtalk_cards import BOSS, REP, SATURDAY_1130, saturday_clock, seed_people

HELPER, OUTSIDER = "0147012", "0147013"  # 孙主管 (another department's lead), 赵六 (not on the request)


@pytest.fixture
def company(stack_factory):
    stack = seed_people(stack_factory(clock=saturday_clock()))  # no card template: markdown + dtmd links
    with session_scope(stack.runtime.engine) as session:
        for user_id, name in ((HELPER, "孙主管"), (OUTSIDER, "赵六")):
            person = Employee(name=name, department="市场部", synced_at=SATURDAY_1130)
            session.add(person)
            session.flush()
            session.add(Identity(platform="dingtalk", user_id=user_id, employee_id=person.id))
            stack.dingtalk.users[user_id] = {"name": name, "dept_id_list": [20]}
    return stack


def _words(reply) -> dict[str, str]:
    """{label: what the person sends by tapping it}, as the chat then shows it."""
    return _tap_words(reply.text)


def _latest(chat: Chat, n: int):
    return wait_for(lambda: len(chat.replies()) >= n and chat.replies())[n - 1]


def _request(stack) -> tuple[str, int]:
    return rows(stack, "SELECT status, step FROM approval_request")[0]


def _submitted(stack, words="报销 出租车 86.5") -> tuple[Chat, Chat]:
    rep, boss = Chat(stack, "dingtalk", REP), Chat(stack, "dingtalk", BOSS)
    confirm = rep.say(words)
    assert _words(confirm)["提交"] == "提交 R-1001" and _words(confirm)["取消"] == "取消 R-1001"
    submitted = rep.tap(confirm, "提交")
    assert submitted.title == "已提交 · R-1001"
    assert _words(submitted)["催办"] == "催办 R-1001" and _words(submitted)["撤回"] == "撤回 R-1001"
    return rep, boss


def test_a_manager_taps_agree_and_the_chat_shows_words_he_could_have_typed(company):
    rep, boss = _submitted(company)
    card = _latest(boss, 1)
    assert card.title == "待你审批 · 报销"
    words = _words(card)
    assert words["同意"] == "同意 R-1001 第1步" and words["拒绝"] == "拒绝 R-1001 第1步"
    assert not any(w.startswith("#") for w in words.values()), words

    done = boss.tap(card, "同意")

    assert done.title == "R-1001 · 已通过" and "你已同意" in done.text
    assert _request(company)[0] == "approved"
    assert wait_for(lambda: "R-1001 · 已通过" in [r.title for r in rep.replies()])

    again = boss.say(words["同意"])  # the same tap text sent again
    assert again.title == "R-1001 · 已通过" and "已处理：周经理" in again.text
    assert rows(company, "SELECT count(*) FROM approval_task WHERE status = 'approved'")[0][0] == 1


def test_a_forwarded_tap_from_an_outsider_is_refused_and_audited(company):
    _, boss = _submitted(company)
    forwarded = _words(_latest(boss, 1))["同意"]

    refused = Chat(company, "dingtalk", OUTSIDER).say(forwarded)

    assert refused.title == "这不是你的申请" and "出租车" not in refused.text
    assert _request(company) == ("pending", 0)
    audit = rows(company, "SELECT detail FROM audit_log WHERE action = 'refused'")
    assert [json.loads(d)["attempted"] for (d,) in audit] == ["approval.decide"]


def test_the_requester_cannot_agree_to_his_own_request_with_the_words(company):
    rep, boss = _submitted(company)
    answer = rep.say(_words(_latest(boss, 1))["同意"])
    assert answer.title == "不能审批自己的申请" and _request(company) == ("pending", 0)


def test_a_stale_step_one_tap_does_not_decide_step_two(company):
    _, boss = _submitted(company)
    old_card = _latest(boss, 1)
    # 加签 孙主管 before me: he becomes step 1, my step moves to 2 and comes back to me after him.
    asked = boss.tap(old_card, "加签")
    assert asked.title == "加签"
    boss.say("孙主管")
    helper = Chat(company, "dingtalk", HELPER)
    helper_card = _latest(helper, 1)
    assert _words(helper_card)["同意"] == "同意 R-1001 第1步"
    helper.tap(helper_card, "同意")
    new_card = wait_for(lambda: [r for r in boss.replies() if r.title == "待你审批 · 报销"][1:])[0]
    assert _words(new_card)["同意"] == "同意 R-1001 第2步"
    assert _request(company) == ("pending", 1)

    stale = boss.say(_words(old_card)["同意"])  # the step-1 card, tapped after the step moved on

    assert "第1步已经处理过了" in stale.text and "没有替你审批" in stale.text
    assert _request(company) == ("pending", 1)
    assert rows(company, "SELECT count(*) FROM approval_task WHERE status = 'pending'")[0][0] == 1

    done = boss.tap(new_card, "同意")
    assert "你已同意" in done.text and _request(company)[0] == "approved"


def test_reject_reasons_are_words_with_the_reason(company):
    rep, boss = _submitted(company)
    ask = boss.tap(_latest(boss, 1), "拒绝")
    assert ask.title == "拒绝 R-1001 · 选原因"
    words = _words(ask)
    assert words["缺少发票"] == "拒绝 R-1001 第1步 缺少发票" and words["先不拒绝"] == "先不拒绝"

    done = boss.tap(ask, "缺少发票")

    assert done.title == "R-1001 · 已拒绝" and "缺少发票" in done.text
    assert rows(company, "SELECT status, comment FROM approval_task")[0] == ("rejected", "缺少发票")


def test_keep_after_reject_leaves_the_request_waiting(company):
    _, boss = _submitted(company)
    ask = boss.tap(_latest(boss, 1), "拒绝")
    kept = boss.tap(ask, "先不拒绝")
    assert kept.title == "好的" and _request(company) == ("pending", 0)
    assert boss.say("看起来没问题").title != "R-1001 · 已拒绝"  # the reason form is closed


def test_cancel_of_a_draft_is_words_and_only_the_requester_may(company):
    rep = Chat(company, "dingtalk", REP)
    confirm = rep.say("报销 出租车 86.5")
    refused = Chat(company, "dingtalk", OUTSIDER).say(_words(confirm)["取消"])
    assert refused.title == "这不是你的申请" and rows(company, "SELECT count(*) FROM approval_request")[0][0] == 1
    gone = rep.tap(confirm, "取消")
    assert gone.title == "已取消" and rows(company, "SELECT count(*) FROM approval_request")[0][0] == 0
    assert rep.tap(confirm, "提交").title == "找不到这一单"  # the old card's 提交 after 取消


def test_my_tasks_list_opens_the_card_with_words(company):
    _, boss = _submitted(company)
    _latest(boss, 1)  # the card has come: the next reply is the list
    todo = boss.say("我的审批")
    assert _words(todo)["R-1001"] == "审批 R-1001"
    card = boss.tap(todo, "R-1001")
    assert card.title == "待你审批 · 报销" and _words(card)["同意"] == "同意 R-1001 第1步"


# -- customers, 公海, forms: the same on the sales team (张三 on DingTalk is 0147001) -----------------

@pytest.fixture
def team(stack_factory):
    stack = sales_team(stack_factory)
    stack.dingtalk.users.setdefault(REP, {"name": "张三", "dept_id_list": [20]})
    return stack


def test_a_customer_card_taps_send_the_customers_legal_name(team):
    me = Chat(team, "dingtalk", REP)
    card = me.say("腾讯")
    assert card.title == "客户 · 腾讯"
    assert _words(card)["记拜访"] == "拜访 腾讯科技(深圳)有限公司"

    ask = me.tap(card, "记拜访")

    assert ask.title == "记拜访 · 腾讯" and "聊了什么" in ask.text
    assert _words(ask)["跳过"] == "跳过"  # a form's answer is the word itself: it goes to the open question
    ask = me.tap(ask, "跳过")
    assert _words(ask) == {"明天": "明天", "下周": "下周", "不用": "不用", "取消": "取消"}
    done = me.tap(ask, "不用")
    assert done.title == "已记录 · 腾讯"
    assert _words(done)["撤销"].startswith("#crm.undo ")  # 撤销 alone would undo whatever is latest


def test_alike_names_keep_the_id_form_so_a_tap_cannot_pick_the_wrong_one(team):
    me = Chat(team, "dingtalk", REP)
    ask = me.say("拜访 恒达")  # 深圳市恒达物流 and 广州市恒达物流: the form asks which
    words = _words(ask)
    assert len(words) == 3, words  # two customers and 取消
    assert all(w.startswith("#form.answer ") for label, w in words.items() if label != "取消"), words


def test_a_customer_picked_from_alike_names_is_shown_with_words_when_its_name_is_its_own(team):
    me = Chat(team, "dingtalk", REP)
    choose = me.say("恒达物流")
    assert choose.title == "您要找哪家客户？"
    words = _words(choose)
    assert sorted(words.values()) == ["查看 广州市恒达物流有限公司", "查看 深圳市恒达物流有限公司"]
    shown = me.say(words[next(label for label in words if "深圳" in words[label])])
    assert shown.title == "客户 · 恒达物流" and "深圳市恒达物流有限公司" in shown.text


def test_claim_from_the_pool_is_words_and_a_second_tap_claims_nothing_more(team):
    with session_scope(team.runtime.engine) as session:
        session.execute(text("UPDATE customer SET owner_id = NULL WHERE name = '北京三快在线科技有限公司'"))
    me = Chat(team, "dingtalk", REP)
    pool = me.say("公海")
    label = next(label for label in pool.buttons if label.startswith("领取"))
    assert _words(pool)[label] == "领取 北京三快在线科技有限公司"

    claimed = me.tap(pool, label)
    again = me.tap(pool, label)

    assert claimed.title == "已领取 · 美团" and again.title == "已经是你的客户"
    assert rows(team, "SELECT e.name FROM customer c JOIN employee e ON e.id = c.owner_id "
                      "WHERE c.name = '北京三快在线科技有限公司'") == [("张三",)]


def test_phone_numbers_by_words_are_checked_and_a_refusal_audited(team):
    with session_scope(team.runtime.engine) as session:
        tencent = session.execute(select(Customer).where(Customer.short_names == "腾讯")).scalars().one()
        session.add(Contact(customer_id=tencent.id, name="马总", phone="13800008000"))
        lisi = session.execute(select(Employee).where(Employee.name == "李四")).scalars().one()
        session.add(Identity(platform="dingtalk", user_id=OUTSIDER, employee_id=lisi.id))
    team.dingtalk.users[OUTSIDER] = {"name": "李四", "dept_id_list": [20]}
    me = Chat(team, "dingtalk", REP)
    card = me.say("腾讯")
    words = _words(card)["查看电话"]
    assert words == "查看电话 腾讯科技(深圳)有限公司"

    refused = Chat(team, "dingtalk", OUTSIDER).say(words)  # 李四 is not 腾讯's owner nor above him

    assert refused.title == "看不了电话" and "13800008000" not in refused.text
    audit = rows(team, "SELECT detail FROM audit_log WHERE action = 'refused'")
    assert [json.loads(d)["attempted"] for (d,) in audit] == ["customer.phone"]
    assert "13800008000" in me.tap(card, "查看电话").text


def test_more_is_words_that_page_on(team):
    with session_scope(team.runtime.engine) as session:
        rep = session.execute(select(Employee).where(Employee.name == "张三")).scalars().one()
        for n in range(6):
            customer = Customer(name=f"测试客户{n}号有限公司", short_names=f"测试{n}", tier="B", owner_id=rep.id)
            refresh_forms(customer)
            session.add(customer)
    me = Chat(team, "dingtalk", REP)
    first = me.say("我的客户")
    more = _words(first)["更多"]
    assert more.startswith("我的客户 从第") and more.endswith("家")

    page = me.tap(first, "更多")

    assert page.title == first.title and page.text != first.text
    assert f"第 {more[len('我的客户 从第'):-1]}–" in page.text


def test_the_reminders_followed_up_button_sends_the_visit_words(team):
    me = Chat(team, "dingtalk", REP)
    logged = me.say("电话 腾讯 聊了报价 下周三下午3点再跟进")
    assert logged.title == "已记录 · 腾讯"
    (payload,), = rows(team, "SELECT payload FROM outbox WHERE key LIKE 'remind:followup:%'")
    done = next(b for b in json.loads(payload)["card"]["buttons"] if b["label"] == "已跟进")
    assert done["command"] == "电话 腾讯科技(深圳)有限公司"  # what the reminder's link will send

    ask = me.say(done["command"])

    assert ask.title == "记电话 · 腾讯" and "聊了什么" in ask.text


def test_a_typed_reason_that_starts_with_a_step_word_is_a_reason(company):
    _, boss = _submitted(company)
    _latest(boss, 1)
    done = boss.say("拒绝 R-1001 第1步的金额不对")  # no space after 步: the words are the reason
    assert done.title == "R-1001 · 已拒绝"
    assert rows(company, "SELECT status, comment FROM approval_task")[0] == ("rejected", "第1步的金额不对")


def test_view_by_words_without_a_name_or_with_an_unknown_one_asks_and_changes_nothing(team):
    me = Chat(team, "dingtalk", REP)
    assert me.say("查看").title == "查看哪家客户？"
    unknown = me.say("查看 不存在的公司")
    assert unknown.title == "没找到这个客户" and "不存在的公司" in unknown.text
    assert me.say("查看电话 不存在的公司").title == "没找到这个客户"
    assert rows(team, "SELECT count(*) FROM audit_log WHERE action = 'customer.view_phone'") == [(0,)]
