"""Which customer did the rep mean? Name matching per docs/architecture.md §4.

    exact legal name ─────────────────────────────────────────────────────────────► accept
    query ─► variants (as typed, no org form, no place) ─► stage 1: idf-weighted inverted index over
    characters and syllables → ≤ 300 candidates (+ exact 简称 hits) ─► stage 2: per form,
    max(character ratio, syllable ratio − 6, 88 for an abbreviation) − variant penalty ─► policy

Policy: accept at ≥ 90 when 3 ahead of the next; otherwise offer the top 3 when the best is ≥ 70
(ties within 3 are broken by `prefer`: the rep's own and recent customers); below 70, offer to create.

The index lives in memory (a few ms per query at 100k customers) and is built from the forms stored
on each customer (`Customer.match_forms`), which `refresh_forms` writes on create and rename.
"""

from __future__ import annotations

import copy
import json
import math
import re
import sys
import threading
from array import array
from dataclasses import dataclass, field
from typing import Iterable, NamedTuple

import numpy as np
from rapidfuzz import fuzz, process
from sqlalchemy import select
from sqlmodel import Session

from storage.models import Customer
from workflows.names import NameForms, QueryVariant, exact_key, forms, is_place, query_variants, symbols

FORMS_VERSION = 2  # bump when names.py changes what it produces; stale rows are recomputed on load

ACCEPT = 90.0  # at least this …
LEAD = 3.0  # … and this far ahead of the next candidate
CHOOSE = 70.0  # below this, nothing is close enough to offer
SYLLABLE_HANDICAP = 6.0  # same sound, other characters: slightly less sure than the same characters
ABBREVIATION = 88.0  # 招行 ⊂ 招商银行: good enough to offer, never to accept on its own
MAX_ABBREVIATION = 5  # abbreviations are short; longer queries are names
CANDIDATES = 300  # stage-1 shortlist
TOP = 3  # buttons on a card

# Cutting a place off the query is a guess; it must not beat a name that matches as typed.
PLACE_CUT = 2.0  # the customer is in that place (北京华美教育 vs 北京市朝阳区华美教育: ask)
PLACE_UNKNOWN = 6.0  # the customer's places are unknown
PLACE_OTHER = 13.0  # the customer is somewhere else: at most "choose"
BRACKET_OTHER = 10.0  # 腾讯科技(北京) typed, 腾讯科技(深圳) stored

Decision = str  # "accept" | "choose" | "create"


class Candidate(NamedTuple):
    customer_id: int
    score: float
    name: str


@dataclass(frozen=True)
class MatchResult:
    query: str
    decision: Decision
    candidates: list[Candidate] = field(default_factory=list)  # best first, at most TOP

    @property
    def customer_id(self) -> int | None:
        """The accepted customer, else None."""
        return self.candidates[0].customer_id if self.decision == "accept" else None


# -- stored forms ------------------------------------------------------------------------------------


def split_short_names(short_names: str) -> list[str]:
    """Customer.short_names is comma-separated; people also type ，、； between 简称."""
    return [s for s in re.split(r"[,，、;；\s]+", short_names or "") if s]


def _source(name: str, short_names: str, region: str) -> list[str]:
    return [name, short_names or "", region or ""]


def refresh_forms(customer: Customer) -> NameForms:
    """Recompute and store the customer's matching forms. Call on create and on any change to name,
    short_names or region (the caller commits). Returns the forms for updating a live index."""
    computed = forms(customer.name, split_short_names(customer.short_names), region=customer.region or "")
    customer.match_forms = forms_json(customer.name, customer.short_names, customer.region, computed)
    return computed


def forms_json(name: str, short_names: str, region: str, computed: NameForms) -> str:
    """What Customer.match_forms holds: the forms, FORMS_VERSION, and the fields they were computed
    from, so a row renamed behind our back (SQL, admin page) is noticed and recomputed on load."""
    payload = {"v": FORMS_VERSION, "src": _source(name, short_names, region), **computed.to_dict()}
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


def stored_forms(name: str, short_names: str, region: str, match_forms: str) -> NameForms:
    """The stored forms if they are current for these fields, else freshly computed ones (a row
    written before migration 0003, by an older FORMS_VERSION, or renamed without a refresh)."""
    data = _current(match_forms, name, short_names, region)
    if data is not None:
        try:
            return NameForms.from_dict(data)
        except (KeyError, TypeError, ValueError):
            pass  # damaged: recompute below
    return forms(name, split_short_names(short_names), region=region or "")


def _current(match_forms: str, name: str, short_names: str, region: str) -> dict | None:
    """The parsed payload when it was computed by this FORMS_VERSION from exactly these fields."""
    try:
        data = json.loads(match_forms) if match_forms else None
    except ValueError:
        return None
    if not isinstance(data, dict) or data.get("v") != FORMS_VERSION:
        return None
    return data if data.get("src") == _source(name, short_names, region) else None


def refresh_stale_forms(session: Session, batch: int = 1000) -> int:
    """Backfill: store forms on every customer whose stored forms are missing or stale. Returns how
    many rows changed; the caller commits."""
    changed = 0
    last_id = 0
    while True:
        customers = session.execute(select(Customer).where(Customer.id > last_id).order_by(Customer.id)
                                    .limit(batch)).scalars().all()
        if not customers:
            return changed
        for customer in customers:
            if _current(customer.match_forms, customer.name, customer.short_names, customer.region) is None:
                refresh_forms(customer)
                changed += 1
        last_id = customers[-1].id
        session.flush()


def load_index(session: Session) -> "CustomerIndex":
    """An index over every customer, from the stored forms (recomputing only stale ones)."""
    result = session.execute(select(Customer.id, Customer.name, Customer.short_names, Customer.region,
                                    Customer.match_forms))
    return CustomerIndex((cid, name, stored_forms(name, short, region, stored))
                         for cid, name, short, region, stored in result)


# -- the index ---------------------------------------------------------------------------------------

_SEP = "\x1f"  # joins a row's forms into one string: one object per row instead of one per form


class CustomerIndex:
    """In-memory matcher over (customer id, legal name, forms). Thread-safe; add/update/remove keep it
    in step with the database without a rebuild.

    Rows are stored column-wise (parallel lists indexed by row number) and each row's forms as one
    joined string: at 100k customers per-object overhead, not the text, is what costs memory.
    """

    def __init__(self, rows: Iterable[tuple[int, str, NameForms]] = ()) -> None:
        self._lock = threading.Lock()
        self._reset()
        for customer_id, name, name_forms in rows:
            self._insert(customer_id, name, *_encode(name_forms))

    def _reset(self) -> None:
        self._ids = array("q")  # row number → customer id; -1 once removed
        self._names: list[str] = []  # legal name, for the card
        self._texts: list[str] = []  # forms joined by _SEP, 简称 first
        self._sounds: list[str] = []  # the same forms as syllable symbols
        self._form_counts = array("H")  # forms per row
        self._alias_counts = array("H")  # how many of them are 简称 (they come first)
        # Each row's regions as a number into a table of the distinct tuples (a few hundred places at
        # most), so the place penalty is worked out once per distinct tuple, not once per candidate.
        self._region_ids = array("i")
        self._region_table: list[tuple[str, ...]] = [()]
        self._region_number: dict[tuple[str, ...], int] = {(): 0}
        self._row_of: dict[int, int] = {}  # customer id → row number
        self._postings: dict[str, array] = {}  # character or syllable symbol → row numbers
        self._dead = array("i")  # removed row numbers, still in postings until compaction
        # Exact lookups keyed by hash (verified against the row) to avoid a second copy of every name.
        self._legal: dict[int, tuple[int, ...]] = {}
        self._alias: dict[int, tuple[int, ...]] = {}

    def __len__(self) -> int:
        return len(self._row_of)

    def __contains__(self, customer_id: object) -> bool:
        return customer_id in self._row_of

    # -- changes -------------------------------------------------------------------------------------

    def add(self, customer_id: int, name: str, name_forms: NameForms) -> None:
        """Add a customer, or replace it if already indexed (a rename)."""
        encoded = _encode(name_forms)  # pinyin symbols outside the lock
        with self._lock:
            self._insert(customer_id, name, *encoded)

    update = add

    def remove(self, customer_id: int) -> None:
        with self._lock:
            self._remove(customer_id)
            # Removed rows still sit in postings; rebuild once they are a quarter of the index.
            if len(self._dead) > max(1000, len(self._ids) // 4):
                self._compact()

    def _insert(self, customer_id: int, name: str, texts: list[str], sounds: list[str], aliases: int,
                regions: tuple[str, ...]) -> None:
        self._remove(customer_id)  # a rename replaces the row
        number = len(self._ids)
        self._ids.append(customer_id)
        self._names.append(name)
        self._texts.append(sys.intern(_SEP.join(texts)))  # interned: brands and 简称 repeat
        self._sounds.append(sys.intern(_SEP.join(sounds)))
        self._form_counts.append(len(texts))
        self._alias_counts.append(aliases)
        self._region_ids.append(self._region_id(regions))
        self._row_of[customer_id] = number
        for token in _tokens(texts, sounds):
            self._postings.setdefault(token, array("i")).append(number)
        _put(self._legal, hash(exact_key(name)), customer_id)
        for alias in texts[:aliases]:
            _put(self._alias, hash(alias), customer_id)

    def _remove(self, customer_id: int) -> None:
        number = self._row_of.pop(customer_id, None)
        if number is None:
            return
        _drop(self._legal, hash(exact_key(self._names[number])), customer_id)
        for alias in self._aliases_of(number):
            _drop(self._alias, hash(alias), customer_id)
        self._ids[number] = -1
        self._names[number] = self._texts[number] = self._sounds[number] = ""
        self._region_ids[number] = 0
        self._dead.append(number)

    def _region_id(self, regions: tuple[str, ...]) -> int:
        number = self._region_number.get(regions)
        if number is None:
            number = self._region_number[regions] = len(self._region_table)
            self._region_table.append(regions)
        return number

    def copy(self) -> "CustomerIndex":
        """An independent index with the same rows: a bulk import adds its file's rows to a copy of the
        shared index and checks every row against both at once, leaving the shared one untouched."""
        twin = CustomerIndex()
        with self._lock:
            for name in ("_ids", "_names", "_texts", "_sounds", "_form_counts", "_alias_counts", "_region_ids",
                         "_region_table", "_region_number", "_row_of", "_dead", "_legal", "_alias"):
                setattr(twin, name, copy.copy(getattr(self, name)))
            twin._postings = {token: array("i", rows) for token, rows in self._postings.items()}
        return twin

    def _aliases_of(self, number: int) -> list[str]:
        return self._texts[number].split(_SEP)[:self._alias_counts[number]]

    def _compact(self) -> None:
        live = [(self._ids[n], self._names[n], self._texts[n].split(_SEP), self._sounds[n].split(_SEP),
                 self._alias_counts[n], self._region_table[self._region_ids[n]]) for n in self._row_of.values()]
        self._reset()
        for row in sorted(live):
            self._insert(*row)

    # -- matching ------------------------------------------------------------------------------------

    def match(self, query: str, *, prefer: Iterable[int] = frozenset(), candidates: int = CANDIDATES) -> MatchResult:
        """Decide what `query` names. `prefer`: customer ids that win ties (the rep's own, recent).
        `candidates`: the stage-1 shortlist; a caller that only wants close matches may ask for fewer."""
        prefer = frozenset(prefer)
        variants = query_variants(query)
        if not variants:
            return MatchResult(query, "create")
        with self._lock:
            exact = self._exact_legal(exact_key(query))
            if exact:
                return decide(query, [(100.0, self._ids[n], self._names[n]) for n in exact], prefer)
            numbers = self._shortlist(variants, candidates)
            scored = self._score(variants, numbers)
        return decide(query, scored, prefer)

    def _exact_legal(self, key: str) -> list[int]:
        """Rows whose legal name is exactly what was typed (brackets and width aside)."""
        rows = (self._row_of[cid] for cid in self._legal.get(hash(key), ()))
        return [n for n in rows if exact_key(self._names[n]) == key]

    def _shortlist(self, variants: list[QueryVariant], candidates: int = CANDIDATES) -> list[int]:
        """Stage 1: rows sharing the most informative characters and syllables with the query, plus
        every exact 简称 hit (美团 shares nothing with 北京三快在线科技)."""
        tokens = _tokens([v.text for v in variants], [symbols(v.tokens) for v in variants])
        numbers = set(self._top_rows(tokens, candidates))
        for variant in variants:
            for cid in self._alias.get(hash(variant.text), ()):
                number = self._row_of[cid]
                if variant.text in self._aliases_of(number):
                    numbers.add(number)
        return sorted(numbers)

    def _top_rows(self, tokens: set[str], candidates: int = CANDIDATES) -> list[int]:
        total = len(self._ids)
        if not total:
            return []
        live = max(1, len(self._row_of))
        scores = np.zeros(total, dtype=np.float32)
        for token in tokens:
            posting = self._postings.get(token)
            if posting:
                # idf: 科/技 are in half the names and say little; 腾 says a lot.
                weight = math.log(1.0 + live / len(posting))
                if len(posting) == total:  # 有限公司 is in every name: the same sum, without the gather
                    scores += weight
                else:
                    scores[np.frombuffer(posting, dtype=np.intc)] += weight
        if self._dead:
            scores[np.frombuffer(self._dead, dtype=np.intc)] = 0.0
        # Most rows share only a common character or two: drop them with one cheap comparison
        # before selecting (argpartition over 100k mostly-tied floats costs milliseconds).
        top = float(scores.max())
        if top <= 0.0:
            return []
        hits = np.flatnonzero(scores >= top * 0.25)
        if len(hits) <= candidates:
            return hits.tolist()
        best = np.argpartition(-scores[hits], candidates)[:candidates]
        return hits[best].tolist()

    def _score(self, variants: list[QueryVariant], numbers: list[int]) -> list[tuple[float, int, str]]:
        """Stage 2: every (variant, form) pair of the shortlist; the best per row, strongest first,
        cut to what the policy needs (all within LEAD of the best, and at least TOP + 1)."""
        if not numbers:
            return []
        texts = _SEP.join([self._texts[n] for n in numbers]).split(_SEP)
        sounds = _SEP.join([self._sounds[n] for n in numbers]).split(_SEP)
        counts = np.frombuffer(self._form_counts, dtype=np.uint16)[numbers].astype(np.intp)
        owner = np.repeat(np.arange(len(numbers)), counts)
        by_chars = process.cdist([v.text for v in variants], texts, scorer=fuzz.ratio, dtype=np.float32)
        by_sound = process.cdist([symbols(v.tokens) for v in variants], sounds, scorer=fuzz.ratio,
                                 dtype=np.float32) - SYLLABLE_HANDICAP
        best = np.maximum(by_chars, by_sound)
        heads = "".join([text[:1] or _SEP for text in texts])  # one character per text, even an empty one
        for i, variant in enumerate(variants):
            _abbreviations(variant.text, texts, heads, best[i])
        best -= self._penalties(variants, numbers)[:, owner]
        starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
        per_row = np.maximum.reduceat(best.max(axis=0), starts)
        order = np.argsort(-per_row, kind="stable")
        keep = max(TOP + 1, int(np.count_nonzero(per_row > per_row[order[0]] - LEAD)))
        return [(float(per_row[i]), self._ids[numbers[i]], self._names[numbers[i]]) for i in order[:keep].tolist()]

    def _penalties(self, variants: list[QueryVariant], numbers: list[int]) -> np.ndarray:
        """(variants × rows): what each variant's guesses cost against each customer."""
        out = np.zeros((len(variants), len(numbers)), dtype=np.float32)
        distinct = inverse = None
        for i, variant in enumerate(variants):
            out[i] = variant.penalty
            if variant.regions:
                if distinct is None:
                    ids = np.frombuffer(self._region_ids, dtype=np.intc)[numbers]
                    distinct, inverse = np.unique(ids, return_inverse=True)
                wanted = set(variant.regions)
                per_tuple = [_place_penalty(variant, wanted, self._region_table[n]) for n in distinct.tolist()]
                out[i] += np.asarray(per_tuple, dtype=np.float32)[inverse]
        return out


def _encode(name_forms: NameForms) -> tuple[list[str], list[str], int, tuple[str, ...]]:
    """Forms (简称 first), their syllable symbols, how many are 简称, and regions. A form with a
    heteronym appears twice, once per reading (the character comparison just repeats)."""
    texts = name_forms.texts()
    sounds = [symbols(name_forms.pinyin.get(t, "")) or t for t in texts]
    aliases = sum(1 for t in texts if t in name_forms.aliases)
    for text in list(texts):
        if text in name_forms.other_pinyin:
            texts.append(text)
            sounds.append(symbols(name_forms.other_pinyin[text]))
    return texts, sounds, aliases, tuple(sys.intern(r) for r in name_forms.regions)


def _put(table: dict[int, tuple[int, ...]], key: int, customer_id: int) -> None:
    table[key] = table.get(key, ()) + (customer_id,)


def _drop(table: dict[int, tuple[int, ...]], key: int, customer_id: int) -> None:
    rest = tuple(c for c in table.get(key, ()) if c != customer_id)
    if rest:
        table[key] = rest
    else:
        table.pop(key, None)


def _tokens(texts: Iterable[str], syllables: Iterable[str]) -> set[str]:
    """Index terms: every character and every syllable symbol (symbols are private-use code points,
    so they never collide with a character)."""
    out: set[str] = set()
    for text in texts:
        out.update(text)
    for syllable in syllables:
        out.update(syllable)
    return out


def _abbreviations(query: str, texts: list[str], heads: str, scores: np.ndarray) -> None:
    """招行 for 招商银行, 中石化 for 中国石油化工: same first character, the rest in order. A bare
    place (深圳) abbreviates every company named after it, so it abbreviates nothing."""
    if not 2 <= len(query) <= MAX_ABBREVIATION or is_place(query):
        return
    first = query[0]  # `heads`: each text's first character, searched in C rather than a Python loop
    for j in [m.start() for m in re.finditer(re.escape(first), heads)]:
        text = texts[j]
        if len(text) > len(query) and scores[j] < ABBREVIATION and _subsequence(query, text):
            scores[j] = ABBREVIATION


def _subsequence(short: str, long: str) -> bool:
    chars = iter(long)
    return all(c in chars for c in short)


def _place_penalty(variant: QueryVariant, wanted: set[str], regions: tuple[str, ...]) -> float:
    if wanted.intersection(regions):
        return PLACE_CUT if variant.stripped else 0.0
    if not regions:
        return PLACE_UNKNOWN if variant.stripped else 0.0
    return PLACE_OTHER if variant.stripped else BRACKET_OTHER


# -- policy ------------------------------------------------------------------------------------------


def decide(query: str, scored: list[tuple[float, int, str]], prefer: frozenset[int] = frozenset()) -> MatchResult:
    """accept / choose / create from (score, customer id, name) triples, with ties (within LEAD of
    the best) broken in favour of `prefer`."""
    if not scored:
        return MatchResult(query, "create")
    scored = sorted(((round(s, 1), cid, name) for s, cid, name in scored), key=lambda t: (-t[0], t[1]))
    top = scored[0][0]
    leaders = [t for t in scored if t[0] > top - LEAD]
    preferred = [t for t in leaders if t[1] in prefer]
    ranked = preferred + [t for t in scored if t not in preferred]
    candidates = [Candidate(cid, score, name) for score, cid, name in ranked[:TOP]]
    if top >= ACCEPT and len(leaders) == 1:
        return MatchResult(query, "accept", candidates)
    if top >= ACCEPT and len(preferred) == 1 and preferred[0][0] >= ACCEPT:
        return MatchResult(query, "accept", candidates)
    if top >= CHOOSE:
        return MatchResult(query, "choose", candidates)
    return MatchResult(query, "create", candidates)
