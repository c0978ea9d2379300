"""Invoice photos: a photo sent within a few minutes of an expense request attaches to it (the
draft being confirmed, or the request just submitted), once per photo."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlmodel import Session

from storage.models import ApprovalRequest, Employee
from workflows import audit

PHOTO_WINDOW = timedelta(minutes=10)
TAKES_PHOTOS = ("报销", "采购", "出差")


def recent_request(session: Session, employee: Employee, now: datetime) -> ApprovalRequest | None:
    """This person's latest request that takes photos, if it is still open and under ten minutes old."""
    request = session.execute(select(ApprovalRequest).where(ApprovalRequest.requester_id == employee.id)
                              .order_by(ApprovalRequest.id.desc()).with_for_update()).scalars().first()
    if (request is None or request.type not in TAKES_PHOTOS or request.status not in ("draft", "pending")
            or now - request.created_at > PHOTO_WINDOW):
        return None
    return request


def attach_photo(session: Session, request: ApprovalRequest, media_id: str, *, by: Employee, platform: str,
                 now: datetime) -> bool:
    """Add the photo; False if it was already there (a repeated delivery)."""
    details = json.loads(request.details)
    photos = details.setdefault("photos", [])
    if media_id in photos:
        return False
    photos.append(media_id)
    request.details = json.dumps(details, ensure_ascii=False)
    session.add(request)
    audit.record(session, actor=by, action="approval.attach", subject=f"approval:{request.id}", platform=platform,
                 detail={"photo": media_id}, at=now)
    return True


def photo_count(request: ApprovalRequest) -> int:
    return len(json.loads(request.details).get("photos", []))
