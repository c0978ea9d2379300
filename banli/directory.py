"""`banli directory sync` and its nightly cron slot: each configured platform's directory, read
through its client, written by workflows/directory.py in one transaction per platform (a platform
error midway leaves that platform as it was)."""

from __future__ import annotations

from typing import Any, Callable

from sqlmodel import Session

from bot.platform import AccessDenied, PlatformError
from storage.db import session_scope
from workflows import directory, roles

# What a platform calls the groups that map to roles, for the summary line.
TAG_WORDS = {"wecom": "标签", "dingtalk": "角色"}


def sync_platform(runtime: Any, session: Session, platform: str, *, progress: Callable[[str], None] = lambda _: None,
                  allow_mass_leave: bool = False) -> directory.SyncReport:
    client = runtime.clients[platform]
    departments = client.directory_departments()
    progress(f"{platform}: {len(departments)} 个部门 departments")
    report = directory.sync(session, platform, departments, client.directory_people(departments), now=runtime.now(),
                            progress=progress, allow_mass_leave=allow_mass_leave)
    sync_roles(runtime, session, platform, report=report)
    return report


def sync_roles(runtime: Any, session: Session, platform: str, *, report: directory.SyncReport | None = None,
               only_roles: set[str] | None = None) -> directory.SyncReport:
    """Roles from the platform's tags / role groups. A platform that will not let the app read them
    (or fails midway) leaves every role as it was, and the report says so: people and departments
    are synced all the same."""
    report = report or directory.SyncReport(platform)
    word = report.tag_word = TAG_WORDS.get(platform, "标签")
    try:
        tags = runtime.clients[platform].directory_tags(named=lambda name: roles.role_id(name) is not None)
    except AccessDenied as exc:
        report.tags_note = (f"没有读取{word}的权限，角色保持不变 (no permission to read {platform} tags: {exc}; "
                            f"grant the contacts permission or widen the app's visible range)")
        return report
    except PlatformError as exc:
        report.tags_note = f"读取{word}失败，角色保持不变 (reading tags failed: {exc})"
        return report
    return directory.sync_tags(session, platform, tags, now=runtime.now(), report=report, only_roles=only_roles)


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
                         "linked": report.people_linked, "left": report.people_left, "held_back": report.held_back,
                         "merged": report.merged, "roles": [report.roles_granted, report.roles_revoked],
                         "tags": report.tags_note}
    return out


def tag_changed(runtime: Any, session: Session, platform: str, tag_id: str = "") -> dict[str, Any]:
    """A tag / role change event (WeCom update_tag with its TagId; DingTalk label_* events, which
    name no role): read the tags again and apply them. With a tag id only the tags naming the same
    Banli role are read, and only that role can change. No permission: nothing changes. Another
    platform error is raised, and the outbox tries again."""
    client = runtime.clients[platform]
    only: set[str] | None = None
    if tag_id and hasattr(client, "directory_tag"):
        try:
            role = roles.role_id(client.directory_tag(tag_id).name)
        except AccessDenied as exc:
            return {"tags": f"denied: {exc}"}
        if role is None:
            return {"tag": tag_id, "role": None}
        only = {role}
    try:
        tags = client.directory_tags(named=lambda name: roles.role_id(name) is not None and
                                     (only is None or roles.role_id(name) in only))
    except AccessDenied as exc:
        return {"tags": f"denied: {exc}"}
    report = directory.sync_tags(session, platform, tags, now=runtime.now(), only_roles=only)
    return {"tag": tag_id, "roles": sorted(only or []), "granted": report.roles_granted,
            "revoked": report.roles_revoked}
