"""Invoice photos through the HTTP routes: the worker downloads a photo (WeCom media/get), keeps it in
the file store, and the approver's 查看发票 sends it back as an image message — once however often
tapped, only to people involved in the request. Photos too large or not photos are refused with a
reply and kept nowhere; a download that fails for now is retried, never apologised for. Voice:
WeCom's Recognition is read like typed text."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from conftest import photo_bytes, settle, wait_for
from storage import outbox
from test_approvals import _nth, _said, _tap, _title, oa  # noqa: F401

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01" + bytes(range(256)) * 40  # a JPEG's magic numbers, 10 KB


def _cards(stack, user):
    """Cards and text answers (a card with no buttons is sent as text), not the images."""
    return [m for m in stack.wecom.messages_to(user) if m["msgtype"] != "image"]


def _card(stack, user, n, timeout=10.0):
    return wait_for(lambda: len(_cards(stack, user)) >= n and _cards(stack, user), timeout=timeout)[n - 1]


def _expense_with_photo(stack, photo: bytes = JPEG):
    """张三 files 报销 800 with one photo and submits; returns 王经理's task card."""
    stack.post_wecom(stack.wecom_peer.text("zhangsan", "报销 招待客户 800"))
    confirm = _card(stack, "zhangsan", 1)
    stack.post_wecom(stack.wecom_peer.image("zhangsan", stack.wecom.add_media(photo)))
    assert "共 1 张" in _said(_nth(stack, "zhangsan", 2))
    _tap(stack, "zhangsan", confirm, "提交")
    return _card(stack, "wangjl", 1)


def _stored(stack) -> list[tuple]:
    with stack.runtime.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(
            "SELECT sha256, size, mime, platform, attached_type FROM stored_file ORDER BY id"))]


def test_the_approver_taps_to_see_the_invoice_and_gets_the_photo_once(oa):  # noqa: F811
    task = _expense_with_photo(oa)
    assert [b["text"] for b in task["template_card"]["button_list"]][-1] == "查看发票"
    assert _stored(oa) == [(hashlib.sha256(JPEG).hexdigest(), len(JPEG), "image/jpeg", "wecom", "approval")]

    _tap(oa, "wangjl", task, "查看发票", n=1)
    told = _card(oa, "wangjl", 2)
    assert _title(told) == "发票照片 · R-1001" and "1 张照片马上发给你" in _said(told)
    assert wait_for(lambda: oa.wecom.images_to("wangjl")) == [JPEG]  # uploaded bytes = the original photo

    _tap(oa, "wangjl", task, "查看发票", n=2)  # tapped again: a new callback, the same photo not again
    again = _card(oa, "wangjl", 3)
    assert "今天已经发给你" in _said(again)
    settle(0.5)
    assert oa.wecom.images_to("wangjl") == [JPEG]
    assert oa.count("outbox", "WHERE kind = 'photo'") == 1


def test_the_requester_can_see_the_photos_but_an_outsider_gets_nothing(oa):  # noqa: F811
    task = _expense_with_photo(oa)
    request_id = next(b["key"] for b in task["template_card"]["button_list"] if b["text"] == "查看发票").split("|")[1]

    # 李四 is in the company but not in this request: a tap crafted with the request's id.
    oa.post_wecom(oa.wecom_peer.event("lisi", "click", f"approval.photos|{request_id}"))
    refused = _card(oa, "lisi", 1)
    assert _title(refused) == "这不是你的申请" and "招待客户" not in _said(refused)
    settle(0.5)
    assert oa.wecom.images_to("lisi") == [] and oa.count("outbox", "WHERE kind = 'photo'") == 0
    assert oa.count("audit_log", "WHERE action = 'refused' AND subject = 'approval:%s'" % request_id) == 1

    # The requester is involved: typed words, or the way a DingTalk markdown link sends the tap.
    oa.post_wecom(oa.wecom_peer.text("zhangsan", "查看发票 R-1001"))
    assert wait_for(lambda: oa.wecom.images_to("zhangsan")) == [JPEG]
    oa.post_wecom(oa.wecom_peer.text("lisi", f"#approval.photos {request_id}"))
    assert _title(_card(oa, "lisi", 2)) == "这不是你的申请"
    settle(0.3)
    assert oa.wecom.images_to("lisi") == []


@pytest.mark.parametrize("what,photo,title", [
    ("too large", b"\xff\xd8\xff" + b"\x00" * 3000, "照片太大了"),
    ("a GIF", b"GIF89a" + b"\x00" * 100, "只收照片"),
    ("a PDF", b"%PDF-1.7\n" + b"\x00" * 100, "只收照片"),
])
def test_a_photo_too_large_or_not_a_photo_is_refused_and_kept_nowhere(stack_factory, what, photo, title):
    stack = stack_factory(files_max_bytes=2000)
    stack.post_wecom(stack.wecom_peer.text("zhangsan", "报销 出租车 86.5"))
    _card(stack, "zhangsan", 1)
    stack.post_wecom(stack.wecom_peer.image("zhangsan", stack.wecom.add_media(photo)))
    refused = _card(stack, "zhangsan", 2)
    assert _title(refused) == title, what
    assert ("超过 2 KB" in _said(refused)) if what == "too large" else ("JPG 或 PNG" in _said(refused))
    settle(0.3)
    assert _stored(stack) == []
    with stack.runtime.engine.connect() as conn:
        details = conn.execute(text("SELECT details FROM approval_request")).scalar_one()
    assert "photos" not in json.loads(details)
    store = Path(stack.runtime.settings.files_dir)
    assert not store.exists() or not [p for p in store.rglob("*") if p.is_file()]


def test_an_expired_media_id_gets_a_clear_answer(stack):
    stack.post_wecom(stack.wecom_peer.text("zhangsan", "报销 出租车 86.5"))
    _card(stack, "zhangsan", 1)
    media = stack.wecom.add_media(JPEG)
    stack.wecom.expire_media(media)  # WeCom answers media/get with errcode 40007
    stack.post_wecom(stack.wecom_peer.image("zhangsan", media))
    answer = _card(stack, "zhangsan", 2)
    assert _title(answer) == "收到图片" and "没读到这张图片" in _said(answer)
    assert _stored(stack) == []


def test_a_download_that_fails_for_now_is_retried_not_apologised_for(stack):
    stack.post_wecom(stack.wecom_peer.text("zhangsan", "报销 出租车 86.5"))
    _card(stack, "zhangsan", 1)
    stack.wecom.fail_media = [503, {"errcode": -1, "errmsg": "system busy"}]
    stack.post_wecom(stack.wecom_peer.image("zhangsan", stack.wecom.add_media(JPEG)))
    attached = _card(stack, "zhangsan", 2, timeout=40)  # after two backed-off retries (5 s, then 10 s)
    assert "共 1 张" in _said(attached)
    assert stack.wecom.media_fetches == 3
    assert not any("出了点问题" in _said(m) for m in stack.wecom.messages_to("zhangsan"))
    assert len(_stored(stack)) == 1


def test_voice_recognition_files_an_expense_like_typed_text(stack):
    stack.post_wecom(stack.wecom_peer.voice("zhangsan", "报销出租车八十六块五。"))
    confirm = _card(stack, "zhangsan", 1)
    assert _title(confirm) == "报销 · 请确认" and "¥86.50" in _said(confirm)

    stack.post_wecom(stack.wecom_peer.voice("zhangsan", "今天天气怎么样"))
    assert "没听明白「今天天气怎么样」" in _said(_card(stack, "zhangsan", 2))
    stack.post_wecom(stack.wecom_peer.voice("zhangsan", ""))  # 语音识别 on, nothing heard
    stack.post_wecom(stack.wecom_peer.voice("zhangsan"))  # no Recognition at all
    titles = [_title(c) for c in wait_for(lambda: len(_cards(stack, "zhangsan")) >= 4 and _cards(stack, "zhangsan"))]
    assert titles[2:] == ["暂时听不懂语音", "暂时听不懂语音"]


def test_voice_on_dingtalk_files_an_expense(stack):
    stack.post_dingtalk(stack.dingtalk_peer.audio("0147001", "报销出租车八十六块五。"))
    confirm = wait_for(lambda: stack.dingtalk.messages_to("0147001"))[0]
    assert confirm["title"] == "报销 · 请确认" and "¥86.50" in confirm["text"]


def test_same_photo_twice_is_one_photo_on_dingtalk_and_stored_once(stack):
    peer, rep = stack.dingtalk_peer, "0147001"
    stack.post_dingtalk(peer.text(rep, "报销 出租车 86.5"))
    wait_for(lambda: stack.dingtalk.messages_to(rep))
    photo = photo_bytes("taxi receipt")
    for n in (2, 3):  # the same picture sent twice: two download codes, the same bytes
        stack.post_dingtalk(peer.picture(rep, download_code=stack.dingtalk.add_file(photo, "image/png")))
        wait_for(lambda: len(stack.dingtalk.messages_to(rep)) >= n)
    said = [m["text"] for m in stack.dingtalk.messages_to(rep)[1:3]]
    assert "共 1 张" in said[0] and "已经收到过了" in said[1]
    assert [s[4] for s in _stored(stack)] == ["approval"]


def test_a_photo_that_never_downloads_is_answered_at_the_last_attempt(oa):  # noqa: F811
    oa.post_wecom(oa.wecom_peer.text("zhangsan", "报销 出租车 86.5"))
    _card(oa, "zhangsan", 1)
    oa.wecom.fail_media = [503] * 50
    oa.post_wecom(oa.wecom_peer.image("zhangsan", oa.wecom.add_media(JPEG)))

    def answered():  # each retry is due after a back-off: move the clock past it
        oa.shift(timedelta(minutes=6))  # past the longest back-off (320 s), few cron slots
        return len(_cards(oa, "zhangsan")) >= 2

    wait_for(answered, timeout=90, interval=0.4)
    answer = _cards(oa, "zhangsan")[1]
    assert _title(answer) == "收到图片" and "没读到这张图片" in _said(answer)
    assert oa.wecom.media_fetches >= outbox.MAX_ATTEMPTS
    assert not any("出了点问题" in _said(m) for m in oa.wecom.messages_to("zhangsan"))
    assert _stored(oa) == []
