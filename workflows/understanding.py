"""What did they mean? Free text → an intent, the command it stands for, and how sure we are.

Typed commands (`报销 出租车 86.5`, `拜访 腾讯 …`) are the fast path and never reach this module: the
router takes them first. What does reach it is the way people actually type on a phone:

    我要报一下上周出差的住宿费 480   → 报销 上周出差的住宿费 480          (a phrase for 报销)
    保销 打车 30 / 请价 周五 / bx 30  → 报销 打车 30 / 请假 周五 / 报销 30  (the command word mistyped:
                                                                  same sound, or its pinyin letters)
    想请个假 下周二 孩子开家长会      → 请假 下周二 孩子开家长会
    我的客户有哪些 / 有要我批的吗     → 我的客户 / 我的审批                   (a list, said in words)
    今天去了美团 聊了续约             → 拜访 美团 聊了续约                    (a visit told as a story)
    美团的地址在哪 / 美团最近谁在跟   → a question about a customer
    多谢 / 收到 / 在吗                → small talk: a short kind line

`understand` is pure text (no database): the caller (handlers/understand.py) checks what needs the
customer list and turns the result into a reply. `sure` says whether the caller may go straight on:
a guess that would file something at once (a visit) is asked about first, with a button; a request
only becomes a draft with its own 提交, and lists and help change nothing, so those go straight on.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache

from pypinyin import Style, pinyin

# Command words whose typos are forgiven, and what they stand for. Sound-alike typing (保销, 请价,
# 摆放) is what the input methods produce; the pinyin letters (baoxiao, bx) are what people type
# when they do not bother to pick a character.
COMMAND_WORDS = {
    "报销": "报销", "请假": "请假", "出差": "出差", "采购": "采购", "拜访": "拜访", "电话": "电话",
    "审批": "我的审批", "跟进": "拜访", "公海": "公海", "帮助": "帮助", "菜单": "帮助", "领取": "领取",
    "撤销": "撤销", "催办": "催办", "客户": "我的客户", "申请": "申请", "微信": "微信",
}
# A mistyped word that then files something at once is confirmed before it acts.
ACTS_AT_ONCE = frozenset({"拜访", "电话", "微信", "领取", "撤销", "催办"})
INITIALS = {"bx": "报销", "qj": "请假", "cc": "出差", "cg": "采购", "bf": "拜访", "sp": "审批", "bz": "帮助"}

SMALL_TALK = {
    "thanks": ("谢谢", "多谢", "谢了", "谢啦", "感谢", "非常感谢", "太感谢了", "辛苦了", "辛苦", "thanks",
               "thank you", "thx", "谢谢你", "谢谢啊", "谢谢了", "多谢了", "麻烦了", "麻烦你了"),
    "ok": ("收到", "好的", "好", "好滴", "嗯", "嗯嗯", "ok", "okay", "知道了", "明白", "明白了", "行", "可以",
           "没问题", "了解", "👌", "好嘞", "好吧", "懂了", "对", "是的"),
    "anyone": ("在吗", "在不在", "有人吗", "在么", "在嘛", "你好在吗", "喂", "hello?", "小助手"),
    "greeting": ("早", "早上好", "早安", "上午好", "下午好", "晚上好", "中午好"),
    "bye": ("再见", "拜拜", "晚安", "下班了", "bye", "88"),
}
SMALL_TALK_REPLY = {
    "thanks": "不客气！还有事随时找我。",
    "ok": "好的 👌",
    "anyone": "在的！想办什么事？",
    "greeting": "您好！今天想办什么事？",
    "bye": "好的，辛苦了，回头见！",
}
# Spoken particles at the end that change nothing: 在吗啊, 谢谢哈.
_TAIL_PARTICLES = "啊呀呢吧哦哈啦嘛哇~～!！。.,，?？ "

# Lists and help, said in words. Matched against the whole text.
LIST_PHRASES: tuple[tuple[str, re.Pattern], ...] = tuple((intent, re.compile(p)) for intent, p in (
    ("我的客户", r"^(?:帮我)?(?:查|看|看看|查查|查一下|看一下|列一下|列出)?(?:一下)?(?:我的|我)(?:全部|所有)?客户"
             r"(?:有哪些|有哪几家|有几个|有多少|都有谁|都有哪些|都是谁|是哪些|列表|名单|呢|都有啥)?[吗呢]?$"),
    ("我的客户", r"^我(?:名下|手上|手里)?(?:都|一共|总共)?(?:有|负责|跟的|手上有|手里有)(?:哪些|几个|多少|哪几家|什么)客户[吗呢]?$"),
    ("我的审批", r"^(?:有|还有)?(?:没有|什么|哪些|啥|几个|多少)?(?:要|需要|等|待)我?(?:审批|批|审|签字|签)的?"
             r"(?:吗|不|没|单子|申请|东西)?[吗呢]?$"),
    ("我的审批", r"^(?:待|等)(?:我)?(?:审批|批|审)的?(?:有哪些|单子|申请)?[吗呢]?$"),
    ("我的审批", r"^(?:我的|我)?(?:待办|审批)(?:有哪些|列表)?$"),
    ("我的申请", r"^我(?:提交|申请|交|报)的(?:单子|申请|报销|请假)?(?:呢|有哪些|怎么样了|到哪了)?$"),
    ("我的申请", r"^(?:我的|我|我那个|我那)?(?:报销|申请|单子|请假|出差|采购)(?:单)?(?:到哪了|到哪一步了?|批了没有?|批了吗|批下来没有?|"
             r"批下来了吗|审批到哪了?|进度|怎么样了|通过了吗|通过没有?)[吗呢]?$"),
    # 我上周提的出差申请审到哪了: a question about one's own request, though it names a request word
    ("我的申请", r"^我.{0,12}?(?:申请|单子|报销|请假|出差|采购)(?:单|申请)?(?:审|批|走)?到哪(?:了|一步了?|儿了)?[吗呢]?$"),
    ("今天跟进", r"^今天(?:我)?(?:要|该|需要|得)?(?:跟进|联系|拜访|跟)(?:谁|哪些|哪几家|什么|哪个)(?:客户)?[吗呢]?$"),
    ("今天跟进", r"^今天(?:有)?(?:什么|哪些|啥)?(?:要|该|需要)(?:跟进|联系|拜访)的?(?:客户)?[吗呢]?$"),
    ("本周拜访", r"^(?:我)?(?:这周|本周|这星期|这个星期|这礼拜|这个礼拜)(?:我)?(?:都)?(?:拜访|跟进|去|见|跑)了?(?:哪些|哪几家|几家|多少|几个)"
             r"(?:家)?(?:客户)?[吗呢]?$"),
    ("公海", r"^公海(?:里)?(?:还有|有|有哪些|有什么|都有啥)?(?:客户)?(?:可以领|能领|可领)?(?:的)?[吗呢]?$"),
    ("帮助", r"^(?:这个|这)?(?:怎么用|怎么弄|怎么操作|如何操作|怎么办理|咋弄|咋操作|如何使用|咋用|你能做什么|你能干什么|你会什么|你会干什么|能干什么|能做什么|"
           r"有什么功能|不会用|教教我|使用说明|说明书|操作说明)[吗呢啊]?$"),
))

# A request said in words: the lead before the thing asked for, and the request word it stands for.
_LEAD = r"(?:我|你|帮我|帮忙|麻烦|麻烦你|请|请帮我|想|要|需要|得|能不能|可以|我想|我要|我需要|我得|我能|我们|咱们|部门|公司|\s)*"
REQUEST_PHRASES: tuple[tuple[str, re.Pattern], ...] = tuple((word, re.compile(p)) for word, p in (
    # 我要报一下上周出差的住宿费 480 · 帮我报个打车费 30 · 报下餐费 120
    ("报销", _LEAD + r"(?:报销|报一下|报个|报下|报了|报)(?:一下|下)?(?P<rest>.*)$"),
    # 帮我把这个月的话费报了 一百九十九
    ("报销", _LEAD + r"把(?P<pre>.+?)(?:报销|报)(?:了|一下|掉)?(?P<rest>.*)$"),
    # 打车费 30 能报吗 · 住宿费480报销一下
    ("报销", r"^(?P<rest>.+?)(?:要|想|能|可以|怎么)?(?:报销|报)(?:一下|吗|不|么)?$"),
    # 想请个假 下周二 孩子开家长会 · 明天请一天假 · 我下周一想请假
    ("请假", r"^(?P<pre>.*?)" + _LEAD + r"(?:请个|请一下|请[一两二三四五六七八九十半\d]{1,2}天(?:的)?|请|休个|休)(?P<kind>年|病|事|婚|产|丧|调休)?假"
             r"(?P<rest>.*)$"),
    # 病假 礼拜一 发烧了 · 想请下周一到周二的事假
    ("请假", r"^(?P<kind>年|病|事|婚|产|丧|调休)假(?P<rest>.*)$"),
    ("请假", r"^(?P<pre>.*?)" + _LEAD + r"请(?P<rest>.{2,20}?)的?(?P<kind>年|病|事|婚|产|丧|调休)假$"),
    # 下周二去上海出差 · 要出差 北京 周三到周五
    ("出差", r"^(?P<pre>.*?)" + _LEAD + r"(?:去|到)(?P<place>[\u4e00-\u9fff]{2,6}?)出(?:个|一趟|趟)?差(?P<rest>.*)$"),
    ("出差", r"^(?P<pre>.*?)" + _LEAD + r"出(?:个|一趟|趟)?差(?P<rest>.*)$"),
    # 想买两台笔记本 12000 · 要采购打印纸
    ("采购", _LEAD + r"(?:采购|购买|买)(?P<rest>.+)$"),
))
_NEEDS_AMOUNT = re.compile(r"\d|[一二两三四五六七八九十百千万块元]")

# A visit or call told as a story: 今天去了美团 聊了续约 · 刚给美团打了电话 说下周签 · 见了腾讯的李总.
_WHEN_SAID = r"(?:今天|刚才|刚刚|刚|昨天|前天)?(?:上午|下午|中午|早上|晚上)?"
VISIT_PHRASES: tuple[tuple[str, re.Pattern], ...] = tuple((method, re.compile(p)) for method, p in (
    ("电话", r"^" + _WHEN_SAID + r"(?:我)?(?:给|跟|和)(?P<name>[^\s，,]+?)(?:打了?|通了?)(?:个|一个|一通)?电话(?P<rest>.*)$"),
    ("电话", r"^" + _WHEN_SAID + r"(?:我)?(?:电话|打电话)(?:联系了|给了?|打给了?)(?P<name>[^\s，,]+)(?P<rest>.*)$"),
    ("微信", r"^" + _WHEN_SAID + r"(?:我)?(?:微信|发微信)(?:联系了|给了?)(?P<name>[^\s，,]+)(?P<rest>.*)$"),
    ("拜访", r"^" + _WHEN_SAID + r"(?:我)?(?:刚)?(?:从)(?P<name>[^\s，,]+?)(?:那边|那里|公司)?(?:出来|回来)(?:了)?"
             r"(?:[\s，,]+(?P<rest>.*))?$"),
    ("拜访", r"^" + _WHEN_SAID + r"(?:我)?(?:在)(?P<name>[^\s，,]+?)(?:那边|那里|公司)?(?P<glued>(?:坐了|待了|呆了|开了|谈了|聊了|见了).*)$"),
    ("拜访", r"^" + _WHEN_SAID + r"(?:我)?(?:去了|去|到|跑了|见了|拜访了|走访了|见)(?:一)?(?:趟)?(?P<name>[^\s，,]+?)"
             r"(?:那边|那里|公司)?(?:[\s，,]+(?P<rest>.*)|(?P<glued>(?:聊|谈|沟通|见|开会|签|送|给|和|跟).*))?$"),
))

# Questions about one customer: 美团的地址在哪 · 美团最近谁在跟 · 腾讯电话多少 · 招行怎么样了.
QUESTION_PHRASES: tuple[tuple[str, re.Pattern], ...] = tuple((ask, re.compile(p)) for ask, p in (
    ("address", r"^(?P<name>.+?)的?(?:地址|在哪里|在哪儿|在哪|位置)(?:在哪|是啥|是什么|在哪里|多少)?[吗呢]?$"),
    ("owner", r"^(?P<name>.+?)(?:最近|现在|目前)?(?:是)?(?:谁在跟|谁跟|谁负责|谁的客户|归谁|谁跟进|谁管|是谁的)"
              r"(?:的|进)?(?:客户)?[吗呢]?$"),
    ("phone", r"^(?P<name>.+?)的?(?:电话|手机|联系方式|联系人)(?:号码)?(?:是|多少|是多少|有吗|号码|是谁|是哪位|发我一下|发我下|发一下|发我|给我一下|给我)?[吗呢]?$"),
    ("status", r"^(?P<name>.+?)(?:那边|那里)?(?:现在|最近|目前)?(?:怎么样了|怎么样|进展如何|进展|什么进度|啥进度|进度如何|进度怎么样|跟到哪了|跟得怎么样|情况|什么情况|啥情况)[吗呢]?$"),
))


@dataclass(frozen=True)
class Understood:
    """What a message means. `intent` is a command word (报销, 我的客户, 拜访 …), or `small_talk`,
    `customer.ask`, or "" (not understood). `command` is the text the router takes for it."""

    intent: str
    command: str = ""
    sure: bool = True  # False: ask before acting (a guess that would file something at once)
    how: str = ""  # command | typo | phrase | story | question | small_talk
    slots: dict = field(default_factory=dict)  # small_talk: kind; customer.ask: name, ask; a story: name (or said, the split)


NOT_UNDERSTOOD = Understood("")


def understand(text: str) -> Understood:
    """The best reading of `text`, trying the cheapest and surest readings first."""
    plain = _plain(text)
    if not plain:
        return NOT_UNDERSTOOD
    for reading in (_small_talk, _list_phrase, _cleaned_command, _typo, _request_phrase, _visit_story, _question):
        found = reading(plain)
        if found is not None:
            return found
    return NOT_UNDERSTOOD


def list_phrase(text: str) -> str | None:
    """The list or help command a whole sentence asks for (我的客户有哪些 → 我的客户), else None.
    Asked before the prefix commands: 报销到哪一步了 is 我的申请, not an expense."""
    found = _list_phrase(_plain(text))
    return found.command if found else None


def small_talk_reply(kind: str) -> str:
    return SMALL_TALK_REPLY.get(kind, SMALL_TALK_REPLY["ok"])


# -- readings ---------------------------------------------------------------------------------------


def _small_talk(text: str) -> Understood | None:
    """A line of small talk, or a few run together (好的收到, 收到谢谢): the last one is answered."""
    kinds = _small_talk_words(text) or _small_talk_words(text.rstrip(_TAIL_PARTICLES) or text)
    return Understood("small_talk", how="small_talk", slots={"kind": kinds[-1]}) if kinds else None


_SMALL_TALK_KIND = {word: kind for kind, words in SMALL_TALK.items() for word in words}


def _small_talk_words(text: str) -> list[str]:
    """The kinds of small talk `text` is made of, longest words first; [] if anything else is in it."""
    if not text:
        return []
    if text in _SMALL_TALK_KIND:
        return [_SMALL_TALK_KIND[text]]
    for end in range(min(len(text) - 1, 6), 0, -1):
        kind = _SMALL_TALK_KIND.get(text[:end])
        rest = _small_talk_words(text[end:].lstrip(_TAIL_PARTICLES)) if kind else []
        if rest:
            return [kind, *rest]
    return []


def _list_phrase(text: str) -> Understood | None:
    bare = text.rstrip(_TAIL_PARTICLES) or text
    for intent, pattern in LIST_PHRASES:
        if pattern.match(bare):
            return Understood(intent, intent, how="phrase")
    return None


def _cleaned_command(text: str) -> Understood | None:
    """A command once the fillers are gone (嗯拜访一下华为，…): the person's own words, so it is sure."""
    word = next((w for w in sorted(COMMAND_WORDS, key=len, reverse=True) if text.startswith(w)), None)
    if word is None or COMMAND_WORDS[word] != word:
        return None  # 客户…, 审批… alone are other commands' words, read elsewhere
    return Understood(word, text, how="cleaned")


def _typo(text: str) -> Understood | None:
    """A mistyped command word at the start: same sound (保销, 请价, 摆放), or its pinyin letters."""
    head, _, rest = text.partition(" ")
    if head.isascii() and head.isalpha():
        word = INITIALS.get(head) or _by_letters(head)
        return _retyped(word, rest) if word else None
    if any(ch.isascii() and ch.isalpha() for ch in head):  # 审pi: a character, then the letters
        word = _by_letters(head)
        return _retyped(word, rest) if word else None
    for length in (2, 3):
        if len(head) < length:
            break
        word = _by_sound(head[:length])
        if word:
            return _retyped(word, (head[length:] + " " + rest).strip())
    return None


def _retyped(word: str, rest: str) -> Understood:
    intent = COMMAND_WORDS[word]
    command = f"{intent} {rest}".strip()
    return Understood(intent, command, sure=intent not in ACTS_AT_ONCE, how="typo")


def _request_phrase(text: str) -> Understood | None:
    for word, pattern in REQUEST_PHRASES:
        m = pattern.match(text)
        if m is None:
            continue
        parts = m.groupdict()
        kind = parts.get("kind") and parts["kind"] + "假"  # 请两天年假: the kind of leave stays
        said = (parts.get("place"), kind, parts.get("pre"), parts.get("rest"))
        rest = " ".join(p.strip(" ，,。") for p in said if p and p.strip(" ，,。"))
        if word == "报销" and not _NEEDS_AMOUNT.search(rest) and "报销" not in text:
            continue  # 报 alone is too common a character: only with an amount is it an expense
        if word == "采购" and (len(rest) < 2 or not _NEEDS_AMOUNT.search(rest)):
            continue  # 我想买点吃的 is not a purchase request: only with a price is it one
        return Understood(word, f"{word} {rest}".strip(), how="phrase")
    return None


def _visit_story(text: str) -> Understood | None:
    for method, pattern in VISIT_PHRASES:
        m = pattern.match(text)
        if m is None:
            continue
        name = m.group("name").strip()
        said = " ".join(p.strip(" ，,") for p in (m.groupdict().get("glued"), m.groupdict().get("rest")) if p)
        command = f"{method} {name} {said}".strip()
        return Understood(method, command, sure=False, how="story", slots={"name": name})
    return None


def _question(text: str) -> Understood | None:
    bare = text.rstrip("?？。.!！ ")
    for ask, pattern in QUESTION_PHRASES:
        m = pattern.match(bare)
        name = m.group("name").strip() if m else ""
        for _ in range(3):  # 华为那个联系人 → 华为
            name = re.sub(r"(?:那边|那里|那个|这边|这个|的|联系人|负责人)$", "", name)
        if 1 < len(name) <= 20:  # 抖音那边是谁负责的: the name is 抖音
            return Understood("customer.ask", how="question", slots={"name": name, "ask": ask})
    return None


# -- sounds -----------------------------------------------------------------------------------------


@lru_cache(maxsize=4096)
def _readings(text: str) -> tuple[frozenset[str], ...]:
    """Every toneless reading of each character on its own (差 is cha, chai, ci; 查 is cha, zha):
    read as a phrase, 出差 would only be chu chai, and 出岔 (chu cha) would not sound like it."""
    return tuple(frozenset(pinyin(ch, style=Style.NORMAL, heteronym=True, errors=lambda s: [s])[0]) for ch in text)


def _by_sound(head: str) -> str | None:
    """The command word that `head` sounds like (a shared reading for every character), if any."""
    if not all("\u4e00" <= ch <= "\u9fff" for ch in head):
        return None
    heard = _readings(head)
    for word in COMMAND_WORDS:
        if len(word) == len(head) and word != head and all(a & b for a, b in zip(heard, _readings(word))):
            return word
    return None


def _by_letters(typed: str) -> str | None:
    """baoxiao → 报销, shenpi → 审批, 审pi → 审批: the word's pinyin typed without picking (all of)
    its characters. A character typed is spelled by any of its readings."""
    spelled = {"".join(combo) for combo in _spellings(typed)} if not typed.isascii() else {typed}
    for word in COMMAND_WORDS:
        if spelled & {"".join(combo) for combo in _spellings(word)}:
            return word
    return None


@lru_cache(maxsize=256)
def _spellings(word: str) -> tuple[tuple[str, ...], ...]:
    """Every way to spell `word` in pinyin, letters kept as typed."""
    options: list[tuple[str, ...]] = [()]
    for ch, readings in zip(word, _readings(word)):
        spellings = [ch] if ch.isascii() else sorted(readings)
        options = [combo + (r,) for combo in options for r in spellings][:64]
    return tuple(options)


# Spoken fillers at the start of a clause (嗯，那个，就是…): they carry nothing.
_FILLERS = re.compile(r"(^|[\s，,。；;！!？?])(?:嗯+|呃+|额|啊|哦|那个|这个那个|就是说|就是|然后)(?=[\s，,。；;]|[^\s，,。；;])")
_CLAUSE_MARKS = re.compile(r"[，,；;、]+")


def _plain(text: str) -> str:
    """Width, case and spacing evened out; fillers dropped; a voice transcript's commas become the
    spaces a typist would have put (报销，出租车，八十六块五。 → 报销 出租车 八十六块五)."""
    plain = unicodedata.normalize("NFKC", text or "").strip().lower()
    for _ in range(3):  # 嗯，那个，就是: one filler uncovers the next
        plain = _FILLERS.sub(r"\1", plain)
    plain = _CLAUSE_MARKS.sub(" ", plain).strip(" 。.")
    return re.sub(r"\s+", " ", plain).strip()
