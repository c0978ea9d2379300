"""Who is asking, for every console request: the session cookie → a Viewer (workflows/console.py),
the CSRF check on every POST, and the refusals (401 page, 403, 400), each audited."""

from __future__ import annotations

import hmac
from functools import wraps
from typing import Callable

from flask import abort, g, make_response, render_template, request
from bot.runtime import Runtime
from storage.db import session_scope
from storage.models import Employee
from workflows import audit, console

COOKIE = "banli_console"
NEXT_COOKIE = "banli_next"  # the page opened signed out (a digest's link): where the login lands
NEXT_MINUTES = 30


def load_viewer(runtime: Runtime) -> None:
    """before_request: g.viewer is the signed-in person's Viewer, or None."""
    g.viewer = None
    cookie = request.cookies.get(COOKIE, "")
    if not cookie:
        return
    with session_scope(runtime.engine) as session:
        key = console.signing_key(session, runtime.settings.secret_key)
        row = console.current_session(session, cookie, key=key, now=runtime.now())
        if row is None:
            return
        employee = session.get(Employee, row.employee_id)
        seen = console.viewer(session, employee)
        g.signed_in = employee
        if seen is None:  # a session whose person may no longer open the console
            g.viewer_refused = True
            return
        g.viewer = console.Viewer(seen.employee, seen.admin, seen.team, session_id=row.id, csrf=row.csrf)


def refuse(runtime: Runtime, status: int, *, attempted: str, why: str, actor: Employee | None) -> None:
    """Audit a refused request, then answer it with a page saying why (no stack trace, ever)."""
    with session_scope(runtime.engine) as session:
        audit.refused(session, actor=actor, attempted=attempted, why=why, subject=request.path[:64], platform="web",
                      at=runtime.now())
    abort(status)


def check_csrf(runtime: Runtime) -> None:
    """before_request: a POST without the session's form token is refused (400) and audited."""
    if request.method != "POST" or request.endpoint in (None, "admin.static"):
        return
    sent = request.form.get("csrf", "")
    viewer = g.get("viewer")
    if viewer is None and g.get("viewer_refused"):
        # A rep's session has no form token worth checking: the answer is "not yours" (403), as for a GET.
        refuse(runtime, 403, attempted=f"POST {request.path}", why="not_admin_or_manager", actor=g.get("signed_in"))
    if viewer is None or not sent or not hmac.compare_digest(sent, viewer.csrf):
        refuse(runtime, 400, attempted=f"POST {request.path}", why="csrf_missing" if not sent else "csrf_wrong",
               actor=viewer.employee if viewer else g.get("signed_in"))


def signed_out_page():
    """The 'send 后台 in chat' page (401). It remembers the page asked for (GET only), so the login
    link that follows lands there rather than on the overview."""
    response = make_response(render_template("admin/signed_out.html", back=request.method == "GET"), 401)
    if request.method == "GET":
        response.set_cookie(NEXT_COOKIE, request.full_path.rstrip("?"), max_age=NEXT_MINUTES * 60, httponly=True,
                            samesite="Lax", path="/admin")
    return response


def landing(default: str) -> str:
    """Where a fresh login goes: the remembered console page, else `default`. Only a path inside the
    console is taken (never another site: `//evil` or `/\\evil` would leave it)."""
    wanted = request.cookies.get(NEXT_COOKIE, "")
    if wanted.startswith("/admin/") and "//" not in wanted and "\\" not in wanted and wanted != "/admin/login":
        return wanted
    return default


def signed_in(runtime: Runtime, *, admin_only: bool = False) -> Callable:
    """A view that needs a session (else the 'ask for a link in chat' page, 401); `admin_only` views
    refuse everyone else with 403."""
    def wrap(view: Callable) -> Callable:
        @wraps(view)
        def guarded(*args, **kwargs):
            viewer = g.get("viewer")
            if viewer is None and g.get("viewer_refused"):
                refuse(runtime, 403, attempted=f"{request.method} {request.path}", why="not_admin_or_manager",
                       actor=g.get("signed_in"))
            if viewer is None:
                return signed_out_page()
            if admin_only and not viewer.admin:
                refuse(runtime, 403, attempted=f"{request.method} {request.path}", why="not_admin", actor=viewer.employee)
            return view(*args, **kwargs)
        return guarded
    return wrap
