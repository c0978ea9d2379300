"""The WeCom API client against the stand-in: card updates, shared tokens."""

from __future__ import annotations

import threading

import pytest

from bot.platform import Outgoing, PlatformError
from bot.wecom.client import WeComClient
from cards import Button, Card

CARD = Card(title="报销审批", body="张三 · 86.5 元", buttons=(Button("同意", "approve", "R-1", style="primary"),
                                                       Button("拒绝", "reject", "R-1", style="danger")))


def test_a_sent_card_is_updated_for_everyone_with_its_response_code(stack):
    client = stack.runtime.clients["wecom"]
    sent = client.send(Outgoing(key="test:card:1", recipient="wangjl", card=CARD))
    assert sent["task_id"].startswith("bl_") and sent["response_code"]

    done = Card(title="报销审批", body="已同意 · 王经理 10:02")
    client.update_card(sent, Card(title=done.title, body=done.body,
                                  buttons=(Button("已同意", "noop", style="default"),)))
    update = stack.wecom.updates[0]
    assert update["atall"] == 1 and update["response_code"] == sent["response_code"]
    assert update["template_card"]["task_id"] == sent["task_id"]
    assert update["template_card"]["sub_title_text"] == "已同意 · 王经理 10:02"

    with pytest.raises(PlatformError) as used_twice:  # response codes are single-use
        client.update_card(sent, done)
    assert used_twice.value.retryable is False


def test_concurrent_first_calls_fetch_one_token(stack):
    clients = [WeComClient(stack.runtime.settings.wecom, stack.runtime.redis) for _ in range(8)]
    barrier = threading.Barrier(len(clients))
    tokens = []

    def get(client):
        barrier.wait()
        tokens.append(client.tokens.get())

    threads = [threading.Thread(target=get, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(tokens)) == 1
    assert stack.wecom.token_fetches == 1


def test_a_card_without_buttons_goes_as_plain_text_within_2048_bytes(stack):
    client = stack.runtime.clients["wecom"]
    client.send(Outgoing(key="test:text:1", recipient="zhangsan", card=Card(title="通知", body="长" * 1500)))
    message = stack.wecom.messages_to("zhangsan")[0]
    assert message["msgtype"] == "text"
    assert len(message["text"]["content"].encode()) <= 2048
