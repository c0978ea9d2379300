"""Who may open the web console (后台), and the way in: a one-time link sent in chat, then a session.

No password: an admin or a manager types `后台` and gets a link with a signed token, valid for
LOGIN_MINUTES and usable once. Its row in `console_login` (hash only) is what makes it single use in
every process — redeeming is one UPDATE that only the first attempt wins. Opening it starts a
session (`console_session`): the cookie carries a signed random token, the row its hash, the
session's form (CSRF) token and when it was last used; IDLE_HOURS without a request ends it.

Tokens are signed (HMAC-SHA256) with BANLI_SECRET_KEY, or, when that is unset, a key generated once
and kept in the database: every web process and every restart then signs alike, with nothing to
configure in the demo — the database already holds the sessions the key protects.

What someone sees follows their role, asked again on every request (a role taken away counts at
once): admins everything; a manager — anyone with people reporting to them, or a 销售经理 / 销售总监 /
总经理 — their team (themselves and everyone below them in the manager chain); nobody else anything.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlmodel import Session

from storage.db import insert_ignore
from storage.models import ConsoleLogin, ConsoleSecret, ConsoleSession, Employee
from workflows import roles

LOGIN_MINUTES = 10
IDLE_HOURS = 8
MANAGER_ROLES = ("ceo", "sales_director", "sales_manager")
TEAM_DEPTH = 10  # a loop in the manager data stops here, as customers.managers_of does
REFUSAL = "只有管理员和经理可以打开后台"


@dataclass(frozen=True)
class Viewer:
    """The person behind a console request and what they may see. `team` None: everything (admin)."""

    employee: Employee
    admin: bool
    team: frozenset[int] | None
    session_id: int = 0
    csrf: str = ""


def viewer(session: Session, employee: Employee | None) -> Viewer | None:
    """What `employee` may see in the console now; None for someone who may not open it."""
    if employee is None or not employee.active:
        return None
    if roles.is_admin(session, employee):
        return Viewer(employee, admin=True, team=None)
    below = team_below(session, employee.id)
    if below or any(roles.has_role(session, employee, r) for r in MANAGER_ROLES):
        return Viewer(employee, admin=False, team=frozenset(below | {employee.id}))
    return None


def team_below(session: Session, manager_id: int) -> set[int]:
    """Everyone below `manager_id` in the manager chain, at any depth (the reverse of managers_of)."""
    team: set[int] = set()
    frontier = {manager_id}
    for _ in range(TEAM_DEPTH):
        frontier = set(session.execute(select(Employee.id).where(Employee.manager_id.in_(frontier))).scalars())
        frontier -= team | {manager_id}
        if not frontier:
            break
        team |= frontier
    return team


# -- signing -------------------------------------------------------------------------------------


def signing_key(session: Session, configured: str) -> bytes:
    """BANLI_SECRET_KEY, or the generated key in the database (made by whichever process asks first)."""
    if configured:
        return configured.encode()
    stored = select(ConsoleSecret.value).where(ConsoleSecret.id == 1)
    value = session.execute(stored).scalar()
    if value is None:  # read first: every console request asks, and only the first may write
        insert_ignore(session, ConsoleSecret, {"id": 1, "value": secrets.token_hex(32)}, ["id"])
        value = session.execute(stored).scalar_one()
    return value.encode()


def _sign(key: bytes, nonce: str) -> str:
    return f"{nonce}.{hmac.new(key, nonce.encode(), hashlib.sha256).hexdigest()[:32]}"


def _nonce_of(key: bytes, token: str) -> str | None:
    """The random part of a token we signed; None for anything else (forged, cut, garbage)."""
    nonce, _, _sig = (token or "").partition(".")
    if not nonce or len(token) > 200 or not hmac.compare_digest(_sign(key, nonce), token):
        return None
    return nonce


def _hash(nonce: str) -> str:
    return hashlib.sha256(nonce.encode()).hexdigest()


# -- the one-time link ---------------------------------------------------------------------------


def issue_login(session: Session, employee: Employee, *, key: bytes, now: datetime) -> str:
    """A new one-time login token for `employee`, valid LOGIN_MINUTES from `now`."""
    nonce = secrets.token_hex(16)
    session.add(ConsoleLogin(token_hash=_hash(nonce), employee_id=employee.id, created_at=now,
                             expires_at=now + timedelta(minutes=LOGIN_MINUTES)))
    return _sign(key, nonce)


def redeem_login(session: Session, token: str, *, key: bytes, now: datetime) -> tuple[Employee | None, str]:
    """(the person, "") if `token` is a link we sent, unused and unexpired — now used; otherwise
    (the person if known, why not: "bad" | "unknown" | "used" | "expired")."""
    nonce = _nonce_of(key, token)
    if nonce is None:
        return None, "bad"
    row = session.execute(select(ConsoleLogin).where(ConsoleLogin.token_hash == _hash(nonce))).scalar()
    if row is None:
        return None, "unknown"
    employee = session.get(Employee, row.employee_id)
    if row.expires_at <= now:
        return employee, "expired" if row.used_at is None else "used"
    won = session.execute(update(ConsoleLogin).where(ConsoleLogin.id == row.id, ConsoleLogin.used_at.is_(None))
                          .values(used_at=now)).rowcount == 1
    return (employee, "") if won else (employee, "used")


# -- sessions ------------------------------------------------------------------------------------


def open_session(session: Session, employee: Employee, *, key: bytes, now: datetime) -> str:
    """Start a console session; returns the cookie value."""
    nonce = secrets.token_hex(16)
    session.add(ConsoleSession(token_hash=_hash(nonce), employee_id=employee.id, csrf=secrets.token_hex(16),
                               created_at=now, last_seen_at=now))
    return _sign(key, nonce)


def current_session(session: Session, cookie: str, *, key: bytes, now: datetime) -> ConsoleSession | None:
    """The live session behind a cookie, its idle clock restarted; None if there is none (or it ran out)."""
    nonce = _nonce_of(key, cookie)
    if nonce is None:
        return None
    row = session.execute(select(ConsoleSession).where(ConsoleSession.token_hash == _hash(nonce),
                                                       ConsoleSession.ended_at.is_(None))).scalar()
    if row is None:
        return None
    if now - row.last_seen_at > timedelta(hours=IDLE_HOURS):
        row.ended_at = now
        session.add(row)
        return None
    row.last_seen_at = now
    session.add(row)
    return row


def end_session(session: Session, session_id: int, *, now: datetime) -> None:
    session.execute(update(ConsoleSession).where(ConsoleSession.id == session_id, ConsoleSession.ended_at.is_(None))
                    .values(ended_at=now))
