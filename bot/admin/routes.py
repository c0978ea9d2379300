"""The console's pages: / (overview), /admin/login (the one-time link), /admin/logout, /admin/audit
(+ .csv) and /admin/rules (routing rules, dry run, reorder, the other rules; the rule form is rule_edit_routes.py, the
queue page queue_routes.py). Each view asks a workflow and renders a template."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from flask import Blueprint, Response, g, redirect, render_template, request, url_for

from bot.admin import (auth, customer_routes, export_routes, import_routes, people_routes, queue_routes,
                       report_routes, rule_edit_routes, rule_settings_routes)
from bot.runtime import Runtime
from storage.db import session_scope
from storage.models import REQUEST_TYPES, ApprovalRule
from workflows import audit, audit_view, console
from workflows.approvals import rule_admin, rule_history, rule_view

HERE = Path(__file__).parent
LOGIN_WHY = {"bad": "这个链接不完整或不是办理发的", "unknown": "这个链接不是办理发的",
             "used": "这个链接已经用过了（每个链接只能用一次）", "expired": "这个链接已经过期了（10分钟内有效）",
             "not_allowed": console.REFUSAL}


def make_blueprint(runtime: Runtime) -> Blueprint:
    bp = Blueprint("admin", __name__, url_prefix="/admin", template_folder=str(HERE / "templates"),
                   static_folder=str(HERE / "static"), static_url_path="/static")
    secure = runtime.settings.public_url.startswith("https://")

    bp.add_app_template_filter(_age, "age")
    bp.before_request(lambda: auth.load_viewer(runtime))
    bp.before_request(lambda: auth.check_csrf(runtime))

    @bp.after_request
    def private(response: Response) -> Response:
        # Pages show people's data and a login URL carries a token: never cached, never a Referer.
        response.headers["Cache-Control"] = "no-store"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    @bp.errorhandler(400)
    def bad_request(_error):
        return _problem(400, "请求无效", "表单已过期或不是从后台页面提交的。请刷新页面后再试。")

    @bp.errorhandler(404)
    def not_found(_error):
        return _problem(404, "找不到", "没有这条记录，或者它不在你的团队里。")

    @bp.errorhandler(403)
    def forbidden(_error):
        return _problem(403, "没有权限", "这个页面只有管理员可以打开。" if g.get("viewer") else console.REFUSAL + "。")

    @bp.get("/")
    @auth.signed_in(runtime)
    def home():
        return render_template("admin/home.html", viewer=g.viewer)

    @bp.get("/login")
    def login():
        token = request.args.get("token", "")
        now = runtime.now()
        with session_scope(runtime.engine) as session:
            key = console.signing_key(session, runtime.settings.secret_key)
            employee, why = console.redeem_login(session, token, key=key, now=now)
            if not why and console.viewer(session, employee) is None:
                why = "not_allowed"  # a role taken away since the link was sent
            if why:
                audit.refused(session, actor=employee, attempted="console.login", why=why, subject="console",
                              platform="web", at=now)
            else:
                cookie = console.open_session(session, employee, key=key, now=now)
                audit.record(session, actor=employee, action="console.login", subject="console", platform="web", at=now)
        if why:
            return render_template("admin/signed_out.html", why=LOGIN_WHY[why]), 403
        response = redirect(auth.landing(url_for("admin.home")))
        response.set_cookie(auth.COOKIE, cookie, httponly=True, samesite="Lax", secure=secure, path="/admin")
        response.delete_cookie(auth.NEXT_COOKIE, path="/admin")
        return response

    @bp.post("/logout")
    @auth.signed_in(runtime)
    def logout():
        with session_scope(runtime.engine) as session:
            console.end_session(session, g.viewer.session_id, now=runtime.now())
        response = redirect(url_for("admin.home"))
        response.delete_cookie(auth.COOKIE, path="/admin")
        return response

    @bp.get("/audit")
    @auth.signed_in(runtime)
    def audit_log():
        wanted, errors = _audit_filter()
        number = request.args.get("page", "1")
        number = int(number) if number.isdigit() and int(number) > 0 else 1
        with session_scope(runtime.engine) as session:
            rows, total = audit_view.page(session, wanted, team=g.viewer.team, tz=runtime.settings.timezone,
                                          number=number)
            people = audit_view.people(session, g.viewer.team)
            actions = audit_view.actions(session)
        pages = max((total + audit_view.PAGE_SIZE - 1) // audit_view.PAGE_SIZE, 1)
        return render_template("admin/audit.html", viewer=g.viewer, rows=rows, total=total, page=number, pages=pages,
                               wanted=wanted, errors=errors, people=people, actions=actions,
                               action_names=audit_view.ACTION_NAMES, query=_query_without_page())

    @bp.get("/audit.csv")
    @auth.signed_in(runtime)
    def audit_csv():
        wanted, errors = _audit_filter()
        if errors:
            return _problem(400, "筛选条件有误", "；".join(errors))
        with session_scope(runtime.engine) as session:
            body = audit_view.csv_bytes(session, wanted, team=g.viewer.team, tz=runtime.settings.timezone)
        stamp = runtime.now().strftime("%Y%m%d-%H%M")
        return Response(body, mimetype="text/csv", headers={
            "Content-Disposition": f"attachment; filename=banli-audit-{stamp}.csv"})

    @bp.get("/rules")
    @auth.signed_in(runtime, admin_only=True)
    def rules_page():
        wanted, problems = rule_view.parse_dry_run(request.args) if "type" in request.args else ({}, [])
        with session_scope(runtime.engine) as session:
            result = rule_view.dry_run(session, wanted) if wanted and not problems else None
            if isinstance(result, str):
                problems, result = [result], None
            return render_template("admin/rules.html", viewer=g.viewer, groups=rule_view.routing(session),
                                   others=rule_view.others(session), people=rule_view.people(session),
                                   types=REQUEST_TYPES, asked=request.args, problems=problems, result=result,
                                   moved=request.args.get("moved", ""))

    @bp.post("/rules/<int:rule_id>/<any(up, down):way>")
    @auth.signed_in(runtime, admin_only=True)
    def rules_move(rule_id: int, way: str):
        with session_scope(runtime.engine) as session:
            rule = session.get(ApprovalRule, rule_id)
            moved = rule is not None and rule_admin.move(session, rule, up=way == "up", by=g.viewer.employee,
                                                         platform="web")
        return redirect(url_for("admin.rules_page", moved=f"{rule_id}:{way if moved else 'stay'}") + f"#rule-{rule_id}")

    @bp.get("/rules/<int:rule_id>/history")
    @auth.signed_in(runtime, admin_only=True)
    def rules_history(rule_id: int):
        with session_scope(runtime.engine) as session:
            rule = session.get(ApprovalRule, rule_id)
            if rule is None:
                return _problem(404, "没有这条规则", f"规则 #{rule_id} 不存在（可能已删除）。")
            return render_template("admin/rule_history.html", viewer=g.viewer, rule=rule_view.row(session, rule),
                                   versions=rule_history.versions(session, rule_id))

    queue_routes.add_routes(bp, runtime)
    export_routes.add_routes(bp, runtime)
    customer_routes.add_routes(bp, runtime)
    people_routes.add_routes(bp, runtime)
    report_routes.add_routes(bp, runtime)
    import_routes.add_routes(bp, runtime)
    rule_edit_routes.add_routes(bp, runtime)
    rule_settings_routes.add_routes(bp, runtime)
    return bp


def _audit_filter() -> tuple[audit_view.AuditFilter, list[str]]:
    """The filter from the query string; bad values are named and left out."""
    args, errors = request.args, []
    person = args.get("person", "")
    dates = {}
    for name, label in (("since", "开始日期"), ("until", "结束日期")):
        try:
            dates[name] = date.fromisoformat(args[name]) if args.get(name) else None
        except ValueError:
            errors.append(f"{label}「{args[name]}」不是日期（例如 2026-11-21）")
            dates[name] = None
    if dates["since"] and dates["until"] and dates["since"] > dates["until"]:
        errors.append("开始日期晚于结束日期")
    return audit_view.AuditFilter(person_id=int(person) if person.isdigit() else None,
                                  subject=args.get("subject", "").strip()[:64], action=args.get("action", "")[:48],
                                  **dates), errors


def _age(seconds: int | None) -> str:
    """12 → 12秒, 300 → 5分钟, 7200 → 2小时, None → —."""
    if seconds is None:
        return "—"
    for unit, name in ((86400, "天"), (3600, "小时"), (60, "分钟")):
        if seconds >= unit:
            return f"{seconds // unit}{name}"
    return f"{seconds}秒"


def _query_without_page() -> str:
    from urllib.parse import urlencode

    return urlencode([(k, v) for k, v in request.args.items(multi=True) if k != "page"])


def _problem(status: int, title: str, text: str):
    return render_template("admin/problem.html", viewer=g.get("viewer"), title=title, text=text), status
