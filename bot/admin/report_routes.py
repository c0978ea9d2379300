"""/admin/reports: the charts (workflows/reports.py counts, ECharts draws, a plain table under each) and
each report as CSV. An admin sees everyone, a manager their team; `team=<manager id>` narrows to one
manager's team (never wider than the viewer's own)."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from flask import Blueprint, Response, g, render_template, request

from bot.admin import auth
from bot.runtime import Runtime
from storage.db import session_scope
from workflows import console, reports


def add_routes(bp: Blueprint, runtime: Runtime) -> None:
    @bp.get("/reports")
    @bp.get("/reports/<any(funnel, followups):kind>")
    @auth.signed_in(runtime)
    def reports_page(kind: str = "funnel"):
        table, error, when = _report(runtime, kind)
        return render_template("admin/reports.html", viewer=g.viewer, kind=kind, kinds=reports.KINDS,
                               periods=reports.PERIODS, table=table, error=error, when=when,
                               asked=request.args), 400 if error else 200

    @bp.get("/reports/<any(funnel, followups):kind>.csv")
    @auth.signed_in(runtime)
    def reports_csv(kind: str):
        table, error, _when = _report(runtime, kind)
        if error:
            return render_template("admin/problem.html", viewer=g.viewer, title="筛选条件有误", text=error), 400
        return Response(reports.csv_bytes(table), mimetype="text/csv",
                        headers={"Content-Disposition": f"attachment; filename=banli-report-{kind}.csv"})


def _report(runtime: Runtime, kind: str):
    """(table, "", period) or (None, why, None) for bad filter input."""
    args = request.args
    today = runtime.now().astimezone(ZoneInfo(runtime.settings.timezone)).date()
    try:
        when = reports.period(args.get("period", "week"), today, args.get("since", ""), args.get("until", ""))
    except reports.ReportRefused as refused:
        return None, str(refused), None
    with session_scope(runtime.engine) as session:
        team = g.viewer.team
        wanted = args.get("team", "")
        if wanted.isdigit():  # one manager's team, inside what the viewer may see
            narrowed = frozenset(console.team_below(session, int(wanted)) | {int(wanted)})
            team = narrowed if team is None else team & narrowed
        elif wanted:
            return None, f"团队「{wanted[:20]}」不是经理的编号", None
        return reports.build(session, kind, when, team=team, tz=runtime.settings.timezone), "", when
