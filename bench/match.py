"""How fast and how right customer-name matching is at 2k and 100k customers (docs/architecture.md §4).

For each size: generate that many distinct legal names (deterministic), compute their stored forms
(`workflows.names.forms`, the pinyin cost paid once per create/rename), build a `CustomerIndex` from
them (what `load_index` does after reading the rows), measure its memory with tracemalloc, then time
`match()` on a mix of exact, legal-variant, 简称, homophone, city-prefixed, abbreviation and stranger
queries. Prints a table and (unless --no-readme) writes the `## match.py` section of bench/README.md.

    . /tmp/v/bin/activate
    python bench/match.py                        # 2,000 and 100,000 customers, 2,000 queries each
    python bench/match.py --sizes 2000 --queries 500 --no-readme

Target: p95 ≤ 10 ms per query at 100k customers.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import random
import re
import sys
import time
import tracemalloc
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pypinyin import lazy_pinyin  # noqa: E402

from sim.seed import BRANDS, INDUSTRIES, NAME_FORMS, REGION_WEIGHTS, REGIONS  # noqa: E402
from workflows.matching import CustomerIndex, decide, forms_json, split_short_names, stored_forms  # noqa: E402
from workflows.names import CITIES, NameForms, forms, query_variants  # noqa: E402

README = ROOT / "bench" / "README.md"
SECTION = "## `match.py`"

# Trade-name characters: the seed's brands plus more of the same kind, so 100k names are distinct.
BRAND_CHARS = "".join(sorted(set("".join(BRANDS)) | set(
    "宇晨光辉德兴隆昌泰和祥福禄寿康宁安平永新民众利达远航天地人金银铜铁木水火土山川江河湖风云雷电春秋冬东南西北"
    "龙凤虎豹鹏鹰鸿雁松柏竹梅兰菊荷莲晶鑫森淼磊焱垚峰岭岳泉溪湾港城邦华夏九州四海千百万亿")))
# GB2312 level 1: the 3,755 characters an input method offers first; homophone typos come from here.
COMMON = [bytes([hi, lo]).decode("gb2312") for hi in range(0xB0, 0xD8) for lo in range(0xA1, 0xFF)
          if not (hi == 0xD7 and lo > 0xF9)]
STRANGERS = ("小米", "字节跳动", "一家不存在的公司", "比亚迪", "格力电器", "海尔", "联想", "京东", "百度", "网易", "拼多多",
             "蔚来汽车", "宁德时代", "中兴通讯", "迈瑞医疗", "万科", "碧桂园", "立讯精密", "欣旺达", "汇川技术")


@dataclass(frozen=True)
class Customer:
    id: int
    name: str
    short_names: str
    region: str
    brand: str
    spoken: str


# -- corpus and queries ------------------------------------------------------------------------------


def corpus(size: int, seed: int) -> list[Customer]:
    """`size` distinct legal names shaped like sim/seed.py's (city, district, brand, scope, form)."""
    rng = random.Random(seed)
    cities = list(REGIONS) + [c for c in CITIES if c not in REGIONS]
    weights = [REGION_WEIGHTS.get(c, 1) * 4 for c in cities]  # the seed's cities dominate, others appear
    forms_ = list(NAME_FORMS)
    form_weights = list(NAME_FORMS.values())
    seen: set[str] = set()
    out: list[Customer] = []
    while len(out) < size:
        industry = rng.choice(tuple(INDUSTRIES))
        scope, spoken = rng.choice(INDUSTRIES[industry])
        city = rng.choices(cities, weights)[0]
        brand = rng.choice(BRAND_CHARS) + rng.choice(BRAND_CHARS)
        form = rng.choices(forms_, form_weights)[0]
        district = rng.choice(REGIONS.get(city, ("高新区", "经济开发区")))
        name = form.format(city=city, district=district, brand=brand, scope=scope)
        if name in seen or brand[0] == brand[1]:
            continue
        seen.add(name)
        short = [brand + spoken] + ([brand + "集团"] if "集团" in form else [])
        out.append(Customer(len(out) + 1, name, ",".join(short), city, brand, spoken))
    return out


def _by_sound() -> dict[str, list[str]]:
    table: dict[str, list[str]] = defaultdict(list)
    for ch in COMMON:
        table[lazy_pinyin(ch)[0]].append(ch)
    return table


def queries(customers: list[Customer], count: int, seed: int) -> list[tuple[str, str, int | None]]:
    """(query, kind, expected customer id or None for a stranger)."""
    rng = random.Random(seed)
    sound = _by_sound()
    used_sounds = {lazy_pinyin(c)[0] for c in BRAND_CHARS}
    stranger_chars = [c for c in COMMON if lazy_pinyin(c)[0] not in used_sounds]
    spoken_words = sorted({s for pairs in INDUSTRIES.values() for _, s in pairs})
    # A famous name the generator happened to produce (万科医药) is a customer, not a stranger.
    famous = [s for s in STRANGERS if not any(s in c.name for c in customers)]
    kinds = {"exact": 15, "variant": 15, "alias": 20, "homophone": 20, "city": 10, "abbreviation": 5, "stranger": 15}
    out = []
    while len(out) < count:
        kind = rng.choices(list(kinds), list(kinds.values()))[0]
        c = rng.choice(customers)
        alias = split_short_names(c.short_names)[0]
        if kind == "exact":
            out.append((c.name, kind, c.id))
        elif kind == "variant":  # full-width brackets, another legal form, or a typo in it
            q = c.name.replace("(", "（").replace(")", "）")
            q = q.replace("有限公司", rng.choice(("有限责任公司", "有线公司", "")) if "股份" not in q else "有限公司")
            out.append((q, kind, c.id))
        elif kind == "alias":
            out.append((alias, kind, c.id))
        elif kind == "homophone":  # an input-method slip in the brand: 恒达 → 恒答
            i = rng.randrange(2)
            options = [h for h in sound[lazy_pinyin(c.brand[i])[0]] if h != c.brand[i]]
            if options:
                brand = c.brand[:i] + rng.choice(options) + c.brand[i + 1:]
                out.append((alias.replace(c.brand, brand, 1), kind, c.id))
        elif kind == "city":
            out.append((c.region + alias, kind, c.id))
        elif kind == "abbreviation":  # 华信软件 → 华软
            out.append((c.brand[0] + c.spoken[0], kind, c.id))
        else:
            if rng.random() < 0.3:
                out.append((rng.choice(famous), kind, None))
            else:
                brand = rng.choice(stranger_chars) + rng.choice(stranger_chars)
                out.append((brand + rng.choice(spoken_words), kind, None))
    return out


# -- measuring ---------------------------------------------------------------------------------------


def classify(query: str, result, expected: int | None, stored: list[NameForms]) -> str:
    ids = [c.customer_id for c in result.candidates]
    if result.decision == "accept" and ids[0] != expected:
        return "twin" if is_twin(query, stored[ids[0] - 1]) else "wrong"
    if expected is None:
        return {"accept": "wrong", "choose": "choose", "create": "create"}[result.decision]
    if result.decision == "accept":
        return "right"
    if result.decision == "choose":
        return "choose_in3" if expected in ids else "choose_miss"
    return "create"


def is_twin(query: str, accepted: NameForms) -> bool:
    """The query is, character for character or syllable for syllable, one of the accepted customer's
    own forms: 凤升快运 typed for 峰升快运 when 凤升快运 is also a customer. No matcher can tell."""
    sounds = set(accepted.pinyin.values())
    return any(v.text in accepted.pinyin or v.tokens in sounds for v in query_variants(query) if not v.penalty)


def busy_percent(seconds: float = 1.0) -> float:
    """Share of the machine used over `seconds` (this process included)."""
    def ticks():
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
        return sum(values[:8]), values[3] + values[4]
    (t0, i0), _ = ticks(), time.sleep(seconds)
    t1, i1 = ticks()
    return 100 * (1 - (i1 - i0) / (t1 - t0)) if t1 > t0 else 0.0


def wait_for_quiet(limit: float, ceiling: float = 25.0) -> float:
    deadline = time.monotonic() + limit
    busy = busy_percent()
    while busy >= ceiling and time.monotonic() < deadline:
        print(f"   machine {busy:.0f}% busy with other work, waiting ...", flush=True)
        busy = busy_percent(2.0)
    return busy


def run(size: int, n_queries: int, seed: int, quiet_wait: float) -> dict:
    print(f"-- {size:,} customers", flush=True)
    customers = corpus(size, seed)
    t0 = time.perf_counter()
    stored: list[NameForms] = [forms(c.name, split_short_names(c.short_names), region=c.region) for c in customers]
    forms_ms = (time.perf_counter() - t0) * 1000 / size
    # What the database holds; building the index from it is load_index without the SELECT.
    columns = [(c.id, c.name, c.short_names, c.region, forms_json(c.name, c.short_names, c.region, f))
               for c, f in zip(customers, stored)]
    gc.collect()
    t0 = time.perf_counter()
    index = CustomerIndex((cid, name, stored_forms(name, short, region, text))
                          for cid, name, short, region, text in columns)
    build_s = time.perf_counter() - t0
    del index
    gc.collect()
    rows = [(c.id, c.name, f) for c, f in zip(customers, stored)]
    tracemalloc.start()
    index = CustomerIndex(rows)
    memory_mb = tracemalloc.get_traced_memory()[0] / 1e6
    tracemalloc.stop()
    qs = queries(customers, n_queries, seed + 1)
    for q, _, _ in qs[:50]:  # warm-up: symbol table, rapidfuzz, numpy
        index.match(q)
    background = wait_for_quiet(quiet_wait)
    times: dict[str, list[float]] = defaultdict(list)
    outcomes: dict[str, Counter] = defaultdict(Counter)
    gc.disable()  # a collection of the 100k-row index inside one query is noise, not matching cost
    for q, kind, expected in qs:
        t = time.perf_counter()
        result = index.match(q)
        times[kind].append((time.perf_counter() - t) * 1000)
        outcomes[kind][classify(q, result, expected, stored)] += 1
    split = time_split(index, [q for q, _, _ in qs])
    gc.enable()
    return {"size": size, "forms_ms": forms_ms, "build_s": build_s, "memory_mb": memory_mb, "times": times,
            "outcomes": outcomes, "background": background, "split": split}


def time_split(index: CustomerIndex, texts: list[str]) -> dict[str, float]:
    """Mean ms per query in each step of match(), replayed through the index's own steps."""
    spent = {"query forms (pinyin)": 0.0, "stage 1 (inverted index)": 0.0, "stage 2 (similarity)": 0.0,
             "policy": 0.0}
    for text in texts:
        t0 = time.perf_counter()
        variants = query_variants(text)
        t1 = time.perf_counter()
        numbers = index._shortlist(variants)
        t2 = time.perf_counter()
        scored = index._score(variants, numbers)
        t3 = time.perf_counter()
        decide(text, scored)
        t4 = time.perf_counter()
        for key, took in zip(spent, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
            spent[key] += took * 1000 / len(texts)
    return spent


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(p / 100 * len(values)))]


# -- reporting ---------------------------------------------------------------------------------------


KIND_ORDER = ("exact", "variant", "alias", "homophone", "city", "abbreviation", "stranger")


def tables(results: list[dict]) -> str:
    lines = ["| customers | forms per name | index load | index memory | p50 | p95 | p99 | max |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        every = [t for ts in r["times"].values() for t in ts]
        lines.append(f"| {r['size']:,} | {r['forms_ms']:.2f} ms | {r['build_s']:.2f} s | {r['memory_mb']:.0f} MB "
                     f"| {pct(every, 50):.2f} ms | {pct(every, 95):.2f} ms | {pct(every, 99):.2f} ms "
                     f"| {max(every):.2f} ms |")
    lines += ["", "| customers | query kind | n | p50 | p95 | accepted right | accepted WRONG | accepted a twin "
              "| offered, right in top 3 | offered, not in top 3 | create |",
              "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        for kind in KIND_ORDER:
            ts, o = r["times"].get(kind, []), r["outcomes"].get(kind, Counter())
            if not ts:
                continue
            offered = o["choose_in3"] if kind != "stranger" else o["choose"]
            lines.append(f"| {r['size']:,} | {kind} | {len(ts)} | {pct(ts, 50):.2f} ms | {pct(ts, 95):.2f} ms "
                         f"| {o['right']} | {o['wrong']} | {o['twin']} | {offered} | {o['choose_miss']} "
                         f"| {o['create']} |")
    steps = list(results[0]["split"])
    lines += ["", "| customers | " + " | ".join(steps) + " |", "|---:|" + "---:|" * len(steps)]
    for r in results:
        lines.append(f"| {r['size']:,} | " + " | ".join(f"{r['split'][k]:.2f} ms" for k in steps) + " |")
    return "\n".join(lines)


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    import numpy
    import pypinyin
    import rapidfuzz
    date = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (f"Run {date} on {os.cpu_count()} × {cpu} (kernel {platform.release()}, Python "
            f"{platform.python_version()}); rapidfuzz {rapidfuzz.__version__}, pypinyin {pypinyin.__version__}, "
            f"numpy {numpy.__version__}.")


def section(results: list[dict], n_queries: int) -> str:
    busy = ", ".join(f"{r['size']:,}: {r['background']:.0f}%" for r in results)
    return f"""{SECTION} — customer-name matching cost

How long `CustomerIndex.match()` takes (docs/architecture.md §4: character + syllable similarity with an
idf-weighted shortlist) and how much the in-memory index costs, at 2k and 100k customers.

```sh
. /tmp/v/bin/activate
python bench/match.py                                  # 2,000 and 100,000 customers, {n_queries:,} queries each
python bench/match.py --sizes 2000 --queries 500 --no-readme
```

Method: names are generated deterministically in sim/seed.py's shapes (city, district, two-character
brand from {len(BRAND_CHARS)} trade-name characters, business scope, legal form; 简称 = brand + trade
word). "forms per name" is the cost `refresh_forms` pays once per create/rename (mostly pypinyin);
"index load" is `load_index` minus the SELECT: parse each row's stored `match_forms` JSON and build
the index; "index memory" is what tracemalloc sees the built index hold. Queries run single-threaded
with gc paused while timing:

- `exact`: the legal name; `variant`: full-width brackets with 有限责任公司 / 有线公司 / no legal form;
- `alias`: the 简称; `homophone`: the 简称 with one brand character swapped for a GB2312 homophone
  (恒达 → 恒答); `city`: city + 简称;
- `abbreviation`: brand's first character + trade's first (华信软件 → 华软; 88 at most, never accepted
  on its own — unless it *is* another customer's name, see "twin");
- `stranger`: famous companies not in the book, and names from characters whose syllables no
  customer's brand uses.

"Accepted a twin": the query is, character for character or syllable for syllable, another
customer's own name (the homophone 凤升快运 of 峰升快运 when 凤升快运 is also a customer; the abbreviation
北医 sounding exactly like brand 北亿) — no matcher can tell, so these are not counted as wrong. With
generated names many 简称 are shared (at 100k a brand + trade word is often several customers), so
"offered, right in top 3" is the right answer for those. "Accepted WRONG" is what must stay 0.
Target: p95 ≤ 10 ms at 100k. The last table splits the mean query time into its steps: stage 1 is
numpy adding idf weights over the postings of the query's characters and syllables (common ones such
as 科 hold a large share of all rows at 100k), stage 2 is rapidfuzz `cdist` over ~300 candidates ×
their forms × up to four query variants.

### Results (latest run)

{machine()} Machine busy before timing (other work included): {busy}.

{tables(results)}
"""


def write_readme(text: str) -> None:
    """Replace only our own section (from its heading to the next `## ` or the end); append if absent.
    Other benches own the rest of the file and may be editing it."""
    current = README.read_text(encoding="utf-8") if README.exists() else "# Benchmarks\n"
    start = current.find(SECTION)
    if start < 0:
        updated = current.rstrip("\n") + "\n\n" + text
    else:
        following = re.search(r"^## ", current[start + len(SECTION):], flags=re.M)
        end = start + len(SECTION) + following.start() if following else len(current)
        updated = current[:start] + text + ("\n" + current[end:] if following else "")
    README.write_text(updated.rstrip("\n") + "\n", encoding="utf-8")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", default="2000,100000", help="comma-separated customer counts")
    p.add_argument("--queries", type=int, default=2000, help="queries per size")
    p.add_argument("--seed", type=int, default=2026)
    p.add_argument("--quiet-wait", type=float, default=120, help="seconds to wait for other load to stop")
    p.add_argument("--no-readme", action="store_true", help="print only; leave bench/README.md alone")
    args = p.parse_args()
    results = [run(int(s), args.queries, args.seed, args.quiet_wait) for s in args.sizes.split(",")]
    print()
    print(tables(results))
    if not args.no_readme:
        write_readme(section(results, args.queries))
        print(f"\nwrote the {SECTION} section of {README.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
