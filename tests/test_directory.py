"""Directory sync (`banli directory sync`), change events (WeCom change_contact on the callback,
DingTalk address-book events on POST /dingtalk/events), the admins' hand-over card for someone who
left, one employee per person across platforms, import by owner before first contact, and a first
message answered with the directory already read — all through the CLI, the HTTP routes and the
platform stand-ins."""

from __future__ import annotations

import json
import os

import pytest
import requests
from sqlalchemy import select, text

from banli.cli import main
from bot.dingtalk.event_crypto import EventCrypto, signature
from conftest import DINGTALK_EVENT_AES_KEY, DINGTALK_EVENT_TOKEN, TEST_REDIS, settle, startup_cron_finished, wait_for
from storage.db import session_scope
from storage.models import AuditLog, Customer, Department, Employee, Identity, OwnershipChange
from workflows import roles

# A company as both directories list it: 王经理 manages 张三 and the two 王小明; 赵总 is the admin.
WECOM_PEOPLE = {
    "zhaozong": dict(name="赵总", department=[1], main_department=1, direct_leader=[], mobile="13800000009"),
    "wangjl": dict(name="王经理", department=[2], main_department=2, direct_leader=["zhaozong"], mobile="13800000008"),
    "zhangsan": dict(name="张三", department=[2, 3], main_department=2, direct_leader=["wangjl"],
                     mobile="+86 13800000001", email="zhangsan@example.com"),
    "wangxm1": dict(name="王小明", department=[3], main_department=3, direct_leader=["wangjl"], mobile="13800000002"),
    "wangxm2": dict(name="王小明", department=[3], main_department=3, direct_leader=["wangjl"], mobile="13800000003"),
}
WECOM_DEPTS = {1: "总经办", 2: "销售一部", 3: "华东组"}


@pytest.fixture
def company(stack_factory, monkeypatch, tmp_path):
    stack = stack_factory()
    stack.wecom.users.clear()
    stack.wecom.departments.clear()
    stack.wecom.departments.update(WECOM_DEPTS)
    stack.wecom.parents.update({3: 2})
    for uid, fields in WECOM_PEOPLE.items():
        stack.wecom.add_user(uid, **fields)
    settings = stack.runtime.settings
    env = {"DATABASE_URL": settings.database_url, "WECOM_CORP_ID": settings.wecom.corp_id,
           "WECOM_AGENT_ID": str(settings.wecom.agent_id), "WECOM_SECRET": settings.wecom.secret,
           "WECOM_TOKEN": settings.wecom.token, "WECOM_AES_KEY": settings.wecom.aes_key,
           "WECOM_API_BASE": settings.wecom.api_base}
    if settings.dingtalk:
        env.update(DINGTALK_APP_KEY=settings.dingtalk.app_key, DINGTALK_APP_SECRET=settings.dingtalk.app_secret,
                   DINGTALK_API_BASE=settings.dingtalk.api_base, DINGTALK_OAPI_BASE=settings.dingtalk.oapi_base)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    if TEST_REDIS:
        monkeypatch.setenv("REDIS_URL", TEST_REDIS)
    else:
        monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env
    # The nightly directory slot fires at start when within its catch-up (before 21:40 Shanghai); once a
    # test has synced, that slot would run a sync of its own beside the test's and take its changes.
    startup_cron_finished(stack)
    return stack


def cli(capsys, *args: str) -> tuple[int, str]:
    code = main(list(args))
    return code, capsys.readouterr().out


def employee(stack, platform: str, user_id: str) -> Employee | None:
    with session_scope(stack.runtime.engine) as session:
        return session.execute(select(Employee).join(Identity, Identity.employee_id == Employee.id)
                               .where(Identity.platform == platform, Identity.user_id == user_id)).scalars().first()


def make_admin(stack, platform: str, user_id: str) -> None:
    with session_scope(stack.runtime.engine) as session:
        roles.grant(session, session.get(Employee, employee(stack, platform, user_id).id), "admin")


def give_customers(stack, owner_id: int, names: list[str]) -> None:
    with session_scope(stack.runtime.engine) as session:
        for name in names:
            session.add(Customer(name=name, owner_id=owner_id))


def card_titles(stack, user: str) -> list[str]:
    return [m["template_card"]["main_title"]["title"] for m in stack.wecom.cards_to(user)]


def tap(stack, user: str, card: dict, label: str, n: int) -> None:
    key = next(b["key"] for b in card["button_list"] if b["text"] == label)
    code = stack.wecom.issue_response_code(card["task_id"])
    assert stack.post_wecom(stack.wecom_peer.card_click(user, key, card["task_id"], code,
                                                        create_time=1_800_000_000 + n)).status_code == 200


def test_sync_before_first_contact_then_import_by_owner_name_id_or_mobile(company, capsys, tmp_path):
    code, out = cli(capsys, "directory", "sync", "--platform", "wecom")
    assert code == 0, out
    assert "已读 5 人" in out and "people +5" in out
    zhang = employee(company, "wecom", "zhangsan")
    assert (zhang.name, zhang.department, zhang.mobile, zhang.email) == ("张三", "销售一部", "13800000001",
                                                                      "zhangsan@example.com")
    assert zhang.manager_id == employee(company, "wecom", "wangjl").id
    with session_scope(company.runtime.engine) as session:
        depts = {d.dept_id: (d.name, d.parent_dept_id) for d in session.execute(select(Department)).scalars()}
    assert depts == {"1": ("总经办", ""), "2": ("销售一部", "1"), "3": ("华东组", "2")}
    assert company.count("outbox", "WHERE kind = 'message'") == 0  # nobody was messaged

    code, out = cli(capsys, "directory", "sync")
    assert code == 0 and "没有变化" in out  # idempotent: a second run changes nothing and says so

    sheet = tmp_path / "customers.csv"
    sheet.write_text("客户名称,负责人\n上海华美教育科技有限公司,张三\n杭州云栖科技有限公司,王小明\n"
                     "成都天府软件园有限公司,wangxm1\n南京紫金商贸有限公司,138 0000 0003\n", encoding="utf-8")
    code, out = cli(capsys, "import", "customers", str(sheet))
    assert code == 1 and "第3行：有 2 位王小明，请写手机号或账号" in out
    code, out = cli(capsys, "import", "customers", str(sheet), "--skip-bad")
    assert code == 0 and "已导入 3 个客户" in out
    with session_scope(company.runtime.engine) as session:
        owners = dict(session.execute(text("SELECT c.name, i.user_id FROM customer c JOIN identity i "
                                           "ON i.employee_id = c.owner_id")).all())
    assert owners == {"上海华美教育科技有限公司": "zhangsan", "成都天府软件园有限公司": "wangxm1",
                      "南京紫金商贸有限公司": "wangxm2"}


def test_someone_leaving_reaches_each_admin_as_a_card_and_one_tap_hands_over(company, capsys):
    assert cli(capsys, "directory", "sync", "--platform", "wecom")[0] == 0
    make_admin(company, "wecom", "zhaozong")
    zhang = employee(company, "wecom", "zhangsan")
    give_customers(company, zhang.id, ["腾讯科技(深圳)有限公司", "招商银行股份有限公司"])

    company.wecom.remove_user("zhangsan")
    event = company.wecom_peer.change_contact("delete_user", UserID="zhangsan")
    assert company.post_wecom(event).status_code == 200
    assert company.post_wecom(event).status_code == 200  # WeCom's retry of the same event: no second card
    wait_for(lambda: "张三 已离职" in card_titles(company, "zhaozong"))
    settle()
    assert card_titles(company, "zhaozong").count("张三 已离职") == 1
    assert company.wecom.messages_to("sys") == []  # a directory event is never answered
    assert not employee(company, "wecom", "zhangsan").active
    card = company.wecom.cards_to("zhaozong")[-1]["template_card"]
    assert [b["text"] for b in card["button_list"]] == ["交给上级王经理", "放回公海", "选择接手人"]

    # Someone who is not an admin taps it (a forged click with the card's key): refused, audited.
    tap(company, "wangjl", card, "交给上级王经理", 1)
    wait_for(lambda: any("只有管理员" in json.dumps(m, ensure_ascii=False) for m in company.wecom.messages_to("wangjl")))
    with session_scope(company.runtime.engine) as session:
        assert session.execute(select(AuditLog).where(AuditLog.action == "refused")).scalars().first() is not None
        assert session.execute(select(Customer.owner_id)).scalars().all() == [zhang.id, zhang.id]

    tap(company, "zhaozong", card, "交给上级王经理", 2)
    manager = employee(company, "wecom", "wangjl")
    wait_for(lambda: company.count("customer", f"WHERE owner_id = {manager.id}") == 2)
    wait_for(lambda: any(u["template_card"]["main_title"]["title"] == "张三 已离职 · 已交接"
                         for u in company.wecom.updates))
    tap(company, "zhaozong", card, "放回公海", 3)  # a second tap changes nothing
    wait_for(lambda: any("已交接" in json.dumps(m, ensure_ascii=False)
                         for m in company.wecom.messages_to("zhaozong")[-1:]))
    assert company.count("customer", f"WHERE owner_id = {manager.id}") == 2
    assert company.count("ownership_change", "WHERE reason = 'handover'") == 2


def test_resync_departs_people_gone_from_the_directory_once(company, capsys):
    assert cli(capsys, "directory", "sync", "--platform", "wecom")[0] == 0
    make_admin(company, "wecom", "zhaozong")
    company.wecom.remove_user("wangxm2")
    company.wecom.modify_user("wangxm1", name="王晓明")
    code, out = cli(capsys, "directory", "sync", "--platform", "wecom")
    assert code == 0 and "离职 left 1" in out and "~1" in out
    assert not employee(company, "wecom", "wangxm2").active
    assert employee(company, "wecom", "wangxm1").name == "王晓明"
    wait_for(lambda: "王小明 已离职" in card_titles(company, "zhaozong"))
    code, out = cli(capsys, "directory", "sync", "--platform", "wecom")
    assert "没有变化" in out
    settle()
    assert card_titles(company, "zhaozong").count("王小明 已离职") == 1


def test_an_empty_listing_departs_nobody(company, capsys):
    assert cli(capsys, "directory", "sync", "--platform", "wecom")[0] == 0
    company.wecom.users.clear()
    code, out = cli(capsys, "directory", "sync", "--platform", "wecom")
    assert code == 0 and "departures held back" in out
    assert employee(company, "wecom", "zhangsan").active


def test_wecom_change_events_create_and_update_people_and_departments(company, capsys):
    assert cli(capsys, "directory", "sync", "--platform", "wecom")[0] == 0
    company.wecom.add_user("lisi", name="李四", department=[3], main_department=3, direct_leader=["wangjl"])
    assert company.post_wecom(company.wecom_peer.change_contact("create_user", UserID="lisi", Name="李四",
                                                                Department="3")).status_code == 200
    wait_for(lambda: employee(company, "wecom", "lisi") and employee(company, "wecom", "lisi").name == "李四")
    assert employee(company, "wecom", "lisi").manager_id == employee(company, "wecom", "wangjl").id
    company.wecom.departments[4] = "华南组"
    assert company.post_wecom(company.wecom_peer.change_contact("create_party", Id="4", Name="华南组",
                                                                ParentId="2")).status_code == 200
    wait_for(lambda: company.count("department", "WHERE dept_id = '4' AND name = '华南组'") == 1)
    assert company.post_wecom(company.wecom_peer.change_contact("delete_party", Id="4")).status_code == 200
    wait_for(lambda: company.count("department", "WHERE dept_id = '4' AND active = false") == 1)
    assert company.wecom.messages_to("sys") == []


def test_the_same_person_on_both_platforms_is_one_employee(company, capsys):
    ding = company.dingtalk
    ding.users.clear()
    ding.add_user("0147001", name="张三", dept_id_list=[20], manager_userid="0147002", mobile="13800000001")
    ding.add_user("0147002", name="王经理", dept_id_list=[20], job_number="A-8")
    ding.add_user("0147003", name="孙七", dept_id_list=[30])
    code, out = cli(capsys, "directory", "sync")
    assert code == 0, out
    zhang_wecom, zhang_ding = employee(company, "wecom", "zhangsan"), employee(company, "dingtalk", "0147001")
    assert zhang_wecom.id == zhang_ding.id  # linked by mobile
    assert "关联 linked 1" in out
    assert cli(capsys, "directory", "sync")[1].count("nothing changed") == 2

    # No shared mobile: an admin links them, and no orphan is left behind.
    wang_w, wang_d = employee(company, "wecom", "wangjl"), employee(company, "dingtalk", "0147002")
    assert wang_w.id != wang_d.id
    give_customers(company, wang_d.id, ["深圳恒达物流有限公司"])
    code, out = cli(capsys, "employees", "link", "wecom:wangjl", "dingtalk:0147002")
    assert code == 0, out
    with session_scope(company.runtime.engine) as session:
        other = session.get(Employee, wang_d.id)
        assert (other.active, other.merged_into_id) == (False, wang_w.id)
        assert session.execute(select(Customer.owner_id)).scalars().all() == [wang_w.id]
        assert session.get(Employee, zhang_ding.id).manager_id == wang_w.id
        named = session.execute(select(Employee).where(Employee.name == "王经理", Employee.active)).scalars().all()
        assert [e.id for e in named] == [wang_w.id]
    assert employee(company, "dingtalk", "0147002").id == wang_w.id


def test_first_message_is_answered_with_the_directory_manager(company):
    company.wecom.add_user("liuxin", name="刘欣", department=[2], main_department=2, direct_leader=["wangjl"])
    assert company.post_wecom(company.wecom_peer.text("liuxin", "谁审批 报销 3000")).status_code == 200
    wait_for(lambda: company.wecom.messages_to("liuxin"))
    reply = json.dumps(company.wecom.messages_to("liuxin")[0], ensure_ascii=False)
    assert "王经理" in reply and "无需审批" not in reply
    assert employee(company, "wecom", "liuxin").department == "销售一部"


def test_a_dingtalk_first_message_is_answered_with_the_directory_manager(company):
    from chat import Chat

    company.dingtalk.add_user("0147040", name="刘欣", dept_id_list=[20], manager_userid="0147002")
    reply = Chat(company, "dingtalk", "0147040").say("谁审批 报销 3000")
    assert "周经理" in reply.text and "无需审批" not in reply.text
    newcomer = employee(company, "dingtalk", "0147040")
    assert (newcomer.name, newcomer.department) == ("刘欣", "销售二部")
    assert newcomer.manager_id == employee(company, "dingtalk", "0147002").id


# -- DingTalk: the HTTP event subscription -------------------------------------------------------


def post_event(stack, event_type: str, **data) -> requests.Response:
    query, body = stack.dingtalk_peer.event(event_type, token=DINGTALK_EVENT_TOKEN, aes_key=DINGTALK_EVENT_AES_KEY,
                                            **data)
    return requests.post(f"{stack.url}/dingtalk/events?{query}", data=body,
                         headers={"Content-Type": "application/json"}, timeout=10)


def test_dingtalk_address_book_events_apply_and_are_answered_with_encrypted_success(company, capsys):
    ding = company.dingtalk
    assert cli(capsys, "directory", "sync", "--platform", "dingtalk")[0] == 0
    make_admin(company, "wecom", "zhaozong") if employee(company, "wecom", "zhaozong") else None
    make_admin(company, "dingtalk", "0147011")
    answer = post_event(company, "check_url")
    assert answer.status_code == 200
    assert ding.__class__ and company.dingtalk_peer.read_reply(
        answer.json(), token=DINGTALK_EVENT_TOKEN, aes_key=DINGTALK_EVENT_AES_KEY,
        owner_key=company.runtime.settings.dingtalk.app_key) == "success"

    ding.add_user("0147020", name="吴九", dept_id_list=[20], manager_userid="0147002")
    assert post_event(company, "user_add_org", UserId=["0147020"]).status_code == 200
    wait_for(lambda: employee(company, "dingtalk", "0147020") and employee(company, "dingtalk", "0147020").name == "吴九")
    assert employee(company, "dingtalk", "0147020").manager_id == employee(company, "dingtalk", "0147002").id

    ding.remove_user("0147001")
    assert post_event(company, "user_leave_org", UserId=["0147001"]).status_code == 200
    wait_for(lambda: any(m["title"] == "李四 已离职" for m in ding.messages_to("0147011")))
    assert not employee(company, "dingtalk", "0147001").active


def test_forged_or_replayed_dingtalk_events_are_refused(company):
    query, body = company.dingtalk_peer.event("user_leave_org", token="not-our-token",
                                              aes_key=DINGTALK_EVENT_AES_KEY, UserId=["0147001"])
    url = f"{company.url}/dingtalk/events"
    assert requests.post(f"{url}?{query}", data=body, timeout=10).status_code == 403
    query, body = company.dingtalk_peer.event("user_leave_org", token=DINGTALK_EVENT_TOKEN,
                                              aes_key=DINGTALK_EVENT_AES_KEY, UserId=["0147001"],
                                              timestamp_ms=1445827045067)
    assert requests.post(f"{url}?{query}", data=body, timeout=10).status_code == 403  # replayed from 2015
    # Signed right, but encrypted for another app (its AppKey as owner key): refused.
    crypto = EventCrypto(DINGTALK_EVENT_TOKEN, DINGTALK_EVENT_AES_KEY, "another-app-key")
    encrypt = crypto.encrypt(json.dumps({"EventType": "user_leave_org", "UserId": ["0147001"]}))
    reply = crypto.reply("x")
    sig = signature(DINGTALK_EVENT_TOKEN, reply["timeStamp"], reply["nonce"], encrypt)
    forged = f"{url}?msg_signature={sig}&timestamp={reply['timeStamp']}&nonce={reply['nonce']}"
    assert requests.post(forged, data=json.dumps({"encrypt": encrypt}), timeout=10).status_code == 403
    assert requests.post(url, data=b"{}", timeout=10).status_code == 400
    settle()
    assert company.count("outbox", "WHERE kind = 'inbound'") == 0


def test_event_crypto_matches_dingtalks_published_vectors():
    # Vector A (the event-crypto page's debugging tool; owner key a suiteKey there).
    a = EventCrypto("123456", "4g5j64qlyl3zvetqxz5jiocdr586fn2zvjpa8zls3ij", "suite4xxxxxxxxxxxxxxx")
    encrypt = ("1a3NBxmCFwkCJvfoQ7WhJHB+iX3qHPsc9JbaDznE1i03peOk1LaOQoRz3+nlyGNhwmwJ3vDMG+OzrHMeiZI7gTRWVdUBmfxjZ8Ej23JV"
               "Ya9VrYeJ5as7XM/ZpulX8NEQis44w53h1qAgnC3PRzM7Zc/D6Ibr0rgUathB6zRHP8PYrfgnNOS9PhSBdHlegK+AGGanfwjXuQ9+0"
               "pZcy0w9lQ==")
    assert a.verify("5a65ceeef9aab2d149439f82dc191dd6c5cbe2c0", "1445827045067", "nEXhMP4r", encrypt)
    plain = a.decrypt(encrypt)
    assert json.loads(plain) == {"EventType": "check_create_suite_url", "Random": "LPIdSnlF",
                                 "TestSuiteKey": "suite4xxxxxxxxxxxxxxx"}
    again = a.encrypt(plain, random16=b"1234567890123456")
    assert signature("123456", "1445827045067", "nEXhMP4r", again) == "bcf6dcefa4ce2dbaf7b0666c7264d46fd9aad4bd"
    assert not a.verify("5a65ceeef9aab2d149439f82dc191dd6c5cbe2c1", "1445827045067", "nEXhMP4r", encrypt)
    # Vector B (the Stream-push FAQ): the encrypted "success".
    b = EventCrypto("123456", "1234567890123456789012345678901234567890123", "dingsnotzck6pm5veliw")
    encrypt_b = "YvkvaGe4hQxd3VxRmEty0dVlnCOAqwf56xwTRHDHoOURqhalbmBJQk5FNcRk42Gl5T0YQXZNwpwWSm1xAFJ5ZA=="
    assert b.verify("9a95a004dd16f5c307e849b994173f76aa26e5eb", "1614767836", "A7Co0cJLMzIDtMMI", encrypt_b)
    assert b.decrypt(encrypt_b) == "success"


def test_sync_pages_through_both_platforms_listings(company, capsys, monkeypatch):
    """WeCom user/list_id by `next_cursor`, DingTalk user/list by `has_more`/`next_cursor`; 1,000s of
    people give one progress line per 1,000."""
    import bot.wecom.client

    monkeypatch.setattr(bot.wecom.client, "LIST_ID_PAGE", 2)
    ding = company.dingtalk
    ding.users.clear()
    for n in range(1250):
        ding.add_user(f"d{n:04d}", name=f"员工{n}", dept_id_list=[20], manager_userid="d0000" if n else "")
    code, out = cli(capsys, "directory", "sync")
    assert code == 0, out
    assert company.wecom.list_calls["user/list_id"] == 3  # 5 rows + 1 for 张三's second department, 2 a page
    assert ding.list_calls["user/list"] == 13 + 2  # 1250 in 销售二部 at 100 a page; 财务部, the root: one each
    assert "dingtalk: 已读 1000 人" in out and "dingtalk: 已读 1250 人" in out
    assert company.count("identity", "WHERE platform = 'dingtalk'") == 1250
    assert company.count("employee", "WHERE manager_id IS NOT NULL") == 1249 + 4
