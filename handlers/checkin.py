"""签到: a location or photo sent within CHECKIN_WINDOW of logging a visit attaches to that visit.

A photo or location goes first to the open form, if its flow takes one (the visit form holds it
until the visit is logged). Without a recent visit people get a hint about how check-in works.
Photos arrive downloaded (ctx.upload): one too large or not a photo is refused before anything
else sees it (handlers/photos.py), and a kept one is stored by its SHA-256 (storage/files.py).
"""

from __future__ import annotations

from cards import Button, Card
from handlers import approvals, guided, photos, visit
from handlers.menu import MENU_BUTTONS
from handlers.router import Context, Routes
from workflows import customers, followups

routes = Routes()

HINT = "先发「拜访 客户 …」，再发位置/照片就能签到。"


@routes.kind("location")
def on_location(ctx: Context) -> Card:
    if ctx.event.location is None:
        return Card(title="收到位置", body="没读到位置信息，请再发一次。", buttons=MENU_BUTTONS)
    label = ctx.event.location[2]
    return guided.offer_media(ctx) or _check_in(ctx, "收到位置", f"位置：{label or '已收到'}\n{HINT}")


@routes.kind("image")
def on_image(ctx: Context) -> Card:
    refused = photos.problem_card(ctx)
    if refused is not None:
        return refused
    return guided.offer_media(ctx) or approvals.attach_invoice(ctx) or _check_in(
        ctx, "收到图片", f"{HINT}\n报销的发票照片，请先发「报销 金额 事由」，再发照片。")


def _check_in(ctx: Context, title: str, hint: str) -> Card:
    followup = followups.recent_visit(ctx.session, ctx.employee, ctx.now)
    if followup is None:
        return Card(title=title, body=hint, buttons=MENU_BUTTONS)
    taken = []
    if ctx.event.kind == "image":
        if ctx.upload.sha256 not in followups.photos_of(followup):  # the same photo again is kept once
            photos.keep(ctx)
        taken = [ctx.upload.sha256]
    visit.attach_checkin(ctx, followup, location=ctx.event.location, photos=taken)
    customer = customers.get(ctx.session, followup.customer_id)
    return Card(
        title=f"已签到 · {followups.short_name(customer)}",
        fields=(("客户", customer.name[:26]), ("地点", (followup.place or "（未发位置）")[:26]),
                ("时间", followups.when_text(followup.checked_in_at, ctx.timezone)),
                ("照片", f"{len(followups.photos_of(followup))}张")),
        buttons=(Button("返回菜单", "help", command="帮助"),),
        footer=f"拜访后{int(followups.CHECKIN_WINDOW.total_seconds() // 60)}分钟内发的位置和照片都会记上",
    )
