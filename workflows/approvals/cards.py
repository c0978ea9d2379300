"""The cards of a request: what the requester, each approver and the CC list see.

One function per viewpoint, all built from the same request row, so every card says the same thing
about the request's state.
"""

from __future__ import annotations

import json

from sqlmodel import Session

from cards import Button, Card
from storage.models import ApprovalRequest, ApprovalTask, Employee
from workflows import audit, roles, rules
from workflows.approvals.chain import MODES, Plan, Step
from workflows.followups import when_text

STATUS_TEXT = {"draft": "待提交", "pending": "审批中", "approved": "已通过", "rejected": "已拒绝", "withdrawn": "已撤回"}
REJECT_REASONS = ("金额不对", "缺少发票", "不符合规定")
KEEP_WORDS = "先不拒绝"  # what 先不拒绝 sends as words (a command of its own: handlers/approvals.keep)


def chain_text(session: Session, steps: tuple[Step, ...] | list[Step]) -> str:
    """王经理 → 财务 钱丽华/郑晓燕(或签)"""
    if not steps:
        return "无需审批，提交即通过"
    return " → ".join(_step_text(session, step) for step in steps)


def confirm_card(session: Session, request: ApprovalRequest, chosen: Plan, note: str = "") -> Card:
    from workflows.contracts import deal_question  # the contracts module imports this one

    ask, picks = deal_question(session, request)  # a hand-typed contract: which deal, if any
    lead = (note + "\n" if note else "") + (ask + "\n" if ask else "")
    if chosen.needs_choice:
        chain = chain_text(session, chosen.steps) if chosen.steps else ""
        return Card(title=f"{request.type} · 请确认", body=lead + "这一单有一步由你选审批人，选好后再提交。",
                    fields=_fields(request) + (("预计审批人", (chain + " → " if chain else "") + "（你来选）"),),
                    buttons=(Button("选审批人", "approval.choose", str(request.id), style="primary",
                                    command=f"选审批人 {request.number}"), *picks,
                             Button("取消", "approval.discard", str(request.id), command=f"取消 {request.number}")))
    return Card(title=f"{request.type} · 请确认", body=lead + "核对一下，没问题就点「提交」。",
                fields=_fields(request) + (("预计审批人", chain_text(session, chosen.steps)[:26]),),
                buttons=(Button("提交", "approval.submit", str(request.id), style="primary",
                                command=f"提交 {request.number}"), *picks,
                         Button("取消", "approval.discard", str(request.id), command=f"取消 {request.number}")),
                footer="说错了就点取消，重新发一条")


def submitted_card(session: Session, request: ApprovalRequest, headline: str = "") -> Card:
    return Card(title=f"已提交 · {request.number}", body=headline or f"{request.type}已提交，审批结果会发给你。",
                fields=_fields(request) + (("审批人", chain_text(session, _steps(request))[:26]),),
                buttons=(Button("催办", "approval.nudge", str(request.id), command=f"催办 {request.number}"),
                         Button("撤回", "approval.withdraw", str(request.id), style="danger",
                                command=f"撤回 {request.number}"),
                         Button("我的申请", "approval.mine", command="我的申请")))


def task_card(session: Session, request: ApprovalRequest, task: ApprovalTask, headline: str = "") -> Card:
    requester = session.get(Employee, request.requester_id)
    behalf = ""
    if task.on_behalf_of_id:
        behalf = f"\n（{session.get(Employee, task.on_behalf_of_id).name}超时未处理，升级给你，可代为审批）"
    body = (headline + "\n" if headline else "") + f"{requester.name}的{request.type}：{request.summary}" + behalf
    # Photos are sent on request, to whoever taps (handlers/approvals.send_photos): a card cannot show them.
    photos = ((Button(photos_label(request), "approval.photos", str(request.id),
                      command=f"{photos_label(request)} {request.number}"),) if photo_count(request) else ())
    said = step_words(request, task)
    return Card(title=f"待你审批 · {request.type}", body=body,
                fields=(("单号", request.number), ("申请人", f"{requester.name} {requester.department}".strip()))
                + _fields(request)[1:],
                buttons=(Button("同意", "approval.approve", str(task.id), style="primary", command=f"同意 {said}"),
                         Button("拒绝", "approval.reject", str(task.id), style="danger", command=f"拒绝 {said}"),
                         Button("转交", "approval.transfer", str(task.id), command=f"转交 {said}"),
                         Button("加签", "approval.add_signer", str(task.id), command=f"加签 {said}"),
                         Button("退回", "approval.return", str(task.id), command=f"退回 {said}")) + photos,
                footer=deadlines_text(session, request))


def step_words(request: ApprovalRequest, task: ApprovalTask) -> str:
    """`R-1004 第1步`: how a tap-to-send decision names the step it was shown for, so a tap on an old
    card cannot decide a later step (handlers/approvals.decide_by_words; docs/dingtalk.md §4.10)."""
    return f"{request.number} 第{task.step + 1}步"


def photo_count(request: ApprovalRequest) -> int:
    return len(json.loads(request.details).get("photos", []))


def photos_label(request: ApprovalRequest) -> str:
    return "查看发票" if request.type == "报销" else "查看照片"


def deadlines_text(session: Session, request: ApprovalRequest) -> str:
    """What the approver's card says will happen if nobody acts."""
    parts = [f"{rules.get(session, 'oa.remind_hours')}小时未处理会提醒",
             f"{rules.get(session, 'oa.escalate_hours')}小时升级给上级"]
    auto = rules.get(session, "oa.auto_decide").get(request.type)
    if auto:
        parts.append(f"{auto['hours']}小时后自动{'同意' if auto['decision'] == 'approve' else '拒绝'}")
    return "，".join(parts)


def reject_reason_card(request: ApprovalRequest, task: ApprovalTask) -> Card:
    return Card(title=f"拒绝 {request.number} · 选原因", body="点一个原因，或者直接回复原因，比如「发票抬头不对」。",
                buttons=tuple(Button(reason, "approval.reject_as", f"{task.id}:{i}", style="danger",
                                     command=f"拒绝 {step_words(request, task)} {reason}")
                              for i, reason in enumerate(REJECT_REASONS))
                + (Button("先不拒绝", "approval.keep", str(task.id), command=KEEP_WORDS),))


def status_card(session: Session, request: ApprovalRequest, tz: str, headline: str = "") -> Card:
    """The request as it stands, for anyone involved."""
    from workflows.approvals.requests import tasks_of  # the requests module imports this one

    events = []
    for task in tasks_of(session, request):
        if task.status in ("approved", "rejected"):
            who = session.get(Employee, task.approver_id)
            verb = "同意" if task.status == "approved" else "拒绝"
            said = f"：{task.comment}" if task.comment else ""
            behalf = f"（代{session.get(Employee, task.on_behalf_of_id).name}）" if task.on_behalf_of_id else ""
            events.append((task.decided_at, f"· {who.name}{behalf} {verb}{said}（{when_text(task.decided_at, tz)}）"))
    for entry in audit.entries(session, subject=f"approval:{request.id}"):
        if entry.action in TIMELINE:
            events.append((entry.at, f"· {_timeline_text(session, entry)}（{when_text(entry.at, tz)}）"))
    lines = [line for _, line in sorted(events, key=lambda e: e[0])]
    body = "\n".join(([headline] if headline else []) + (lines or ["还没有人审批。"]))
    return Card(title=f"{request.number} · {STATUS_TEXT[request.status]}", body=body,
                fields=_fields(request) + (("审批人", chain_text(session, _steps(request))[:26]),),
                status=STATUS_TEXT[request.status])


TIMELINE = {"approval.remind": "提醒了{approver}", "approval.escalate": "{from}超时，升级给{to}",
            "approval.transfer": "{from}转交给{to}", "approval.add_signer": "加签{who}",
            "approval.return": "退回到第{step}步{comment}", "approval.comment": "{by}：{text}",
            "approval.nudge": "申请人催办", "approval.auto_approve": "到期自动同意", "approval.auto_reject": "到期自动拒绝",
            "approval.reroute": "{from}是申请人，不能审批自己的申请，改由{to}审批"}


def _timeline_text(session: Session, entry) -> str:
    detail = json.loads(entry.detail)
    names = {k: session.get(Employee, detail[k]).name for k in ("approver", "from", "to", "who", "by")
             if detail.get(k)}
    extra = {"step": detail.get("to_step", 0) + 1, "text": detail.get("text", ""),
             "comment": f"：{detail['comment']}" if detail.get("comment") else ""}
    blanks = dict.fromkeys(("approver", "from", "to", "who", "by"), "")
    return TIMELINE[entry.action].format(**{**blanks, **names, **extra})


def _fields(request: ApprovalRequest) -> tuple[tuple[str, str], ...]:
    details = json.loads(request.details)
    fields: list[tuple[str, str]] = [("类型", request.type)]
    if request.type == "报销":
        fields += [("金额", f"¥{request.amount:,.2f}"), ("事由", details.get("category", ""))]
    elif request.type in ("请假", "出差"):
        span = f"{details['start'][5:]} 至 {details['end'][5:]}"
        what = details.get("category") or details.get("place", "")
        fields += [("内容", f"{what} {details['days']}天"), ("时间", span)]
        if request.amount is not None:
            fields.append(("预算", f"¥{request.amount:,.2f}"))
    elif request.type == "合同":
        linked = (details.get("deal") or "已关联") if details.get("deal_id") else "不关联"
        fields += [("客户", details.get("customer", "")[:26]), ("金额", f"¥{request.amount:,.2f}"), ("商机", linked)]
    elif request.type == "采购":
        fields += [("物品", details.get("item", "")[:26]), ("金额", f"¥{request.amount:,.2f}")]
    else:
        fields.append(("事由", request.summary[:26]))
    photos = len(details.get("photos", []))
    if photos and len(fields) < 5:
        fields.append(("附件", f"照片 {photos} 张"))
    return tuple((k, v[:26]) for k, v in fields)


def _steps(request: ApprovalRequest) -> list[Step]:
    return [Step.from_dict(s) for s in json.loads(request.chain)]


def _step_text(session: Session, step: Step) -> str:
    names = "/".join(session.get(Employee, i).name for i in step.approvers)
    # A role says who they are (财务 钱会计); a position or a named person is just the name (王经理).
    is_role = all(roles.role_id(part) for part in step.label.split("、"))
    role = f"{step.label} " if is_role else ""
    mode = f"({MODES[step.mode]})" if len(step.approvers) > 1 else ""
    return f"{role}{names}{mode}"
