"""Customer-name matching (docs/architecture.md §4): normalised forms, the two-stage index, and the
accept / choose / create policy, on the demo company's 200 customers plus a few hand-added ones."""

from __future__ import annotations

import functools
import json
import random
from collections import Counter
from datetime import datetime, timezone

import pytest
from pypinyin import lazy_pinyin
from sqlalchemy import select, update
from sqlmodel import Session

from sim.seed import seed
from storage.db import make_engine, session_scope
from storage.migrate import upgrade
from storage.models import Customer
from workflows.matching import (FORMS_VERSION, LEAD, CustomerIndex, decide, load_index, refresh_forms,
                                refresh_stale_forms, split_short_names, stored_forms)
from workflows.names import forms, pairs_of, query_variants, symbols, tokens_of

NOW = datetime(2026, 3, 18, 2, 0, tzinfo=timezone.utc)

# Customers the seed does not have: a bank known by its abbreviation, a brand whose legal name has no
# place, and two 飞鸿物流 in different cities for ties and `prefer`.
EXTRA = (
    ("中国建设银行股份有限公司", "建行", "北京"),
    ("深圳市大疆创新科技有限公司", "大疆", "深圳"),
    ("深圳市飞鸿物流有限公司", "飞鸿物流", "深圳"),
    ("广州市飞鸿物流有限公司", "飞鸿物流", "广州"),
)


# -- normalisation -----------------------------------------------------------------------------------


@pytest.mark.parametrize("legal, core, short, brand, regions", [
    ("腾讯科技(深圳)有限公司", "腾讯科技", "腾讯科技", "腾讯", ("深圳",)),
    ("腾讯科技（深圳）有限公司", "腾讯科技", "腾讯科技", "腾讯", ("深圳",)),  # full-width, as real names are
    ("北京三快在线科技有限公司", "北京三快在线科技", "三快在线科技", "三快", ("北京",)),
    ("招商银行股份有限公司", "招商银行", "招商银行", "招商", ()),
    ("深圳市南山区恒达精密机械有限公司", "深圳南山区恒达精密机械", "恒达精密机械", "恒达", ("深圳", "南山")),
    ("上海恒达商贸集团股份有限公司", "上海恒达商贸", "恒达商贸", "恒达", ("上海",)),
    ("广东省深圳市恒达物流有限责任公司", "广东深圳恒达物流", "恒达物流", "恒达", ("广东", "深圳")),
    ("顺丰速运有线公司", "顺丰速运", "顺丰速运", "顺丰", ()),  # 有限 mistyped: matched by sound
    ("华为技术有限工司", "华为技术", "华为技术", "华为", ()),
    ("金华科技有限公司", "金华科技", "金华科技", "金华", ()),  # 金华 is a city, but here the brand
    ("TCL科技集团股份有限公司", "tcl科技", "tcl科技", "tcl", ()),
])
def test_forms(legal, core, short, brand, regions):
    f = forms(legal, [])
    assert (f.core, f.short, f.brand, f.regions) == (core, short, brand, regions)
    assert set(f.pinyin) >= {core, short, brand}


def test_aliases_regions_and_pinyin_are_kept():
    f = forms("北京三快在线科技有限公司", ["美团", " 美团 ", "美团点评"], region="北京市")
    assert f.aliases == ("美团", "美团点评")
    assert f.regions == ("北京",)
    assert f.pinyin["美团"] == "mei tuan"
    assert f.texts()[:2] == ["美团", "美团点评"]  # 简称 first
    assert forms("招商银行股份有限公司", []).pinyin["招商银行"] == "zhao shang yin hang"  # 行 read in context


def test_one_symbol_per_syllable():
    assert symbols(tokens_of(pairs_of("腾迅"))) == symbols(tokens_of(pairs_of("腾讯")))
    assert len(symbols("teng xun ke ji")) == 4
    assert symbols(tokens_of(pairs_of("a"))) != symbols(tokens_of(pairs_of("啊")))  # Latin a is not 啊
    # pypinyin reads 长盛 zhang sheng; a rep typing 长生 means chang: heteronyms get both readings
    assert forms("长盛供应链管理有限公司", []).other_pinyin["长盛"] == "chang sheng"
    assert forms("成长科技有限公司", []).other_pinyin["成长"] == "cheng chang"
    index = CustomerIndex([(1, "长盛供应链管理有限公司", forms("长盛供应链管理有限公司", [])),
                           (2, "成长科技有限公司", forms("成长科技有限公司", []))])
    assert index.match("长生供应链").customer_id == 1
    assert index.match("成涨科技").customer_id == 2
    assert symbols("zhang") != symbols("zang") and symbols("lan") != symbols("nan")  # no fuzzy pinyin


def test_query_variants():
    texts = [v.text for v in query_variants("深圳腾讯科技有限公司")]
    assert texts[:3] == ["深圳腾讯科技有限公司", "深圳腾讯科技", "腾讯科技"]
    assert query_variants("  ") == []


# -- the table ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def book(tmp_path_factory) -> tuple[CustomerIndex, dict[str, int], list[Customer]]:
    """The seeded demo company + EXTRA in a SQLite file, forms stored, index loaded from the rows."""
    engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('match') / 'book.db'}")
    upgrade(engine)
    with session_scope(engine) as session:
        seed(session, now=NOW)
        for name, short, region in EXTRA:
            session.add(Customer(name=name, short_names=short, region=region))
        session.flush()
        refresh_stale_forms(session)
    with Session(engine) as session:
        index = load_index(session)
        customers = list(session.execute(select(Customer).order_by(Customer.id)).scalars())
    engine.dispose()
    return index, {c.name: c.id for c in customers}, customers


ACCEPT_TABLE = [
    # (query, legal name it must be accepted as)
    ("腾讯", "腾讯科技(深圳)有限公司"),
    ("腾迅", "腾讯科技(深圳)有限公司"),  # input-method homophone
    ("滕讯", "腾讯科技(深圳)有限公司"),
    ("腾讯科技（深圳）有限公司", "腾讯科技(深圳)有限公司"),  # full-width brackets
    ("腾讯科技有线公司", "腾讯科技(深圳)有限公司"),  # 有限 mistyped
    ("腾讯科技有限责任公司", "腾讯科技(深圳)有限公司"),
    ("深圳腾讯", "腾讯科技(深圳)有限公司"),  # city prefix
    ("腾讯科技深圳", "腾讯科技(深圳)有限公司"),
    ("招行", "招商银行股份有限公司"),  # 简称
    ("招商银行", "招商银行股份有限公司"),
    ("招商银航", "招商银行股份有限公司"),  # homophone
    ("招商银行股份有限公司", "招商银行股份有限公司"),
    ("招商银行股份公司", "招商银行股份有限公司"),  # 份公司 sounds like 分公司 but is not a branch
    ("招商银行深圳分行", "招商银行股份有限公司"),  # a branch finds its bank
    ("美团", "北京三快在线科技有限公司"),  # 简称 that shares nothing with the legal name
    ("北京三快", "北京三快在线科技有限公司"),
    ("阿里", "阿里巴巴(中国)有限公司"),
    ("阿里巴巴（中国）有限公司", "阿里巴巴(中国)有限公司"),
    ("阿里巴巴集团", "阿里巴巴(中国)有限公司"),
    ("阿里爸爸", "阿里巴巴(中国)有限公司"),
    ("华为", "华为技术有限公司"),
    ("深圳华为", "华为技术有限公司"),  # the place comes from the region column
    ("华为技术有限工司", "华为技术有限公司"),
    ("华为公司", "华为技术有限公司"),
    ("顺丰", "顺丰速运有限公司"),
    ("顺丰速运", "顺丰速运有限公司"),
    ("建行", "中国建设银行股份有限公司"),
    ("建设银行", "中国建设银行股份有限公司"),
    ("中国建设银行", "中国建设银行股份有限公司"),
    ("大疆", "深圳市大疆创新科技有限公司"),
    ("大江", "深圳市大疆创新科技有限公司"),  # homophone
    ("深圳飞鸿物流", "深圳市飞鸿物流有限公司"),  # the city settles which 飞鸿物流
    ("广州市飞鸿物流有限公司", "广州市飞鸿物流有限公司"),
]


@pytest.mark.parametrize("query, legal", ACCEPT_TABLE)
def test_accepts(book, query, legal):
    index, ids, _ = book
    result = index.match(query)
    assert (result.decision, result.customer_id) == ("accept", ids[legal]), result


CHOOSE_TABLE = [
    # (query, legal name that must be offered first)
    ("招银", "招商银行股份有限公司"),  # abbreviation: offered, never accepted on its own
    ("大疆科技", "深圳市大疆创新科技有限公司"),
    ("三快科技有限公司", "北京三快在线科技有限公司"),  # 在线 left out: close, not the same
    ("顺风快递", "顺丰速运有限公司"),  # homophone brand + another trade word
    ("顺丰快递", "顺丰速运有限公司"),  # the brand, another trade word: close, but 恒达物流 ≠ 恒达机械
    ("飞鸿物流", None),  # two customers share the 简称: ask
]


@pytest.mark.parametrize("query, legal", CHOOSE_TABLE)
def test_offers_a_choice(book, query, legal):
    index, ids, _ = book
    result = index.match(query)
    assert result.decision == "choose", result
    if legal:
        assert result.candidates[0].customer_id == ids[legal], result
    assert 2 <= len(result.candidates) <= 3


STRANGERS = ("小米", "字节跳动", "一家不存在的公司", "比亚迪", "格力电器", "京东", "拼多多", "宁德时代", "中兴通讯",
             "平安银行", "工商银行", "深圳市飞天猫科技有限公司", "美的集团", "联想", "蔚来汽车")


@pytest.mark.parametrize("query", STRANGERS)
def test_strangers_are_never_accepted(book, query):
    index, _, _ = book
    assert index.match(query).decision != "accept"


@pytest.mark.parametrize("query", ("小米", "字节跳动", "一家不存在的公司", "比亚迪", "京东", "深圳", "有限公司"))
def test_obvious_strangers_offer_to_create(book, query):
    index, _, _ = book
    assert index.match(query).decision == "create"


def test_prefer_breaks_ties(book):
    index, ids, _ = book
    shenzhen, guangzhou = ids["深圳市飞鸿物流有限公司"], ids["广州市飞鸿物流有限公司"]
    for mine in (shenzhen, guangzhou):
        result = index.match("飞鸿物流", prefer={mine})
        assert (result.decision, result.customer_id) == ("accept", mine)
    both = index.match("飞鸿物流", prefer={shenzhen, guangzhou})
    assert both.decision == "choose"
    # prefer never lifts a weak match into an accept
    assert index.match("顺风快递", prefer={ids["顺丰速运有限公司"]}).decision == "choose"


# -- the whole seeded book, generated queries --------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _by_sound() -> dict[str, list[str]]:
    """GB2312 level 1 (what an input method offers first) grouped by toneless syllable."""
    table: dict[str, list[str]] = {}
    for hi in range(0xB0, 0xD8):
        for lo in range(0xA1, 0xFF if hi < 0xD7 else 0xFA):
            char = bytes([hi, lo]).decode("gb2312")
            table.setdefault(lazy_pinyin(char)[0], []).append(char)
    return table


def _homophone(rng: random.Random, char: str) -> str | None:
    options = [c for c in _by_sound().get(lazy_pinyin(char)[0], []) if c != char]
    return rng.choice(options) if options else None


def _generated_queries(customers: list[Customer]) -> list[tuple[str, int]]:
    """Per customer: legal name; full-width + 有限责任公司; first 简称; city + short form; the 简称
    with one brand character swapped for a homophone."""
    rng = random.Random(7)
    brands = {forms(c.name, []).brand for c in customers}
    out = []
    for c in customers:
        f = forms(c.name, split_short_names(c.short_names), region=c.region)
        alias = split_short_names(c.short_names)[0]
        out.append((c.name, c.id))
        out.append((c.name.replace("(", "（").replace(")", "）").replace("股份有限公司", "股份公司")
                    .replace("有限公司", "有限责任公司"), c.id))
        out.append((alias, c.id))
        out.append((c.region + f.short, c.id))
        i = rng.randrange(2)
        swapped = _homophone(rng, f.brand[i])
        # 天成 → 天诚 is no typo when 天诚 is a customer too
        if swapped and f.brand in alias and f.brand[:i] + swapped + f.brand[i + 1:] not in brands:
            out.append((alias.replace(f.brand, f.brand[:i] + swapped + f.brand[i + 1:], 1), c.id))
    return out


def test_generated_queries_on_the_seeded_book(book):
    """~1,000 queries over the 204 customers: nothing accepted wrongly, and the customer meant is the
    answer, or one of the tied leaders when customers genuinely share the words (two 智远教育)."""
    index, _, customers = book
    outcomes: Counter[str] = Counter()
    misses = []
    for query, expected in _generated_queries(customers):
        result = index.match(query)
        top = result.candidates[0].score if result.candidates else 0
        tied = [c.customer_id for c in result.candidates if c.score > top - LEAD]
        if result.decision == "accept":
            outcome = "right" if result.customer_id == expected else "WRONG"
        elif result.decision == "choose" and expected in tied:
            outcome = "tied"
        else:
            outcome = "missed"
        outcomes[outcome] += 1
        if outcome != "right" and outcome != "tied":
            misses.append((query, expected, result))
    total = sum(outcomes.values())
    assert outcomes["WRONG"] == 0, misses
    assert outcomes["missed"] <= total // 200, misses  # ≥ 99.5 % right
    assert outcomes["right"] >= total * 0.95, outcomes


# -- storage round trip and incremental changes ------------------------------------------------------


def test_forms_round_trip_through_the_database(database_url):
    engine = make_engine(database_url)
    with session_scope(engine) as session:
        seed(session, now=NOW)
        assert refresh_stale_forms(session) == 0  # the seed stores forms, as any create does
        session.execute(update(Customer).values(match_forms=""))  # rows from before migration 0003
        assert refresh_stale_forms(session) == 200
        assert refresh_stale_forms(session) == 0
    with Session(engine) as session:
        tencent = session.execute(select(Customer).where(Customer.short_names == "腾讯")).scalar_one()
        stored = json.loads(tencent.match_forms)
        assert stored["v"] == FORMS_VERSION and stored["core"] == "腾讯科技" and stored["aliases"] == ["腾讯"]
        assert stored_forms(tencent.name, tencent.short_names, tencent.region, tencent.match_forms) == \
            forms(tencent.name, ["腾讯"], region=tencent.region)
        index = load_index(session)
        assert len(index) == 200
        assert index.match("腾迅").customer_id == tencent.id
        meituan_id = index.match("美团").customer_id
        assert meituan_id is not None

    # A row written before migration 0003 (or renamed without a refresh) is recomputed on load.
    with session_scope(engine) as session:
        session.execute(update(Customer).where(Customer.id == meituan_id).values(match_forms=""))
        session.execute(update(Customer).where(Customer.id == tencent.id).values(name="深圳市腾讯计算机系统有限公司"))
    with Session(engine) as session:
        index = load_index(session)
        assert index.match("美团").customer_id == meituan_id
        assert index.match("腾讯计算机").customer_id == tencent.id
        assert refresh_stale_forms(session) == 2
        session.commit()

    # Create and rename go through refresh_forms and the live index.
    with session_scope(engine) as session:
        new = Customer(name="深圳市飞天猫科技有限公司", short_names="飞天猫", region="深圳")
        refreshed = refresh_forms(new)
        session.add(new)
        session.flush()
        index.add(new.id, new.name, refreshed)
        assert index.match("飞天猫").customer_id == new.id
        new.name, new.short_names = "深圳市飞天狗科技有限公司", "飞天狗"
        index.update(new.id, new.name, refresh_forms(new))
        assert index.match("飞天狗").customer_id == new.id
        assert index.match("飞天猫").decision != "accept"
        new_id = new.id
    with Session(engine) as session:
        assert load_index(session).match("飞天狗").customer_id == new_id
    engine.dispose()


def test_incremental_changes_and_compaction():
    index = CustomerIndex([(1, "腾讯科技(深圳)有限公司", forms("腾讯科技(深圳)有限公司", ["腾讯"])),
                           (2, "北京三快在线科技有限公司", forms("北京三快在线科技有限公司", ["美团"]))])
    assert index.match("美团").customer_id == 2
    index.remove(2)
    assert 2 not in index and len(index) == 1
    assert index.match("美团").decision == "create"
    assert index.match("北京三快在线科技有限公司").decision != "accept"
    index.update(1, "深圳市腾讯计算机系统有限公司", forms("深圳市腾讯计算机系统有限公司", ["鹅厂"]))
    assert index.match("鹅厂").customer_id == 1
    assert index.match("腾讯计算机").customer_id == 1
    for n in range(3, 1300):  # enough removals to trigger a compaction
        index.add(n, f"测试{n}号有限公司", forms(f"测试{n}号有限公司", []))
    for n in range(3, 1300):
        index.remove(n)
    assert len(index._ids) < 400  # compacted once 1,000 rows were dead
    assert index.match("鹅厂").customer_id == 1 and len(index) == 1
    assert CustomerIndex().match("腾讯").decision == "create"


# -- policy ------------------------------------------------------------------------------------------


def test_policy():
    assert decide("q", [(95, 1, "a"), (91, 2, "b")]).decision == "accept"  # 4 ahead
    assert decide("q", [(95, 1, "a"), (93, 2, "b")]).decision == "choose"  # too close
    assert decide("q", [(93, 1, "a"), (95, 2, "b")], frozenset({1})).customer_id == 1  # tie → mine
    assert decide("q", [(95, 1, "a"), (95, 2, "b")], frozenset({1, 2})).decision == "choose"
    assert decide("q", [(88, 1, "a")], frozenset({1})).decision == "choose"  # abbreviation: ask
    assert decide("q", [(69.9, 1, "a")]).decision == "create"
    assert decide("q", []).decision == "create"
    result = decide("q", [(80, n, str(n)) for n in range(10)])
    assert len(result.candidates) == 3 and result.customer_id is None
