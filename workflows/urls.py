"""Links in what a person typed are not slots: an amount or a date is read from the words a person
sees, never from a URL's escapes (`%8C` is not ¥8, `?id=20261203` is not a date).

`blank_urls` replaces every `scheme://…` run (http, https, dtmd, dingtalk, weixin, any scheme) with
spaces of the same length, so a parser can search the blanked text and still cut the original at
the positions it found.
"""

from __future__ import annotations

import re

# A scheme (RFC 3986: a letter, then letters, digits, + - .) and "://", then every printable ASCII
# character up to whitespace or the first non-ASCII one ("http://x/a报销99" keeps 报销99).
URL = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[!-~]*")


def blank_urls(text: str) -> str:
    return URL.sub(lambda m: " " * len(m.group()), text) if "://" in text else text
