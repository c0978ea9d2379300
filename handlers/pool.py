"""公海 and 领取: see the customers nobody owns, claim one by name or with a tap.

The list shows what a rep needs to choose (name, tier, industry, region, how long it has waited) and
never a phone number: details come with ownership. A refused claim names the limit that refused it.
"""

from __future__ import annotations

from cards import Button, Card
from handlers.menu import MENU_BUTTONS
from handlers.router import Context, Routes
from workflows import customers, pool, rules
from workflows.followups import short_name
from workflows.pool import Refused

routes = Routes()

SHOWN = 5  # rows on one card, each with its 领取 button (a card holds six buttons)
POOL_BUTTON = Button("看看公海", "pool.list", command="公海")


@routes.command("公海", "公海客户", "公海列表")
@routes.action("pool.list")
def show_pool(ctx: Context) -> Card:
    shown = pool.pool_customers(ctx.session, limit=SHOWN)
    if not shown:
        return Card(title="公海", body="公海里暂时没有客户。客户长时间没人跟进，会自动退回这里。",
                    buttons=MENU_BUTTONS[:1] + (Button("帮助", "help", command="帮助"),))
    total = pool.pool_count(ctx.session)
    words = customers.namer(ctx.session)
    more = f"还有 {total - len(shown)} 家没列出，发「领取 客户名」直接领。" if total > len(shown) else "点按钮领取，或发「领取 客户名」。"
    return Card(
        title=f"公海 · {total} 家",
        body=f"这些客户暂时没人负责，领取后由你跟进。{more}",  # in the body: WeCom cards show no footer
        fields=tuple((short_name(c), _about(ctx, c)) for c in shown),
        buttons=tuple(Button(f"领取{short_name(c)}"[:10], "pool.claim", str(c.id), style="primary" if i == 0 else "default",
                             command=words(c, "领取")) for i, c in enumerate(shown)),
    )


@routes.command("领取", prefix=True)
def claim_by_name(ctx: Context) -> Card:
    query = ctx.event.text.strip()[len("领取"):].strip()
    if not query:
        return show_pool(ctx)
    in_pool = {c.id for c in pool.pool_customers(ctx.session)}
    found = customers.index(ctx.session).match(query, prefer=in_pool)
    candidates = [c for c in found.candidates if c.customer_id in in_pool]
    if found.decision == "accept" and found.customer_id in in_pool:
        return _claim(ctx, found.customer_id)
    if found.decision == "accept" or (found.candidates and not candidates):
        owned = customers.get(ctx.session, found.candidates[0].customer_id)
        if owned.owner_id == ctx.employee.id:
            return Card(title="已经是你的客户", body=f"{short_name(owned)}已经由你负责，不用领取。", buttons=(POOL_BUTTON,))
        return Card(title="这家不在公海里", body=f"{short_name(owned)}由{customers.owner_name(ctx.session, owned)}负责，"
                                                 f"不能领取。", buttons=(POOL_BUTTON,))
    if not candidates:
        return Card(title="公海里没找到", body=f"公海里没有「{query}」。发「公海」看看有哪些客户。", buttons=(POOL_BUTTON,))
    words = customers.namer(ctx.session)
    return Card(title="您要领哪家？", body=f"公海里和「{query}」相近的有：",
                fields=tuple((f"{i + 1}", c.name[:26]) for i, c in enumerate(candidates)),
                buttons=tuple(Button(f"领取{c.name}"[:10], "pool.claim", str(c.customer_id), style="primary",
                                     command=words(customers.get(ctx.session, c.customer_id), "领取"))
                              for c in candidates[:SHOWN]))


@routes.action("pool.claim")
def claim_by_tap(ctx: Context) -> Card:
    if not ctx.event.value.isdigit() or customers.get(ctx.session, int(ctx.event.value)) is None:
        return Card(title="这个按钮已失效", body="请发「公海」重新看看。", buttons=(POOL_BUTTON,))
    return _claim(ctx, int(ctx.event.value))


def _claim(ctx: Context, customer_id: int) -> Card:
    customer = customers.get(ctx.session, customer_id)
    try:
        pool.claim(ctx.session, ctx.employee, customer, now=ctx.now, tz=ctx.timezone)
    except Refused as refusal:
        return Card(title="领取不了", body=refusal.message, buttons=(POOL_BUTTON, Button("帮助", "help", command="帮助")))
    days = rules.get(ctx.session, "crm.overdue_days").get(customer.tier)
    return Card(
        title=f"已领取 · {short_name(customer)}",
        body=f"{short_name(customer)}现在是你的客户了。{customer.tier}级客户每 {days} 天至少跟进一次，"
             f"跟进后发「拜访 {short_name(customer)} 聊了什么」。",
        fields=(("客户", customer.name[:26]), ("等级", f"{customer.tier}级")),
        buttons=(Button("查看", "customer.show", str(customer.id), style="primary",
                        command=customers.words_naming(ctx.session, customer, "查看")), POOL_BUTTON),
    )


def _about(ctx: Context, customer) -> str:
    """A级 · 制造 · 深圳 · 公海3天: tier, industry, region, time waiting; never a phone number."""
    waited = (ctx.now - pool.in_pool_since(customer)).days
    parts = (f"{customer.tier}级", customer.industry, customer.region, f"公海{waited}天" if waited else "今天进公海")
    return " · ".join(part for part in parts if part)
