"""The approver's other buttons: 转交 (to a colleague), 加签 (someone before or after me), 退回 (to
an earlier step), and 评论. A tap asks one question (who? why?); typing it in one go works too:
`转交 R-1001 李四`, `加签 R-1001 李四 之后`, `退回 R-1001 金额要重新核对`, `评论 R-1001 已电话确认`.
"""

from __future__ import annotations

import re

from cards import Card
from handlers import guided
from handlers.people import person_named
from handlers.approvals import HELP_BUTTON, NUMBER, already_card, guard, my_open_task, open_task_on, refuse, said_step
from handlers.router import Abandon, Context, Routes
from workflows import conversations
from workflows.approvals import access
from workflows.approvals import cards as views
from workflows.approvals import requests
from workflows.approvals.requests import NotYours, Stale
from workflows.conversations import Form

routes = Routes()

FORM = "approval.act"
ASKS = {"transfer": "转交给谁？回一个同事的名字。", "add_signer": "加签谁？回名字；要加在你之后，名字后面写「之后」。",
        "return": "退回的原因？（会退回到上一步）"}


@routes.action("approval.transfer")
@routes.action("approval.add_signer")
@routes.action("approval.return")
def ask_detail(ctx: Context) -> Card:
    found = my_open_task(ctx, int(ctx.event.value) if ctx.event.value.isdigit() else None)
    if isinstance(found, Card):
        return found
    task, _ = found
    kind = ctx.event.action.split(".", 1)[1]
    form = conversations.start(ctx.session, ctx.employee, FORM, kind, {"task_id": task.id}, ctx.now)
    return guided.ask(ctx, form)


def _ask(ctx: Context, form: Form) -> Card:
    return Card(title={"transfer": "转交", "add_signer": "加签", "return": "退回"}[form.step],
                body=ASKS[form.step], buttons=(guided.CANCEL_BUTTON,))


routes.flow(FORM, "审批操作")
for _kind in ASKS:
    routes.step(FORM, _kind, ask=_ask)(lambda ctx, form, answer: _act(ctx, form.step, form.data["task_id"], answer))


@routes.command("转交", "加签", "退回", "评论", "备注", prefix=True)
def typed(ctx: Context) -> Card:
    text = ctx.event.text.strip()
    verb = text[:2]
    match = NUMBER.search(text)
    if match is None:
        return Card(title="哪一单？", body=f"请带上单号，比如「{verb} R-1001 …」。", buttons=(HELP_BUTTON,))
    request = requests.by_number(ctx.session, match.group(1))
    rest = text[match.end():].strip()
    refused = guard(ctx, request, "comment" if verb in ("评论", "备注") else "decide")
    if refused is not None:
        return refused
    if verb in ("评论", "备注"):
        if not rest:
            return Card(title="评论", body=f"写点什么吧，比如「评论 {request.number} 已电话确认」。")
        requests.comment_on(ctx.session, request, by=ctx.employee, text=rest, now=ctx.now, platform=ctx.event.platform)
        return views.status_card(ctx.session, request, ctx.timezone, headline="评论已记下。")
    step, rest = said_step(rest)
    task = open_task_on(ctx, request, step)
    if isinstance(task, Card):
        return task
    kind = {"转交": "transfer", "加签": "add_signer", "退回": "return"}[verb]
    if step is not None and not rest.strip():  # the card's button as words: ask, as the tap does
        form = conversations.start(ctx.session, ctx.employee, FORM, kind, {"task_id": task.id}, ctx.now)
        return guided.ask(ctx, form)
    return _act(ctx, kind, task.id, rest.strip())


def _act(ctx: Context, kind: str, task_id: int, answer: str) -> Card:
    conversations.finish(ctx.session, ctx.employee)
    try:
        if kind == "return":
            step = requests.send_back(ctx.session, task_id, by=ctx.employee, to_step=None, comment=answer,
                                      now=ctx.now, platform=ctx.event.platform, tz=ctx.timezone)
            return Card(title="已退回", body=f"退回到第{step + 1}步，那一步的审批人会重新收到卡片。")
        before = not re.search(r"之后|后面|后加", answer)
        person = person_named(ctx, re.sub(r"之前|之后|前面|后面|后加|前加", "", answer).strip())
        if isinstance(person, Card):
            return person
        if kind == "transfer":
            requests.transfer(ctx.session, task_id, by=ctx.employee, to=person, now=ctx.now,
                              platform=ctx.event.platform, tz=ctx.timezone)
            return Card(title="已转交", body=f"已转交给{person.name}，这一单不用你审批了。")
        requests.add_signer(ctx.session, task_id, by=ctx.employee, who=person, before=before, now=ctx.now,
                            platform=ctx.event.platform, tz=ctx.timezone)
        return Card(title="已加签", body=f"已请{person.name}{'先审批，之后再回到你' if before else '在你之后审批'}。")
    except NotYours:
        return refuse(ctx, access.NOT_YOURS, kind, None)
    except Stale as stale:
        return already_card(ctx, stale)
    except ValueError as problem:  # may come after some writes (nobody but the requester to take a seat)
        raise Abandon(Card(title="办不了", body=str(problem), buttons=(HELP_BUTTON,))) from None


