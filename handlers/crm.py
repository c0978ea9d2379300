"""客户跟进 from one message: `拜访 腾迅 聊了报价 下周三下午再跟进`.

method word → customer (fuzzy, homophones forgiven) → content → next follow-up time, then a
confirmation card that echoes what was understood, with 撤销. An unsure customer name gets the top
three as buttons; a tap carries the original message's delivery key, so the visit is logged from
that message exactly once however often the button is tapped. A message that leaves something out
(`拜访`, `拜访 腾讯`) opens the guided form in handlers/visit.py, which logs through the same path.
"""

from __future__ import annotations

from dataclasses import replace

from cards import Button, Card
from handlers import visit
from handlers.menu import MENU_BUTTONS
from handlers.router import Context, Routes
from storage.models import FollowUp
from workflows import customers, followups, visit_text
from workflows.followups import TooLate

routes = Routes()

METHODS = visit_text.METHODS
EXAMPLE = "拜访 腾讯 聊了报价 下周三下午再跟进"


@routes.command(*METHODS, prefix=True)
def log_visit(ctx: Context) -> Card:
    said = visit_text.split(ctx.session, ctx.event.text, owner_id=ctx.employee.id)
    method, query, content, found = said.method, said.query, said.content, said.found
    if not query:
        return visit.begin(ctx, method)
    if found.decision == "choose":
        if not content:
            return visit.begin(ctx, method, candidates=found.candidates)
        return _choose(query, found, ctx.event.event_id)
    if found.decision == "create":
        return Card(title="没找到这个客户", body=f"客户名单里没有「{query}」。请检查名称，或发完整的公司名。",
                    buttons=MENU_BUTTONS[:1] + (Button("帮助", "help", command="帮助"),))
    customer = customers.get(ctx.session, found.customer_id)
    if not content:
        return visit.begin(ctx, method, customer=customer)  # asks only what is missing
    return visit.record(ctx, customer, method, content)


@routes.action("crm.pick")
def pick_customer(ctx: Context) -> Card:
    """A tap on one of the offered customers: log the original message against it."""
    customer_id, _, event_id = ctx.event.value.partition(" ")
    original = customers.original_text(ctx.session, ctx.event.platform, event_id, ctx.event.sender)
    if not customer_id.isdigit() or original is None:
        return Card(title="这个按钮已失效", body="请重新发送跟进记录。", buttons=MENU_BUTTONS)
    if followups.logged_from(ctx.session, visit.source_key(ctx.event.platform, event_id)) is not None:
        return Card(title="已经记过了", body="这条跟进已经记录，不用再点。")
    said = visit_text.split(ctx.session, original, owner_id=ctx.employee.id)
    method, content = said.method, said.content
    customer = customers.get(ctx.session, int(customer_id))
    if customer is None:
        return Card(title="这个按钮已失效", body="这家客户已经不在名单里了。", buttons=MENU_BUTTONS)
    source = replace(ctx.event, event_id=event_id)
    return visit.record(replace(ctx, event=source), customer, method, content)


@routes.command("撤销", "撤回")
@routes.action("crm.undo")
def undo(ctx: Context) -> Card:
    target = int(ctx.event.value) if ctx.event.value.isdigit() else followups.latest_id(ctx.session, ctx.employee)
    try:
        undone = followups.undo_last(ctx.session, employee=ctx.employee, followup_id=target or 0, now=ctx.now,
                                     platform=ctx.event.platform, tz=ctx.timezone)
    except TooLate:
        return Card(title="撤销不了", body="只能撤销自己最近一条记录，而且要在10分钟内。", buttons=MENU_BUTTONS)
    return Card(title="已撤销", body=f"刚才对{followups.short_name(undone.customer)}的跟进记录已删除，提醒也已取消。")


@routes.action("crm.snooze")
def snooze(ctx: Context) -> Card:
    followup_id, _, how = ctx.event.value.partition(":")
    until = followups.snooze_target(ctx.session, ctx.now, how, ctx.timezone)
    moved = followups.snooze(ctx.session, employee=ctx.employee, followup_id=int(followup_id or 0),
                             until=until, tz=ctx.timezone, platform=ctx.event.platform) \
        if followup_id.isdigit() and until else None
    if moved is None:
        return Card(title="这个按钮已失效", body="这条提醒不是你的，或者已经处理过了。")
    return Card(title="已推迟", body=f"改到 {followups.when_text(until, ctx.timezone)} 提醒你。")


@routes.action("crm.done")
def followed_up(ctx: Context) -> Card:
    """已跟进 on a reminder: the visit form on that reminder's customer, so the next message is the
    note about it. (Cards sent before the button named a record keep the general answer.)"""
    record = ctx.session.get(FollowUp, int(ctx.event.value)) if ctx.event.value.isdigit() else None
    mine = record is not None and record.employee_id == ctx.employee.id  # a reminder goes to its author
    customer = customers.get(ctx.session, record.customer_id) if mine else None
    if customer is None:
        return Card(title="好的", body=f"把这次跟进的情况发给我吧，比如「{EXAMPLE}」。")
    return visit.begin(ctx, record.method or "拜访", customer=customer)


# -- helpers ------------------------------------------------------------------------------------


def _choose(query: str, found, event_id: str) -> Card:
    buttons = tuple(Button(c.name[:10], "crm.pick", f"{c.customer_id} {event_id}", style="primary")
                    for c in found.candidates)
    return Card(title="您说的是哪家？", body=f"「{query}」可能是下面几家，点一下就记上：",
                fields=tuple((f"{i + 1}", c.name[:26]) for i, c in enumerate(found.candidates)),
                buttons=buttons)
