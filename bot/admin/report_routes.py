"""/admin/reports: the charts (workflows/report_kinds.py counts, ECharts draws, a plain table under
each) and each report as CSV or XLSX. An admin sees everyone, a manager their team; the team picker
(`team=<manager id>` or `team=dept:<name>`) narrows it, never wider than the viewer's own."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from flask import Blueprint, Response, g, render_template, request

from bot.admin import auth
from bot.runtime import Runtime
from storage.db import session_scope
from workflows import report_kinds, reports

KIND = "<any(funnel, followups, overdue, payments, approvals):kind>"
MIME = {"csv": "text/csv", "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


def add_routes(bp: Blueprint, runtime: Runtime) -> None:
    @bp.get("/reports")
    @bp.get(f"/reports/{KIND}")
    @auth.signed_in(runtime)
    def reports_page(kind: str = "funnel"):
        table, error, when = _report(runtime, kind)
        with session_scope(runtime.engine) as session:
            teams = reports.team_choices(session, g.viewer.team)
        return render_template("admin/reports.html", viewer=g.viewer, kind=kind, kinds=report_kinds.KINDS,
                               periods=reports.PERIODS, table=table, error=error, when=when, teams=teams,
                               asked=_asked()), 400 if error else 200

    @bp.get(f"/reports/{KIND}.<any(csv, xlsx):fmt>")
    @auth.signed_in(runtime)
    def reports_file(kind: str, fmt: str):
        table, error, _when = _report(runtime, kind)
        if error:
            return render_template("admin/problem.html", viewer=g.viewer, title="筛选条件有误", text=error), 400
        name = report_kinds.KINDS[kind]
        with session_scope(runtime.engine) as session:
            reports.record_export(session, actor=g.viewer.employee, what=name, fmt=fmt, asked=_asked(),
                                  at=runtime.now())
        body = reports.csv_bytes(table) if fmt == "csv" else reports.xlsx_bytes(table, name)
        return Response(body, mimetype=MIME[fmt],
                        headers={"Content-Disposition": f"attachment; filename=banli-report-{kind}.{fmt}"})


def _asked() -> dict[str, str]:
    """The filters as asked, for the form and the links (only these: a stray `kind=` must not clash)."""
    return {k: request.args[k] for k in reports.FILTERS if k in request.args}


def _report(runtime: Runtime, kind: str):
    """(table, "", period) or (None, why, None) for bad filter input."""
    args = request.args
    tz = runtime.settings.timezone
    now = runtime.now()
    today = now.astimezone(ZoneInfo(tz)).date()
    try:
        when = reports.period(args.get("period", "week"), today, args.get("since", ""), args.get("until", ""))
        with session_scope(runtime.engine) as session:
            team = reports.scope(session, g.viewer.team, args.get("team", ""))
            return report_kinds.build(session, kind, when, team=team, tz=tz, now=now), "", when
    except reports.ReportRefused as refused:
        return None, str(refused), None
