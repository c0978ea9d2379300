"""OA requests from chat: `报销 出租车 86.5` → a confirmation card showing who will approve →
提交 → each approver gets a card with 同意 / 拒绝; `我的申请`, `我的审批`, `撤回 R-1001`,
`记录 R-1001`, `谁审批 报销 3000`, and typed `同意 R-1001` / `拒绝 R-1001 原因`.
"""

from __future__ import annotations

import re
from dataclasses import replace
from zoneinfo import ZoneInfo

from cards import Button, Card
from handlers.menu import MENU_BUTTONS
from handlers.router import Context, Routes
from storage.models import ApprovalRequest, ApprovalTask
from handlers import guided, refusals
from workflows import audit, contracts, conversations, customers, followups, workdays
from workflows.amounts import find_amount
from workflows.approvals import access, attachments
from workflows.approvals import cards as views
from workflows.approvals import requests
from workflows.approvals.chain import plan
from workflows.approvals.parse import TYPE_WORDS, Draft, Missing, parse_request
from workflows.conversations import Form
from workflows.approvals.requests import NotYours, Stale
from workflows.followups import when_text
from workflows.identity import employees_named

routes = Routes()

HELP_BUTTON = Button("帮助", "help", command="帮助")
FORM = "approval.new"
MAX_MISSES = 2
NUMBER = re.compile(r"[Rr]-?\s*(\d{4,})")
# `第1步` after the number: the step a tapped card was for (views.step_words). A decision that names a
# step acts only while the sender's open task is on that step, so an old card cannot decide a newer one.
STEP = re.compile(r"^\s*第\s*(\d{1,3})\s*步(?=\s|$)")  # 「第3步的金额不对」 is a reason, not a step
REJECT_FORM = "approval.reject"  # after 拒绝: the next message is the reason


@routes.command(*TYPE_WORDS, prefix=True)
def new_request(ctx: Context) -> Card:
    return _understood(ctx, ctx.event.text.strip(), misses=0)


def _understood(ctx: Context, text: str, *, misses: int) -> Card:
    """A draft and its confirmation card, or the one question still open (a guided form that keeps
    what was said so far and adds each answer to it)."""
    parsed = parse_request(text, ctx.now, ctx.timezone, workdays.for_company(ctx.session))
    if parsed is None:
        return Card(title="申请", body="要申请什么？比如「报销 出租车 86.5」。", buttons=(HELP_BUTTON,))
    if isinstance(parsed, Missing):
        if misses >= MAX_MISSES:
            conversations.finish(ctx.session, ctx.employee)
            return Card(title=f"{parsed.type}没有提交", body=f"还是没看懂。{parsed.question}", buttons=MENU_BUTTONS)
        form = conversations.start(ctx.session, ctx.employee, FORM, "missing",
                                   {"text": text, "question": parsed.question, "type": parsed.type,
                                    "misses": misses}, ctx.now)
        return guided.ask(ctx, form)
    conversations.finish(ctx.session, ctx.employee)
    request = requests.draft(ctx.session, ctx.employee, parsed, source_key=f"{ctx.event.platform}:{ctx.event.event_id}",
                             now=ctx.now)
    return views.confirm_card(ctx.session, request, requests.preview(ctx.session, request))


def _ask_missing(ctx: Context, form: Form) -> Card:
    return Card(title=form.data["type"], body=form.data["question"] + "\n直接回答就行，不用重说一遍。",
                buttons=(guided.CANCEL_BUTTON,))


routes.flow(FORM, "申请")


@routes.step(FORM, "missing", ask=_ask_missing)
def _answer_missing(ctx: Context, form: Form, answer: str) -> Card:
    return _understood(ctx, f"{form.data['text']} {answer}", misses=form.data["misses"] + 1)


@routes.command("报销", "请假", "出差", "采购", "申请")
def request_word_alone(ctx: Context) -> Card:
    """The word alone (or the menu button's words) opens the form at its first question."""
    return _understood(ctx, ctx.event.text.strip(), misses=0)


@routes.action("menu.expense")
def expense_from_menu(ctx: Context) -> Card:
    return _understood(ctx, "报销", misses=0)


@routes.action("menu.leave")
def leave_from_menu(ctx: Context) -> Card:
    return _understood(ctx, "请假", misses=0)


@routes.action("approval.choose")
def choose(ctx: Context) -> Card:
    request = _request(ctx)
    refused = guard(ctx, request, "choose")
    if refused is not None:
        return refused
    if request.status != "draft":
        return _gone()
    return _ask_choice(ctx, request)


def _ask_choice(ctx: Context, request: ApprovalRequest) -> Card:
    form = conversations.start(ctx.session, ctx.employee, FORM, "chosen", {"request_id": request.id}, ctx.now)
    return guided.ask(ctx, form)


def _ask_chosen(ctx: Context, form: Form) -> Card:
    return Card(title="选审批人", body="请回一位同事的名字，由他/她审批这一步。", buttons=(guided.CANCEL_BUTTON,))


@routes.step(FORM, "chosen", ask=_ask_chosen)
def _answer_chosen(ctx: Context, form: Form, answer: str) -> Card:
    request = ctx.session.get(ApprovalRequest, form.data["request_id"])
    people = employees_named(ctx.session, answer)
    if len(people) != 1:
        return Card(title="选审批人", body=f"没找到唯一一位叫「{answer.strip()}」的在职同事，请写全名。",
                    buttons=(guided.CANCEL_BUTTON,))
    try:
        requests.choose_approver(ctx.session, request, people[0], by=ctx.employee)
    except NotYours:
        return refuse(ctx, access.NOT_YOURS, "choose", request)
    except ValueError as problem:
        return Card(title="选审批人", body=str(problem), buttons=(guided.CANCEL_BUTTON,))
    conversations.finish(ctx.session, ctx.employee)
    return views.confirm_card(ctx.session, request, requests.preview(ctx.session, request))


def attach_invoice(ctx: Context) -> Card | None:
    """A photo right after an expense (or purchase, trip) request: its invoice. None if there is none."""
    request = attachments.recent_request(ctx.session, ctx.employee, ctx.now)
    latest_visit = followups.recent_visit(ctx.session, ctx.employee, ctx.now)
    if request is None or (latest_visit is not None and latest_visit.happened_at > request.created_at):
        return None  # the visit was more recent: the photo is its 签到
    added = attachments.attach_photo(ctx.session, request, ctx.upload, by=ctx.employee,
                                     platform=ctx.event.platform, now=ctx.now)
    count = attachments.photo_count(request)
    said = f"已附在{request.type}「{request.summary}」上，共 {count} 张。" if added else "这张已经收到过了。"
    return Card(title=f"收到照片 · {request.number if request.status != 'draft' else request.type}", body=said)


@routes.command("查看发票", "查看照片", prefix=True)
@routes.action("approval.photos")
def send_photos(ctx: Context) -> Card:
    """查看发票 (the approver's card, or `查看发票 R-1001`): the request's photos to whoever asked, as
    image messages — only someone involved (the shared guard; an outsider is refused and audited),
    each photo once a day however often tapped."""
    request = _request(ctx) if ctx.event.kind == "action" else _numbered(ctx)
    if request is None and not _names_a_number(ctx):
        return Card(title="查看哪一单？", body="请带上单号，比如「查看发票 R-1001」。", buttons=(HELP_BUTTON,))
    refused = guard(ctx, request, "view")
    if refused is not None:
        return refused
    day = ctx.now.astimezone(ZoneInfo(ctx.timezone)).date().isoformat()
    total, queued = attachments.queue_photos(ctx.session, request, viewer=ctx.employee, platform=ctx.event.platform,
                                             user_id=ctx.event.sender, day=day)
    title = f"{'发票照片' if request.type == '报销' else '照片'} · {request.number}"
    if not total:
        return Card(title=title, body="这一单没有附照片。")
    audit.record(ctx.session, actor=ctx.employee, action="approval.view_photos", subject=f"approval:{request.id}",
                 platform=ctx.event.platform, detail={"photos": total, "sent": queued}, at=ctx.now)
    if queued:
        return Card(title=title, body=f"{total} 张照片马上发给你，在下面的消息里查看。")
    return Card(title=title, body=f"今天已经发给你这 {total} 张照片了，往上翻聊天记录就能看到。")


@routes.command("合同", "合同审批", prefix=True)
def contract(ctx: Context) -> Card:
    """`合同 腾讯 50万`: a contract approval typed by hand (赢单 raises one by itself)."""
    words = re.sub(r"^(合同审批|合同)\s*", "", ctx.event.text.strip())
    found = find_amount(words)
    name = (words[:found[1]] + " " + words[found[2]:]).strip().split(" ")[0] if found else words.split(" ")[0]
    match = customers.find(ctx.session, name, owner_id=ctx.employee.id) if name else None
    if found is None or match is None or match.decision != "accept":
        return Card(title="合同", body="说客户和金额，比如「合同 腾讯 50万」。赢单的商机会自动发起合同审批。",
                    buttons=(HELP_BUTTON,))
    customer = customers.get(ctx.session, match.customer_id)
    if not customers.may_log(ctx.session, ctx.employee, customer):
        return Card(title="不是你的客户", body=f"{customer.name[:16]}由{customers.owner_name(ctx.session, customer)}负责。",
                    buttons=(HELP_BUTTON,))
    # No deal unless the requester picks one on the card (contracts.deal_question): a contract typed for
    # 8万 must not sign, and plan the payments of, whatever deal the customer happens to have.
    draft = contracts.contract_draft(customer, found[0], None)
    request = requests.draft(ctx.session, ctx.employee, draft, source_key=f"{ctx.event.platform}:{ctx.event.event_id}",
                             now=ctx.now)
    return views.confirm_card(ctx.session, request, requests.preview(ctx.session, request))


@routes.action("approval.submit")
def submit(ctx: Context) -> Card:
    request = _request(ctx)
    refused = guard(ctx, request, "submit")
    if refused is not None:
        return refused
    try:
        fresh = requests.submit(ctx.session, request, by=ctx.employee, now=ctx.now, platform=ctx.event.platform,
                                tz=ctx.timezone, card_key=ctx.reply_key)
    except NotYours:
        return refuse(ctx, access.NOT_YOURS, "submit", request)
    except requests.NeedsChoice:
        return _ask_choice(ctx, request)
    if not fresh:
        return views.status_card(ctx.session, request, ctx.timezone, headline="已经提交过了，不用再点。")
    return views.submitted_card(ctx.session, request)


@routes.action("approval.discard")
def discard(ctx: Context) -> Card:
    request = _request(ctx)
    refused = guard(ctx, request, "discard")
    if refused is not None:
        return refused
    if request.status == "draft":
        ctx.session.delete(request)
        return Card(title="已取消", body="这条申请没有提交。需要时重新发一条就行。", buttons=MENU_BUTTONS)
    return views.status_card(ctx.session, request, ctx.timezone, headline="已经提交了，要撤回请点「撤回」。")


@routes.action("approval.approve")
def approve(ctx: Context) -> Card:
    return _decide(ctx, _task_id(ctx.event.value), approve=True, comment="")


@routes.action("approval.reject")
def ask_reason(ctx: Context) -> Card:
    found = my_open_task(ctx, _task_id(ctx.event.value))
    if isinstance(found, Card):
        return found
    return _ask_for_reason(ctx, *found)


def _ask_for_reason(ctx: Context, task: ApprovalTask, request: ApprovalRequest) -> Card:
    """The reason card; until it is answered, whatever the approver types next is the reason."""
    conversations.start(ctx.session, ctx.employee, REJECT_FORM, "reason", {"task_id": task.id}, ctx.now)
    return views.reject_reason_card(request, task)


def _ask_reason_again(ctx: Context, form: Form) -> Card:
    found = my_open_task(ctx, form.data.get("task_id"))
    return found if isinstance(found, Card) else views.reject_reason_card(found[1], found[0])


routes.flow(REJECT_FORM, "拒绝")


@routes.step(REJECT_FORM, "reason", ask=_ask_reason_again)
def typed_reason(ctx: Context, form: Form, answer: str) -> Card:
    """发票抬头不对 typed after tapping 拒绝: that is the reason (取消 and whole commands still win)."""
    conversations.finish(ctx.session, ctx.employee)
    return _decide(ctx, form.data.get("task_id"), approve=False, comment=answer.strip()[:200])


@routes.action("approval.reject_as")
def reject_with_reason(ctx: Context) -> Card:
    task_id, _, index = ctx.event.value.partition(":")
    reason = views.REJECT_REASONS[int(index)] if index.isdigit() and int(index) < len(views.REJECT_REASONS) else ""
    _finish_reject_form(ctx)
    return _decide(ctx, _task_id(task_id), approve=False, comment=reason)


@routes.command(views.KEEP_WORDS)
@routes.action("approval.keep")
def keep(ctx: Context) -> Card:
    _finish_reject_form(ctx)
    return Card(title="好的", body="没有拒绝，单子还在等你审批。")


def _finish_reject_form(ctx: Context) -> None:
    form = conversations.current(ctx.session, ctx.employee, ctx.now)
    if form is not None and form.flow == REJECT_FORM:
        conversations.finish(ctx.session, ctx.employee)


@routes.command("同意", "批准", "拒绝", "驳回", prefix=True)
def decide_by_words(ctx: Context) -> Card:
    text = ctx.event.text.strip()
    approve = text.startswith(("同意", "批准"))
    match = NUMBER.search(text)
    if match is None:
        return Card(title="哪一单？", body="请带上单号，比如「同意 R-1001」或「拒绝 R-1001 缺少发票」。",
                    buttons=(Button("我的审批", "approval.todo", command="我的审批"), HELP_BUTTON))
    request = requests.by_number(ctx.session, match.group(1))
    refused = guard(ctx, request, "decide")
    if refused is not None:
        return refused
    step, rest = said_step(text[match.end():])
    found = open_task_on(ctx, request, step)
    if isinstance(found, Card):
        return found
    task = found
    comment = rest.strip(" ，,：:") if not approve else ""
    if not approve and not comment:
        return _ask_for_reason(ctx, task, request)
    return _decide(ctx, task.id, approve=approve, comment=comment)


@routes.command("我的申请", "我的单子")
@routes.action("approval.mine")
def my_requests(ctx: Context) -> Card:
    rows = requests.mine(ctx.session, ctx.employee)
    if not rows:
        return Card(title="我的申请", body="还没有申请。比如发「报销 出租车 86.5」。", buttons=MENU_BUTTONS)
    lines = [f"· {r.number} {r.type} {r.summary[:14]} · {views.STATUS_TEXT[r.status]}" for r in rows]
    return Card(title=f"我的申请 · 最近{len(rows)}条", body="\n".join(lines),
                buttons=tuple(Button(r.number, "approval.show", str(r.id), command=f"记录 {r.number}")
                              for r in rows[:5]) + (HELP_BUTTON,))


@routes.command("我的审批", "待审批", "待我审批")
@routes.action("approval.todo")
def my_tasks(ctx: Context) -> Card:
    rows = requests.waiting_for(ctx.session, ctx.employee)
    if not rows:
        return Card(title="我的审批", body="没有等你审批的单子。", buttons=(Button("我的申请", "approval.mine", command="我的申请"),
                                                                        HELP_BUTTON))
    lines = [f"· {r.number} {r.type} {r.summary[:14]}" for _, r in rows]
    return Card(title=f"待我审批 · {len(rows)}单", body="\n".join(lines[:8]),
                buttons=tuple(Button(r.number, "approval.open", str(t.id), command=f"审批 {r.number}")
                              for t, r in rows[:5]) + (HELP_BUTTON,))


@routes.action("approval.open")
def open_task(ctx: Context) -> Card:
    found = my_open_task(ctx, _task_id(ctx.event.value))
    if isinstance(found, Card):
        return found
    task, request = found
    return views.task_card(ctx.session, request, task)


@routes.command("撤回", prefix=True)
@routes.action("approval.withdraw")
def withdraw(ctx: Context) -> Card:
    request = _request(ctx) if ctx.event.kind == "action" else _numbered(ctx)
    if request is None and not _names_a_number(ctx):
        return Card(title="撤回哪一单？", body="请带上单号，比如「撤回 R-1001」。只发「撤回」是撤销刚记的跟进。",
                    buttons=(Button("我的申请", "approval.mine", command="我的申请"), HELP_BUTTON))
    refused = guard(ctx, request, "withdraw")
    if refused is not None:
        return refused
    try:
        requests.withdraw(ctx.session, request, by=ctx.employee, now=ctx.now, platform=ctx.event.platform,
                          tz=ctx.timezone)
    except NotYours:
        return refuse(ctx, access.NOT_YOURS, "withdraw", request)
    except Stale:
        return views.status_card(ctx.session, request, ctx.timezone, headline="已经不能撤回了。")
    return Card(title=f"已撤回 · {request.number}", body=f"{request.type}：{request.summary} 已撤回，审批人也知道了。",
                buttons=MENU_BUTTONS)


@routes.command("催办", "催一下", "催审批", prefix=True)
@routes.action("approval.nudge")
def nudge(ctx: Context) -> Card:
    request = _request(ctx) if ctx.event.kind == "action" else _numbered(ctx)
    if request is None and not _names_a_number(ctx):
        mine = [r for r in requests.mine(ctx.session, ctx.employee) if r.status == "pending"]
        request = mine[0] if len(mine) == 1 else None
        if request is None:
            return Card(title="催哪一单？", body="请带上单号，比如「催办 R-1001」。",
                        buttons=(Button("我的申请", "approval.mine", command="我的申请"), HELP_BUTTON))
    refused = guard(ctx, request, "nudge")
    if refused is not None:
        return refused
    try:
        told = requests.nudge(ctx.session, request, by=ctx.employee, now=ctx.now, platform=ctx.event.platform)
    except NotYours:
        return refuse(ctx, access.NOT_YOURS, "nudge", request)
    except Stale:
        return views.status_card(ctx.session, request, ctx.timezone, headline="这一单已经处理完了，不用催。")
    except requests.TooSoon as soon:
        return Card(title="刚催过", body=f"{when_text(soon.last, ctx.timezone)} 已经催过，一小时内只能催一次。",
                    buttons=(Button("查看进度", "approval.show", str(request.id), command=f"记录 {request.number}"),))
    # The time makes each answer differ: WeCom drops a text identical to one sent in the last 30 min.
    return Card(title=f"已催办 · {request.number}",
                body=f"{ctx.now.astimezone(ZoneInfo(ctx.timezone)):%H:%M} 已提醒 {told} 位审批人，一小时内不能再催。")


@routes.command("记录", "查单", prefix=True)
@routes.action("approval.show")
def show(ctx: Context) -> Card:
    request = _request(ctx) if ctx.event.kind == "action" else _numbered(ctx)
    if request is None and not _names_a_number(ctx):
        return Card(title="查哪一单？", body="请带上单号，比如「记录 R-1001」。", buttons=(HELP_BUTTON,))
    refused = guard(ctx, request, "view")
    if refused is not None:
        return refused
    return views.status_card(ctx.session, request, ctx.timezone)


@routes.command("谁审批", "谁来审批", "审批人", prefix=True)
def who_approves(ctx: Context) -> Card:
    said = re.sub(r"^(谁来审批|谁审批|审批人)\s*", "", ctx.event.text.strip())
    parsed = parse_request(said, ctx.now, ctx.timezone, workdays.for_company(ctx.session)) if said else None
    if not isinstance(parsed, Draft):
        return Card(title="谁审批", body="说一下是什么申请，比如「谁审批 报销 3000」「谁审批 请假 下周一到周五」。",
                    buttons=(HELP_BUTTON,))
    chosen = plan(ctx.session, ctx.employee, parsed.type, parsed.facts())
    return Card(title=f"谁审批 · {parsed.type}", body=f"{parsed.summary}：{views.chain_text(ctx.session, chosen.steps)}",
                footer="只是预览，没有提交任何申请")


@routes.command("提交", prefix=True)
def submit_by_words(ctx: Context) -> Card:
    """`提交 R-1004`: what the confirmation card's 提交 sends on DingTalk; the same checks as the tap."""
    return _by_number(ctx, submit, "提交")


@routes.command("选审批人", prefix=True)
def choose_by_words(ctx: Context) -> Card:
    return _by_number(ctx, choose, "选审批人")


@routes.command("取消", prefix=True)
def discard_by_words(ctx: Context) -> Card:
    """`取消 R-1004` drops that draft; 取消 with anything else closes the open form as 取消 alone does."""
    if NUMBER.search(ctx.event.text) is None:
        return guided.cancel_form(ctx)
    return _by_number(ctx, discard, "取消")


@routes.command("审批", prefix=True)
def open_by_words(ctx: Context) -> Card:
    """`审批 R-1004` (a 待我审批 list button): that request's card with my buttons, if it waits for me."""
    match = NUMBER.search(ctx.event.text)
    if match is None:
        return my_tasks(ctx)
    request = requests.by_number(ctx.session, match.group(1))
    refused = guard(ctx, request, "decide")
    if refused is not None:
        return refused
    found = open_task_on(ctx, request, None)
    return found if isinstance(found, Card) else views.task_card(ctx.session, request, found)


def _by_number(ctx: Context, handler, verb: str) -> Card:
    """A requester's typed `<verb> R-1004`, run as the tap on that request's card would be."""
    match = NUMBER.search(ctx.event.text)
    if match is None:
        return Card(title=f"{verb}哪一单？", body=f"请带上单号，比如「{verb} R-1001」。要新申请，直接说「报销 出租车 86.5」。",
                    buttons=(Button("我的申请", "approval.mine", command="我的申请"), HELP_BUTTON))
    request = requests.by_number(ctx.session, match.group(1))
    if request is None:
        return _not_found()
    ctx.event = replace(ctx.event, kind="action", action=f"approval.{_ACTIONS[verb]}", value=str(request.id))
    return handler(ctx)


_ACTIONS = {"提交": "submit", "选审批人": "choose", "取消": "discard"}


def said_step(rest: str) -> tuple[int | None, str]:
    """(the step index a `第N步` names, or None; the words after it)."""
    match = STEP.match(rest)
    return (int(match.group(1)) - 1, rest[match.end():]) if match else (None, rest)


def open_task_on(ctx: Context, request: ApprovalRequest, step: int | None) -> ApprovalTask | Card:
    """The sender's open task on `request` (on `step`, when the words name one); else why not — a
    step that has moved on is said so and nothing is decided."""
    task = next((t for t, r in requests.waiting_for(ctx.session, ctx.employee) if r.id == request.id), None)
    if task is None:
        return already_card(ctx, requests.already_decided(ctx.session, request))
    if step is not None and task.step != step:
        audit.record(ctx.session, actor=ctx.employee, action="approval.stale_tap", subject=f"approval:{request.id}",
                     platform=ctx.event.platform, detail={"said_step": step, "step": task.step}, at=ctx.now)
        return views.status_card(ctx.session, request, ctx.timezone,
                                 headline=f"第{step + 1}步已经处理过了，这一单现在到了第{task.step + 1}步。"
                                          f"这条消息没有替你审批，请看新的审批卡片。")
    return task


# -- helpers ------------------------------------------------------------------------------------


def _decide(ctx: Context, task_id: int | None, *, approve: bool, comment: str) -> Card:
    found = my_open_task(ctx, task_id)
    if isinstance(found, Card):
        return found
    try:
        outcome = requests.decide(ctx.session, task_id, by=ctx.employee, approve=approve, comment=comment,
                                  now=ctx.now, platform=ctx.event.platform, tz=ctx.timezone)
    except NotYours:
        return refuse(ctx, access.NOT_YOURS, "decide", found[1])
    except Stale as stale:
        return already_card(ctx, stale)
    verb = "已同意" if approve else "已拒绝"
    return views.status_card(ctx.session, outcome.request, ctx.timezone, headline=f"你{verb}，申请人会收到通知。")


def already_card(ctx: Context, stale: Stale) -> Card:
    request = stale.request
    if stale.by and stale.at:
        head = f"已处理：{stale.by} {when_text(stale.at, ctx.timezone)}"
    else:
        head = f"这一单{views.STATUS_TEXT[request.status]}，不用再处理了。"
    return views.status_card(ctx.session, request, ctx.timezone, headline=head)


def my_open_task(ctx: Context, task_id: int | None) -> tuple[ApprovalTask, ApprovalRequest] | Card:
    """The tapped task if it is mine to decide and still open; else the card that says why not."""
    task = ctx.session.get(ApprovalTask, task_id) if task_id is not None else None
    request = ctx.session.get(ApprovalRequest, task.request_id) if task is not None else None
    refused = guard(ctx, request, "decide", task=task)
    if refused is not None:
        return refused
    if task.status != "pending" or request.status != "pending" or request.step != task.step:
        return already_card(ctx, requests.already_decided(ctx.session, request))
    return task, request


def guard(ctx: Context, request: ApprovalRequest | None, action: str, task: ApprovalTask | None = None) -> Card | None:
    """The one check before any approval action: None if allowed, else the refusal, audited."""
    if request is None:  # a discarded draft tapped again, or a number that was never used
        return _not_found()
    refusal = access.check(ctx.session, ctx.employee, request, action, task)
    return None if refusal is None else refuse(ctx, refusal, action, request)


def refuse(ctx: Context, refusal: access.Refusal, action: str, request: ApprovalRequest | None) -> Card:
    subject = f"approval:{request.id}" if request is not None else f"approval:?{ctx.event.value or ctx.event.text}"
    attempted = ctx.event.action if ctx.event.kind == "action" else f"approval.{action}"  # a tap: what was tapped
    return refusals.refuse(ctx, attempted=attempted, why=refusal.why, subject=subject, title=refusal.title,
                   body=refusal.body)


def _request(ctx: Context) -> ApprovalRequest | None:
    value = ctx.event.value.strip()
    return ctx.session.get(ApprovalRequest, int(value)) if value.isdigit() else None


def _numbered(ctx: Context) -> ApprovalRequest | None:
    match = NUMBER.search(ctx.event.text) or re.search(r"(\d{4,})", ctx.event.text)
    return requests.by_number(ctx.session, match.group(1)) if match else None


def _names_a_number(ctx: Context) -> bool:
    """A tap (it carries an id) or typed words with a request number: the person meant one request,
    so a number that finds nothing is answered 找不到这一单, not asked about again."""
    return ctx.event.kind == "action" or bool(NUMBER.search(ctx.event.text) or re.search(r"\d{4,}", ctx.event.text))


def _task_id(value: str) -> int | None:
    return int(value) if value.strip().isdigit() else None


def _not_found() -> Card:
    return Card(title="找不到这一单", body="没有这个单号，或者这条申请已经取消了。", buttons=MENU_BUTTONS)


def _gone() -> Card:
    return Card(title="这个按钮已失效", body="这条申请已经取消或不存在了。", buttons=MENU_BUTTONS)


@routes.action(contracts.PICK)
def pick_deal(ctx: Context) -> Card:
    """A deal button (or 「不关联商机」) on a hand-typed contract's confirmation card: only the
    requester, only while it is a draft, only one of the customer's open deals."""
    request_id, _, deal_id = ctx.event.value.partition(":")
    request = ctx.session.get(ApprovalRequest, int(request_id)) if request_id.isdigit() else None
    picked = (int(deal_id) or None) if deal_id.isdigit() else -1  # 0: no deal; not a number: no such deal
    refused = guard(ctx, request, "choose")
    if refused is not None:
        return refused
    try:
        contracts.link_deal(ctx.session, request, picked, by=ctx.employee, platform=ctx.event.platform, now=ctx.now)
    except contracts.PickRefused:
        if request.type != "合同":
            return _gone()
        if request.status != "draft":
            return views.status_card(ctx.session, request, ctx.timezone, headline="已经提交了，关联的商机不能再改。")
        return views.confirm_card(ctx.session, request, requests.preview(ctx.session, request),
                                  note="没能关联这个商机：它可能已经结束，或你已不能推进它。")
    return views.confirm_card(ctx.session, request, requests.preview(ctx.session, request))
