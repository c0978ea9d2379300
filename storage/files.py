"""Photos people send (invoices, 签到): checked, kept in a content-addressed file store, and recorded.

The worker downloads a photo before the handler runs (bot/pipeline.py), never the webhook; what it
got is an `Upload` — the bytes and their type, or the reason they cannot be kept. A handler that
attaches the photo calls `record`: the bytes go to the store under their SHA-256 (the same photo
sent twice is one file on disk) and a `stored_file` row says who sent it, from where, and what it
belongs to. Nothing is written for a photo nobody attaches, nor for one that is refused.

Accepted: JPEG and PNG, up to `Settings.files_max_bytes` (10 MB by default) — what phones send and
what both platforms take back as an image message (docs/wecom.md §5.2, docs/dingtalk.md §4.9). The
type is read from the bytes' magic numbers, never from a name or a Content-Type someone chose.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlmodel import Session

from storage.models import StoredFile, utcnow

MAX_BYTES = 10 * 1024 * 1024
# Magic numbers: the first bytes of each accepted type.
MAGIC = ((b"\xff\xd8\xff", "image/jpeg"), (b"\x89PNG\r\n\x1a\n", "image/png"))
EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png"}

TOO_LARGE, WRONG_TYPE, UNREADABLE = "too_large", "wrong_type", "unreadable"


def sniff(data: bytes) -> str:
    """The MIME type the bytes are, by their magic numbers; "" when not an accepted type."""
    return next((mime for magic, mime in MAGIC if data.startswith(magic)), "")


class FileStore:
    """A directory of files named by their SHA-256 (`ab/cd/abcd…`). Writes are atomic (a temporary
    file renamed into place), so a crash leaves no half file under a real name, and writing the same
    bytes twice is harmless."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def path(self, sha256: str) -> Path:
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise ValueError(f"not a SHA-256: {sha256!r}")
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def put(self, data: bytes) -> str:
        sha256 = hashlib.sha256(data).hexdigest()
        target = self.path(sha256)
        if target.exists():
            return sha256
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return sha256

    def read(self, sha256: str) -> bytes:
        return self.path(sha256).read_bytes()


@dataclass(frozen=True)
class Upload:
    """A photo as the worker got it: the bytes and type, or `problem` (TOO_LARGE, WRONG_TYPE,
    UNREADABLE) and then no bytes. `size` is what arrived (for TOO_LARGE: more than the limit)."""

    platform: str
    media_id: str
    store: FileStore
    data: bytes = b""
    mime: str = ""
    size: int = 0
    max_bytes: int = MAX_BYTES
    problem: str = ""

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def inspect(data: bytes, *, platform: str, media_id: str, store: FileStore, max_bytes: int = MAX_BYTES) -> Upload:
    """Check downloaded bytes (at most max_bytes + 1 of them: the client stops reading there)."""
    base = dict(platform=platform, media_id=media_id, store=store, size=len(data), max_bytes=max_bytes)
    if len(data) > max_bytes:
        return Upload(**base, problem=TOO_LARGE)
    mime = sniff(data)
    if not mime:
        return Upload(**base, problem=WRONG_TYPE)
    return Upload(**base, data=data, mime=mime)


def unreadable(*, platform: str, media_id: str, store: FileStore) -> Upload:
    """The platform will never give these bytes (an expired media id, an unknown download code)."""
    return Upload(platform=platform, media_id=media_id, store=store, problem=UNREADABLE)


def record(session: Session, upload: Upload, *, uploaded_by: int, attached_type: str = "",
           attached_id: int | None = None) -> StoredFile | None:
    """Keep an accepted upload and its row. None when the same bytes are already attached to the
    same thing (a photo sent twice); a photo held for something not yet created has no attachment
    until `attach`."""
    if upload.problem:
        raise ValueError(f"a refused upload is not kept ({upload.problem})")
    sha256 = upload.sha256
    if attached_type and attached_id is not None and sha256 in checksums(session, attached_type, attached_id):
        return None
    upload.store.put(upload.data)
    row = StoredFile(sha256=sha256, size=len(upload.data), mime=upload.mime, platform=upload.platform,
                     source_media_id=upload.media_id[:255], uploaded_by=uploaded_by,
                     attached_type=attached_type, attached_id=attached_id, created_at=utcnow())
    session.add(row)
    session.flush()
    return row


def attach(session: Session, checksums_: list[str], *, uploaded_by: int, attached_type: str, attached_id: int) -> int:
    """Attach this person's unattached files with these checksums (photos held by a form until its
    record existed). Returns how many rows it attached."""
    if not checksums_:
        return 0
    rows = session.execute(select(StoredFile).where(
        StoredFile.uploaded_by == uploaded_by, StoredFile.attached_type == "",
        StoredFile.sha256.in_(checksums_))).scalars().all()
    taken = set(checksums(session, attached_type, attached_id))
    count = 0
    for row in rows:
        if row.sha256 in taken:
            continue
        row.attached_type, row.attached_id = attached_type, attached_id
        taken.add(row.sha256)
        session.add(row)
        count += 1
    return count


def attached(session: Session, attached_type: str, attached_id: int) -> list[StoredFile]:
    """The files of one thing, oldest first, one per distinct content."""
    rows = session.execute(select(StoredFile).where(
        StoredFile.attached_type == attached_type, StoredFile.attached_id == attached_id)
        .order_by(StoredFile.id)).scalars().all()
    distinct: dict[str, StoredFile] = {}
    for row in rows:
        distinct.setdefault(row.sha256, row)
    return list(distinct.values())


def checksums(session: Session, attached_type: str, attached_id: int) -> list[str]:
    return [r.sha256 for r in attached(session, attached_type, attached_id)]


def filename(row: StoredFile) -> str:
    """What the platform's upload is called: the checksum's head and the type's extension."""
    return f"{row.sha256[:16]}.{EXTENSIONS.get(row.mime, 'bin')}"
