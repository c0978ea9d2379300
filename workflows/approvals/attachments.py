"""Invoice photos: a photo sent within a few minutes of an expense request attaches to it (the
draft being confirmed, or the request just submitted), once per photo — the same bytes twice are one
photo, whatever their media ids. The request's `details.photos` lists their SHA-256s; the bytes and
who sent them are in the file store (storage/files.py). `queue_photos` sends them to someone who
asks (查看发票) as image messages through the outbox."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlmodel import Session

from storage import files, outbox
from storage.db import fit_key
from storage.files import Upload
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


ATTACHED_TO = "approval"  # stored_file.attached_type for a request's photos


def attach_photo(session: Session, request: ApprovalRequest, upload: Upload, *, by: Employee, platform: str,
                 now: datetime) -> bool:
    """Keep the photo and add it; False if the same photo was already there (sent again)."""
    details = json.loads(request.details)
    photos = details.setdefault("photos", [])
    sha256 = upload.sha256
    if sha256 in photos:
        return False
    stored = files.record(session, upload, uploaded_by=by.id, attached_type=ATTACHED_TO, attached_id=request.id)
    photos.append(sha256)
    request.details = json.dumps(details, ensure_ascii=False)
    session.add(request)
    audit.record(session, actor=by, action="approval.attach", subject=f"approval:{request.id}", platform=platform,
                 detail={"photo": sha256, "file": stored.id if stored else None, "media_id": upload.media_id},
                 at=now)
    return True


def queue_photos(session: Session, request: ApprovalRequest, *, viewer: Employee, platform: str, user_id: str,
                 day: str) -> tuple[int, int]:
    """One outbox row per photo for this viewer, keyed by photo, person and business `day`: tapping
    查看发票 twice sends each photo once (again the next day, if asked). (photos, newly queued)."""
    rows = files.attached(session, ATTACHED_TO, request.id)
    queued = 0
    for row in rows:
        key = fit_key(f"photo:{row.id}:{platform}:{user_id}:{day}")
        queued += outbox.add(session, key=key, kind="photo", platform=platform, recipient=user_id,
                             payload={"file_id": row.id, "request_id": request.id, "viewer": viewer.id})
    return len(rows), queued


def photo_count(request: ApprovalRequest) -> int:
    return len(json.loads(request.details).get("photos", []))
