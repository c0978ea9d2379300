"""Approvers away and people leaving, with the clock moved: a delegation routes new tasks to the
delegate on the approver's behalf; Banli's own approved leave does the same (to the manager); an
admin's 离职 hands over open tasks and customers in one action, and the leaver can no longer act."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import text
from sqlmodel import select

from conftest import settle, wait_for
from storage.db import session_scope
from storage.models import Customer, Employee, Identity
from workflows import roles
from workflows.matching import refresh_forms

from test_approvals import SATURDAY_1130, _nth, _requests, _said, _submit_expense, _tap, _title, oa  # noqa: F401


def _admin(stack):
    with session_scope(stack.runtime.engine) as session:
        admin = Employee(name="林管理", department="行政部", synced_at=SATURDAY_1130)
        session.add(admin)
        session.flush()
        roles.grant(session, admin, "admin")
        session.add(Identity(platform="wecom", user_id="linhao", employee_id=admin.id))


def test_a_delegate_decides_on_the_approvers_behalf_during_the_dates(oa):  # noqa: F811
    oa.post_wecom(oa.wecom_peer.text("wangjl", "委托 刘总监 下周一到下周三"))
    assert _title(_nth(oa, "wangjl", 1)) == "已委托"
    _submit_expense(oa)  # Saturday: 王经理 is still here
    mine = _nth(oa, "wangjl", 2)
    assert _title(mine) == "待你审批 · 报销"
    _tap(oa, "wangjl", mine, "同意")
    wait_for(lambda: _requests(oa)[0].status == "approved")
    oa.shift(timedelta(days=2))  # Monday: away
    oa.post_wecom(oa.wecom_peer.text("zhangsan", "报销 打车 40"))
    confirms = wait_for(lambda: len(c := [m for m in oa.wecom.messages_to("zhangsan")
                                          if _title(m) == "报销 · 请确认"]) == 2 and c)
    _tap(oa, "zhangsan", confirms[1], "提交", 1)
    theirs = _nth(oa, "director", 1)
    assert "王经理" in _said(theirs) and _title(theirs) == "待你审批 · 报销"
    _tap(oa, "director", theirs, "同意", 2)
    done = wait_for(lambda: [m for m in oa.wecom.messages_to("zhangsan") if _title(m) == "R-1002 · 已通过"])[0]
    assert "刘总监（代王经理） 同意" in _said(done)


def test_on_approved_leave_the_manager_stands_in(oa):  # noqa: F811
    oa.post_wecom(oa.wecom_peer.text("qian", "请假 年假 下周一到周二"))
    _tap(oa, "qian", _nth(oa, "qian", 1), "提交")
    _tap(oa, "ceo", _nth(oa, "ceo", 1), "同意")  # 钱会计's manager approves her leave
    wait_for(lambda: _requests(oa)[0].status == "approved")
    oa.shift(timedelta(days=2))  # Monday: she is on leave
    _submit_expense(oa, "报销 招待客户 3000 元")
    _tap(oa, "wangjl", _nth(oa, "wangjl", 1), "同意")
    # Finance step: 郑出纳 as usual, and for 钱会计 her manager 陈总 on her behalf.
    stand_in = wait_for(lambda: [m for m in oa.wecom.messages_to("ceo") if "报销" in _title(m)])[0]
    assert "待你审批" in _title(stand_in)
    assert [m for m in oa.wecom.messages_to("qian") if "报销" in _title(m)] == []


def test_a_leaver_hands_over_tasks_and_customers_in_one_action_and_cannot_act(oa):  # noqa: F811
    _admin(oa)
    with session_scope(oa.runtime.engine) as session:
        rep = session.exec(select(Employee).where(Employee.name == "李四")).one()
        for name, short in (("北京字节跳动科技有限公司", "字节"), ("招商银行股份有限公司", "招行")):
            customer = Customer(name=name, short_names=short, tier="B", owner_id=rep.id)
            refresh_forms(customer)
            session.add(customer)
    _submit_expense(oa)
    _nth(oa, "wangjl", 1)
    oa.post_wecom(oa.wecom_peer.text("linhao", "离职 王经理 交接给 刘总监"))
    said = _said(_nth(oa, "linhao", 1))
    assert "已办理离职 · 王经理" in said and "1 个待审批交给刘总监" in said
    handed = _nth(oa, "director", 1)
    assert _title(handed) == "待你审批 · 报销"
    oa.post_wecom(oa.wecom_peer.text("linhao", "离职 李四 客户进公海"))
    assert "2 个客户进了公海" in _said(_nth(oa, "linhao", 2))
    assert oa.count("customer", "WHERE owner_id IS NULL") == 2
    assert oa.count("ownership_change", "WHERE reason = 'pool'") == 2
    oa.post_wecom(oa.wecom_peer.text("wangjl", "我的审批"))
    assert _title(_nth(oa, "wangjl", 2)) == "账号已停用"
    _tap(oa, "wangjl", _nth(oa, "wangjl", 1), "同意", 1)
    assert _title(_nth(oa, "wangjl", 3)) == "账号已停用"
    assert _requests(oa)[0].status == "pending"


def test_only_admins_handle_leavers(oa):  # noqa: F811
    oa.post_wecom(oa.wecom_peer.text("wangjl", "离职 张三 客户进公海"))
    assert _title(_nth(oa, "wangjl", 1)) == "只有管理员能办"
    with oa.runtime.engine.connect() as conn:
        assert conn.execute(text("SELECT active FROM employee WHERE name = '张三'")).scalar()
    settle(0.1)
