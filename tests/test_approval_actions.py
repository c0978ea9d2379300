"""The approver's other moves, through the card buttons and typed: 转交, 加签 (before / after me),
退回 to the step before, 评论 — each on the history, each moving the right cards to the right people."""

from __future__ import annotations

from conftest import wait_for

from test_approvals import _nth, _requests, _said, _submit_expense, _tap, _title, oa  # noqa: F401


def test_transfer_by_button_asks_who_and_the_colleague_decides(oa):  # noqa: F811
    _submit_expense(oa)
    task = _nth(oa, "wangjl", 1)
    _tap(oa, "wangjl", task, "转交")
    assert "转交给谁" in _said(_nth(oa, "wangjl", 2))
    oa.post_wecom(oa.wecom_peer.text("wangjl", "刘总监"))
    assert _title(_nth(oa, "wangjl", 3)) == "已转交"
    theirs = _nth(oa, "director", 1)
    assert _title(theirs) == "待你审批 · 报销"
    _tap(oa, "wangjl", task, "同意", 1)  # the old card no longer decides anything
    assert "R-1001" in _title(_nth(oa, "wangjl", 4)) and _requests(oa)[0].status == "pending"
    _tap(oa, "director", theirs, "同意", 2)
    done = _nth(oa, "zhangsan", 3)
    assert _title(done) == "R-1001 · 已通过" and "王经理转交给刘总监" in _said(done)


def test_add_a_signer_before_me_then_it_comes_back_to_me(oa):  # noqa: F811
    _submit_expense(oa)
    _nth(oa, "wangjl", 1)
    oa.post_wecom(oa.wecom_peer.text("wangjl", "加签 R-1001 钱会计"))
    assert _title(_nth(oa, "wangjl", 2)) == "已加签"
    _tap(oa, "qian", _nth(oa, "qian", 1), "同意")
    again = _nth(oa, "wangjl", 3)  # back to me, as a new card
    assert _title(again) == "待你审批 · 报销"
    _tap(oa, "wangjl", again, "同意", 1)
    assert _title(_nth(oa, "zhangsan", 4)) == "R-1001 · 已通过"


def test_add_a_signer_after_me(oa):  # noqa: F811
    _submit_expense(oa)
    oa.post_wecom(oa.wecom_peer.text("wangjl", "加签 R-1001 郑出纳 之后"))
    _nth(oa, "wangjl", 2)
    _tap(oa, "wangjl", _nth(oa, "wangjl", 1), "同意", 1)
    _tap(oa, "zheng", _nth(oa, "zheng", 1), "同意", 2)
    done = wait_for(lambda: [m for m in oa.wecom.messages_to("zhangsan") if _title(m) == "R-1001 · 已通过"])
    assert "郑出纳 同意" in _said(done[0])


def test_send_back_to_the_manager_from_finance(oa):  # noqa: F811
    _submit_expense(oa, "报销 招待客户 3000 元")
    _tap(oa, "wangjl", _nth(oa, "wangjl", 1), "同意")
    _tap(oa, "qian", _nth(oa, "qian", 1), "退回", 1)
    assert _title(_nth(oa, "qian", 2)) == "退回"  # asked first: a reason typed before the tap is handled is not one
    oa.post_wecom(oa.wecom_peer.text("qian", "发票日期不对，请经理再确认"))
    assert _title(_nth(oa, "qian", 3)) == "已退回"
    again = _nth(oa, "wangjl", 3)
    assert _title(again) == "待你审批 · 报销"
    oa.post_wecom(oa.wecom_peer.text("zhangsan", "记录 R-1001"))
    history = wait_for(lambda: [m for m in oa.wecom.messages_to("zhangsan") if "退回到第1步" in _said(m)])[-1]
    assert "退回到第1步：发票日期不对" in _said(history)


def test_the_first_step_cannot_be_sent_back_and_strangers_cannot_act(oa):  # noqa: F811
    _submit_expense(oa)
    _nth(oa, "wangjl", 1)
    oa.post_wecom(oa.wecom_peer.text("wangjl", "退回 R-1001 不对"))
    assert "第一步" in _said(_nth(oa, "wangjl", 2))
    oa.post_wecom(oa.wecom_peer.text("lisi", "转交 R-1001 刘总监"))
    assert _title(_nth(oa, "lisi", 1)) == "这不是你的申请"
    oa.post_wecom(oa.wecom_peer.text("wangjl", "转交 R-1001 张三"))
    assert "不能交给申请人" in _said(_nth(oa, "wangjl", 3))
    assert _requests(oa)[0].status == "pending"


def test_comments_go_on_the_history(oa):  # noqa: F811
    _submit_expense(oa)
    _nth(oa, "wangjl", 1)
    oa.post_wecom(oa.wecom_peer.text("wangjl", "评论 R-1001 已电话确认"))
    assert "王经理：已电话确认" in _said(_nth(oa, "wangjl", 2))
    oa.post_wecom(oa.wecom_peer.text("lisi", "评论 R-1001 我也看看"))
    assert _title(_nth(oa, "lisi", 1)) == "这不是你的申请"
