"""Merging two duplicate customers from the console (/admin/customers): preview, then POST with the
form token; every follow-up, deal, contact, ownership change, 回款 plan, contract link and audit row
moves to the kept one in one transaction; the chat then finds it by either old name; only admins."""

from __future__ import annotations

import json
import threading
from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select
from sqlmodel import Session

from chat import SATURDAY_10AM, Chat, rows
from conftest import TEST_DB
from storage.db import session_scope
from storage.models import (ApprovalRequest, AuditLog, Contact, Conversation, Customer, Deal, DealStageChange,
                            Employee, FollowUp, OwnershipChange, PaymentPlan, StoredFile)
from test_console import company, csrf_of, refusals, session_for, signed_in  # noqa: F401 (company is a fixture)
from workflows import audit, customer_merge, customers
from workflows.matching import refresh_forms

DUPLICATE = "深圳市腾讯计算机系统有限公司"


@pytest.fixture
def duplicate(company):  # noqa: F811
    """张三's 腾讯 (#1) and a duplicate of it 李四 entered as 鹅厂, each with records of their own."""
    with session_scope(company.runtime.engine) as session:
        people = {e.name: e for e in session.execute(select(Employee)).scalars()}
        kept = session.execute(select(Customer).where(Customer.short_names == "腾讯")).scalar_one()
        twin = Customer(name=DUPLICATE, short_names="鹅厂", tier="B", industry="互联网", owner_id=people["李四"].id)
        refresh_forms(twin)
        session.add(twin)
        session.add(Contact(customer_id=kept.id, name="马总", phone="13800138000"))
        session.flush()
        latest = SATURDAY_10AM - timedelta(hours=3)
        session.add_all([
            Contact(customer_id=twin.id, name="小马", phone="13900139000"),
            FollowUp(customer_id=twin.id, employee_id=people["李四"].id, content="鹅厂拜访", happened_at=latest,
                     next_at=SATURDAY_10AM + timedelta(days=3)),
            FollowUp(customer_id=twin.id, employee_id=people["李四"].id, content="更早", happened_at=latest - timedelta(days=9)),
            OwnershipChange(customer_id=twin.id, to_owner_id=people["李四"].id, reason="create"),
        ])
        deal = Deal(customer_id=twin.id, owner_id=people["李四"].id, title="鹅厂大单", amount=Decimal("300000"))
        session.add(deal)
        session.flush()
        session.add_all([
            DealStageChange(deal_id=deal.id, to_stage="初步接触"),
            PaymentPlan(deal_id=deal.id, customer_id=twin.id, amount=Decimal("100000"), due_date=date(2026, 12, 31)),
            ApprovalRequest(type="合同", requester_id=people["李四"].id, summary="鹅厂 合同", status="pending",
                            details=json.dumps({"customer_id": twin.id, "customer": DUPLICATE, "deal_id": deal.id})),
            Conversation(employee_id=people["李四"].id, flow="crm.visit", step="when",
                         data=json.dumps({"customer_id": twin.id}), expires_at=SATURDAY_10AM + timedelta(hours=1)),
        ])
        followup = session.execute(select(FollowUp).where(FollowUp.content == "鹅厂拜访")).scalar_one()
        session.add(StoredFile(sha256="0" * 64, size=1, mime="image/jpeg", platform="wecom",
                               uploaded_by=people["李四"].id, attached_type="followup", attached_id=followup.id))
        audit.record(session, actor=people["李四"], action="customer.create", subject=f"customer:{twin.id}",
                     platform="wecom", at=latest)
        company.ids = (kept.id, twin.id)
    return company


def counts(stack, customer_id: int) -> dict[str, int]:
    with session_scope(stack.runtime.engine) as session:
        def n(model, *where):
            return session.execute(select(func.count()).select_from(model).where(*where)).scalar_one()
        return {"followups": n(FollowUp, FollowUp.customer_id == customer_id),
                "deals": n(Deal, Deal.customer_id == customer_id),
                "contacts": n(Contact, Contact.customer_id == customer_id),
                "ownership": n(OwnershipChange, OwnershipChange.customer_id == customer_id),
                "payments": n(PaymentPlan, PaymentPlan.customer_id == customer_id),
                "audit": n(AuditLog, AuditLog.subject == f"customer:{customer_id}")}


def test_an_admin_finds_the_twins_previews_and_merges_them(duplicate):
    kept_id, twin_id = duplicate.ids
    before = {k: counts(duplicate, kept_id)[k] + counts(duplicate, twin_id)[k] for k in counts(duplicate, kept_id)}
    client = signed_in(duplicate, "zhaozong")

    search = client.get("/admin/customers", query_string={"q": "鹅厂"}).get_data(as_text=True)
    assert DUPLICATE in search and "预览合并" in search
    preview = client.get("/admin/customers/merge", query_string={"keep": kept_id, "gone": twin_id})
    page = preview.get_data(as_text=True)
    assert preview.status_code == 200
    assert "跟进记录：2 条" in page and "商机：1 条" in page and "联系人：1 条" in page and "合同申请：1 条" in page
    assert counts(duplicate, twin_id)["followups"] == 2  # a preview changes nothing

    done = client.post("/admin/customers/merge", data={"csrf": csrf_of(preview.data), "keep": kept_id, "gone": twin_id})
    assert done.status_code == 302 and f"merged={kept_id}" in done.headers["Location"]
    assert "已合并" in client.get(done.headers["Location"]).get_data(as_text=True)

    after = counts(duplicate, kept_id)
    for what in ("followups", "deals", "contacts", "ownership", "payments"):
        assert after[what] == before[what], what
    assert after["audit"] >= before["audit"] + 1  # its history moved, and the merge itself
    with session_scope(duplicate.runtime.engine) as session:
        assert session.get(Customer, twin_id) is None
        kept = session.get(Customer, kept_id)
        assert kept.short_names.split(",") == ["腾讯", DUPLICATE, "鹅厂"]
        assert kept.tier == "A" and kept.industry == "互联网" and kept.owner_id == employee_id(session, "张三")
        assert kept.last_followup_at == SATURDAY_10AM - timedelta(hours=3)  # the twin's visit was the latest
        assert kept.next_followup_at == SATURDAY_10AM + timedelta(days=3)
        assert customers.get(session, twin_id).id == kept_id  # an old card's id lands on the kept one
        contract = session.execute(select(ApprovalRequest).where(ApprovalRequest.type == "合同")).scalar_one()
        assert json.loads(contract.details)["customer_id"] == kept_id
        form = session.execute(select(Conversation)).scalar_one()
        assert json.loads(form.data)["customer_id"] == kept_id
        photo = session.execute(select(StoredFile)).scalar_one()  # still on its follow-up, now the kept one's
        assert session.get(FollowUp, photo.attached_id).customer_id == kept_id
    again = client.post("/admin/customers/merge", data={"csrf": csrf_of(preview.data), "keep": kept_id, "gone": twin_id})
    assert again.status_code == 400 and f"客户 #{twin_id} 不存在" in again.get_data(as_text=True)  # a second tab
    (detail,) = [d for (d,) in rows(duplicate, "SELECT detail FROM audit_log WHERE action = 'customer.merge'")]
    logged = json.loads(detail)
    assert logged["before"]["merged"]["name"] == DUPLICATE and logged["before"]["kept"]["short_names"] == "腾讯"
    assert DUPLICATE in logged["after"]["short_names"] and logged["moved"]["跟进记录"] == 2


def employee_id(session, name: str) -> int:
    return session.execute(select(Employee.id).where(Employee.name == name)).scalar_one()


@pytest.mark.parametrize("typed", ["鹅厂", DUPLICATE, "腾讯", "腾讯科技(深圳)有限公司"])
def test_the_chat_finds_the_kept_customer_by_either_old_name(duplicate, typed):
    kept_id, twin_id = duplicate.ids
    with session_scope(duplicate.runtime.engine) as session:
        admin = session.execute(select(Employee).where(Employee.name == "赵总")).scalar_one()
        customer_merge.merge(session, kept_id, twin_id, actor=admin)
    reply = Chat(duplicate, "wecom", "zhangsan").say(typed)
    assert reply.field("全称") == "腾讯科技(深圳)有限公司", reply.text
    with session_scope(duplicate.runtime.engine) as session:
        assert customers.find(session, typed, owner_id=0).customer_id == kept_id


@pytest.mark.parametrize("who", ["王经理", "张三"])
def test_a_manager_or_rep_cannot_merge(duplicate, who):
    kept_id, twin_id = duplicate.ids
    client = session_for(duplicate, who)
    assert client.get("/admin/customers/merge", query_string={"keep": kept_id, "gone": twin_id}).status_code == 403
    csrf = rows(duplicate, "SELECT csrf FROM console_session ORDER BY id DESC")[0][0]
    answer = client.post("/admin/customers/merge", data={"csrf": csrf, "keep": kept_id, "gone": twin_id})
    assert answer.status_code == 403
    assert counts(duplicate, twin_id)["followups"] == 2  # nothing moved
    assert len(refusals(duplicate, "POST /admin/customers/merge")) == 1
    if who == "王经理":  # a manager may search (name, tier, owner: what the chat shows anyone) …
        page = client.get("/admin/customers", query_string={"q": "鹅厂"}).get_data(as_text=True)
        assert DUPLICATE in page and "预览合并" not in page  # … but is offered no merge


def test_the_workflow_itself_refuses_a_non_admin(duplicate):
    kept_id, twin_id = duplicate.ids
    with session_scope(duplicate.runtime.engine) as session:
        boss = session.execute(select(Employee).where(Employee.name == "王经理")).scalar_one()
        with pytest.raises(customer_merge.MergeRefused):
            customer_merge.merge(session, kept_id, twin_id, actor=boss)


def test_bad_merges_are_refused_in_chinese_and_change_nothing(duplicate):
    kept_id, twin_id = duplicate.ids
    client = signed_in(duplicate, "zhaozong")
    csrf = csrf_of(client.get("/admin/customers").data)
    for keep, gone, said in ((kept_id, kept_id, "同一个"), (kept_id, 999, "客户 #999 不存在"), ("腾讯", twin_id, "不是数字")):
        answer = client.post("/admin/customers/merge", data={"csrf": csrf, "keep": keep, "gone": gone})
        assert answer.status_code == 400 and said in answer.get_data(as_text=True)
        shown = client.get("/admin/customers/merge", query_string={"keep": keep, "gone": gone})
        assert shown.status_code == 400 and said in shown.get_data(as_text=True)
    assert counts(duplicate, twin_id)["followups"] == 2
    assert len(refusals(duplicate, "customer.merge")) == 3
    missing = client.post("/admin/customers/merge", data={"keep": kept_id, "gone": twin_id})
    assert missing.status_code == 400 and counts(duplicate, twin_id)["followups"] == 2  # no form token


def test_merging_twice_follows_the_chain(duplicate):
    """A merged into B, then B into C: A's old id still finds C."""
    kept_id, twin_id = duplicate.ids
    with session_scope(duplicate.runtime.engine) as session:
        admin = session.execute(select(Employee).where(Employee.name == "赵总")).scalar_one()
        third = session.execute(select(Customer).where(Customer.short_names == "招行")).scalar_one()
        customer_merge.merge(session, kept_id, twin_id, actor=admin)
        customer_merge.merge(session, third.id, kept_id, actor=admin)
        assert customers.get(session, twin_id).id == third.id


@pytest.mark.skipif(not TEST_DB.startswith("postgresql"), reason="real concurrency needs PostgreSQL")
def test_two_admins_merging_the_same_pair_at_once_merge_it_once(duplicate):
    kept_id, twin_id = duplicate.ids
    engine = duplicate.runtime.engine
    barrier = threading.Barrier(2)
    results: list[str] = []

    def merge() -> None:
        with Session(engine) as session:
            admin = session.execute(select(Employee).where(Employee.name == "赵总")).scalar_one()
            barrier.wait()
            try:
                customer_merge.merge(session, kept_id, twin_id, actor=admin)
                session.commit()
                results.append("merged")
            except customer_merge.MergeRefused:
                session.rollback()
                results.append("refused")

    threads = [threading.Thread(target=merge) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["merged", "refused"]
    assert counts(duplicate, kept_id)["followups"] == 1 + 2  # its own earlier one + the twin's two, once
    assert len(rows(duplicate, "SELECT id FROM audit_log WHERE action = 'customer.merge'")) == 1
