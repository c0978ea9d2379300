"""The demo company's seed data: deterministic, shaped as the brief says, and giving every rep a digest."""

from __future__ import annotations

import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from sqlmodel import Session

from sim.seed import DEPARTMENTS, PEOPLE, SeedSummary, directory_users, is_seeded, seed
from storage.db import make_engine, session_scope
from storage.models import (CUSTOMER_STATUSES, DEAL_STAGES, FOLLOWUP_METHODS, TIERS, Contact, Customer, Deal,
                            Employee, FollowUp, Identity)
from workflows import roles

SHANGHAI = ZoneInfo("Asia/Shanghai")
# 10:00 in Shanghai, and 01:30 the next Shanghai day (UTC still on the 18th): "today" must follow business time.
MORNING = datetime(2026, 3, 18, 2, 0, tzinfo=timezone.utc)
AFTER_MIDNIGHT = datetime(2026, 3, 18, 17, 30, tzinfo=timezone.utc)


@pytest.fixture
def engine(database_url):
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def seeded(engine) -> SeedSummary:
    with session_scope(engine) as session:
        return seed(session, now=MORNING)


def _customer_names(engine, now: datetime, rng_seed: int = 2026) -> list[str]:
    """Seed inside a transaction that is rolled back, so one database serves several runs."""
    with Session(engine) as session:
        seed(session, now=now, rng_seed=rng_seed)
        names = list(session.execute(select(Customer.name).order_by(Customer.id)).scalars())
        session.rollback()
    return names


def test_same_seed_same_company(engine):
    first = _customer_names(engine, MORNING)
    assert first == _customer_names(engine, MORNING)
    assert first != _customer_names(engine, MORNING, rng_seed=7)


def test_is_seeded_only_after_seeding(engine):
    with session_scope(engine) as session:
        assert not is_seeded(session)
        seed(session, now=MORNING)
    with session_scope(engine) as session:
        assert is_seeded(session)


def test_counts_roughly_as_specified(engine, seeded):
    with session_scope(engine) as session:
        count = lambda model: session.execute(select(func.count()).select_from(model)).scalar_one()  # noqa: E731
        assert (count(Employee), count(Customer), count(Deal), count(FollowUp)) == (
            seeded.employees, seeded.customers, seeded.deals, seeded.followups)
        assert seeded.employees == len(PEOPLE) and 12 <= seeded.employees <= 15
        assert 180 <= seeded.customers <= 220
        assert 30 <= seeded.deals <= 50
        assert 250 <= seeded.followups <= 350
        contacts = Counter(session.execute(select(Contact.customer_id)).scalars())
        assert len(contacts) == seeded.customers and set(contacts.values()) <= {1, 2}
        tiers = Counter(session.execute(select(Customer.tier)).scalars())
        assert set(tiers) == set(TIERS)
        assert abs(tiers["A"] / seeded.customers - 0.15) < 0.03 and abs(tiers["C"] / seeded.customers - 0.5) < 0.05
        assert set(session.execute(select(Customer.status)).scalars()) == set(CUSTOMER_STATUSES)
        assert 10 <= session.execute(select(func.count()).where(Customer.owner_id.is_(None))).scalar_one() <= 20


def test_people_identities_and_manager_chains(engine, seeded):
    with session_scope(engine) as session:
        employees = {e.id: e for e in session.execute(select(Employee)).scalars()}
        identities = list(session.execute(select(Identity)).scalars())
        ceo = roles.people_with(session, "ceo")[0]
        for employee in employees.values():
            mine = {i.platform for i in identities if i.employee_id == employee.id}
            assert mine == {"wecom", "dingtalk"}, employee.name
            assert employee.synced_at == MORNING and employee.active
            assert (employee.manager_id is None) == (employee is ceo), employee.name
            seen, current = set(), employee  # walk up: must reach the CEO without revisiting anyone
            while current.manager_id is not None:
                assert current.id not in seen, f"cycle at {current.name}"
                seen.add(current.id)
                current = employees[current.manager_id]
            assert current is ceo
    counts = Counter(p.role for p in PEOPLE)
    assert counts["ceo"] == 1 and counts["sales_director"] == 1 and counts["sales_manager"] == 2
    assert counts["legal"] >= 1 and counts["admin"] >= 1 and counts["finance"] >= 2 and counts["rep"] >= 4
    assert [p.role for p in PEOPLE if p.older] == ["rep"]
    assert {p.department for p in PEOPLE} == set(DEPARTMENTS.values())


def test_customer_names_unique_and_famous_ones_present(engine, seeded):
    with session_scope(engine) as session:
        rows = session.execute(select(Customer.name, Customer.short_names)).all()
    names = [name for name, _ in rows]
    assert len(names) == len(set(names))
    short = dict(rows)
    assert short["腾讯科技(深圳)有限公司"] == "腾讯"
    assert short["北京三快在线科技有限公司"] == "美团"
    assert short["招商银行股份有限公司"] == "招行,招商银行"
    assert short["阿里巴巴(中国)有限公司"] == "阿里"
    assert all(s and len(s.split(",")) <= 2 for s in short.values())


def test_deals_and_followups_are_well_formed(engine, seeded):
    with session_scope(engine) as session:
        owner_of = dict(session.execute(select(Customer.id, Customer.owner_id)).all())
        for deal in session.execute(select(Deal)).scalars():
            assert deal.owner_id == owner_of[deal.customer_id] is not None
            assert 8_000 <= deal.amount <= 2_000_000 and deal.stage in DEAL_STAGES
            assert abs((deal.expected_close - MORNING.astimezone(SHANGHAI).date()).days) <= 60
        for f in session.execute(select(FollowUp)).scalars():
            assert f.method in FOLLOWUP_METHODS and f.content
            assert timedelta(0) < MORNING - f.happened_at <= timedelta(days=61)  # local-day edges: 60 days + hours
            assert f.employee_id == owner_of[f.customer_id]
        for c in session.execute(select(Customer)).scalars():
            latest = session.execute(select(func.max(FollowUp.happened_at))
                                     .where(FollowUp.customer_id == c.id)).scalar_one()
            assert c.last_followup_at == latest


@pytest.mark.parametrize("now", [MORNING, AFTER_MIDNIGHT], ids=["morning", "after-midnight"])
def test_every_rep_has_something_due_today_and_overdue(engine, now):
    with session_scope(engine) as session:
        seed(session, now=now)
    today = now.astimezone(SHANGHAI).date()
    with session_scope(engine) as session:
        reps = roles.people_with(session, "rep")
        customers = session.execute(select(Customer).where(Customer.next_followup_at.is_not(None))).scalars().all()
    assert len(reps) == sum(p.role == "rep" for p in PEOPLE)
    due_day = lambda c: c.next_followup_at.astimezone(SHANGHAI).date()  # noqa: E731
    for rep in reps:
        mine = [c for c in customers if c.owner_id == rep.id]
        assert any(due_day(c) == today for c in mine), rep.name
        assert any(due_day(c) < today for c in mine), rep.name
    overdue = [c for c in customers if due_day(c) < today]
    assert 15 <= len(overdue) <= 25
    # Stale key accounts: tier A, more than a week overdue, nothing logged since it fell due.
    stale = [c for c in overdue if c.tier == "A" and (today - due_day(c)).days > 7]
    assert stale and all(c.last_followup_at is None or c.last_followup_at < c.next_followup_at for c in stale)
    for c in customers:
        if due_day(c) == today:
            assert c.next_followup_at.astimezone(SHANGHAI).strftime("%H:%M") in {"10:00", "14:30", "16:00"}


@pytest.mark.parametrize("platform", ["wecom", "dingtalk"])
def test_directory_users_agree_with_people(platform):
    users = directory_users(platform)
    by_key = {p.key: p for p in PEOPLE}
    user_id = (lambda p: p.wecom_id) if platform == "wecom" else (lambda p: p.dingtalk_id)
    assert list(users) == [user_id(p) for p in PEOPLE]
    for p in PEOPLE:
        user = users[user_id(p)]
        manager = user_id(by_key[p.manager_key]) if p.manager_key else None
        assert user["name"] == p.name
        if platform == "wecom":
            assert [DEPARTMENTS[d] for d in user["department"]] == [p.department]
            assert DEPARTMENTS[user["main_department"]] == p.department
            assert user["direct_leader"] == ([manager] if manager else [])
        else:
            assert [DEPARTMENTS[d] for d in user["dept_id_list"]] == [p.department]
            assert user.get("manager_userid") == manager and ("manager_userid" in user) == bool(manager)
    if platform == "dingtalk":
        assert all(uid.isdigit() for uid in users)
    else:
        assert all(uid.isascii() and uid.isalpha() and uid.islower() for uid in users)
