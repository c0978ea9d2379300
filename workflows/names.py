"""Customer-name normalisation (docs/architecture.md §4): the forms a rep may type for one legal name.

    深圳市腾讯计算机系统有限公司  →  core  深圳腾讯计算机系统   (org form gone, 市 after a place dropped)
                                   short 腾讯计算机系统       (place prefix gone)
                                   partial 腾讯计算机         (each cut on the way to the brand)
                                   brand 腾讯                 (industry words gone)

plus the 简称 as aliases, the places the name mentions (regions), and each form's toneless pinyin
with one token per character, so a matcher can compare by sound (腾迅 and 腾讯 are both teng xun).

`forms()` costs ~0.5 ms a name here (mostly pypinyin), so callers store `NameForms.to_dict()` with the
customer (workflows.matching.refresh_forms) and recompute only on create/rename. Everything here is pure: no database, no platform.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache

from pypinyin import Style, lazy_pinyin
from pypinyin.seg.simpleseg import seg

# A form is a list of (character, syllable) pairs so that cutting the text cuts its pinyin the same
# way; non-Chinese characters carry themselves upper-cased (a Latin "a" must not equal 啊's "a").
Pairs = list[tuple[str, str]]

MIN_FORM = 2  # never cut a name below two characters: "科技" alone says nothing

# Legal-form suffixes, tried in this order (longer first). Matched by sound so 有线公司 / 股分有限公司 / 有限工司 go too.
ORG_FORMS = ("股份有限公司", "有限责任公司", "有限公司", "股份公司", "集团公司", "总公司", "分公司", "办事处", "营业部",
             "公司", "集团", "股份", "有限", "分行", "支行", "分店")
# Stripping these from a query loses a hint (恒达集团 vs 恒达物流; a branch may be its own customer),
# so that variant scores a little lower. 招商银行深圳分行 still finds 招商银行.
INFORMATIVE_ORG_FORMS = frozenset({"集团", "集团公司", "分公司", "办事处", "营业部", "分行", "支行", "分店"})
BRANCHES = INFORMATIVE_ORG_FORMS - {"集团", "集团公司"}  # matched as written only: 股份公司 must not read as 分公司
BRAND_GUESS = 12.0  # a query cut down to its brand scores at most 88: offered, never accepted alone

PROVINCES = (
    "北京", "天津", "上海", "重庆", "河北", "山西", "辽宁", "吉林", "黑龙江", "江苏", "浙江", "安徽", "福建",
    "江西", "山东", "河南", "湖北", "湖南", "广东", "海南", "四川", "贵州", "云南", "陕西", "甘肃", "青海",
    "台湾", "内蒙古", "广西", "西藏", "宁夏", "新疆", "香港", "澳门",
)
# Prefecture-level cities a Chinese SME meets; a miss only means the place stays in the name.
CITIES = (
    "深圳", "广州", "东莞", "佛山", "珠海", "中山", "惠州", "江门", "汕头", "湛江", "肇庆", "清远", "韶关", "揭阳",
    "茂名", "梅州", "汕尾", "河源", "阳江", "潮州", "云浮", "杭州", "宁波", "温州", "绍兴", "嘉兴", "湖州", "金华",
    "台州", "舟山", "衢州", "丽水", "南京", "苏州", "无锡", "常州", "南通", "徐州", "扬州", "镇江", "泰州", "盐城",
    "淮安", "连云港", "宿迁", "成都", "绵阳", "德阳", "宜宾", "泸州", "乐山", "南充", "武汉", "宜昌", "襄阳",
    "荆州", "十堰", "黄石", "孝感", "长沙", "株洲", "湘潭", "衡阳", "岳阳", "常德", "郑州", "洛阳", "开封", "新乡",
    "南阳", "许昌", "济南", "青岛", "烟台", "潍坊", "淄博", "威海", "临沂", "济宁", "泰安", "日照", "德州", "聊城",
    "菏泽", "枣庄", "东营", "滨州", "福州", "厦门", "泉州", "漳州", "莆田", "宁德", "龙岩", "三明", "南平", "合肥",
    "芜湖", "蚌埠", "马鞍山", "安庆", "阜阳", "南昌", "赣州", "九江", "景德镇", "上饶", "石家庄", "唐山", "保定",
    "廊坊", "邯郸", "沧州", "秦皇岛", "太原", "大同", "沈阳", "大连", "鞍山", "长春", "哈尔滨", "大庆", "西安",
    "咸阳", "宝鸡", "兰州", "西宁", "银川", "乌鲁木齐", "呼和浩特", "包头", "南宁", "桂林", "柳州", "北海", "贵阳",
    "遵义", "昆明", "大理", "丽江", "海口", "三亚", "拉萨",
)
PLACES = tuple(sorted(set(("中国",) + PROVINCES + CITIES), key=len, reverse=True))
PLACE_SUFFIXES = ("特别行政区", "维吾尔自治区", "壮族自治区", "回族自治区", "自治区", "省", "市")
# After a city, a district: 南山区, 浦东新区, 长安镇, 工业园区. Up to four characters before the marker.
DISTRICT = re.compile(r"^(.{1,4}?)(新区|区|县|镇)")

# Words describing the trade rather than the company; stripped from the end to find the brand.
INDUSTRY_WORDS = tuple(sorted(set("""
科技 信息 技术 网络 物流 医疗 器械 贸易 实业 电子 机械 精密 软件 商贸 供应链 管理 咨询 服务 投资 工程 建筑 装饰
餐饮 食品 生物 医药 新材料 材料 新能源 能源 光伏 电力 燃气 储能 数字 数据 教育 培训 职业技能 技能 文化 传媒 广告
发展 控股 国际 货运代理 货运 代理 冷链 快运 速运 快递 五金 制品 包装 模具 百货 超市 便利店 服饰 服装 连锁 健康
融资租赁 租赁 融资 商业保理 保理 商业 建材 市政 酒店 环保 汽车 智能 系统 计算机 通信 通讯 电器 设备 化工 纺织
印刷 房地产 地产 置业 物业 银行 证券 保险 基金 资产 在线 互联网 电子商务 电商 进出口 工贸 机电 自动化 仪器 仪表
照明 光电 半导体 家居 家具 装修 设计 营销 人力资源 金融 航空 航运 运输 农业 制造 工业 产业 开发 研发 安防 消防
检测 钢铁 金属 塑胶 塑料 橡胶 玻璃 陶瓷 化妆品 日用品 用品 药业 大药房 药房 旅游 石油 化学 矿业 电气 线缆 电缆
""".split()), key=len, reverse=True))

_PLACE_SET = frozenset(PLACES)
_PLACE_LENGTHS = tuple(sorted({len(p) for p in PLACES}, reverse=True))
_PLACE_SUFFIX_SET = frozenset(PLACE_SUFFIXES)
_PLACE_SUFFIX_LENGTHS = tuple(sorted({len(p) for p in PLACE_SUFFIXES}, reverse=True))
_INDUSTRY_SET = frozenset(INDUSTRY_WORDS)
_INDUSTRY_LENGTHS = tuple(sorted({len(w) for w in INDUSTRY_WORDS}, reverse=True))

_BRACKETS = re.compile(r"[(\[{【〔〖《<]([^)\]}】〕〗》>]*)[)\]}】〕〗》>]")
_NOT_WORD = re.compile(r"[\W_]+")


# -- cleaning and pinyin ---------------------------------------------------------------------------


def clean(text: str) -> tuple[str, list[str]]:
    """Half-width, lower case, no spaces or punctuation; bracketed parts taken out and returned
    separately (腾讯科技（深圳）有限公司 → 腾讯科技有限公司, [深圳]). NFKC maps （） to ()."""
    text = unicodedata.normalize("NFKC", text).lower()
    inside = [_squash(m) for m in _BRACKETS.findall(text)]
    return _squash(_BRACKETS.sub("", text)), [s for s in inside if s]


def exact_key(text: str) -> str:
    """The whole name, brackets kept as plain text, for exact legal-name equality."""
    return _squash(unicodedata.normalize("NFKC", text).lower())


def _squash(text: str) -> str:
    return _NOT_WORD.sub("", text)


# Characters with two readings that both occur in trade names. pypinyin picks one from context and
# sometimes picks wrong (it reads an unknown 长X as zhang: 长盛, 长丰; but 成长 is zhang), so a
# form holding one is also indexed under the other reading; the input method types either.
HETERONYMS = {"长": ("chang", "zhang"), "行": ("hang", "xing"), "重": ("chong", "zhong"), "乐": ("le", "yue"),
              "朝": ("chao", "zhao"), "调": ("diao", "tiao"), "传": ("chuan", "zhuan"), "单": ("dan", "shan"),
              "曾": ("zeng", "ceng"), "解": ("jie", "xie"), "藏": ("cang", "zang"), "会": ("hui", "kuai"),
              "厦": ("xia", "sha"), "都": ("du", "dou"), "参": ("can", "shen"), "还": ("huan", "hai")}


def pairs_of(text: str) -> Pairs:
    """Characters with their toneless syllables; pypinyin reads phrases (银行 = yin hang)."""
    return list(zip(text, _syllables(text)))


@lru_cache(maxsize=65536)
def _syllables(text: str) -> tuple[str, ...]:
    # pypinyin is most of what reading a name costs, and one name is read several times over (its
    # query variants, its stored forms; a bulk import reads each row's name as both), so remember it.
    syllables = [s for word in seg(text) for s in _word_syllables(word)]
    if len(syllables) != len(text):  # never seen, but alignment is what everything relies on
        syllables = [lazy_pinyin(c, style=Style.NORMAL, errors=lambda s: s.upper())[0] for c in text]
    return tuple(syllables)


@lru_cache(maxsize=65536)
def _word_syllables(word: str) -> tuple[str, ...]:
    # pypinyin cuts a text into words and reads each word on its own, so reading word by word is the
    # same reading; and words repeat across names (深圳, 科技, 有限公司) where whole names do not.
    return tuple(lazy_pinyin([word], style=Style.NORMAL, errors=lambda chunk: [c.upper() for c in chunk]))


def other_reading(text: str, tokens: str) -> str | None:
    """`tokens` with each HETERONYMS character read the other way, if the form has any."""
    if not any(c in HETERONYMS for c in text):
        return None
    out = []
    for char, token in zip(text, tokens.split()):
        readings = HETERONYMS.get(char)
        out.append(next((r for r in readings if r != token), token) if readings else token)
    other = " ".join(out)
    return other if other != tokens else None


def text_of(pairs: Pairs) -> str:
    return "".join(c for c, _ in pairs)


def tokens_of(pairs: Pairs) -> str:
    """Stored pinyin: one space-separated token per character."""
    return " ".join(s for _, s in pairs)


_SYMBOLS: dict[str, str] = {}
_SYMBOLS_LOCK = threading.Lock()
_PRIVATE_USE = 0xE000  # 6,400 code points; Mandarin has ~410 toneless syllables
_PRIVATE_USE_MORE = 0xF0000  # plane 15, should anything odd ever fill the first block


@lru_cache(maxsize=65536)  # a symbol, once handed out, never changes; the matcher asks for the same ones often
def symbols(tokens: str) -> str:
    """One character per syllable (a private-use code point), so string similarity counts whole
    syllables: teng xun → two symbols, and 腾迅 == 腾讯. Letters and digits stand for themselves.
    The table is per process; only the tokens are stored."""
    out = []
    for token in tokens.split():
        if not token.islower():  # an upper-cased Latin letter or a digit
            out.append(token.lower())
            continue
        symbol = _SYMBOLS.get(token)
        if symbol is None:
            with _SYMBOLS_LOCK:  # two threads must not hand out the same code point
                symbol = _SYMBOLS.setdefault(token, _new_symbol(len(_SYMBOLS)))
        out.append(symbol)
    return "".join(out)


def _new_symbol(n: int) -> str:
    return chr(_PRIVATE_USE + n) if n < 6400 else chr(_PRIVATE_USE_MORE + n - 6400)


# -- cutting a name down ---------------------------------------------------------------------------


_ORG_PAIRS = [(form, pairs_of(form)) for form in ORG_FORMS]
_ORG_LAST_SOUNDS = frozenset(form_pairs[-1][1] for _, form_pairs in _ORG_PAIRS)


def strip_org_forms(pairs: Pairs) -> tuple[Pairs, list[str]]:
    """Remove legal-form suffixes (repeatedly: …集团股份有限公司), recognising them by sound when at
    least half their characters are right, so a typo in 有限公司 does not stay in the name."""
    removed: list[str] = []
    changed = True
    while changed and pairs and pairs[-1][1] in _ORG_LAST_SOUNDS:  # every form must match by sound
        changed = False
        for form, form_pairs in _ORG_PAIRS:
            n = len(form_pairs)
            if len(pairs) - n < MIN_FORM:
                continue
            tail = pairs[-n:]
            same_sound = [s for _, s in tail] == [s for _, s in form_pairs]
            same_chars = sum(a == b for (a, _), (b, _) in zip(tail, form_pairs))
            if same_sound and (same_chars == n or (same_chars * 2 >= n and form not in BRANCHES)):
                pairs, changed = pairs[:-n], True
                removed.append(form)
                break
    return pairs, removed


def drop_place_suffix_chars(pairs: Pairs) -> Pairs:
    """广东省深圳市恒达 → 广东深圳恒达: people write places with or without 省/市, so the core does
    not care."""
    done = 0
    while True:
        cut = _leading_place(text_of(pairs[done:]))
        if not cut:
            return pairs
        place, length = cut
        if len(pairs) - done - length < MIN_FORM:
            return pairs
        pairs = pairs[:done + len(place)] + pairs[done + length:]
        done += len(place)


def strip_places(pairs: Pairs) -> tuple[Pairs, list[str]]:
    """Remove leading places (中国, province, city, then a district) and a trailing place
    (腾讯科技深圳); return what was removed. Never leaves only industry words (金华科技 stays)."""
    found: list[str] = []
    while True:
        cut = _leading_place(text_of(pairs))
        if not cut:
            break
        place, length = cut
        if not _worth_keeping(pairs[length:]):
            break
        found.append(place)
        pairs = pairs[length:]
    if found:
        match = DISTRICT.match(text_of(pairs))
        if match and _worth_keeping(pairs[match.end():]):
            found.append(match.group(1))
            pairs = pairs[match.end():]
    place = _suffix_in(text_of(pairs), _PLACE_SET, _PLACE_LENGTHS)
    if place and _worth_keeping(pairs[:-len(place)]):
        found.append(place)
        pairs = pairs[:-len(place)]
    return pairs, found


def _leading_place(text: str) -> tuple[str, int] | None:
    place = _prefix_in(text, _PLACE_SET, _PLACE_LENGTHS)
    if place is None:
        return None
    suffix = _prefix_in(text[len(place):], _PLACE_SUFFIX_SET, _PLACE_SUFFIX_LENGTHS) or ""
    return place, len(place) + len(suffix)


def _prefix_in(text: str, words: frozenset[str], lengths: tuple[int, ...]) -> str | None:
    """The longest word of `words` that `text` starts with (set lookups, not a scan of the list)."""
    return next((text[:n] for n in lengths if text[:n] in words), None)


def _suffix_in(text: str, words: frozenset[str], lengths: tuple[int, ...]) -> str | None:
    return next((text[-n:] for n in lengths if n < len(text) + 1 and text[-n:] in words), None)


def is_place(text: str) -> bool:
    """深圳, 深圳市, 广东省: a place and nothing else."""
    cut = _leading_place(text)
    return cut is not None and cut[1] == len(text)


def _worth_keeping(pairs: Pairs) -> bool:
    return len(pairs) >= MIN_FORM and len(strip_industry(pairs)) >= MIN_FORM and not _all_industry(pairs)


def _all_industry(pairs: Pairs) -> bool:
    text = text_of(pairs)
    while text:
        word = _suffix_in(text, _INDUSTRY_SET, _INDUSTRY_LENGTHS)
        if word is None:
            return False
        text = text[:-len(word)]
    return True


def strip_industry(pairs: Pairs) -> Pairs:
    """恒达精密机械 → 恒达, 三快在线科技 → 三快: trailing trade words off, two characters kept."""
    return industry_steps(pairs)[-1]


def industry_steps(pairs: Pairs) -> list[Pairs]:
    """Each cut on the way to the brand: 腾讯计算机系统, 腾讯计算机, 腾讯 — people stop anywhere."""
    steps = [pairs]
    while True:
        text = text_of(steps[-1])
        word = _suffix_in(text[MIN_FORM:], _INDUSTRY_SET, _INDUSTRY_LENGTHS)
        if word is None:
            return steps
        steps.append(steps[-1][:-len(word)])


# -- the forms -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NameForms:
    """What a customer's name can be typed as. `pinyin` maps each form to its tokens; `other_pinyin`
    to its other reading when it holds a HETERONYMS character."""

    core: str
    short: str
    brand: str
    aliases: tuple[str, ...] = ()
    partials: tuple[str, ...] = ()  # between short and brand: 恒达精密 of 恒达精密机械
    regions: tuple[str, ...] = ()
    pinyin: dict[str, str] = field(default_factory=dict, compare=False)
    other_pinyin: dict[str, str] = field(default_factory=dict, compare=False)

    def texts(self) -> list[str]:
        """Distinct forms, the 简称 first (what people say most)."""
        return list(dict.fromkeys((*self.aliases, self.core, self.short, *self.partials, self.brand)))

    def to_dict(self) -> dict:
        return {"core": self.core, "short": self.short, "brand": self.brand,
                "aliases": list(self.aliases), "partials": list(self.partials), "regions": list(self.regions),
                "pinyin": self.pinyin, "other_pinyin": self.other_pinyin}

    @classmethod
    def from_dict(cls, data: dict) -> "NameForms":
        return cls(core=data["core"], short=data["short"], brand=data["brand"],
                   aliases=tuple(data.get("aliases", ())), partials=tuple(data.get("partials", ())),
                   regions=tuple(data.get("regions", ())), pinyin=dict(data.get("pinyin", {})),
                   other_pinyin=dict(data.get("other_pinyin", {})))


def forms(legal_name: str, short_names: list[str] | tuple[str, ...] = (), *, region: str = "") -> NameForms:
    """All forms of one customer. `region` (the Customer.region column) joins the places read off
    the name, so 深圳华为 finds 华为技术有限公司 whose name has no place in it."""
    text, bracketed = clean(legal_name)
    pairs = pairs_of(text) if text else []
    core_pairs, _ = strip_org_forms(pairs)
    short_pairs, places = strip_places(core_pairs)
    core_pairs = drop_place_suffix_chars(core_pairs)
    steps = industry_steps(short_pairs)
    brand_pairs, partials = steps[-1], steps[1:-1]
    regions = _regions(places + bracketed + ([region] if region else []))
    pinyin = {text_of(p): tokens_of(p) for p in (core_pairs, short_pairs, *partials, brand_pairs) if p}
    known = dict(pairs)
    aliases = []
    for alias in short_names:
        alias_text, _ = clean(alias)
        if alias_text and alias_text not in aliases:
            aliases.append(alias_text)
            pinyin.setdefault(alias_text, tokens_of(_alias_pairs(alias_text, known)))
    core = text_of(core_pairs) or exact_key(legal_name)
    if core not in pinyin:  # a name of punctuation only: keep something comparable
        pinyin[core] = tokens_of(pairs_of(core))
    other = {text: alt for text, tokens in pinyin.items() if (alt := other_reading(text, tokens))}
    return NameForms(core=core, short=text_of(short_pairs) or core, brand=text_of(brand_pairs) or core,
                     aliases=tuple(aliases), partials=tuple(text_of(p) for p in partials), regions=regions,
                     pinyin=pinyin, other_pinyin=other)


def _alias_pairs(alias: str, known: dict[str, str]) -> Pairs:
    """A 简称 is mostly characters of the legal name (恒达机械 from 恒达精密机械): reuse their
    readings instead of a second pypinyin call, which is most of the cost of `forms`."""
    if all(c in known for c in alias):
        return [(c, known[c]) for c in alias]
    return pairs_of(alias)


def _regions(places: list[str]) -> tuple[str, ...]:
    """Places without 省/市/区 so 深圳市 in a name and 深圳 in the region column agree."""
    out = []
    for place in places:
        place = _squash(unicodedata.normalize("NFKC", place).lower())
        for suffix in PLACE_SUFFIXES + ("新区", "区", "县", "镇"):
            if place.endswith(suffix) and len(place) > len(suffix) + 1:
                place = place[:-len(suffix)]
                break
        if place and place not in out:
            out.append(place)
    return tuple(out)


# -- the query side --------------------------------------------------------------------------------


@dataclass(frozen=True)
class QueryVariant:
    """One reading of what the rep typed. `regions` are places it named: cut off the text when
    `stripped` (深圳腾讯 → 腾讯), or in brackets. `penalty` is taken off every score it earns."""

    text: str
    tokens: str
    regions: tuple[str, ...] = ()
    stripped: bool = False
    penalty: float = 0.0


def query_variants(query: str) -> list[QueryVariant]:
    """As typed (cleaned), without the org form, and without a leading/trailing place."""
    text, bracketed = clean(query)
    if not text:
        return []
    pairs = pairs_of(text)
    bracket_regions = _regions(bracketed)
    variants = [QueryVariant(text, tokens_of(pairs), regions=bracket_regions)]
    core, removed = strip_org_forms(pairs)
    penalty = 3.0 if INFORMATIVE_ORG_FORMS & set(removed) else 0.0
    core = drop_place_suffix_chars(core)
    variants.append(QueryVariant(text_of(core), tokens_of(core), regions=bracket_regions, penalty=penalty))
    short, places = strip_places(core)
    regions = _regions(places + bracketed)
    if places:
        variants.append(QueryVariant(text_of(short), tokens_of(short), regions=regions, stripped=True,
                                     penalty=penalty))
    brand = strip_industry(short)
    if len(brand) < len(short):
        # 顺风快递 → 顺风 ≈ 顺丰: worth offering, but the trade word was a real hint (恒达物流 is not
        # 恒达机械), so this reading alone can never reach ACCEPT.
        variants.append(QueryVariant(text_of(brand), tokens_of(brand), regions=regions, stripped=bool(places),
                                     penalty=penalty + BRAND_GUESS))
    unique: dict[str, QueryVariant] = {}
    for variant in variants:
        unique.setdefault(variant.text, variant)
    return list(unique.values())
