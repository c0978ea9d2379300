"""客户跟进 in one message, through the WeCom and DingTalk routes: matching, the confirmation card,
the next follow-up time, unsure names as buttons, undo and permissions."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import text

from conftest import settle, wait_for
from storage.db import session_scope
from storage.models import Customer, Employee, Identity
from workflows.matching import refresh_forms

SATURDAY_10AM = datetime(2026, 11, 21, 2, 0, tzinfo=timezone.utc)  # 10:00 in Shanghai


@pytest.fixture
def crm(stack_factory):
    started = datetime.now(timezone.utc)
    stack = stack_factory(clock=lambda: SATURDAY_10AM + (datetime.now(timezone.utc) - started))
    with session_scope(stack.runtime.engine) as session:
        boss = Employee(name="王经理", synced_at=SATURDAY_10AM)
        session.add(boss)
        session.flush()
        rep = Employee(name="张三", manager_id=boss.id, synced_at=SATURDAY_10AM)
        other = Employee(name="李四", manager_id=boss.id, synced_at=SATURDAY_10AM)
        session.add_all([rep, other])
        session.flush()
        session.add_all([Identity(platform="wecom", user_id="zhangsan", employee_id=rep.id),
                         Identity(platform="dingtalk", user_id="0147001", employee_id=rep.id),
                         Identity(platform="wecom", user_id="lisi", employee_id=other.id),
                         Identity(platform="wecom", user_id="wangjl", employee_id=boss.id)])
        for name, short, owner in (("腾讯科技(深圳)有限公司", "腾讯", rep), ("招商银行股份有限公司", "招行", rep),
                                   ("北京三快在线科技有限公司", "美团", other),
                                   ("深圳市恒达物流有限公司", "恒达物流", rep), ("广州市恒达物流有限公司", "恒达", rep)):
            customer = Customer(name=name, short_names=short, tier="A", owner_id=owner.id)
            refresh_forms(customer)
            session.add(customer)
    return stack


def _cards(stack, user="zhangsan"):
    return [c["template_card"] for c in stack.wecom.cards_to(user)]


def _titles(stack, user="zhangsan") -> list[str]:
    """Card titles, and the 【title】 of cards that went as plain text (no buttons)."""
    return [m["template_card"]["main_title"]["title"] if m["msgtype"] == "template_card"
            else m["text"]["content"].split("】")[0].lstrip("【") for m in stack.wecom.messages_to(user)]


def _fields(card) -> dict[str, str]:
    return {f["keyname"]: f["value"] for f in card.get("horizontal_content_list", [])}


def _followups(stack):
    with stack.runtime.engine.connect() as conn:
        return conn.execute(text("SELECT c.name, f.method, f.content, f.next_at FROM follow_up f "
                                 "JOIN customer c ON c.id = f.customer_id ORDER BY f.id")).all()


def test_one_message_logs_the_visit_with_a_homophone_and_the_next_time(crm):
    crm.post_wecom(crm.wecom_peer.text("zhangsan", "拜访 腾迅 聊了报价 下周三下午再跟进"))
    card = wait_for(lambda: _cards(crm))[0]
    assert card["main_title"]["title"] == "已记录 · 腾讯"
    fields = _fields(card)
    assert fields["客户"] == "腾讯科技(深圳)有限公司" and fields["方式"] == "拜访"
    assert fields["内容"] == "聊了报价"  # neither the time nor the "再跟进" that went with it
    assert fields["下次跟进"].startswith("11月25日(周三) 14:00")
    assert [b["text"] for b in card["button_list"]] == ["撤销"]
    (name, method, content, next_at), = _followups(crm)
    assert name == "腾讯科技(深圳)有限公司" and "下周三" not in content
    assert crm.count("outbox", "WHERE key LIKE 'remind:followup:%' AND status = 'pending'") == 1


def test_the_same_works_from_dingtalk(crm):
    crm.post_dingtalk(crm.dingtalk_peer.text("0147001", "电话 招行 约了演示 下周一上午10点"))
    message = wait_for(lambda: crm.dingtalk.messages_to("0147001"))[0]
    assert message["title"] == "已记录 · 招行"
    assert "11月23日(周一) 10:00" in message["text"]


def test_an_unsure_name_offers_buttons_and_a_tap_logs_once(crm):
    crm.post_wecom(crm.wecom_peer.text("zhangsan", "拜访 恒达 送了样品"))
    card = wait_for(lambda: _cards(crm))[0]
    assert card["main_title"]["title"] == "您说的是哪家？"
    assert len(card["button_list"]) >= 2
    assert _followups(crm) == []
    pick = card["button_list"][0]
    for n in range(2):  # tapped twice (or the card forwarded): one record
        code = crm.wecom.issue_response_code(card["task_id"])
        crm.post_wecom(crm.wecom_peer.card_click("zhangsan", pick["key"], card["task_id"], code,
                                                 create_time=1_800_000_000 + n))
    titles = wait_for(lambda: len(_titles(crm)) == 3 and _titles(crm))
    assert titles[1].startswith("已记录") and titles[2] == "已经记过了"
    assert len(_followups(crm)) == 1


def test_undo_by_word_takes_back_the_last_record(crm):
    crm.post_wecom(crm.wecom_peer.text("zhangsan", "拜访 腾讯 聊了报价 明天下午3点"))
    wait_for(lambda: _cards(crm))
    crm.post_wecom(crm.wecom_peer.text("zhangsan", "撤销"))
    wait_for(lambda: len(_cards(crm)) == 2 or len(crm.wecom.messages_to("zhangsan")) == 2)
    settle(0.5)
    assert _followups(crm) == []
    assert crm.count("outbox", "WHERE key LIKE 'remind:followup:%' AND status = 'pending'") == 0
    last = crm.wecom.messages_to("zhangsan")[-1]
    assert "已撤销" in str(last)


def test_someone_elses_customer_is_not_logged(crm):
    crm.post_wecom(crm.wecom_peer.text("zhangsan", "拜访 美团 聊了聊"))
    last = wait_for(lambda: crm.wecom.messages_to("zhangsan"))[0]
    assert "李四" in str(last) and "不是你的客户" in str(last)
    assert _followups(crm) == []


def test_the_manager_may_log_on_a_team_members_customer(crm):
    crm.post_wecom(crm.wecom_peer.text("wangjl", "拜访 美团 陪李四一起拜访"))
    card = wait_for(lambda: _cards(crm, "wangjl"))[0]
    assert card["main_title"]["title"] == "已记录 · 美团"


def test_an_unknown_customer_is_said_plainly(crm):
    crm.post_wecom(crm.wecom_peer.text("zhangsan", "拜访 宇宙无敌大公司 聊了聊"))
    last = wait_for(lambda: crm.wecom.messages_to("zhangsan"))[0]
    assert "没找到这个客户" in str(last)
    assert _followups(crm) == []


def test_a_method_word_alone_asks_for_the_customer(crm):
    crm.post_wecom(crm.wecom_peer.text("zhangsan", "拜访"))
    card = wait_for(lambda: _cards(crm))[0]
    assert "拜访哪家客户" in card["sub_title_text"]


def test_a_dingtalk_markdown_tap_on_an_offered_customer_logs_it(crm):
    """The link sends `#crm.pick <id> <msgId>`; DingTalk msgIds are mixed-case and must survive."""
    from urllib.parse import parse_qs, urlsplit
    import re

    crm.post_dingtalk(crm.dingtalk_peer.text("0147001", "拜访 恒达 送了样品", msg_id="msgAbC/dEf+GhI9=="))
    offer = wait_for(lambda: crm.dingtalk.messages_to("0147001"))[0]
    link = re.findall(r"\((dtmd://dingtalkclient/sendMessage\?[^)]+)\)", offer["text"])[0]
    crm.post_dingtalk(crm.dingtalk_peer.text("0147001", parse_qs(urlsplit(link).query)["content"][0]))
    logged = wait_for(lambda: len(crm.dingtalk.messages_to("0147001")) >= 2 and crm.dingtalk.messages_to("0147001"))[1]
    assert logged["title"].startswith("已记录")
    assert len(_followups(crm)) == 1
