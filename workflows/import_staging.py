"""The console's customer import, kept server-side between 预览 and 确认导入: the uploaded file is
stored under a random token (only the admin who uploaded it may use it), the preview is the same
`importing.plan` the CLI runs, and the commit writes it in one transaction. The preview's plan is kept
beside the file with a fingerprint of the data it was checked against (customers, contacts,
employees); the commit reuses it when nothing changed since, else re-plans the stored file and checks
it still says what the preview said.

Staged files do not pile up: 确认导入 and 取消 delete theirs, and each upload deletes any left for
longer than STAGED_FOR (a preview abandoned in a closed tab).

The stored file is claimed (renamed) before the commit, so a second 确认导入 — a double click, a
reload — finds nothing and writes nothing; a failed commit puts the file back for another try.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from sqlmodel import Session

from storage.models import Employee
from workflows import importing
from workflows.customer_entry import NewContact, NewCustomer

KINDS = (".csv", ".xlsx")
MAX_BYTES = 10 * 1024 * 1024  # a 10,000-row customer list is about 1 MB as CSV
STAGED_FOR = 24 * 3600  # seconds an unconfirmed upload is kept


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
    expire(root)
    (folder / f"{token}{suffix}").write_bytes(data)
    (folder / f"{token}.json").write_text(json.dumps({"uploader": uploader_id, "filename": filename[:200]}))
    return token


def preview(session: Session, root: Path, token: str, *, uploader_id: int, owner_default: str = "",
            allow_duplicates: bool = False) -> Staged:
    """Plan the staged file; writes nothing."""
    path, meta = _find(root, token, uploader_id)
    options = {"owner_default": owner_default, "allow_duplicates": allow_duplicates}
    version = importing.data_version(session)
    planned = _plan(session, path, options)
    signed = digest(planned)
    _plan_path(root, token).write_text(json.dumps({"options": options, "version": version, "digest": signed,
                                                   "plan": dataclasses.asdict(planned)}, ensure_ascii=False))
    return Staged(token, meta["filename"], planned, signed)


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
    options = {"owner_default": owner_default, "allow_duplicates": allow_duplicates}
    planned = _saved_plan(session, root, token, options, expected) or _plan(session, claimed, options)
    if digest(planned) != expected:
        os.rename(claimed, path)
        raise StagingError("预览之后客户数据有变化，导入的内容会和预览不一样：请重新预览后再确认。")
    created = importing.apply(session, planned, source=meta["filename"], actor=actor, platform="web")
    return Staged(token, meta["filename"], planned, expected), created


def finish(root: Path, token: str) -> None:
    """After the commit: the staged file and its plan are gone for good (its note stays until it
    expires, so a second 确认导入 is told it was already imported)."""
    for path in _folder(root).glob(f"{token}-claimed.*"):
        path.unlink(missing_ok=True)
    _plan_path(root, token).unlink(missing_ok=True)


def cancel(root: Path, token: str, *, uploader_id: int) -> None:
    """取消: the uploader's staged file, its plan and its note are deleted; anything else is left alone."""
    try:
        _find(root, token, uploader_id)
    except StagingError:
        return
    for path in _folder(root).glob(f"{token}*"):
        path.unlink(missing_ok=True)


def expire(root: Path, *, older_than: float = STAGED_FOR) -> int:
    """Delete staged files, plans and notes last written more than `older_than` seconds ago; how many."""
    cutoff = time.time() - older_than
    gone = 0
    for path in _folder(root).iterdir():
        try:
            if path.is_file() and path.stat().st_mtime < cutoff:
                path.unlink()
                gone += 1
        except FileNotFoundError:  # another worker's upload swept it first
            pass
    return gone


def release(root: Path, token: str) -> None:
    """After a failed commit: the file may be confirmed again."""
    for path in _folder(root).glob(f"{token}-claimed.*"):
        os.rename(path, path.with_name(f"{token}{path.suffix}"))


def digest(planned: importing.Plan) -> str:
    """What a commit writes (rows, names, owners) and what it skips: equal digests, equal imports."""
    shown = [[r.row, r.customer.name, r.owner_id] for r in planned.to_create]
    shown.append([[b.row for b in planned.bad], [d.row for d in planned.duplicates]])
    return hashlib.sha256(json.dumps(shown, ensure_ascii=False).encode()).hexdigest()[:32]


def _plan(session: Session, path: Path, options: dict) -> importing.Plan:
    return importing.plan(session, path, owner_default=options["owner_default"] or None,
                          allow_duplicates=options["allow_duplicates"], owner_hint=WEB_OWNER_HINT)


# What a web user does about a row without an owner (the CLI's hint names its --owner-default option).
WEB_OWNER_HINT = "可以在表里填上负责人，或重新上传时把「负责人是空的行」选成「放进公海」"


def _saved_plan(session: Session, root: Path, token: str, options: dict, expected: str) -> importing.Plan | None:
    """The preview's plan, if it was made with these options and the data it was checked against
    is as it was then (so planning again would give the same answer); else None."""
    try:
        saved = json.loads(_plan_path(root, token).read_text())
    except (FileNotFoundError, ValueError):
        return None
    if saved.get("options") != options or saved.get("digest") != expected:
        return None
    if saved.get("version") != importing.data_version(session):
        return None
    return _plan_from(saved["plan"])


def _plan_from(data: dict) -> importing.Plan:
    def customer(c: dict) -> NewCustomer:
        return NewCustomer(**{**c, "contacts": [NewContact(**x) for x in c["contacts"]]})

    return importing.Plan(rows_read=data["rows_read"], ignored_columns=data["ignored_columns"],
                          to_create=[importing.PlannedRow(r["row"], customer(r["customer"]), r["owner_id"])
                                     for r in data["to_create"]],
                          bad=[importing.BadRow(**b) for b in data["bad"]],
                          duplicates=[importing.DuplicateRow(**d) for d in data["duplicates"]])


def _plan_path(root: Path, token: str) -> Path:
    return _folder(root) / f"{token}.plan"


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
