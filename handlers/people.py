"""People away and people leaving.

    委托 李四 11月25日到11月30日     my approvals go to 李四 for those days (on my behalf)
    取消委托
    离职 张三 交接给 李四            (admins) tasks and customers to 李四
    离职 张三 客户进公海             (admins) tasks to 张三's manager, customers to the 公海
"""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo

from cards import Button, Card
from handlers import refusals
from handlers.router import Abandon, Context, Routes
from storage.models import Employee
from workflows import directory_leavers, leavers, roles
from workflows.identity import employees_named
from workflows.approvals import away
from workflows.followups import day_text
from workflows.when import parse_when

routes = Routes()

HELP_BUTTON = Button("帮助", "help", command="帮助")


@routes.command("委托", "代理审批", "请人代批", prefix=True)
def delegate(ctx: Context) -> Card:
    words = re.sub(r"^(委托|代理审批|请人代批)\s*", "", ctx.event.text.strip())
    name, _, when_words = words.partition(" ")
    person = person_named(ctx, name)
    when = parse_when(when_words, ctx.now, ctx.timezone) if when_words else None
    if isinstance(person, Card):
        return person
    if when is None:
        return Card(title="委托哪几天？", body="比如「委托 李四 11月25日到11月30日」或「委托 李四 下周」。", buttons=(HELP_BUTTON,))
    zone = ZoneInfo(ctx.timezone)
    first = when.start.astimezone(zone).date()
    last = when.end.astimezone(zone).date() if when.end else first
    try:
        away.delegate(ctx.session, ctx.employee, person, first, last, platform=ctx.event.platform, now=ctx.now)
    except ValueError as problem:
        return Card(title="没有委托", body=str(problem), buttons=(HELP_BUTTON,))
    return Card(title="已委托", body=f"{day_text(first)}到{day_text(last)}，给你的审批会交给{person.name}代批，记录为代你审批。",
                footer="提前回来了就发「取消委托」")


@routes.command("取消委托", "结束委托")
def end_delegation(ctx: Context) -> Card:
    today = ctx.now.astimezone(ZoneInfo(ctx.timezone)).date()
    ended = away.end_delegations(ctx.session, ctx.employee, today, platform=ctx.event.platform, now=ctx.now)
    return Card(title="已取消委托" if ended else "没有委托", body="从今天起审批回到你这里。" if ended else "你现在没有委托别人代批。")


@routes.command("离职", "办理离职", prefix=True)
def depart(ctx: Context) -> Card:
    if not roles.is_admin(ctx.session, ctx.employee):
        return refusals.refuse(ctx, attempted="employee.depart", why="not an admin", subject="employees",
                       title="只有管理员能办", body="员工离职交接由管理员办理。")
    words = re.sub(r"^(办理离职|离职)\s*", "", ctx.event.text.strip())
    to_pool = bool(re.search(r"客户(进|回|到|放)?公海", words))
    successor_name = re.search(r"交接给\s*(\S+)", words)
    name = re.split(r"\s", words, maxsplit=1)[0] if words else ""
    leaver = person_named(ctx, name, include_departed=True)
    successor = person_named(ctx, successor_name.group(1)) if successor_name else None
    for found in (leaver, successor):
        if isinstance(found, Card):
            return found
    if successor is None and not to_pool:
        return Card(title="客户交给谁？", body=f"请说清楚：「离职 {name} 交接给 李四」或「离职 {name} 客户进公海」。",
                    buttons=(HELP_BUTTON,))
    try:
        done = leavers.mark_departed(ctx.session, leaver, by=ctx.employee, successor=successor, customers_to_pool=to_pool,
                                     now=ctx.now, tz=ctx.timezone, platform=ctx.event.platform)
    except ValueError as problem:  # found midway (a task nobody can take): undo the whole hand-over
        raise Abandon(Card(title="没有办理", body=str(problem), buttons=(HELP_BUTTON,))) from None
    # Gone from the directory first: every admin's hand-over card now says it is done.
    directory_leavers.refresh_cards(ctx.session, leaver, directory_leavers.done_card(
        leaver, ctx.employee, done.tasks_to, done.customers_to))
    tasks = f"{done.tasks} 个待审批交给{done.tasks_to.name}" if done.tasks else "没有待审批"
    owners = f"交给{done.customers_to.name}" if done.customers_to else "进了公海"
    return Card(title=f"已办理离职 · {leaver.name}", body=f"{tasks}；{done.customers} 个客户{owners}。\n{leaver.name}之后发消息会收到已停用的提示。")


def person_named(ctx: Context, name: str, *, include_departed: bool = False) -> Employee | Card:
    """The one colleague called `name`, or the card that says why there is not exactly one."""
    people = employees_named(ctx.session, name, include_departed=include_departed)
    if len(people) == 1:
        return people[0]
    if not people:
        return Card(title="找不到这位同事", body=f"没有叫「{name}」的同事，请写全名。", buttons=(HELP_BUTTON,))
    return Card(title="有重名", body=f"有 {len(people)} 位叫「{name}」，请联系管理员区分。", buttons=(HELP_BUTTON,))
