"""商机 from chat: `商机 腾讯 方案报价 50万 月底签`, `商机 腾迅 赢单`, `商机 腾讯` for the card.

customer (fuzzy, as for visits) → stage word (forgiving: 报价, 谈判, 签了, 丢了) → amount → expected
close. One open deal is moved, none gets one created, several get buttons to pick. The deal card
shows the next stages as buttons (`deal.move`, value `<deal_id>:<stage>:<version>`); `version` is
the latest stage change the card saw, so a tap after someone else moved the deal changes nothing
and says so, and a repeated tap finds the deal already there.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

from cards import Button, Card
from handlers.menu import MENU_BUTTONS
from handlers import refusals
from handlers.router import Context, Routes
from storage.models import Customer, Deal, DealStageChange, Employee
from workflows import customers, deals
from workflows.amounts import describe_amount, parse_amount
from workflows.deals import StageRefused
from workflows.followups import day_text, short_name
from workflows.when import parse_when, strip_when

routes = Routes()

WORD = "商机"
EXAMPLE = "商机 腾讯 方案报价 50万 月底签"
# Words that go with a date or amount and mean nothing on their own (月底签 → 签).
FILLER = {"签", "签约", "签单", "前", "左右", "预计", "金额", "成交", "预计成交", "大概", "约", "元"}
HELP_BUTTON = Button("帮助", "help", command="帮助")


@dataclass
class Asked:
    """What a 商机 message asked for, beyond the customer."""

    stage: str | None = None
    amount: Decimal | None = None
    close: date | None = None
    unknown: list[str] = field(default_factory=list)

    @property
    def anything(self) -> bool:
        return self.stage is not None or self.amount is not None or self.close is not None


@routes.command(WORD, prefix=True)
def deal_command(ctx: Context) -> Card:
    query, tail = _split(ctx.event.text)
    if not query:
        return _usage("哪家客户的商机？")
    found = customers.find(ctx.session, query, owner_id=ctx.employee.id)
    if found.decision == "choose":
        return _choose_customer(query, found, ctx.event.event_id)
    if found.decision == "create":
        return Card(title="没找到这个客户", body=f"客户名单里没有「{query}」。请检查名称，或发完整的公司名。",
                    buttons=MENU_BUTTONS[:1] + (HELP_BUTTON,))
    return _act(ctx, customers.get(ctx.session, found.customer_id), tail)


@routes.action("deal.customer")
def pick_customer(ctx: Context) -> Card:
    """A tap on one of the offered customers: do what the original message asked, for that one."""
    customer_id, _, event_id = ctx.event.value.partition(" ")
    original = customers.original_text(ctx.session, ctx.event.platform, event_id, ctx.event.sender)
    customer = customers.get(ctx.session, int(customer_id)) if customer_id.isdigit() else None
    if customer is None or original is None:
        return Card(title="这个按钮已失效", body=f"请重新发送，比如「{EXAMPLE}」。", buttons=MENU_BUTTONS)
    return _act(ctx, customer, _split(original)[1])


@routes.action("deal.stages")
def show_stages(ctx: Context) -> Card:
    """The deal card with a button for each next stage (the customer card's 推进商机 opens this)."""
    deal = deals.get(ctx.session, int(ctx.event.value)) if ctx.event.value.isdigit() else None
    if deal is None:
        return _gone()
    return deal_card(ctx, deal)


@routes.action("deal.move")
def tap_move(ctx: Context) -> Card:
    deal_id, stage, seen = _parse_move(ctx.event.value)
    deal = deals.get(ctx.session, deal_id) if deal_id else None
    if deal is None or not stage:
        return _gone()
    if deal.stage == stage:  # a second tap, or two people tapping the same
        return deal_card(ctx, deal, note=f"已经是「{stage}」了，没有改动。")
    if seen is not None and seen != deals.version(ctx.session, deal.id):
        return deal_card(ctx, deal, title=f"商机已有变化 · {_short(ctx, deal)}",
                         note=f"{_last_mover(ctx, deal)}已把它改到「{deal.stage}」，这次没有改动。")
    return _move(ctx, deal, stage)


@routes.action("deal.new")
def tap_new(ctx: Context) -> Card:
    """新建商机 from the card of a customer with none open; a repeated tap shows the one it made."""
    customer = customers.get(ctx.session, int(ctx.event.value)) if ctx.event.value.isdigit() else None
    if customer is None:
        return _gone()
    return _act(ctx, customer, "", create=True)


# -- the work -------------------------------------------------------------------------------------


def _act(ctx: Context, customer: Customer, tail: str, *, create: bool = False) -> Card:
    asked = _parse(ctx, tail)
    opened = deals.open_deals(ctx.session, customer.id)
    if not asked.anything and not create:
        if asked.unknown:
            return _usage(f"没看懂「{' '.join(asked.unknown)[:20]}」。")
        return _show(ctx, customer, opened)
    if not customers.may_log(ctx.session, ctx.employee, customer):
        owner = customers.owner_name(ctx.session, customer)
        return refusals.refuse(ctx, attempted="deal.change", why="not the owner's chain", subject=f"customer:{customer.id}",
                       title="不是你的客户", body=f"{short_name(customer)}由{owner}负责，请联系{owner}或你的经理。",
                       buttons=MENU_BUTTONS)
    if len(opened) > 1:
        return _choose_deal(ctx, customer, opened, asked)
    if create and opened:  # 新建商机 tapped again
        return deal_card(ctx, opened[0], note="已经有一个进行中的商机。")
    if not opened and asked.stage in deals.CLOSED:
        # 赢单/输单 said again after the deal closed is about that deal, not a new one won or lost
        # (a second contract approval); moving it between endings is a reopen, for managers.
        latest = deals.latest_deal(ctx.session, customer.id)
        opened = [latest] if latest is not None else []
    try:
        if not opened:
            deal = deals.create_deal(ctx.session, customer=customer, by=ctx.employee, stage=asked.stage,
                                     amount=asked.amount, expected_close=asked.close,
                                     platform=ctx.event.platform, now=ctx.now, tz=ctx.timezone)
            return deal_card(ctx, deal, title=f"已新建商机 · {short_name(customer)}", note=_leftover(asked))
        deal = opened[0]
        changed = _apply(ctx, deal, asked)
    except StageRefused as refused:
        return Card(title="没有改动", body=refused.reason, buttons=(Button("看商机", "deal.stages", str(opened[0].id)),
                                                                  HELP_BUTTON) if opened else (HELP_BUTTON,))
    note = "" if changed else "和原来一样，没有改动。"
    return deal_card(ctx, deal, title=f"商机已更新 · {short_name(customer)}" if changed else None,
                     note=(note + _leftover(asked)).strip())


def _apply(ctx: Context, deal: Deal, asked: Asked) -> bool:
    """Stage, amount and date onto one deal; True if anything changed. A refused stage changes nothing."""
    changed = False
    if asked.stage is not None:
        changed = deals.move_stage(ctx.session, deal, asked.stage, by=ctx.employee, platform=ctx.event.platform,
                                   now=ctx.now, tz=ctx.timezone) is not None
    if asked.amount is not None:
        changed |= deals.set_amount(ctx.session, deal, asked.amount, by=ctx.employee, platform=ctx.event.platform)
    if asked.close is not None:
        changed |= deals.set_expected_close(ctx.session, deal, asked.close, by=ctx.employee,
                                            platform=ctx.event.platform)
    return changed


def _move(ctx: Context, deal: Deal, stage: str) -> Card:
    before = deal.stage
    try:
        deals.move_stage(ctx.session, deal, stage, by=ctx.employee, platform=ctx.event.platform, now=ctx.now,
                         tz=ctx.timezone)
    except StageRefused as refused:
        return deal_card(ctx, deal, title="没有改动", note=refused.reason)
    return deal_card(ctx, deal, title=f"商机已推进 · {_short(ctx, deal)}", note=f"{before} → {stage}")


def _show(ctx: Context, customer: Customer, opened: list[Deal]) -> Card:
    if len(opened) == 1:
        return deal_card(ctx, opened[0])
    if len(opened) > 1:
        return _choose_deal(ctx, customer, opened, Asked())
    latest = deals.latest_deal(ctx.session, customer.id)
    if latest is not None:
        return deal_card(ctx, latest, note="没有进行中的商机，这是最近一个。")
    may = customers.may_log(ctx.session, ctx.employee, customer)
    return Card(title=f"商机 · {short_name(customer)}", body=f"{short_name(customer)}还没有商机。"
                + (f"\n发「商机 {short_name(customer)} 需求分析 50万」就能建一个。" if may else ""),
                buttons=((Button("新建商机", "deal.new", str(customer.id), style="primary"),) if may else ())
                + (HELP_BUTTON,))


# -- cards ----------------------------------------------------------------------------------------


def deal_card(ctx: Context, deal: Deal, *, title: str | None = None, note: str = "") -> Card:
    """Customer, stage, amount (for those allowed), expected close, the last three moves, and the
    next stages as buttons for whoever may move it."""
    customer = customers.get(ctx.session, deal.customer_id)
    amount = (_amount_text(deal.amount) if deals.may_see_amount(ctx.session, ctx.employee, deal) else "仅负责人可见")
    lines = [_change_line(ctx, c) for c in deals.history(ctx.session, deal.id, limit=3)]
    body = "\n".join(([note] if note else []) + (["最近变更："] + lines if lines else []))
    return Card(
        title=(title or f"商机 · {short_name(customer)}")[:36],
        body=body,
        fields=(("客户", customer.name[:26]), ("商机", deal.title[:26]), ("阶段", deal.stage), ("金额", amount),
                ("预计成交", day_text(deal.expected_close) if deal.expected_close else "未填"),
                ("负责人", _name(ctx, deal.owner_id))),
        buttons=_stage_buttons(ctx, deal),
        footer=_footer(ctx, deal),
    )


def _stage_buttons(ctx: Context, deal: Deal) -> tuple[Button, ...]:
    """Open deal: the next open stages (up to four), then 赢单 and 输单. Closed deal, for those who
    may reopen it: the last open stages and the other ending. Everyone else: none."""
    if not deals.may_move(ctx.session, ctx.employee, deal):
        return ()
    names, opens = deals.stages(ctx.session), deals.open_stages(ctx.session)
    if deals.is_closed(deal):
        if not deals.may_reopen(ctx.session, ctx.employee, deal):
            return ()
        targets = opens[-4:] + [s for s in deals.ENDINGS if s != deal.stage]
    else:
        after = opens[opens.index(deal.stage) + 1:] if deal.stage in opens else opens
        targets = after[:4] + [s for s in names if s in deals.ENDINGS]
    seen = deals.version(ctx.session, deal.id)
    styles = {deals.WON: "primary", deals.LOST: "danger"}
    return tuple(Button(s[:10], "deal.move", f"{deal.id}:{s}:{seen}", style=styles.get(s, "default"))
                 for s in targets)


def _footer(ctx: Context, deal: Deal) -> str:
    if not deals.may_move(ctx.session, ctx.employee, deal):
        return ""
    if deals.is_closed(deal) and not deals.may_reopen(ctx.session, ctx.employee, deal):
        return "已结束的商机只能由经理或管理员重新打开"
    return "点按钮推进阶段；改金额发「商机 客户 50万」"


def _choose_deal(ctx: Context, customer: Customer, opened: list[Deal], asked: Asked) -> Card:
    """Several open deals: one button each. With a stage asked, the tap moves that deal there."""
    buttons = []
    for deal in opened[:6]:
        if asked.stage:
            value, action = f"{deal.id}:{asked.stage}:{deals.version(ctx.session, deal.id)}", "deal.move"
        else:
            value, action = str(deal.id), "deal.stages"
        buttons.append(Button(deal.title[:10], action, value, style="primary"))
    what = f"改到「{asked.stage}」" if asked.stage else "查看和推进"
    extra = "\n金额和日期请选好后再发一次。" if asked.amount is not None or asked.close is not None else ""
    return Card(title=f"哪个商机？ · {short_name(customer)}",
                body=f"{short_name(customer)}有{len(opened)}个进行中的商机，点一个{what}：{extra}",
                fields=tuple((f"{i + 1}", f"{d.title[:16]} · {d.stage}") for i, d in enumerate(opened[:6])),
                buttons=tuple(buttons))


def _choose_customer(query: str, found, event_id: str) -> Card:
    buttons = tuple(Button(c.name[:10], "deal.customer", f"{c.customer_id} {event_id}", style="primary")
                    for c in found.candidates)
    return Card(title="您说的是哪家？", body=f"「{query}」可能是下面几家，点一下继续：",
                fields=tuple((f"{i + 1}", c.name[:26]) for i, c in enumerate(found.candidates)), buttons=buttons)


def _usage(question: str) -> Card:
    return Card(title="商机", body=f"{question}\n一句话说完就行，比如「{EXAMPLE}」，或「商机 腾讯」看商机。",
                buttons=(Button("返回菜单", "help", command="帮助"),))


def _gone() -> Card:
    return Card(title="这个按钮已失效", body="这个商机已不存在。请发「商机 客户名」重新查看。", buttons=MENU_BUTTONS)


# -- parsing and small helpers --------------------------------------------------------------------


def _split(text: str) -> tuple[str, str]:
    """`商机 腾讯 方案报价 50万` → ("腾讯", "方案报价 50万")."""
    text = unicodedata.normalize("NFKC", text).strip()  # full-width spaces and digits from phones
    rest = text[len(WORD):].strip() if text.startswith(WORD) else text
    query, _, tail = rest.partition(" ")
    return query.strip(), tail.strip()


def _parse(ctx: Context, tail: str) -> Asked:
    """Stage (first word that names one), expected close (a date phrase), amount (first word that is
    money). Whatever else was said is kept to be echoed as not understood."""
    asked = Asked()
    words = tail.split()
    for i, word in enumerate(words):
        stage = deals.match_stage(ctx.session, word)
        if stage is not None:
            asked.stage = stage
            del words[i]
            break
    rest = " ".join(words)
    when = parse_when(rest, ctx.now, ctx.timezone)
    if when is not None:
        asked.close = (when.end or when.start).date()
        rest = strip_when(rest, when)
    words = rest.split()
    for i, word in enumerate(words):
        amount = parse_amount(word)
        if amount is not None and amount > 0:
            asked.amount = amount
            del words[i]
            break
    asked.unknown = [w for w in words if w not in FILLER]
    return asked


def _parse_move(value: str) -> tuple[int | None, str, int | None]:
    """`12:方案报价:57` (or `12:方案报价`, version unknown) → (12, "方案报价", 57)."""
    deal_id, _, rest = value.partition(":")
    stage, seen = rest, None
    head, _, tail = rest.rpartition(":")
    if head and tail.isdigit():
        stage, seen = head, int(tail)
    return (int(deal_id) if deal_id.isdigit() else None), stage.strip(), seen


def _leftover(asked: Asked) -> str:
    return f"\n没看懂「{' '.join(asked.unknown)[:20]}」，这部分没有记。" if asked.unknown else ""


def _amount_text(amount: Decimal) -> str:
    return describe_amount(amount) if amount else "未填"


def _change_line(ctx: Context, change: DealStageChange) -> str:
    """11月21日 方案报价→商务谈判 张三: short, the WeCom subtitle holds about 110 characters."""
    day = _local_date(ctx, change.at)
    move = f"{change.from_stage}→{change.to_stage}" if change.from_stage else f"新建({change.to_stage})"
    who = _name(ctx, change.employee_id) if change.employee_id else "系统"
    return f"{day.month}月{day.day}日 {move} {who}"


def _local_date(ctx: Context, moment: datetime) -> date:
    if moment.tzinfo is None:  # SQLite hands back naive UTC
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(ZoneInfo(ctx.timezone)).date()


def _name(ctx: Context, employee_id: int | None) -> str:
    person = ctx.session.get(Employee, employee_id) if employee_id else None
    return person.name if person else "—"


def _last_mover(ctx: Context, deal: Deal) -> str:
    latest = deals.history(ctx.session, deal.id, limit=1)
    return _name(ctx, latest[0].employee_id) if latest and latest[0].employee_id else "别人"


def _short(ctx: Context, deal: Deal) -> str:
    return short_name(customers.get(ctx.session, deal.customer_id))
