"""The platform directories in Banli's tables: `banli directory sync` (nightly too, banli/cron.py),
change events (handlers/directory.py) and a first contact (bot/pipeline.py) all write through here.

A whole sync is set-based so it holds 100,000 people (bench/directory.py): departments first (a few
thousand rows, compared in memory), then people in chunks of `CHUNK` — one SELECT of the chunk's
identities, one of its link candidates, one multi-row INSERT of the new rows and one executemany
UPDATE of the changed ones; never an ORM object per person. Each identity keeps a digest of the
entry last applied, so a re-run that finds nothing new writes nothing and says so.

The same person on both platforms is one employee: a user new to a platform joins the employee who
has no identity there yet and the same mobile, else email, else job number (only when exactly one
employee matches). People the directory no longer lists leave the way an admin's 离职 does
(workflows/leavers.py): inactive at once, their work waiting for an admin's one-tap hand-over
(workflows/directory_leavers.py).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable, Iterable, Iterator

from sqlalchemy import bindparam, func, insert, select, update
from sqlmodel import Session

from storage.models import Department, Employee, Identity, utcnow
from workflows.identity import DirectoryDepartment, DirectoryEntry, DirectoryTag

CHUNK = 1000  # people per round of statements; also one progress line each
# A listing that would make more than this share of a platform's people leave at once is more
# likely a broken listing (visible range narrowed, a wrong secret) than a mass departure.
MASS_LEAVE_SHARE = 0.5
MASS_LEAVE_MIN = 20

EMP = Employee.__table__
IDN = Identity.__table__
DEPT = Department.__table__


@dataclass
class SyncReport:
    platform: str
    departments_added: int = 0
    departments_changed: int = 0
    departments_removed: int = 0
    people_read: int = 0
    people_added: int = 0
    people_linked: int = 0  # new to this platform, joined to an employee from the other one
    people_changed: int = 0
    managers_changed: int = 0
    people_left: int = 0
    left_ids: list[int] = field(default_factory=list)  # employees who left in this run
    held_back: str = ""  # why departures were not applied (a listing that looks broken)
    merged: int = 0  # two employee rows found to be one person, merged
    roles_granted: int = 0
    roles_revoked: int = 0
    unmatched_tags: list[str] = field(default_factory=list)  # tag / role names that name no Banli role
    tags_note: str = ""  # why roles were left as they were (no permission to read tags)
    kept_last_admin: int = 0
    recheck_ids: list[int] = field(default_factory=list, repr=False)  # known people whose entry changed
    tag_word: str = "标签"  # what the platform calls them: WeCom 标签, DingTalk 角色

    @property
    def changed(self) -> bool:
        return any((self.departments_added, self.departments_changed, self.departments_removed, self.people_added,
                    self.people_linked, self.people_changed, self.managers_changed, self.people_left, self.merged,
                    self.roles_granted, self.roles_revoked))

    def lines(self) -> list[str]:
        if not self.changed and not self.held_back:
            lines = [f"{self.platform}: 读取 {self.people_read} 人，没有变化 nothing changed"]
        else:
            lines = [f"{self.platform}: 读取 {self.people_read} 人 read; 部门 departments +{self.departments_added} "
                     f"~{self.departments_changed} -{self.departments_removed}; 人员 people +{self.people_added} "
                     f"关联 linked {self.people_linked} ~{self.people_changed} 上级 managers ~{self.managers_changed} "
                     f"离职 left {self.people_left}; 合并 merged {self.merged}; "
                     f"角色 roles +{self.roles_granted} -{self.roles_revoked}"]
        if self.held_back:
            lines.append(f"{self.platform}: 没有办理离职 departures held back: {self.held_back}")
        if self.tags_note:
            lines.append(f"{self.platform}: {self.tags_note}")
        if self.unmatched_tags:
            lines.append(f"{self.platform}: 未对应的{self.tag_word}：{'、'.join(self.unmatched_tags)} "
                         f"(naming no Banli role, ignored)")
        if self.kept_last_admin:
            lines.append(f"{self.platform}: 最后一位管理员的「管理员」角色保留 the last admin keeps the role")
        return lines


def sync(session: Session, platform: str, departments: list[DirectoryDepartment], people: Iterable[DirectoryEntry],
         *, now: datetime, progress: Callable[[str], None] = lambda line: None,
         allow_mass_leave: bool = False) -> SyncReport:
    """Make Banli's departments and employees of `platform` what the directory lists, in the caller's
    transaction. Returns what changed; departures are announced to the admins (directory_leavers)."""
    report = SyncReport(platform)
    depts = sync_departments(session, platform, departments, now=now, report=report)
    seen: set[str] = set()
    pending_managers: list[tuple[int, str]] = []
    for chunk in _chunks(_unique(people), CHUNK):
        seen.update(e.user_id for e in chunk)
        pending_managers += _apply_chunk(session, platform, chunk, depts, now=now, report=report)
        report.people_read += len(chunk)
        progress(f"{platform}: 已读 {report.people_read} 人 read {report.people_read} people")
    report.managers_changed += _set_managers(session, platform, pending_managers)
    report.merged += merge_duplicates(session, platform, report.recheck_ids, now=now)
    _apply_departures(session, platform, seen, now=now, report=report, allow_mass_leave=allow_mass_leave)
    return report


def synced_before(session: Session, platform: str) -> bool:
    """Has a whole sync of `platform` ever run (it stores at least the root department)?"""
    return session.execute(select(DEPT.c.id).where(DEPT.c.platform == platform).limit(1)).first() is not None


# -- departments -----------------------------------------------------------------------------------


def sync_departments(session: Session, platform: str, departments: list[DirectoryDepartment], *, now: datetime,
                     report: SyncReport | None = None, complete: bool = True) -> dict[str, tuple[int, str]]:
    """Upsert departments; with `complete`, those not listed are marked removed. {dept_id: (row id, name)}."""
    report = report or SyncReport(platform)
    existing = {r.dept_id: r for r in session.execute(
        select(DEPT.c.id, DEPT.c.dept_id, DEPT.c.name, DEPT.c.parent_dept_id, DEPT.c.active)
        .where(DEPT.c.platform == platform))}
    listed = {d.dept_id: d for d in departments}
    new = [dict(platform=platform, dept_id=d.dept_id[:64], name=d.name[:128], parent_dept_id=d.parent_id[:64],
                active=True, synced_at=now) for d in listed.values() if d.dept_id not in existing]
    changed = [dict(b_id=existing[d.dept_id].id, name=d.name[:128], parent_dept_id=d.parent_id[:64], active=True,
                    synced_at=now)
               for d in listed.values() if d.dept_id in existing and
               (existing[d.dept_id].name, existing[d.dept_id].parent_dept_id, existing[d.dept_id].active)
               != (d.name[:128], d.parent_id[:64], True)]
    removed = [dict(b_id=r.id, active=False, synced_at=now) for key, r in existing.items()
               if complete and r.active and key not in listed]
    if new:
        session.execute(insert(DEPT), new)
    for rows in (changed, removed):
        if rows:
            session.execute(update(DEPT).where(DEPT.c.id == bindparam("b_id"))
                            .values({k: bindparam(k) for k in rows[0] if k != "b_id"}), rows)
    report.departments_added += len(new)
    report.departments_changed += len(changed)
    report.departments_removed += len(removed)
    return {r.dept_id: (r.id, r.name) for r in session.execute(
        select(DEPT.c.id, DEPT.c.dept_id, DEPT.c.name).where(DEPT.c.platform == platform))}


def remove_department(session: Session, platform: str, dept_id: str, *, now: datetime) -> bool:
    return bool(session.execute(update(DEPT).where(DEPT.c.platform == platform, DEPT.c.dept_id == dept_id,
                                                   DEPT.c.active.is_(True))
                                .values(active=False, synced_at=now)).rowcount)


# -- people ----------------------------------------------------------------------------------------


def digest(entry: DirectoryEntry, department_name: str) -> str:
    """What a re-sync compares: every field Banli stores from the entry."""
    values = [entry.name, department_name, entry.manager_user_id, entry.mobile, entry.email, entry.job_number,
              list(entry.department_ids), entry.active]
    return hashlib.md5(json.dumps(values, ensure_ascii=False).encode()).hexdigest()


def _fields(entry: DirectoryEntry, depts: dict[str, tuple[int, str]], now: datetime) -> dict:
    main = next((depts[d] for d in entry.department_ids if d in depts), None)
    return dict(name=(entry.name or entry.user_id)[:64], department=(main[1] if main else entry.department)[:128],
                department_id=main[0] if main else None, mobile=_mobile(entry.mobile)[:32],
                email=entry.email.strip().lower()[:128], job_number=entry.job_number.strip()[:64], synced_at=now)


def _mobile(value: str) -> str:
    """Mobiles compare as digits, without a +86 / 86- prefix (DingTalk gives 138…, WeCom may give +86 138…)."""
    digits = "".join(ch for ch in value if ch.isdigit())
    return digits[2:] if len(digits) == 13 and digits.startswith("86") else digits


def _apply_chunk(session: Session, platform: str, chunk: list[DirectoryEntry], depts: dict[str, tuple[int, str]],
                 *, now: datetime, report: SyncReport) -> list[tuple[int, str]]:
    """Insert, link or update one chunk; returns (employee id, manager user id) for the manager pass."""
    ids = [e.user_id for e in chunk]
    known = {r.user_id: r for r in session.execute(
        select(IDN.c.id, IDN.c.user_id, IDN.c.employee_id, IDN.c.digest, IDN.c.left_at, EMP.c.active, EMP.c.left_at.label("emp_left"))
        .join(EMP, EMP.c.id == IDN.c.employee_id)
        .where(IDN.c.platform == platform, IDN.c.user_id.in_(ids)))}
    fresh = [e for e in chunk if e.user_id not in known and e.active]
    links = _link_candidates(session, platform, fresh)
    employee_updates, identity_updates, new_people, new_identities = [], [], [], []
    managers: list[tuple[int, str]] = []
    gone: list[int] = []
    for entry in chunk:
        values = _fields(entry, depts, now)
        mark = digest(entry, values["department"])
        row = known.get(entry.user_id)
        if row is not None:
            if not entry.active:  # listed as left (WeCom status 5, disabled 2)
                if row.left_at is None:
                    identity_updates.append(dict(b_id=row.id, digest=mark, left_at=now))
                    gone.append(row.employee_id)
                continue
            managers.append((row.employee_id, entry.manager_user_id))
            if row.digest == mark and row.left_at is None:
                continue
            back = {"active": True, "left_at": None} if row.emp_left is not None and not row.active else {}
            employee_updates.append(dict(b_id=row.employee_id, **values, **back))
            identity_updates.append(dict(b_id=row.id, digest=mark, left_at=None))
            report.people_changed += 1
            report.recheck_ids.append(row.employee_id)
            continue
        if not entry.active:
            continue  # never seen, already gone: nothing to record
        match = _match(links, values)
        if match is not None:
            _forget(links, match)
            employee_updates.append(dict(b_id=match, **values))
            new_identities.append(dict(platform=platform, user_id=entry.user_id[:128], employee_id=match,
                                       created_at=now, digest=mark, left_at=None))
            managers.append((match, entry.manager_user_id))
            report.people_linked += 1
            continue
        new_people.append((entry, values, mark))
    _update_rows(session, EMP, employee_updates)
    _update_rows(session, IDN, identity_updates)
    if new_people:
        rows = [dict(values, active=True, created_at=now, manager_id=None, left_at=None, handed_over_at=None,
                     merged_into_id=None) for _, values, _ in new_people]
        created = session.execute(insert(EMP).returning(EMP.c.id, sort_by_parameter_order=True), rows).scalars().all()
        for (entry, _, mark), employee_id in zip(new_people, created):
            new_identities.append(dict(platform=platform, user_id=entry.user_id[:128], employee_id=employee_id,
                                       created_at=now, digest=mark, left_at=None))
            managers.append((employee_id, entry.manager_user_id))
        report.people_added += len(new_people)
    if new_identities:
        session.execute(insert(IDN), new_identities)
    if gone:
        report.left_ids += _leave(session, platform, gone, now=now)
        report.people_left = len(report.left_ids)
    return managers


def _link_candidates(session: Session, platform: str, fresh: list[DirectoryEntry]) -> dict[str, dict[str, list[int]]]:
    """{field: {value: [employee ids]}} for active employees with no identity on `platform` yet."""
    wanted = {"mobile": {_mobile(e.mobile) for e in fresh if _mobile(e.mobile)},
              "email": {e.email.strip().lower() for e in fresh if e.email.strip()},
              "job_number": {e.job_number.strip() for e in fresh if e.job_number.strip()}}
    out: dict[str, dict[str, list[int]]] = {name: {} for name in wanted}
    has_identity = select(IDN.c.employee_id).where(IDN.c.platform == platform, IDN.c.employee_id == EMP.c.id).exists()
    for name, values in wanted.items():
        if not values:
            continue
        column = EMP.c[name]
        for row in session.execute(select(EMP.c.id, column).where(column.in_(values), EMP.c.active.is_(True),
                                                                   EMP.c.merged_into_id.is_(None), ~has_identity)):
            out[name].setdefault(row[1], []).append(row.id)
    return out


def _match(links: dict[str, dict[str, list[int]]], values: dict) -> int | None:
    for name in ("mobile", "email", "job_number"):  # in this order: a mobile is the surest
        found = links[name].get(values[name]) if values[name] else None
        if found and len(found) == 1:
            return found[0]
    return None


def _forget(links: dict[str, dict[str, list[int]]], employee_id: int) -> None:
    for table in links.values():
        for ids in table.values():
            if employee_id in ids:
                ids.remove(employee_id)


def _update_rows(session: Session, table, rows: list[dict]) -> None:
    """One executemany per set of columns (rows of one kind share theirs)."""
    by_shape: dict[tuple, list[dict]] = {}
    for row in rows:
        by_shape.setdefault(tuple(sorted(row)), []).append(row)
    for shape, group in by_shape.items():
        session.execute(update(table).where(table.c.id == bindparam("b_id"))
                        .values({k: bindparam(k) for k in shape if k != "b_id"}), group)


def _set_managers(session: Session, platform: str, pairs: list[tuple[int, str]]) -> int:
    """Point each employee at their manager's row (the manager may have been created in a later chunk)."""
    changed = 0
    for chunk in _chunks(iter(pairs), CHUNK):
        uids = {uid for _, uid in chunk if uid}
        by_uid = {r[0]: r[1] for r in session.execute(select(IDN.c.user_id, IDN.c.employee_id)
                                                      .where(IDN.c.platform == platform, IDN.c.user_id.in_(uids)))} \
            if uids else {}
        current = {r[0]: r[1] for r in session.execute(select(EMP.c.id, EMP.c.manager_id)
                                                       .where(EMP.c.id.in_([e for e, _ in chunk])))}
        others = _answer_elsewhere(session, platform, [e for e, _ in chunk])
        rows = []
        for employee_id, uid in chunk:
            if employee_id in others:
                continue
            manager = by_uid.get(uid) if uid else None
            if manager == employee_id:
                manager = None
            if current.get(employee_id) != manager:
                rows.append(dict(b_id=employee_id, manager_id=manager))
        _update_rows(session, EMP, rows)
        changed += len(rows)
    return changed


def _answer_elsewhere(session: Session, platform: str, employee_ids: list[int]) -> set[int]:
    """Of these employees, those whose manager another platform decides: someone on both platforms
    takes their manager from the platform they were first known on, so two directories that
    disagree do not flip it back and forth on every sync."""
    first = (select(IDN.c.employee_id, func.min(IDN.c.id).label("first_id"))
             .where(IDN.c.employee_id.in_(employee_ids)).group_by(IDN.c.employee_id).subquery())
    return set(session.execute(select(IDN.c.employee_id).join(first, first.c.first_id == IDN.c.id)
                               .where(IDN.c.platform != platform)).scalars())


def _apply_departures(session: Session, platform: str, seen: set[str], *, now: datetime, report: SyncReport,
                      allow_mass_leave: bool) -> None:
    listed = session.execute(select(IDN.c.id, IDN.c.user_id, IDN.c.employee_id)
                             .where(IDN.c.platform == platform, IDN.c.left_at.is_(None),
                                    IDN.c.digest != "")).all()  # "" : never in a listing (first contact only)
    gone = [r for r in listed if r.user_id not in seen]
    if not gone:
        return
    if not allow_mass_leave and (not seen or (len(gone) >= MASS_LEAVE_MIN and len(gone) > MASS_LEAVE_SHARE * len(listed))):
        report.held_back = (f"{len(gone)} of {len(listed)} people would leave at once; check the app's visible "
                            "range, or run again with --allow-mass-leave 如确有大批离职请加 --allow-mass-leave")
        return
    for chunk in _chunks(iter(gone), CHUNK):
        _update_rows(session, IDN, [dict(b_id=r.id, left_at=now) for r in chunk])
        report.left_ids += _leave(session, platform, [r.employee_id for r in chunk], now=now)
    report.people_left = len(report.left_ids)


def _leave(session: Session, platform: str, employee_ids: list[int], *, now: datetime) -> list[int]:
    """Employees whose last listed identity just went: inactive now, announced to the admins."""
    from workflows import directory_leavers

    still_listed = select(IDN.c.employee_id).where(IDN.c.employee_id == EMP.c.id, IDN.c.left_at.is_(None)).exists()
    leaving = session.execute(select(EMP.c.id).where(EMP.c.id.in_(employee_ids), EMP.c.active.is_(True),
                                                     ~still_listed)).scalars().all()
    if leaving:
        session.execute(update(EMP).where(EMP.c.id.in_(leaving)).values(active=False, left_at=now))
        session.expire_all()  # ORM copies of these rows (an admin's own session object) are stale now
        for employee_id in leaving:
            directory_leavers.announce(session, session.get(Employee, employee_id), platform=platform, now=now)
    return list(leaving)


# -- one person (events, first contact) ------------------------------------------------------------


def apply_one(session: Session, platform: str, entry: DirectoryEntry, *, now: datetime | None = None) -> Employee | None:
    """What the directory says about one user, written as a sync writes it; a manager not yet known is
    created (and read in turn by a directory_sync row) so the link is never lost. A user listed as
    gone leaves (None if Banli never knew them)."""
    from workflows.identity import employee_for

    now = now or utcnow()
    if not entry.active:
        leave_one(session, platform, entry.user_id, now=now)
        return session.execute(select(Employee).join(Identity, Identity.employee_id == Employee.id)
                               .where(Identity.platform == platform, Identity.user_id == entry.user_id)).scalars().first()
    depts = {r.dept_id: (r.id, r.name) for r in session.execute(
        select(DEPT.c.id, DEPT.c.dept_id, DEPT.c.name)
        .where(DEPT.c.platform == platform, DEPT.c.dept_id.in_(list(entry.department_ids))))} if entry.department_ids else {}
    report = SyncReport(platform)
    session.flush()
    managers = _apply_chunk(session, platform, [entry], depts, now=now, report=report)
    merge_duplicates(session, platform, report.recheck_ids, now=now)
    employee = employee_for(session, platform, entry.user_id)[0]
    session.refresh(employee)
    if managers and _answer_elsewhere(session, platform, [employee.id]):
        pass  # their manager comes from the platform they were first known on
    elif managers and entry.manager_user_id and entry.manager_user_id != entry.user_id:
        manager = employee_for(session, platform, entry.manager_user_id)[0]
        if employee.manager_id != manager.id:
            employee.manager_id = manager.id
            session.add(employee)
    elif managers and not entry.manager_user_id and employee.manager_id is not None:
        employee.manager_id = None
        session.add(employee)
    session.flush()
    return employee


def rename_user(session: Session, platform: str, old_id: str, new_id: str) -> bool:
    """A platform user id changed (WeCom update_user with NewUserID): the identity follows."""
    taken = session.execute(select(IDN.c.id).where(IDN.c.platform == platform, IDN.c.user_id == new_id)).first()
    if taken:
        return False
    return bool(session.execute(update(IDN).where(IDN.c.platform == platform, IDN.c.user_id == old_id)
                                .values(user_id=new_id[:128])).rowcount)


def leave_one(session: Session, platform: str, user_id: str, *, now: datetime) -> list[int]:
    """The directory says `user_id` left (a delete_user / user_leave_org event)."""
    row = session.execute(select(IDN.c.id, IDN.c.employee_id)
                          .where(IDN.c.platform == platform, IDN.c.user_id == user_id, IDN.c.left_at.is_(None))).first()
    if row is None:
        return []
    session.flush()
    session.execute(update(IDN).where(IDN.c.id == row.id).values(left_at=now))
    return _leave(session, platform, [row.employee_id], now=now)


# -- one person, two rows ----------------------------------------------------------------------------


def merge_duplicates(session: Session, platform: str, employee_ids: list[int], *, now: datetime) -> int:
    """Employees of `platform` whose entry just changed may now show they are someone Banli knows
    from the other platform: a row created on each side before the mobile, email or job number was
    known. Exactly one active employee with no identity on `platform` sharing the value (mobile
    first) is the same person; the two become one the way `banli employees link` does it
    (workflows/identity.link_identities: every reference moves, the newer row stays only as a merged,
    inactive one). Returns how many were merged."""
    from workflows import audit
    from workflows.identity import link_identities

    merged = 0
    candidates = _may_have_twin(session, platform, list(dict.fromkeys(employee_ids)))
    if candidates:
        session.flush()
        session.expire_all()  # the rows were just written with Core UPDATEs: ORM copies are stale
    for employee_id in candidates:
        person = session.get(Employee, employee_id)
        if person is None or not person.active or person.merged_into_id is not None:
            continue
        platforms = set(session.execute(select(IDN.c.platform).where(IDN.c.employee_id == person.id)).scalars())
        if platforms != {platform}:
            continue  # already on both platforms (or on none): nothing to find
        twin = _twin(session, platform, person)
        if twin is None:
            continue
        keep, other = (twin, person) if twin.id < person.id else (person, twin)
        moved = link_identities(session, keep, other)
        audit.record(session, actor=None, action="employee.link", subject=f"employee:{keep.id}", platform=platform,
                     detail={"merged": other.id, "references": moved, "by": "directory"}, at=now)
        merged += 1
    return merged


def _may_have_twin(session: Session, platform: str, employee_ids: list[int]) -> list[int]:
    """Of these, the ones sharing a mobile, email or job number with an active employee who has no
    identity on `platform`: one statement per CHUNK, so a sync where everyone changed stays set-based."""
    other = EMP.alias("other")
    on_platform = select(IDN.c.employee_id).where(IDN.c.employee_id == other.c.id, IDN.c.platform == platform).exists()
    shared = ((EMP.c.mobile != "") & (other.c.mobile == EMP.c.mobile)) | \
             ((EMP.c.email != "") & (other.c.email == EMP.c.email)) | \
             ((EMP.c.job_number != "") & (other.c.job_number == EMP.c.job_number))
    found: set[int] = set()
    for chunk in _chunks(iter(employee_ids), CHUNK):
        found |= set(session.execute(
            select(EMP.c.id).join(other, shared & (other.c.id != EMP.c.id))
            .where(EMP.c.id.in_(chunk), EMP.c.active.is_(True), other.c.active.is_(True),
                   other.c.merged_into_id.is_(None), ~on_platform).distinct()).scalars())
    return [e for e in employee_ids if e in found]


def _twin(session: Session, platform: str, person: Employee) -> Employee | None:
    on_platform = select(IDN.c.employee_id).where(IDN.c.employee_id == EMP.c.id, IDN.c.platform == platform).exists()
    for name in ("mobile", "email", "job_number"):
        value = getattr(person, name)
        if not value:
            continue
        found = session.execute(select(EMP.c.id).where(EMP.c[name] == value, EMP.c.id != person.id,
                                                       EMP.c.active.is_(True), EMP.c.merged_into_id.is_(None),
                                                       ~on_platform).limit(2)).scalars().all()
        if len(found) == 1:
            return session.get(Employee, found[0])
        if found:
            return None  # two candidates: an admin decides (banli employees link)
    return None


# -- tags → roles ----------------------------------------------------------------------------------


def sync_tags(session: Session, platform: str, tags: list[DirectoryTag], *, now: datetime,
              report: SyncReport | None = None, only_roles: set[str] | None = None) -> SyncReport:
    """Roles from the platform's tags (WeCom) or roles (DingTalk) whose name is a Banli role's
    (财务, 会计, finance …, workflows/roles.py): their members hold it, members of a tagged
    department (sub-departments too) as well. The roles this platform's directory granted before
    and no longer says are taken away; roles an admin or BANLI_ADMINS gave are never touched.
    `only_roles`: a change event re-read the tags of these roles only (nothing else may be revoked)."""
    from workflows import roles

    report = report or SyncReport(platform)
    by_user = {r.user_id: r.employee_id for r in session.execute(
        select(IDN.c.user_id, IDN.c.employee_id).join(EMP, EMP.c.id == IDN.c.employee_id)
        .where(IDN.c.platform == platform, IDN.c.left_at.is_(None), EMP.c.active.is_(True)))}
    wanted: set[tuple[int, str]] = set()
    for tag in tags:
        role = roles.role_id(tag.name)
        if role is None:
            if tag.name and tag.name not in report.unmatched_tags:
                report.unmatched_tags.append(tag.name)
            continue
        if only_roles is not None and role not in only_roles:
            continue
        members = {by_user[u] for u in tag.user_ids if u in by_user} | _department_members(session, platform,
                                                                                           tag.dept_ids)
        wanted |= {(employee_id, role) for employee_id in members}
    done = roles.apply_directory(session, platform, wanted, only_roles=only_roles, at=now)
    report.roles_granted += len(done.granted)
    report.roles_revoked += len(done.revoked)
    report.kept_last_admin += len(done.kept_last_admin)
    return report


def _department_members(session: Session, platform: str, dept_ids: tuple[str, ...]) -> set[int]:
    """Active employees of this platform whose department is one of these or under one of them."""
    if not dept_ids:
        return set()
    rows = session.execute(select(DEPT.c.id, DEPT.c.dept_id, DEPT.c.parent_dept_id)
                           .where(DEPT.c.platform == platform, DEPT.c.active.is_(True))).all()
    children: dict[str, list[str]] = {}
    for row in rows:
        children.setdefault(row.parent_dept_id, []).append(row.dept_id)
    wanted, queue = set(), [str(d) for d in dept_ids]
    while queue:
        dept = queue.pop()
        if dept not in wanted:
            wanted.add(dept)
            queue += children.get(dept, [])
    row_ids = [r.id for r in rows if r.dept_id in wanted]
    if not row_ids:
        return set()
    on_platform = select(IDN.c.employee_id).where(IDN.c.employee_id == EMP.c.id, IDN.c.platform == platform,
                                                  IDN.c.left_at.is_(None)).exists()
    return set(session.execute(select(EMP.c.id).where(EMP.c.department_id.in_(row_ids), EMP.c.active.is_(True),
                                                      on_platform)).scalars())


# -- helpers ---------------------------------------------------------------------------------------


def _unique(people: Iterable[DirectoryEntry]) -> Iterator[DirectoryEntry]:
    """Each user once (WeCom lists someone under each of their departments)."""
    seen: set[str] = set()
    for entry in people:
        if entry.user_id and entry.user_id not in seen:
            seen.add(entry.user_id)
            yield entry


def _chunks(items: Iterable, size: int) -> Iterator[list]:
    chunk: list = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
