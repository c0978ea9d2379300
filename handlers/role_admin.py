"""`角色`: admins say who is 财务, 法务, 管理员 … in chat (workflows/roles.py holds the roles).

    角色 张会计 财务            give 张会计 the role 财务 (several at once: 角色 张会计 财务 法务)
    角色 张会计 去掉 财务        take it away (never the last admin's 管理员)
    角色 张会计                 what 张会计 holds
    角色 列表 (or 角色)          everyone holding a role, by role

Two colleagues with one name get a button each (with their department); the tap carries the
employee id, so the choice is exact.
"""

from __future__ import annotations

import re

from cards import Button, Card
from handlers import refusals
from handlers.router import Abandon, Context, Routes
from storage.models import Employee
from workflows import roles
from workflows.identity import employees_named

routes = Routes()

HELP_BUTTON = Button("帮助", "help", command="帮助")
LIST_BUTTON = Button("角色列表", "roles.list", command="角色 列表")
USAGE = "角色 张会计 财务 · 角色 张会计 去掉 财务 · 角色 张会计 · 角色 列表"
REMOVE_WORDS = ("去掉", "去除", "取消", "删除", "移除", "撤销")
VERBS = {"grant": "设为", "revoke": "去掉", "show": "查看"}


@routes.command("角色", "设置角色", prefix=True)
def role_command(ctx: Context) -> Card:
    refused = _refuse_non_admin(ctx)
    if refused is not None:
        return refused
    words = re.sub(r"^(设置角色|角色)\s*", "", ctx.event.text.strip()).split()
    if not words or words[0] in ("列表", "全部", "清单"):
        return _listing(ctx)
    name, rest = words[0], words[1:]
    verb = "show"
    if rest and rest[0] in REMOVE_WORDS:
        verb, rest = "revoke", rest[1:]
    elif rest:
        verb = "grant"
    if verb == "revoke" and not rest:
        return Card(title="去掉哪个角色？", body=f"比如「角色 {name} 去掉 财务」。可用角色：{roles.names()}",
                    buttons=(LIST_BUTTON,))
    wanted = _role_ids(rest)
    if isinstance(wanted, Card):
        return wanted
    people = employees_named(ctx.session, name)
    if not people:
        return Card(title="找不到这位同事", body=f"没有叫「{name}」的同事。请写通讯录里的全名（TA 要先给办理发过消息）。\n"
                                              f"写法：{USAGE}", buttons=(LIST_BUTTON, HELP_BUTTON))
    if len(people) > 1:
        return _which(people, verb, wanted)
    return _act(ctx, people[0], verb, wanted)


@routes.action("roles.person")
def role_by_tap(ctx: Context) -> Card:
    """A tap on one of two same-named colleagues: `<employee id>:<grant|revoke|show>:<role,role>`."""
    refused = _refuse_non_admin(ctx)
    if refused is not None:
        return refused
    person_id, _, rest = ctx.event.value.partition(":")
    verb, _, wanted = rest.partition(":")
    person = ctx.session.get(Employee, int(person_id)) if person_id.isdigit() else None
    chosen = [r for r in wanted.split(",") if r]
    if person is None or not person.active or verb not in VERBS or not all(r in roles.ROLES for r in chosen):
        return Card(title="这个按钮已经失效了", body=f"请重新发一次，比如「{USAGE}」。", buttons=(LIST_BUTTON,))
    return _act(ctx, person, verb, chosen)


@routes.action("roles.list")
def list_by_tap(ctx: Context) -> Card:
    refused = _refuse_non_admin(ctx)
    return refused if refused is not None else _listing(ctx)


# -- helpers ------------------------------------------------------------------------------------


def _refuse_non_admin(ctx: Context) -> Card | None:
    if roles.is_admin(ctx.session, ctx.employee):
        return None
    mine = "、".join(roles.name_of(r) for r in roles.roles_of(ctx.session, ctx.employee)) or "没有设置"
    return refusals.refuse(ctx, attempted="roles", why="not an admin", subject="roles", title="只有管理员能设置角色",
                           body=f"角色（财务、法务、管理员等）由管理员设置。你现在的角色：{mine}。")


def _role_ids(words: list[str]) -> list[str] | Card:
    ids, unknown = [], []
    for word in (w for part in words for w in re.split(r"[、,，/]", part) if w):
        found = roles.role_id(word)
        (ids if found else unknown).append(found or word)
    if unknown:
        return Card(title="没有这个角色", body=f"不认识「{'、'.join(unknown)}」。可用角色：{roles.names()}\n"
                                            f"（也认：老板/CEO=总经理，会计/出纳=财务）", buttons=(LIST_BUTTON,))
    return list(dict.fromkeys(ids))


def _which(people: list[Employee], verb: str, wanted: list[str]) -> Card:
    buttons = tuple(Button(_label(p), "roles.person", f"{p.id}:{verb}:{','.join(wanted)}") for p in people[:5])
    lines = [f"{p.name} · {p.department or '未知部门'}" for p in people]
    return Card(title=f"有 {len(people)} 位叫「{people[0].name}」"[:36], body="是哪一位？\n" + "\n".join(lines),
                buttons=buttons + (LIST_BUTTON,))


def _label(person: Employee) -> str:
    label = f"{person.name}·{person.department}" if person.department else f"{person.name}#{person.id}"
    return label[:10]


def _act(ctx: Context, person: Employee, verb: str, wanted: list[str]) -> Card:
    if verb == "show":
        return _shown(ctx, person, "角色")
    changed, note = [], ""
    for role in wanted:
        if verb == "grant":
            if roles.grant(ctx.session, person, role, by=ctx.employee, platform=ctx.event.platform, at=ctx.now):
                changed.append(role)
            continue
        source = roles.source_of(ctx.session, person, role)
        try:
            if roles.revoke(ctx.session, person, role, by=ctx.employee, platform=ctx.event.platform, at=ctx.now):
                changed.append(role)
        except roles.LastAdmin as problem:  # nothing of this command stays, not even its other roles
            raise Abandon(Card(title="不能去掉最后一位管理员", body=str(problem), buttons=(LIST_BUTTON,))) from None
        if source == "env":
            note = "\n注意：这个管理员角色来自 BANLI_ADMINS；若 TA 还在其中，下次发消息时会恢复，请同时改 BANLI_ADMINS。"
        elif source in roles.DIRECTORY_SOURCES and changed and changed[-1] == role:
            where = "企业微信标签" if source == "wecom" else "钉钉角色"
            note = f"\n注意：这个角色来自{where}；若 TA 还在其中，下次通讯录同步会恢复，请同时在通讯录里去掉。"
    names = "、".join(roles.name_of(r) for r in changed)
    if verb == "grant":
        head = f"已设为{names}" if changed else "没有变化（已经有这些角色）"
    else:
        head = f"已去掉{names}" if changed else "没有变化（本来就没有这个角色）"
    return _shown(ctx, person, head, note)


def _shown(ctx: Context, person: Employee, head: str, note: str = "") -> Card:
    held = "、".join(roles.name_of(r) for r in roles.roles_of(ctx.session, person)) or "没有角色"
    return Card(title=f"{head} · {person.name}"[:36], body=f"{person.name}（{person.department or '未知部门'}）现在的角色：{held}{note}",
                footer="修改已记入审计日志" if head != "角色" else f"写法：{USAGE}"[:60], buttons=(LIST_BUTTON,))


def _listing(ctx: Context) -> Card:
    grouped = roles.holders(ctx.session)
    lines = [f"{roles.name_of(role)}：{'、'.join(p.name for p in people)}" for role, people in grouped.items()]
    body = "\n".join(lines) if lines else "还没有人有角色。"
    return Card(title=f"角色 · {sum(len(p) for p in grouped.values())}项", body=body + f"\n\n写法：{USAGE}",
                footer=f"可用角色：{roles.names()}")
