"""Money amounts in free text (docs/architecture.md §4 "Amounts"): 86.5元, 八十六块五, 1万2, 两万五, 3k, ￥1,200.

The numeral part is read by cn2an's "smart" mode (两万五 → 25000, 三百二 → 320, 1万2 → 12000), which
jionlp gets wrong silently (两万五 → 20005). Around it this module decides what is money:

- A number marked as money (¥ / 元 / 块 / 毛 / k / w / 万) wins over an earlier bare one, so
  "302房 报销86元" is 86. Otherwise the first bare number that is not something else is taken.
- Not money: a number glued to a date, time or count (下周三, 3点, 三个人, 12/3, 15:30, 2026年, 8折, 10%),
  an ordinal (第一), a lone Chinese digit (一起, 三心二意), a word starting with a magnitude (千万, 万一),
  十分 (very), and 一块 meaning "together" (一块去).
- Not money either: anything inside a link (`scheme://…`, workflows/urls.py): the amount is read from
  the words a person sees, not from a URL's `%8C`.
- Values are Decimals rounded to cents.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

import cn2an

from workflows.urls import blank_urls

CENT = Decimal("0.01")
_DIG = "零〇一二两三四五六七八九"
_CN = _DIG + "十百千万亿"
_ASCII_MAG = {"k": 1000, "K": 1000, "w": 10000, "W": 10000, "千": 1000, "万": 10000, "亿": 10 ** 8}
_DIGIT_VALUE = {c: i for i, c in enumerate("零一二三四五六七八九")} | {"〇": 0, "两": 2}

# Characters right after a number that make it a count, date or time rather than money.
MEASURE_AFTER = ("个人位次天日号点时月年周岁台家张件份分秒倍折楼层米斤里克度期届名条项种本辆间"
                 "套瓶盒箱杯只头双对批轮单笔钟%％")
# Characters right before a number that make it part of a date, ordinal or code.
NOT_BEFORE = "周期拜第初之点/-:：.#"

ARABIC = r"(?:\d{1,3}(?:[,，]\d{3})+(?!\d)|\d+)(?:\.\d+)?"
_AMOUNT = re.compile(
    rf"(?:(?P<cur>[¥￥]|RMB|rmb|人民币)\s*)?"
    rf"(?P<core>{ARABIC}(?:\s*(?P<mag>[万千亿kKwW])(?P<tail>[\d{_DIG}][千百]?)?)?"
    rf"|[{_CN}]+(?:点[{_DIG}]+[万千亿]?)?)"
    rf"(?:\s*(?P<yuan>元|块|圆)(?P<qian>钱)?"
    # 三块二(毛)(五分): a lone digit after 块 is 角 unless a count follows (十块三个)
    rf"(?:(?P<jiao>[\d{_DIG}])(?:毛|角|(?![\d{_CN}{MEASURE_AFTER}]))(?:(?P<fen>[\d{_DIG}])分?)?)?"
    rf"|\s*(?P<mao>毛|角)(?:钱)?(?:(?P<fen2>[\d{_DIG}])分?)?)?"
    rf"(?P<zheng>整)?"
)


def _digit(c: str) -> Decimal:
    return Decimal(int(c)) if c.isdigit() else Decimal(_DIGIT_VALUE[c])


def _cn(text: str) -> Decimal | None:
    try:
        return Decimal(str(cn2an.cn2an(text, "smart")))
    except (ValueError, KeyError, IndexError, InvalidOperation):
        return None


def _core_value(m: re.Match) -> Decimal | None:
    core = m["core"]
    if not core[0].isdigit():
        if "点" in core and core[-1] in _ASCII_MAG:  # 三点五万: cn2an reads 三点五, we scale
            base = _cn(core[:-1])
            return None if base is None else base * _ASCII_MAG[core[-1]]
        return _cn(core)
    number = re.match(ARABIC, core)
    value = Decimal(number[0].replace(",", "").replace("，", ""))
    if m["mag"]:
        scale = _ASCII_MAG[m["mag"]]
        value *= scale
        tail = m["tail"]
        if tail and len(tail) == 1:
            value += _digit(tail) * scale / 10  # 1万2 = 12000, 3千五 = 3500
        elif tail:
            extra = _cn(tail)
            if extra is None:
                return None
            value += extra
    return value


def _is_marked(m: re.Match) -> bool:
    """Explicitly money: a currency sign, 元/块/毛, or a k / w / 万 multiplier."""
    return bool(m["cur"] or m["yuan"] or m["mao"] or m["mag"])


def _plausible(m: re.Match, text: str) -> bool:
    start, end = m.span()
    before = text[start - 1] if start else ""
    if before and (before in NOT_BEFORE or before.isascii() and before.isalnum()):
        return False
    core = m["core"]
    after = text[end:].lstrip()
    money_unit = m["cur"] or m["yuan"] or m["mao"]
    if not money_unit:
        if after[:1] and after[0] in MEASURE_AFTER:
            return False  # 三个人, 3点, 2026年, 8折, 3万人
        if after[:1] in ("/", ":", "-", "：") and after[1:2].isdigit():
            return False  # 12/3, 15:30, 2026-12-03
    if core[0].isdigit():
        digits = re.sub(r"\D", "", core.split(".")[0])
        return len(digits) < 11  # a phone number is not an amount
    if core[0] in "百千万亿":
        return False  # 千万别, 万一
    if m["yuan"] == "块" and core == "一" and not (m["jiao"] or m["qian"]):
        nxt = text[end:end + 1]
        if nxt and "\u4e00" <= nxt <= "\u9fff":
            return False  # 一块去 / 一块儿: "together"
    if not money_unit:
        # A bare Chinese numeral needs some size to be money: 三百二, 两万五 — not 一, 十分, 二五.
        return len(core) >= 2 and any(c in "十百千万亿" for c in core)
    return True


def _value(m: re.Match) -> Decimal | None:
    value = _core_value(m)
    if value is None:
        return None
    if m["mao"]:
        value = value / 10
        if m["fen2"]:
            value += _digit(m["fen2"]) / 100
    elif m["yuan"]:
        if m["jiao"]:
            value += _digit(m["jiao"]) / 10
        if m["fen"]:
            value += _digit(m["fen"]) / 100
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def parse_amount(text: str) -> Decimal | None:
    """The first money amount in free text; an amount marked as money beats an earlier bare number."""
    found = find_amount(text)
    return found[0] if found else None


def find_amount(text: str) -> tuple[Decimal, int, int] | None:
    """Like parse_amount, with where the amount was written (start, end), so a caller can take the
    amount out and keep the words around it (报销 打车 86.5元 → 打车)."""
    if not text:
        return None
    text = blank_urls(text)  # same length: the positions found are positions in the caller's text
    bare: tuple[Decimal, int, int] | None = None
    for m in _AMOUNT.finditer(text):
        if not m["core"] or not _plausible(m, text):
            continue
        value = _value(m)
        if value is None:
            continue
        if _is_marked(m):
            return value, m.start(), m.end()
        if bare is None:
            bare = (value, m.start(), m.end())
    return bare


def describe_amount(value: Decimal) -> str:
    """For confirmation cards: ¥86.50, ¥12,000.00."""
    cents = Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)
    sign = "-" if cents < 0 else ""
    return f"{sign}¥{abs(cents):,.2f}"
