"""The web console (后台): the one-time link asked for in chat, sessions, CSRF, who sees what, the
audit log page and its CSV, and the queue page — through the chat routes and the real /admin routes."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from bot.app import create_app
from chat import SATURDAY_10AM, Chat, rows, sales_team
from storage.db import session_scope
from storage.models import Employee, Identity
from workflows import console, roles

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
    assert "王经理" in page and "经理" in page

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
    assert client.get("/admin/").status_code == 200  # used: the idle clock starts again
    company.clock.skip(hours=7)
    assert client.get("/admin/").status_code == 200
    company.clock.skip(hours=8, minutes=1)
    answer = client.get("/admin/")
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


def test_a_reps_session_gets_403(company):
    rep = session_for(company, "张三")
    assert rep.get("/admin/").status_code == 403
    assert any('"why": "not_admin_or_manager"' in d for d in refusals(company, "GET /admin/"))
