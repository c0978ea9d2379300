"""/admin/import (admins): upload a customer list (CSV or XLSX), see what would happen — rows to add,
likely duplicates, bad rows with their Excel row number — with nothing written, then 确认导入 writes
exactly that in one transaction, or 取消 throws the upload away. workflows/import_staging.py keeps the file between the two steps."""

from __future__ import annotations

import logging
from pathlib import Path

from flask import Blueprint, g, redirect, render_template, request, url_for
from sqlalchemy.exc import SQLAlchemyError

from bot.admin import auth
from bot.runtime import Runtime
from storage.db import session_scope
from storage.models import Employee
from workflows import audit, import_staging, importing

OWNER_DEFAULTS = ("", importing.POOL)
log = logging.getLogger("banli")


def add_routes(bp: Blueprint, runtime: Runtime) -> None:
    root = Path(runtime.settings.files_dir)

    @bp.get("/import")
    @auth.signed_in(runtime, admin_only=True)
    def import_page():
        token = request.args.get("token", "")
        options = _options(request.args)
        if not token:
            return _page(done=request.args.get("done", ""))
        with session_scope(runtime.engine) as session:
            try:
                staged = import_staging.preview(session, root, token, uploader_id=g.viewer.employee.id, **options)
            except (import_staging.StagingError, importing.ImportFileError) as problem:
                return _page(error=str(problem)), 400
            session.rollback()  # a preview writes nothing, whatever the plan touched
        return _page(staged=staged, options=options)

    @bp.post("/import")
    @auth.signed_in(runtime, admin_only=True)
    def import_upload():
        request.max_content_length = import_staging.MAX_BYTES  # the app's 256 KB is for callbacks
        upload = request.files.get("file")
        if upload is None or not upload.filename:
            return _page(error="请选择要导入的文件（.csv 或 .xlsx）"), 400
        try:
            token = import_staging.stage(root, upload.read(import_staging.MAX_BYTES + 1)[:import_staging.MAX_BYTES],
                                         upload.filename, uploader_id=g.viewer.employee.id)
        except importing.ImportFileError as problem:
            return _page(error=str(problem)), 400
        return redirect(url_for("admin.import_page", token=token, **_options(request.form)))

    @bp.post("/import/commit")
    @auth.signed_in(runtime, admin_only=True)
    def import_commit():
        token, options = request.form.get("token", ""), _options(request.form)
        actor = g.viewer.employee
        try:
            with session_scope(runtime.engine) as session:
                staged, created = import_staging.commit(session, root, token, expected=request.form.get("digest", ""),
                                                        actor=session.get(Employee, actor.id), **options)
        except (import_staging.StagingError, importing.ImportFileError) as problem:
            _refused(runtime, actor, str(problem))
            return _page(error=str(problem)), 409
        except SQLAlchemyError as exc:  # one transaction: rolled back whole, the file may be confirmed again
            import_staging.release(root, token)
            log.warning("console import failed, rolled back: %s", exc.__class__.__name__)
            return _page(error="导入失败，没有写入任何数据（数据库出错）。请稍后再确认一次。"), 503
        import_staging.finish(root, token)
        return redirect(url_for("admin.import_page", done=f"{len(created)}:{len(staged.plan.duplicates)}:"
                                                           f"{len(staged.plan.bad)}"))


    @bp.post("/import/cancel")
    @auth.signed_in(runtime, admin_only=True)
    def import_cancel():
        import_staging.cancel(root, request.form.get("token", ""), uploader_id=g.viewer.employee.id)
        return redirect(url_for("admin.import_page"))


def _options(form) -> dict:
    owner_default = form.get("owner_default", "")
    return {"owner_default": owner_default if owner_default in OWNER_DEFAULTS else "",
            "allow_duplicates": form.get("allow_duplicates", "") == "1"}


def _refused(runtime: Runtime, actor, why: str) -> None:
    with session_scope(runtime.engine) as session:
        audit.refused(session, actor=actor, attempted="customer.import", why=why[:200], subject="import",
                      platform="web", at=runtime.now())


def _page(*, staged=None, error: str = "", options: dict | None = None, done: str = ""):
    counts = [int(n) for n in done.split(":")] if done.count(":") == 2 and done.replace(":", "").isdigit() else None
    return render_template("admin/import.html", viewer=g.viewer, staged=staged, error=error,
                           options=options or {"owner_default": "", "allow_duplicates": False}, done=counts,
                           pool=importing.POOL)
