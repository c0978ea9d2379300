"""签到: a location or photo sent within CHECKIN_WINDOW of logging a visit attaches to that visit.

While the visit form is still open (the visit is not logged yet), the location or photo is held in
the form and attached when the visit is logged, so the order people do things in does not matter.
Anything else gets a hint about how check-in works, with the menu.
"""

from __future__ import annotations

from cards import Button, Card
from handlers import guided, routes, visit
from handlers.menu import MENU_BUTTONS
from handlers.router import Context
from workflows import conversations, customers, followups

HINT = "先发「拜访 客户 …」，再发位置/照片就能签到。"


@routes.kind("location")
def on_location(ctx: Context) -> Card:
    if ctx.event.location is None:
        return Card(title="收到位置", body="没读到位置信息，请再发一次。", buttons=MENU_BUTTONS)
    return _check_in(ctx, location=list(ctx.event.location), what="位置")


@routes.kind("image")
def on_image(ctx: Context) -> Card:
    if not ctx.event.media_id:
        return Card(title="收到图片", body="没读到这张图片，请再发一次。", buttons=MENU_BUTTONS)
    return _check_in(ctx, photo=ctx.event.media_id, what="照片")


def _check_in(ctx: Context, *, location: list | None = None, photo: str = "", what: str) -> Card:
    form = conversations.current(ctx.session, ctx.employee, ctx.now)
    if form is not None and form.flow == visit.FLOW and not form.data.get("followup_id"):
        return _hold(ctx, form, location, photo, what)
    followup = followups.recent_visit(ctx.session, ctx.employee, ctx.now)
    if followup is None:
        extra = "\n报销的发票照片，请先发「报销 金额 事由」，再发照片。" if photo else ""
        return Card(title=f"收到{what}", body=HINT + extra, buttons=MENU_BUTTONS)
    visit.attach_checkin(ctx, followup, location=location, photos=[photo] if photo else [])
    customer = customers.get(ctx.session, followup.customer_id)
    return Card(
        title=f"已签到 · {followups.short_name(customer)}",
        fields=(("客户", customer.name[:26]), ("地点", (followup.place or "（未发位置）")[:26]),
                ("时间", followups.when_text(followup.checked_in_at, ctx.timezone)), ("照片", f"{len(followups.photos_of(followup))}张")),
        buttons=(Button("返回菜单", "help", command="帮助"),),
        footer=f"拜访后{int(followups.CHECKIN_WINDOW.total_seconds() // 60)}分钟内发的位置和照片都会记上",
    )


def _hold(ctx: Context, form, location: list | None, photo: str, what: str) -> Card:
    """The visit is still being filled in: keep the check-in for when it is logged."""
    held = form.data.get("checkin") or {}
    if location:
        held["location"] = location
    if photo and photo not in held.setdefault("photos", []):
        held["photos"].append(photo)
    form = conversations.advance(ctx.session, ctx.employee, form.step, ctx.now, checkin=held)
    question = guided.ask(ctx, form)
    return Card(title=question.title, body=f"收到{what}，记完这次拜访就签到。\n{question.body}",
                fields=question.fields, buttons=question.buttons, footer=question.footer)
