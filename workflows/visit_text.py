"""A follow-up message taken apart: `拜访 腾迅 聊了报价 下周三再跟进` → method, customer, what was said.

People type it three ways, and all three must land on the same customer:
- spaced, the documented way: `拜访 腾讯 聊了报价`;
- without spaces, one thumb on a phone: `拜访美团聊了合作方案后天上午再联系` — the customer's name is
  found at the start of the text with the matching index, the rest is the note;
- with the little words of speech in front: `打电话给美团 聊了续约`, `拜访了腾讯`, `跟进一下招行`.

The handler (handlers/crm.py) and the understanding step (workflows/understanding.py) both use this,
so what the public test set measures is what the chat does.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session

from workflows import customers
from workflows.matching import MatchResult

METHODS = {"拜访": "拜访", "跟进": "拜访", "见面": "拜访", "电话": "电话", "打电话": "电话", "微信": "微信"}
# Words of speech between the method and the name: 打电话「给」美团, 拜访「了」腾讯, 跟进「一下」招行.
CONNECTORS = ("一下", "了一下", "了", "给", "跟", "和", "与", "去", "到", "找", "下")
LONGEST_NAME = 16  # characters tried as a name at the start of unspaced text
SHORTEST_NAME = 2


@dataclass(frozen=True)
class VisitText:
    method: str  # 拜访 | 电话 | 微信
    query: str  # the words taken as the customer's name ("" if none)
    content: str  # what was said, with any next time still in it
    found: MatchResult | None  # the matcher's decision on `query`


def split_method(text: str) -> tuple[str, str]:
    """(method, the rest): the longest method word at the start; 拜访 when there is none."""
    for word in sorted(METHODS, key=len, reverse=True):
        if text.startswith(word):
            return METHODS[word], text[len(word):].strip()
    return "拜访", text


def split(session: Session, text: str, *, owner_id: int) -> VisitText:
    """Take `text` (starting with a method word, or not) apart. The name is the first word when it
    names a customer (or could: the card then offers the choice); otherwise the best-named start of
    the text. Little words in front of
    the name (给, 了, 一下) are dropped only when the text as typed names nobody: 和记黄埔 stays whole."""
    method, rest = split_method(text.strip())
    if not rest:
        return VisitText(method, "", "", None)
    match = Matcher(session, owner_id)
    first = _split_rest(match, method, rest)
    if first.found is not None and first.found.decision == "accept":
        return first
    stripped = _without_connectors(rest)
    if stripped != rest:
        second = _split_rest(match, method, stripped)
        if second.found is not None and second.found.decision != "create":
            return second
    return first


class Matcher:
    """The matching index and the asker's own customers, read once for the many tries of one text."""

    def __init__(self, session: Session, owner_id: int) -> None:
        self.index = customers.index(session)
        self.mine = customers.own_ids(session, owner_id)

    def __call__(self, query: str) -> MatchResult:
        return self.index.match(query, prefer=self.mine)


def _split_rest(match: Matcher, method: str, rest: str) -> VisitText:
    first, _, after = rest.partition(" ")
    found = match(first)
    if found.decision != "create" or len(first) <= SHORTEST_NAME:
        return VisitText(method, first, after.strip(), found)  # the first word names someone
    leading = find_leading(match, first)
    if leading is None:
        return VisitText(method, first, after.strip(), found)
    named, end = leading
    content = " ".join(part for part in (first[end:].strip(), after.strip()) if part)
    return VisitText(method, first[:end], content, named)


def find_leading(match: "Matcher", text: str) -> tuple[MatchResult, int] | None:
    """The customer named at the start of `text` and where the name ends: the best accepted match
    among the text's starts (a tie goes to the longer name); failing that, the best start worth
    offering as a choice. None when no start names anyone."""
    best: tuple[float, int, MatchResult] | None = None
    offer: tuple[float, int, MatchResult] | None = None
    for end in range(min(len(text) - 1, LONGEST_NAME), SHORTEST_NAME - 1, -1):
        found = match(text[:end])
        if not found.candidates:
            continue
        score = found.candidates[0].score
        if found.decision == "accept" and (best is None or score > best[0]):
            best = (score, end, found)
        elif found.decision == "choose" and (offer is None or score > offer[0]):
            offer = (score, end, found)
    chosen = best or offer
    return (chosen[2], chosen[1]) if chosen else None


def _without_connectors(rest: str) -> str:
    for word in CONNECTORS:
        if rest.startswith(word) and len(rest) > len(word):
            return rest[len(word):].lstrip()
    return rest
