"""Long lists on cards: one page of whole lines, the rest behind a 更多 button.

A WeCom card shows about PAGE_CHARS characters of its text and cuts the rest, mid-name; a card has
at most six buttons. So a page is at most PAGE_LINES lines (one button each, the sixth is 更多) and
never more text than fits. Used by every list a card shows page by page (我的客户, 超期未跟进).
"""

from __future__ import annotations

PAGE_CHARS = 100  # text on one paged card: under WeCom's ~112 characters of card text
PAGE_LINES = 5  # one button per line, and the card's sixth button is 更多


def page(lines: list[str]) -> list[str]:
    """As many whole lines from the start of `lines` as fit on one card (at least one)."""
    shown: list[str] = []
    for line in lines[:PAGE_LINES]:
        if shown and sum(len(x) + 1 for x in shown) + len(line) > PAGE_CHARS:
            break
        shown.append(line)
    return shown
