"""/admin/export: the download links, and each download (workflows/export.py decides what is in it:
an admin everything, a manager their team's records). Every download is audited."""

from __future__ import annotations

import tempfile

from flask import Blueprint, g, render_template, send_file

from bot.admin import auth
from bot.runtime import Runtime
from storage.db import session_scope
from workflows import export

MIME = {"csv": "text/csv", "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


def add_routes(bp: Blueprint, runtime: Runtime) -> None:
    @bp.get("/export")
    @auth.signed_in(runtime)
    def export_page():
        return render_template("admin/export.html", viewer=g.viewer, kinds=export.KINDS)

    @bp.get("/export/<any(customers, followups, deals, requests, audit):kind>.<any(csv, xlsx):fmt>")
    @auth.signed_in(runtime)
    def export_file(kind: str, fmt: str):
        viewer = g.viewer
        # A temporary file, not memory: the export's size is the database's, not the process's.
        out = tempfile.TemporaryFile()
        with session_scope(runtime.engine) as session:
            count = export.write(session, kind, fmt, out, team=viewer.team, tz=runtime.settings.timezone)
        with session_scope(runtime.engine) as session:
            export.record(session, actor=viewer.employee, kind=kind, fmt=fmt, rows=count, team=viewer.team,
                          platform="web", at=runtime.now())
        out.seek(0)
        stamp = runtime.now().astimezone().strftime("%Y%m%d-%H%M")
        return send_file(out, mimetype=MIME[fmt], as_attachment=True, download_name=f"banli-{kind}-{stamp}.{fmt}")
