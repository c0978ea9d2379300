"""WeCom's published test vectors (docs/wecom.md §2) against Banli's verification and parsing."""

from __future__ import annotations

from urllib.parse import quote

import pytest
import requests

from bot.wecom.crypto import CallbackCrypto, CorpIdMismatch, signature
from bot.wecom.parse import extract_encrypt, parse_xml, to_event

# Vector A: WeCom doc 加解密方案说明 and the official C++/C#/Java/PHP samples.
CORP_A = "wx5823bf96d3bd56c7"
TOKEN_A = "QDG6eK"
KEY_A = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
ECHO_A = "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ=="
ENCRYPT_A = ("RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3QczcdCUpj911L3vg3W/"
             "sYYvuJTs3TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLjvd4Xgpue06DOdnLxAUHzM6+kDZ+"
             "HMZfJYuR+LtwGc2hgf5gsijff0ekUNXZiqATP7PF5mZxZ3Izoun1s4zG4LUMnvw2r+KqCKIw+3IQH03v+BCA9nMELNqbSf6tiWSrX"
             "JB3LAVGUcallcrw8V2t9EL4EhzJWrQUax5wLVMNS0+rUPA3k22Ncx4XXZS9o0MBH27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7m3"
             "fVKn28H3KDYA5Pl/T8Z1ptDAVe0lXdQ2YoyyH2uyPIGHBZZIs2pDBS8R07+qN+E7Q==")
# Vector B: the official Python sample (sbzhu/weworkapi_python callback/Sample.py).
CORP_B = "ww1436e0e65a779aee"
TOKEN_B = "hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo"
KEY_B = "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt"


def test_vector_a_url_verification_over_http(stack_factory):
    stack = stack_factory(corp_id=CORP_A)  # token and AES key of the stack are vector A's
    query = ("msg_signature=5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3&timestamp=1409659589&nonce=263014780"
             f"&echostr={quote(ECHO_A, safe='')}")
    response = requests.get(f"{stack.url}/wecom/callback?{query}", timeout=5)
    assert response.status_code == 200
    assert response.text == "1616140317555161061"  # bare plaintext: no quotes, no newline


def test_vector_a_url_verification_refuses_a_wrong_signature(stack_factory):
    stack = stack_factory(corp_id=CORP_A)
    query = ("msg_signature=5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd4&timestamp=1409659589&nonce=263014780"
             f"&echostr={quote(ECHO_A, safe='')}")
    assert requests.get(f"{stack.url}/wecom/callback?{query}", timeout=5).status_code == 403


def test_vector_a_message_signature_decryption_and_parse():
    crypto = CallbackCrypto(TOKEN_A, KEY_A, CORP_A)
    body = (f"<xml><ToUserName><![CDATA[{CORP_A}]]></ToUserName><Encrypt><![CDATA[{ENCRYPT_A}]]></Encrypt>"
            "<AgentID><![CDATA[218]]></AgentID></xml>").encode()
    encrypt = extract_encrypt(body)
    assert signature(TOKEN_A, "1409659813", "1372623149", encrypt) == "477715d11cdb4164915debcba66cb864d751f3e6"
    assert crypto.verify("477715d11cdb4164915debcba66cb864d751f3e6", "1409659813", "1372623149", encrypt)
    event = to_event(parse_xml(crypto.decrypt(encrypt)))
    assert (event.kind, event.sender, event.text, event.event_id) == ("text", "mycreate", "hello", "4561255354251345929")


def test_vector_a_under_another_corp_id_is_refused():
    with pytest.raises(CorpIdMismatch):
        CallbackCrypto(TOKEN_A, KEY_A, "wwsomeoneelse").decrypt(ENCRYPT_A)


def test_vector_b_official_python_sample():
    crypto = CallbackCrypto(TOKEN_B, KEY_B, CORP_B)
    echo = "fsi1xnbH4yQh0+PJxcOdhhK6TDXkjMyhEPA7xB2TGz6b+g7xyAbEkRxN/3cNXW9qdqjnoVzEtpbhnFyq6SVHyA=="
    assert crypto.verify("012bc692d0a58dd4b10f8dfe5c4ac00ae211ebeb", "1476416373", "47744683", echo)
    assert crypto.decrypt(echo) == "1288432023552776189"
    encrypt = ("Kl7kjoSf6DMD1zh7rtrHjFaDapSCkaOnwu3bqLc5tAybhhMl9pFeK8NslNPVdMwmBQTNoW4mY7AIjeLvEl3NyeTkAgGzBhzTtRLNsh"
               "w2AEew+kkYcD+Fq72Kt00fT0WnN87hGrW8SqGc+NcT3mu87Ha3dz1pSDi6GaUA6A0sqfde0VJPQbZ9U+3JWcoD4Z5jaU0y9GSh01"
               "0wsHF8KZD24YhmZH4ch4Ka7ilEbjbfvhKkNL65HHL0J6EYJIZUC2pFrdkJ7MhmEbU2qARR4iQHE7wy24qy0cRX3Mfp6iELcDNfSs"
               "PGjUQVDGxQDCWjayJOpcwocugux082f49HKYg84EpHSGXAyh+/oxwaWbvL6aSDPOYuPDGOCI8jmnKiypE+")
    assert crypto.verify("0c3914025cb4b4d68103f6bfc8db550f79dcf48e", "1476422779", "1597212914", encrypt)
    event = to_event(parse_xml(crypto.decrypt(encrypt)))
    assert (event.sender, event.text, event.event_id) == ("ChenJiaShun", "你好", "1456453720")


def test_template_card_event_is_parsed_although_wechatpy_does_not():
    xml = ("<xml><ToUserName><![CDATA[ww1]]></ToUserName><FromUserName><![CDATA[lisi]]></FromUserName>"
           "<CreateTime>1700000000</CreateTime><MsgType><![CDATA[event]]></MsgType>"
           "<Event><![CDATA[template_card_event]]></Event><EventKey><![CDATA[approve|R-42]]></EventKey>"
           "<TaskId><![CDATA[bl_abc]]></TaskId><CardType><![CDATA[button_interaction]]></CardType>"
           "<ResponseCode><![CDATA[rc1]]></ResponseCode><AgentID>1</AgentID></xml>")
    event = to_event(parse_xml(xml))
    assert (event.kind, event.action, event.value) == ("action", "approve", "R-42")
    assert event.reply == {"task_id": "bl_abc", "response_code": "rc1"}
    assert event.event_id == "lisi|1700000000|template_card_event|approve|R-42|bl_abc"
