"""Who is talking: platform identities → employees, filled in from the platform directory."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select, tuple_
from sqlmodel import Session

from storage import outbox
from storage.db import insert_ignore
from storage.models import Employee, Identity, Outbox, utcnow


@dataclass(frozen=True)
class DirectoryEntry:
    """What a platform directory says about one user (WeCom user/get, DingTalk topapi/v2/user/get)."""

    user_id: str
    name: str
    department: str = ""
    manager_user_id: str = ""


def employee_for(session: Session, platform: str, user_id: str) -> tuple[Employee, bool]:
    """The employee behind a platform user id, and whether this call created them (first contact).

    A newcomer starts with their user id as a name; a `directory_sync` outbox row reads the real name,
    department and manager off the platform, so the webhook never waits on the directory API.
    """
    found = _find(session, platform, user_id)
    if found:
        return found, False
    employee = Employee(name=user_id[:64])
    session.add(employee)
    session.flush()
    if not insert_ignore(session, Identity,
                         dict(platform=platform, user_id=user_id, employee_id=employee.id, created_at=utcnow()),
                         ["platform", "user_id"]):
        # Another request created this identity first: use theirs, drop ours.
        session.delete(employee)
        session.flush()
        return _find(session, platform, user_id), False
    outbox.add(session, key=f"directory_sync:{platform}:{user_id}", kind="directory_sync",
               platform=platform, recipient=user_id, payload={})
    return employee, True


def apply_directory(session: Session, platform: str, entry: DirectoryEntry) -> Employee:
    """Store what the directory said, linking the manager (who is created and synced in turn if new)."""
    employee, _ = employee_for(session, platform, entry.user_id)
    employee.name = (entry.name or entry.user_id)[:64]
    employee.department = entry.department[:128]
    if entry.manager_user_id and entry.manager_user_id != entry.user_id:
        employee.manager_id = employee_for(session, platform, entry.manager_user_id)[0].id
    employee.synced_at = utcnow()
    session.add(employee)
    return employee


def link_identities(session: Session, keep: Employee, other: Employee) -> None:
    """One person, two platforms: move `other`'s identities onto `keep` (used by `banli employees link`)."""
    for identity in session.execute(select(Identity).where(Identity.employee_id == other.id)).scalars():
        identity.employee_id = keep.id
        session.add(identity)


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
    query = select(Employee).where(Employee.name == name.strip())
    if not include_departed:
        query = query.where(Employee.active)
    return list(session.execute(query.order_by(Employee.id)).scalars())
