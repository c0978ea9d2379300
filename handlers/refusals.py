"""The answer to an attempt that is not allowed — not yours, not an admin, not the approver — and its
audit row. One helper, so no refusal is shown without being written down: after an incident the
audit log is where an admin looks for who tried what."""

from __future__ import annotations

from cards import Button, Card
from handlers.router import Context
from workflows import audit

HELP_BUTTON = Button("帮助", "help", command="帮助")


def refuse(ctx: Context, *, attempted: str, why: str, subject: str, title: str, body: str,
            buttons: tuple[Button, ...] = (HELP_BUTTON,)) -> Card:
    """Audit the refusal (who, what, which record, why) and return what the person is told."""
    audit.refused(ctx.session, actor=ctx.employee, attempted=attempted, why=why, subject=subject[:128],
                  platform=ctx.event.platform, at=ctx.now)
    return Card(title=title, body=body, buttons=buttons)
