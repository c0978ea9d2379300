"""SQL tables. SQL is the truth; Redis only rings the doorbell (docs/architecture.md §3).

Times are timezone-aware and stored as UTC (sqlmodel's UTCDateTime refuses naive ones);
business-time conversions (quiet hours, "today") happen in workflows.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Optional

from sqlalchemy import Column, Index, Numeric, Text, UniqueConstraint, func, text
from sqlmodel import Field, SQLModel
from sqlmodel.sql.sqltypes import UTCDateTime


def utcnow() -> datetime:
    """Aware UTC now: the one representation of time in the database."""
    return datetime.now(timezone.utc)


class Employee(SQLModel, table=True):
    """A person in the company; may have a WeCom and a DingTalk identity."""

    id: Optional[int] = Field(default=None, primary_key=True)
    name: str = Field(max_length=64)
    department: str = Field(default="", max_length=128)
    manager_id: Optional[int] = Field(default=None, foreign_key="employee.id")
    active: bool = True  # False once the person has left (an admin's 离职, or gone from the directory)
    # None until the platform directory has been read for this person.
    synced_at: Optional[datetime] = None
    created_at: datetime = Field(default_factory=utcnow)
    # What the directory says (workflows/directory.py); the same person on both platforms is linked
    # by mobile, then email, then job number.
    mobile: str = Field(default="", max_length=32, index=True, sa_column_kwargs={"server_default": ""})
    email: str = Field(default="", max_length=128, index=True, sa_column_kwargs={"server_default": ""})
    job_number: str = Field(default="", max_length=64, index=True, sa_column_kwargs={"server_default": ""})
    department_id: Optional[int] = Field(default=None, foreign_key="department.id", index=True)
    # When the directory said they were gone; their open work waits for an admin's hand-over
    # (`handed_over_at`, the 离职 flow in workflows/leavers.py).
    left_at: Optional[datetime] = None
    handed_over_at: Optional[datetime] = None
    # `banli employees link` merged this row into another: kept for history, never active again.
    merged_into_id: Optional[int] = Field(default=None, foreign_key="employee.id")


class Department(SQLModel, table=True):
    """A department as a platform directory has it (WeCom department id, DingTalk dept_id)."""

    __table_args__ = (UniqueConstraint("platform", "dept_id", name="uq_department_platform_dept"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    platform: str = Field(max_length=16)
    dept_id: str = Field(max_length=64)
    name: str = Field(default="", max_length=128)
    parent_dept_id: str = Field(default="", max_length=64)  # "" for the root
    active: bool = True  # False once the directory no longer has it
    synced_at: datetime = Field(default_factory=utcnow)


class EmployeeRole(SQLModel, table=True):
    """One role one person holds (a sales manager may also be an admin); read and written only
    through workflows/roles.py. `source` says who granted it, so a directory sync replaces only
    what the directory granted: admin (in chat or `banli admins`) | env (BANLI_ADMINS) | sync."""

    __tablename__ = "employee_role"
    __table_args__ = (UniqueConstraint("employee_id", "role", name="uq_employee_role"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    employee_id: int = Field(foreign_key="employee.id", index=True)
    role: str = Field(max_length=16, index=True)  # an id from workflows/roles.py ROLES: finance, admin …
    source: str = Field(default="admin", max_length=8)
    granted_by: Optional[int] = Field(default=None, foreign_key="employee.id")  # None: Banli itself (env, sync)
    granted_at: datetime = Field(default_factory=utcnow)


class Identity(SQLModel, table=True):
    """How one platform names an employee (WeCom UserID, DingTalk staffId)."""

    __table_args__ = (UniqueConstraint("platform", "user_id", name="uq_identity_platform_user"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    platform: str = Field(max_length=16)
    user_id: str = Field(max_length=128)
    employee_id: int = Field(foreign_key="employee.id", index=True)
    created_at: datetime = Field(default_factory=utcnow)
    # A digest of the directory entry last applied: a re-sync that finds the same digest writes nothing.
    digest: str = Field(default="", max_length=32, sa_column_kwargs={"server_default": ""})
    # When this platform's directory stopped listing the user (None: listed, or never synced).
    left_at: Optional[datetime] = None


class OverdueMark(SQLModel, table=True):
    """"Told about this period": a customer found overdue (workflows/overdue.py), keyed
    `overdue:<owner|manager>:<customer>:<since>`; `card` names the card that listed it ("" until
    one does). Its own narrow table, not outbox rows: the first scan over a big company writes one
    per overdue customer (~400,000 at 1,000,000 customers), and each outbox row would also pay for
    the outbox's five indexes and wide columns though it is never sent."""

    __tablename__ = "overdue_mark"

    key: str = Field(primary_key=True, max_length=96)
    level: str = Field(max_length=8)  # owner | manager
    person: Optional[int] = None  # who was told; None on rows carried over from the outbox
    card: str = Field(default="", max_length=96)
    marked_at: datetime = Field(default_factory=utcnow)


class Outbox(SQLModel, table=True):
    """Deferred work with a unique key, written in the same transaction as its cause; the dispatcher
    leases due rows and rings RQ. Kinds:

    - inbound: a platform delivery to act on; its key (`inbound:<platform>:<delivery key>`) is the
      record that makes a redelivered callback a no-op;
    - message, card_update: something to send; photo: a stored photo to one person as an image
      (`photo:<file>:<platform>:<user>:<day>`, so asking twice in a day sends it once);
      directory_sync: read a user off the directory;
    - directory_department: read a department off the directory (a DingTalk org_dept_* event);
    - directory_tags: read tags / role groups again for the roles they map to (a tag change event);
    - cron: one slot of a periodic job (`cron:<name>:<slot>`);
    - marker, reading: finished records, never sent — a chat message acted on once
      (workflows/customer_entry.py), a language model's validated reading of a message kept for
      the 对 on its card (`reading:<platform>:<event id>`, workflows/model_reading.py).
    """

    # Pending rows by key, for cancelling by key prefix (storage.outbox.cancel_many); on PostgreSQL
    # the migration builds it under COLLATE "C", which the byte-order range needs.
    __table_args__ = (Index("ix_outbox_pending_key", "key", postgresql_where=text("status = 'pending'"),
                            sqlite_where=text("status = 'pending'")),)

    id: Optional[int] = Field(default=None, primary_key=True)
    key: str = Field(max_length=255, sa_column_kwargs={"unique": True})
    kind: str = Field(max_length=32)
    platform: str = Field(default="", max_length=16)
    recipient: str = Field(default="", max_length=128)  # platform user id (inbound: the sender)
    conversation: str = Field(default="", max_length=255)  # group chat id, when not one-to-one
    payload: str = Field(default="{}", sa_column=Column(Text, nullable=False))  # JSON
    status: str = Field(default="pending", max_length=16, index=True)  # pending | sent | dead
    due_at: datetime = Field(default_factory=utcnow, index=True)
    attempts: int = 0
    lease_until: Optional[datetime] = None
    lease_token: str = Field(default="", max_length=64)
    last_error: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    result: str = Field(default="{}", sa_column=Column(Text, nullable=False, server_default="{}"))  # JSON
    # The platform's id of the card this row sent (WeCom task_id, DingTalk outTrackId): a tap on that
    # card names it, and brings WeCom's fresh single-use code for updating it.
    card_ref: str = Field(default="", max_length=128, index=True, sa_column_kwargs={"server_default": ""})
    created_at: datetime = Field(default_factory=utcnow)
    sent_at: Optional[datetime] = None


# -- CRM ----------------------------------------------------------------------------------------

TIERS = ("A", "B", "C")
CUSTOMER_STATUSES = ("潜在", "意向", "成交", "流失")
DEAL_STAGES = ("初步接触", "需求分析", "方案报价", "商务谈判", "赢单", "输单")
FOLLOWUP_METHODS = ("拜访", "电话", "微信")


class Customer(SQLModel, table=True):
    # The 08:00 digest reads each owner's due follow-ups.
    __table_args__ = (Index("ix_customer_owner_next", "owner_id", "next_followup_at"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    name: str = Field(max_length=128, index=True)  # legal name, e.g. 深圳市腾讯计算机系统有限公司
    short_names: str = Field(default="", max_length=255)  # 简称, comma-separated: 腾讯,鹅厂
    industry: str = Field(default="", max_length=32)
    region: str = Field(default="", max_length=32)
    tier: str = Field(default="C", max_length=1)
    status: str = Field(default="潜在", max_length=8)
    owner_id: Optional[int] = Field(default=None, foreign_key="employee.id", index=True)  # None: 公海
    # When the current owner got it (created, assigned, claimed; or when it went to the pool): the
    # 公海 clock counts from the later of this and the last follow-up.
    owned_since: Optional[datetime] = None
    last_followup_at: Optional[datetime] = None
    next_followup_at: Optional[datetime] = Field(default=None, index=True)
    created_at: datetime = Field(default_factory=utcnow)
    # How the name may be typed (core/short/brand/简称 + pinyin), JSON written by
    # workflows.matching.refresh_forms on create/rename; "" = not computed yet (recomputed on load).
    match_forms: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))


class CustomerNameChange(SQLModel, table=True):
    """A customer was added, renamed (name, 简称, region or stored forms) or removed: one row per change,
    written by a database trigger (migration 0015_customer_name_changes), so every writer — the ORM, a bulk import, a merge,
    SQL typed by hand — is seen. Each process's in-memory name matcher reads the rows after the last
    one it applied instead of fingerprinting the whole customer table on every lookup
    (workflows/customer_index.py). The nightly purge forgets rows older than a week."""

    __tablename__ = "customer_name_change"
    # AUTOINCREMENT: SQLite would otherwise hand out a purged top seq again, and a process that had
    # applied it would skip the new change.
    __table_args__ = {"sqlite_autoincrement": True}

    seq: Optional[int] = Field(default=None, primary_key=True)
    customer_id: int  # no foreign key: a removed customer's row outlives it
    changed_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False, server_default=func.now(),
                                                  index=True))


class Contact(SQLModel, table=True):
    id: Optional[int] = Field(default=None, primary_key=True)
    customer_id: int = Field(foreign_key="customer.id", index=True)
    name: str = Field(max_length=32)
    title: str = Field(default="", max_length=32)
    phone: str = Field(default="", max_length=32)


class Deal(SQLModel, table=True):
    id: Optional[int] = Field(default=None, primary_key=True)
    customer_id: int = Field(foreign_key="customer.id", index=True)
    owner_id: int = Field(foreign_key="employee.id", index=True)
    title: str = Field(max_length=128)
    amount: Decimal = Field(default=Decimal("0"), sa_column=Column(Numeric(14, 2), nullable=False))
    stage: str = Field(default="初步接触", max_length=16)
    expected_close: Optional[date] = None
    created_at: datetime = Field(default_factory=utcnow)


class FollowUp(SQLModel, table=True):
    __tablename__ = "follow_up"
    __table_args__ = (UniqueConstraint("source_key", name="uq_follow_up_source_key"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    customer_id: int = Field(foreign_key="customer.id", index=True)
    employee_id: int = Field(foreign_key="employee.id", index=True)
    method: str = Field(default="拜访", max_length=8)
    content: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    happened_at: datetime = Field(default_factory=utcnow)
    next_at: Optional[datetime] = None
    # The chat message it was logged from (platform:delivery key): a repeated tap logs nothing twice.
    source_key: Optional[str] = Field(default=None, max_length=255)
    # 签到: a location and photos sent within a few minutes of the visit attach to it.
    place: str = Field(default="", max_length=128, sa_column_kwargs={"server_default": ""})
    latitude: Optional[float] = None
    longitude: Optional[float] = None
    checked_in_at: Optional[datetime] = None
    photos: str = Field(default="[]", sa_column=Column(Text, nullable=False, server_default="[]"))  # JSON media ids


class DealStageChange(SQLModel, table=True):
    """Every move of a deal between stages, kept for good (the deal row holds only the current one)."""

    __tablename__ = "deal_stage_change"

    id: Optional[int] = Field(default=None, primary_key=True)
    deal_id: int = Field(foreign_key="deal.id", index=True)
    from_stage: str = Field(default="", max_length=16)  # "" when the deal was created
    to_stage: str = Field(max_length=16)
    employee_id: Optional[int] = Field(default=None, foreign_key="employee.id")  # None: automatic
    at: datetime = Field(default_factory=utcnow)


class OwnershipChange(SQLModel, table=True):
    """Who held a customer when: the 公海 claim rate, the former-owner wait and hand-overs read it."""

    __tablename__ = "ownership_change"

    id: Optional[int] = Field(default=None, primary_key=True)
    customer_id: int = Field(foreign_key="customer.id", index=True)
    from_owner_id: Optional[int] = Field(default=None, foreign_key="employee.id", index=True)
    to_owner_id: Optional[int] = Field(default=None, foreign_key="employee.id", index=True)
    reason: str = Field(max_length=16)  # create | import | claim | pool | assign | handover
    at: datetime = Field(default_factory=utcnow, index=True)


# -- Admin rules, audit, conversations ----------------------------------------------------------


class Rule(SQLModel, table=True):
    """One admin rule (a JSON value under a dotted name, e.g. `crm.overdue_days`); absent = default.
    `version` goes up on every edit, so anything that pins a rule can say which one it used."""

    id: Optional[int] = Field(default=None, primary_key=True)
    name: str = Field(max_length=64, sa_column_kwargs={"unique": True})
    value: str = Field(sa_column=Column(Text, nullable=False))  # JSON
    version: int = 1
    updated_by: Optional[int] = Field(default=None, foreign_key="employee.id")
    updated_at: datetime = Field(default_factory=utcnow)


class AuditLog(SQLModel, table=True):
    """Who did what, when, from where: every change and every view of a phone number."""

    __tablename__ = "audit_log"

    id: Optional[int] = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, index=True)
    actor_id: Optional[int] = Field(default=None, foreign_key="employee.id", index=True)  # None: Banli itself
    on_behalf_of_id: Optional[int] = Field(default=None, foreign_key="employee.id")
    platform: str = Field(default="", max_length=16)  # wecom | dingtalk | cli | system
    action: str = Field(max_length=48)  # e.g. customer.create, customer.view_phone, deal.stage
    subject: str = Field(default="", max_length=64, index=True)  # e.g. customer:12, deal:3
    detail: str = Field(default="{}", sa_column=Column(Text, nullable=False, server_default="{}"))  # JSON


class Conversation(SQLModel, table=True):
    """A guided form in progress: one per person, asking one question at a time until done,
    cancelled (取消) or expired — a form never traps anyone."""

    id: Optional[int] = Field(default=None, primary_key=True)
    employee_id: int = Field(foreign_key="employee.id", sa_column_kwargs={"unique": True})
    flow: str = Field(max_length=32)  # which form, e.g. crm.visit
    step: str = Field(default="", max_length=32)  # the question now open
    data: str = Field(default="{}", sa_column=Column(Text, nullable=False))  # JSON answers so far
    expires_at: datetime
    updated_at: datetime = Field(default_factory=utcnow)


# -- OA approvals -------------------------------------------------------------------------------

REQUEST_TYPES = ("报销", "请假", "出差", "采购", "合同", "通用")
REQUEST_STATUSES = ("draft", "pending", "approved", "rejected", "withdrawn")


class ApprovalRule(SQLModel, table=True):
    """Routing as data: the first active rule (by priority) whose type and condition match a request
    decides its chain. Editing bumps `version`; requests keep the chain they were given."""

    __tablename__ = "approval_rule"

    id: Optional[int] = Field(default=None, primary_key=True)
    request_type: str = Field(max_length=8, index=True)  # one of REQUEST_TYPES, or "*" for any
    priority: int = 100  # lower first
    condition: str = Field(default="", max_length=255)  # workflows.approvals.conditions; "" = always
    steps: str = Field(sa_column=Column(Text, nullable=False))  # JSON [{"approvers": [...], "mode": ...}]
    cc: str = Field(default="[]", sa_column=Column(Text, nullable=False, server_default="[]"))  # JSON specs
    no_approver: str = Field(default="admin", max_length=32)  # auto_pass | admin | person:<id>
    version: int = 1
    active: bool = True
    updated_by: Optional[int] = Field(default=None, foreign_key="employee.id")
    updated_at: datetime = Field(default_factory=utcnow)


class ApprovalRuleVersion(SQLModel, table=True):
    """One saved state of a routing rule, kept for its history page and diff: every save of a rule
    (console form, chat, reorder, import) adds one. `data` is the whole rule as JSON (rule_admin.snapshot)."""

    __tablename__ = "approval_rule_version"
    __table_args__ = (UniqueConstraint("rule_id", "version", name="uq_approval_rule_version"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    rule_id: int = Field(foreign_key="approval_rule.id", index=True)
    version: int
    data: str = Field(sa_column=Column(Text, nullable=False))
    by_id: Optional[int] = Field(default=None, foreign_key="employee.id")
    at: datetime = Field(default_factory=utcnow)


class ApprovalRequest(SQLModel, table=True):
    """One request (报销, 请假, …). `chain` is the resolved approvers, pinned at submission."""

    __tablename__ = "approval_request"
    __table_args__ = (UniqueConstraint("source_key", name="uq_approval_request_source_key"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    type: str = Field(max_length=8)
    requester_id: int = Field(foreign_key="employee.id", index=True)
    summary: str = Field(default="", max_length=128)
    details: str = Field(default="{}", sa_column=Column(Text, nullable=False))  # JSON, per type
    amount: Optional[Decimal] = Field(default=None, sa_column=Column(Numeric(14, 2), nullable=True))
    status: str = Field(default="draft", max_length=16, index=True)
    rule_id: Optional[int] = Field(default=None, foreign_key="approval_rule.id")
    rule_version: int = 0
    chain: str = Field(default="[]", sa_column=Column(Text, nullable=False))  # JSON, pinned
    step: int = 0  # index into chain of the step now deciding
    version: int = 0  # bumped by every state change: concurrent decisions race on it
    # The chat message it came from (platform:delivery key): one message, one request.
    source_key: Optional[str] = Field(default=None, max_length=255)
    created_at: datetime = Field(default_factory=utcnow)
    submitted_at: Optional[datetime] = None
    decided_at: Optional[datetime] = None

    @property
    def number(self) -> str:
        """R-1024: what people say and type to refer to a request."""
        return f"R-{1000 + (self.id or 0)}"


class ApprovalTask(SQLModel, table=True):
    """One approver's part in one step."""

    __tablename__ = "approval_task"

    id: Optional[int] = Field(default=None, primary_key=True)
    request_id: int = Field(foreign_key="approval_request.id", index=True)
    step: int
    approver_id: int = Field(foreign_key="employee.id", index=True)
    on_behalf_of_id: Optional[int] = Field(default=None, foreign_key="employee.id")
    # pending | approved | rejected | skipped (the step was decided by another) | transferred | returned
    status: str = Field(default="pending", max_length=16)
    comment: str = Field(default="", max_length=255)
    decided_at: Optional[datetime] = None
    created_at: datetime = Field(default_factory=utcnow)


class ApprovalCard(SQLModel, table=True):
    """A card about a request in someone's chat (the requester's, an approver's, a CC's), by the
    outbox key it was sent under: every state change updates each of them."""

    __tablename__ = "approval_card"
    __table_args__ = (UniqueConstraint("outbox_key", name="uq_approval_card_outbox_key"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    request_id: int = Field(foreign_key="approval_request.id", index=True)
    employee_id: int = Field(foreign_key="employee.id")
    role: str = Field(max_length=16)  # requester | approver | cc
    task_id: Optional[int] = Field(default=None, foreign_key="approval_task.id")
    outbox_key: str = Field(max_length=255)


class PaymentPlan(SQLModel, table=True):
    """回款计划: one instalment a customer owes on a signed deal, and how much of it has come in."""

    __tablename__ = "payment_plan"

    id: Optional[int] = Field(default=None, primary_key=True)
    deal_id: int = Field(foreign_key="deal.id", index=True)
    customer_id: int = Field(foreign_key="customer.id", index=True)
    seq: int = 1  # 第N期
    amount: Decimal = Field(sa_column=Column(Numeric(14, 2), nullable=False))
    paid: Decimal = Field(default=Decimal("0"), sa_column=Column(Numeric(14, 2), nullable=False, server_default="0"))
    due_date: date
    status: str = Field(default="open", max_length=8)  # open | paid
    request_id: Optional[int] = Field(default=None, foreign_key="approval_request.id")  # the contract
    created_at: datetime = Field(default_factory=utcnow)


class Delegation(SQLModel, table=True):
    """While `employee` is away (first_day..last_day, business dates), their approval tasks go to
    `delegate`, recorded as on their behalf."""

    id: Optional[int] = Field(default=None, primary_key=True)
    employee_id: int = Field(foreign_key="employee.id", index=True)
    delegate_id: int = Field(foreign_key="employee.id")
    first_day: date
    last_day: date
    created_at: datetime = Field(default_factory=utcnow)


# -- files --------------------------------------------------------------------------------------


class StoredFile(SQLModel, table=True):
    """A photo someone sent (an invoice, a 签到 photo), kept in the file store under its SHA-256
    (storage/files.py). One row per time it was attached; the bytes are stored once."""

    __tablename__ = "stored_file"

    id: Optional[int] = Field(default=None, primary_key=True)
    sha256: str = Field(max_length=64, index=True)
    size: int
    mime: str = Field(max_length=32)  # image/jpeg | image/png
    platform: str = Field(max_length=16)  # where it came from: wecom | dingtalk
    source_media_id: str = Field(default="", max_length=255)  # WeCom MediaId / DingTalk downloadCode
    uploaded_by: int = Field(foreign_key="employee.id", index=True)
    # What it belongs to: "approval" (approval_request.id) or "followup" (follow_up.id, a 签到);
    # "" while a form holds it for a record not yet created.
    attached_type: str = Field(default="", max_length=16)
    attached_id: Optional[int] = Field(default=None, index=True)
    created_at: datetime = Field(default_factory=utcnow)


# -- the web console (后台) ----------------------------------------------------------------------


class ConsoleLogin(SQLModel, table=True):
    """A one-time 后台 link sent in chat (workflows/console.py). Only the token's hash is kept; the
    row is what makes the link single use in every process: redeeming it sets `used_at` once."""

    __tablename__ = "console_login"

    id: Optional[int] = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, sa_column_kwargs={"unique": True})
    employee_id: int = Field(foreign_key="employee.id", index=True)
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
    used_at: Optional[datetime] = None


class ConsoleSession(SQLModel, table=True):
    """A signed-in browser: the cookie carries the token, this row its hash, its form (CSRF) token
    and when it was last used (sessions end after a spell of idleness, or on 退出)."""

    __tablename__ = "console_session"

    id: Optional[int] = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, sa_column_kwargs={"unique": True})
    employee_id: int = Field(foreign_key="employee.id", index=True)
    csrf: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow)
    last_seen_at: datetime = Field(default_factory=utcnow)
    ended_at: Optional[datetime] = None


class ConsoleSecret(SQLModel, table=True):
    """The signing key generated when BANLI_SECRET_KEY is not set: one row (id 1), shared by every
    process through the database and kept across restarts."""

    __tablename__ = "console_secret"

    id: Optional[int] = Field(default=None, primary_key=True)
    value: str = Field(max_length=128)
    created_at: datetime = Field(default_factory=utcnow)


class ProcessBeat(SQLModel, table=True):
    """A long-running process (or one worker thread of `banli worker`) saying it is alive: written at
    start, its `last_seen` moved every ~15 s (banli/heartbeat.py), read by the queue page. A row not
    seen for a day is purged at night."""

    __tablename__ = "process_beat"

    id: Optional[int] = Field(default=None, primary_key=True)
    kind: str = Field(max_length=16)  # worker | dispatcher | web | stream
    name: str = Field(default="", max_length=64)  # the thread, e.g. banli-worker-2
    host: str = Field(default="", max_length=128)
    pid: int = 0
    started_at: datetime = Field(default_factory=utcnow)
    last_seen: datetime = Field(default_factory=utcnow, index=True)
    jobs: int = 0  # jobs run (a worker), rows handed to the queue (the dispatcher)


class ApiCallCount(SQLModel, table=True):
    """Outbound calls to one platform's API in one month of the company's time zone (bot/api_meter.py),
    against DingTalk's monthly quota; `warned_at` is set once, by whoever saw 80 % first."""

    __tablename__ = "api_call_count"
    __table_args__ = (UniqueConstraint("platform", "month", name="uq_api_call_count_platform_month"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    platform: str = Field(max_length=16)
    month: str = Field(max_length=7)  # 2026-12
    calls: int = 0
    updated_at: datetime = Field(default_factory=utcnow)
    warned_at: Optional[datetime] = None
