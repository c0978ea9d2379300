"""New customers: validate what was typed or imported, warn of likely duplicates, create one.

Duplicates are stopped at entry (docs/architecture.md §5): a strong fuzzy match on the legal name or
a 简称 (the same matcher that finds customers for visit logging, docs/architecture.md §4), or the
same phone number on an existing contact. Callers decide what a person may see of a duplicate; this module only finds them.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime
from typing import Iterable, Sequence

from sqlalchemy import select
from sqlmodel import Session

from storage.db import fit_key, insert_ignore
from storage.models import (CUSTOMER_STATUSES, TIERS, Contact, Customer, Employee, OwnershipChange, Outbox,
                            utcnow)
from workflows import audit, customers
from workflows.matching import CANDIDATES, refresh_forms, split_short_names

# A new name this close to an existing name or 简称 is "likely the same customer": below the
# matcher's accept line (90), because a warning costs one tap and a duplicate costs a fight over who
# owns it. 85 catches the same brand in another city or under another legal name (深圳华美教育 vs
# 上海华美教育科技 scores 87, 北京美团科技 vs 北京三快在线科技/美团 86) and abbreviations (88:
# 招行 ⊂ 招商银行); a different business with a shared brand word (腾讯音乐 vs 腾讯科技, 67) does not warn.
DUPLICATE_SCORE = 85.0
NAME_MIN, NAME_MAX = 2, 128
SHORT_NAME_MAX = 32
FIELD_MAX = 32  # industry, region, contact name and title columns

_MOBILE = re.compile(r"^1[3-9]\d{9}$")
_LANDLINE = re.compile(r"^0\d{9,11}$")  # area code (3–4 digits, leading 0) + 7–8 digit number
_SERVICE = re.compile(r"^[48]00\d{7}$")  # 400/800 company numbers
_PHONE_NOISE = re.compile(r"[\s\-()（）.·—－]+")


class InvalidCustomer(ValueError):
    """Something about a new customer that a person must fix; `message` is Chinese, for them."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(message)
        self.field = field_name
        self.message = message


@dataclass(frozen=True)
class NewContact:
    name: str = ""
    title: str = ""
    phone: str = ""


@dataclass(frozen=True)
class Duplicate:
    customer: Customer
    reason: str  # Chinese, safe for anyone to read: never the matching phone number itself


@dataclass
class NewCustomer:
    """A validated customer, ready to create."""

    name: str
    short_names: list[str] = field(default_factory=list)
    tier: str = "C"
    industry: str = ""
    region: str = ""
    status: str = "潜在"
    contacts: list[NewContact] = field(default_factory=list)

    @property
    def phones(self) -> list[str]:
        return [c.phone for c in self.contacts if c.phone]


# -- validation -------------------------------------------------------------------------------------


def normalize_phone(raw: str) -> str | None:
    """Digits of a Chinese mobile, landline or 400/800 number; None if it does not look like one.
    +86 / 0086 / 86 prefixes, spaces, dashes and brackets are what people and Excel add."""
    text = unicodedata.normalize("NFKC", str(raw or "")).strip()
    if text.endswith(".0"):  # Excel stored it as a number
        text = text[:-2]
    text = _PHONE_NOISE.sub("", text)
    for prefix in ("+86", "0086", "86"):
        if text.startswith(prefix) and len(text) - len(prefix) >= 10:
            text = text[len(prefix):]
            break
    if not text.isdigit():
        return None
    return text if _MOBILE.match(text) or _LANDLINE.match(text) or _SERVICE.match(text) else None


def looks_like_phone(text: str) -> bool:
    """Mostly digits: meant as a phone number, whether or not it is a valid one."""
    digits = sum(c.isdigit() for c in text)
    return digits >= 5 and digits >= len(_PHONE_NOISE.sub("", text)) - 3


def parse_tier(raw: str) -> str | None:
    """A / a / A级 / A类 / A级客户 → "A"; empty → None (use the default)."""
    text = unicodedata.normalize("NFKC", raw or "").strip().upper()
    text = re.sub(r"(级|类)?(客户)?$", "", text)
    return text or None


def validate(*, name: str, short_names: Iterable[str] | str = (), tier: str | None = None,
             industry: str = "", region: str = "", status: str | None = None,
             contacts: Sequence[NewContact] = ()) -> NewCustomer:
    """Clean and check a new customer; raises InvalidCustomer naming the first problem."""
    name = _clean(name)
    if not NAME_MIN <= len(name) <= NAME_MAX:
        raise InvalidCustomer("name", f"客户名称要 {NAME_MIN}–{NAME_MAX} 个字，现在是「{name[:20]}」")
    shorts = split_short_names(short_names) if isinstance(short_names, str) else [_clean(s) for s in short_names]
    shorts = list(dict.fromkeys(s for s in shorts if s and s != name))
    for short in shorts:
        if len(short) > SHORT_NAME_MAX:
            raise InvalidCustomer("short_names", f"简称「{short[:12]}…」太长了，最多 {SHORT_NAME_MAX} 个字")
    if len(",".join(shorts)) > 255:
        raise InvalidCustomer("short_names", "简称太多了，留几个常用的就行")
    tier_value = parse_tier(tier or "") or "C"
    if tier_value not in TIERS:
        raise InvalidCustomer("tier", f"等级「{tier}」不对，只能是 A、B、C")
    status_value = _clean(status or "") or "潜在"
    if status_value not in CUSTOMER_STATUSES:
        raise InvalidCustomer("status", f"状态「{status}」不对，只能是 {'、'.join(CUSTOMER_STATUSES)}")
    for label, value in (("行业", industry), ("地区", region)):
        if len(_clean(value)) > FIELD_MAX:
            raise InvalidCustomer(label, f"{label}太长了，最多 {FIELD_MAX} 个字")
    return NewCustomer(name=name, short_names=shorts, tier=tier_value, industry=_clean(industry),
                       region=_clean(region), status=status_value, contacts=[_contact(c) for c in contacts])


def _contact(contact: NewContact) -> NewContact:
    name, title = _clean(contact.name), _clean(contact.title)
    if len(name) > FIELD_MAX or len(title) > FIELD_MAX:
        raise InvalidCustomer("contact", f"联系人姓名和职务最多 {FIELD_MAX} 个字")
    phone = ""
    if _clean(contact.phone):
        phone = normalize_phone(contact.phone) or ""
        if not phone:
            raise InvalidCustomer("phone", f"电话「{_clean(contact.phone)[:20]}」不对：手机11位，座机要带区号")
    return NewContact(name=name, title=title, phone=phone)


def _clean(text: str) -> str:
    return unicodedata.normalize("NFKC", str(text or "")).strip()


# -- duplicates -------------------------------------------------------------------------------------


def likely_duplicates(session: Session, name: str, short_names: Iterable[str] = (),
                      phones: Iterable[str] = ()) -> list[tuple[Customer, str]]:
    """Existing customers this one probably is: (customer, Chinese reason), strongest first."""
    return [(d.customer, d.reason) for d in find_duplicates(session, name, short_names, phones)]


def find_duplicates(session: Session, name: str, short_names: Iterable[str] = (),
                    phones: Iterable[str] = (), *, phone_book: dict[str, set[int]] | None = None) -> list[Duplicate]:
    found: dict[int, str] = {}
    for customer_id, reason in name_matches(customers.index(session), name, short_names):
        found.setdefault(customer_id, reason)
    wanted = {p for p in (normalize_phone(p) for p in phones) if p}
    book = phone_book if phone_book is not None else _phones_like(session, wanted)
    for phone in sorted(wanted):
        for customer_id in sorted(book.get(phone, ())):
            found.setdefault(customer_id, "联系人电话相同")
    return [Duplicate(session.get(Customer, cid), reason) for cid, reason in found.items()]


def name_matches(index, name: str, short_names: Iterable[str] = (), *,
                 candidates: int = CANDIDATES) -> list[tuple[int, str]]:
    """(customer id, reason) for every indexed customer whose name or 简称 is close to these; the
    reason is the strongest match's, strongest customers first. `candidates`: the matcher's shortlist."""
    best: dict[int, tuple[float, str]] = {}
    for query, reason in [(name, "名称相近")] + [(s, f"简称「{s}」相近") for s in short_names if s]:
        for candidate in index.match(query, candidates=candidates).candidates:
            if candidate.score >= DUPLICATE_SCORE and candidate.score > best.get(candidate.customer_id, (0.0, ""))[0]:
                same = candidate.score >= 100
                best[candidate.customer_id] = (candidate.score, reason.replace("相近", "相同") if same else reason)
    ranked = sorted(best.items(), key=lambda item: -item[1][0])
    return [(customer_id, reason) for customer_id, (_, reason) in ranked]


def phone_book(session: Session) -> dict[str, set[int]]:
    """Every contact phone (normalised) → customer ids: one scan for a bulk import."""
    book: dict[str, set[int]] = {}
    for customer_id, phone in session.execute(select(Contact.customer_id, Contact.phone).where(Contact.phone != "")):
        normal = normalize_phone(phone)
        if normal:
            book.setdefault(normal, set()).add(customer_id)
    return book


def _phones_like(session: Session, wanted: set[str]) -> dict[str, set[int]]:
    """The phone book restricted to these numbers. Stored phones may carry dashes or +86 (older rows,
    other tools), so filter on the last four digits in SQL and compare normalised in Python."""
    book: dict[str, set[int]] = {}
    for phone in wanted:
        rows = session.execute(select(Contact.customer_id, Contact.phone).where(Contact.phone.contains(phone[-4:])))
        for customer_id, stored in rows:
            if normalize_phone(stored) == phone:
                book.setdefault(phone, set()).add(customer_id)
    return book


# -- creating ---------------------------------------------------------------------------------------


def create_customer(session: Session, *, by: Employee | None, name: str, short_names: Iterable[str] | str = (),
                    tier: str | None = None, industry: str = "", region: str = "", status: str | None = None,
                    owner: Employee | None, contacts: Sequence[NewContact] = (), platform: str = "",
                    reason: str = "create", now: datetime | None = None) -> Customer:
    """Validate and add a customer with its contacts; the caller's transaction commits it.
    `owner` None puts it in the 公海. Writes the ownership history and an audit entry."""
    new = validate(name=name, short_names=short_names, tier=tier, industry=industry, region=region,
                   status=status, contacts=contacts)
    return create_validated(session, new, by=by, owner=owner, platform=platform, reason=reason, now=now)


def create_validated(session: Session, new: NewCustomer, *, by: Employee | None, owner: Employee | None,
                     platform: str = "", reason: str = "create", now: datetime | None = None) -> Customer:
    now = now or utcnow()
    customer = Customer(name=new.name, short_names=",".join(new.short_names), tier=new.tier,
                        industry=new.industry, region=new.region, status=new.status,
                        owner_id=owner.id if owner else None, owned_since=now, created_at=now)
    refresh_forms(customer)
    session.add(customer)
    session.flush()
    for contact in new.contacts:
        session.add(Contact(customer_id=customer.id, name=contact.name, title=contact.title, phone=contact.phone))
    session.add(OwnershipChange(customer_id=customer.id, from_owner_id=None,
                                to_owner_id=customer.owner_id, reason=reason, at=now))
    audit.record(session, actor=by, action="customer.create", subject=f"customer:{customer.id}", platform=platform,
                 detail={"name": new.name, "via": reason, "owner_id": customer.owner_id, "tier": new.tier,
                         "contacts": len(new.contacts)})
    session.flush()
    return customer


# -- exactly once from a chat message ---------------------------------------------------------------


def claim(session: Session, source_key: str, *, outcome: str, now: datetime | None = None) -> bool:
    """Record that the message `source_key` was acted on (`outcome`: created:<id> or cancelled).
    False when it already was: a repeated tap, a forwarded card, two taps racing on two workers
    (the unique outbox key lets exactly one win; the row is a finished marker, never sent)."""
    now = now or utcnow()
    return insert_ignore(session, Outbox, dict(
        key=_marker_key(source_key), kind="marker", platform="", recipient="", conversation="",
        payload=json.dumps({"outcome": outcome}), status="sent", due_at=now, sent_at=now, attempts=0,
        lease_token="", last_error="", result="{}", created_at=now), ["key"])


def set_outcome(session: Session, source_key: str, outcome: str) -> None:
    row = session.execute(select(Outbox).where(Outbox.key == _marker_key(source_key))).scalar_one()
    row.payload = json.dumps({"outcome": outcome})
    session.add(row)


def outcome_of(session: Session, source_key: str) -> str | None:
    """created:<id>, cancelled, or None if the message was not acted on yet."""
    payload = session.execute(select(Outbox.payload).where(Outbox.key == _marker_key(source_key))).scalar()
    return json.loads(payload).get("outcome") if payload else None


def inbound_record_id(session: Session, platform: str, event_id: str) -> int:
    """The id of a message's inbound record: what a card's buttons carry to name that message."""
    key = fit_key(f"inbound:{platform}:{event_id}")
    return session.execute(select(Outbox.id).where(Outbox.key == key)).scalar() or 0


def original_message(session: Session, record_id: int, *, platform: str, sender: str) -> tuple[str, str] | None:
    """(source key, text) of the message behind inbound record `record_id`, if `sender` sent it on
    `platform` (a forwarded card tapped by someone else names nothing)."""
    row = session.get(Outbox, record_id)
    if row is None or row.kind != "inbound" or row.platform != platform or row.recipient != sender:
        return None
    event = json.loads(row.payload)
    return f"{row.platform}:{event.get('event_id', '')}", event.get("text", "")


def _marker_key(source_key: str) -> str:
    return fit_key(f"done:customer.create:{source_key}")
