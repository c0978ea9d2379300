"""/admin/people (人员) and one person's page: roles, delegate, hand-over (preview, then 确认交接),
linking two identities and the directory re-sync; /admin/customers/<id>: a customer's history and
its owner change. workflows/people_view.py decides and acts; these views only ask and render."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from flask import Blueprint, abort, g, redirect, render_template, request, url_for

from bot.admin import auth
from bot.runtime import Runtime
from storage.db import session_scope
from storage.models import Customer, Employee
from workflows import audit, people_view, roles

FIELD_MAX = 32


def add_routes(bp: Blueprint, runtime: Runtime) -> None:
    def today():
        return runtime.now().astimezone(ZoneInfo(runtime.settings.timezone)).date()

    @bp.get("/people")
    @auth.signed_in(runtime)
    def people_page():
        args = {k: request.args.get(k, "").strip()[:FIELD_MAX] for k in ("name", "department", "state")}
        with session_scope(runtime.engine) as session:
            found = people_view.people(session, team=g.viewer.team, today=today(), **args)
            return render_template("admin/people.html", viewer=g.viewer, people=found, asked=args,
                                   states=people_view.STATES,
                                   last_sync=people_view.last_sync(session, tz=runtime.settings.timezone) if g.viewer.admin else None,
                                   notice=request.args.get("notice", "")[:200])

    @bp.get("/people/<int:person_id>")
    @auth.signed_in(runtime)
    def person_page(person_id: int):
        return _person(person_id, notice=request.args.get("notice", "")[:200])

    def _person(person_id: int, *, notice: str = "", error: str = "", plan=None, link=None, status: int = 200):
        with session_scope(runtime.engine) as session:
            row = people_view.person(session, person_id, team=g.viewer.team, today=today())
            if row is None:
                abort(404)
            if plan is not None:
                plan = people_view.handover_plan(session, row.employee, *plan)
            if link is not None:
                try:
                    link = people_view.link_plan(session, row.employee, link)
                except people_view.Refused as refused:
                    error, link, status = str(refused), None, 400
            return render_template(
                "admin/person.html", viewer=g.viewer, row=row, notice=notice, error=error, plan=plan, link=link,
                role_names=roles.ROLES, colleagues=people_view.colleagues(session, but=person_id),
                everyone=[e for e in people_view.people(session, team=None, today=today())
                          if e.employee.id != person_id] if g.viewer.admin else []), status

    @bp.get("/people/<int:person_id>/handover")
    @auth.signed_in(runtime, admin_only=True)
    def handover_preview(person_id: int):
        return _person(person_id, plan=(request.args.get("how", "manager"), request.args.get("to", "")))

    @bp.get("/people/<int:person_id>/link")
    @auth.signed_in(runtime, admin_only=True)
    def link_preview(person_id: int):
        return _person(person_id, link=request.args.get("other", ""))

    @bp.post("/people/<int:person_id>/<any(role_add, role_remove, delegate, delegate_clear, handover, link):verb>")
    @auth.signed_in(runtime, admin_only=True)
    def person_change(person_id: int, verb: str):
        form, now, by = request.form, runtime.now(), g.viewer.employee
        with session_scope(runtime.engine) as session:
            target = session.get(Employee, person_id)
            if target is None:
                abort(404)
            try:
                if verb in ("role_add", "role_remove"):
                    notice = people_view.change_role(session, target, form.get("role", ""), add=verb == "role_add",
                                                     by=by, now=now)
                elif verb == "delegate":
                    notice = people_view.set_delegate(session, target, form.get("delegate", ""), form.get("first", ""),
                                                      form.get("last", ""), by=by, now=now)
                elif verb == "delegate_clear":
                    notice = people_view.clear_delegate(session, target, by=by, now=now, tz=runtime.settings.timezone)
                elif verb == "handover":
                    plan = people_view.handover_plan(session, target, form.get("how", ""), form.get("to", ""))
                    notice = people_view.hand_over(session, plan, by=by, now=now, tz=runtime.settings.timezone)
                else:
                    other, _ = people_view.link_plan(session, target, form.get("other", ""))
                    notice = people_view.link(session, target, other, by=by, now=now)
            except people_view.Refused as refused:
                session.rollback()
                audit.refused(session, actor=by, attempted=f"employee.{verb}", why=str(refused)[:200],
                              subject=f"employee:{person_id}", platform="web", at=now)
                error = str(refused)
            else:
                error = ""
        if error:
            return _person(person_id, error=error, status=400)
        runtime.ring()  # the hand-over's card updates and any push: sent now, not at the next poll
        return redirect(url_for("admin.person_page", person_id=person_id, notice=notice))

    @bp.post("/people/resync")
    @auth.signed_in(runtime, admin_only=True)
    def resync():
        with session_scope(runtime.engine) as session:
            queued = people_view.queue_resync(session, by=g.viewer.employee, now=runtime.now())
        runtime.ring()
        notice = "已开始同步通讯录，稍后刷新查看结果。" if queued else "这一分钟已经开始同步了，稍后刷新查看结果。"
        return redirect(url_for("admin.people_page", notice=notice))

    @bp.get("/customers/<int:customer_id>")
    @auth.signed_in(runtime)
    def customer_page(customer_id: int):
        return _customer(customer_id, notice=request.args.get("notice", "")[:200])

    def _customer(customer_id: int, *, notice: str = "", error: str = "", status: int = 200):
        with session_scope(runtime.engine) as session:
            customer = session.get(Customer, customer_id)
            if customer is None:
                abort(404)
            page = people_view.customer_page(session, g.viewer.employee, g.viewer.team, customer,
                                             phones=request.args.get("phones") == "1", tz=runtime.settings.timezone)
            return render_template("admin/customer.html", viewer=g.viewer, page=page, notice=notice, error=error,
                                   choices=people_view.owner_choices(session, g.viewer.team)), status

    @bp.post("/customers/<int:customer_id>/owner")
    @auth.signed_in(runtime)
    def customer_owner(customer_id: int):
        now, by = runtime.now(), g.viewer.employee
        with session_scope(runtime.engine) as session:
            customer = session.get(Customer, customer_id)
            if customer is None:
                abort(404)
            try:
                notice = people_view.change_owner(session, customer, request.form.get("owner", ""), by=by,
                                                  team=g.viewer.team, now=now)
                error = ""
            except people_view.Refused as refused:
                session.rollback()
                audit.refused(session, actor=by, attempted="customer.owner", why=str(refused)[:200],
                              subject=f"customer:{customer_id}", platform="web", at=now)
                error = str(refused)
        if error:
            return _customer(customer_id, error=error, status=403 if error.startswith("负责人：") else 400)
        runtime.ring()
        return redirect(url_for("admin.customer_page", customer_id=customer_id, notice=notice))
