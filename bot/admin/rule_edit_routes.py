"""/admin/rules/new and /admin/rules/<id>/edit: a routing rule as a form (type, condition fields,
steps, 抄送, 找不到审批人时, 启用/停用) with 试算 of the unsaved edit next to today's chain, and 发布
as the rule's next version; /admin/rules/<id>/versions/try: the dry run of any kept version.
workflows/approvals/rule_form.py reads the form, rule_admin saves (validated, versioned, audited),
rule_trial runs the dry runs; these views only ask and render. Admins only."""

from __future__ import annotations

from flask import Blueprint, abort, g, redirect, render_template, request, url_for

from bot.admin import auth
from bot.runtime import Runtime
from storage.db import session_scope
from storage.models import REQUEST_TYPES, ApprovalRule
from workflows.approvals import rule_admin, rule_form, rule_history, rule_trial, rule_view

TRY_FIELDS = ("type", "amount", "days", "requester")  # the dry run's fields, posted as try_<name>


def add_routes(bp: Blueprint, runtime: Runtime) -> None:
    @bp.get("/rules/new")
    @auth.signed_in(runtime, admin_only=True)
    def rule_new():
        form = rule_form.RuleForm()
        if request.args.get("type") in rule_form.TYPES:
            form.type = request.args["type"]
        return _page(None, form)

    @bp.get("/rules/<int:rule_id>/edit")
    @auth.signed_in(runtime, admin_only=True)
    def rule_edit(rule_id: int):
        with session_scope(runtime.engine) as session:
            rule = _rule(session, rule_id)
            form = rule_form.from_rule(session, rule)
        return _page(rule_id, form, notice=_saved_notice())

    @bp.post("/rules/new", endpoint="rule_new_post")
    @bp.post("/rules/<int:rule_id>/edit", endpoint="rule_edit_post")
    @auth.signed_in(runtime, admin_only=True)
    def rule_save(rule_id: int | None = None):
        form = rule_form.read(request.form.to_dict(flat=False))
        if request.form.get("action") != "发布":  # 试算 (also what Enter in a field does): nothing is stored
            return _page(rule_id, form, trying=True)
        with session_scope(runtime.engine) as session:
            rule = _rule(session, rule_id) if rule_id else None
            done = rule_form.publish(session, rule, form, by=g.viewer.employee)
        if done.problems:
            return _page(rule_id, form, problems=done.problems, status=400)
        saved = {"saved": "same"} if done.unchanged else {"saved": done.version, "before": done.placed_before or ""}
        return redirect(url_for("admin.rule_edit", rule_id=done.rule_id, **saved))

    @bp.get("/rules/<int:rule_id>/versions/try")
    @auth.signed_in(runtime, admin_only=True)
    def rule_version_try(rule_id: int):
        """A kept version's chain next to today's, for a request the admin describes."""
        asked = {name: request.args.get(name, "")[:40] for name in (*TRY_FIELDS, "version")}
        with session_scope(runtime.engine) as session:
            rule = _rule(session, rule_id)
            kept = rule_history.versions(session, rule_id)
            wanted = int(asked["version"]) if asked["version"].isdigit() else rule.version
            asked["version"] = str(wanted)
            trial = rule_trial.kept_version(session, rule_id, wanted)
            if trial is None and wanted == rule.version:  # never edited: its only version is the rule itself
                trial = rule
            problems, comparison = [], None
            if trial is None:
                problems.append(f"版本：没有第{wanted}版")
            elif asked["type"]:
                values, problems = rule_view.parse_dry_run(asked)
                comparison = None if problems else _compare(session, values, trial, problems)
            return render_template("admin/rule_try.html", viewer=g.viewer, rule=rule_view.row(session, rule),
                                   versions=kept, asked=asked, problems=problems, comparison=comparison,
                                   types=REQUEST_TYPES, people=rule_view.people(session),
                                   default_type=_default_type(trial.request_type if trial else rule.request_type))

    def _page(rule_id: int | None, form: rule_form.RuleForm, *, problems: list[str] = (), notice: str = "",
              trying: bool = False, status: int = 200):
        """The form with `form`'s values; with `trying`, the dry run of those values (nothing stored)."""
        asked = {name: request.values.get(f"try_{name}", "")[:40] for name in TRY_FIELDS}
        with session_scope(runtime.engine) as session:
            rule = _rule(session, rule_id) if rule_id else None
            comparison, try_problems = None, []
            if trying:
                request_type, words, problems = rule_form.to_rule(session, form)
                values, try_problems = rule_view.parse_dry_run(asked)
                if not problems and not try_problems:
                    trial = rule_trial.draft(session, request_type, words, form.active, rule)
                    comparison = _compare(session, values, trial, try_problems)
            dead = rule_admin.warnings(session, rule.request_type).get(rule.id) if rule else None
            return render_template(
                "admin/rule_edit.html", viewer=g.viewer, rule=rule_view.row(session, rule) if rule else None,
                form=form, choices=rule_form.choices(session, form), problems=problems, notice=notice,
                warning=dead.text() if dead else "", asked=asked, try_problems=try_problems,
                comparison=comparison, default_type=_default_type(form.type), types=REQUEST_TYPES,
                kinds=rule_form.KINDS, positions=rule_form.CC_POSITIONS, modes=rule_form.MODE_LABELS,
                number_ops=rule_form.NUMBER_OPS, is_ops=rule_form.IS_OPS, numbers=rule_form.NUMBERS,
                no_approver=rule_form.NO_APPROVER_LABELS), status

    def _saved_notice() -> str:
        saved, before = request.args.get("saved", ""), request.args.get("before", "")
        if saved == "same":
            return "没有改动，没有发布新版本。"
        if not saved.isdigit():
            return ""
        placed = (f"这条新规则排在 #{before} 前面：放在最后的话，前面的规则总是先匹配，它永远用不上。"
                  if before.isdigit() else "")
        return f"已发布第{saved}版。{placed}已提交的申请仍按提交时的审批人走；新申请按新版本。"


def _compare(session, values, trial, problems: list[str]) -> rule_trial.Comparison | None:
    comparison = rule_trial.compare(session, values, trial)
    if isinstance(comparison.now, str):  # the requester has left: named once, no half result
        problems.append(comparison.now)
        return None
    return comparison


def _rule(session, rule_id: int) -> ApprovalRule:
    rule = session.get(ApprovalRule, rule_id)
    if rule is None:
        abort(404)
    return rule


def _default_type(kind: str) -> str:
    """The dry run's type when the admin has not picked one: the rule's own (报销 for 所有类型)."""
    return kind if kind in REQUEST_TYPES else REQUEST_TYPES[0]
