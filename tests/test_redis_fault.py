"""Redis stopped while a reply is pending, then started again: the reply arrives exactly once.

Runs against a private redis-server (not the shared one), with the worker and dispatcher threads
talking to it like separate processes would.
"""

from __future__ import annotations

import pytest

from conftest import settle, wait_for
from servers import RedisServer


@pytest.fixture
def private_redis(tmp_path):
    server = RedisServer(tmp_path).start()
    yield server
    server.stop()


def test_reply_pending_across_a_redis_outage_arrives_once(stack_factory, private_redis):
    stack = stack_factory(redis_url=private_redis.url)
    stack.post_wecom(stack.wecom_peer.text("zhangsan", "帮助"))
    wait_for(lambda: len(stack.wecom.cards_to("zhangsan")) == 1)

    private_redis.stop()
    # The webhook does not need Redis to accept work: the callback waits in the SQL outbox.
    assert stack.post_wecom(stack.wecom_peer.text("zhangsan", "菜单")).status_code == 200
    settle(1.5)
    assert len(stack.wecom.cards_to("zhangsan")) == 1
    assert stack.count("outbox", "WHERE kind = 'inbound' AND status = 'pending'") == 1

    private_redis.start()  # a fresh, empty Redis: whatever was queued is gone
    wait_for(lambda: len(stack.wecom.cards_to("zhangsan")) == 2, timeout=30)
    settle(4)  # longer than a lease: a second delivery would show up now
    assert len(stack.wecom.cards_to("zhangsan")) == 2
    assert stack.count("outbox", "WHERE kind IN ('inbound', 'message') AND status = 'sent'") == 4


def test_a_job_still_queued_when_its_lease_ends_is_not_queued_again(stack_factory, private_redis):
    """The lease ran out while the row's job still waits in Redis: the row keeps that one job (and
    its token), so a slow queue does not fill with copies of every pending row."""
    stack = stack_factory(redis_url=private_redis.url, start_workers=False)
    from banli import dispatcher

    stack.post_wecom(stack.wecom_peer.text("zhangsan", "帮助"))
    assert dispatcher.tick(stack.runtime) >= 1  # enqueued (with the cron slots), nobody working
    queued = stack.runtime.queue.job_ids
    settle(3.5)  # lease (3 s) runs out
    dispatcher.tick(stack.runtime)
    assert stack.runtime.queue.job_ids == queued  # every job still waits: no second one for any row
    stack.start_workers()
    wait_for(lambda: stack.wecom.cards_to("zhangsan"))
    settle(2)
    assert len(stack.wecom.cards_to("zhangsan")) == 1


def test_a_job_redis_lost_is_queued_again_when_its_lease_ends(stack_factory, private_redis):
    stack = stack_factory(redis_url=private_redis.url, start_workers=False)
    from banli import dispatcher

    stack.post_wecom(stack.wecom_peer.text("zhangsan", "帮助"))
    leased = dispatcher.tick(stack.runtime)
    assert leased >= 1
    stack.runtime.redis.flushall()  # a Redis restarted without its data
    assert dispatcher.tick(stack.runtime) == 0  # the leases still run
    settle(3.5)
    assert dispatcher.tick(stack.runtime) == leased  # the jobs are gone: fresh leases, new jobs
    stack.start_workers()
    wait_for(lambda: stack.wecom.cards_to("zhangsan"))
    settle(2)
    assert len(stack.wecom.cards_to("zhangsan")) == 1
