"""`banli directory sync` and its nightly cron slot: each configured platform's directory, read
through its client, written by workflows/directory.py in one transaction per platform (a platform
error midway leaves that platform as it was)."""

from __future__ import annotations

from typing import Any, Callable

from sqlmodel import Session

from storage.db import session_scope
from workflows import directory


def sync_platform(runtime: Any, session: Session, platform: str, *, progress: Callable[[str], None] = lambda _: None,
                  allow_mass_leave: bool = False) -> directory.SyncReport:
    client = runtime.clients[platform]
    departments = client.directory_departments()
    progress(f"{platform}: {len(departments)} 个部门 departments")
    return directory.sync(session, platform, departments, client.directory_people(departments), now=runtime.now(),
                          progress=progress, allow_mass_leave=allow_mass_leave)


def sync_all(runtime: Any, platforms: list[str], *, progress: Callable[[str], None] = lambda _: None,
             allow_mass_leave: bool = False) -> list[directory.SyncReport]:
    """Each platform in a transaction of its own; the hand-over cards it queued are sent at once."""
    reports = []
    for platform in platforms:
        with session_scope(runtime.engine) as session:
            reports.append(sync_platform(runtime, session, platform, progress=progress,
                                         allow_mass_leave=allow_mass_leave))
    return reports


def nightly(runtime: Any, session: Session) -> dict[str, Any]:
    """The cron job: every configured platform that has been synced before, in the cron row's
    transaction. A company's first sync is an admin's explicit `banli directory sync` (they see its
    report); the nightly run keeps it in step and catches any change event that was missed."""
    out: dict[str, Any] = {}
    for platform in sorted(runtime.clients):
        if not directory.synced_before(session, platform):
            out[platform] = "never synced: run `banli directory sync` first"
            continue
        report = sync_platform(runtime, session, platform)
        out[platform] = {"read": report.people_read, "added": report.people_added, "changed": report.people_changed,
                         "linked": report.people_linked, "left": report.people_left, "held_back": report.held_back}
    return out
