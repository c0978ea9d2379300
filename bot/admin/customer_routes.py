"""/admin/customers: search with the bot's matcher, and (admins) merging two duplicates — a preview of
what moves, then a POST with the form token. workflows/customer_merge.py does the merge."""

from __future__ import annotations

from flask import Blueprint, g, redirect, render_template, request, url_for
from sqlalchemy import func, select

from bot.admin import auth
from bot.runtime import Runtime
from storage.db import session_scope
from storage.models import Customer, FollowUp
from workflows import audit, customer_merge, customers

QUERY_MAX = 64


def add_routes(bp: Blueprint, runtime: Runtime) -> None:
    @bp.get("/customers")
    @auth.signed_in(runtime)
    def customer_search():
        query = request.args.get("q", "").strip()[:QUERY_MAX]
        found = []
        with session_scope(runtime.engine) as session:
            if query:
                match = customers.find(session, query, owner_id=g.viewer.employee.id)
                found = [_summary(session, customers.get(session, c.customer_id), c.score) for c in match.candidates]
            merged = customers.get(session, int(request.args["merged"])) if request.args.get("merged", "").isdigit() else None
            merged = _summary(session, merged, None) if merged else None
        return render_template("admin/customers.html", viewer=g.viewer, query=query, found=[f for f in found if f],
                               merged=merged)

    @bp.get("/customers/merge")
    @auth.signed_in(runtime, admin_only=True)
    def merge_preview():
        keep, gone = request.args.get("keep", ""), request.args.get("gone", "")
        with session_scope(runtime.engine) as session:
            try:
                plan = customer_merge.preview(session, _id(keep, "保留的客户"), _id(gone, "要合并的客户"))
            except customer_merge.MergeRefused as refused:
                return render_template("admin/merge.html", viewer=g.viewer, error=str(refused), plan=None), 400
            return render_template("admin/merge.html", viewer=g.viewer, error="", plan=plan,
                                   keep=_summary(session, plan.keep, None), gone=_summary(session, plan.gone, None))

    @bp.post("/customers/merge")
    @auth.signed_in(runtime, admin_only=True)
    def merge_do():
        with session_scope(runtime.engine) as session:
            try:
                keep = _id(request.form.get("keep", ""), "保留的客户")
                customer_merge.merge(session, keep, _id(request.form.get("gone", ""), "要合并的客户"),
                                     actor=g.viewer.employee, platform="web", at=runtime.now())
            except customer_merge.MergeRefused as refused:
                session.rollback()
                audit.refused(session, actor=g.viewer.employee, attempted="customer.merge", why=str(refused),
                              subject=request.path[:64], platform="web", at=runtime.now())
                return render_template("admin/merge.html", viewer=g.viewer, error=str(refused), plan=None), 400
        return redirect(url_for("admin.customer_search", merged=keep))


def _id(value: str, label: str) -> int:
    value = value.strip().lstrip("#")
    if not value.isdigit():
        raise customer_merge.MergeRefused(f"{label}的编号「{value[:20]}」不是数字")
    return int(value)


def _summary(session, customer: Customer | None, score: float | None) -> dict | None:
    if customer is None:
        return None
    count = session.execute(select(func.count()).select_from(FollowUp)
                            .where(FollowUp.customer_id == customer.id)).scalar_one()
    return {"id": customer.id, "name": customer.name, "short_names": customer.short_names, "tier": customer.tier,
            "owner": customers.owner_name(session, customer), "followups": count,
            "score": round(score) if score is not None else None}
