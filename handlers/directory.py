"""Directory change events, and the admins' one-tap hand-over of someone who left.

A directory event (`InboundEvent(kind="directory", action=<the platform's event type>, raw=<its
data>)`, see bot/dingtalk/events.py) is the platform's news, not a person's message: it has no
employee behind it and never gets a chat reply. WeCom's `change_contact` and DingTalk's address-book
events map onto the same four moves: read a user again, a user left, read a department again, a
department went.
"""

from __future__ import annotations

from typing import Any

from cards import Button, Card
from handlers import refusals
from handlers.router import Abandon, Context, Routes
from storage import outbox
from storage.db import fit_key
from storage.models import Employee
from workflows import directory, directory_leavers, leavers

routes = Routes()

# The platform's event type → what it means here (docs/wecom.md §5.5, docs/dingtalk.md §5.3).
USER_CHANGED = {"create_user", "update_user", "user_add_org", "user_modify_org", "user_active_org"}
USER_LEFT = {"delete_user", "user_leave_org"}
DEPARTMENT_CHANGED = {"create_party", "update_party", "org_dept_create", "org_dept_modify"}
DEPARTMENT_REMOVED = {"delete_party", "org_dept_remove"}
# A tag's or role's members or name changed: the roles it maps to are read again. WeCom names the
# tag (TagId); DingTalk's label_* events are read as "some role changed".
TAGS_CHANGED = {"update_tag", "label_user_change", "label_conf_add", "label_conf_del", "label_conf_modify"}


@routes.kind("directory")
def directory_event(ctx: Context) -> None:
    """Apply one directory event (ctx.employee is None: nobody sent it)."""
    event, action = ctx.event, ctx.event.action
    if action in USER_CHANGED:
        renamed = _wecom_rename(ctx)
        for user_id in renamed or user_ids(event.raw):
            outbox.add(ctx.session, key=fit_key(f"directory_sync:{event.platform}:{user_id}:{event.event_id}"),
                       kind="directory_sync", platform=event.platform, recipient=user_id, payload={})
    elif action in USER_LEFT:
        for user_id in user_ids(event.raw):
            directory.leave_one(ctx.session, event.platform, user_id, now=ctx.now)
    elif action in DEPARTMENT_CHANGED:
        for dept_id in dept_ids(event.raw):
            outbox.add(ctx.session, key=fit_key(f"directory_department:{event.platform}:{dept_id}:{event.event_id}"),
                       kind="directory_department", platform=event.platform, recipient=dept_id, payload={})
    elif action in DEPARTMENT_REMOVED:
        for dept_id in dept_ids(event.raw):
            directory.remove_department(ctx.session, event.platform, dept_id, now=ctx.now)
    elif action in TAGS_CHANGED:
        tag_id = str(event.raw.get("TagId") or "")[:128]
        outbox.add(ctx.session, key=fit_key(f"directory_tags:{event.platform}:{tag_id}:{event.event_id}"),
                   kind="directory_tags", platform=event.platform, recipient=tag_id, payload={})
    return None


def user_ids(raw: dict[str, Any]) -> list[str]:
    """WeCom: `UserID` (one); DingTalk: `UserId` (a list; Stream mode spells it `userId`)."""
    return _ids(raw.get("UserID") or raw.get("UserId") or raw.get("userId"))


def dept_ids(raw: dict[str, Any]) -> list[str]:
    """WeCom: `Id` (one); DingTalk: `DeptId` (a list; Stream mode `deptId`)."""
    return _ids(raw.get("Id") or raw.get("DeptId") or raw.get("deptId"))


def _ids(value: Any) -> list[str]:
    if value is None or value == "":
        return []
    items = value if isinstance(value, list) else [value]
    return [str(item)[:128] for item in items if str(item).strip()]


def _wecom_rename(ctx: Context) -> list[str]:
    """WeCom update_user with `NewUserID`: the account was renamed; the identity follows it."""
    new_id = str(ctx.event.raw.get("NewUserID") or "")
    old_ids = user_ids(ctx.event.raw)
    if not new_id or not old_ids:
        return []
    directory.rename_user(ctx.session, ctx.event.platform, old_ids[0], new_id)
    return [new_id]


# -- the hand-over card's buttons --------------------------------------------------------------------


@routes.action(directory_leavers.HANDOVER)
def hand_over(ctx: Context) -> Card:
    leaver_id, _, how = ctx.event.value.partition(":")
    leaver = _open_handover(ctx, leaver_id)
    if isinstance(leaver, Card):
        return leaver
    manager = ctx.session.get(Employee, leaver.manager_id) if leaver.manager_id else None
    if how == "manager" and (manager is None or not manager.active):
        return Card(title="没有上级可交", body=f"{leaver.name}没有在职的上级，请点「选择接手人」。",
                    buttons=(_pick_button(leaver),))
    successor = manager if how == "manager" else None
    try:
        done = leavers.mark_departed(ctx.session, leaver, by=ctx.employee, successor=successor,
                                     customers_to_pool=how != "manager", now=ctx.now, tz=ctx.timezone,
                                     platform=ctx.event.platform)
    except ValueError as problem:  # a task nobody can take: undo the whole hand-over
        raise Abandon(Card(title="没有办理", body=str(problem), buttons=(_pick_button(leaver),))) from None
    card = directory_leavers.done_card(leaver, ctx.employee, done.tasks_to, done.customers_to)
    directory_leavers.refresh_cards(ctx.session, leaver, card)
    return Card(title=f"已交接 · {leaver.name}", body=card.body)


@routes.action(directory_leavers.PICK)
def pick_successor(ctx: Context) -> Card:
    leaver = _open_handover(ctx, ctx.event.value)
    if isinstance(leaver, Card):
        return leaver
    return Card(title=f"{leaver.name}的工作交给谁？",
                body=f"请发「离职 {leaver.name} 交接给 姓名」，客户和待审批都交给这位同事。")


def _open_handover(ctx: Context, value: str) -> Employee | Card:
    """The leaver a hand-over button names, if an admin tapped it and the hand-over is still open;
    otherwise the answer (not found, refused and audited, or already done)."""
    leaver = _leaver(ctx, value)
    if isinstance(leaver, Card):
        return leaver
    if not directory_leavers.is_admin(ctx.session, ctx.employee):
        return refusals.refuse(ctx, attempted="employee.depart", why="not an admin", subject=f"employee:{leaver.id}",
                               title="只有管理员能办", body="员工离职交接由管理员办理。")
    if leaver.handed_over_at is not None:
        return _already(ctx, leaver)
    return leaver


def _leaver(ctx: Context, value: str) -> Employee | Card:
    leaver = ctx.session.get(Employee, int(value)) if value.strip().isdigit() else None
    if leaver is None:
        return Card(title="找不到这位同事", body="这张卡片已经失效。")
    return leaver


def _already(ctx: Context, leaver: Employee) -> Card:
    return Card(title=f"{leaver.name} 已交接", body=f"{leaver.name}的工作已经交接过了，不用再办。")


def _pick_button(leaver: Employee) -> Button:
    return Button("选择接手人", directory_leavers.PICK, str(leaver.id))
