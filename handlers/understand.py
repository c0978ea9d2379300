"""The understanding step: what a message that is not a typed command means, and the reply to it.

Typed commands and buttons are routed first (handlers/router.py); an open question takes the plain
text next (handlers/guided.py). Whatever is left comes here and goes, in this order, to:

1. small talk (多谢, 收到, 在吗) → a short kind line and the menu;
2. a reading of workflows/understanding.py (a mistyped command word, a phrase, a visit told as a
   story) or a customer's name then what was said (美团聊了续约下周再联系) → the command it stands
   for, run by its own handler — or, when that command would file something at once on a guess,
   a card that asks first (记上 / 不是);
3. a question about a customer (美团的地址在哪, 美团最近谁在跟) → the answer from its card;
4. a customer's name alone → its card;
5. only then, if a company configured one, a language model (handlers/model_guess.py), whose reading
   is always asked about first (对 / 不是); anything else → a short hint and the menu.
"""

from __future__ import annotations

from dataclasses import replace

from cards import Button, Card
from handlers import model_guess, visit
from handlers.customers import customer_card, lookup
from handlers.menu import MENU_BUTTONS, not_understood
from handlers.router import Context, Routes
from workflows import customers, followups, visit_text
from workflows.understanding import Understood, list_phrase, small_talk_reply, understand

routes = Routes()

# Words that make "美团 …" a report of a contact rather than a question or a name.
TALK_WORDS = ("聊", "谈", "沟通", "见了", "见面", "拜访", "开会", "约了", "签了", "报价", "演示", "电话", "联系")


routes.phrases(list_phrase)


@routes.fallback
def understand_or_hint(ctx: Context) -> Card | None:
    if ctx.event.kind not in ("text", "voice") or not ctx.event.text.strip():
        return not_understood(ctx)
    understood = read(ctx, ctx.event.text)
    if understood.intent == "small_talk":
        return Card(title="办理", body=small_talk_reply(understood.slots["kind"]), buttons=MENU_BUTTONS,
                    shareable=True)
    if understood.intent == "customer.ask":
        return _answer_question(ctx, understood) or _last_tries(ctx)
    if understood.command:
        return _run(ctx, understood) or _last_tries(ctx)
    return _last_tries(ctx)


def _last_tries(ctx: Context) -> Card:
    """What the rules could not place: a customer's name alone is its card; else the language
    model's reading, if one is configured (asked about first); else the hint."""
    return lookup(ctx) or model_guess.guess(ctx) or not_understood(ctx)


def read(ctx: Context, text: str) -> Understood:
    """The text's reading (workflows/understanding.py), or else — the one reading that needs the
    customer list — a customer's name followed by a report of talking to them (美团聊了续约下周再联系),
    read as a visit to ask about."""
    understood = understand(text)
    said = None if understood.intent else _reported_contact(ctx, text.strip())
    if said is None:
        return understood
    # The split is kept: asking about it needs the same customer, not a second pass of the matcher.
    return Understood("拜访", f"拜访 {text.strip()}", sure=False, how="story", slots={"said": said})


@routes.kind("voice")
def on_voice(ctx: Context) -> Card:
    """A voice message: its transcript is understood like typed text; a voice the platform could
    not turn into words asks for typing."""
    if ctx.event.text.strip():
        return understand_or_hint(ctx)
    return Card(title="暂时听不懂语音", body="请打字，或者点下面的按钮。", buttons=MENU_BUTTONS, shareable=True)


@routes.action("understood.yes")
def confirmed(ctx: Context) -> Card:
    """记上 (or 对) on a "did you mean" card: the command the message was read as is run as that
    message, so a second tap finds the visit already logged (the draft already made) instead of
    doing it twice. A language model's reading was kept when it was offered; the rules' reading is
    simply made again."""
    event_id = ctx.event.value.strip()
    command = model_guess.remembered_command(ctx, event_id) or _rules_command(ctx, event_id)
    if not command:
        return Card(title="这个按钮已失效", body="请重新发一次。", buttons=MENU_BUTTONS)
    if followups.logged_from(ctx.session, visit.source_key(ctx.event.platform, event_id)) is not None:
        return Card(title="已经记过了", body="这条跟进已经记录，不用再点。")
    source = replace(ctx.event, kind="text", text=command, event_id=event_id, action="", value="")
    handler, event = ctx.router.resolve(source)
    return handler(replace(ctx, event=event)) if handler is not None else not_understood(ctx)


def _rules_command(ctx: Context, event_id: str) -> str:
    original = customers.original_text(ctx.session, ctx.event.platform, event_id, ctx.event.sender)
    return read(ctx, original).command if original else ""


@routes.action("understood.no")
def declined(ctx: Context) -> Card:
    return Card(title="好的，没有记", body="换个说法再发一次，或者点下面的按钮：", buttons=MENU_BUTTONS)


# -- the readings ---------------------------------------------------------------------------------


def _run(ctx: Context, understood: Understood) -> Card | None:
    """Run the command `understood` stands for; None if no handler takes it (the caller hints)."""
    if understood.how in ("typo", "story") and _names_a_customer(ctx):
        return None  # 包销集团 is a customer, not a mistyped 报销: its card, from the lookup
    event = replace(ctx.event, text=understood.command)
    handler, event = ctx.router.resolve(event)
    if handler is None or handler is understand_or_hint:
        return None
    if not understood.sure:
        return _ask_first(ctx, understood)
    return handler(replace(ctx, event=event))


def _ask_first(ctx: Context, understood: Understood) -> Card | None:
    """A visit read from a story or a mistyped word: say what would be logged, log it on 记上."""
    said = understood.slots.get("said") or visit_text.split(ctx.session, understood.command, owner_id=ctx.employee.id)
    if said.found is None or said.found.decision == "create":
        return None  # 今天去了趟银行: nobody we know
    if said.found.decision == "choose":
        return _choose_then_log(ctx, said)
    customer = customers.get(ctx.session, said.found.customer_id)
    if not customers.may_log(ctx.session, ctx.employee, customer):
        return visit.record(ctx, customer, said.method, said.content)  # says whose it is, audited; logs nothing
    return Card(title=f"记一条{said.method}？", body="我是这样理解的，对的话点「记上」：",
                fields=(("客户", customer.name[:26]), ("方式", said.method), ("内容", (said.content or "（无）")[:26])),
                buttons=(Button("记上", "understood.yes", ctx.event.event_id, style="primary"),
                         Button("不是", "understood.no", ctx.event.event_id),
                         Button("帮助", "help", command="帮助")))


def _choose_then_log(ctx: Context, said: visit_text.VisitText) -> Card:
    buttons = tuple(Button(c.name[:10], "crm.pick", f"{c.customer_id} {ctx.event.event_id}", style="primary")
                    for c in said.found.candidates)
    return Card(title=f"记一条{said.method}？", body=f"「{said.query}」可能是下面几家，点一下就记上：",
                fields=tuple((f"{i + 1}", c.name[:26]) for i, c in enumerate(said.found.candidates)),
                buttons=buttons + (Button("不是", "understood.no", ctx.event.event_id),))


def _reported_contact(ctx: Context, text: str) -> visit_text.VisitText | None:
    """美团聊了续约…: the split, when the text starts with a customer's name and reports talking to them."""
    if not any(word in text for word in TALK_WORDS):
        return None
    said = visit_text.split(ctx.session, text, owner_id=ctx.employee.id)
    return said if said.found is not None and said.found.decision == "accept" and said.content else None


def _answer_question(ctx: Context, understood: Understood) -> Card | None:
    found = customers.find(ctx.session, understood.slots["name"], owner_id=ctx.employee.id)
    if found.decision != "accept":
        return None
    customer = customers.get(ctx.session, found.customer_id)
    ask = understood.slots["ask"]
    if ask == "phone":  # the phone card checks who may see it, and records who looked
        tap = replace(ctx.event, kind="action", action="customer.phone", value=str(customer.id))
        return ctx.router.resolve(tap)[0](replace(ctx, event=tap))
    card = customer_card(ctx, customer)
    answer = {"owner": f"{followups.short_name(customer)}由{customers.owner_name(ctx.session, customer)}负责。",
              "address": f"{followups.short_name(customer)}的地址还没有登记"
                         + (f"，地区：{customer.region}。" if customer.region else "。")}.get(ask, "")
    return replace(card, body=f"{answer}\n{card.body}".strip()) if answer else card


def _names_a_customer(ctx: Context) -> bool:
    text = ctx.event.text.strip()
    return " " not in text and customers.find(ctx.session, text, owner_id=ctx.employee.id).decision == "accept"
