"""Card → DingTalk markdown (with dtmd tap-to-send links) or card-template data
(docs/dingtalk.md §4.1 markdown, §4.4 sampleMarkdown, §4.6 cardParamMap).

Without a card template DingTalk buttons only open URLs, so each button becomes a
`dtmd://dingtalkclient/sendMessage?content=…` link: tapping it makes the user send the button's
words (`Button.text`) to the bot, and the router treats those words like the tap. The chat shows them
as the person's message, so they are words a person could type (`同意 R-1004 第1步`); what each
button sends and what keeps a stale or forwarded tap harmless: docs/dingtalk.md §4.10.

**Card text is text.** A Card holds plain text (cards/__init__.py); much of it is what someone typed
(a reason, a comment, a customer's name). This renderer alone adds markup — the `### title`, the
`**key**：`, the dtmd button links — and escapes every piece of card text before it goes in, so a
reason cannot plant a working `[同意](dtmd://…)` button or a fake `### 【R-1019 · 已通过】` heading.

How it escapes, and why: DingTalk documents only the markdown subset it renders (headings, `>`
quotes, `**bold**` / `*italic*`, `[links](…)`, `![images](…)`, `-` / `1.` lists, line breaks,
`<font>`) and documents no escape mechanism at all — neither backslash escapes nor HTML entities are
said to work, and a renderer that ignored a backslash would show a live link. So nothing here relies
on the renderer understanding an escape: the characters that make markup are replaced by their
full-width look-alikes, which read the same to a person and mean nothing to a markdown parser:

    [ ] < # * ` ~ | \\  →  ［ ］ ＜ ＃ ＊ ｀ ～ ｜ ＼       (anywhere in a line)
    > - + = 1.          →  ＞ － ＋ ＝ 1．              (at the start of a line)
    _                   →  ＿                          (unless inside a word: crm.overdue_days stays)

`://` becomes `：//` (so neither a bare URL nor a `dtmd://` target can autolink), an `&` that would
start an HTML entity becomes `＆`, and leading spaces (a code block) are dropped. Left as typed,
because on their own they make nothing: `(` `)` (a link needs `](`, and `]` is gone), a `>` inside a
line (a tag or autolink needs `<`), `!` (an image needs `[`), `.` and digits — so Banli's own
「11月23日(周一)」 and 「金额 > 1000」 read as before. A person's line breaks never start a new
markdown block: inside a field value (and the title, footer, keys, labels) they collapse to a
space; inside the body each line is kept as a line, escaped as above.

The same applies to `card_params`: the card template shows body and fields as markdown too.
The dtmd link *targets* Banli builds (Button.text, URL-quoted) are not escaped, so they keep working.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any
from urllib.parse import quote

from cards import Button, Card, one_line

LINE_BREAK = "  \n"  # DingTalk markdown needs two spaces before a newline to break the line (§4.1)
MARKDOWN_LIMIT = 5000  # characters; msgParam is capped at 15000 bytes (§4.3), CJK is 3 bytes each
ELLIPSIS = "…"

_FULL_WIDTH = str.maketrans({
    "[": "［", "]": "］", "<": "＜", "#": "＃", "*": "＊", "`": "｀", "~": "～", "|": "｜", "\\": "＼",
})
_ENTITY = re.compile(r"&(?=#?[A-Za-z0-9]+;)")  # &lt; &#91; &#x5b; …
_UNDERSCORE = re.compile(r"(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")  # one that could open or close emphasis
_LINE_START = {">": "＞", "-": "－", "+": "＋", "=": "＝"}
_ORDERED = re.compile(r"^(\d{1,9})\.(?=\s|$)")  # "1. item" is a list; "3.5万" is not


def out_track_id(outbox_key: str) -> str:
    """A card instance id stable across retries of one outbox row and within DingTalk's 100 chars."""
    return "bl_" + hashlib.sha1(outbox_key.encode()).hexdigest()  # 43 characters


def escape(text: str) -> str:
    """One line of card text as inert markdown: line breaks become spaces, markup characters their
    full-width look-alikes (see the module doc). Safe anywhere in a line."""
    text = _ENTITY.sub("＆", one_line(text).translate(_FULL_WIDTH))
    return _UNDERSCORE.sub("＿", text).replace("://", "：//")


def escape_line(text: str) -> str:
    """Like `escape`, for text that starts a line: it cannot open a list, rule or code block either."""
    text = escape(text).lstrip(" \t")
    if text[:1] in _LINE_START:
        return _LINE_START[text[0]] + text[1:]
    return _ORDERED.sub(r"\1．", text, count=1)


def escape_block(text: str) -> list[str]:
    """Multi-line card text (a body): each line kept, each escaped as a line of its own."""
    return [escape_line(line) for line in text.splitlines()]


def dtmd_link(button: Button) -> str:
    return f"[{escape(button.label)}](dtmd://dingtalkclient/sendMessage?content={quote(button.text, safe='')})"


def markdown(card: Card) -> tuple[str, str]:
    """(title, text) for a markdown message; the title is what the chat list and notifications show.

    Longer than MARKDOWN_LIMIT, the body is cut (then the fields, if the body alone is not enough):
    the title line, the buttons and the footer always arrive whole."""
    head = [f"### {escape(card.title)}"]
    body = _body(card)
    fields = _field_lines(card)
    tail = [dtmd_link(b) for b in card.buttons] + _link(card) + ([escape_line(card.footer)] if card.footer else [])
    text = LINE_BREAK.join(head + body + fields + tail)
    if len(text) > MARKDOWN_LIMIT:
        text = _cut_to_fit(head, body, fields, tail)
    return one_line(card.title), text


def card_params(card: Card) -> dict[str, str]:
    """cardParamMap for the card template; every value a string, as the API requires (§4.6)."""
    buttons = [{"text": b.label, "action": b.action, "value": b.value} for b in card.buttons]
    return {
        "title": escape(card.title),
        "source": escape(card.source),
        "body": LINE_BREAK.join(_body(card) + _link(card)),
        "fields": LINE_BREAK.join(_field_lines(card)),
        "buttons": json.dumps(buttons, ensure_ascii=False),
        "footer": escape_line(card.footer),
    }


def _link(card: Card) -> list[str]:
    """Card.link as a markdown link: Banli built the address (never escaped, so it stays tappable);
    only its label is card text."""
    return [f"[{escape(card.link_label or '打开链接')}]({card.link})"] if card.link else []


def _body(card: Card) -> list[str]:
    return escape_block(card.body)


def _field_lines(card: Card) -> list[str]:
    return [f"**{escape(key)}**：{escape(value)}" for key, value in card.fields]


def _cut_to_fit(head: list[str], body: list[str], fields: list[str], tail: list[str]) -> str:
    """Cut the body (then the fields) so the whole text fits; escaped text has no markup left to break,
    so a cut anywhere inside it is safe."""
    def joined(*parts: list[str]) -> str:
        return LINE_BREAK.join(line for part in parts for line in part)

    fixed = len(joined(head, fields, tail)) + len(LINE_BREAK) + len(ELLIPSIS)
    room = MARKDOWN_LIMIT - fixed
    if room > 0:
        return joined(head, [_cut(joined(body), room)], fields, tail)
    room = MARKDOWN_LIMIT - (len(joined(head, tail)) + len(LINE_BREAK) + len(ELLIPSIS))
    # The buttons and footer alone fill the limit: send them whole rather than cut a button.
    return joined(head, [_cut(joined(fields), room)] if room > 0 else [], tail)


def _cut(text: str, room: int) -> str:
    return text[:room].rstrip() + ELLIPSIS


def msg_param(card: Card) -> str:
    """sampleMarkdown's msgParam: a JSON *string*, not an object (§4.2)."""
    title, text = markdown(card)
    return json.dumps({"title": title, "text": text}, ensure_ascii=False)


def webhook_body(card: Card) -> dict[str, Any]:
    """The same markdown in webhook format, for a sessionWebhook (§4.1)."""
    title, text = markdown(card)
    return {"msgtype": "markdown", "markdown": {"title": title, "text": text}}
