"""The decrypted XML → dict step (ElementTree, in xmltodict's shape) and what the webhook does when an
authenticated callback holds something that is not WeCom XML."""

from __future__ import annotations

import pytest

from bot.wecom.parse import parse_xml, to_event
from conftest import assert_nothing_happened, assert_one_refusal_logged

CARD_EVENT = (
    "<xml><ToUserName><![CDATA[ww1]]></ToUserName><FromUserName><![CDATA[lisi]]></FromUserName>"
    "<CreateTime>1700000000</CreateTime><MsgType><![CDATA[event]]></MsgType>"
    "<Event><![CDATA[template_card_event]]></Event><EventKey><![CDATA[crm.pick|3]]></EventKey>"
    "<TaskId><![CDATA[t1]]></TaskId><CardType><![CDATA[vote_interaction]]></CardType>"
    "<ResponseCode><![CDATA[rc1]]></ResponseCode><AgentID>1</AgentID>"
    "<SelectedItems>"
    "<SelectedItem><QuestionKey><![CDATA[q1]]></QuestionKey>"
    "<OptionIds><OptionId><![CDATA[o1]]></OptionId><OptionId><![CDATA[o2]]></OptionId></OptionIds></SelectedItem>"
    "<SelectedItem><QuestionKey><![CDATA[q2]]></QuestionKey>"
    "<OptionIds><OptionId><![CDATA[o3]]></OptionId></OptionIds></SelectedItem>"
    "</SelectedItems></xml>"
)


def test_card_event_fields_and_nested_selected_items():
    msg = parse_xml(CARD_EVENT)
    assert msg["FromUserName"] == "lisi" and msg["CreateTime"] == "1700000000" and msg["AgentID"] == "1"
    assert msg["SelectedItems"] == {"SelectedItem": [
        {"QuestionKey": "q1", "OptionIds": {"OptionId": ["o1", "o2"]}},
        {"QuestionKey": "q2", "OptionIds": {"OptionId": "o3"}},
    ]}
    event = to_event(msg)
    assert (event.kind, event.action, event.value) == ("action", "crm.pick", "3")
    assert event.reply == {"task_id": "t1", "response_code": "rc1"}


def test_text_is_stripped_empty_is_none_and_escapes_are_decoded():
    msg = parse_xml("<xml><FromUserName>u</FromUserName><Content><![CDATA[  a &lt; b \n ]]></Content>"
                    "<Label></Label><Note>x &amp; y</Note></xml>")
    assert msg == {"FromUserName": "u", "Content": "a &lt; b", "Label": None, "Note": "x & y"}


@pytest.mark.parametrize("xml", ["", "garbage", "<xml>", "<xml>text</xml>", "<xml/>", "<other><A>1</A></other>",
                                 "<xml><A>1</A></xml><xml/>", "<xml><A>&undefined;</A></xml>",
                                 '<!DOCTYPE xml [<!ENTITY a "aaaa">]><xml><A>&a;&a;</A></xml>'])
def test_not_wecom_xml_is_a_value_error(xml):
    with pytest.raises(ValueError):
        parse_xml(xml)


@pytest.mark.parametrize("inner", ["not xml at all", "<xml><Content>unclosed</xml>",
                                   '<!DOCTYPE xml [<!ENTITY a "aaaa">]><xml><FromUserName>&a;</FromUserName></xml>'])
def test_signed_callback_that_is_not_wecom_xml_is_400_and_changes_nothing(stack, caplog, inner):
    assert stack.post_wecom(inner).status_code == 400
    assert_one_refusal_logged(caplog, "banli.wecom", 400)
    assert_nothing_happened(stack)
