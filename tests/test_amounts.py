"""workflows.amounts (docs/architecture.md §4 "Amounts"): exact Decimal values, and what is not money."""

from __future__ import annotations

from decimal import Decimal

import pytest

from workflows.amounts import describe_amount, parse_amount

AMOUNTS = [
    ("yuan-decimal", "86.5元", "86.5"),
    ("bare-decimal", "86.5", "86.5"),
    ("kuai-with-jiao", "八十六块五", "86.5"),
    ("yi-kuai-wu", "一块五", "1.5"),
    ("wu-mao", "五毛", "0.5"),
    ("kuai-and-mao", "三块二毛", "3.2"),
    ("kuai-mao-fen", "三块二毛五", "3.25"),
    ("arabic-kuai-jiao", "3块5", "3.5"),
    ("wan-decimal", "1.2万", "12000"),
    ("wan-tail", "1万2", "12000"),
    ("wan-tail-qian", "1万2千", "12000"),
    ("qian-tail", "3千五", "3500"),
    ("liang-wan-wu-not-20005", "两万五", "25000"),
    ("san-bai-er", "三百二", "320"),
    ("k", "3k", "3000"),
    ("w", "1.5w", "15000"),
    ("thousands-comma", "1,200", "1200"),
    ("fullwidth-yen", "￥1200", "1200"),
    ("yen-space-cents", "¥ 1,200.50", "1200.5"),
    ("yuan-zheng", "1200元整", "1200"),
    ("chinese-yuan-zheng", "一千二百元整", "1200"),
    ("kuai-qian", "十块钱", "10"),
    ("rmb", "RMB1200", "1200"),
    ("spoken-decimal-wan", "三点五万", "35000"),
    ("millions", "1,234,567.89元", "1234567.89"),
    ("in-message", "报销出租车86.5元", "86.5"),
    ("marked-beats-earlier-bare", "302房 报销86元", "86"),
    ("after-a-weekday", "下周三 报销200元", "200"),
    ("after-a-time", "下午3点 报销200", "200"),
    ("after-a-count", "预算两万五，三个人", "25000"),
]


@pytest.mark.parametrize("text,expected", [pytest.param(*c[1:], id=c[0]) for c in AMOUNTS])
def test_parse_amount(text: str, expected: str) -> None:
    assert parse_amount(text) == Decimal(expected)


NOT_MONEY = [
    ("weekday", "下周三"),
    ("clock", "3点"),
    ("people", "三个人"),
    ("ordinal", "第一次"),
    ("together", "我们一块去拜访"),
    ("one-lone-digit", "一起吃饭"),
    ("very", "十分感谢"),
    ("by-all-means", "千万别忘了"),
    ("in-case", "万一不行"),
    ("slash-date", "12/3"),
    ("hh-mm", "15:30"),
    ("iso-date", "2026-12-03"),
    ("year", "2026年"),
    ("discount", "打8折"),
    ("percent", "10%"),
    ("phone", "13800138000"),
    ("crowd", "3万人"),
    ("percent-words", "百分之五十"),
    ("no-number", "聊了报价"),
    ("empty", ""),
]


@pytest.mark.parametrize("text", [pytest.param(c[1], id=c[0]) for c in NOT_MONEY])
def test_not_money(text: str) -> None:
    assert parse_amount(text) is None


@pytest.mark.parametrize(
    "value,expected",
    [
        pytest.param("86.5", "¥86.50", id="cents"),
        pytest.param("12000", "¥12,000.00", id="thousands"),
        pytest.param("0.5", "¥0.50", id="under-one"),
        pytest.param("1234567.891", "¥1,234,567.89", id="rounded"),
    ],
)
def test_describe_amount(value: str, expected: str) -> None:
    assert describe_amount(Decimal(value)) == expected
