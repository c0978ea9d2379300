"""回款 from chat: finance records money in (`回款 腾讯 50000`); `回款计划 腾讯` shows the plan, and
the owner or finance may split it (`回款计划 腾讯 30000 12月15日, 20000 1月15日`)."""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo

from sqlalchemy import select

from cards import Button, Card
from handlers import refusals
from handlers.router import Context, Routes
from storage.models import Deal
from workflows import customers, payments
from workflows.amounts import find_amount
from workflows.followups import short_name
from workflows.when import parse_when

routes = Routes()

HELP_BUTTON = Button("帮助", "help", command="帮助")


@routes.command("回款计划", "回款安排", prefix=True)
def payment_plan(ctx: Context) -> Card:
    name, _, rest = re.sub(r"^(回款计划|回款安排)\s*", "", ctx.event.text.strip()).partition(" ")
    customer = _customer(ctx, name)
    if customer is None:
        return _which("回款计划 腾讯")
    if not (customers.may_see_details(ctx.session, ctx.employee, customer) or payments.may_record(ctx.session, ctx.employee)):
        return refusals.refuse(ctx, attempted="payment.plan", why="not the owner's chain or finance",
                       subject=f"customer:{customer.id}", title="看不了回款计划", body="只有负责人、他的上级和财务能看。")
    deal = _signed_deal(ctx, customer.id)
    if deal is None:
        return Card(title=f"回款计划 · {short_name(customer)}", body="还没有已签约的商机。", buttons=(HELP_BUTTON,))
    if rest.strip():
        instalments = _instalments(ctx, rest)
        if instalments is None:
            return Card(title="没看懂分期", body="每期写「金额 日期」，用逗号隔开，比如「回款计划 腾讯 30000 12月15日, 20000 1月15日」。",
                        buttons=(HELP_BUTTON,))
        payments.replace_plan(ctx.session, deal, instalments, request_id=None, now=ctx.now, tz=ctx.timezone)
    return Card(title=f"回款计划 · {short_name(customer)}", body=payments.plan_text(payments.plan_of(ctx.session, deal.id)),
                footer="到期前3天提醒负责人和财务，逾期再提醒")


@routes.command("回款", "到账", "收款", prefix=True)
def money_in(ctx: Context) -> Card:
    words = re.sub(r"^(回款|到账|收款)\s*", "", ctx.event.text.strip())
    if not payments.may_record(ctx.session, ctx.employee):
        return refusals.refuse(ctx, attempted="payment.record", why="not finance", subject="payments",
                       title="由财务登记回款", body="回款到账由财务登记。想看计划，发「回款计划 客户名」。")
    found = find_amount(words)
    name = (words[:found[1]] + words[found[2]:]).strip() if found else words
    customer = _customer(ctx, name)
    if customer is None or found is None or found[0] <= 0:
        return _which("回款 腾讯 50000")
    received = payments.receive(ctx.session, customer, found[0], by=ctx.employee, platform=ctx.event.platform, now=ctx.now)
    if not received.applied:
        return Card(title=f"没有待回款 · {short_name(customer)}", body="这个客户没有未结清的回款计划，没有记录。",
                    buttons=(HELP_BUTTON,))
    lines = [f"· 第{row.seq}期 记入 ¥{part:,.2f}" + ("，已结清" if row.status == "paid" else f"，还差 ¥{row.amount - row.paid:,.2f}")
             for row, part in received.applied]
    extra = f"\n多出 ¥{received.left_over:,.2f} 没有对应的计划，请核对。" if received.left_over > 0 else ""
    return Card(title=f"已登记回款 · {short_name(customer)}", body="\n".join(lines) + extra)


def _customer(ctx: Context, name: str):
    if not name.strip():
        return None
    found = customers.find(ctx.session, name.strip(), owner_id=ctx.employee.id)
    return customers.get(ctx.session, found.customer_id) if found.decision == "accept" else None


def _signed_deal(ctx: Context, customer_id: int) -> Deal | None:
    return ctx.session.execute(select(Deal).where(Deal.customer_id == customer_id, Deal.stage == "已签约")
                               .order_by(Deal.id.desc())).scalars().first()


def _instalments(ctx: Context, text: str):
    parts = [p for p in re.split(r"[,，;；]", text) if p.strip()]
    result = []
    for part in parts:
        found = find_amount(part)
        when = parse_when(part, ctx.now, ctx.timezone)
        if found is None or when is None:
            return None
        result.append((found[0], when.start.astimezone(ZoneInfo(ctx.timezone)).date()))
    return result


def _which(example: str) -> Card:
    return Card(title="哪个客户？", body=f"请写清客户名，比如「{example}」。", buttons=(HELP_BUTTON,))
