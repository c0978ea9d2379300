"""新客户 from one message: `新客户 深圳市腾讯计算机系统有限公司 简称腾讯 A级 联系人 张三 13800138000`.

What was understood comes back on a card with 确认创建 / 取消; likely duplicates (a close name or
简称, the same phone) come back as a warning with 仍然创建 / 取消 instead. Someone who may not see
the existing customer's details sees only its name and owner. A tap carries the id of the original
message's inbound record (an integer: DingTalk's typed `#action value` reaches the router lower-cased,
a msgId would not survive that); the customer is created from that message exactly once however
often, and on however many workers, the button is tapped.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

from cards import Button, Card
from handlers.router import Context, Routes
from storage.models import CUSTOMER_STATUSES
from workflows import customer_entry as entry
from workflows import customers
from workflows.customer_entry import Duplicate, InvalidCustomer, NewContact, NewCustomer
from workflows.names import is_place

routes = Routes()

COMMANDS = ("新客户", "新建客户", "添加客户", "新增客户", "创建客户", "建客户")
EXAMPLE = "新客户 深圳市腾讯计算机系统有限公司 简称腾讯 A级 联系人 张三 13800138000"
SHOWN_DUPLICATES = 3
HELP = Button("帮助", "help", command="帮助")

# Field words people put before a value: `行业 互联网`, `行业:互联网`, `简称腾讯`.
KEYWORDS = {"简称": "short", "别名": "short", "行业": "industry", "地区": "region", "区域": "region",
            "城市": "region", "联系人": "contact", "手机号": "phone", "手机": "phone", "电话": "phone",
            "职务": "title", "职位": "title", "等级": "tier", "级别": "tier", "状态": "status"}
_KEYWORD_ORDER = sorted(KEYWORDS, key=len, reverse=True)
_GLUED = re.compile(r"(?<=\S)(简称|别名|联系人)")  # 有限公司简称腾讯: these never occur inside a name
_NAME_PHONE = re.compile(r"^(\D+?)[\s:：]*(\+?\d[\d\-]{6,})$")
_SPACED_PHONE = re.compile(r"(?:\+?86[\s-]?)?1[3-9]\d[\s-]?\d{4}[\s-]?\d{4}|\b0\d{2,3}[\s-]?\d{7,8}")
_TIER = re.compile(r"^[a-z](级|类)(客户)?$|^[abc]$", re.IGNORECASE)


class NotUnderstood(ValueError):
    pass


@dataclass
class Parsed:
    name_parts: list[str] = field(default_factory=list)
    short: list[str] = field(default_factory=list)
    tier: str = ""
    industry: str = ""
    region: str = ""
    status: str = ""
    contacts: list[dict] = field(default_factory=list)


# -- typed command ----------------------------------------------------------------------------------


@routes.command(*COMMANDS, prefix=True)
def new_customer(ctx: Context) -> Card:
    rest = _strip_command(ctx.event.text)
    if not rest:
        return _usage()
    try:
        new = parse(rest)
    except (NotUnderstood, InvalidCustomer) as problem:
        return _not_understood(getattr(problem, "message", str(problem)))
    inbound_id = _inbound_id(ctx)
    duplicates = entry.find_duplicates(ctx.session, new.name, new.short_names, new.phones)
    if duplicates:
        return _warning(ctx, new, duplicates, inbound_id)
    return _confirm(ctx, new, inbound_id)


@routes.action("customer.create")  # 确认创建: duplicates are checked again (one may have appeared since)
@routes.action("customer.force")  # 仍然创建: the person has seen the warning
def create(ctx: Context) -> Card:
    original = _original(ctx)
    if original is None:
        return Card(title="这个按钮已失效", body="请重新发送「新客户 公司全称」。", buttons=(HELP,))
    source, text = original
    done = _already(ctx, source)
    if done is not None:
        return done
    try:
        new = parse(_strip_command(text))
    except (NotUnderstood, InvalidCustomer) as problem:
        return _not_understood(getattr(problem, "message", str(problem)))
    if ctx.event.action == "customer.create":
        duplicates = entry.find_duplicates(ctx.session, new.name, new.short_names, new.phones)
        if duplicates:
            return _warning(ctx, new, duplicates, int(ctx.event.value))
    if not entry.claim(ctx.session, source, outcome="creating", now=ctx.now):
        return _already(ctx, source) or _created_before()
    customer = entry.create_validated(ctx.session, new, by=ctx.employee, owner=ctx.employee,
                                      platform=ctx.event.platform, reason="create", now=ctx.now)
    entry.set_outcome(ctx.session, source, f"created:{customer.id}")
    return Card(title=f"已创建 · {_short(new)}"[:36],
                body=f"负责人是你（{ctx.employee.name}），状态「{new.status}」。拜访后发「拜访 {_short(new)} …」就能记跟进。",
                fields=_fields(new),
                buttons=(Button("查看", "customer.show", str(customer.id), style="primary",
                                command=customers.words_naming(ctx.session, customer, "查看")), HELP))


@routes.action("customer.cancel")
def cancel(ctx: Context) -> Card:
    original = _original(ctx)
    if original is None:
        return Card(title="已取消", body="没有创建任何客户。", buttons=(HELP,))
    source, _ = original
    if not entry.claim(ctx.session, source, outcome="cancelled", now=ctx.now):
        return _already(ctx, source) or _created_before()
    return Card(title="已取消", body="没有创建客户。需要时再发「新客户 公司全称」。", buttons=(HELP,))


# -- understanding the message ----------------------------------------------------------------------


def parse(text: str) -> NewCustomer:
    """What a `新客户 …` message says (without the command word), validated."""
    parsed = Parsed()
    tokens = _tokens(text)
    i, after_short = 0, False
    while i < len(tokens):
        token = tokens[i]
        key, value = _keyword(token)
        if i == 0 and key not in ("short", "contact"):
            key = None  # the first word is the name, even one like 城市花园物业 that starts like a field word
        if key and not value and i + 1 < len(tokens) and not _keyword(tokens[i + 1])[0]:
            i += 1
            value = tokens[i]
        if key:
            _put(parsed, key, value, token)
            after_short = key == "short"
        elif after_short and not _bare(parsed, token, dry=True):
            parsed.short += _split_list(token)  # 简称腾讯,鹅厂: the list went on
        elif not _bare(parsed, token):
            raise NotUnderstood(f"没看懂「{token[:20]}」。")
        i += 1
    if not parsed.name_parts:
        raise NotUnderstood("先写客户的公司全称。")
    return entry.validate(name=_join(parsed.name_parts), short_names=parsed.short, tier=parsed.tier or None,
                          industry=parsed.industry, region=parsed.region, status=parsed.status or None,
                          contacts=[NewContact(**c) for c in parsed.contacts])


def _tokens(text: str) -> list[str]:
    text = _GLUED.sub(r" \1", unicodedata.normalize("NFKC", text))
    text = _SPACED_PHONE.sub(lambda m: re.sub(r"[\s-]", "", m[0]), text)  # +86 139 0013 8000: one word
    # Commas separate words like spaces do; after 简称 they also separate 简称 (see parse).
    return [t for t in re.split(r"[\s,;，；]+", text) if t]


def _keyword(token: str) -> tuple[str | None, str]:
    for word in _KEYWORD_ORDER:
        if token.startswith(word):
            return KEYWORDS[word], token[len(word):].lstrip(":：是为").strip()
    return None, ""


def _put(parsed: Parsed, key: str, value: str, token: str) -> None:
    if not value:
        raise NotUnderstood(f"「{token}」后面要写内容。")
    if key == "short":
        parsed.short += _split_list(value)
    elif key == "contact":
        glued = _NAME_PHONE.match(value)  # 联系人张三13800138000
        parsed.contacts.append({"name": glued[1], "phone": glued[2]} if glued else {"name": value})
    elif key in ("phone", "title"):
        _contact(parsed, key)[key] = value
    else:
        setattr(parsed, key, value)


def _bare(parsed: Parsed, token: str, dry: bool = False) -> bool:
    """A token without a field word: a tier, status, phone, place, contact title or part of the name.
    `dry`: only say whether it is one of the recognisable kinds, change nothing."""
    contact = parsed.contacts[-1] if parsed.contacts else None
    if _TIER.match(token):
        kind = "tier"
    elif token in CUSTOMER_STATUSES:
        kind = "status"
    elif entry.looks_like_phone(token):
        kind = "phone"
    elif is_place(token) and parsed.name_parts and not parsed.region:
        kind = "region"  # 新客户 华美教育 上海: a place after the name says where it is
    elif _nothing_else_yet(parsed):
        kind = "name"
    elif contact is not None and not contact.get("title") and not contact.get("phone") and len(token) <= 10:
        kind = "title"  # 联系人 张三 经理 138…
    elif is_place(token) and not parsed.region:
        kind = "region"
    else:
        return False
    if dry:
        return kind != "name"
    if kind == "name":
        parsed.name_parts.append(token)
    elif kind in ("phone", "title"):
        _contact(parsed, kind)[kind] = token
    else:
        setattr(parsed, kind, token)
    return True


def _nothing_else_yet(parsed: Parsed) -> bool:
    return not (parsed.short or parsed.tier or parsed.industry or parsed.region or parsed.status or parsed.contacts)


def _contact(parsed: Parsed, key: str) -> dict:
    """The contact a phone or title belongs to: the last one named, or a new one without a name."""
    if not parsed.contacts or parsed.contacts[-1].get(key):
        parsed.contacts.append({"name": ""})
    return parsed.contacts[-1]


def _split_list(value: str) -> list[str]:
    return [s for s in re.split(r"[,，、;；/]+", value) if s]


def _join(parts: list[str]) -> str:
    """Name parts typed with spaces: no space between Chinese characters, one between Latin words."""
    out = parts[0]
    for part in parts[1:]:
        out += (" " if out[-1].isascii() and part[0].isascii() else "") + part
    return out


def _strip_command(text: str) -> str:
    text = unicodedata.normalize("NFKC", text or "").strip()
    for word in sorted(COMMANDS, key=len, reverse=True):
        if text.startswith(word):
            return text[len(word):].lstrip(" :：,，").strip()
    return text


# -- the tap's original message ---------------------------------------------------------------------


def _inbound_id(ctx: Context) -> int:
    return entry.inbound_record_id(ctx.session, ctx.event.platform, ctx.event.event_id)


def _original(ctx: Context) -> tuple[str, str] | None:
    """(source key, text) of the message the tapped card answered, if it was this person's."""
    if not ctx.event.value.isdigit():
        return None
    return entry.original_message(ctx.session, int(ctx.event.value), platform=ctx.event.platform,
                                  sender=ctx.event.sender)


def _already(ctx: Context, source: str) -> Card | None:
    outcome = entry.outcome_of(ctx.session, source) or ""
    if outcome == "cancelled":
        return Card(title="已取消", body="这条已经取消了。要建客户，请重新发「新客户 公司全称」。", buttons=(HELP,))
    if outcome.startswith("created:"):
        customer = customers.get(ctx.session, int(outcome.split(":", 1)[1]))
        name = customer.name if customer else "这个客户"
        return Card(title="已创建", body=f"{name}已经建好了，不用再点。",
                    buttons=((Button("查看", "customer.show", str(customer.id),
                                     command=customers.words_naming(ctx.session, customer, "查看")),) if customer else ())
                    + (HELP,))
    return None


def _created_before() -> Card:
    return Card(title="已创建", body="这条已经处理过了，不用再点。", buttons=(HELP,))


# -- cards ------------------------------------------------------------------------------------------


def _confirm(ctx: Context, new: NewCustomer, inbound_id: int) -> Card:
    return Card(title="新建客户 · 请确认", body=f"负责人：你（{ctx.employee.name}）",
                fields=_fields(new),
                buttons=(Button("确认创建", "customer.create", str(inbound_id), style="primary"),
                         Button("取消", "customer.cancel", str(inbound_id))),
                footer="点「确认创建」才会建档")


def _warning(ctx: Context, new: NewCustomer, duplicates: list[Duplicate], inbound_id: int) -> Card:
    """Each likely duplicate as two fields: its name, and its owner — plus why it matched and a 查看
    button only for someone who may see that customer (owner, managers above, admins)."""
    shown = duplicates[:SHOWN_DUPLICATES]
    fields: list[tuple[str, str]] = []
    views: list[Button] = []
    for n, dup in enumerate(shown, 1):
        owner = customers.owner_name(ctx.session, dup.customer)
        if customers.may_see_details(ctx.session, ctx.employee, dup.customer):
            owner += f" · {dup.reason}"
            views.append(Button("查看" if len(shown) == 1 else f"查看{n}", "customer.show", str(dup.customer.id),
                                command=customers.words_naming(ctx.session, dup.customer, "查看")))
        tag = f"{n}." if len(shown) > 1 else ""
        fields += [(f"{tag}已有客户", dup.customer.name[:26]), (f"{tag}负责人", owner[:26])]
    more = len(duplicates) - len(shown)
    return Card(title="可能已有这个客户",
                body=f"「{new.name[:24]}」可能已经有了。不是同一家就点「仍然创建」，是同一家请找负责人。",
                fields=tuple(fields),
                buttons=(Button("仍然创建", "customer.force", str(inbound_id), style="danger"),
                         Button("取消", "customer.cancel", str(inbound_id)), *views),
                footer=f"还有 {more} 家相近的没列出" if more > 0 else "")


def _fields(new: NewCustomer) -> tuple[tuple[str, str], ...]:
    fields = [("名称", new.name[:26]), ("简称", "、".join(new.short_names)[:26] or "（无）"),
              ("等级", f"{new.tier}级 · {new.status}")]
    if new.industry or new.region:
        fields.append(("行业/地区", f"{new.industry or '—'} / {new.region or '—'}"[:26]))
    for contact in new.contacts[:2]:
        fields.append(("联系人", " ".join(p for p in (contact.name, contact.title, contact.phone) if p)[:26]))
    return tuple(fields[:6])


def _short(new: NewCustomer) -> str:
    return new.short_names[0] if new.short_names else new.name[:12]


def _usage() -> Card:
    return Card(title="新建客户", body=f"把客户的公司全称发给我，简称、等级、联系人可以一起说，比如：\n{EXAMPLE}",
                buttons=(HELP,))


def _not_understood(message: str) -> Card:
    return Card(title="客户没有创建", body=f"{message}\n照这样发就行：\n{EXAMPLE}", buttons=(HELP,))
