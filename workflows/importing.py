"""Bulk import of the customer list a company already keeps in Excel (`banli import customers FILE`).

Two steps so a dry run and a real run say exactly the same thing: `plan` reads the file and checks
every row (bad rows with their Excel row number and a reason in Chinese; likely duplicates against
existing customers and within the file), writing nothing; `apply` creates the planned customers in
the caller's one transaction, so any database error leaves nothing half-imported.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import func, insert, select
from sqlmodel import Session

from storage.models import Contact, Customer, Employee, Identity, OwnershipChange, utcnow
from workflows import audit, customer_entry, customers
from workflows.customer_entry import InvalidCustomer, NewContact, NewCustomer
from workflows.matching import forms_json, split_short_names
from workflows.names import forms

# The matcher's stage-1 shortlist for a duplicate check. The bot's 300 is for offering a choice among
# loosely similar names; a duplicate (score >= 85) shares most of the rare characters and ranks near
# the top. Measured on bench/import.py's 10,000 realistic names: the same duplicates at 50, 100 and 300,
# and the preview takes about half the time of 300.
SHORTLIST = 100
POOL = "公海"  # --owner-default 公海: rows without an owner go to the public pool

# Header → field. Headers are compared without spaces, case, a trailing `*` (required-column marks)
# or a bracketed note such as 名称(必填).
COLUMNS = {
    "name": ("name", "名称", "客户名称", "公司名称", "客户全称", "公司全称", "全称", "客户"),
    "short_names": ("shortnames", "short_names", "shortname", "alias", "aliases", "简称", "客户简称", "别名"),
    "tier": ("tier", "等级", "级别", "客户等级", "客户级别"),
    "owner": ("owner", "负责人", "客户负责人", "销售", "归属人", "跟进人"),
    "industry": ("industry", "行业", "所属行业"),
    "region": ("region", "地区", "区域", "城市", "所在地区"),
    "contact": ("contact", "联系人", "联系人姓名"),
    "title": ("title", "职务", "职位", "联系人职务"),
    "phone": ("phone", "电话", "手机", "手机号", "联系电话", "联系人电话", "电话号码", "mobile"),
    "status": ("status", "状态", "客户状态"),
}
_HEADER_NOISE = re.compile(r"[\s*＊]+|[(（\[【].*?[)）\]】]")


class ImportFileError(Exception):
    """The file as a whole cannot be imported (missing, unreadable, no name column); Chinese message."""


@dataclass(frozen=True)
class BadRow:
    row: int  # as Excel shows it: the header is row 1
    reason: str


@dataclass(frozen=True)
class DuplicateRow:
    row: int
    name: str
    of: str  # what it duplicates, in Chinese: an existing customer (and owner) or an earlier row


@dataclass(frozen=True)
class PlannedRow:
    row: int
    customer: NewCustomer
    owner_id: int | None


@dataclass
class Plan:
    rows_read: int = 0
    to_create: list[PlannedRow] = field(default_factory=list)
    bad: list[BadRow] = field(default_factory=list)
    duplicates: list[DuplicateRow] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)


# -- reading ----------------------------------------------------------------------------------------


def read_rows(path: str | Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """(header, [(Excel row number, cells)]) from a CSV (UTF-8 with or without BOM, or GBK as
    Excel in China saves it) or an XLSX file. Blank rows are dropped."""
    path = Path(path)
    if not path.is_file():
        raise ImportFileError(f"找不到文件 {path}")
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        table = _xlsx(path)
    elif path.suffix.lower() in (".csv", ".txt", ""):
        table = list(csv.reader(io.StringIO(_decode(path.read_bytes()), newline="")))
    else:
        raise ImportFileError(f"只支持 .csv 和 .xlsx 文件（{path.name}）；.xls 请在 Excel 里另存为 .xlsx")
    numbered = [(n, [_cell(c) for c in cells]) for n, cells in enumerate(table, 1)]
    numbered = [(n, cells) for n, cells in numbered if any(cells)]
    if not numbered:
        raise ImportFileError("文件是空的")
    (_, header), rows = numbered[0], numbered[1:]
    return header, rows


def _decode(data: bytes) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030")  # a superset of GBK: what 另存为 CSV writes on Chinese Windows
    except UnicodeDecodeError:
        raise ImportFileError("文件编码认不出来：请存成 UTF-8 或 GBK 的 CSV，或者 .xlsx") from None


def _xlsx(path: Path) -> list[list]:
    from openpyxl import load_workbook

    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for a damaged or mislabelled file
        raise ImportFileError(f"打不开这个 Excel 文件：{exc}") from None
    try:
        return [list(row) for row in book.worksheets[0].iter_rows(values_only=True)]
    finally:
        book.close()


def _cell(value) -> str:
    """Text of a cell: 13800138000 stored as a number must not become 13800138000.0."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return unicodedata.normalize("NFKC", str(value)).strip()


def map_columns(header: list[str]) -> tuple[dict[str, int], list[str]]:
    """{field: column index} and the header names that mean nothing to Banli."""
    lookup = {_header_key(alias): name for name, aliases in COLUMNS.items() for alias in aliases}
    mapping: dict[str, int] = {}
    ignored: list[str] = []
    for index, title in enumerate(header):
        name = lookup.get(_header_key(title))
        if name and name not in mapping:
            mapping[name] = index
        elif title:
            ignored.append(title)
    if "name" not in mapping:
        raise ImportFileError("第1行要有表头，至少有「名称」（或 客户名称 / 公司名称 / name）这一列")
    return mapping, ignored


def _header_key(title: str) -> str:
    return _HEADER_NOISE.sub("", unicodedata.normalize("NFKC", title or "")).lower()


# -- checking ---------------------------------------------------------------------------------------


CLI_OWNER_HINT = "可以用 --owner-default 指定默认负责人，或 公海"


def plan(session: Session, path: str | Path, *, owner_default: str | None = None,
         allow_duplicates: bool = False, owner_hint: str = CLI_OWNER_HINT) -> Plan:
    """Read and check every row; writes nothing. Reads the database a fixed number of times,
    whatever the file's length: the customers, phones and employees up front, the duplicates'
    descriptions once at the end. `owner_hint`: what the person importing can do about a row
    without an owner, in the words of their tool (the CLI's option, the console's select)."""
    header, rows = read_rows(path)
    mapping, ignored = map_columns(header)
    owners = _employees_by_name(session)
    default_owner = _default_owner(owners, owner_default)
    result = Plan(rows_read=len(rows), ignored_columns=ignored)
    finder = _DuplicateFinder(session)
    found: list[tuple[int, str, tuple[str, int, str]]] = []
    for number, cells in rows:
        values = {name: (cells[i] if i < len(cells) else "") for name, i in mapping.items()}
        try:
            new = _customer(values)
            owner_id = _owner(values.get("owner", ""), owners, default_owner, owner_hint)
        except InvalidCustomer as problem:
            result.bad.append(BadRow(number, problem.message))
            continue
        duplicate = finder.check(number, new)
        if duplicate:
            found.append((number, new.name, duplicate))
            if not allow_duplicates:
                continue
        result.to_create.append(PlannedRow(number, new, owner_id))
    result.duplicates = _describe(session, found)
    return result


def data_version(session: Session) -> list:
    """A fingerprint of everything `plan` checks a file against (customers' names and forms, contact
    phones, employees and their accounts): equal fingerprints, equal plans for the same file."""
    tables = [(Customer, [func.sum(func.length(Customer.match_forms))]),
              (Contact, [func.sum(func.length(Contact.phone))]),
              (Employee, [func.sum(func.length(Employee.name)), func.sum(func.length(Employee.mobile)),
                          func.count(Employee.id).filter(Employee.active.is_(True))]),
              (Identity, [func.sum(func.length(Identity.user_id)), func.sum(Identity.employee_id)])]
    return [[int(v or 0) for v in session.execute(select(func.count(model.id), func.max(model.id), *more)).one()]
            for model, more in tables]


class _DuplicateFinder:
    """One matcher index over the existing customers and the file's rows so far (file rows under
    negative ids, -row number), so each row costs one match however many customers exist: the
    same matcher and thresholds the bot's 新客户 uses (腾迅科技 ~ 腾讯科技), and the same phone rule."""

    def __init__(self, session: Session) -> None:
        self.index = customers.index(session).copy()  # the shared index stays as the database has it
        self.phones = customer_entry.phone_book(session)
        self.file_phones: dict[str, int] = {}

    def check(self, number: int, new: NewCustomer) -> tuple[str, int, str] | None:
        """("customer", id, reason) or ("row", earlier row, reason), then remembers the row. An
        existing customer is named before an earlier row, a name before a phone."""
        matches = customer_entry.name_matches(self.index, new.name, new.short_names, candidates=SHORTLIST)
        existing = [(cid, reason) for cid, reason in matches if cid > 0]
        earlier = [(-cid, reason) for cid, reason in matches if cid < 0]
        phones = [min(self.phones[p]) for p in new.phones if p in self.phones]
        in_file = [self.file_phones[p] for p in new.phones if p in self.file_phones]
        ranked = ([("customer", cid, reason) for cid, reason in existing]
                  + [("customer", cid, "联系人电话相同") for cid in phones]
                  + [("row", row, reason) for row, reason in earlier] + [("row", row, "电话相同") for row in in_file])
        self.index.add(-number, new.name, forms(new.name, new.short_names))
        for phone in new.phones:
            self.file_phones.setdefault(phone, number)
        return ranked[0] if ranked else None


def _describe(session: Session, found: list[tuple[int, str, tuple[str, int, str]]]) -> list[DuplicateRow]:
    """DuplicateRows in Chinese; the existing customers named (with their owners) in one query."""
    ids = sorted({target for _, _, (kind, target, _) in found if kind == "customer"})
    known: dict[int, tuple[str, str]] = {}
    for chunk in (ids[i:i + 500] for i in range(0, len(ids), 500)):
        for cid, name, owner in session.execute(
                select(Customer.id, Customer.name, Employee.name).outerjoin(Employee, Employee.id == Customer.owner_id)
                .where(Customer.id.in_(chunk))):
            known[cid] = (name, owner or POOL)
    out = []
    for number, name, (kind, target, reason) in found:
        if kind == "customer":
            of = f"已有客户「{known[target][0]}」（负责人 {known[target][1]}）{reason}"
        else:
            of = f"和第{target}行{reason.replace('名称', '的名称')}"
        out.append(DuplicateRow(number, name, of))
    return out


def _customer(values: dict[str, str]) -> NewCustomer:
    contact = NewContact(name=values.get("contact", ""), title=values.get("title", ""), phone=values.get("phone", ""))
    has_contact = any((contact.name, contact.title, contact.phone))
    return customer_entry.validate(name=values["name"], short_names=values.get("short_names", ""),
                                   tier=values.get("tier") or None, industry=values.get("industry", ""),
                                   region=values.get("region", ""), status=values.get("status") or None,
                                   contacts=[contact] if has_contact else [])


@dataclass
class Owners:
    """Who an owner cell may name: an active employee's name, one of their platform user ids
    (`zhangsan`, or `wecom:zhangsan`), or their mobile — all known before anyone has messaged Banli
    once `banli directory sync` has run."""

    by_name: dict[str, list[Employee]] = field(default_factory=dict)
    by_user_id: dict[str, list[Employee]] = field(default_factory=dict)
    by_mobile: dict[str, list[Employee]] = field(default_factory=dict)

    def get(self, name: str, default=None):  # the by-name view older callers used
        return self.by_name.get(name, default if default is not None else [])


def _employees_by_name(session: Session) -> Owners:
    owners = Owners()
    people = {}
    for employee in session.execute(select(Employee).where(Employee.active.is_(True))).scalars():
        people[employee.id] = employee
        owners.by_name.setdefault(employee.name.strip(), []).append(employee)
        if employee.mobile:
            owners.by_mobile.setdefault(employee.mobile, []).append(employee)
    for platform, user_id, employee_id in session.execute(select(Identity.platform, Identity.user_id,
                                                                 Identity.employee_id)):
        if employee_id in people:
            for key in (user_id, f"{platform}:{user_id}"):
                found = owners.by_user_id.setdefault(key, [])
                if people[employee_id] not in found:
                    found.append(people[employee_id])
    return owners


def _default_owner(owners: Owners, name: str | None) -> Employee | None | str:
    """The employee for --owner-default; POOL for 公海; "" when not given."""
    if not name:
        return ""
    if name.strip() == POOL:
        return POOL
    try:
        return _find_owner(owners, name.strip())
    except InvalidCustomer:
        many = len(owners.by_name.get(name.strip(), [])) > 1
        raise ImportFileError(f"--owner-default「{name}」" + ("有重名的员工" if many else "不是在职员工的名字")) from None


def _owner(name: str, owners: Owners, default: Employee | str, hint: str) -> int | None:
    if not name:
        if default == "":
            raise InvalidCustomer("owner", f"负责人是空的（{hint}）")
        return None if default == POOL else default.id
    if name == POOL:
        return None
    return _find_owner(owners, name).id


def _find_owner(owners: Owners, words: str) -> Employee:
    """A platform user id first (exact), then a mobile, then a name; a name two people share is refused."""
    found = owners.by_user_id.get(words)
    if found and len(found) == 1:
        return found[0]
    digits = re.sub(r"[\s-]", "", words)
    if re.fullmatch(r"(\+?86)?1\d{10}", digits):
        people = owners.by_mobile.get(digits[-11:], [])
        if len(people) == 1:
            return people[0]
        if not people:
            raise InvalidCustomer("owner", f"负责人手机号「{words}」不是在职员工的手机号")
    people = owners.by_name.get(words, [])
    if len(people) == 1:
        return people[0]
    if len(people) > 1:
        raise InvalidCustomer("owner", f"有 {len(people)} 位{words}，请写手机号或账号")
    raise InvalidCustomer("owner", f"负责人「{words}」不是在职员工的名字、手机号或账号")


# -- writing ----------------------------------------------------------------------------------------


def apply(session: Session, planned: Plan, *, source: str, actor: Employee | None = None,
          platform: str = "cli") -> list[int]:
    """Create every planned customer in the caller's transaction, with the same rows a one-by-one
    create writes (contacts, the ownership history, a customer.create audit entry each) but in a few
    multi-row INSERTs; audited once more for the whole import (`source`: the file name; `actor`: the
    admin, None from the command line). Returns the new customers' ids, in file order."""
    now = utcnow()
    ids = _insert_customers(session, planned.to_create, now)
    contacts = [dict(customer_id=cid, name=c.name, title=c.title, phone=c.phone)
                for cid, row in zip(ids, planned.to_create) for c in row.customer.contacts]
    if contacts:
        session.execute(insert(Contact.__table__), contacts)
    if ids:
        session.execute(insert(OwnershipChange.__table__), [
            dict(customer_id=cid, from_owner_id=None, to_owner_id=row.owner_id, reason="import", at=now)
            for cid, row in zip(ids, planned.to_create)])
    audit.record_many(session, action="customer.create", actor=actor, platform=platform, at=now, entries=[
        (f"customer:{cid}", {"name": row.customer.name, "via": "import", "owner_id": row.owner_id,
                             "tier": row.customer.tier, "contacts": len(row.customer.contacts)})
        for cid, row in zip(ids, planned.to_create)])
    audit.record(session, actor=actor, action="customer.import", platform=platform, at=now,
                 detail={"file": source, "rows": planned.rows_read, "created": len(ids),
                         "duplicates": len(planned.duplicates), "bad": len(planned.bad)})
    session.flush()
    return ids


def _insert_customers(session: Session, planned: list[PlannedRow], now) -> list[int]:
    """One INSERT … RETURNING for all of them (SQLAlchemy batches it into multi-row statements),
    ids in the order given. Their matching forms are stored as a one-by-one create stores them."""
    if not planned:
        return []
    values = []
    for row in planned:
        new = row.customer
        short = ",".join(new.short_names)
        computed = forms(new.name, split_short_names(short), region=new.region or "")
        values.append(dict(name=new.name, short_names=short, tier=new.tier, industry=new.industry,
                           region=new.region, status=new.status, owner_id=row.owner_id, owned_since=now,
                           created_at=now, match_forms=forms_json(new.name, short, new.region, computed)))
    statement = insert(Customer.__table__).returning(Customer.__table__.c.id, sort_by_parameter_order=True)
    return list(session.execute(statement, values).scalars())


def report_lines(planned: Plan, *, limit: int = 50) -> list[str]:
    """What the dry run (and the real run, before writing) tells the person importing."""
    lines = [f"读取 {planned.rows_read} 行：可创建 {len(planned.to_create)} 个，"
             f"疑似重复 {len(planned.duplicates)} 行，有问题 {len(planned.bad)} 行"]
    if planned.ignored_columns:
        lines.append("忽略的列：" + "、".join(planned.ignored_columns))
    if planned.bad:
        lines.append("有问题的行：")
        lines += [f"  第{b.row}行：{b.reason}" for b in planned.bad[:limit]]
        lines += [f"  ……还有 {len(planned.bad) - limit} 行"] if len(planned.bad) > limit else []
    if planned.duplicates:
        lines.append("疑似重复的行：")
        lines += [f"  第{d.row}行「{d.name}」：{d.of}" for d in planned.duplicates[:limit]]
        lines += [f"  ……还有 {len(planned.duplicates) - limit} 行"] if len(planned.duplicates) > limit else []
    return lines
