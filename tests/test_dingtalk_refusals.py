"""Bad DingTalk callbacks are refused with the right status, one log line, and no trace in the
database or chat (docs/dingtalk.md §1.2 robot signature, §4.6 card callback signature)."""

from __future__ import annotations

import json
import time

import pytest
import requests

from bot.dingtalk.standin import DingTalkPeer
from conftest import assert_nothing_happened, assert_one_refusal_logged

USER = "0147001"







def _post(stack, headers, body, path="/dingtalk/callback"):
    return requests.post(f"{stack.url}{path}", data=body, headers=headers, timeout=10)


@pytest.mark.parametrize("drop", [("timestamp",), ("sign",), ("timestamp", "sign")])
def test_missing_signature_headers_are_401(stack, caplog, drop):
    headers, body = stack.dingtalk_peer.text(USER, "帮助")
    for name in drop:
        del headers[name]
    assert _post(stack, headers, body).status_code == 401
    assert_one_refusal_logged(caplog, "banli.dingtalk", 401)
    assert_nothing_happened(stack)


def test_forged_sign_is_403(stack, caplog):
    headers, body = stack.dingtalk_peer.text(USER, "帮助")
    headers["sign"] = "A" + headers["sign"][1:] if headers["sign"][0] != "A" else "B" + headers["sign"][1:]
    assert _post(stack, headers, body).status_code == 403
    assert_one_refusal_logged(caplog, "banli.dingtalk", 403)
    assert_nothing_happened(stack)


def test_sign_made_with_another_secret_is_403(stack, caplog):
    stranger = DingTalkPeer(app_secret="not-our-secret", robot_code=stack.runtime.settings.dingtalk.robot_code,
                            standin=stack.dingtalk)
    assert stack.post_dingtalk(stranger.text(USER, "帮助")).status_code == 403
    assert_one_refusal_logged(caplog, "banli.dingtalk", 403)
    assert_nothing_happened(stack)


@pytest.mark.parametrize("age_ms", [2 * 3600_000, -2 * 3600_000])
def test_timestamp_two_hours_off_is_403_even_with_a_valid_sign(stack, caplog, age_ms):
    stale = int(time.time() * 1000) - age_ms
    assert stack.post_dingtalk(stack.dingtalk_peer.text(USER, "帮助", timestamp_ms=stale)).status_code == 403
    assert_one_refusal_logged(caplog, "banli.dingtalk", 403)
    assert_nothing_happened(stack)


@pytest.mark.parametrize("garbage", [b"", b"garbage", b"[1, 2, 3]", b'"text"', b"\x00\xff" * 50])
def test_body_that_is_not_a_json_object_is_400(stack, caplog, garbage):
    headers, _ = stack.dingtalk_peer.text(USER, "帮助")
    assert _post(stack, headers, garbage).status_code == 400
    assert_one_refusal_logged(caplog, "banli.dingtalk", 400)
    assert_nothing_happened(stack)


def test_truncated_json_is_400(stack, caplog):
    headers, body = stack.dingtalk_peer.text(USER, "帮助")
    assert _post(stack, headers, body[: len(body) // 2]).status_code == 400
    assert_one_refusal_logged(caplog, "banli.dingtalk", 400)
    assert_nothing_happened(stack)


def test_one_megabyte_body_is_413(stack, caplog):
    headers, _ = stack.dingtalk_peer.text(USER, "帮助")
    body = json.dumps({"msgtype": "text", "text": {"content": "A" * 1_048_576}}).encode()
    assert _post(stack, headers, body).status_code == 413
    assert any("413" in r.getMessage() for r in caplog.records if r.name.startswith("banli") and r.levelname == "WARNING")
    assert_nothing_happened(stack)


def test_message_for_another_robot_is_403(stack, caplog):
    other = DingTalkPeer(app_secret=stack.runtime.settings.dingtalk.app_secret, robot_code="dingsomeoneelse",
                         standin=stack.dingtalk)
    assert stack.post_dingtalk(other.text(USER, "帮助")).status_code == 403
    assert_one_refusal_logged(caplog, "banli.dingtalk", 403)
    assert_nothing_happened(stack)


def test_card_callback_with_a_bad_signature_is_403(stack, caplog):
    headers, body = stack.dingtalk_peer.card_click(USER, "bl_x", "menu.expense")
    headers["x-ddpaas-signature"] = headers["x-ddpaas-signature"][::-1]
    assert _post(stack, headers, body, "/dingtalk/card").status_code == 403
    assert_one_refusal_logged(caplog, "banli.dingtalk", 403)
    assert_nothing_happened(stack)


def test_card_callback_signed_as_a_robot_message_is_refused(stack, caplog):
    """The two schemes sign different strings: a robot `sign` is no card signature."""
    robot_headers, _ = stack.dingtalk_peer.text(USER, "帮助")
    _, body = stack.dingtalk_peer.card_click(USER, "bl_x", "menu.expense")
    headers = {"x-ddpaas-signature-timestamp": robot_headers["timestamp"],
               "x-ddpaas-signature": robot_headers["sign"]}
    assert _post(stack, headers, body, "/dingtalk/card").status_code == 403
    assert_nothing_happened(stack)


def test_card_callback_problems(stack, caplog):
    peer = stack.dingtalk_peer
    headers, body = peer.card_click(USER, "bl_x", "menu.expense")
    assert _post(stack, {}, body, "/dingtalk/card").status_code == 401
    stale, _ = peer.card_click(USER, "bl_x", "menu.expense", timestamp_ms=int(time.time() * 1000) - 7200_000)
    assert _post(stack, stale, body, "/dingtalk/card").status_code == 403
    assert _post(stack, headers, b"{not json", "/dingtalk/card").status_code == 400
    assert [r.getMessage().split(":")[0] for r in caplog.records if r.name == "banli.dingtalk"] == [
        "dingtalk callback refused 401", "dingtalk callback refused 403", "dingtalk callback refused 400"]
    assert_nothing_happened(stack)


def test_signed_card_callback_without_an_action_is_200_and_ignored(stack, caplog):
    headers, body = stack.dingtalk_peer.card_click(USER, "bl_x", "")
    response = _post(stack, headers, body, "/dingtalk/card")
    assert response.status_code == 200 and "cardUpdateOptions" in response.json()
    assert_nothing_happened(stack)


def test_signatures_match_the_reference_values():
    """docs/dingtalk.md §1.2 and §4.6 (computed there, DingTalk publishes no expected output)."""
    from bot.dingtalk import verify

    assert verify.robot_sign("1577262236757", "this is a secret") == "DJrE6qdyVGCQz9z5r2MDuNcNAhwYnuAkyj13cx169CA="
    assert verify.card_sign("1700000000000", "mySecret") == "t3jqwt0WBVsvNpgD+ncljxce56XsNOeEYafngX/BHjc="
    peer = DingTalkPeer(app_secret="this is a secret", robot_code="x")
    assert peer.robot_headers(1577262236757)["sign"] == verify.robot_sign("1577262236757", "this is a secret")
