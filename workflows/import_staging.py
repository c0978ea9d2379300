"""The console's customer import, kept server-side between 预览 and 确认导入: the uploaded file is
stored under a random token (only the admin who uploaded it may use it), the preview is the same
`importing.plan` the CLI runs, and the commit re-plans the stored file, checks it still says what the
preview said (the customer list may have changed in between), then writes it in one transaction.

The stored file is claimed (renamed) before the commit, so a second 确认导入 — a double click, a
reload — finds nothing and writes nothing; a failed commit puts the file back for another try.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from sqlmodel import Session

from storage.models import Employee
from workflows import importing

KINDS = (".csv", ".xlsx")
MAX_BYTES = 10 * 1024 * 1024  # a 10,000-row customer list is about 1 MB as CSV


class StagingError(Exception):
    """Nothing to commit (a used or unknown token, or a plan that changed); Chinese message."""


@dataclass(frozen=True)
class Staged:
    token: str
    filename: str
    plan: importing.Plan
    digest: str  # of what the commit would write: re-checked on 确认导入


def stage(root: Path, data: bytes, filename: str, *, uploader_id: int) -> str:
    """Keep an uploaded file for preview and commit; its token. A wrong type is refused here."""
    suffix = Path(filename or "").suffix.lower()
    if suffix not in KINDS:
        raise importing.ImportFileError(f"文件「{filename or '（没有名字）'}」不是 .csv 或 .xlsx；"
                                        ".xls 请在 Excel 里另存为 .xlsx")
    if not data:
        raise importing.ImportFileError("上传的文件是空的")
    token = secrets.token_hex(16)
    folder = _folder(root)
    (folder / f"{token}{suffix}").write_bytes(data)
    (folder / f"{token}.json").write_text(json.dumps({"uploader": uploader_id, "filename": filename[:200]}))
    return token


def preview(session: Session, root: Path, token: str, *, uploader_id: int, owner_default: str = "",
            allow_duplicates: bool = False) -> Staged:
    """Plan the staged file; writes nothing."""
    path, meta = _find(root, token, uploader_id)
    planned = importing.plan(session, path, owner_default=owner_default or None, allow_duplicates=allow_duplicates)
    return Staged(token, meta["filename"], planned, digest(planned))


def commit(session: Session, root: Path, token: str, *, expected: str, actor: Employee, owner_default: str = "",
           allow_duplicates: bool = False) -> tuple[Staged, list]:
    """Write exactly what the preview showed, in the caller's transaction, or raise StagingError.
    The caller must call `finish` after its commit, or `release` if it failed."""
    path, meta = _find(root, token, actor.id)
    claimed = path.with_name(f"{token}-claimed{path.suffix}")  # the suffix still says csv/xlsx
    try:
        os.rename(path, claimed)  # atomic: of two 确认导入 at once, one wins
    except FileNotFoundError:
        raise StagingError("这个预览已经导入过了（或已失效），没有再写入。") from None
    planned = importing.plan(session, claimed, owner_default=owner_default or None,
                             allow_duplicates=allow_duplicates)
    if digest(planned) != expected:
        os.rename(claimed, path)
        raise StagingError("预览之后客户数据有变化，导入的内容会和预览不一样：请重新预览后再确认。")
    created = importing.apply(session, planned, source=meta["filename"], actor=actor, platform="web")
    return Staged(token, meta["filename"], planned, expected), created


def finish(root: Path, token: str) -> None:
    """After the commit: the staged file is gone for good (its note stays, so a second 确认导入 is
    told it was already imported)."""
    for path in _folder(root).glob(f"{token}-claimed.*"):
        path.unlink(missing_ok=True)


def release(root: Path, token: str) -> None:
    """After a failed commit: the file may be confirmed again."""
    for path in _folder(root).glob(f"{token}-claimed.*"):
        os.rename(path, path.with_name(f"{token}{path.suffix}"))


def digest(planned: importing.Plan) -> str:
    """What a commit writes (rows, names, owners) and what it skips: equal digests, equal imports."""
    shown = [[r.row, r.customer.name, r.owner_id] for r in planned.to_create]
    shown.append([[b.row for b in planned.bad], [d.row for d in planned.duplicates]])
    return hashlib.sha256(json.dumps(shown, ensure_ascii=False).encode()).hexdigest()[:32]


def _folder(root: Path) -> Path:
    folder = Path(root) / "import-staging"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _find(root: Path, token: str, uploader_id: int) -> tuple[Path, dict]:
    if not token.isalnum() or len(token) != 32:
        raise StagingError("这个预览不存在或已失效，请重新上传文件。")
    folder = _folder(root)
    try:
        meta = json.loads((folder / f"{token}.json").read_text())
    except (FileNotFoundError, ValueError):
        raise StagingError("这个预览不存在或已失效，请重新上传文件。") from None
    if meta.get("uploader") != uploader_id:
        raise StagingError("这个预览是别人上传的，请自己上传文件。")
    for suffix in KINDS:
        if (folder / f"{token}{suffix}").exists():
            return folder / f"{token}{suffix}", meta
    raise StagingError("这个预览已经导入过了（或已失效），没有再写入。")
