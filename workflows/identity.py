"""Who is talking: platform identities → employees, filled in from the platform directory."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, func, select, tuple_, update
from sqlmodel import Session, SQLModel

from storage import outbox
from storage.db import insert_ignore
from storage.models import Conversation, Employee, EmployeeRole, Identity, Outbox, utcnow

# The platforms by the names people know them (pages, cards).
PLATFORM_NAMES = {"wecom": "企业微信", "dingtalk": "钉钉"}


@dataclass(frozen=True)
class DirectoryEntry:
    """What a platform directory says about one user (WeCom user/get and user/list, DingTalk
    topapi/v2/user/get and topapi/v2/user/list; docs/wecom.md §5, docs/dingtalk.md §5.2)."""

    user_id: str
    name: str
    department: str = ""  # the main department's name, where the caller knows it
    manager_user_id: str = ""
    mobile: str = ""
    email: str = ""
    job_number: str = ""
    department_ids: tuple[str, ...] = ()  # the platform's department ids, the main one first
    # False: listed, but gone (WeCom status 5 left the company / 2 disabled). DingTalk's own `active`
    # means "has activated DingTalk", not "still employed", and is not read into this.
    active: bool = True


@dataclass(frozen=True)
class DirectoryDepartment:
    """One department: the platform's id, its name, its parent's id ("" for the root)."""

    dept_id: str
    name: str
    parent_id: str = ""


@dataclass(frozen=True)
class DirectoryTag:
    """A platform's named group of people that may name a Banli role: a WeCom tag (tag/list, tag/get)
    or a DingTalk role (topapi/role/list, topapi/role/simplelist). `dept_ids`: departments tagged as
    a whole (WeCom `partylist`), whose members, sub-departments included, count as tagged."""

    tag_id: str
    name: str
    user_ids: tuple[str, ...] = ()
    dept_ids: tuple[str, ...] = ()


def employee_for(session: Session, platform: str, user_id: str, *, sync_later: bool = True) -> tuple[Employee, bool]:
    """The employee behind a platform user id, and whether this call created them (first contact).

    A newcomer starts with their user id as a name; unless `sync_later` is False (the caller reads
    the directory itself, bot/pipeline.py) a `directory_sync` outbox row reads the real name,
    department and manager off the platform, so the webhook never waits on the directory API.
    """
    found = _find(session, platform, user_id)
    if found:
        return found, False
    employee = Employee(name=user_id[:64])
    session.add(employee)
    session.flush()
    if not insert_ignore(session, Identity,
                         dict(platform=platform, user_id=user_id, employee_id=employee.id, created_at=utcnow(),
                              digest=""),
                         ["platform", "user_id"]):
        # Another request created this identity first: use theirs, drop ours.
        session.delete(employee)
        session.flush()
        return _find(session, platform, user_id), False
    if sync_later:
        outbox.add(session, key=f"directory_sync:{platform}:{user_id}", kind="directory_sync",
                   platform=platform, recipient=user_id, payload={})
    return employee, True


def apply_directory(session: Session, platform: str, entry: DirectoryEntry) -> Employee | None:
    """Store what the directory said about one person (an event, a first contact): the same writes
    as a whole `banli directory sync` does for each row (workflows/directory.py)."""
    from workflows import directory

    return directory.apply_one(session, platform, entry)


def link_identities(session: Session, keep: Employee, other: Employee) -> int:
    """One person, two platforms: `other` becomes `keep`. Every reference to `other` (identities,
    customers, deals, follow-ups, approvals, managers, …) moves to `keep`, and `other` stays only as a
    merged, inactive row (`merged_into_id`) — never a second active colleague of the same name.
    The audit log keeps naming who did what then. Returns how many references moved."""
    if keep.id == other.id:
        return 0
    moved = 0
    if session.execute(select(Conversation.id).where(Conversation.employee_id == keep.id)).first():
        session.execute(delete(Conversation).where(Conversation.employee_id == other.id))
    # A role both hold stays once (employee_role is unique per person and role): keep's grant wins.
    held = select(EmployeeRole.role).where(EmployeeRole.employee_id == keep.id)
    session.execute(delete(EmployeeRole).where(EmployeeRole.employee_id == other.id, EmployeeRole.role.in_(held)))
    for table in SQLModel.metadata.sorted_tables:
        if table.name == "audit_log":
            continue
        for column in table.columns:
            if table.name == "employee" and column.name == "merged_into_id":
                continue
            if any(fk.column.table.name == "employee" and fk.column.name == "id" for fk in column.foreign_keys):
                moved += session.execute(update(table).where(column == other.id).values({column.name: keep.id})).rowcount or 0
    session.expire_all()
    keep, other = session.get(Employee, keep.id), session.get(Employee, other.id)
    for name in ("mobile", "email", "job_number", "department", "department_id"):
        if not getattr(keep, name) and getattr(other, name):
            setattr(keep, name, getattr(other, name))
    if keep.manager_id == keep.id:
        keep.manager_id = other.manager_id if other.manager_id != keep.id else None
    keep.active = keep.active or other.active
    other.active, other.merged_into_id = False, keep.id
    session.add_all([keep, other])
    session.flush()
    return moved


def identities_of(session: Session, employee_id: int) -> list[Identity]:
    return list(session.execute(select(Identity).where(Identity.employee_id == employee_id)
                                .order_by(Identity.id)).scalars())


def preferred_identity(session: Session, employee_id: int) -> Identity | None:
    """Where to push to someone: the platform they last wrote to Banli on, else their first identity.
    One push per person, never one per platform: a company using both would otherwise ping twice."""
    identities = list(session.execute(select(Identity).where(Identity.employee_id == employee_id)
                                      .order_by(Identity.id)).scalars())
    if len(identities) <= 1:
        return identities[0] if identities else None
    last_seen = {i.id: session.execute(
        select(func.max(Outbox.created_at)).where(Outbox.kind == "inbound", Outbox.platform == i.platform,
                                                  Outbox.recipient == i.user_id)).scalar()
        for i in identities}
    used = [i for i in identities if last_seen[i.id]]
    return max(used, key=lambda i: last_seen[i.id]) if used else identities[0]


def preferred_identities(session: Session, employee_ids: set[int]) -> dict[int, Identity | None]:
    """`preferred_identity` for many people in two queries (a scan pushing to hundreds of them):
    their identities, then, for those with more than one, when each identity last wrote."""
    found: dict[int, list[Identity]] = {employee_id: [] for employee_id in employee_ids}
    ids = sorted(employee_ids)
    for start in range(0, len(ids), 500):
        for identity in session.execute(select(Identity).where(Identity.employee_id.in_(ids[start:start + 500]))
                                        .order_by(Identity.id)).scalars():
            found[identity.employee_id].append(identity)
    several = [i for identities in found.values() if len(identities) > 1 for i in identities]
    last_seen: dict[tuple[str, str], object] = {}
    if several:
        last_seen = {(platform, user): at for platform, user, at in session.execute(
            select(Outbox.platform, Outbox.recipient, func.max(Outbox.created_at))
            .where(Outbox.kind == "inbound", tuple_(Outbox.platform, Outbox.recipient).in_(
                [(i.platform, i.user_id) for i in several]))
            .group_by(Outbox.platform, Outbox.recipient))}
    chosen: dict[int, Identity | None] = {}
    for employee_id, identities in found.items():
        used = [i for i in identities if last_seen.get((i.platform, i.user_id))]
        chosen[employee_id] = (max(used, key=lambda i: last_seen[(i.platform, i.user_id)]) if used
                               else identities[0] if identities else None)
    return chosen


def _find(session: Session, platform: str, user_id: str) -> Employee | None:
    return session.execute(
        select(Employee).join(Identity, Identity.employee_id == Employee.id)
        .where(Identity.platform == platform, Identity.user_id == user_id)
    ).scalars().first()


def employees_named(session: Session, name: str, *, include_departed: bool = False) -> list[Employee]:
    """Colleagues with exactly this name (admins and approvers name people in chat)."""
    query = select(Employee).where(Employee.name == name.strip(), Employee.merged_into_id.is_(None))
    if not include_departed:
        query = query.where(Employee.active)
    return list(session.execute(query.order_by(Employee.id)).scalars())
