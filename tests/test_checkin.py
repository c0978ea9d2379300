"""签到: a location or photo sent soon after logging a visit attaches to it (WeCom: both; DingTalk:
photos — its robots receive no locations). Outside the window, or after something other than a
visit, people get a hint; a photo delivered twice is kept once; every check-in is audited."""

from __future__ import annotations

import json

import pytest

import hashlib

from chat import Chat, rows, sales_team
from conftest import photo_bytes

PLACE = "深圳市南山区腾讯滨海大厦"


@pytest.fixture
def team(stack_factory):
    return sales_team(stack_factory)


def _checkin(stack):
    """(place, latitude, longitude, checked in?, photos) of the latest logged visit."""
    place, lat, lng, at, photos = rows(stack, "SELECT place, latitude, longitude, checked_in_at, photos FROM follow_up "
                                              "WHERE content <> '旧记录' ORDER BY id DESC")[0]
    return place, lat, lng, at is not None, json.loads(photos)


def _sha(media_id: str) -> str:
    """What a visit keeps of the photo the stand-in served for `media_id`: its SHA-256."""
    return hashlib.sha256(photo_bytes(media_id)).hexdigest()


def _stored(stack) -> list[tuple]:
    """(checksum, attached to) of every kept photo file."""
    return [tuple(r) for r in rows(stack, "SELECT sha256, attached_type FROM stored_file ORDER BY id")]


def _audited(stack) -> int:
    return stack.count("audit_log", "WHERE action = 'followup.checkin'")


def test_location_then_photos_check_in_on_wecom(team):
    chat = Chat(team, "wecom")
    chat.say("拜访 腾讯 聊了报价")
    team.clock.skip(minutes=3)

    here = chat.location(22.5228, 113.9355, PLACE)
    assert here.title == "已签到 · 腾讯"
    assert here.field("地点") == PLACE and here.field("时间").startswith("11月21日(周六) 10:03")
    assert here.field("照片") == "0张" and "返回菜单" in here.buttons

    assert chat.photo("MEDIA-A").field("照片") == "1张"
    again = chat.photo("MEDIA-A")  # the same photo delivered again (a new message id)
    assert again.title == "已签到 · 腾讯" and again.field("照片") == "1张"
    assert chat.photo("MEDIA-B").field("照片") == "2张"

    assert _checkin(team) == (PLACE, 22.5228, 113.9355, True, [_sha("MEDIA-A"), _sha("MEDIA-B")])
    assert _stored(team) == [(_sha("MEDIA-A"), "followup"), (_sha("MEDIA-B"), "followup")]  # the repeat kept once
    assert _audited(team) == 3  # location, A, B — not the repeat


def test_photo_check_in_on_dingtalk(team):
    chat = Chat(team, "dingtalk")
    chat.say("拜访 招行 送了样品")
    done = chat.photo("dlPhoto1")
    assert done.title == "已签到 · 招行" and done.field("照片") == "1张"
    assert done.field("地点") == "（未发位置）"
    assert chat.photo("dlPhoto1").field("照片") == "1张"
    assert _checkin(team)[3:] == (True, [_sha("dlPhoto1")])
    assert _stored(team) == [(_sha("dlPhoto1"), "followup")]
    assert _audited(team) == 1


@pytest.mark.parametrize("platform", ["wecom", "dingtalk"])
def test_too_late_after_the_visit_gets_a_hint(team, platform):
    chat = Chat(team, platform)
    chat.say("拜访 腾讯 聊了报价")
    team.clock.skip(minutes=11)
    late = chat.photo("MEDIA-LATE")
    assert late.title == "收到图片" and "先发「拜访 客户 …」" in late.text
    assert "客户跟进" in late.buttons
    assert _checkin(team) == ("", None, None, False, [])
    assert _audited(team) == 0


def test_a_location_outside_the_window_is_not_attached(team):
    chat = Chat(team, "wecom")
    chat.say("拜访 腾讯 聊了报价")
    team.clock.skip(minutes=11)
    late = chat.location(22.5, 113.9, PLACE)
    assert late.title == "收到位置" and "先发「拜访 客户 …」" in late.text
    assert _checkin(team)[0] == ""


@pytest.mark.parametrize("platform", ["wecom", "dingtalk"])
def test_without_a_visit_there_is_nothing_to_check_in_to(team, platform):
    chat = Chat(team, platform)
    hint = chat.photo("MEDIA-X")
    assert "先发「拜访 客户 …」" in hint.text and "帮助" in hint.buttons
    chat.say("电话 腾讯 约了演示")  # a phone call is not a visit
    hint = chat.photo("MEDIA-Y")
    assert "先发「拜访 客户 …」" in hint.text
    assert _checkin(team)[4] == []
    assert _stored(team) == []  # a photo that belongs to nothing is not kept


def test_a_location_sent_while_the_visit_form_is_open_attaches_once_it_is_logged(team):
    chat = Chat(team, "wecom")
    chat.say("拜访")
    chat.say("腾讯")
    held = chat.location(22.5228, 113.9355, PLACE)
    assert "收到位置" in held.text and "聊了什么" in held.text  # the open question again
    assert held.buttons == ["跳过", "取消"]
    held = chat.photo("MEDIA-F")
    assert "收到照片" in held.text
    chat.say("聊了报价")
    done = chat.say("不用")
    assert done.title == "已记录 · 腾讯"
    assert done.field("签到").startswith(PLACE) and "照片1张" in done.field("签到")
    assert _checkin(team) == (PLACE, 22.5228, 113.9355, True, [_sha("MEDIA-F")])
    assert _stored(team) == [(_sha("MEDIA-F"), "followup")]  # held by the form, attached with the visit
    assert _audited(team) == 1


def test_a_held_location_is_dropped_with_a_cancelled_form(team):
    chat = Chat(team, "wecom")
    chat.say("拜访 腾讯")
    chat.location(22.5, 113.9, PLACE)
    chat.say("取消")
    assert rows(team, "SELECT count(*) FROM follow_up WHERE place <> ''")[0][0] == 0
    assert _audited(team) == 0


def test_a_photo_during_a_phone_call_form_is_not_a_check_in(team):
    chat = Chat(team, "wecom")
    chat.say("电话 腾讯")  # the form asks what was discussed
    hint = chat.photo("MEDIA-P")
    assert hint.title == "收到图片" and "先发「拜访 客户 …」" in hint.text
    ask = chat.say("约了演示")  # the form is still there
    assert "下次什么时候跟进" in ask.text
