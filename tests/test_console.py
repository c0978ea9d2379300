"""The web console (后台): the one-time link asked for in chat, sessions, CSRF, who sees what, the
audit log page and its CSV, and the queue page — through the chat routes and the real /admin routes."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.app import create_app
from chat import SATURDAY_10AM, Chat, rows, sales_team
from storage import outbox
from storage.db import session_scope
from storage.models import Employee, Identity, Outbox
from workflows import audit, console, roles

LINK = re.compile(r"(https?://[^\s)\]]+/admin/login\?token=[0-9a-f.]+)")


@pytest.fixture
def company(stack_factory):
    """The sales team of tests/chat.py, plus: 王经理 on both platforms (manages 张三 and 李四), 赵总
    the admin, and another team (周经理 and her rep 孙五) whose rows 王经理 must not see."""
    stack = sales_team(stack_factory)
    stack.runtime.settings = stack.runtime.settings.with_(public_url=stack.url)
    with session_scope(stack.runtime.engine) as session:
        boss = session.execute(select(Employee).where(Employee.name == "王经理")).scalar_one()
        admin = Employee(name="赵总", synced_at=SATURDAY_10AM)
        other_boss = Employee(name="周经理", synced_at=SATURDAY_10AM)
        session.add_all([admin, other_boss])
        session.flush()
        other_rep = Employee(name="孙五", manager_id=other_boss.id, synced_at=SATURDAY_10AM)
        session.add(other_rep)
        session.add_all([Identity(platform="wecom", user_id="wangjl", employee_id=boss.id),
                         Identity(platform="dingtalk", user_id="0147002", employee_id=boss.id),
                         Identity(platform="wecom", user_id="zhaozong", employee_id=admin.id)])
        roles.grant(session, admin, "admin", source="env")
    return stack


def web(stack):
    """A browser on the console: Flask's test client on the same runtime (database, clock)."""
    return create_app(runtime=stack.runtime).test_client()


def employee(stack, name: str) -> Employee:
    with session_scope(stack.runtime.engine) as session:
        return session.execute(select(Employee).where(Employee.name == name)).scalar_one()


def link_for(stack, user: str, platform: str = "wecom") -> str:
    reply = Chat(stack, platform, user).say("后台")
    assert reply.title == "后台登录链接", reply.text
    return LINK.search(reply.text).group(1)


def signed_in(stack, user: str):
    client = web(stack)
    link = link_for(stack, user)
    answer = client.get(link.removeprefix(stack.url))
    assert answer.status_code == 302 and answer.headers["Location"].endswith("/admin/")
    return client


def session_for(stack, name: str):
    """A browser holding a console session for `name`, however they got it."""
    client = web(stack)
    with session_scope(stack.runtime.engine) as session:
        key = console.signing_key(session, "")
        person = session.execute(select(Employee).where(Employee.name == name)).scalar_one()
        cookie = console.open_session(session, person, key=key, now=stack.runtime.now())
    client.set_cookie("banli_console", cookie, path="/admin")
    return client


def csrf_of(page: bytes) -> str:
    return re.search(rb'name="csrf" value="([0-9a-f]+)"', page).group(1).decode()


def refusals(stack, attempted: str) -> list[str]:
    return [why for (why,) in rows(stack, "SELECT detail FROM audit_log WHERE action = 'refused' ORDER BY id")
            if f'"attempted": "{attempted}"' in why]


# -- the way in ------------------------------------------------------------------------------------


def test_a_manager_types_houtai_and_the_link_opens_the_console_once(company):
    link = link_for(company, "wangjl")
    assert link.startswith(company.url + "/admin/login?token=")
    first, second = web(company), web(company)

    opened = first.get(link.removeprefix(company.url))
    assert opened.status_code == 302
    cookie = opened.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/admin" in cookie
    assert "Secure" not in cookie  # http public URL: a Secure cookie would never come back
    home = first.get("/admin/")
    assert home.status_code == 200
    page = home.get_data(as_text=True)
    assert "王经理" in page and "审计日志" in page and "发送队列" not in page  # a manager: no queue page

    again = second.get(link.removeprefix(company.url))
    assert again.status_code == 403
    assert "已经用过" in again.get_data(as_text=True)
    assert second.get("/admin/").status_code == 401  # no session came of it
    assert any('"why": "used"' in d for d in refusals(company, "console.login"))


def test_a_used_link_is_refused_by_another_process_too(company):
    """Single use lives in SQL: a second web app (another process's) finds the link already used."""
    link = link_for(company, "wangjl").removeprefix(company.url)
    assert web(company).get(link).status_code == 302
    other_process = create_app(runtime=type(company.runtime)(company.runtime.settings, clock=company.runtime.clock))
    assert other_process.test_client().get(link).status_code == 403
    other_process.extensions["banli"].close()


def test_the_link_expires_after_ten_minutes(company):
    link = link_for(company, "zhaozong").removeprefix(company.url)
    company.clock.skip(minutes=11)
    answer = web(company).get(link)
    assert answer.status_code == 403 and "过期" in answer.get_data(as_text=True)
    assert any('"why": "expired"' in d for d in refusals(company, "console.login"))


def test_a_forged_token_is_refused(company):
    answer = web(company).get("/admin/login?token=" + "0" * 32 + "." + "f" * 32)
    assert answer.status_code == 403 and "不是办理发的" in answer.get_data(as_text=True)
    assert any('"why": "bad"' in d for d in refusals(company, "console.login"))


def test_a_rep_gets_the_refusal_in_chat_and_no_link(company):
    reply = Chat(company, "wecom", "zhangsan").say("后台")
    assert "只有管理员和经理可以打开后台" in reply.text
    assert not LINK.search(reply.text)
    assert company.count("console_login") == 0
    assert refusals(company, "console.link")


def test_on_dingtalk_the_link_is_a_tappable_markdown_link(company):
    reply = Chat(company, "dingtalk", "0147002").say("后台")
    assert re.search(r"\[打开后台\]\(http://[^)]+/admin/login\?token=[0-9a-f.]+\)", reply.text), reply.text
    assert web(company).get(LINK.search(reply.text).group(1).removeprefix(company.url)).status_code == 302


def test_a_session_ends_after_eight_idle_hours(company):
    client = signed_in(company, "zhaozong")
    company.clock.skip(hours=7)
    assert client.get("/admin/audit").status_code == 200  # used: the idle clock starts again
    company.clock.skip(hours=7)
    assert client.get("/admin/audit").status_code == 200
    company.clock.skip(hours=8, minutes=1)
    answer = client.get("/admin/audit")
    assert answer.status_code == 401 and "后台" in answer.get_data(as_text=True)


def test_logout_ends_the_session(company):
    client = signed_in(company, "zhaozong")
    token = csrf_of(client.get("/admin/").data)
    assert client.post("/admin/logout", data={"csrf": token}).status_code == 302
    assert client.get("/admin/").status_code == 401


def test_the_cookie_is_secure_when_banli_is_served_over_https(company):
    company.runtime.settings = company.runtime.settings.with_(public_url="https://banli.example.com")
    client = web(company)
    reply = Chat(company, "wecom", "zhaozong").say("后台")
    link = LINK.search(reply.text).group(1)
    assert link.startswith("https://banli.example.com/admin/login?token=")
    answer = client.get(link.removeprefix("https://banli.example.com"))
    assert "Secure" in answer.headers["Set-Cookie"]


def test_a_post_without_the_form_token_is_refused_and_audited(company):
    client = signed_in(company, "zhaozong")
    assert client.post("/admin/logout").status_code == 400
    assert client.post("/admin/logout", data={"csrf": "0" * 32}).status_code == 400
    assert client.get("/admin/").status_code == 200  # still signed in: nothing was done
    whys = refusals(company, "POST /admin/logout")
    assert any('"why": "csrf_missing"' in d for d in whys) and any('"why": "csrf_wrong"' in d for d in whys)


def test_a_reps_session_gets_403_and_a_manager_is_kept_out_of_the_queue(company):
    rep = session_for(company, "张三")
    assert rep.get("/admin/audit").status_code == 403
    assert rep.get("/admin/").status_code == 403
    manager = signed_in(company, "wangjl")
    assert manager.get("/admin/queue").status_code == 403
    whys = refusals(company, "GET /admin/audit") + refusals(company, "GET /admin/queue")
    assert any('"why": "not_admin_or_manager"' in d for d in whys) and any('"why": "not_admin"' in d for d in whys)


# -- the audit log page ------------------------------------------------------------------------------


def _audit_rows(stack) -> None:
    with session_scope(stack.runtime.engine) as session:
        people = {e.name: e for e in session.execute(select(Employee)).scalars()}
        at = SATURDAY_10AM - timedelta(days=3)
        audit.record(session, actor=people["张三"], action="customer.view_phone", subject="customer:1", at=at,
                     platform="wecom", detail={"reason": "<script>alert(1)</script> **粗体** [同意](dtmd://x)"})
        audit.record(session, actor=people["孙五"], action="customer.view_phone", subject="customer:9", at=at,
                     platform="wecom", detail={"reason": "别的团队"})
        audit.record(session, actor=people["李四"], action="deal.stage", subject="deal:3", platform="dingtalk",
                     at=at - timedelta(days=10), detail={"note": "=HYPERLINK(\"http://evil\")"})
        audit.record(session, actor=None, action="customer.pool", subject="customer:5", at=at)


def test_a_manager_sees_only_their_teams_rows(company):
    _audit_rows(company)
    page = signed_in(company, "wangjl").get("/admin/audit").get_data(as_text=True)
    assert "customer:1" in page and "deal:3" in page
    assert "customer:9" not in page and "孙五" not in page  # another team
    assert "customer:5" not in page  # Banli's own rows: admins only
    everything = signed_in(company, "zhaozong").get("/admin/audit").get_data(as_text=True)
    assert "customer:9" in everything and "customer:5" in everything and "办理（系统）" in everything


def test_user_text_in_the_audit_log_is_shown_as_text(company):
    _audit_rows(company)
    page = signed_in(company, "zhaozong").get("/admin/audit").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<a href=\"dtmd" not in page


def test_audit_details_read_as_chinese_words(company):
    client = signed_in(company, "zhaozong")
    client.post("/admin/logout")  # refused: no form token
    page = client.get("/admin/audit").get_data(as_text=True)
    assert "尝试的操作：POST /admin/logout · 原因：表单缺少校验码" in page
    assert "attempted" not in page and "csrf_missing" not in page


def test_filters_by_person_object_action_and_date(company):
    _audit_rows(company)
    client = signed_in(company, "zhaozong")
    li = employee(company, "李四")

    def shown(**query) -> set[str]:
        page = client.get("/admin/audit", query_string=query).get_data(as_text=True)
        return set(re.findall(r'<td class="nowrap">((?:customer|deal):\d+)</td>', page))

    assert shown() == {"customer:1", "customer:9", "deal:3", "customer:5"}
    assert shown(person=li.id) == {"deal:3"}
    assert shown(subject="customer:9") == {"customer:9"}
    assert shown(subject="deal") == {"deal:3"}
    assert shown(action="customer.view_phone") == {"customer:1", "customer:9"}
    day = (SATURDAY_10AM - timedelta(days=3)).date().isoformat()
    assert shown(since=day, until=day) == {"customer:1", "customer:9", "customer:5"}
    bad = client.get("/admin/audit", query_string={"since": "昨天"})
    assert bad.status_code == 200 and "不是日期" in bad.get_data(as_text=True)


def test_the_log_is_paginated_newest_first(company):
    with session_scope(company.runtime.engine) as session:
        rep = session.execute(select(Employee).where(Employee.name == "张三")).scalar_one()
        for n in range(60):
            audit.record(session, actor=rep, action="followup.create", subject=f"customer:{1000 + n}",
                         at=SATURDAY_10AM - timedelta(minutes=60 - n))
    client = signed_in(company, "wangjl")
    first = client.get("/admin/audit", query_string={"action": "followup.create"}).get_data(as_text=True)
    assert "共 60 条" in first and "第 1 / 2 页" in first
    assert first.index("customer:1059") < first.index("customer:1058")
    assert "customer:1009" not in first
    second = client.get("/admin/audit", query_string={"action": "followup.create", "page": 2}).get_data(as_text=True)
    assert "customer:1009" in second and "customer:1000" in second and "customer:1059" not in second
    assert "action=followup.create" in second  # the pager keeps the filter


def test_csv_export_of_the_filtered_rows_opens_in_excel(company):
    _audit_rows(company)
    client = signed_in(company, "wangjl")
    answer = client.get("/admin/audit.csv", query_string={"action": "deal.stage"})
    assert answer.status_code == 200 and answer.mimetype == "text/csv"
    assert "attachment" in answer.headers["Content-Disposition"]
    body = answer.data
    assert body.startswith(b"\xef\xbb\xbf")  # the BOM Excel needs to read UTF-8
    text = body.decode("utf-8-sig")
    lines = text.strip().splitlines()
    assert lines[0] == "时间,操作人,代谁操作,平台,动作,对象,详情"
    assert len(lines) == 2 and "李四" in lines[1] and "商机阶段" in lines[1]
    assert "'note：=HYPERLINK" not in text and "=HYPERLINK" in text  # not first in its cell: harmless
    team_only = client.get("/admin/audit.csv").data.decode("utf-8-sig")
    assert "孙五" not in team_only and "张三" in team_only


# -- the queue page ----------------------------------------------------------------------------------


def _failed_row(stack, key: str, error: str) -> int:
    with session_scope(stack.runtime.engine) as session:
        outbox.add(session, key=key, kind="message", payload={"card": {"title": "x"}}, platform="wecom",
                   recipient="zhangsan")
        session.flush()
        row = session.execute(select(Outbox).where(Outbox.key == key)).scalar_one()
        row.status, row.attempts, row.last_error = "dead", 8, error
        return row.id


def test_queue_page_shows_failures_and_an_admin_retries_and_discards(stack_factory):
    stack = sales_team(stack_factory)
    stack.stop_workers()  # nothing sends: what the page shows stays put
    with session_scope(stack.runtime.engine) as session:
        boss = session.execute(select(Employee).where(Employee.name == "王经理")).scalar_one()
        roles.grant(session, boss, "admin", source="env")
    retry_id = _failed_row(stack, "test:fail:1", "errcode 60020 <b>not allow to access from your ip</b>")
    drop_id = _failed_row(stack, "test:fail:2", "errcode 81013 user not found")
    with session_scope(stack.runtime.engine) as session:
        outbox.add(session, key="test:late", kind="message", payload={}, due_at=stack.runtime.now() - timedelta(minutes=7))
    client = session_for(stack, "王经理")

    page = client.get("/admin/queue").get_data(as_text=True)
    assert "errcode 60020 &lt;b&gt;not allow" in page and "81013" in page
    assert re.search(r"消息<br><small>message</small></td>\s*<td class=\"num\">1</td>\s*"
                     r"<td class=\"num late\">7分钟</td>\s*<td class=\"num\">0</td>\s*<td class=\"num late\">2</td>", page)
    token = csrf_of(page.encode())

    assert client.post(f"/admin/queue/{retry_id}/retry").status_code == 400  # no form token
    assert client.post(f"/admin/queue/{retry_id}/retry", data={"csrf": token}).status_code == 302
    assert client.post(f"/admin/queue/{drop_id}/discard", data={"csrf": token}).status_code == 302
    again = client.post(f"/admin/queue/{drop_id}/discard", data={"csrf": token}, follow_redirects=True)
    assert "已经不是失败状态" in again.get_data(as_text=True)
    for mangled in ("12", "x:retry", "12:<b>"):  # a hand-edited address: the page, without a notice
        shown = client.get("/admin/queue", query_string={"done": mangled})
        assert shown.status_code == 200 and "notice" not in shown.get_data(as_text=True)

    status = dict(rows(stack, f"SELECT id, status FROM outbox WHERE id IN ({retry_id}, {drop_id})"))
    assert status == {retry_id: "pending", drop_id: "cancelled"}
    assert rows(stack, f"SELECT attempts FROM outbox WHERE id = {retry_id}")[0][0] == 0
    with session_scope(stack.runtime.engine) as session:
        changes = audit.entries(session, subject=f"outbox:{retry_id}") + audit.entries(session, subject=f"outbox:{drop_id}")
    assert [c.action for c in changes] == ["outbox.retry", "outbox.discard"]
    assert '"before": {"status": "dead", "attempts": 8' in changes[0].detail
    assert '"after": {"status": "pending", "attempts": 0}' in changes[0].detail
    assert '"after": {"status": "cancelled"}' in changes[1].detail


def test_a_card_link_is_only_ever_a_web_address_banli_built():
    from cards import Button, Card

    with pytest.raises(ValueError):
        Card(title="x", link="javascript:alert(1)")
    with pytest.raises(ValueError):  # WeCom makes an address tappable only in a text message
        Card(title="x", link="https://banli.example.com/admin", buttons=(Button("帮助", "help"),))


def test_without_a_configured_key_one_is_generated_once_and_kept(company):
    """Restarts and other processes sign alike: a link from before a restart still opens."""
    link = link_for(company, "zhaozong").removeprefix(company.url)
    assert company.count("console_secret") == 1
    restarted = create_app(runtime=type(company.runtime)(company.runtime.settings, clock=company.runtime.clock))
    assert restarted.test_client().get(link).status_code == 302
    assert company.count("console_secret") == 1
    restarted.extensions["banli"].close()


def test_a_configured_key_is_used_and_nothing_is_generated(company):
    company.runtime.settings = company.runtime.settings.with_(secret_key="s3cret-from-the-environment")
    link = link_for(company, "zhaozong").removeprefix(company.url)
    assert company.count("console_secret") == 0
    configured = company.runtime.settings
    company.runtime.settings = configured.with_(secret_key="another-key")  # rotated: old links are void
    refused = web(company).get(link)
    assert refused.status_code == 403 and "不是办理发的" in refused.get_data(as_text=True)
    company.runtime.settings = configured
    assert web(company).get(link).status_code == 302  # the refusal did not use it up
