"""Looking customers up: a name alone → the customer card; 我的客户, 今天跟进, 本周拜访.

The card is the CRM's front page on a phone: who owns it, how it is going, what is next, and the
buttons to act (记拜访, 推进商机, 查看电话). What it shows depends on who asks (workflows.customer_views).
"""

from __future__ import annotations

import re
from dataclasses import replace
from zoneinfo import ZoneInfo

from cards import Button, Card
from cards.pages import page
from handlers import visit
from handlers.menu import MENU_BUTTONS
from handlers import refusals
from handlers.router import Context, Routes
from storage.models import Customer
from workflows import customer_views as views
from workflows import customers
from workflows.followups import day_text, short_name, when_text

routes = Routes()

LIST_LIMIT = 8  # lines on one card; more is a wall of text on a phone
HELP_BUTTON = Button("帮助", "help", command="帮助")
FROM = re.compile(r"从?第\s*(\d{1,5})\s*家")
LOOKUP_MAX_CHARS = 30  # longer text is a sentence, not a customer name


def customer_card(ctx: Context, customer: Customer) -> Card:
    profile = views.profile(ctx.session, ctx.employee, customer)
    if not profile.full:
        return Card(title=f"客户 · {short_name(customer)}",
                    body="详细信息（电话、金额、跟进记录）只有负责人和他的上级能看。",
                    fields=(("全称", customer.name[:26]), ("等级", f"{customer.tier}级"), ("负责人", profile.owner)),
                    buttons=(HELP_BUTTON,))
    return Card(title=f"客户 · {short_name(customer)}", body=_history(profile, ctx.timezone),
                fields=_profile_fields(profile, ctx.timezone), buttons=_profile_buttons(ctx.session, profile))


@routes.action("customer.show")
def show_customer(ctx: Context) -> Card:
    customer = _customer_from(ctx)
    return customer_card(ctx, customer) if customer else _gone()


@routes.action("customer.phone")
def show_phones(ctx: Context) -> Card:
    customer = _customer_from(ctx)
    if customer is None:
        return _gone()
    contacts = views.reveal_phones(ctx.session, ctx.employee, customer, platform=ctx.event.platform)
    if contacts is None:
        return refusals.refuse(ctx, attempted="customer.phone", why="not the owner's chain", subject=f"customer:{customer.id}",
                       title="看不了电话", body=f"{short_name(customer)}的联系电话只有负责人和他的上级能看。")
    if not contacts:
        return Card(title=f"电话 · {short_name(customer)}", body="还没有登记联系人电话。")
    return Card(title=f"电话 · {short_name(customer)}", body="仅供联系客户使用，本次查看已记录。",
                fields=tuple((f"{c.name}{(' ' + c.title) if c.title else ''}"[:10], c.phone) for c in contacts[:6]))


@routes.action("customer.visit")
def visit_customer(ctx: Context) -> Card:
    """记拜访 on the customer card: the visit form, with the customer already filled in."""
    customer = _customer_from(ctx)
    return visit.begin(ctx, "拜访", customer=customer) if customer else _gone()


@routes.command("我的客户", "我的客户列表", "客户列表")
def list_my_customers(ctx: Context, start: int = 0) -> Card:
    mine = views.my_customers(ctx.session, ctx.employee)
    if not mine:
        return Card(title="我的客户", body="你名下还没有客户。发「公海」看看可以领取的客户。", buttons=MENU_BUTTONS)
    start = min(max(start, 0), len(mine) - 1)
    tiers = {t: sum(1 for c in mine if c.tier == t) for t in "ABC"}
    lines = page([f"· {short_name(c)}（{c.tier}）{_next_text(c, ctx)}" for c in mine[start:]])
    shown = mine[start:start + len(lines)]
    end = start + len(shown)
    more = ((Button("更多", "crm.mine", str(end), style="primary", command=f"我的客户 从第{end + 1}家"),)
            if end < len(mine) else (HELP_BUTTON,))
    return Card(title=f"我的客户 · {len(mine)} 家", body="\n".join(lines),
                fields=tuple((f"{t}级", f"{n} 家") for t, n in tiers.items()),
                buttons=_customer_buttons(ctx, shown)[:-1] + more,
                footer=f"第 {start + 1}–{end} 家，共 {len(mine)} 家" if len(mine) > len(shown) else "")


@routes.command("今天跟进", "今日跟进", "今天要跟进", "今天", "待跟进")
def due_today(ctx: Context) -> Card:
    today = ctx.now.astimezone(ZoneInfo(ctx.timezone)).date()
    due, overdue = views.due_on(ctx.session, ctx.employee, today, ctx.timezone)
    if not due and not overdue:
        return Card(title=f"今天跟进 · {day_text(today)}", body="今天没有要跟进的客户。",
                    buttons=(Button("我的客户", "crm.mine", command="我的客户"), HELP_BUTTON))
    local = ZoneInfo(ctx.timezone)
    lines = [f"· {short_name(c)} {c.next_followup_at.astimezone(local):%H:%M}" for c in due[:LIST_LIMIT]]
    late = [f"· {short_name(c)} 已逾期{(today - c.next_followup_at.astimezone(local).date()).days}天"
            for c in overdue[:LIST_LIMIT]]
    body = "\n".join((["今天要跟进："] + lines if lines else []) + (["逾期未跟进："] + late if late else []))
    return Card(title=f"今天跟进 · {day_text(today)}", body=body,
                fields=(("今天", f"{len(due)} 家"), ("逾期", f"{len(overdue)} 家")),
                buttons=_customer_buttons(ctx, due + overdue))


@routes.action("crm.mine")
def mine_by_tap(ctx: Context) -> Card:
    """我的客户 from a button; 更多 carries where the next page starts."""
    return list_my_customers(ctx, int(ctx.event.value) if ctx.event.value.isdigit() else 0)


@routes.command("我的客户", prefix=True)
def mine_from(ctx: Context) -> Card:
    """`我的客户 从第6家` (what 更多 sends as words): the list from there; other words after 我的客户, from the top."""
    found = FROM.search(ctx.event.text)
    return list_my_customers(ctx, int(found.group(1)) - 1 if found else 0)


@routes.command("查看", "查看客户", prefix=True)
def show_by_name(ctx: Context) -> Card:
    """`查看 腾讯科技(深圳)有限公司` (a customer button as words, or typed): that customer's card."""
    name = _after(ctx.event.text, ("查看客户", "查看"))
    return (_lookup_name(ctx, name) if name else None) or _not_found(name)


@routes.command("查看电话", prefix=True)
def phones_by_name(ctx: Context) -> Card:
    """`查看电话 腾讯科技(深圳)有限公司`: the same check and audit as the 查看电话 button."""
    name = _after(ctx.event.text, ("查看电话",))
    found = customers.find(ctx.session, name, owner_id=ctx.employee.id) if name else None
    if found is None or found.decision != "accept":
        return (_lookup_name(ctx, name) if name else None) or _not_found(name)
    ctx.event = replace(ctx.event, kind="action", action="customer.phone", value=str(found.customer_id))
    return show_phones(ctx)


@routes.command("本周拜访", "这周拜访", "本周跟进", "这周跟进", "本周记录")
def this_week(ctx: Context) -> Card:
    monday, sunday = views.week_of(ctx.now, ctx.timezone)
    rows = views.visits_between(ctx.session, ctx.employee, monday, sunday, ctx.timezone)
    title = f"本周跟进 · {monday.month}/{monday.day}–{sunday.month}/{sunday.day}"
    if not rows:
        return Card(title=title, body="这周还没有记录。记一笔：「拜访 客户名 聊了什么」。", buttons=MENU_BUTTONS)
    local = ZoneInfo(ctx.timezone)
    lines = [f"· {f.happened_at.astimezone(local):%m-%d} {f.method} {short_name(c)}"
             + (f"：{f.content[:12]}" if f.content else "") for f, c in rows[:LIST_LIMIT]]
    methods = {m: sum(1 for f, _ in rows if f.method == m) for m in ("拜访", "电话", "微信")}
    more = f"\n…共 {len(rows)} 条" if len(rows) > LIST_LIMIT else ""
    return Card(title=title, body="\n".join(lines) + more,
                fields=tuple((m, f"{n} 次") for m, n in methods.items() if n) + (("客户", f"{len({c.id for _, c in rows})} 家"),),
                buttons=(Button("今天跟进", "crm.today", command="今天跟进"), HELP_BUTTON))


@routes.action("crm.today")
def today_by_tap(ctx: Context) -> Card:
    return due_today(ctx)


def lookup(ctx: Context) -> Card | None:
    """A message that is only a customer's name → its card; unsure → the top 3 as buttons.
    None when the text does not look like any customer (the caller says it did not understand)."""
    text = ctx.event.text.strip()
    if not text or len(text) > LOOKUP_MAX_CHARS or " " in text:
        return None
    return _lookup_name(ctx, text)


def _lookup_name(ctx: Context, text: str) -> Card | None:
    found = customers.find(ctx.session, text, owner_id=ctx.employee.id)
    if found.decision == "accept":
        return customer_card(ctx, customers.get(ctx.session, found.customer_id))
    if found.decision == "choose":
        words = customers.namer(ctx.session)
        return Card(title="您要找哪家客户？", body=f"「{text}」可能是：",
                    fields=tuple((f"{i + 1}", c.name[:26]) for i, c in enumerate(found.candidates)),
                    buttons=tuple(_show_button(customers.get(ctx.session, c.customer_id), c.name[:10], words)
                                  for c in found.candidates))
    return None


# -- helpers ------------------------------------------------------------------------------------


def _profile_fields(profile: views.Profile, tz: str) -> tuple[tuple[str, str], ...]:
    customer = profile.customer
    fields = [("全称", customer.name[:26]), ("负责人", profile.owner),
              ("等级", f"{customer.tier}级 · {customer.status}"),
              ("下次跟进", when_text(customer.next_followup_at, tz) if customer.next_followup_at else "未安排")]
    if profile.deals:
        deal = profile.deals[0]
        more = f" 等{len(profile.deals)}个" if len(profile.deals) > 1 else ""
        fields.append(("商机", f"{deal.stage} · {views.amount_text(deal.amount)}{more}"[:26]))
    if profile.contacts:
        first = profile.contacts[0]
        fields.append(("联系人", f"{first.name} {views.mask_phone(first.phone) if first.phone else ''}".strip()))
    return tuple(fields)


def _history(profile: views.Profile, tz: str) -> str:
    if not profile.followups:
        return "还没有跟进记录。"
    local = ZoneInfo(tz)
    lines = [f"· {f.happened_at.astimezone(local):%m-%d} {f.method}" + (f"：{f.content[:16]}" if f.content else "")
             for f in profile.followups]
    return "最近跟进：\n" + "\n".join(lines)


def _profile_buttons(session, profile: views.Profile) -> tuple[Button, ...]:
    customer_id, words = str(profile.customer.id), customers.namer(session)
    buttons = [Button("记拜访", "customer.visit", customer_id, style="primary",
                      command=words(profile.customer, "拜访"))]
    if profile.deals:
        buttons.append(Button("推进商机", "deal.stages", str(profile.deals[0].id)))
    if any(c.phone for c in profile.contacts):
        buttons.append(Button("查看电话", "customer.phone", customer_id,
                              command=words(profile.customer, "查看电话")))
    return tuple(buttons)


def _customer_buttons(ctx: Context, rows: list[Customer]) -> tuple[Button, ...]:
    seen: list[Customer] = []
    for c in rows:
        if c.id not in {s.id for s in seen}:
            seen.append(c)
    words = customers.namer(ctx.session)
    return tuple(_show_button(c, short_name(c)[:10], words) for c in seen[:5]) + (HELP_BUTTON,)


def _show_button(customer: Customer, label: str, words) -> Button:
    """A customer's 查看 button; as words `查看 <legal name>` where that name is this customer's alone."""
    return Button(label, "customer.show", str(customer.id), command=words(customer, "查看"))


def _after(text: str, words: tuple[str, ...]) -> str:
    text = text.strip()
    for word in words:
        if text.startswith(word):
            return text[len(word):].strip()
    return text


def _not_found(name: str) -> Card:
    said = f"客户名单里没有「{name[:20]}」。" if name else "说一下客户名，比如「查看 腾讯」。"
    return Card(title="没找到这个客户" if name else "查看哪家客户？", body=said, buttons=(Button("我的客户", "crm.mine", command="我的客户"), HELP_BUTTON))


def _next_text(customer: Customer, ctx: Context) -> str:
    if customer.next_followup_at is None:
        return ""
    local = customer.next_followup_at.astimezone(ZoneInfo(ctx.timezone))
    today = ctx.now.astimezone(ZoneInfo(ctx.timezone)).date()
    if local.date() < today:
        return f"· 逾期{(today - local.date()).days}天"
    return f"· {day_text(local.date())}"


def _customer_from(ctx: Context) -> Customer | None:
    value = ctx.event.value.strip()
    return customers.get(ctx.session, int(value)) if value.isdigit() else None


def _gone() -> Card:
    return Card(title="找不到这个客户", body="可能已经被删除或合并了。发客户名字再查一次。", buttons=MENU_BUTTONS)
