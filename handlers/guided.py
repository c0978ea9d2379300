"""Guided forms in chat: one question at a time, and a way out at every step.

A flow registers its steps on its module's `Routes` (`routes.flow(...)`, `@routes.step(...)`): each
has `ask` (the question card) and `answer` (what to do with a reply). While a form is open, the router's guard hands it the next plain text. The rules that keep a
form from trapping anyone:

- 取消 / 算了 / 退出 (typed or tapped) always close the open form, say so, and show the menu.
- Any other whole command (帮助, 撤销, 拜访 腾讯, 报销 …) wins: the open form is dropped
  silently and the command runs as if no form had been open ("a command starts fresh").
- Button taps are never read as answers; a form's own buttons are `form.answer` taps that name the
  question they answer, so a tap on an old question's button cannot answer a newer one.
- Photos and locations go to their own handlers, which first offer them to the open form's flow
  (`offer_media`): the visit form keeps a location for its 签到, an expense form could take an invoice.
- Silence for `conversations.IDLE_EXPIRY` forgets the form.
"""

from __future__ import annotations

from cards import Button, Card
from handlers.menu import MENU_BUTTONS
from handlers.router import Context, Flow, Handler, Routes, normalize
from workflows import conversations
from workflows.conversations import Form

routes = Routes()

CANCEL_WORDS = ("取消", "算了", "退出")
CANCEL_BUTTON = Button("取消", "form.cancel", command="取消")


def ask(ctx: Context, form: Form) -> Card:
    """The open question again (after an aside such as a location sent mid-form)."""
    return ctx.router.steps[(form.flow, form.step)].ask(ctx, form)


def choice(label: str, form: Form, answer: str, *, style: str = "default", step: str = "") -> Button:
    """A button that answers the open question of `form` with `answer`.

    Where a platform can only send words (DingTalk's tap-to-send links) it sends `answer` itself, as
    if typed: plain text goes to the open form's question (the guard below), and only the sender's
    own. An answer that is an id (`#12`, a customer picked from several with alike names) keeps the
    `#form.answer` form, which names its question, so it can never answer another."""
    return Button(label[:10], "form.answer", f"{form.flow}:{step or form.step} {answer}", style=style,
                  command="" if answer.startswith("#") else answer)


def offer_media(ctx: Context) -> Card | None:
    """A photo or location for the open form, if its flow takes one; else None."""
    form = conversations.current(ctx.session, ctx.employee, ctx.now)
    flow = ctx.router.flows.get(form.flow) if form else None
    return flow.on_media(ctx, form) if flow and flow.on_media else None


# -- routing ------------------------------------------------------------------------------------


@routes.guard
def claim_plain_text(ctx: Context, handler: Handler | None) -> Handler | None:
    event = ctx.event
    if event.kind not in ("text", "voice") or not event.text.strip():
        return None  # taps, photos, locations: never swallowed
    if ctx.router.is_command(event.text):
        if handler is not cancel_form and normalize(event.text).split()[0] not in CANCEL_WORDS:
            conversations.finish(ctx.session, ctx.employee)  # a command starts fresh
        return None
    form = conversations.current(ctx.session, ctx.employee, ctx.now)
    step = ctx.router.steps.get((form.flow, form.step)) if form else None
    if step is None:
        return None
    return lambda c: step.answer(c, form, c.event.text.strip())


@routes.action("form.answer")
def answer_tapped(ctx: Context) -> Card:
    question, _, answer = ctx.event.value.partition(" ")
    form = conversations.current(ctx.session, ctx.employee, ctx.now)
    step = ctx.router.steps.get((form.flow, form.step)) if form else None
    if step is None or f"{form.flow}:{form.step}" != question:
        return Card(title="这个问题已经过去了", body="这个按钮已失效。需要的话重新开始就行。", buttons=MENU_BUTTONS)
    return step.answer(ctx, form, answer.strip())


@routes.command(*CANCEL_WORDS)
@routes.action("form.cancel")
def cancel_form(ctx: Context) -> Card:
    form = conversations.current(ctx.session, ctx.employee, ctx.now)
    if form is None:
        return Card(title="没有要取消的", body="现在没有进行中的事。想办什么，点下面的按钮：", buttons=MENU_BUTTONS)
    conversations.cancel(ctx.session, ctx.employee)
    flow = ctx.router.flows.get(form.flow, Flow("刚才的事"))
    note = flow.on_cancel(ctx, form) if flow.on_cancel else "刚才填的没有保存。"
    return Card(title="已取消", body=f"已取消{flow.title}。{note}\n想办别的，点下面的按钮：", buttons=MENU_BUTTONS)
