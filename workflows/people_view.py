"""The console's 人员 pages and a customer's detail page: what they show and the changes they make.

Nothing here is a second copy of a flow the chat already has. The hand-over is the 离职 flow
(workflows/leavers.py, and the admins' cards of workflows/directory_leavers.py); linking two
identities is `banli employees link` (workflows/identity.py); roles are workflows/roles.py with its
last-admin guard; a delegate is the 委托 of workflows/approvals/away.py; the re-sync queues the
nightly directory slot's own cron job (banli/cron.py). What this module adds is the preview each
page shows before the one POST that acts, and the owner change a customer page offers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlmodel import Session

from cards import Card
from storage import outbox
from storage.models import AuditLog, Contact, Customer, Deal, Delegation, Employee, FollowUp, Identity, Outbox, \
    OwnershipChange
from workflows import audit, audit_view, customers, directory_leavers, identity, leavers, pushes, roles
from workflows.approvals import away, requests
from workflows.customer_views import CLOSED_STAGES, mask_phone

STATES = {"active": "在职", "awaiting": "待交接", "departed": "已离职"}
HISTORY_ROWS = 200  # a customer page shows this many of each kind, newest first


class Refused(ValueError):
    """A change the page may not make, in words that name the field or the reason."""


# -- the list and one person -------------------------------------------------------------------------


@dataclass(frozen=True)
class PersonRow:
    employee: Employee
    identities: dict[str, list[str]]  # 企业微信 / 钉钉 → user ids
    manager: str
    roles: list[str]  # Chinese names
    delegate: str  # "李四 12-01～12-05", or ""
    state: str  # a STATES value


def state_of(person: Employee) -> str:
    if person.active:
        return STATES["active"]
    return STATES["awaiting"] if leavers.awaiting_handover(person) else STATES["departed"]


def people(session: Session, *, team: frozenset[int] | None, name: str = "", department: str = "",
           state: str = "", today: date) -> list[PersonRow]:
    """Everyone an admin may see (`team` None) or a manager's team, filtered; merged rows left out
    (they are history, the person lives on in the row they were merged into)."""
    query = select(Employee).where(Employee.merged_into_id.is_(None))
    if team is not None:
        query = query.where(Employee.id.in_(team))
    if name:
        query = query.where(Employee.name.contains(name))
    if department:
        query = query.where(Employee.department.contains(department))
    rows = [_row(session, person, today) for person in session.execute(query.order_by(Employee.id)).scalars()]
    return [r for r in rows if not state or r.state == STATES.get(state)]


def _row(session: Session, person: Employee, today: date) -> PersonRow:
    ids: dict[str, list[str]] = {}
    for found in identity.identities_of(session, person.id):
        ids.setdefault(identity.PLATFORM_NAMES.get(found.platform, found.platform), []).append(found.user_id)
    manager = session.get(Employee, person.manager_id) if person.manager_id else None
    return PersonRow(person, ids, manager.name if manager else "", [roles.name_of(r) for r in roles.roles_of(session, person)],
                     delegate_text(session, person, today), state_of(person))


def delegate_text(session: Session, person: Employee, today: date) -> str:
    """The delegation running or planned from `today` on, as a line: 李四 2026-12-01～2026-12-05."""
    row = session.execute(select(Delegation).where(Delegation.employee_id == person.id, Delegation.last_day >= today)
                          .order_by(Delegation.first_day)).scalars().first()
    if row is None:
        return ""
    to = session.get(Employee, row.delegate_id)
    return f"{to.name if to else '#' + str(row.delegate_id)} {row.first_day}～{row.last_day}"


def person(session: Session, person_id: int, *, team: frozenset[int] | None, today: date) -> PersonRow | None:
    """One person's row, or None if there is none the viewer may see."""
    found = session.get(Employee, person_id)
    if found is None or (team is not None and found.id not in team):
        return None
    return _row(session, found, today)


def colleagues(session: Session, *, but: int) -> list[Employee]:
    """Active people to pick from (a delegate, a successor), by name."""
    return list(session.execute(select(Employee).where(Employee.active, Employee.id != but,
                                                       Employee.merged_into_id.is_(None))
                                .order_by(Employee.name, Employee.id)).scalars())


# -- roles -------------------------------------------------------------------------------------------


def change_role(session: Session, target: Employee, word: str, *, add: bool, by: Employee, now: datetime) -> str:
    """Grant or revoke one role; the notice to show. Refused (with the reason) for an unknown role or
    the last admin."""
    role = roles.role_id(word)
    if role is None:
        raise Refused(f"角色：不认识「{word[:20]}」，可用：{roles.names()}")
    try:
        changed = (roles.grant(session, target, role, by=by, platform="web", at=now) if add else
                   roles.revoke(session, target, role, by=by, platform="web", at=now))
    except roles.LastAdmin as last:
        raise Refused(str(last)) from None
    verb = "加上" if add else "去掉"
    return f"已{verb}{target.name}的「{roles.name_of(role)}」角色。" if changed else \
        f"{target.name}{'已经有' if add else '没有'}「{roles.name_of(role)}」角色，没有改动。"


# -- delegate ----------------------------------------------------------------------------------------


def set_delegate(session: Session, target: Employee, delegate_id: str, first: str, last: str, *, by: Employee,
                 now: datetime) -> str:
    """A delegation for `target` (their approvals go to the delegate those days), set by an admin."""
    if not delegate_id.isdigit() or session.get(Employee, int(delegate_id)) is None:
        raise Refused("代理人：请选择一位同事")
    days = {}
    for label, text in (("开始日期", first), ("结束日期", last)):
        try:
            days[label] = date.fromisoformat(text.strip())
        except ValueError:
            raise Refused(f"{label}：「{text[:20]}」不是日期（例如 2026-12-01）") from None
    to = session.get(Employee, int(delegate_id))
    if to.id == target.id or not to.active:
        raise Refused("代理人：请选另一位在职同事")
    try:
        away.delegate(session, target, to, days["开始日期"], days["结束日期"], platform="web", now=now, by=by)
    except ValueError as problem:
        raise Refused(f"结束日期：{problem}") from None
    return f"已设置：{days['开始日期']} 到 {days['结束日期']}，{target.name}的审批由{to.name}代理。"


def clear_delegate(session: Session, target: Employee, *, by: Employee, now: datetime, tz: str) -> str:
    today = now.astimezone(ZoneInfo(tz)).date()
    ended = away.end_delegations(session, target, today, platform="web", now=now, by=by)
    return f"已取消{target.name}的代理，从今天起审批回到TA那里。" if ended else f"{target.name}没有代理，没有改动。"


# -- hand-over ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HandoverPlan:
    """What the 离职 flow would move, and to whom, before the admin confirms."""

    leaver: Employee
    how: str  # manager | pool | person
    successor: Employee | None  # whoever gets the customers (None: 公海)
    tasks_to: Employee | None
    customers: int
    open_deals: int
    tasks: int
    followups_due: int
    problem: str = ""  # why it cannot be done as chosen ("" when it can)


def handover_plan(session: Session, leaver: Employee, how: str, successor_id: str = "") -> HandoverPlan:
    """The preview: the same choice the admins' card offers (上级 / 公海 / a named person), counted."""
    manager = session.get(Employee, leaver.manager_id) if leaver.manager_id else None
    successor, problem = None, ""
    if how == "manager":
        successor = manager if manager is not None and manager.active else None
        problem = "" if successor else f"{leaver.name}没有在职的上级，请选「放回公海」或指定接手人。"
    elif how == "person":
        successor = session.get(Employee, int(successor_id)) if successor_id.isdigit() else None
        if successor is None or not successor.active or successor.id == leaver.id:
            successor, problem = None, "接手人：请选另一位在职同事"
    elif how != "pool":
        how, problem = "pool", ""
    owned = select(Customer.id).where(Customer.owner_id == leaver.id)
    tasks = len(requests.open_tasks_of(session, leaver))
    tasks_to = successor or (manager if manager is not None and manager.active else None)
    if not problem and tasks and tasks_to is None:
        problem = f"{leaver.name}还有 {tasks} 个待审批，没有上级可接，请指定接手人。"
    if not problem and leaver.handed_over_at is not None:
        problem = f"{leaver.name}已经交接过了。"
    return HandoverPlan(
        leaver=leaver, how=how, successor=successor, tasks_to=tasks_to if tasks else None, tasks=tasks,
        customers=_count(session, select(func.count()).select_from(Customer).where(Customer.owner_id == leaver.id)),
        open_deals=_count(session, select(func.count()).select_from(Deal).where(
            Deal.customer_id.in_(owned), Deal.stage.not_in(CLOSED_STAGES))),
        followups_due=_count(session, select(func.count()).select_from(Customer).where(
            Customer.owner_id == leaver.id, Customer.next_followup_at.is_not(None))),
        problem=problem)


def hand_over(session: Session, plan: HandoverPlan, *, by: Employee, now: datetime, tz: str) -> str:
    """Do what `plan` previewed, through the 离职 flow; every admin's hand-over card then says it is
    done (as a tap on one would). Refused once it has been done: a second tap changes nothing."""
    if plan.problem:
        raise Refused(plan.problem)
    try:
        done = leavers.mark_departed(session, plan.leaver, by=by, successor=plan.successor,
                                     customers_to_pool=plan.how == "pool", now=now, tz=tz, platform="web")
    except ValueError as problem:
        raise Refused(str(problem)) from None
    card = directory_leavers.done_card(plan.leaver, by, done.tasks_to, done.customers_to)
    directory_leavers.refresh_cards(session, plan.leaver, card)
    return f"已交接：{card.body.split('：', 1)[-1]}"


def _count(session: Session, query) -> int:
    return int(session.execute(query).scalar_one())


# -- linking two identities --------------------------------------------------------------------------


def link_plan(session: Session, keep: Employee, other_id: str) -> tuple[Employee, list[Identity]]:
    """The other row to fold into `keep` and the identities that come with it; Refused naming the field."""
    other = session.get(Employee, int(other_id)) if other_id.isdigit() else None
    if other is None:
        raise Refused("另一个账号：请选择一位同事")
    if other.id == keep.id or other.merged_into_id == keep.id:
        raise Refused("另一个账号：已经是同一个人了")
    if other.merged_into_id is not None or keep.merged_into_id is not None:
        raise Refused("另一个账号：这一行已经合并到别人名下了")
    return other, identity.identities_of(session, other.id)


def link(session: Session, keep: Employee, other: Employee, *, by: Employee, now: datetime) -> str:
    """`banli employees link`, from the console: the same move, audited with who did it."""
    names = [f"{identity.PLATFORM_NAMES.get(i.platform, i.platform)} {i.user_id}" for i in identity.identities_of(session, other.id)]
    moved = identity.link_identities(session, keep, other)
    audit.record(session, actor=by, action="employee.link", subject=f"employee:{keep.id}", platform="web",
                 detail={"merged": other.id, "references": moved, "identities": names}, at=now)
    return f"已关联：{'、'.join(names) or '#' + str(other.id)} 现在都是{keep.name}（移过来 {moved} 条记录）。"


# -- the directory re-sync ---------------------------------------------------------------------------


JOB = "directory"  # banli/cron.py's nightly slot; a re-sync queues one more run of the same job


def queue_resync(session: Session, *, by: Employee, now: datetime) -> bool:
    """Queue the nightly directory job now (the worker runs it as it runs the 01:40 slot). Keyed by
    the minute: two taps in one minute queue it once."""
    key = f"cron:{JOB}:web:{now.strftime('%Y%m%dT%H%M')}"
    queued = outbox.add(session, key=key, kind="cron", payload={"name": JOB}, due_at=now)
    if queued:
        audit.record(session, actor=by, action="directory.resync", subject="directory", platform="web", at=now)
    return queued


@dataclass(frozen=True)
class LastSync:
    at: str  # in the company's time zone, 2026-12-03 09:40; "—" when unknown
    state: str  # 等待执行 / 已完成 / 失败
    summary: list[str] = field(default_factory=list)


def last_sync(session: Session, *, tz: str) -> LastSync | None:
    """The latest run of the directory job (nightly or asked for), with what it reported; its time
    in the company's time zone `tz` (the database holds UTC)."""
    row = session.execute(select(Outbox).where(Outbox.kind == "cron", Outbox.key.like(f"cron:{JOB}:%"))
                          .order_by(Outbox.id.desc())).scalars().first()
    if row is None:
        return None
    state = {"pending": "等待执行", "sent": "已完成", "dead": "失败"}.get(row.status, row.status)
    result = json.loads(row.result or "{}")
    lines = [f"{identity.PLATFORM_NAMES.get(p, p)}：{_sync_line(r)}" for p, r in sorted(result.items())]
    if row.status == "dead" and row.last_error:
        lines.append(row.last_error[:200])
    moment = row.sent_at or row.due_at
    return LastSync(moment.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M") if moment else "—", state, lines)


def _sync_line(report) -> str:
    if not isinstance(report, dict):
        return "还没有同步过，请先在服务器上运行 banli directory sync"
    return (f"读取 {report.get('read', 0)} 人，新增 {report.get('added', 0)}，变更 {report.get('changed', 0)}，"
            f"离职 {report.get('left', 0)}")


# -- a customer's page -------------------------------------------------------------------------------


@dataclass(frozen=True)
class CustomerPage:
    customer: Customer
    owner: str
    full: bool  # may see phones, amounts and history (customers.may_see_details)
    may_change_owner: bool
    followups: list[tuple[FollowUp, str, str]] = field(default_factory=list)  # with who logged it, local time
    deals: list[Deal] = field(default_factory=list)
    contacts: list[tuple[Contact, str]] = field(default_factory=list)  # with the phone as shown
    audit_rows: list[dict] = field(default_factory=list)


def customer_page(session: Session, viewer: Employee, team: frozenset[int] | None, customer: Customer, *,
                  phones: bool, tz: str) -> CustomerPage:
    """What the viewer may see of one customer. Phones are masked unless asked for (`phones`), and
    then shown whole only to whom the chat shows them, each showing audited (customer_views)."""
    from workflows.customer_views import reveal_phones

    full = customers.may_see_details(session, viewer, customer)
    page = CustomerPage(customer, customers.owner_name(session, customer), full,
                        may_change_owner(session, viewer, team, customer))
    if not full:
        return page
    shown = {c.id for c in reveal_phones(session, viewer, customer, platform="web") or []} if phones else set()
    for contact in session.execute(select(Contact).where(Contact.customer_id == customer.id).order_by(Contact.id)).scalars():
        page.contacts.append((contact, contact.phone if contact.id in shown else mask_phone(contact.phone)
                              if contact.phone else ""))
    names, zone = _names(session), ZoneInfo(tz)
    for row in session.execute(select(FollowUp).where(FollowUp.customer_id == customer.id)
                               .order_by(FollowUp.happened_at.desc(), FollowUp.id.desc()).limit(HISTORY_ROWS)).scalars():
        page.followups.append((row, names.get(row.employee_id, ""), row.happened_at.astimezone(zone).strftime("%Y-%m-%d %H:%M")))
    page.deals.extend(session.execute(select(Deal).where(Deal.customer_id == customer.id)
                                      .order_by(Deal.id.desc()).limit(HISTORY_ROWS)).scalars())
    for entry in session.execute(select(AuditLog).where(AuditLog.subject == f"customer:{customer.id}")
                                 .order_by(AuditLog.id.desc()).limit(HISTORY_ROWS)).scalars():
        page.audit_rows.append({"at": entry.at.astimezone(zone).strftime("%Y-%m-%d %H:%M"),
                                "who": names.get(entry.actor_id, "办理") if entry.actor_id else "办理",
                                "action": audit_view.ACTION_NAMES.get(entry.action, entry.action),
                                "detail": audit_view.detail_text(entry.detail)})
    return page


def _names(session: Session) -> dict[int, str]:
    return dict(session.execute(select(Employee.id, Employee.name)).all())


def may_change_owner(session: Session, viewer: Employee, team: frozenset[int] | None, customer: Customer) -> bool:
    """An admin any customer; a manager one owned inside their team (a 公海 customer is the admin's)."""
    return team is None or (customer.owner_id is not None and customer.owner_id in team)


def owner_choices(session: Session, team: frozenset[int] | None) -> list[Employee]:
    """Whom the viewer may give a customer to: anyone active (admin) or someone in their team."""
    query = select(Employee).where(Employee.active, Employee.merged_into_id.is_(None))
    if team is not None:
        query = query.where(Employee.id.in_(team))
    return list(session.execute(query.order_by(Employee.name, Employee.id)).scalars())


def change_owner(session: Session, customer: Customer, choice: str, *, by: Employee, team: frozenset[int] | None,
                 now: datetime) -> str:
    """Give the customer to the chosen person (an employee id) or to the 公海 ("pool"): an
    OwnershipChange as every move writes, the audit row with before and after, and a card to the new
    owner through the usual push (it waits for quiet hours like every push)."""
    if not may_change_owner(session, by, team, customer):
        raise Refused("负责人：只有管理员或负责人的上级可以改")
    new = None
    if choice != "pool":
        new = session.get(Employee, int(choice)) if choice.isdigit() else None
        if new is None or not new.active or new.merged_into_id is not None:
            raise Refused("新负责人：请选择一位在职同事，或「公海」")
        if team is not None and new.id not in team:
            raise Refused("新负责人：只能交给你团队里的同事")
    elif team is not None:
        raise Refused("新负责人：放回公海由管理员操作")
    if (new.id if new else None) == customer.owner_id:
        raise Refused("新负责人：和现在的负责人相同，没有改动")
    before = customers.owner_name(session, customer)
    old_id = customer.owner_id
    customer.owner_id, customer.owned_since = (new.id if new else None), now
    session.add(customer)
    change = OwnershipChange(customer_id=customer.id, from_owner_id=old_id, to_owner_id=new.id if new else None,
                             reason="assign" if new else "pool", at=now)
    session.add(change)
    session.flush()
    after = new.name if new else "公海"
    audit.record(session, actor=by, action="customer.owner", subject=f"customer:{customer.id}", platform="web",
                 detail={"before": {"owner": before, "owner_id": old_id},
                         "after": {"owner": after, "owner_id": new.id if new else None}}, at=now)
    if new is not None and new.id != by.id:
        pushes.push(session, new.id, f"owner:{customer.id}:{change.id}",
                    Card(title=f"新客户 · {customer.name}",
                         body=f"{by.name}把「{customer.name}」交给你负责（原负责人：{before}）。发客户名称可以看详情。"))
    return f"负责人已从{before}改为{after}。"
