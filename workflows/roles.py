"""Who holds which role: the one place every permission and every `role:` approver asks.

A person may hold several roles (a sales manager who is also an admin); each is a row of
`employee_role` with where it came from:

- "admin": granted in chat (`角色 张会计 财务`) or by `banli admins grant`;
- "env":   BANLI_ADMINS names them (granted on their every message, so on the very first one);
- "wecom" / "dingtalk": that platform's directory said so (a WeCom tag, a DingTalk role named like a
  Banli role; "sync" in older rows). A directory sync replaces only its own, never a role an admin gave.

Roles are stored by a short English id (`finance`), which approval rules keep too (`role:finance`);
people read and type the Chinese names (财务) or an alias (会计). `role_id()` turns any of those into
the id. The API, for handlers, workflows and the directory sync:

    role_id(word) / name_of(role) / ROLES      words ↔ ids
    roles_of(session, e) / has_role / is_admin / source_of   what someone holds
    people_with(session, role)                  who holds it (active people)
    grant / revoke / sync / apply_directory     changes, each audited
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Iterable

from sqlalchemy import delete, select
from sqlmodel import Session

from storage.db import insert_ignore
from storage.models import Employee, EmployeeRole, utcnow
from workflows import audit

# Id → the Chinese name people see, in the order lists show them.
ROLES: dict[str, str] = {
    "admin": "管理员", "ceo": "总经理", "sales_director": "销售总监", "sales_manager": "销售经理", "rep": "销售",
    "finance": "财务", "legal": "法务", "hr": "人事", "staff": "员工",
}
# Other words for a role. The ids themselves are accepted too, so rules written with them keep working.
ALIASES: dict[str, str] = {
    "老板": "ceo", "总裁": "ceo", "ceo": "ceo", "总经理/ceo": "ceo",
    "销售代表": "rep", "业务员": "rep", "sales": "rep",
    "会计": "finance", "出纳": "finance",
    "律师": "legal", "人力": "hr", "人力资源": "hr", "hr": "hr",
    "admin": "admin", "管理": "admin",
}
# A directory's grant is named after the platform that gave it; "sync" is any directory (older rows).
DIRECTORY_SOURCES = ("wecom", "dingtalk")
SOURCES = ("admin", "env", "sync", *DIRECTORY_SOURCES)
_WORDS = {**{name: role for role, name in ROLES.items()}, **{role: role for role in ROLES}, **ALIASES}
_CACHE = "banli.roles"  # session.info key: roles looked up in this transaction, by employee id


class LastAdmin(ValueError):
    """Revoking this 管理员 would leave the company with no admin."""


def role_id(word: str) -> str | None:
    """`财务`, `会计`, `finance` → "finance"; None for a word that names no role."""
    word = (word or "").strip()
    return _WORDS.get(word) or _WORDS.get(word.lower())


def name_of(role: str) -> str:
    """The Chinese name of a role id (an unknown id as it is)."""
    return ROLES.get(role, role)


def names() -> str:
    """Every role's Chinese name, for hints: 管理员、总经理、…"""
    return "、".join(ROLES.values())


def roles_of(session: Session, employee: Employee) -> list[str]:
    """The role ids `employee` holds, in ROLES order."""
    if employee.id is None:
        return []
    cache = session.info.setdefault(_CACHE, {})
    if employee.id not in cache:
        held = set(session.execute(select(EmployeeRole.role).where(EmployeeRole.employee_id == employee.id))
                   .scalars())
        cache[employee.id] = sorted(held, key=_order)
    return list(cache[employee.id])


def has_role(session: Session, employee: Employee, role: str) -> bool:
    """Whether `employee` holds `role` (an id or a word: "finance", 财务)."""
    return (role_id(role) or role) in roles_of(session, employee)


def is_admin(session: Session, employee: Employee) -> bool:
    return has_role(session, employee, "admin")


def source_of(session: Session, employee: Employee, role: str) -> str | None:
    """Who granted `employee` the role (one of SOURCES); None if they do not hold it."""
    return session.execute(select(EmployeeRole.source).where(EmployeeRole.employee_id == employee.id,
                                                             EmployeeRole.role == (role_id(role) or role))).scalar()


def people_with(session: Session, role: str) -> list[Employee]:
    """Active employees holding `role`, oldest first (the order approver lists show)."""
    role = role_id(role) or role
    return list(session.execute(
        select(Employee).join(EmployeeRole, EmployeeRole.employee_id == Employee.id)
        .where(EmployeeRole.role == role, Employee.active).order_by(Employee.id)).scalars())


def grant(session: Session, employee: Employee, role: str, *, by: Employee | None = None, source: str = "admin",
          platform: str = "", at: datetime | None = None) -> bool:
    """Give `employee` the role; True if they did not hold it (then audited), False if they did
    (nothing changes — a role an admin gave stays the admin's even if the directory says it too)."""
    role = _known(role)
    if source not in SOURCES:
        raise ValueError(f"unknown role source {source!r}")
    at = at or utcnow()
    new = insert_ignore(session, EmployeeRole, dict(employee_id=employee.id, role=role, source=source,
                                                    granted_by=by.id if by else None, granted_at=at),
                        ["employee_id", "role"])
    if new:
        _forget(session, employee)
        audit.record(session, actor=by, action="role.grant", subject=f"employee:{employee.id}", platform=platform,
                     detail={"role": role, "name": name_of(role), "source": source}, at=at)
    return new


def revoke(session: Session, employee: Employee, role: str, *, by: Employee | None = None, platform: str = "",
           at: datetime | None = None) -> bool:
    """Take the role away; True if they held it (then audited). Raises LastAdmin rather than leave
    the company without an active admin."""
    role = _known(role)
    row = session.execute(select(EmployeeRole).where(EmployeeRole.employee_id == employee.id,
                                                     EmployeeRole.role == role)).scalar_one_or_none()
    if row is None:
        return False
    if role == "admin" and employee.active:
        # Locked on PostgreSQL, so two admins removing each other at once cannot both succeed.
        admins = session.execute(select(EmployeeRole.employee_id).join(Employee, Employee.id == EmployeeRole.employee_id)
                                 .where(EmployeeRole.role == "admin", Employee.active)
                                 .with_for_update(of=EmployeeRole)).scalars().all()
        if set(admins) <= {employee.id}:
            raise LastAdmin(f"{employee.name}是最后一位管理员，先给另一位同事「管理员」角色，再去掉这一位的。")
    session.execute(delete(EmployeeRole).where(EmployeeRole.id == row.id))
    _forget(session, employee)
    audit.record(session, actor=by, action="role.revoke", subject=f"employee:{employee.id}", platform=platform,
                 detail={"role": role, "name": name_of(role), "source": row.source}, at=at)
    return True


def sync(session: Session, employee: Employee, roles: Iterable[str], *, platform: str = "",
         at: datetime | None = None) -> None:
    """What `platform`'s directory says `employee` is, now: grant these roles and drop the ones this
    directory granted earlier that it no longer says. Roles an admin, BANLI_ADMINS or the other
    platform's directory gave are never touched; words that name no role are ignored."""
    wanted = {(employee.id, r) for r in (role_id(word) for word in roles) if r}
    apply_directory(session, platform, wanted, people={employee.id}, at=at)


@dataclass
class DirectoryRoles:
    """What one directory's tags did to roles."""

    granted: list[tuple[int, str]] = field(default_factory=list)
    revoked: list[tuple[int, str]] = field(default_factory=list)
    kept_last_admin: list[int] = field(default_factory=list)  # would have left nobody admin


def directory_source(platform: str) -> str:
    """The `source` of a role a platform's directory granted: its own name, so one platform's sync
    never takes away what the other's tags gave (someone on both keeps either)."""
    return platform if platform in DIRECTORY_SOURCES else "sync"


def apply_directory(session: Session, platform: str, wanted: set[tuple[int, str]], *,
                    people: set[int] | None = None, only_roles: set[str] | None = None,
                    at: datetime | None = None) -> DirectoryRoles:
    """Make the roles `platform`'s directory granted exactly `wanted` ((employee id, role id) pairs):
    grant what is missing (unless held already, from any source), revoke what this directory
    granted and no longer says. `people` / `only_roles` limit what may be revoked (one person's
    entry, one tag's role). Set-based: a 100,000-person sync touches only the pairs that change.
    Revoking the last active admin is skipped (LastAdmin): the directory may not lock everyone out."""
    source = directory_source(platform)
    query = select(EmployeeRole.employee_id, EmployeeRole.role).where(EmployeeRole.source.in_((source, "sync")))
    if people is not None:
        query = query.where(EmployeeRole.employee_id.in_(people))
    if only_roles is not None:
        query = query.where(EmployeeRole.role.in_(only_roles))
    synced = set(session.execute(query).all())
    held: set[tuple[int, str]] = set()
    ids = sorted({e for e, _ in wanted})
    for start in range(0, len(ids), 1000):
        held |= set(session.execute(select(EmployeeRole.employee_id, EmployeeRole.role)
                                    .where(EmployeeRole.employee_id.in_(ids[start:start + 1000]))).all())
    done = DirectoryRoles()
    for employee_id, role in sorted(wanted - held, key=lambda p: (p[0], _order(p[1]))):
        person = session.get(Employee, employee_id)
        if person is not None and grant(session, person, role, source=source, platform=platform, at=at):
            done.granted.append((employee_id, role))
    for employee_id, role in sorted(synced - wanted, key=lambda p: (p[0], _order(p[1]))):
        person = session.get(Employee, employee_id)
        try:
            if person is not None and revoke(session, person, role, platform=platform, at=at):
                done.revoked.append((employee_id, role))
        except LastAdmin:
            done.kept_last_admin.append(employee_id)
    return done


def grant_env_admin(session: Session, employee: Employee, platform: str, user_id: str,
                    admins: Iterable[tuple[str, str]], *, at: datetime | None = None) -> bool:
    """If BANLI_ADMINS (`admins`: (platform or "", user id) pairs) names this sender, make sure they
    are an admin. Called for every inbound message, so the admin is one on their very first message,
    before any directory sync; costs nothing for anyone not listed."""
    if not any(user == user_id and where in ("", platform) for where, user in admins):
        return False
    if is_admin(session, employee):
        return False
    return grant(session, employee, "admin", source="env", platform=platform, at=at)


def holders(session: Session) -> dict[str, list[Employee]]:
    """Every role with the active people holding it, in ROLES order (roles nobody holds left out)."""
    rows = session.execute(select(EmployeeRole.role, Employee).join(Employee, Employee.id == EmployeeRole.employee_id)
                           .where(Employee.active).order_by(Employee.id)).all()
    grouped: dict[str, list[Employee]] = {}
    for role, person in sorted(rows, key=lambda r: _order(r[0])):
        grouped.setdefault(role, []).append(person)
    return grouped


def _known(role: str) -> str:
    found = role_id(role)
    if found is None:
        raise ValueError(f"不认识角色「{role}」，可用：{names()}")
    return found


def _order(role: str) -> int:
    return list(ROLES).index(role) if role in ROLES else len(ROLES)


def _forget(session: Session, employee: Employee) -> None:
    session.info.get(_CACHE, {}).pop(employee.id, None)
