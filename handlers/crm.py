"""客户跟进 from one message: `拜访 腾迅 聊了报价 下周三下午再跟进`.

method word → customer (fuzzy, homophones forgiven) → content → next follow-up time, then a
confirmation card that echoes what was understood, with 撤销. An unsure customer name gets the top
three as buttons; a tap carries the original message's delivery key, so the visit is logged from
that message exactly once however often the button is tapped.
"""

from __future__ import annotations

import re
from dataclasses import replace

from cards import Button, Card
from handlers import routes
from handlers.menu import MENU_BUTTONS
from handlers.router import Context
from workflows import customers, followups
from workflows.followups import TooLate
from workflows.when import describe, has_time_word, parse_when, strip_when

METHODS = {"拜访": "拜访", "跟进": "拜访", "见面": "拜访", "电话": "电话", "打电话": "电话", "微信": "微信"}
EXAMPLE = "拜访 腾讯 聊了报价 下周三下午再跟进"
FILLER_TAIL = re.compile(r"[\s，,]*(?:再|再次|继续|到时)?(?:跟进|联系|聊)[。.！!]?$")


@routes.command(*METHODS, prefix=True)
def log_visit(ctx: Context) -> Card:
    method, rest = _split_method(ctx.event.text.strip())
    query, content = _split_customer(rest)
    if not query:
        return _usage(f"{method}哪家客户？")
    found = customers.find(ctx.session, query, owner_id=ctx.employee.id)
    if found.decision == "choose":
        return _choose(query, found, ctx.event.event_id)
    if found.decision == "create":
        return Card(title="没找到这个客户", body=f"客户名单里没有「{query}」。请检查名称，或发完整的公司名。",
                    buttons=MENU_BUTTONS[:1] + (Button("帮助", "help", command="帮助"),))
    return _log(ctx, found.customer_id, method, content)


@routes.action("crm.pick")
def pick_customer(ctx: Context) -> Card:
    """A tap on one of the offered customers: log the original message against it."""
    customer_id, _, event_id = ctx.event.value.partition(" ")
    original = customers.original_text(ctx.session, ctx.event.platform, event_id, ctx.event.sender)
    if not customer_id.isdigit() or original is None:
        return Card(title="这个按钮已失效", body="请重新发送跟进记录。", buttons=MENU_BUTTONS)
    if followups.logged_from(ctx.session, source_key(ctx.event.platform, event_id)) is not None:
        return Card(title="已经记过了", body="这条跟进已经记录，不用再点。")
    method, rest = _split_method(original)
    _, content = _split_customer(rest)
    source = replace(ctx.event, event_id=event_id)
    return _log(replace(ctx, event=source), int(customer_id), method, content)


@routes.command("撤销", "撤回")
@routes.action("crm.undo")
def undo(ctx: Context) -> Card:
    target = int(ctx.event.value) if ctx.event.value.isdigit() else followups.latest_id(ctx.session, ctx.employee)
    try:
        undone = followups.undo_last(ctx.session, employee=ctx.employee, followup_id=target or 0, now=ctx.now)
    except TooLate:
        return Card(title="撤销不了", body="只能撤销自己最近一条记录，而且要在10分钟内。", buttons=MENU_BUTTONS)
    return Card(title="已撤销", body=f"刚才对{followups.short_name(undone.customer)}的跟进记录已删除，提醒也已取消。")


@routes.action("crm.snooze")
def snooze(ctx: Context) -> Card:
    followup_id, _, how = ctx.event.value.partition(":")
    until = followups.snooze_target(ctx.now, how, ctx.timezone)
    moved = followups.snooze(ctx.session, employee=ctx.employee, followup_id=int(followup_id or 0),
                             until=until, tz=ctx.timezone) if followup_id.isdigit() and until else None
    if moved is None:
        return Card(title="这个按钮已失效", body="这条提醒不是你的，或者已经处理过了。")
    return Card(title="已推迟", body=f"改到 {followups.when_text(until, ctx.timezone)} 提醒你。")


@routes.action("crm.done")
def followed_up(ctx: Context) -> Card:
    return Card(title="好的", body=f"把这次跟进的情况发给我吧，比如「{EXAMPLE}」。")


# -- helpers ------------------------------------------------------------------------------------


def source_key(platform: str, event_id: str) -> str:
    return f"{platform}:{event_id}"


def _log(ctx: Context, customer_id: int, method: str, content: str) -> Card:
    customer = customers.get(ctx.session, customer_id)
    if not customers.may_log(ctx.session, ctx.employee, customer):
        owner = customers.owner_name(ctx.session, customer)
        return Card(title="不是你的客户", body=f"{followups.short_name(customer)}由{owner}负责，请联系{owner}或你的经理。")
    when = parse_when(content, ctx.now, ctx.timezone)
    note = strip_when(content, when).strip() if when else content.strip()
    note = FILLER_TAIL.sub("", note)  # "聊了报价 再跟进": the 再跟进 is said by the next-time field
    record = followups.log_followup(ctx.session, employee=ctx.employee, customer=customer, method=method,
                                    content=note, next_at=when.start if when else None, now=ctx.now,
                                    tz=ctx.timezone, source_key=source_key(ctx.event.platform, ctx.event.event_id))
    if when:
        next_text = describe(when, ctx.now)
    elif has_time_word(content):
        next_text = "没看懂时间，请再发一条带时间的，比如「明天下午3点」"
    else:
        next_text = "未设置"
    return Card(
        title=f"已记录 · {followups.short_name(customer)}",
        fields=(("客户", customer.name[:26]), ("方式", method), ("内容", (note or "（无）")[:26]),
                ("下次跟进", next_text[:26])),
        buttons=(Button("撤销", "crm.undo", str(record.id), style="danger"),),
        footer="10分钟内可以撤销",
    )


def _choose(query: str, found, event_id: str) -> Card:
    buttons = tuple(Button(c.name[:10], "crm.pick", f"{c.customer_id} {event_id}", style="primary")
                    for c in found.candidates)
    return Card(title="您说的是哪家？", body=f"「{query}」可能是下面几家，点一下就记上：",
                fields=tuple((f"{i + 1}", c.name[:26]) for i, c in enumerate(found.candidates)),
                buttons=buttons)


def _usage(question: str) -> Card:
    return Card(title="客户跟进", body=f"{question}\n一句话说完就行，比如「{EXAMPLE}」。",
                buttons=(Button("返回菜单", "help", command="帮助"),))


def _split_method(text: str) -> tuple[str, str]:
    for word in sorted(METHODS, key=len, reverse=True):
        if text.startswith(word):
            return METHODS[word], text[len(word):].strip()
    return "拜访", text


def _split_customer(rest: str) -> tuple[str, str]:
    """The customer is the first word; people who type without spaces get the whole rest tried."""
    query, _, content = rest.partition(" ")
    return query.strip(), content.strip()
