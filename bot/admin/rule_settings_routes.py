"""The other rules in the console (admins): /admin/rules/settings/<name> — one rule's form, saved
through rules.put (validated, audited) or put back to its default; /admin/rules.yaml — every rule as
one file; /admin/rules/import — upload such a file, see per rule what would change and every problem,
then 确认导入 applies it all in one transaction. The workflows decide; these views ask and render."""

from __future__ import annotations

import logging
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, abort, g, redirect, render_template, request, url_for
from sqlalchemy.exc import SQLAlchemyError

from bot.admin import auth
from bot.runtime import Runtime
from storage.db import session_scope
from storage.models import REQUEST_TYPES, TIERS
from workflows import audit, rule_settings, rules, rules_import, rules_yaml

MAX_FILE = 200_000  # a rules file is a few KB; anything near this is not one
log = logging.getLogger("banli")


def add_routes(bp: Blueprint, runtime: Runtime) -> None:
    @bp.get("/rules/settings/<name>")
    @auth.signed_in(runtime, admin_only=True)
    def rule_setting(name: str):
        with session_scope(runtime.engine) as session:
            shown = rule_settings.setting(session, name) or abort(404)
            return _form(shown, rule_settings.form_of(rules.SPECS[name], shown.value))

    @bp.post("/rules/settings/<name>")
    @auth.signed_in(runtime, admin_only=True)
    def rule_setting_save(name: str):
        if name not in rules.SPECS:
            abort(404)
        form = {key: request.form.get(key, "")[:2000] for key in request.form if key != "csrf"}
        with session_scope(runtime.engine) as session:
            try:
                rule_settings.save(session, name, form, by=g.viewer.employee)
            except rules.InvalidRule as bad:
                session.rollback()
                return _form(rule_settings.setting(session, name), form, error=str(bad)), 400
        return redirect(url_for("admin.rules_page", saved=name) + "#other-rules")

    @bp.post("/rules/settings/<name>/reset")
    @auth.signed_in(runtime, admin_only=True)
    def rule_setting_reset(name: str):
        if name not in rules.SPECS:
            abort(404)
        with session_scope(runtime.engine) as session:
            rules.reset(session, name, by=g.viewer.employee, platform="web")
        return redirect(url_for("admin.rules_page", saved=name) + "#other-rules")

    @bp.get("/rules.yaml")
    @auth.signed_in(runtime, admin_only=True)
    def rules_yaml_file():
        now = runtime.now()
        with session_scope(runtime.engine) as session:
            text = rules_yaml.export_text(session, at=now.astimezone(ZoneInfo(runtime.settings.timezone)))
            audit.record(session, actor=g.viewer.employee, action="rules.export", subject="rules", platform="web",
                         at=now)
        return Response(text.encode(), mimetype="application/yaml", headers={
            "Content-Disposition": f"attachment; filename=banli-rules-{now.strftime('%Y%m%d-%H%M')}.yaml"})

    @bp.get("/rules/import")
    @auth.signed_in(runtime, admin_only=True)
    def rules_import_page():
        return _import_page(done=request.args.get("done", "")[:8])

    @bp.post("/rules/import")
    @auth.signed_in(runtime, admin_only=True)
    def rules_import_preview():
        text, problem = _uploaded()
        if problem:
            return _import_page(error=problem), 400
        with session_scope(runtime.engine) as session:
            plan = rules_import.plan(session, text)
            session.rollback()  # a preview writes nothing
        return _import_page(plan=plan, text=text), 400 if plan.problems else 200

    @bp.post("/rules/import/confirm")
    @auth.signed_in(runtime, admin_only=True)
    def rules_import_confirm():
        text = request.form.get("text", "")[:MAX_FILE]
        try:
            with session_scope(runtime.engine) as session:
                done = rules_import.apply(session, text, by=g.viewer.employee,
                                          platform="web", expected=request.form.get("digest", ""))
        except rules_import.ImportRefused as refused:
            with session_scope(runtime.engine) as session:
                audit.refused(session, actor=g.viewer.employee, attempted="rules.import", why=str(refused)[:200],
                              subject="rules", platform="web", at=runtime.now())
            return _import_page(plan=refused.plan, text=text, error=_why(refused)), 409
        except SQLAlchemyError as exc:  # one transaction: rolled back whole
            log.warning("rules import failed, rolled back: %s", exc.__class__.__name__)
            return _import_page(error="导入失败，没有改动任何规则（数据库出错）。请稍后再试。"), 503
        return redirect(url_for("admin.rules_import_page", done=str(len(done.to_change))))


def _form(shown: rule_settings.Setting, form: dict[str, str], *, error: str = ""):
    return render_template("admin/rule_setting.html", viewer=g.viewer, rule=shown, form=form, error=error,
                           tiers=TIERS, types=REQUEST_TYPES, pairs=rule_settings.PAIRS.get(shown.name, ()),
                           decisions=rule_settings.DECISIONS)


def _uploaded() -> tuple[str, str]:
    """The file's text (or the pasted text), or a problem to show."""
    upload = request.files.get("file")
    raw = upload.read(MAX_FILE + 1) if upload is not None and upload.filename else \
        request.form.get("text", "").encode()
    if not raw.strip():
        return "", "文件：请选择导出的规则文件（.yaml），或把内容粘贴到文本框里"
    if len(raw) > MAX_FILE:
        return "", f"文件：太大了（规则文件只有几 KB，最多 {MAX_FILE // 1000} KB）"
    try:
        return raw.decode("utf-8-sig"), ""
    except UnicodeDecodeError:
        return "", "文件：不是 UTF-8 文本（请上传从这里导出的 .yaml 文件）"


def _why(refused: rules_import.ImportRefused) -> str:
    if refused.plan.problems:
        return "文件有问题，没有改动任何规则。"
    return "规则在预览之后被改过，没有导入。请看下面重新生成的预览，再确认一次。"


def _import_page(*, plan: rules_import.Plan | None = None, text: str = "", error: str = "", done: str = ""):
    return render_template("admin/rules_import.html", viewer=g.viewer, plan=plan, text=text, error=error,
                           done=done if done.isdigit() else "", states=rules_import.STATES)
