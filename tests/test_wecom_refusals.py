"""Bad input is refused with the right status, one log line, and no trace in the database or chat."""

from __future__ import annotations

import time

import pytest
import requests

from bot.wecom.standin import WeComPeer
from conftest import WECOM_AES_KEY, WECOM_AGENT, WECOM_TOKEN, assert_nothing_happened, assert_one_refusal_logged






def test_forged_signature_is_403(stack, caplog):
    query, body = stack.wecom_peer.callback(stack.wecom_peer.text("zhangsan", "帮助"))
    forged = query.replace("msg_signature=", "msg_signature=0")
    assert requests.post(f"{stack.url}/wecom/callback?{forged}", data=body, timeout=5).status_code == 403
    assert_one_refusal_logged(caplog, "banli.wecom", 403)
    assert_nothing_happened(stack)


def test_signature_from_someone_without_the_token_is_403(stack, caplog):
    stranger = WeComPeer(token="not-our-token", aes_key=WECOM_AES_KEY, corp_id=stack.runtime.settings.wecom.corp_id,
                         agent_id=WECOM_AGENT)
    query, body = stranger.callback(stranger.text("zhangsan", "帮助"))
    assert requests.post(f"{stack.url}/wecom/callback?{query}", data=body, timeout=5).status_code == 403
    assert_nothing_happened(stack)


def test_stale_timestamp_is_403_even_with_a_valid_signature(stack, caplog):
    old = int(time.time()) - 3600
    response = stack.post_wecom(stack.wecom_peer.text("zhangsan", "帮助"), timestamp=old)
    assert response.status_code == 403
    assert_one_refusal_logged(caplog, "banli.wecom", 403)
    assert_nothing_happened(stack)


def test_message_for_another_corp_is_403(stack, caplog):
    other = WeComPeer(token=WECOM_TOKEN, aes_key=WECOM_AES_KEY, corp_id="wwanothercorp", agent_id=WECOM_AGENT)
    query, body = other.callback(other.text("zhangsan", "帮助"))
    assert requests.post(f"{stack.url}/wecom/callback?{query}", data=body, timeout=5).status_code == 403
    assert_one_refusal_logged(caplog, "banli.wecom", 403)
    assert_nothing_happened(stack)


@pytest.mark.parametrize("body", [b"", b"garbage", b"<xml><Encrypt>not cdata</Encrypt></xml>", b"\x00\xff" * 50])
def test_garbage_body_is_400(stack, caplog, body):
    query, _ = stack.wecom_peer.callback(stack.wecom_peer.text("zhangsan", "帮助"))
    assert requests.post(f"{stack.url}/wecom/callback?{query}", data=body, timeout=5).status_code == 400
    assert_one_refusal_logged(caplog, "banli.wecom", 400)
    assert_nothing_happened(stack)


def test_truncated_body_is_refused(stack, caplog):
    query, body = stack.wecom_peer.callback(stack.wecom_peer.text("zhangsan", "帮助"))
    cut = body[: len(body) // 2]
    response = requests.post(f"{stack.url}/wecom/callback?{query}", data=cut, timeout=5)
    assert response.status_code in (400, 403)
    assert_nothing_happened(stack)


def test_valid_signature_over_undecryptable_ciphertext_is_400(stack, caplog):
    from bot.wecom.crypto import signature

    ts, nonce, encrypt = str(int(time.time())), "n1", "QUJDRA=="  # base64 of "ABCD": not a WeCom block
    sig = signature(WECOM_TOKEN, ts, nonce, encrypt)
    body = f"<xml><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>".encode()
    response = requests.post(f"{stack.url}/wecom/callback?msg_signature={sig}&timestamp={ts}&nonce={nonce}",
                             data=body, timeout=5)
    assert response.status_code == 400
    assert_nothing_happened(stack)


def test_one_megabyte_body_is_413(stack, caplog):
    query, _ = stack.wecom_peer.callback(stack.wecom_peer.text("zhangsan", "帮助"))
    response = requests.post(f"{stack.url}/wecom/callback?{query}", data=b"<xml>" + b"A" * 1_048_576, timeout=10)
    assert response.status_code == 413
    assert any("413" in r.getMessage() for r in caplog.records if r.name.startswith("banli"))
    assert_nothing_happened(stack)


def test_missing_parameters_are_400(stack, caplog):
    assert requests.post(f"{stack.url}/wecom/callback", data=b"<xml/>", timeout=5).status_code == 400
    assert requests.get(f"{stack.url}/wecom/callback?timestamp=1", timeout=5).status_code == 400
    assert_nothing_happened(stack)


@pytest.mark.parametrize("kind", ["video", "link", "file"])
def test_unknown_message_type_is_200_and_ignored(stack, caplog, kind):
    response = stack.post_wecom(stack.wecom_peer.unknown("zhangsan", kind))
    assert response.status_code == 200
    assert any("ignored" in r.getMessage() for r in caplog.records if r.name == "banli.wecom")
    assert_nothing_happened(stack)


def test_unhandled_event_type_is_200_and_ignored(stack):
    assert stack.post_wecom(stack.wecom_peer.event("zhangsan", "batch_job_result")).status_code == 200
    assert_nothing_happened(stack)
