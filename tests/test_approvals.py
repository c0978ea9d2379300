"""OA requests from chat through the WeCom and DingTalk routes: a request, its confirmation card with
the approvers it will go to, submission with the chain pinned, decisions on cards (once, however
often or however simultaneously tapped), withdrawal, queries and the rule preview."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import text
from sqlmodel import Session, select

from conftest import TEST_DB, settle, wait_for
from storage.db import session_scope
from storage.models import ApprovalRequest, ApprovalRule, ApprovalTask, Employee, Identity
from workflows import roles
from workflows.approvals import requests

SATURDAY_1130 = datetime(2026, 11, 21, 3, 30, tzinfo=timezone.utc)  # 11:30 in Shanghai


@pytest.fixture
def oa(stack_factory):
    """A small company; `stack.shift(timedelta)` moves its clock forward."""
    started = datetime.now(timezone.utc)
    shifted = [timedelta(0)]
    stack = stack_factory(clock=lambda: SATURDAY_1130 + shifted[0] + (datetime.now(timezone.utc) - started))
    stack.shift = lambda delta: shifted.__setitem__(0, shifted[0] + delta)
    with session_scope(stack.runtime.engine) as session:
        people = {}

        def person(key, name, department, role, manager=None, dingtalk=None):
            employee = Employee(name=name, department=department, synced_at=SATURDAY_1130,
                                manager_id=people[manager].id if manager else None)
            session.add(employee)
            session.flush()
            roles.grant(session, employee, role)
            session.add(Identity(platform="wecom", user_id=key, employee_id=employee.id))
            if dingtalk:
                session.add(Identity(platform="dingtalk", user_id=dingtalk, employee_id=employee.id))
            people[key] = employee

        person("ceo", "陈总", "总经办", "ceo")
        person("director", "刘总监", "销售部", "sales_director", "ceo")
        person("wangjl", "王经理", "销售部", "sales_manager", "director", dingtalk="0147002")
        person("zhangsan", "张三", "销售部", "rep", "wangjl", dingtalk="0147001")
        person("qian", "钱会计", "财务部", "finance", "ceo")
        person("zheng", "郑出纳", "财务部", "finance", "qian")
        person("lisi", "李四", "销售部", "rep", "wangjl")
    return stack


def _messages(stack, user):
    return stack.wecom.messages_to(user)


def _nth(stack, user, n):
    """The n-th message (1-based) to `user`, once it has arrived."""
    return wait_for(lambda: len(_messages(stack, user)) >= n and _messages(stack, user))[n - 1]


def _title(message) -> str:
    if message["msgtype"] == "template_card":
        return message["template_card"]["main_title"]["title"]
    return message["text"]["content"].split("】")[0].lstrip("【")


def _said(message) -> str:
    return json.dumps(message, ensure_ascii=False)


def _fields(message) -> dict[str, str]:
    return {f["keyname"]: f["value"] for f in message["template_card"].get("horizontal_content_list", [])}


def _tap(stack, user, message, label, n=0):
    card = message["template_card"]
    key = next(b["key"] for b in card["button_list"] if b["text"] == label)
    code = stack.wecom.issue_response_code(card["task_id"])
    stack.post_wecom(stack.wecom_peer.card_click(user, key, card["task_id"], code, create_time=1_800_000_000 + n))


def _requests(stack):
    with stack.runtime.engine.connect() as conn:
        return conn.execute(text("SELECT id, type, status, step, chain FROM approval_request ORDER BY id")).all()


def _submit_expense(stack, words="报销 出租车 86.5 元"):
    stack.post_wecom(stack.wecom_peer.text("zhangsan", words))
    confirm = _nth(stack, "zhangsan", 1)
    _tap(stack, "zhangsan", confirm, "提交")
    return confirm, _nth(stack, "zhangsan", 2)


def test_an_expense_is_confirmed_submitted_and_approved_by_the_manager(oa):
    confirm, submitted = _submit_expense(oa)
    assert _title(confirm) == "报销 · 请确认"
    assert _fields(confirm) == {"类型": "报销", "金额": "¥86.50", "事由": "出租车", "预计审批人": "王经理"}
    assert _title(submitted) == "已提交 · R-1001"

    task = _nth(oa, "wangjl", 1)
    assert _title(task) == "待你审批 · 报销"
    assert _fields(task)["申请人"] == "张三 销售部" and _fields(task)["金额"] == "¥86.50"
    _tap(oa, "wangjl", task, "同意")
    answer = _nth(oa, "wangjl", 2)
    assert _title(answer) == "R-1001 · 已通过"
    news = _nth(oa, "zhangsan", 3)
    assert _title(news) == "R-1001 · 已通过" and "审批通过了" in _said(news) and "王经理 同意" in _said(news)
    (_, kind, status, _, _), = _requests(oa)
    assert (kind, status) == ("报销", "approved")
    assert oa.count("audit_log", "WHERE action IN ('approval.submit', 'approval.approve')") == 2


def test_a_large_expense_goes_to_the_manager_then_either_accountant_once(oa):
    confirm, _ = _submit_expense(oa, "报销 招待客户 3000 元")
    assert _fields(confirm)["预计审批人"] == "王经理 → 财务 钱会计/郑出纳(或签)"
    _tap(oa, "wangjl", _nth(oa, "wangjl", 1), "同意")
    assert "王经理已同意" in _said(_nth(oa, "zhangsan", 3))
    qian, zheng = _nth(oa, "qian", 1), _nth(oa, "zheng", 1)
    _tap(oa, "qian", qian, "同意", 1)
    assert _title(_nth(oa, "qian", 2)) == "R-1001 · 已通过"
    _tap(oa, "zheng", zheng, "同意", 2)  # too late: 或签 is decided
    late = _nth(oa, "zheng", 2)
    assert "已处理：钱会计" in _said(late)
    settle(0.5)
    with oa.runtime.engine.connect() as conn:
        statuses = conn.execute(text("SELECT approver_id, status FROM approval_task ORDER BY id")).all()
    assert sorted(s for _, s in statuses) == ["approved", "approved", "skipped"]
    assert len(_messages(oa, "zhangsan")) == 4  # confirm, submitted, progress, done: nothing twice


def test_submit_tapped_twice_submits_once(oa):
    oa.post_wecom(oa.wecom_peer.text("zhangsan", "报销 打车 50"))
    confirm = _nth(oa, "zhangsan", 1)
    _tap(oa, "zhangsan", confirm, "提交", 1)
    _tap(oa, "zhangsan", confirm, "提交", 2)
    _nth(oa, "zhangsan", 3)
    answers = [_said(m) for m in _messages(oa, "zhangsan")[1:]]  # the two taps may be handled in either order
    assert sum("已经提交过了" in a for a in answers) == 1 and sum("已提交 · R-1001" in a for a in answers) == 1
    settle(0.5)
    assert len(_messages(oa, "wangjl")) == 1 and oa.count("approval_task") == 1


def test_a_rejection_asks_for_a_reason_and_the_requester_hears_it(oa):
    _submit_expense(oa)
    task = _nth(oa, "wangjl", 1)
    _tap(oa, "wangjl", task, "拒绝")
    reasons = _nth(oa, "wangjl", 2)
    assert _title(reasons) == "拒绝 R-1001 · 选原因"
    assert _requests(oa)[0].status == "pending"  # asking is not deciding
    _tap(oa, "wangjl", reasons, "缺少发票", 1)
    news = _nth(oa, "zhangsan", 3)
    assert _title(news) == "R-1001 · 已拒绝" and "原因：缺少发票" in _said(news)


def test_typed_decisions_with_the_number(oa):
    _submit_expense(oa)
    _nth(oa, "wangjl", 1)
    oa.post_wecom(oa.wecom_peer.text("wangjl", "拒绝 R-1001 发票抬头不对"))
    assert "原因：发票抬头不对" in _said(_nth(oa, "zhangsan", 3))


def test_someone_else_cannot_decide_and_nothing_changes(oa):
    _submit_expense(oa)
    _nth(oa, "wangjl", 1)
    with oa.runtime.engine.connect() as conn:
        task_id = conn.execute(text("SELECT id FROM approval_task")).scalar()
    oa.post_wecom(oa.wecom_peer.text("lisi", f"#approval.approve {task_id}"))
    assert _title(_nth(oa, "lisi", 1)) == "这不是你的申请"
    assert _requests(oa)[0].status == "pending" and oa.count("audit_log", "WHERE action = 'approval.approve'") == 0


def test_withdraw_tells_the_approver_and_their_card_then_says_so(oa):
    _submit_expense(oa)
    task = _nth(oa, "wangjl", 1)
    oa.post_wecom(oa.wecom_peer.text("zhangsan", "撤回 R-1001"))
    assert _title(_nth(oa, "zhangsan", 3)) == "已撤回 · R-1001"
    assert _title(_nth(oa, "wangjl", 2)) == "R-1001 已撤回"
    _tap(oa, "wangjl", task, "同意")
    assert "已撤回" in _title(_nth(oa, "wangjl", 3)) and _requests(oa)[0].status == "withdrawn"


def test_an_expense_without_an_amount_asks_and_creates_nothing(oa):
    oa.post_wecom(oa.wecom_peer.text("zhangsan", "报销 打车"))
    assert "报销多少钱" in _said(_nth(oa, "zhangsan", 1))
    assert _requests(oa) == []


def test_who_approves_previews_without_creating_anything(oa):
    oa.post_wecom(oa.wecom_peer.text("zhangsan", "谁审批 报销 3000"))
    preview = _nth(oa, "zhangsan", 1)
    assert "王经理 → 财务 钱会计/郑出纳(或签)" in _said(preview)
    oa.post_wecom(oa.wecom_peer.text("zhangsan", "谁审批 请假 下周一到周五"))
    assert "王经理 → 刘总监" in _said(_nth(oa, "zhangsan", 2))  # > 3 days: manager, then department head
    assert _requests(oa) == []


def test_leave_counts_working_days_and_picks_the_chain(oa):
    oa.post_wecom(oa.wecom_peer.text("zhangsan", "请假 年假 下周一到周三 回老家"))
    confirm = _nth(oa, "zhangsan", 1)
    assert _fields(confirm)["内容"] == "年假 3天" and _fields(confirm)["时间"] == "11-23 至 11-25"
    assert _fields(confirm)["预计审批人"] == "王经理"


def test_a_rule_edited_mid_flight_leaves_the_pending_request_on_its_chain(oa):
    _submit_expense(oa)
    _nth(oa, "wangjl", 1)
    with session_scope(oa.runtime.engine) as session:
        rule = session.exec(select(ApprovalRule).where(ApprovalRule.request_type == "报销",
                                                       ApprovalRule.condition == "amount <= 1000")).one()
        rule.steps = json.dumps([{"approvers": ["role:finance"], "mode": "any"}])
        rule.version += 1
    _tap(oa, "wangjl", _nth(oa, "wangjl", 1), "同意")
    assert _title(_nth(oa, "zhangsan", 3)) == "R-1001 · 已通过"  # the manager's approval was enough
    oa.post_wecom(oa.wecom_peer.text("zhangsan", "报销 打车 40"))
    assert _fields(_nth(oa, "zhangsan", 4))["预计审批人"] == "财务 钱会计/郑出纳(或签)"


def test_my_requests_and_my_tasks(oa):
    _submit_expense(oa)
    _nth(oa, "wangjl", 1)
    oa.post_wecom(oa.wecom_peer.text("zhangsan", "我的申请"))
    assert "R-1001 报销 出租车 86.5元 · 审批中" in _said(_nth(oa, "zhangsan", 3))
    oa.post_wecom(oa.wecom_peer.text("wangjl", "我的审批"))
    todo = _nth(oa, "wangjl", 2)
    assert _title(todo) == "待我审批 · 1单"
    _tap(oa, "wangjl", todo, "R-1001")
    assert _title(_nth(oa, "wangjl", 3)) == "待你审批 · 报销"


def test_the_whole_round_on_dingtalk(oa):
    oa.post_dingtalk(oa.dingtalk_peer.text("0147001", "报销 出租车 86.5"))
    confirm = wait_for(lambda: oa.dingtalk.messages_to("0147001"))[0]
    assert confirm["title"] == "报销 · 请确认" and "**预计审批人**：王经理" in confirm["text"]
    assert "content=%E6%8F%90%E4%BA%A4%20R-1001)" in confirm["text"]  # 提交 sends 「提交 R-1001」
    oa.post_dingtalk(oa.dingtalk_peer.text("0147001", "提交 R-1001"))  # what the link sends
    # The manager last wrote on nothing yet: the card goes to his preferred identity.
    _nth(oa, "wangjl", 1)
    oa.post_dingtalk(oa.dingtalk_peer.text("0147002", "同意 R-1001 第1步"))
    done = wait_for(lambda: len(oa.dingtalk.messages_to("0147001")) >= 3 and oa.dingtalk.messages_to("0147001"))
    assert done[2]["title"] == "R-1001 · 已通过"


@pytest.mark.skipif(not TEST_DB.startswith("postgresql"), reason="real concurrency needs PostgreSQL")
@pytest.mark.parametrize("second", ["approve", "reject"])
def test_two_simultaneous_decisions_make_exactly_one(oa, second):
    _submit_expense(oa, "报销 招待客户 3000 元")
    _tap(oa, "wangjl", _nth(oa, "wangjl", 1), "同意")
    _nth(oa, "qian", 1), _nth(oa, "zheng", 1)
    results = decide_at_once(oa, [True, second == "approve"])
    assert sorted(results) == ["decided", "stale"]
    assert oa.count("approval_task", "WHERE status IN ('approved', 'rejected')") == 2  # manager + one of two
    assert oa.count("outbox", "WHERE key LIKE 'approval:done:%'") == 1


def decide_at_once(stack, approvals: list[bool]) -> list[str]:
    """The pending tasks' approvers decide at the same moment (`approvals[i]`: the i-th task's
    approver approves), each in a session of its own; "decided" or "stale" for each, in task order."""
    stack.stop_workers()
    engine = stack.runtime.engine
    with Session(engine) as session:
        pending = [(t.id, t.approver_id) for t in session.exec(select(ApprovalTask).where(ApprovalTask.status == "pending")
                                                                  .order_by(ApprovalTask.id))]
    assert len(pending) == len(approvals)
    barrier = threading.Barrier(len(pending))
    results: dict[int, str] = {}

    def tap(n: int, task_id: int, person_id: int, approve: bool) -> None:
        with Session(engine) as session:
            person = session.get(Employee, person_id)
            requests.tasks_of(session, session.get(ApprovalRequest, 1))  # read first, as a handler does
            barrier.wait()
            try:
                requests.decide(session, task_id, by=person, approve=approve, comment="", now=SATURDAY_1130,
                                platform="wecom", tz="Asia/Shanghai")
                session.commit()
                results[n] = "decided"
            except requests.Stale:
                session.rollback()
                results[n] = "stale"

    threads = [threading.Thread(target=tap, args=(n, *task, approve))
               for n, (task, approve) in enumerate(zip(pending, approvals))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return [results[n] for n in range(len(pending))]


def _updates_for(stack, message):
    task_id = message["template_card"]["task_id"]
    return [u["template_card"] for u in stack.wecom.updates if u["template_card"]["task_id"] == task_id]


def test_one_tap_updates_the_approvers_and_the_requesters_cards(oa):
    _, submitted = _submit_expense(oa)
    task = _nth(oa, "wangjl", 1)
    _tap(oa, "wangjl", task, "同意")
    mine = wait_for(lambda: _updates_for(oa, task))
    assert mine[-1]["main_title"]["title"] == "R-1001 · 已通过"
    assert mine[-1]["replace_text"] == "已通过"  # nothing left to tap: one grey button (WeCom needs one)
    assert [b["text"] for b in mine[-1]["button_list"]] == ["已通过"]
    theirs = wait_for(lambda: _updates_for(oa, submitted))
    assert theirs[-1]["main_title"]["title"] == "R-1001 · 已通过"
    assert "王经理同意了，审批通过。" in theirs[-1]["sub_title_text"]


def test_each_step_updates_the_cards_it_can_and_a_spent_code_is_not_reused(oa):
    _, submitted = _submit_expense(oa, "报销 招待客户 3000 元")
    manager = _nth(oa, "wangjl", 1)
    _tap(oa, "wangjl", manager, "同意")
    first = wait_for(lambda: _updates_for(oa, submitted))
    assert first[-1]["main_title"]["title"] == "已提交 · R-1001"  # still pending, with 撤回
    assert "王经理同意了，等下一位审批。" in first[-1]["sub_title_text"]
    qian, zheng = _nth(oa, "qian", 1), _nth(oa, "zheng", 1)
    _tap(oa, "qian", qian, "同意", 1)
    wait_for(lambda: _updates_for(oa, zheng))  # the other accountant's card: decided by 钱会计
    assert "钱会计同意了，审批通过。" in _updates_for(oa, zheng)[-1]["sub_title_text"]
    settle(0.5)
    # The requester's card had one code and used it; the news arrived as a message instead.
    assert len(_updates_for(oa, submitted)) == 1
    assert _title(_nth(oa, "zhangsan", 4)) == "R-1001 · 已通过"
    assert oa.count("outbox", "WHERE status = 'dead'") == 0


def test_a_tap_on_a_card_brings_a_fresh_code_so_it_can_be_updated_again(oa):
    _, submitted = _submit_expense(oa, "报销 招待客户 3000 元")
    _tap(oa, "wangjl", _nth(oa, "wangjl", 1), "同意")
    wait_for(lambda: _updates_for(oa, submitted))  # the send's code: used
    _tap(oa, "zhangsan", submitted, "我的申请", 5)  # the requester taps their card: WeCom issues a new code
    _nth(oa, "zhangsan", 4)
    _tap(oa, "qian", _nth(oa, "qian", 1), "同意", 6)
    updates = wait_for(lambda: len(_updates_for(oa, submitted)) >= 2 and _updates_for(oa, submitted))
    assert updates[-1]["main_title"]["title"] == "R-1001 · 已通过"
    assert oa.count("outbox", "WHERE status = 'dead'") == 0
