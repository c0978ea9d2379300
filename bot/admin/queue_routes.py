"""/admin/queue (admins only): the outbox per kind, failed rows with retry / discard, the processes
that are alive, and this month's platform API calls against the quota (workflows/queue_health.py,
workflows/api_usage.py)."""

from __future__ import annotations

from flask import Blueprint, g, redirect, render_template, request, url_for

from bot.admin import auth
from bot.runtime import Runtime
from storage.db import session_scope
from workflows import api_usage, queue_health


def add_routes(bp: Blueprint, runtime: Runtime) -> None:
    @bp.get("/queue")
    @auth.signed_in(runtime, admin_only=True)
    def queue():
        now, settings = runtime.now(), runtime.settings
        with session_scope(runtime.engine) as session:
            kinds = queue_health.summary(session, now=now)
            failed = queue_health.failed(session)
            processes = queue_health.processes(session, now=now, tz=settings.timezone)
            usage = api_usage.usage(session, month=api_usage.month_of(now, settings.timezone),
                                    quotas=_quotas(runtime), tz=settings.timezone)
        done_id, _, verb = request.args.get("done", "").partition(":")
        done = (done_id, verb) if done_id.isdigit() and verb in ("retry", "discard", "gone") else None
        return render_template("admin/queue.html", viewer=g.viewer, kinds=kinds, failed=failed, done=done,
                               processes=processes, unattended=queue_health.unattended(kinds, processes),
                               usage=usage, month=api_usage.month_of(now, settings.timezone),
                               warn_share=int(api_usage.WARN_SHARE * 100))

    @bp.post("/queue/<int:row_id>/<any(retry, discard):verb>")
    @auth.signed_in(runtime, admin_only=True)
    def queue_change(row_id: int, verb: str):
        change = queue_health.retry if verb == "retry" else queue_health.discard
        with session_scope(runtime.engine) as session:
            changed = change(session, row_id, actor=g.viewer.employee, now=runtime.now())
        if changed and verb == "retry":
            runtime.ring()  # after the commit: the dispatcher offers it now
        done = f"{row_id}:{verb}" if changed else f"{row_id}:gone"
        return redirect(url_for("admin.queue", done=done))


def _quotas(runtime: Runtime) -> dict[str, int | None]:
    """The configured platforms; only DingTalk has a monthly quota."""
    settings = runtime.settings
    quotas: dict[str, int | None] = {}
    if settings.dingtalk:
        quotas["dingtalk"] = settings.dingtalk_monthly_quota
    if settings.wecom:
        quotas["wecom"] = None
    return quotas
