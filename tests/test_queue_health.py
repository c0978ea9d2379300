"""Queue health on /admin/queue: which processes are alive (their heartbeats in SQL), the warning when
rows are due and no worker runs, and this month's platform API calls against DingTalk's quota — with
the 80 % warning card that every admin gets once a month."""

from __future__ import annotations

import threading
from datetime import timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import delete, select

from banli import worker
from banli.cron import purge_old_records
from banli.heartbeat import Pulse
from bot.platform import Outgoing
from bot.runtime import Runtime
from cards import Card
from chat import Chat, rows, sales_team
from conftest import wait_for
from storage import outbox
from storage.db import session_scope
from storage.models import Employee, Identity, ProcessBeat
from test_console import session_for
from workflows import roles

NO_WORKER = "没有在运行的 worker：消息不会发出"


def team_with_admins(stack_factory, **settings):
    """The sales team, with 赵总 (WeCom) and 王经理 as admins; no worker runs unless a test starts one."""
    stack = sales_team(stack_factory, start_workers=False, **settings)
    with session_scope(stack.runtime.engine) as session:
        boss = session.execute(select(Employee).where(Employee.name == "王经理")).scalar_one()
        admin = Employee(name="赵总")
        session.add(admin)
        session.flush()
        session.add_all([Identity(platform="wecom", user_id="zhaozong", employee_id=admin.id),
                         Identity(platform="wecom", user_id="wangjl", employee_id=boss.id)])
        roles.grant(session, admin, "admin", source="env")
        roles.grant(session, boss, "admin", source="env")
    return stack


def queue_page(stack, name: str = "赵总") -> str:
    answer = session_for(stack, name).get("/admin/queue")
    assert answer.status_code == 200
    return answer.get_data(as_text=True)


def calls(stack, platform: str) -> dict[str, int]:
    return dict(rows(stack, f"SELECT month, calls FROM api_call_count WHERE platform = '{platform}'"))


def warnings(stack, platform: str = "dingtalk") -> list[tuple[str, str]]:
    return rows(stack, f"SELECT key, recipient FROM outbox WHERE key LIKE 'quota:warn:{platform}:%' ORDER BY key")


# -- processes ---------------------------------------------------------------------------------------


def test_the_page_lists_the_live_processes_and_shows_a_stopped_one_with_when_it_was_last_seen(stack_factory):
    stack = team_with_admins(stack_factory)
    stack.start_workers()  # embedded: the web process, one worker thread and the dispatcher
    wait_for(lambda: stack.count("process_beat") == 3)
    page = queue_page(stack)
    assert page.count(">运行中<") == 3 and ">已停止<" not in page
    for name in ("网页（回调和后台）", "worker（发送和处理）", "调度（dispatcher）"):
        assert name in page

    pulse = stack.embedded.pulse
    stack.stop_workers()  # a clean stop: the last beat is the time it stopped
    wait_for(lambda: not pulse._thread.is_alive())
    stack.clock.skip(minutes=2)
    page = queue_page(stack)
    assert page.count(">已停止<") == 3 and ">运行中<" not in page
    with session_scope(stack.runtime.engine) as session:
        seen = session.execute(select(ProcessBeat.last_seen)).scalars().first()
    shown = seen.astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%d %H:%M")
    assert shown.startswith("2026-11-21 10:0")  # 02:0x UTC, shown in the company's time
    assert page.count(f'<td class="late">{shown}</td>') == 3


def test_rows_due_with_no_live_worker_raise_the_warning_until_a_worker_beats(stack_factory):
    stack = team_with_admins(stack_factory)
    with session_scope(stack.runtime.engine) as session:
        outbox.add(session, key="test:due", kind="message", payload={}, platform="wecom", recipient="zhangsan")
    assert NO_WORKER in queue_page(stack)

    stop = threading.Event()
    pulse = Pulse(stack.runtime, stop, interval=3600)  # beats only when told to
    worker.start_thread(stack.runtime, stop, name="banli-worker-0", pulse=pulse)
    worker.start_thread(stack.runtime, stop, name="banli-worker-1", pulse=pulse)
    wait_for(lambda: stack.count("process_beat", "WHERE kind = 'worker'") == 2)  # one row per worker thread
    page = queue_page(stack)
    assert NO_WORKER not in page and "banli-worker-0" in page and "banli-worker-1" in page
    stack.clock.skip(seconds=50)  # three beats missed: stopped, and the warning is back
    page = queue_page(stack)
    assert NO_WORKER in page and page.count(">已停止<") == 2
    stop.set()
    wait_for(lambda: not pulse._thread.is_alive())


def test_a_worker_threads_beat_counts_the_jobs_it_ran(stack_factory):
    stack = team_with_admins(stack_factory)
    stack.start_workers()
    Chat(stack, "wecom", "zhangsan").say("菜单")  # a callback job, then its reply
    stack.embedded.pulse.once()
    jobs = rows(stack, "SELECT jobs FROM process_beat WHERE kind = 'worker'")[0][0]
    handed = rows(stack, "SELECT jobs FROM process_beat WHERE kind = 'dispatcher'")[0][0]
    assert jobs >= 1 and handed >= 1
    assert f'<td class="num">{jobs}</td>' in queue_page(stack)


def test_processes_gone_for_a_day_are_purged_at_night(stack_factory):
    stack = team_with_admins(stack_factory)
    stopped = threading.Event()
    stopped.set()  # beats once as it starts and once as it stops, at once
    pulse = Pulse(stack.runtime, stopped)
    pulse.add("dispatcher")
    wait_for(lambda: not pulse._thread.is_alive())
    stack.clock.skip(hours=23)
    with session_scope(stack.runtime.engine) as session:
        assert purge_old_records(stack.runtime, session)["processes"] == 0
    assert ">已停止<" in queue_page(stack)
    stack.clock.skip(hours=2)
    with session_scope(stack.runtime.engine) as session:
        assert purge_old_records(stack.runtime, session)["processes"] == 1
    assert stack.count("process_beat") == 0
    live = Pulse(stack.runtime, threading.Event(), interval=3600)  # a process suspended for a day wakes up
    beat = live.add("web")
    wait_for(lambda: stack.count("process_beat") == 1)  # its first beat
    with session_scope(stack.runtime.engine) as session:
        session.execute(delete(ProcessBeat))
    live.once()  # its row was purged meanwhile: written anew, and it is alive again
    assert stack.count("process_beat") == 1 and beat.row_id is not None
    assert ">运行中<" in queue_page(stack)


def test_only_admins_open_the_queue_page(stack_factory):
    stack = team_with_admins(stack_factory)
    with session_scope(stack.runtime.engine) as session:
        roles.revoke(session, session.execute(select(Employee).where(Employee.name == "王经理")).scalar_one(),
                     "admin")
    manager = session_for(stack, "王经理")  # still 张三's manager: the console, but not this page
    assert manager.get("/admin/queue").status_code == 403
    assert session_for(stack, "赵总").get("/admin/queue").status_code == 200


# -- platform API calls ------------------------------------------------------------------------------


def test_each_call_to_a_platform_api_is_counted_in_this_month(stack_factory):
    stack = team_with_admins(stack_factory)
    clients = stack.runtime.clients
    # DingTalk leaves the token and the contacts APIs out of its quota: only the send counts.
    clients["dingtalk"].directory_entry("0147001")
    clients["dingtalk"].send(Outgoing(key="test:1", recipient="0147001", card=Card(title="你好")))
    clients["wecom"].directory_entry("zhangsan")  # the token, the user, their department
    clients["wecom"].directory_entry("wangjl")  # the token is cached: two calls more
    stack.runtime.api_meter.flush()
    assert stack.dingtalk.token_fetches == 1 and len(stack.dingtalk.sent) == 1
    assert calls(stack, "dingtalk") == {"2026-11": 1} and calls(stack, "wecom") == {"2026-11": 5}
    page = queue_page(stack)
    assert "平台接口调用量（2026-11）" in page
    assert "1 / 5,000 次（0%）" in page and "5 次" in page and "没有每月额度" in page


def test_counts_held_in_memory_are_written_when_the_process_closes(stack_factory):
    stack = team_with_admins(stack_factory)
    other = Runtime(stack.runtime.settings, clock=stack.clock)  # another process, same database
    for _ in range(7):
        other.api_meter.count("dingtalk")
    other.close()
    assert calls(stack, "dingtalk") == {"2026-11": 7}


def test_a_reply_sent_in_chat_is_counted_by_the_worker(stack_factory):
    stack = team_with_admins(stack_factory)
    stack.start_workers()
    Chat(stack, "wecom", "zhangsan").say("菜单")
    wait_for(lambda: calls(stack, "wecom").get("2026-11", 0) >= 2, timeout=10)  # the token and message/send


def test_at_80_percent_every_admin_is_warned_once_even_when_processes_cross_it_at_once(stack_factory):
    stack = team_with_admins(stack_factory, dingtalk_monthly_quota=20)
    processes = [Runtime(stack.runtime.settings, clock=stack.clock) for _ in range(4)]
    start = threading.Barrier(len(processes))

    def burst(runtime: Runtime) -> None:
        for _ in range(5):
            runtime.api_meter.count("dingtalk")
        start.wait()
        runtime.api_meter.flush()

    threads = [threading.Thread(target=burst, args=(p,)) for p in processes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert calls(stack, "dingtalk") == {"2026-11": 20}
    admins = [("zhaozong", "赵总"), ("wangjl", "王经理")]
    assert sorted(r for _, r in warnings(stack)) == sorted(user for user, _ in admins)
    for runtime in processes:  # later calls and re-checks in the same month: nothing more
        runtime.api_meter.count("dingtalk")
        runtime.close()
    assert len(warnings(stack)) == 2
    page = queue_page(stack)
    assert "24 / 20 次（120%）" in page and "已提醒管理员" in page


def test_the_warning_card_says_how_much_is_used_and_what_to_do(stack_factory):
    stack = team_with_admins(stack_factory, dingtalk_monthly_quota=10)
    stack.start_workers()
    for _ in range(8):
        stack.runtime.api_meter.count("dingtalk")
    stack.runtime.api_meter.flush()
    card = wait_for(lambda: [m for m in stack.wecom.sent if m.get("touser") == "zhaozong"])[0]
    text = str(card)
    assert "钉钉接口调用量已用 80%" in text
    for words in ("2026年11月", "8 次", "10 次", "90020", "下月 1 日", "专业版", "BANLI_DINGTALK_MONTHLY_QUOTA"):
        assert words in text, words


def test_a_new_month_counts_from_zero_and_warns_again(stack_factory):
    stack = team_with_admins(stack_factory, dingtalk_monthly_quota=10)
    meter = stack.runtime.api_meter
    for _ in range(9):
        meter.count("dingtalk")
    meter.flush()
    assert len(warnings(stack)) == 2
    stack.clock.skip(days=9, hours=14)  # 1 December, 00:00 in Shanghai (16:00 UTC the day before)
    for _ in range(7):
        meter.count("dingtalk")
    meter.flush()
    assert calls(stack, "dingtalk") == {"2026-11": 9, "2026-12": 7}
    assert len(warnings(stack)) == 2  # 70 %: not yet
    assert "7 / 10 次（70%）" in queue_page(stack)
    meter.count("dingtalk")
    meter.flush()
    assert [key.split(":")[3] for key, _ in warnings(stack)] == ["2026-11"] * 2 + ["2026-12"] * 2


def test_counts_survive_a_write_that_fails(tmp_path, caplog):
    from banli.settings import Settings
    from storage.migrate import upgrade

    runtime = Runtime(Settings(database_url=f"sqlite:///{tmp_path / 'new.db'}"))  # no tables yet
    for _ in range(3):
        runtime.api_meter.count("dingtalk")
    runtime.api_meter.flush()  # fails: the counts are kept, and said once
    runtime.api_meter.flush()
    assert len([r for r in caplog.records if "API call counts not written" in r.getMessage()]) == 1
    upgrade(runtime.engine)
    runtime.api_meter.count("dingtalk")
    runtime.close()
    with runtime.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT calls FROM api_call_count").scalar_one() == 4
    runtime.close()
