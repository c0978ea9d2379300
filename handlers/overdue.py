"""更多 on a 超期未跟进 card: the next page of that card's customers, as they stand now.

The card itself is built by workflows/overdue.py when it goes out; this only pages it. The page is
always the tapper's own list (their customers, or their team's), so a forwarded card shows nothing
of anyone else's.
"""

from __future__ import annotations

from cards import Card
from handlers.menu import MENU_BUTTONS
from handlers.router import Context, Routes
from workflows import overdue

routes = Routes()


@routes.action(overdue.MORE_ACTION)
def next_page(ctx: Context) -> Card:
    start, _, rest = ctx.event.value.partition(":")
    level, _, due = rest.partition(":")
    if not start.isdigit() or level not in overdue.LEVELS or not due:
        return Card(title="超期未跟进", body="这个按钮已经失效了。发「我的客户」看看名下的客户。", buttons=MENU_BUTTONS)
    card = overdue.card_page(ctx.session, level=level, person=ctx.employee.id, due=due, start=int(start),
                             now=ctx.now, tz=ctx.timezone)
    return card or Card(title="超期未跟进", body="这张提醒上没有还要跟进的客户了：都已跟进，或已不在你名下。",
                        buttons=MENU_BUTTONS)
