"""SQL tables. SQL is the truth; Redis only rings the doorbell (design §3).

Times are timezone-aware and stored as UTC (sqlmodel's UTCDateTime refuses naive ones);
business-time conversions (quiet hours, "today") happen in workflows.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Optional

from sqlalchemy import Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    """Aware UTC now: the one representation of time in the database."""
    return datetime.now(timezone.utc)


class Employee(SQLModel, table=True):
    """A person in the company; may have a WeCom and a DingTalk identity."""

    id: Optional[int] = Field(default=None, primary_key=True)
    name: str = Field(max_length=64)
    department: str = Field(default="", max_length=128)
    manager_id: Optional[int] = Field(default=None, foreign_key="employee.id")
    # None until the platform directory has been read for this person.
    synced_at: Optional[datetime] = None
    created_at: datetime = Field(default_factory=utcnow)


class Identity(SQLModel, table=True):
    """How one platform names an employee (WeCom UserID, DingTalk staffId)."""

    __table_args__ = (UniqueConstraint("platform", "user_id", name="uq_identity_platform_user"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    platform: str = Field(max_length=16)
    user_id: str = Field(max_length=128)
    employee_id: int = Field(foreign_key="employee.id", index=True)
    created_at: datetime = Field(default_factory=utcnow)


class InboundDelivery(SQLModel, table=True):
    """One row per callback we acted on; the unique key makes a redelivery a no-op."""

    __tablename__ = "inbound_delivery"
    __table_args__ = (UniqueConstraint("platform", "event_key", name="uq_inbound_platform_key"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    platform: str = Field(max_length=16)
    event_key: str = Field(max_length=255)
    sender: str = Field(default="", max_length=128)
    kind: str = Field(default="", max_length=16)
    received_at: datetime = Field(default_factory=utcnow, index=True)


class Outbox(SQLModel, table=True):
    """Deferred work with a unique key: messages, card updates, directory reads, cron slots.

    Written in the same transaction as its cause; the dispatcher leases due rows and rings RQ.
    """

    id: Optional[int] = Field(default=None, primary_key=True)
    key: str = Field(max_length=255, sa_column_kwargs={"unique": True})
    kind: str = Field(max_length=32)  # message | card_update | directory_sync | cron
    platform: str = Field(default="", max_length=16)
    recipient: str = Field(default="", max_length=128)  # platform user id
    conversation: str = Field(default="", max_length=255)  # group chat id, when not one-to-one
    payload: str = Field(default="{}", sa_column=Column(Text, nullable=False))  # JSON
    status: str = Field(default="pending", max_length=16, index=True)  # pending | sent | dead
    due_at: datetime = Field(default_factory=utcnow, index=True)
    attempts: int = 0
    lease_until: Optional[datetime] = None
    lease_token: str = Field(default="", max_length=64)
    last_error: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    result: str = Field(default="{}", sa_column=Column(Text, nullable=False, server_default="{}"))  # JSON
    created_at: datetime = Field(default_factory=utcnow)
    sent_at: Optional[datetime] = None
