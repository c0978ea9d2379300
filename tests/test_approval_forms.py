"""Requests when something is missing: one question at a time (取消 always works), the menu's
报销/请假 buttons open the form, and invoice photos sent after an expense attach to it."""

from __future__ import annotations

import json

from conftest import photo_bytes, settle, wait_for

from test_approvals import _nth, _requests, _said, _tap, _title, oa  # noqa: F401


def test_the_menu_button_opens_the_expense_form_and_answers_complete_it(oa):  # noqa: F811
    oa.post_wecom(oa.wecom_peer.text("zhangsan", "帮助"))
    _tap(oa, "zhangsan", _nth(oa, "zhangsan", 1), "报销")
    assert "报销多少钱" in _said(_nth(oa, "zhangsan", 2))
    oa.post_wecom(oa.wecom_peer.text("zhangsan", "出租车 86.5"))
    confirm = _nth(oa, "zhangsan", 3)
    assert _title(confirm) == "报销 · 请确认" and "¥86.50" in _said(confirm)


def test_a_leave_without_dates_asks_for_them(oa):  # noqa: F811
    oa.post_dingtalk(oa.dingtalk_peer.text("0147001", "请假 年假"))
    asked = wait_for(lambda: oa.dingtalk.messages_to("0147001"))[0]
    assert "请几号到几号" in asked["text"]
    oa.post_dingtalk(oa.dingtalk_peer.text("0147001", "下周一到周三"))
    confirm = wait_for(lambda: len(oa.dingtalk.messages_to("0147001")) >= 2 and oa.dingtalk.messages_to("0147001"))[1]
    assert confirm["title"] == "请假 · 请确认" and "年假 3天" in confirm["text"]


def test_cancel_leaves_nothing_and_two_misses_end_the_form(oa):  # noqa: F811
    oa.post_wecom(oa.wecom_peer.text("zhangsan", "报销"))
    _nth(oa, "zhangsan", 1)
    oa.post_wecom(oa.wecom_peer.text("zhangsan", "取消"))
    assert _title(_nth(oa, "zhangsan", 2)) == "已取消"
    oa.post_wecom(oa.wecom_peer.text("zhangsan", "报销 打车"))
    _nth(oa, "zhangsan", 3)
    oa.post_wecom(oa.wecom_peer.text("zhangsan", "不知道"))
    assert "报销多少钱" in _said(_nth(oa, "zhangsan", 4))
    oa.post_wecom(oa.wecom_peer.text("zhangsan", "还是不知道"))
    assert _title(_nth(oa, "zhangsan", 5)) == "报销没有提交"
    assert _requests(oa) == []


def test_invoice_photos_attach_to_the_expense_once_and_the_approver_sees_them(oa):  # noqa: F811
    oa.post_wecom(oa.wecom_peer.text("zhangsan", "报销 招待客户 800"))
    confirm = _nth(oa, "zhangsan", 1)
    for n, media in enumerate(("media-invoice-1", "media-invoice-2", "media-invoice-1")):
        oa.wecom.add_media(photo_bytes(media), "image/png", media_id=media)
        oa.post_wecom(oa.wecom_peer.image("zhangsan", media_id=media))
        _nth(oa, "zhangsan", 2 + n)
    said = [_said(m) for m in oa.wecom.messages_to("zhangsan")[1:4]]
    assert "共 1 张" in said[0] and "共 2 张" in said[1] and "已经收到过了" in said[2]
    _tap(oa, "zhangsan", confirm, "提交")
    task = _nth(oa, "wangjl", 1)
    assert "照片 2 张" in json.dumps(task, ensure_ascii=False)
    settle(0.2)
    assert oa.count("audit_log", "WHERE action = 'approval.attach'") == 2
    assert oa.count("stored_file", "WHERE attached_type = 'approval'") == 2
