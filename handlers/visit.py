"""Logging a visit, and the guided form (`crm.visit`) for messages that leave something out.

`拜访` alone asks which customer, then what was discussed, then when to follow up next; `拜访 腾讯`
asks only the last two. Every way in ends in `record`, the same path (and the same confirmation
card) as the one-message form in handlers/crm.py.

A next-time that is there but not understood ("过几天再跟进") does not block the record: the visit
is logged at once and the card asks "下次跟进是哪天？"; the answer sets it on that record.
"""

from __future__ import annotations

import re
from datetime import datetime

from cards import Button, Card
from handlers import guided, photos, refusals
from handlers.guided import CANCEL_BUTTON, choice
from handlers.menu import MENU_BUTTONS
from handlers.router import Context, Routes
from storage import files
from storage.models import Customer, FollowUp
from workflows import audit, conversations, customers, followups
from workflows.conversations import Form
from workflows.when import When, has_time_word, next_when, parse_when, strip_when

routes = Routes()

FLOW = "crm.visit"
MAX_MISSES = 2  # unknown customer names before the form gives up
RECENT = 3  # recently followed customers offered as buttons
FILLER_TAIL = re.compile(r"[\s，,]*(?:再|再次|继续|到时)?(?:跟进|联系|聊)[。.！!]?$")
SKIP_WORDS = {"跳过", "没有", "无", "略", "不说了"}
NO_NEXT_WORDS = {"不用", "不需要", "不跟进", "不用了", "没有", "无", "跳过", "暂不", "待定"}


def _cancelled(ctx: Context, form: Form) -> str:
    return "刚才的记录已保存，只是没定下次跟进时间。" if form.data.get("followup_id") else "这次没有记录。"


def _hold_checkin(ctx: Context, form: Form) -> Card | None:
    """A location or photo while the visit is still being filled in: keep it for when the visit is
    logged (签到 does not depend on the order things are sent in). Once the record exists (only the
    next date is open) the usual 签到 attaches it directly. Calls and WeChat are not visits."""
    if form.data.get("followup_id") or form.data.get("method") != "拜访":
        return None
    held = form.data.get("checkin") or {}
    if ctx.event.location:
        held["location"] = list(ctx.event.location)
    if ctx.upload is not None and ctx.upload.sha256 not in held.setdefault("photos", []):
        held["photos"].append(photos.keep(ctx))  # its file is attached with the visit
    form = conversations.advance(ctx.session, ctx.employee, form.step, ctx.now, checkin=held)
    question = guided.ask(ctx, form)
    what = "位置" if ctx.event.kind == "location" else "照片"
    return Card(title=question.title, body=f"收到{what}，记完这次拜访就签到。\n{question.body}",
                fields=question.fields, buttons=question.buttons, footer=question.footer)


routes.flow(FLOW, "记拜访", on_cancel=_cancelled, on_media=_hold_checkin)


def source_key(platform: str, event_id: str) -> str:
    return f"{platform}:{event_id}"


# -- logging (shared with the one-message form) -----------------------------------------------


def record(ctx: Context, customer: Customer, method: str, content: str, *, when: When | None = None,
           asked: bool = False, held: dict | None = None) -> Card:
    """Log `content` against `customer` and reply with the card. The next time is read from
    `content`, unless it was `asked` separately (then `when`, None for 不用)."""
    if not customers.may_log(ctx.session, ctx.employee, customer):
        owner = customers.owner_name(ctx.session, customer)
        return refusals.refuse(ctx, attempted="followup.log", why="not the owner's chain", subject=f"customer:{customer.id}",
                       title="不是你的客户", body=f"{followups.short_name(customer)}由{owner}负责，请联系{owner}或你的经理。",
                       buttons=MENU_BUTTONS)
    if not asked:
        when = next_when(content, ctx.now, ctx.timezone)
    next_at = followups.planned_at(ctx.session, when, when.text if asked and when else content, ctx.now, ctx.timezone)
    if when is not None and next_at is None and not asked:
        when = None  # 今天和李总见了面: when the visit happened, which stays in the note as said
    note = strip_when(content, when).strip() if when and not asked else content.strip()
    note = FILLER_TAIL.sub("", note)  # "聊了报价 再跟进": the 再跟进 is said by the next-time field
    followup = followups.log_followup(ctx.session, employee=ctx.employee, customer=customer, method=method,
                                      content=note, next_at=next_at, now=ctx.now,
                                      tz=ctx.timezone, source_key=source_key(ctx.event.platform, ctx.event.event_id),
                                      platform=ctx.event.platform)
    if held:
        attach_checkin(ctx, followup, location=held.get("location"), photos=held.get("photos", []))
    if when is None and not asked and has_time_word(content) and not _said_as_done(ctx, content):
        form = conversations.start(ctx.session, ctx.employee, FLOW, "next", {"followup_id": followup.id}, ctx.now)
        return logged_card(ctx, customer, followup, next_text="还没定", ask=form)
    return logged_card(ctx, customer, followup, next_text=_next_text(ctx, next_at, customer))


def _said_as_done(ctx: Context, content: str) -> bool:
    """The time words were about the visit itself (今天 / 刚才 / 上午…了): nothing to ask."""
    when = parse_when(content, ctx.now, ctx.timezone)
    return when is not None or any(word in content for word in followups.JUST_NOW)


def _next_text(ctx: Context, next_at: datetime | None, customer: Customer | None = None) -> str:
    """The planned next time as the card shows it; an earlier plan this record kept says so."""
    if next_at is not None:
        return followups.when_text(next_at, ctx.timezone)
    if customer is not None and customer.next_followup_at is not None:
        return f"{followups.when_text(customer.next_followup_at, ctx.timezone)}（原计划）"
    return "未设置"


def logged_card(ctx: Context, customer: Customer, followup: FollowUp, *, next_text: str,
                ask: Form | None = None, title: str = "已记录") -> Card:
    fields = [("客户", customer.name[:26]), ("方式", followup.method), ("内容", (followup.content or "（无）")[:26]),
              ("下次跟进", next_text[:26])]
    if followup.checked_in_at:
        fields.append(("签到", followups.checkin_text(followup, ctx.timezone)[:26]))
    undo = Button("撤销", "crm.undo", str(followup.id), style="danger")
    return Card(title=f"{title} · {followups.short_name(customer)}", fields=tuple(fields),
                body="下次跟进是哪天？直接回个时间就行，比如「下周三下午」。" if ask else "",
                buttons=(*_next_buttons(ask), undo) if ask else (undo,),
                footer="10分钟内可以撤销")


def attach_checkin(ctx: Context, followup: FollowUp, *, location=None, photos=()) -> bool:
    """签到 on a visit, audited. True if it changed anything (a repeated photo does not)."""
    changed = False
    if location:
        changed |= followups.check_in(ctx.session, followup, now=ctx.now, location=tuple(location))
    for photo in photos:
        changed |= followups.check_in(ctx.session, followup, now=ctx.now, photo=photo)
    # The photos' files (stored when they arrived) now belong to this visit.
    files.attach(ctx.session, list(photos), uploaded_by=ctx.employee.id, attached_type="followup",
                 attached_id=followup.id)
    if changed:
        audit.record(ctx.session, actor=ctx.employee, action="followup.checkin", subject=f"followup:{followup.id}",
                     platform=ctx.event.platform,
                     detail={"place": followup.place, "latitude": followup.latitude, "longitude": followup.longitude,
                             "photos": list(photos)})
    return changed


# -- the guided form --------------------------------------------------------------------------


def begin(ctx: Context, method: str, *, customer: Customer | None = None, content: str = "",
          candidates: tuple = ()) -> Card:
    """Open the form at the first thing missing: the customer (offering `candidates` if the name
    was unsure) or what was discussed."""
    data = {"method": method, "content": content, "misses": 0,
            "choices": [[c.customer_id, c.name] for c in candidates]}
    if customer is not None and not customers.may_log(ctx.session, ctx.employee, customer):
        return record(ctx, customer, method, content)  # says whose customer it is
    if customer is None:
        form = conversations.start(ctx.session, ctx.employee, FLOW, "customer", data, ctx.now)
    else:
        form = conversations.start(ctx.session, ctx.employee, FLOW, "content",
                                   {**data, "customer_id": customer.id}, ctx.now)
    return guided.ask(ctx, form)


def _ask_customer(ctx: Context, form: Form) -> Card:
    method = form.data.get("method", "拜访")
    if form.data.get("choices"):
        options = [(name, customer_id) for customer_id, name in form.data["choices"]]
        body = "您说的是哪家？点一下就行："
    else:
        options = [(followups.short_name(c), c.id) for c in followups.recent_customers(ctx.session, ctx.employee, RECENT)]
        body = f"{method}哪家客户？\n发客户名称就行，比如「腾讯」。"
    buttons = tuple(choice(name, form, f"#{customer_id}", style="primary") for name, customer_id in options)
    return Card(title=f"记{method}", body=body, buttons=buttons + (CANCEL_BUTTON,), footer="随时发「取消」退出")


@routes.step(FLOW, "customer", ask=_ask_customer)
def _answer_customer(ctx: Context, form: Form, answer: str) -> Card:
    customer = _customer_from(ctx, form, answer)
    if isinstance(customer, Card):
        return customer
    if not customers.may_log(ctx.session, ctx.employee, customer):
        conversations.finish(ctx.session, ctx.employee)
        return record(ctx, customer, form.data.get("method", "拜访"), "")  # says whose customer it is
    if form.data.get("content"):
        conversations.finish(ctx.session, ctx.employee)
        return record(ctx, customer, form.data["method"], form.data["content"], held=form.data.get("checkin"))
    form = conversations.advance(ctx.session, ctx.employee, "content", ctx.now, customer_id=customer.id, choices=[])
    return guided.ask(ctx, form)


def _customer_from(ctx: Context, form: Form, answer: str) -> Customer | Card:
    """The customer an answer names, or the card that asks again (or gives up)."""
    if answer.startswith("#") and answer[1:].isdigit():
        customer = customers.get(ctx.session, int(answer[1:]))
        if customer is not None:
            return customer
    found = customers.find(ctx.session, answer, owner_id=ctx.employee.id) if answer else None
    if found is not None and found.decision == "accept":
        return customers.get(ctx.session, found.customer_id)
    if found is not None and found.decision == "choose":
        form = conversations.advance(ctx.session, ctx.employee, "customer", ctx.now,
                                     choices=[[c.customer_id, c.name] for c in found.candidates])
        return guided.ask(ctx, form)
    misses = int(form.data.get("misses", 0)) + 1
    if misses >= MAX_MISSES:
        conversations.finish(ctx.session, ctx.employee)
        return Card(title="没找到这个客户", body=f"客户名单里没有「{answer[:20]}」，这次先不记了。\n"
                                          "可以发完整的公司名再试，比如「拜访 腾讯科技 聊了报价」。", buttons=MENU_BUTTONS)
    form = conversations.advance(ctx.session, ctx.employee, "customer", ctx.now, misses=misses, choices=[])
    card = guided.ask(ctx, form)
    return Card(title="没找到这个客户", body=f"客户名单里没有「{answer[:20]}」。请发客户简称或全称，比如「腾讯」。",
                buttons=card.buttons, footer=card.footer)


def _ask_content(ctx: Context, form: Form) -> Card:
    customer = customers.get(ctx.session, form.data["customer_id"])
    return Card(title=f"记{form.data.get('method', '拜访')} · {followups.short_name(customer)}",
                body="聊了什么？一句话就行。", buttons=(choice("跳过", form, "跳过"), CANCEL_BUTTON),
                footer="随时发「取消」退出")


@routes.step(FLOW, "content", ask=_ask_content)
def _answer_content(ctx: Context, form: Form, answer: str) -> Card:
    content = "" if _word(answer) in SKIP_WORDS else answer
    if parse_when(content, ctx.now, ctx.timezone) or has_time_word(content):
        # The next time came with it: log now (an unclear time is then asked on the record).
        conversations.finish(ctx.session, ctx.employee)
        customer = customers.get(ctx.session, form.data["customer_id"])
        return record(ctx, customer, form.data["method"], content, held=form.data.get("checkin"))
    form = conversations.advance(ctx.session, ctx.employee, "next", ctx.now, content=content)
    return guided.ask(ctx, form)


def _ask_next(ctx: Context, form: Form) -> Card:
    if form.data.get("followup_id"):  # the record exists; only the date is open
        followup = ctx.session.get(FollowUp, form.data["followup_id"])
        return logged_card(ctx, customers.get(ctx.session, followup.customer_id), followup, next_text="还没定", ask=form)
    customer = customers.get(ctx.session, form.data["customer_id"])
    return Card(title=f"记{form.data.get('method', '拜访')} · {followups.short_name(customer)}",
                body="下次什么时候跟进？", buttons=(*_next_buttons(form), CANCEL_BUTTON), footer="随时发「取消」退出")


def _next_buttons(form: Form) -> tuple[Button, ...]:
    return (choice("明天", form, "明天", style="primary", step="next"), choice("下周", form, "下周", step="next"),
            choice("不用", form, "不用", step="next"))


@routes.step(FLOW, "next", ask=_ask_next)
def _answer_next(ctx: Context, form: Form, answer: str) -> Card:
    no_next = _word(answer) in NO_NEXT_WORDS
    when = None if no_next else parse_when(answer, ctx.now, ctx.timezone)
    if when is not None and followups.planned_at(ctx.session, when, when.text, ctx.now, ctx.timezone) is None:
        card = guided.ask(ctx, conversations.advance(ctx.session, ctx.employee, "next", ctx.now))
        return Card(title=card.title, body=f"「{answer[:20]}」已经过了。下次跟进是哪天？比如「明天下午3点」，不用就点「不用」。",
                    fields=card.fields, buttons=card.buttons, footer=card.footer)
    if when is None and not no_next:
        card = guided.ask(ctx, conversations.advance(ctx.session, ctx.employee, "next", ctx.now))
        return Card(title=card.title, body=f"没看懂「{answer[:20]}」。下次跟进是哪天？比如「明天下午3点」，不用就点「不用」。",
                    fields=card.fields, buttons=card.buttons, footer=card.footer)
    conversations.finish(ctx.session, ctx.employee)
    if form.data.get("followup_id"):
        return _set_next(ctx, form.data["followup_id"], when)
    customer = customers.get(ctx.session, form.data["customer_id"])
    return record(ctx, customer, form.data["method"], form.data.get("content", ""), when=when, asked=True,
                  held=form.data.get("checkin"))


def _set_next(ctx: Context, followup_id: int, when) -> Card:
    followup = ctx.session.get(FollowUp, followup_id)
    if followup is None or followup.employee_id != ctx.employee.id:
        return Card(title="这条记录已经没有了", body="可能已经撤销。需要的话重新记一条。", buttons=MENU_BUTTONS)
    until = followups.planned_at(ctx.session, when, when.text, ctx.now, ctx.timezone) if when else None
    if until is not None:
        followups.snooze(ctx.session, employee=ctx.employee, followup_id=followup.id, until=until,
                         tz=ctx.timezone, platform=ctx.event.platform)
    customer = customers.get(ctx.session, followup.customer_id)
    return logged_card(ctx, customer, followup, title="已更新", next_text=_next_text(ctx, until))


def _word(answer: str) -> str:
    return answer.strip(" \t。.!！~～")
