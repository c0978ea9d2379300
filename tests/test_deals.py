"""商机 through the WeCom and DingTalk routes: one message creates or moves a deal, stage words are
forgiven, the card's stage buttons move it (stale and repeated taps change nothing), closed deals
stay closed for reps, amounts are hidden from others, every change is kept and audited, and the
stage-change signal fires once per real change inside the handler's transaction."""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select, text

from conftest import wait_for
from storage.db import session_scope
from storage.models import Customer, Deal, Employee, Identity, Outbox
from workflows import deals, roles, rules, signals
from workflows.matching import refresh_forms

SATURDAY_10AM = datetime(2026, 11, 21, 2, 0, tzinfo=timezone.utc)  # 10:00 in Shanghai
REP = {"wecom": "zhangsan", "dingtalk": "0147001"}
PLATFORMS = ["wecom", "dingtalk"]


@pytest.fixture
def crm(stack_factory):
    started = datetime.now(timezone.utc)
    stack = stack_factory(clock=lambda: SATURDAY_10AM + (datetime.now(timezone.utc) - started))
    with session_scope(stack.runtime.engine) as session:
        boss = Employee(name="王经理", synced_at=SATURDAY_10AM)
        admin = Employee(name="管理员", synced_at=SATURDAY_10AM)
        session.add_all([boss, admin])
        session.flush()
        roles.grant(session, admin, "admin")
        rep = Employee(name="张三", manager_id=boss.id, synced_at=SATURDAY_10AM)
        other = Employee(name="李四", manager_id=boss.id, synced_at=SATURDAY_10AM)
        session.add_all([rep, other])
        session.flush()
        session.add_all([Identity(platform="wecom", user_id="zhangsan", employee_id=rep.id),
                         Identity(platform="dingtalk", user_id="0147001", employee_id=rep.id),
                         Identity(platform="wecom", user_id="lisi", employee_id=other.id),
                         Identity(platform="dingtalk", user_id="0147009", employee_id=other.id),
                         Identity(platform="wecom", user_id="wangjl", employee_id=boss.id)])
        for name, short, owner in (("腾讯科技(深圳)有限公司", "腾讯", rep), ("招商银行股份有限公司", "招行", rep),
                                   ("北京三快在线科技有限公司", "美团", other),
                                   ("深圳市恒达物流有限公司", "恒达物流", rep), ("广州市恒达物流有限公司", "恒达", rep)):
            customer = Customer(name=name, short_names=short, tier="A", owner_id=owner.id)
            refresh_forms(customer)
            session.add(customer)
    return stack


@pytest.fixture
def heard(crm):
    """A subscriber to DEAL_STAGE_CHANGED for the length of one test: (deal id, from, to, by name)."""
    calls: list[tuple[int, str, str, str]] = []

    def listener(session, *, deal, from_stage, to_stage, by, **_):
        calls.append((deal.id, from_stage, to_stage, by.name if by else ""))

    crm.runtime.signals.subscribe(signals.DEAL_STAGE_CHANGED, listener)
    yield calls
    crm.runtime.signals.unsubscribe(signals.DEAL_STAGE_CHANGED, listener)


# -- talking to Banli the way a user does, on either platform ---------------------------------------


def _say(stack, platform: str, user: str, words: str) -> None:
    if platform == "wecom":
        stack.post_wecom(stack.wecom_peer.text(user, words))
    else:
        stack.post_dingtalk(stack.dingtalk_peer.text(user, words))


def _replies(stack, platform: str, user: str) -> list[dict]:
    """Every reply as {title, text, buttons: {label: how to tap}} whatever the platform sent."""
    out = []
    if platform == "wecom":
        for m in stack.wecom.messages_to(user):
            if m["msgtype"] == "template_card":
                card = m["template_card"]
                fields = "\n".join(f"{f['keyname']}：{f['value']}" for f in card.get("horizontal_content_list", []))
                title = card["main_title"]["title"]
                out.append({"title": title, "text": f"{title}\n{card.get('sub_title_text', '')}\n{fields}",
                            "buttons": {b["text"]: (b["key"], card["task_id"]) for b in card["button_list"]}})
            else:
                content = m["text"]["content"]
                out.append({"title": content.split("】")[0].lstrip("【"), "text": content, "buttons": {}})
    else:
        for m in stack.dingtalk.messages_to(user):
            links = re.findall(r"\[([^\]]+)\]\((dtmd://dingtalkclient/sendMessage\?[^)]+)\)", m["text"])
            out.append({"title": m["title"], "text": m["text"],
                        "buttons": {label: parse_qs(urlsplit(url).query)["content"][0] for label, url in links}})
    # A win also pushes the contract approval the OA loop raises (tests/test_contract_loop.py): not a reply.
    return [r for r in out if not r["title"].startswith("已提交 · R-")]


def _ask(stack, platform: str, user: str, words: str) -> dict:
    """Send `words` and wait for the one reply it gets."""
    before = len(_replies(stack, platform, user))
    _say(stack, platform, user, words)
    return wait_for(lambda: len(_replies(stack, platform, user)) > before and _replies(stack, platform, user))[before]


_taps = iter(range(1_800_000_000, 1_900_000_000))


def _tap(stack, platform: str, user: str, reply: dict, label: str) -> dict:
    """Tap the button `label` on `reply` and wait for the answer."""
    before = len(_replies(stack, platform, user))
    if platform == "wecom":
        key, task = reply["buttons"][label]
        code = stack.wecom.issue_response_code(task)
        stack.post_wecom(stack.wecom_peer.card_click(user, key, task, code, create_time=next(_taps)))
    else:
        _say(stack, platform, user, reply["buttons"][label])
    return wait_for(lambda: len(_replies(stack, platform, user)) > before and _replies(stack, platform, user))[before]


def _deals(stack) -> list[tuple]:
    with stack.runtime.engine.connect() as conn:
        return conn.execute(text("SELECT c.short_names, d.stage, d.amount, d.expected_close FROM deal d "
                                 "JOIN customer c ON c.id = d.customer_id ORDER BY d.id")).all()


def _changes(stack) -> list[tuple[str, str]]:
    with stack.runtime.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text("SELECT from_stage, to_stage FROM deal_stage_change ORDER BY id"))]


def _audit(stack) -> list[str]:
    with stack.runtime.engine.connect() as conn:
        return list(conn.execute(text("SELECT action FROM audit_log WHERE action LIKE 'deal.%' ORDER BY id")).scalars())


# -- one message ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("platform", PLATFORMS)
def test_one_message_creates_a_deal_with_stage_amount_and_close_date(crm, heard, platform):
    reply = _ask(crm, platform, REP[platform], "商机 腾讯 方案报价 50万 月底签")

    assert reply["title"] == "已新建商机 · 腾讯"
    assert "方案报价" in reply["text"] and "¥500,000.00" in reply["text"] and "11月30日(周一)" in reply["text"]
    assert "没看懂" not in reply["text"]  # the 签 of 月底签 is not a leftover
    assert list(reply["buttons"]) == ["商务谈判", "赢单", "输单"]  # the next stages, then the endings
    (short, stage, amount, close), = _deals(crm)
    assert (short, stage, Decimal(amount), str(close)) == ("腾讯", "方案报价", Decimal("500000"), "2026-11-30")
    assert _changes(crm) == [("", "方案报价")]
    assert _audit(crm) == ["deal.create"]
    assert [(f, t, who) for _, f, t, who in heard] == [("", "方案报价", "张三")]


@pytest.mark.parametrize("platform", PLATFORMS)
def test_stage_words_are_forgiven_and_the_open_deal_is_moved(crm, heard, platform):
    user = REP[platform]
    _ask(crm, platform, user, "商机 腾讯 需求分析")
    assert _ask(crm, platform, user, "商机 腾讯 报价")["title"] == "商机已更新 · 腾讯"
    _ask(crm, platform, user, "商机 腾迅 谈判")  # a homophone for the customer, a part of the stage
    won = _ask(crm, platform, user, "商机 腾讯 签了")

    assert "商务谈判→赢单" in won["text"] and "方案报价→商务谈判" in won["text"]  # the last three moves
    assert [stage for _, stage, _, _ in _deals(crm)] == ["赢单"]  # one deal, moved along
    assert _changes(crm) == [("", "需求分析"), ("需求分析", "方案报价"), ("方案报价", "商务谈判"), ("商务谈判", "赢单")]
    assert [(f, t) for _, f, t, _ in heard] == _changes(crm)
    assert _audit(crm) == ["deal.create", "deal.stage", "deal.stage", "deal.stage"]


def test_a_typo_in_the_stage_and_a_lost_deal(crm):
    _ask(crm, "wecom", "zhangsan", "商机 招行 方案报介")  # 介 for 价
    lost = _ask(crm, "wecom", "zhangsan", "商机 招行 丢了")
    assert "输单" in lost["text"]
    assert _changes(crm) == [("", "方案报价"), ("方案报价", "输单")]


@pytest.mark.parametrize("platform", PLATFORMS)
def test_the_same_stage_again_changes_nothing_and_emits_nothing(crm, heard, platform):
    user = REP[platform]
    _ask(crm, platform, user, "商机 腾讯 方案报价")
    again = _ask(crm, platform, user, "商机 腾讯 方案报价")
    assert "没有改动" in again["text"]
    assert len(_changes(crm)) == 1 and len(heard) == 1 and _audit(crm) == ["deal.create"]


def test_amount_and_date_alone_update_the_open_deal_and_are_audited(crm, heard):
    _ask(crm, "wecom", "zhangsan", "商机 腾讯 需求分析")
    reply = _ask(crm, "wecom", "zhangsan", "商机 腾讯 80万 12月20日")
    assert reply["title"] == "商机已更新 · 腾讯" and "¥800,000.00" in reply["text"] and "12月20日" in reply["text"]
    (_, stage, amount, close), = _deals(crm)
    assert stage == "需求分析" and Decimal(amount) == Decimal("800000") and str(close) == "2026-12-20"
    assert _audit(crm) == ["deal.create", "deal.amount", "deal.expected_close"]
    assert len(heard) == 1  # no stage moved, no signal


@pytest.mark.parametrize("platform", PLATFORMS)
def test_the_word_alone_shows_the_card_and_nonsense_changes_nothing(crm, platform):
    user = REP[platform]
    empty = _ask(crm, platform, user, "商机 腾讯")
    assert "还没有商机" in empty["text"] and "新建商机" in empty["buttons"]
    for _ in range(2):  # tapped twice: one deal
        made = _tap(crm, platform, user, empty, "新建商机")
    assert made["title"] == "商机 · 腾讯" and "初步接触" in made["text"]
    assert [stage for _, stage, _, _ in _deals(crm)] == ["初步接触"]

    card = _ask(crm, platform, user, "商机 腾讯")
    assert card["title"] == "商机 · 腾讯" and list(card["buttons"])[0] == "需求分析"
    puzzled = _ask(crm, platform, user, "商机 腾讯 随便说说")
    assert "没看懂" in puzzled["text"]
    assert len(_changes(crm)) == 1


# -- buttons ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("platform", PLATFORMS)
def test_stage_buttons_move_the_deal_and_stale_or_repeated_taps_change_nothing(crm, heard, platform):
    user = REP[platform]
    first = _ask(crm, platform, user, "商机 腾讯 需求分析")
    moved = _tap(crm, platform, user, first, "方案报价")
    assert moved["title"] == "商机已推进 · 腾讯" and "需求分析 → 方案报价" in moved["text"]
    assert list(moved["buttons"]) == ["商务谈判", "赢单", "输单"]

    again = _tap(crm, platform, user, first, "方案报价")  # the same button once more
    assert "已经是「方案报价」了" in again["text"]
    stale = _tap(crm, platform, user, first, "赢单")  # from the card before the move
    assert stale["title"] == "商机已有变化 · 腾讯" and "张三已把它改到「方案报价」" in stale["text"]
    assert _changes(crm) == [("", "需求分析"), ("需求分析", "方案报价")]
    assert len(heard) == 2


def test_the_customer_cards_button_opens_the_stages_on_a_dingtalk_card(stack_factory):
    """The lead's customer card carries Button("推进商机", "deal.stages", str(deal_id))."""
    stack = stack_factory(card_template_id="tpl.schema")
    with session_scope(stack.runtime.engine) as session:
        rep = Employee(name="张三", synced_at=SATURDAY_10AM)
        session.add(rep)
        session.flush()
        session.add(Identity(platform="dingtalk", user_id="0147001", employee_id=rep.id))
        customer = Customer(name="腾讯科技(深圳)有限公司", short_names="腾讯", tier="A", owner_id=rep.id)
        refresh_forms(customer)
        session.add(customer)
        session.flush()
        deal_id = deals.create_deal(session, customer=customer, by=rep, stage="商务谈判").id
    peer = stack.dingtalk_peer
    stack.post_dingtalk(peer.text("0147001", "帮助"))
    menu = wait_for(lambda: stack.dingtalk.messages_to("0147001"))[0]

    stack.post_dingtalk(peer.card_click("0147001", menu["out_track_id"], "deal.stages", str(deal_id)),
                        path="/dingtalk/card")
    card = wait_for(lambda: len(stack.dingtalk.messages_to("0147001")) > 1 and stack.dingtalk.messages_to("0147001"))[1]
    assert card["card_data"]["title"] == "商机 · 腾讯"
    buttons = json.loads(card["card_data"]["buttons"])
    assert [b["text"] for b in buttons] == ["赢单", "输单"]
    assert buttons[0]["action"] == "deal.move" and buttons[0]["value"].startswith(f"{deal_id}:赢单")

    stack.post_dingtalk(peer.card_click("0147001", card["out_track_id"], "deal.move", buttons[0]["value"]),
                        path="/dingtalk/card")
    def answers():  # the win also pushes the contract approval the OA loop raises: not an answer here
        return [m for m in stack.dingtalk.messages_to("0147001")
                if not (m.get("title") or m.get("card_data", {}).get("title", "")).startswith("已提交 · R-")]
    done = wait_for(lambda: len(answers()) > 2 and answers())[2]
    assert done["title"] == "商机已推进 · 腾讯"  # no buttons left for a rep on a won deal: plain markdown
    assert "已结束的商机只能由经理或管理员重新打开" in done["text"]
    # Won (with nobody set up to approve its contract, a one-person company signs it at once).
    assert stack.count("deal_stage_change", "WHERE to_stage = '赢单'") == 1


# -- who may do what ----------------------------------------------------------------------------------


@pytest.mark.parametrize("platform", PLATFORMS)
def test_someone_elses_customer_shows_name_and_stage_but_not_the_amount(crm, platform):
    _ask(crm, "wecom", "zhangsan", "商机 腾讯 方案报价 50万")
    other = {"wecom": "lisi", "dingtalk": "0147009"}[platform]

    refused = _ask(crm, platform, other, "商机 腾讯 赢单")
    assert refused["title"] == "不是你的客户" and "张三" in refused["text"]
    seen = _ask(crm, platform, other, "商机 腾讯")
    assert "方案报价" in seen["text"] and "仅负责人可见" in seen["text"] and "500,000" not in seen["text"]
    assert seen["buttons"] == {}
    assert _changes(crm) == [("", "方案报价")]

    boss = _ask(crm, "wecom", "wangjl", "商机 腾讯")
    assert "¥500,000.00" in boss["text"]  # the owner's manager sees it


@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_won_deal_is_reopened_only_by_the_owners_manager(crm, heard, platform):
    user = REP[platform]
    won = _ask(crm, platform, user, "商机 腾讯 商务谈判")
    _tap(crm, platform, user, won, "赢单")
    deal_id = _deal_id(crm)

    closed = _ask(crm, platform, user, "商机 腾讯")
    assert "赢单" in closed["text"] and closed["buttons"] == {}  # no way back for the rep
    forged = _ask(crm, platform, user, f"#deal.move {deal_id}:商务谈判")  # typed (a dtmd link does the same)
    assert "找你的经理" in forged["text"]
    said_again = _ask(crm, platform, user, "商机 腾讯 赢了")  # about the won deal, not a second win
    assert "没有改动" in said_again["text"]
    lost_now = _ask(crm, platform, user, "商机 腾讯 输单")
    assert lost_now["title"] == "没有改动" and "找你的经理" in lost_now["text"]
    assert [stage for _, stage, _, _ in _deals(crm)] == ["赢单"]
    assert [t for _, _, t, _ in heard].count("赢单") == 1

    boss_card = _ask(crm, "wecom", "wangjl", "商机 腾讯")
    assert "商务谈判" in boss_card["buttons"] and "输单" in boss_card["buttons"]
    reopened = _tap(crm, "wecom", "wangjl", boss_card, "商务谈判")
    assert reopened["title"] == "商机已推进 · 腾讯"
    assert _changes(crm)[-2:] == [("商务谈判", "赢单"), ("赢单", "商务谈判")]
    assert [(f, t, who) for _, f, t, who in heard][-1] == ("赢单", "商务谈判", "王经理")
    assert _audit(crm)[-1] == "deal.stage"


def test_a_new_open_stage_after_a_closed_deal_is_a_new_deal(crm):
    _ask(crm, "wecom", "zhangsan", "商机 腾讯 输单")
    again = _ask(crm, "wecom", "zhangsan", "商机　腾讯　需求分析")  # full-width spaces, as phones type them
    assert again["title"] == "已新建商机 · 腾讯"
    assert [stage for _, stage, _, _ in _deals(crm)] == ["输单", "需求分析"]


def _deal_id(stack) -> int:
    with stack.runtime.engine.connect() as conn:
        return conn.execute(text("SELECT max(id) FROM deal")).scalar_one()


# -- finding the customer and the deal -----------------------------------------------------------------


@pytest.mark.parametrize("platform", PLATFORMS)
def test_an_unsure_customer_offers_buttons_and_an_unknown_one_is_said_plainly(crm, platform):
    user = REP[platform]
    unsure = _ask(crm, platform, user, "商机 恒达 需求分析")
    assert unsure["title"] == "您说的是哪家？" and len(unsure["buttons"]) >= 2
    assert _deals(crm) == []
    label = next(iter(unsure["buttons"]))
    made = _tap(crm, platform, user, unsure, label)
    assert made["title"].startswith("已新建商机") and "需求分析" in made["text"]
    _tap(crm, platform, user, unsure, label)  # tapped again: the deal is already there
    assert len(_deals(crm)) == 1 and len(_changes(crm)) == 1

    unknown = _ask(crm, platform, user, "商机 宇宙无敌大公司 赢单")
    assert "没找到这个客户" in unknown["text"]
    assert len(_deals(crm)) == 1


def test_several_open_deals_are_offered_as_buttons(crm, heard):
    with session_scope(crm.runtime.engine) as session:
        rep = session.execute(select(Employee).where(Employee.name == "张三")).scalar_one()
        tencent = session.execute(select(Customer).where(Customer.short_names == "腾讯")).scalar_one()
        deals.create_deal(session, customer=tencent, by=rep, title="腾讯 云服务器")
        deals.create_deal(session, customer=tencent, by=rep, title="腾讯 企业邮箱", stage="需求分析")
    heard.clear()
    pick = _ask(crm, "wecom", "zhangsan", "商机 腾讯 商务谈判")
    assert pick["title"] == "哪个商机？ · 腾讯" and list(pick["buttons"]) == ["腾讯 云服务器", "腾讯 企业邮箱"]
    moved = _tap(crm, "wecom", "zhangsan", pick, "腾讯 企业邮箱")
    assert moved["title"] == "商机已推进 · 腾讯" and "需求分析 → 商务谈判" in moved["text"]
    assert sorted(stage for _, stage, _, _ in _deals(crm)) == ["初步接触", "商务谈判"]
    assert [(f, t) for _, f, t, _ in heard] == [("需求分析", "商务谈判")]


# -- the admin's stage list ---------------------------------------------------------------------------


@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_custom_stage_list_is_what_the_command_accepts_and_the_buttons_show(crm, platform):
    with session_scope(crm.runtime.engine) as session:
        admin = roles.people_with(session, "admin")[0]
        rules.put(session, "crm.deal_stages", ["线索", "试用", "采购流程", "赢单", "输单"], by=admin)
    user = REP[platform]

    old = _ask(crm, platform, user, "商机 腾讯 方案报价")
    assert "没看懂" in old["text"] and _deals(crm) == []
    made = _ask(crm, platform, user, "商机 腾讯 试用")
    assert made["title"] == "已新建商机 · 腾讯" and list(made["buttons"]) == ["采购流程", "赢单", "输单"]
    moved = _tap(crm, platform, user, made, "采购流程")
    assert list(moved["buttons"]) == ["赢单", "输单"]
    assert _changes(crm) == [("", "试用"), ("试用", "采购流程")]


# -- the signal -----------------------------------------------------------------------------------------


def test_the_signal_is_part_of_the_moves_transaction(crm):
    """A subscriber's write commits with the move and is rolled back with it."""
    def contract_approval(session, *, deal, from_stage, to_stage, by, **_):
        if to_stage == "赢单":
            session.add(Outbox(key=f"test:contract:{deal.id}", kind="message", platform="wecom",
                               recipient="wangjl", payload="{}"))

    crm.runtime.signals.subscribe(signals.DEAL_STAGE_CHANGED, contract_approval)
    try:
        with session_scope(crm.runtime.engine) as session:
            rep = session.execute(select(Employee).where(Employee.name == "张三")).scalar_one()
            tencent = session.execute(select(Customer).where(Customer.short_names == "腾讯")).scalar_one()
            deal_id = deals.create_deal(session, customer=tencent, by=rep, stage="商务谈判").id
        with pytest.raises(RuntimeError):
            with session_scope(crm.runtime.engine) as session:
                deal = session.get(Deal, deal_id)
                deals.move_stage(session, deal, "赢单", by=session.get(Employee, rep.id))
                assert session.execute(select(Outbox).where(Outbox.key == f"test:contract:{deal_id}")).first()
                raise RuntimeError("something later in the same handler failed")
        assert crm.count("outbox", "WHERE key LIKE 'test:contract:%'") == 0
        assert _deals(crm)[0][1] == "商务谈判" and _changes(crm) == [("", "商务谈判")]
        assert _audit(crm) == ["deal.create"]

        with session_scope(crm.runtime.engine) as session:
            deals.move_stage(session, session.get(Deal, deal_id), "赢单", by=session.get(Employee, rep.id))
        assert crm.count("outbox", "WHERE key LIKE 'test:contract:%'") == 1
    finally:
        crm.runtime.signals.unsubscribe(signals.DEAL_STAGE_CHANGED, contract_approval)


def test_stage_words_and_bad_stages_in_the_workflow(crm):
    with session_scope(crm.runtime.engine) as session:
        assert [deals.match_stage(session, w) for w in ("报价", "谈判", "赢了", "签了", "丢了", "营单", "需求")] == [
            "方案报价", "商务谈判", "赢单", "赢单", "输单", "赢单", "需求分析"]
        assert deals.match_stage(session, "月底签") is None and deals.match_stage(session, "50万") is None
        rep = session.execute(select(Employee).where(Employee.name == "张三")).scalar_one()
        tencent = session.execute(select(Customer).where(Customer.short_names == "腾讯")).scalar_one()
        deal = deals.create_deal(session, customer=tencent, by=rep)
        with pytest.raises(deals.StageRefused):
            deals.move_stage(session, deal, "不存在", by=rep)
        assert deals.move_stage(session, deal, "初步接触", by=rep) is None
        assert [c.to_stage for c in deals.history(session, deal.id)] == ["初步接触"]
        assert deals.open_deals(session, tencent.id) == [deal]


def test_seeded_deals_start_their_history_and_show_it_on_the_card(stack_factory):
    from sim.seed import seed

    stack = stack_factory(clock=lambda: SATURDAY_10AM)
    with session_scope(stack.runtime.engine) as session:
        seed(session, now=SATURDAY_10AM)
    with session_scope(stack.runtime.engine) as session:
        seeded = list(session.execute(select(Deal)).scalars())
        for deal in seeded:
            (change,) = deals.history(session, deal.id)
            assert (change.from_stage, change.to_stage, change.employee_id) == ("", deal.stage, deal.owner_id)
        open_one = next(d for d in seeded if not deals.is_closed(d))
        owner = session.get(Employee, open_one.owner_id)
        session.add(Identity(platform="wecom", user_id="seeded-owner", employee_id=owner.id))
        customer = session.get(Customer, open_one.customer_id)
    card = _ask(stack, "wecom", "seeded-owner", f"商机 {customer.name}")
    assert "最近变更" in card["text"] and f"新建({open_one.stage})" in card["text"]
