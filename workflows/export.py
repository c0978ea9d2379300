"""Export to CSV and XLSX: customers, follow-ups, deals, approval requests and the audit log.

Rows are read from the database a batch at a time (keyset pagination by id) and written to the
output as they come, so memory stays the same for a hundred rows or a million; the XLSX writer is
openpyxl's write-only mode, which streams rows to disk too.

Who gets what (`team`): None — everything (an admin, or `banli export` on the server). A set of
employee ids — a manager's team: the customers they own, those customers' follow-ups and deals,
the approval requests they made, and the audit rows they wrote. Phones are part of a customer's
details, which the owner's managers may see (`customers.may_see_details`): a manager's export of
their team's customers includes the contacts' full phone numbers, the same numbers they could ask
the bot for one customer at a time. Every export is written to the audit log: who, what, how many.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import BinaryIO, Callable, Iterator, Sequence
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from sqlalchemy import select
from sqlmodel import Session

from storage.models import ApprovalRequest, AuditLog, Contact, Customer, Deal, Employee, FollowUp
from workflows import audit, audit_view
from workflows.approvals.cards import STATUS_TEXT

BATCH = 500
FORMATS = ("csv", "xlsx")
Cell = str | int | float | Decimal | None


@dataclass(frozen=True)
class Kind:
    name: str  # what people read: 客户
    header: tuple[str, ...]
    rows: Callable[[Session, frozenset[int] | None, str], Iterator[list[Cell]]]


def _batches(session: Session, query, model) -> Iterator[list]:
    """`query`'s rows, BATCH at a time, by ascending id: never the whole table in memory."""
    last = 0
    while True:
        batch = session.execute(query.where(model.id > last).order_by(model.id).limit(BATCH)).all()
        if not batch:
            return
        yield batch
        last = batch[-1][0].id
        session.expunge_all()  # what was written is not kept


def _names(session: Session) -> dict[int, str]:
    """Employee names by id: one small table, read once per export."""
    return dict(session.execute(select(Employee.id, Employee.name)).all())


def _when(moment: datetime | None, tz: str) -> str:
    return moment.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M") if moment else ""


def _team_customers(team: frozenset[int] | None):
    query = select(Customer)
    return query if team is None else query.where(Customer.owner_id.in_(team))


def _customers(session: Session, team: frozenset[int] | None, tz: str) -> Iterator[list[Cell]]:
    names = _names(session)
    for batch in _batches(session, _team_customers(team), Customer):
        ids = [c.id for (c,) in batch]
        contacts: dict[int, list[Contact]] = {}
        for contact in session.execute(select(Contact).where(Contact.customer_id.in_(ids))
                                       .order_by(Contact.id)).scalars():
            contacts.setdefault(contact.customer_id, []).append(contact)
        for (c,) in batch:
            people = contacts.get(c.id, [])
            yield [c.id, c.name, c.short_names, c.tier, c.status, c.industry, c.region,
                   names.get(c.owner_id, "公海") if c.owner_id else "公海",
                   "；".join(p.name + (f"（{p.title}）" if p.title else "") for p in people),
                   "；".join(p.phone for p in people if p.phone),
                   _when(c.last_followup_at, tz), _when(c.next_followup_at, tz), _when(c.created_at, tz)]


def _with_customer(session: Session, model: type, team: frozenset[int] | None):
    """Batches of (row, its customer's name) of a table hanging off customers, the team's only."""
    query = select(model, Customer.name).join(Customer, Customer.id == model.customer_id)
    if team is not None:
        query = query.where(Customer.owner_id.in_(team))
    return _batches(session, query, model)


def _followups(session: Session, team: frozenset[int] | None, tz: str) -> Iterator[list[Cell]]:
    names = _names(session)
    for batch in _with_customer(session, FollowUp, team):
        for f, customer in batch:
            yield [f.id, customer, names.get(f.employee_id, ""), f.method, f.content, _when(f.happened_at, tz),
                   _when(f.next_at, tz), f.place]


def _deals(session: Session, team: frozenset[int] | None, tz: str) -> Iterator[list[Cell]]:
    names = _names(session)
    for batch in _with_customer(session, Deal, team):
        for d, customer in batch:
            yield [d.id, customer, d.title, d.amount, d.stage, names.get(d.owner_id, ""),
                   d.expected_close.isoformat() if d.expected_close else "", _when(d.created_at, tz)]


def _requests(session: Session, team: frozenset[int] | None, tz: str) -> Iterator[list[Cell]]:
    names = _names(session)
    query = select(ApprovalRequest)
    if team is not None:
        query = query.where(ApprovalRequest.requester_id.in_(team))
    for batch in _batches(session, query, ApprovalRequest):
        for (r,) in batch:
            yield [r.number, r.type, names.get(r.requester_id, ""), r.summary, r.amount,
                   STATUS_TEXT.get(r.status, r.status), _when(r.submitted_at, tz), _when(r.decided_at, tz)]


def _audit(session: Session, team: frozenset[int] | None, tz: str) -> Iterator[list[Cell]]:
    for batch in _batches(session, audit_view._query(audit_view.AuditFilter(), team, tz), AuditLog):
        for found in batch:
            row = audit_view._row(found, tz)
            yield [row.at, row.actor, row.on_behalf_of, row.platform, row.action_name, row.subject, row.detail]


KINDS: dict[str, Kind] = {
    "customers": Kind("客户", ("编号", "客户名称", "简称", "等级", "状态", "行业", "地区", "负责人", "联系人", "电话",
                             "最近跟进", "下次跟进", "创建时间"), _customers),
    "followups": Kind("跟进记录", ("编号", "客户", "跟进人", "方式", "内容", "时间", "下次跟进", "地点"), _followups),
    "deals": Kind("商机", ("编号", "客户", "商机名称", "金额", "阶段", "负责人", "预计成交", "创建时间"), _deals),
    "requests": Kind("审批申请", ("编号", "类型", "申请人", "摘要", "金额", "状态", "提交时间", "完成时间"), _requests),
    "audit": Kind("审计日志", audit_view.CSV_HEADER, _audit),
}


def write(session: Session, kind: str, fmt: str, out: BinaryIO, *, team: frozenset[int] | None, tz: str) -> int:
    """Write one export to `out` (a binary file); returns how many rows (the header not counted)."""
    chosen = KINDS[kind]
    rows = chosen.rows(session, team, tz)
    if fmt == "csv":
        return _write_csv(chosen.header, rows, out)
    return _write_xlsx(chosen.name, chosen.header, rows, out)


def record(session: Session, *, actor: Employee | None, kind: str, fmt: str, rows: int,
           team: frozenset[int] | None, platform: str, at: datetime | None = None) -> None:
    """The audit row every export leaves: who exported what, how much, and whose records."""
    audit.record(session, actor=actor, action="export", subject=f"export:{kind}", platform=platform, at=at,
                 detail={"what": KINDS[kind].name, "format": fmt, "rows": rows,
                         "scope": "全部" if team is None else f"团队（{len(team)}人）"})


def _write_csv(header: tuple[str, ...], rows: Iterator[list[Cell]], out: BinaryIO) -> int:
    """UTF-8 with a BOM, so Excel reads the Chinese; written a batch of rows at a time."""
    text = io.TextIOWrapper(out, encoding="utf-8-sig", newline="", write_through=True)
    writer = csv.writer(text)
    writer.writerow(header)
    count = 0
    for row in rows:
        writer.writerow([csv_cell(v) for v in row])
        count += 1
    text.flush()
    text.detach()  # leave `out` open for the caller
    return count


def csv_cell(value: Cell) -> str:
    if value is None:
        return ""
    return audit_view._cell(value) if isinstance(value, str) else str(value)


def _write_xlsx(title: str, header: tuple[str, ...], rows: Iterator[list[Cell]], out: BinaryIO) -> int:
    return write_sheets([(title, header, rows)], out)


def write_sheets(sheets: list[tuple[str, Sequence[str], Iterator[Sequence[Cell]]]], out: BinaryIO) -> int:
    """An XLSX workbook of (title, header, rows) sheets, streamed; returns how many rows in all."""
    book = Workbook(write_only=True)
    count = 0
    for title, header, rows in sheets:
        sheet = book.create_sheet(title)
        sheet.append(list(header))
        for row in rows:
            sheet.append([_xlsx_cell(sheet, v) for v in row])
            count += 1
    book.save(out)
    return count


def _xlsx_cell(sheet, value: Cell):
    """Text stays text: a name starting with = is stored as a string, never as a formula; characters
    XLSX cannot hold (control characters) are dropped rather than failing the whole file."""
    if not isinstance(value, str):
        return value
    value = ILLEGAL_CHARACTERS_RE.sub("", value)
    if not value.startswith("="):  # only what openpyxl would take for a formula needs a typed cell
        return value
    cell = WriteOnlyCell(sheet, value=value)
    cell.data_type = "s"
    return cell
