"""What a handler does with a photo the worker downloaded (ctx.upload, bot/pipeline.py): refuse one
that cannot be kept, with a reply that says why, or keep it in the file store (storage/files.py)."""

from __future__ import annotations

from cards import Card
from handlers.menu import MENU_BUTTONS
from handlers.router import Context
from storage import files

ACCEPTED = "JPG 或 PNG"


def problem_card(ctx: Context) -> Card | None:
    """The answer for a photo that will not be kept, or None when it can be. Nothing is stored."""
    upload = ctx.upload
    if upload is None or upload.problem == files.UNREADABLE:
        return Card(title="收到图片", body="没读到这张图片（可能已过期），请再发一次。", buttons=MENU_BUTTONS)
    if upload.problem == files.TOO_LARGE:
        return Card(title="照片太大了", body=f"这张超过 {_size(upload.max_bytes)}，没有保存。请压缩或截图后再发。",
                    buttons=MENU_BUTTONS)
    if upload.problem == files.WRONG_TYPE:
        return Card(title="只收照片", body=f"这个文件不是 {ACCEPTED} 图片，没有保存。请拍照或截图后再发。",
                    buttons=MENU_BUTTONS)
    return None


def _size(size: int) -> str:
    megabytes = size / (1024 * 1024)
    return f"{round(megabytes, 1):g} MB" if megabytes >= 1 else f"{size / 1024:.0f} KB"


def keep(ctx: Context) -> str:
    """Store the photo, attached to nothing yet (workflows attach it); returns its SHA-256."""
    files.record(ctx.session, ctx.upload, uploaded_by=ctx.employee.id)
    return ctx.upload.sha256
