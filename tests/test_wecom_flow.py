"""WeCom end to end over HTTP: callback → pipeline → outbox → RQ → worker → WeCom API stand-in."""

from __future__ import annotations

from conftest import settle, wait_for


def test_help_gets_the_main_menu_card(stack):
    response = stack.post_wecom(stack.wecom_peer.text("zhangsan", "帮助"))

    assert response.status_code == 200 and response.text == ""
    card = wait_for(lambda: stack.wecom.cards_to("zhangsan"))[0]
    tc = card["template_card"]
    assert tc["card_type"] == "button_interaction"
    assert tc["main_title"]["title"] == "办理 · 主菜单"
    assert [b["text"] for b in tc["button_list"]] == ["客户跟进", "报销", "请假", "我的审批", "帮助"]
    assert card["agentid"] == 1000002 and card["enable_duplicate_check"] == 1


def test_menu_words_all_open_the_menu(stack):
    for word in ("菜单", "help", "？", "你好"):
        stack.post_wecom(stack.wecom_peer.text("zhangsan", word))
    cards = wait_for(lambda: len(stack.wecom.cards_to("zhangsan")) == 4 and stack.wecom.cards_to("zhangsan"))
    assert {c["template_card"]["main_title"]["title"] for c in cards} == {"办理 · 主菜单"}


def test_tapping_a_menu_button_reaches_its_handler(stack):
    stack.post_wecom(stack.wecom_peer.text("zhangsan", "帮助"))
    menu = wait_for(lambda: stack.wecom.cards_to("zhangsan"))[0]["template_card"]
    expense = next(b for b in menu["button_list"] if b["text"] == "报销")

    code = stack.wecom.issue_response_code(menu["task_id"])
    stack.post_wecom(stack.wecom_peer.card_click("zhangsan", expense["key"], menu["task_id"], code))

    reply = wait_for(lambda: len(stack.wecom.cards_to("zhangsan")) == 2 and stack.wecom.cards_to("zhangsan")[1])
    assert reply["template_card"]["main_title"]["title"] == "报销"  # the expense form's first question
    assert "报销多少钱" in reply["template_card"]["sub_title_text"]


def test_app_menu_click_and_typed_word_reach_the_same_handler(stack):
    stack.post_wecom(stack.wecom_peer.event("zhangsan", "click", "menu.leave"))
    stack.post_wecom(stack.wecom_peer.text("zhangsan", "请假"))
    cards = wait_for(lambda: len(stack.wecom.cards_to("zhangsan")) == 2 and stack.wecom.cards_to("zhangsan"))
    assert [c["template_card"]["main_title"]["title"] for c in cards] == ["请假", "请假"]


def test_unknown_sentence_gets_a_hint_and_the_menu_buttons(stack):
    stack.post_wecom(stack.wecom_peer.text("zhangsan", "今天天气怎么样"))
    card = wait_for(lambda: stack.wecom.cards_to("zhangsan"))[0]["template_card"]
    assert "没听明白「今天天气怎么样」" in card["sub_title_text"]
    assert "帮助" in [b["text"] for b in card["button_list"]]


def test_image_voice_location_and_enter_are_understood(stack):
    peer = stack.wecom_peer
    stack.post_wecom(peer.image("zhangsan"))
    stack.post_wecom(peer.voice("zhangsan"))
    stack.post_wecom(peer.location("zhangsan", 22.54, 113.95, "深圳市南山区科技园"))
    cards = wait_for(lambda: len(stack.wecom.cards_to("zhangsan")) == 3 and stack.wecom.cards_to("zhangsan"))
    titles = sorted(c["template_card"]["main_title"]["title"] for c in cards)
    assert titles == sorted(["收到图片", "暂时听不懂语音", "收到位置"])
    location = next(c for c in cards if c["template_card"]["main_title"]["title"] == "收到位置")
    assert "深圳市南山区科技园" in location["template_card"]["sub_title_text"]


def test_first_enter_greets_once_and_later_enters_are_quiet(stack):
    stack.post_wecom(stack.wecom_peer.event("newbie", "enter_agent", create_time=1_700_000_000 + 0))
    wait_for(lambda: stack.wecom.cards_to("newbie"))
    stack.post_wecom(stack.wecom_peer.event("newbie", "enter_agent"))
    settle()
    assert len(stack.wecom.messages_to("newbie")) == 1
    assert "欢迎使用办理" in stack.wecom.cards_to("newbie")[0]["template_card"]["sub_title_text"]


def test_first_contact_reads_name_department_and_manager_from_the_directory(stack):
    stack.post_wecom(stack.wecom_peer.text("zhangsan", "帮助"))

    def synced():
        with stack.runtime.engine.connect() as conn:
            from sqlalchemy import text
            return conn.execute(text(
                "SELECT e.name, e.department, m.name FROM employee e JOIN identity i ON i.employee_id = e.id "
                "LEFT JOIN employee m ON m.id = e.manager_id WHERE i.platform='wecom' AND i.user_id='zhangsan' "
                "AND e.synced_at IS NOT NULL")).first()

    name, department, manager = wait_for(synced)
    assert (name, department) == ("张三", "销售一部")
    # The manager is created and read from the directory in turn.
    wait_for(lambda: stack.count("employee", "WHERE name = '王经理' AND synced_at IS NOT NULL") == 1)
    assert manager in ("王经理", "wangjl")
