"""超期未跟进: owned customers nobody has followed up for the tier's days (admin rule
`crm.overdue_days`, default A 7 / B 14 / C 30) → the owner hears of them; `crm.overdue_grace_days`
later, still untouched → the owner's manager does.

One card per person, not one per customer: a clock jump or an admin shortening the days can make
dozens of customers overdue at once, and thirteen cards in a row bury everything else in the chat.
So the hourly scan works in three steps, all set-based (one pass over owned customers, never every
customer in Python):

1. **mark** — each newly overdue customer gets an `overdue_mark` row keyed
   `overdue:<owner|manager>:<customer id>:<overdue since>` (the local date it became overdue). The
   key is the "told about this period" record: a scan that runs twice, every hour, or after a
   restart finds it and marks nothing; a follow-up starts a new period (a new key). One INSERT …
   SELECT … RETURNING writes them and says who has something new.
2. **one card timer per person** with something new, due at `business_time.push_time`, so quiet
   hours and days off hold it. Scans while it is held share it (its key names the release moment).
3. **the card, built when it goes out** (the timer fires): the person's customers marked but not
   yet on any card and still overdue, worst first (most days overdue, then tier A before B and C).
   Each marked row records the card it went on, so a customer is on exactly one card per period
   and a later scan's card never lists it again; its footer counts those told before and still
   untouched. A customer followed up (or handed over) while the card was held is simply not on it;
   a card left with nobody is not sent.

A card shows one page (cards/pages.py); 更多 shows the next page of the same card, as it stands at
the tap. Each owner line has 记跟进 (the visit form about that customer), each manager line 查看.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

from sqlalchemy import String, and_, exists, func, literal, select, union_all, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session
from sqlmodel.sql.sqltypes import UTCDateTime

from cards import Button, Card
from cards.pages import page
from storage.db import no_jit
from storage import outbox
from storage.models import Customer, Employee, OverdueMark
from storage.sqlexpr import add_days, as_text, last_touch as touched_sql, local_date, per_tier
from workflows import customers, rules
from workflows.business_time import push_time_for
from workflows.followups import short_name
from workflows.pushes import push
from workflows.timers import timer

LEVELS = ("owner", "manager")
CARD_TIMER = "overdue.card"
MORE_ACTION = "overdue.more"
NOT_ON_A_CARD = ""  # a marked row's `card` until a card lists it


def last_touch(customer: Customer) -> datetime:
    """The later of the last follow-up and when the current owner got the customer: someone who
    just claimed or was handed a customer starts with a fresh clock (storage.sqlexpr.last_touch is
    the same in SQL)."""
    held = customer.owned_since or customer.created_at
    return max(customer.last_followup_at, held) if customer.last_followup_at else held


# -- the scan ---------------------------------------------------------------------------------------


def scan(session: Session, *, now: datetime, tz: str) -> dict[str, int]:
    """Mark the customers newly overdue and queue one card timer per person told. Returns how many
    customers were marked per level and how many cards were queued, for the cron result."""
    no_jit(session)
    grace = timedelta(days=rules.get(session, "crm.overdue_grace_days"))
    fresh = alerts(session, now=now, tz=tz, grace=grace, unmarked=True)
    people = _mark(session, fresh, now)
    counts = {"owner": 0, "manager": 0, "cards": 0}
    if not people:
        return counts
    due_at = push_time_for(session, now, tz)
    due = f"{due_at.astimezone(timezone.utc):%Y%m%d%H%M}"  # names the card: short, for its 更多 button
    timers = [outbox.row_values(key=f"overdue:card:{level}:{person}:{due}", kind="timer", due_at=due_at,
                                payload={"name": CARD_TIMER, "level": level, "person": person, "due": due})
              for level, person in people]
    counts["cards"] = len(outbox.add_many(session, timers))
    for (level, _), n in people.items():
        counts[level] += n
    return counts


def overdue_by(c: Any, limits: dict[str, int], moment: datetime) -> Any:
    """The customer (a row of table `c`) is overdue at `moment`: owned, and untouched for its tier's
    days (`limits`, the rule crm.overdue_days). The scan and the 逾期客户 report share this test."""
    cutoff = {tier: moment - timedelta(days=d) for tier, d in limits.items()}
    return and_(c.c.owner_id.is_not(None), touched_sql(c) <= per_tier(c.c.tier, cutoff, UTCDateTime()))


def alerts(session: Session, *, now: datetime, tz: str, grace: timedelta, unmarked: bool = False,
           level: str | None = None, person: int | None = None) -> Any:
    """The overdue customers, one row per person to tell (a subquery): level, person, key (the
    marked row's key, built in SQL), the customer's id, owner_id, name, short_names and tier,
    owner_name, touched, since and days.

    Owner rows go to active owners; manager rows to an owner's active manager once the grace days
    have passed too (whether or not the owner is still active). `unmarked`: only those without their
    marked row yet. `level` and `person`: only that person's, at that level (a card's list)."""
    dialect = session.get_bind().dialect.name
    limits = rules.get(session, "crm.overdue_days")
    c = Customer.__table__
    touched = touched_sql(c)
    days = per_tier(c.c.tier, limits)
    manager_cutoff = {tier: now - timedelta(days=d) - grace for tier, d in limits.items()}
    where = [overdue_by(c, limits, now)]
    if person is not None and level == "owner":
        where.append(c.c.owner_id == person)
    elif person is not None:
        where.append(c.c.owner_id.in_(select(Employee.id).where(Employee.manager_id == person)))
    # The scan itself needs no names: leaving them out keeps the materialised candidates narrow.
    names = () if unmarked else (c.c.name, c.c.short_names)
    cand = (select(c.c.id, c.c.owner_id, *names, c.c.tier, touched.label("touched"),
                   days.label("days"), add_days(dialect, touched, days).label("since"))
            .where(*where).cte("overdue_candidate"))
    period = local_date(dialect, cand.c.since, tz)
    owner, manager = Employee.__table__.alias("owner"), Employee.__table__.alias("manager")

    def told(name: str, who: Any, *conditions: Any) -> Any:
        key = literal(f"overdue:{name}:", String()) + as_text(cand.c.id) + ":" + period
        new = (~exists().where(OverdueMark.key == key),) if unmarked else ()
        owner_name = () if unmarked else (owner.c.name.label("owner_name"),)
        return (select(*cand.c, *owner_name, literal(name, String()).label("level"),
                       who.label("person"), key.label("key"))
                .where(owner.c.id == cand.c.owner_id, *conditions, *new))

    branches = {
        "owner": lambda: told("owner", owner.c.id, owner.c.active),
        "manager": lambda: told("manager", manager.c.id, manager.c.id == owner.c.manager_id, manager.c.active,
                                cand.c.touched <= per_tier(cand.c.tier, manager_cutoff, UTCDateTime())),
    }
    chosen = [branches[name]() for name in (LEVELS if level is None else (level,))]
    return (union_all(*chosen) if len(chosen) > 1 else chosen[0]).subquery("alert")


def _mark(session: Session, fresh: Any, now: datetime) -> Counter:
    """One INSERT … SELECT … RETURNING of the marked rows; how many each person has new. The
    written rows are counted rather than grouped by a second SELECT: the selection is most of the
    scan's cost, so it runs once."""
    values = {"key": fresh.c.key, "level": fresh.c.level, "person": fresh.c.person,
              "card": literal(NOT_ON_A_CARD), "marked_at": literal(now, UTCDateTime())}
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    mark = OverdueMark.__table__
    # The WHERE is for SQLite: without one it reads INSERT … SELECT … ON CONFLICT as a join's ON.
    rows = select(*values.values()).where(fresh.c.key.is_not(None))
    written = (insert(mark).from_select(list(values), rows).on_conflict_do_nothing(index_elements=["key"])
               .returning(mark.c.level, mark.c.person))
    if dialect != "postgresql":  # SQLite has no INSERT inside a WITH: count the returned rows here
        return Counter(tuple(row) for row in session.execute(written))
    new = written.cte("written")  # PostgreSQL counts them itself: ~400,000 rows stay in the database
    return Counter({(level, person): n for level, person, n in session.execute(
        select(new.c.level, new.c.person, func.count()).group_by(new.c.level, new.c.person))})


# -- the card ---------------------------------------------------------------------------------------


@timer(CARD_TIMER)
def send_card(session: Session, payload: dict[str, Any], now: datetime, tz: str) -> dict[str, Any]:
    """The held card's moment: put every marked, still overdue customer not yet on a card on this
    one, and push it. Nobody left (all followed up meanwhile, or on an earlier card): nothing sent."""
    level, person, due = payload["level"], int(payload["person"]), payload["due"]
    card_key = _card_key(level, person, due)
    waiting = [row.key for row in _listing(session, level, person, now, tz) if row.card == ""]
    claimed = _claim(session, waiting, card_key)
    if not claimed:
        return {"customers": 0, "pushed": False}
    card = card_page(session, level=level, person=person, due=due, start=0, now=now, tz=tz)
    return {"customers": len(claimed), "pushed": card is not None and push(session, person, card_key, card)}


def card_page(session: Session, *, level: str, person: int, due: str, start: int, now: datetime,
              tz: str) -> Card | None:
    """The page of card `due` (its release moment) starting at `start`: its customers still
    overdue, worst first. None when none is left."""
    card_key = _card_key(level, person, due)
    rows = _listing(session, level, person, now, tz)
    mine = sorted((r for r in rows if r.card == card_key), key=lambda r: (-r.overdue_days, r.tier, r.since, r.id))
    if not mine:
        return None
    earlier = sum(1 for r in rows if r.card not in ("", card_key))
    return _card(level, mine, min(max(start, 0), len(mine) - 1), earlier=earlier, more=f"{level}:{due}",
                 words=customers.namer(session))


class _Line:
    """One marked customer on a person's list, with the card it went on ("" for none yet)."""

    def __init__(self, row: Any, now: datetime) -> None:
        self.id, self.name, self.short_names, self.tier = row.id, row.name, row.short_names, row.tier
        self.owner_name, self.key, self.since = row.owner_name, row.key, row.since
        self.idle_days = (now - row.touched).days
        self.overdue_days = (now - row.since).days
        self.card = row.card


def _listing(session: Session, level: str, person: int, now: datetime, tz: str) -> list[_Line]:
    """The person's customers at `level` still overdue and marked for this period: one person's
    list (their customers, or their team's), through the marks' key."""
    grace = timedelta(days=rules.get(session, "crm.overdue_grace_days"))
    told = alerts(session, now=now, tz=tz, grace=grace, level=level, person=person)
    rows = session.execute(select(told, OverdueMark.card).join(OverdueMark, OverdueMark.key == told.c.key)
                           .where(told.c.person == person))
    return [_Line(row, now) for row in rows]


def _claim(session: Session, keys: list[str], card_key: str) -> set[str]:
    """Record that these marked rows are on card `card_key`; returns those still free (a row is on
    one card only, whichever claims it first)."""
    claimed: set[str] = set()
    for start in range(0, len(keys), 500):
        claimed.update(session.execute(
            update(OverdueMark).where(OverdueMark.key.in_(keys[start:start + 500]), OverdueMark.card == NOT_ON_A_CARD)
            .values(card=card_key).returning(OverdueMark.key)).scalars())
    return claimed


def _card_key(level: str, person: int, due: str) -> str:
    return f"overdue:push:{level}:{person}:{due}"


def _card(level: str, rows: list[_Line], start: int, *, earlier: int, more: str, words: Callable) -> Card:
    lines = page([_line_text(level, r) for r in rows[start:]])
    shown = rows[start:start + len(lines)]
    end = start + len(shown)
    buttons = tuple(_line_button(level, r, words, first=n == 0) for n, r in enumerate(shown))
    if end < len(rows):
        buttons += (Button("更多", MORE_ACTION, f"{end}:{more}"),)
    notes = [f"第 {start + 1}–{end} 家，共 {len(rows)} 家"] if len(rows) > len(shown) else []
    if earlier:
        notes.append(f"另有 {earlier} 家之前提醒过，还没跟进")
    tiers = {t: sum(1 for r in rows if r.tier == t) for t in "ABC"}
    return Card(title=f"{'超期未跟进' if level == 'owner' else '团队客户超期'} · {len(rows)} 家",
                body="\n".join(lines), fields=tuple((f"{t}级", f"{n} 家") for t, n in tiers.items() if n),
                buttons=buttons, footer="；".join(notes))


def _line_text(level: str, r: _Line) -> str:
    who = f"{r.owner_name}的" if level == "manager" else ""
    return f"· {who}{short_name(r)}（{r.tier}）{r.idle_days} 天没有跟进"


def _line_button(level: str, r: _Line, words: Callable, *, first: bool) -> Button:
    """On DingTalk markdown a button sends its words (`拜访 <全称>` opens the same visit form)."""
    if level == "owner":
        # 记跟进 opens the visit form on this customer: the next message is the note about it.
        return Button(f"记跟进·{short_name(r)[:6]}", "customer.visit", str(r.id), style="primary" if first else "default",
                      command=words(r, "拜访"))
    return Button(f"查看·{short_name(r)[:7]}", "customer.show", str(r.id), command=words(r, "查看"))
