"""Fingerprint search: the hand-written substring index against pyahocorasick, on 64 KiB pages.

    python -m bench.fingerprint_search [--repeat 5] [--number 10] [--ooni /work/shared/data/ooni]

pyahocorasick is not a dependency of the tool (this measurement is why): `pip install pyahocorasick`.

What is compared is the body's multi-string search, the part of matching a page that grows with the
fingerprint set: every `contains` pattern of location `body`, normalised as FingerprintSet does (CRLF -> LF;
OONI's values are case-sensitive, so nothing is case-folded), searched in the page's decoded text (the first
64 KiB of the body, decoded with "replace", as probes/http.py does). A page costs two searches, the block
patterns and the known false positives (the engine asks for both), so each figure is both together:
  hand           auditor.fingerprints.search.SubstringIndex (anchors + one `re` scan, or `in` below 40)
  pyahocorasick  one ahocorasick.Automaton per side, every occurrence from Automaton.iter
  in             one `needle in text` per needle: the reference the other two must equal, page by page
  ..., 1 index   the same method with ONE index over both sides, split after the scan (one pass per page;
                 the package does not do this today, see BENCHMARKS.md)
and, for context, `FingerprintSet.match_body` + `false_positive_for_body` as the engine calls them (adds
normalising, `full` and `regexp` patterns). Two fingerprint sets: the built-in Vietnam rows (the default
config) and the built-in rows plus OONI's full dns and http CSVs. Build time is the cost of compiling the
two sides' indexes (best of --repeat), and of FingerprintSet.build for the whole set.

Every timing is the best of --repeat runs of --number calls (the machine is shared; the best is the least
disturbed). The pages are generated from a fixed seed, so every run measures the same text.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import importlib.util
import os
import platform
import random
import subprocess
import sys
import time
import timeit
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from auditor.config import FingerprintConfig
from auditor.fingerprints import Fingerprint, FingerprintSet
from auditor.fingerprints.normalise import normalise_body
from auditor.fingerprints.search import SubstringIndex

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OONI = Path("/work/shared/data/ooni")
PAGE_BYTES = 64 * 1024  # probes.base: body_limit

Needles = dict[str, list[int]]  # normalised pattern -> indices in the set, as matcher.LocationMatcher keeps


class AhoCorasickIndex:
    """The same interface as SubstringIndex, on pyahocorasick: every occurrence of every needle, in C."""

    def __init__(self, needles: Needles) -> None:
        # Not a dependency (see the module docstring), and untyped: import_module gives it the type Any.
        ahocorasick = importlib.import_module("ahocorasick")
        self._automaton: Any = None
        if not needles:
            return
        automaton = ahocorasick.Automaton()
        for needle, indices in needles.items():
            automaton.add_word(needle, tuple(indices))
        automaton.make_automaton()
        self._automaton = automaton

    def contained_in(self, text: str) -> set[int]:
        if self._automaton is None:
            return set()
        found: set[int] = set()
        for _end, indices in self._automaton.iter(text):
            found.update(indices)
        return found


class InIndex:
    """One `in` per needle: obviously right, the reference both indexes are checked against."""

    def __init__(self, needles: Needles) -> None:
        self._needles = needles

    def contained_in(self, text: str) -> set[int]:
        return {i for needle, indices in self._needles.items() if needle in text for i in indices}


METHODS: dict[str, Callable[[Needles], Any]] = {
    "hand": SubstringIndex,
    "pyahocorasick": AhoCorasickIndex,
    "in": InIndex,
}


def body_needles(fps: FingerprintSet, false_positive: bool) -> Needles:
    """The `contains` body patterns of one side, keyed as LocationMatcher keys them."""
    needles: Needles = {}
    for index, fp in enumerate(fps):
        if fp.location == "body" and fp.pattern_type == "contains" and fp.is_false_positive == false_positive:
            needles.setdefault(normalise_body(fp.pattern), []).append(index)
    return needles


# --- pages ------------------------------------------------------------------------------------------------

VN_WORDS = (
    "tin tức hôm nay thời sự Hà Nội người dân xem về kinh tế văn hóa và thể thao bóng đá Việt Nam đội tuyển "
    "chính phủ quốc hội thành phố Hồ Chí Minh Đà Nẵng Cần Thơ Hải Phòng giá xăng dầu tăng giảm thị trường "
    "chứng khoán ngân hàng lãi suất doanh nghiệp xuất khẩu nông sản gạo cà phê hồ tiêu thủy sản du lịch "
    "khách quốc tế mùa mưa bão lũ lụt miền Trung học sinh sinh viên kỳ thi tốt nghiệp trung học phổ thông "
    "bệnh viện bác sĩ sức khỏe vắc xin giao thông ùn tắc đường cao tốc Bắc Nam sân bay Long Thành được "
    "những của cho với các một này đã sẽ đang không có là trong năm tháng ngày theo khi từ đến lúc sau "
    "trước nhiều cũng rất còn phải nhưng vì nên hay hoặc người đàn ông phụ nữ trẻ em gia đình cộng đồng"
).split()
VN_SECTIONS = (
    "Thời sự", "Góc nhìn", "Thế giới", "Kinh doanh", "Bất động sản", "Khoa học", "Giải trí", "Thể thao",
    "Pháp luật", "Giáo dục", "Sức khỏe", "Đời sống", "Du lịch", "Số hóa", "Xe", "Ý kiến", "Tâm sự",
)  # fmt: skip
EN_WORDS = (
    "the quick brown fox jumps over lazy dog free shipping on orders over add to cart wishlist compare "
    "price sale new arrivals best sellers customer reviews rating stars in stock out of stock size colour "
    "black white blue red green small medium large return policy secure checkout privacy terms contact us"
).split()
MINIFIED_JS = (
    '!function(e,t){"use strict";var n=e.document,r=function(e){return n.querySelectorAll(e)},i={};'
    'i.init=function(){r("[data-lazy]").forEach(function(e){e.src=e.getAttribute("data-lazy")})};'
    'window.dataLayer=window.dataLayer||[];function g(){dataLayer.push(arguments)}g("js",new Date);'
    'g("config","G-XXXXXXX",{anonymize_ip:!0});e.addEventListener("load",i.init,{passive:!0})}(window);'
)
CSS = (
    ".header{position:sticky;top:0;z-index:10;background:#fff;border-bottom:1px solid #e5e5e5}"
    ".item-news{display:flex;gap:12px;margin:0 0 16px}.title-news a{color:#222;font:700 18px/1.4 Merriweather,serif}"
    ".description{color:#4f4f4f;font-size:14px}@media (max-width:768px){.item-news{flex-direction:column}}"
)


def vn_sentence(rng: random.Random, words: int) -> str:
    text = " ".join(rng.choices(VN_WORDS, k=words))
    return text[0].upper() + text[1:] + rng.choice((".", ".", ",", "?", "!"))


def vn_head(rng: random.Random) -> str:
    title = vn_sentence(rng, 10)
    return (
        '<!DOCTYPE html>\n<html lang="vi">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{title} - Báo điện tử</title>\n"
        f'<meta name="description" content="{vn_sentence(rng, 25)}">\n'
        f'<meta property="og:title" content="{title}">\n'
        '<link rel="preconnect" href="https://static.example.vn">\n'
        '<link rel="stylesheet" href="https://static.example.vn/css/main.min.css?v=20261127">\n'
        f"<style>{CSS}</style>\n"
        '<script type="application/ld+json">{"@context":"https://schema.org","@type":"NewsArticle",'
        f'"headline":"{title}","inLanguage":"vi"}}</script>\n'
        '</head>\n<body>\n<header class="header"><nav><ul>\n'
        + "".join(
            f'<li><a href="/{i}-{rng.randrange(100)}">{s}</a></li>\n' for i, s in enumerate(VN_SECTIONS)
        )
        + "</ul></nav></header>\n<main>\n"
    )


def vn_chunks(rng: random.Random) -> Iterator[str]:
    while True:
        n = rng.randrange(10**6, 10**7)
        title = vn_sentence(rng, rng.randrange(8, 16))
        yield (
            f'<article class="item-news" data-id="{n}">\n'
            f'<h3 class="title-news"><a href="https://example.vn/bai-viet-{n}.html" title="{title}">'
            f"{title}</a></h3>\n"
            f'<img src="https://i.example.vn/{n % 97}/{n}.jpg" alt="{vn_sentence(rng, 6)}" loading="lazy">\n'
            f'<p class="description">{" ".join(vn_sentence(rng, rng.randrange(12, 30)) for _ in range(3))}</p>\n'
            "</article>\n"
        )
        if rng.random() < 0.1:
            yield f"<script>{MINIFIED_JS}</script>\n"


def en_head(rng: random.Random) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Shop - New arrivals</title>'
        f'<style>{CSS}</style><script>{MINIFIED_JS * 3}</script></head><body><div id="app">\n'
    )


def en_chunks(rng: random.Random) -> Iterator[str]:
    while True:
        sku = rng.randrange(10**5, 10**6)
        name = " ".join(rng.choices(EN_WORDS, k=4)).title()
        yield (
            f'<div class="product-card" data-sku="{sku}" data-price="{rng.randrange(5, 500)}.99">'
            f'<a href="/p/{sku}"><img src="/img/{sku}.webp" alt="{name}"></a><h2>{name}</h2>'
            f'<span class="price">${rng.randrange(5, 500)}.99</span><p>{" ".join(rng.choices(EN_WORDS, k=20))}</p>'
            f'<button onclick="cart.add({sku})">Add to cart</button></div>\n'
        )
        if rng.random() < 0.3:
            yield f"<script>{MINIFIED_JS}</script>\n"


def near_misses(patterns: Sequence[str], rng: random.Random) -> Iterator[str]:
    """Fingerprint text that must NOT match: other case (values compare case-sensitively) or cut short."""
    while True:
        p = rng.choice(patterns)
        yield f"<p>{rng.choice((p.upper(), p.swapcase(), p[:-1]))}</p>\n"


def page(
    rng: random.Random,
    head: str,
    chunks: Iterator[str],
    *,
    near_end: str = "",
    salt: Iterator[str] | None = None,
    crlf: bool = False,
) -> str:
    """PAGE_BYTES of UTF-8 (cut anywhere, as the probe cuts) decoded with "replace"; `near_end` is placed
    about 600 bytes before the cut, `salt` every ~2 KiB."""
    parts = [head]
    size = len(head.encode())
    placed = not near_end
    while size < PAGE_BYTES:
        chunk = next(chunks)
        if salt is not None and rng.random() < 0.4:
            chunk += next(salt)
        if not placed and size + len(chunk.encode()) > PAGE_BYTES - 600 - len(near_end.encode()):
            chunk, placed = near_end + "\n" + chunk, True
        parts.append(chunk)
        size += len(chunk.encode())
    text = "".join(parts)
    if crlf:
        text = text.replace("\n", "\r\n")
    return text.encode()[:PAGE_BYTES].decode("utf-8", "replace")


@dataclass(frozen=True)
class Page:
    name: str
    text: str
    expect_block: bool  # sanity: the page does what its name says (with the full set)
    expect_false_positive: bool


def pages(full: FingerprintSet, seed: int = 20261202) -> list[Page]:
    rng = random.Random(seed)
    contains = [fp.pattern for fp in full if fp.location == "body" and fp.pattern_type == "contains"]
    block_only = [
        normalise_body(fp.pattern)
        for fp in full
        if fp.location == "body" and fp.pattern_type == "contains" and not fp.is_false_positive
    ]
    fake_404 = _builtin("ooni.vn_http_1").pattern  # multi-line, CRLF as OONI stores it
    viettel = _builtin("cp.c_isp_viettel").pattern
    generic_404 = "<h1>Not Found</h1><p>Sorry, the page you are looking for could not be found.</p>"
    return [
        Page("vn news, no match", page(rng, vn_head(rng), vn_chunks(rng)), False, False),
        Page("vn news, OONI block text near end",
             page(rng, vn_head(rng), vn_chunks(rng), near_end=rng.choice(block_only)), True, False),
        Page("vn news, Viettel WAF near end",
             page(rng, vn_head(rng), vn_chunks(rng), near_end=f"<title>{viettel}</title>"), True, False),
        Page("vn news CRLF, fake 404 near end",
             page(rng, vn_head(rng), vn_chunks(rng), near_end=fake_404.replace("\r\n", "\n"), crlf=True),
             True, True),
        Page("vn news, near misses (case, cut)",
             page(rng, vn_head(rng), vn_chunks(rng), salt=near_misses(contains, rng)), False, False),
        Page("en shop (JS), no match", page(rng, en_head(rng), en_chunks(rng)), False, False),
        Page("en shop, generic 404 near end (fp)",
             page(rng, en_head(rng), en_chunks(rng), near_end=generic_404), False, True),
    ]  # fmt: skip


def _builtin(fingerprint_id: str) -> Fingerprint:
    fp = FingerprintSet.build(FingerprintConfig()).get(fingerprint_id)
    assert fp is not None, fingerprint_id
    return fp


# --- measuring --------------------------------------------------------------------------------------------


Search = Callable[[str], tuple[set[int], set[int]]]  # normalised text -> (block, false-positive) indices


def searchers(fps: FingerprintSet) -> dict[str, Callable[[], Search]]:
    """Each method in two layouts: one index per side (as the package is built today: the engine asks
    match_body and false_positive_for_body apart), or one index over both sides, split after the scan."""
    sides = (body_needles(fps, False), body_needles(fps, True))
    both: Needles = {}
    for needles in sides:
        for needle, indices in needles.items():
            both.setdefault(needle, []).extend(indices)
    false_positive = frozenset(i for i, fp in enumerate(fps) if fp.is_false_positive)

    def two(make: Callable[[Needles], Any]) -> Callable[[], Search]:
        def build() -> Search:
            block, fp = make(sides[0]), make(sides[1])
            return lambda text: (block.contained_in(text), fp.contained_in(text))

        return build

    def one(make: Callable[[Needles], Any]) -> Callable[[], Search]:
        def build() -> Search:
            index = make(both)

            def search(text: str) -> tuple[set[int], set[int]]:
                found = index.contained_in(text)
                return found - false_positive, found & false_positive

            return search

        return build

    out = {name: two(make) for name, make in METHODS.items()}
    out |= {f"{name}, 1 index": one(make) for name, make in METHODS.items() if name != "in"}
    return out


def best_us(fns: dict[str, Callable[[], object]], number: int, repeat: int) -> dict[str, float]:
    """Microseconds per call of each function, best of `repeat` rounds; each round times every function
    once, in turn, so a burst of load on the shared machine hits them alike."""
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(repeat):
        for name, fn in fns.items():
            best[name] = min(best[name], timeit.timeit(fn, number=number) / number * 1e6)
    return best


def match_both(fps: FingerprintSet, text: str) -> object:
    """What the engine's page matcher asks of a page body."""
    return fps.match_body(text), fps.false_positive_for_body(text)


def measure_set(label: str, fps: FingerprintSet, page_list: list[Page], args: argparse.Namespace) -> None:
    sides = (body_needles(fps, False), body_needles(fps, True))
    print(f"\n## {label}: {len(fps)} fingerprints; body 'contains' needles: {len(sides[0])} block, "
          f"{len(sides[1])} false-positive")  # fmt: skip
    builders = searchers(fps)
    config = fps_config(label, args)
    build = best_us(
        {**{n: b for n, b in builders.items() if n != "in"}, "FingerprintSet.build": lambda: FingerprintSet.build(config)},
        1,
        args.repeat,
    )  # fmt: skip
    print("build, ms: " + ", ".join(f"{name} {us / 1000:.2f}" for name, us in build.items()))

    search = {name: build_search() for name, build_search in builders.items()}
    columns = [*search, "FingerprintSet"]
    print(f"\n| page (64 KiB) | chars | {' | '.join(f'{c} us' for c in columns)} |")
    print("|---|---:|" + "---:|" * len(columns))
    totals = dict.fromkeys(columns, 0.0)
    for pg in page_list:
        text = normalise_body(pg.text)  # what LocationMatcher hands its index
        results = {name: fn(text) for name, fn in search.items()}
        reference = results["in"]
        for name, result in results.items():
            assert result == reference, (label, pg.name, name, result, reference)
        position = {fp: i for i, fp in enumerate(fps)}
        package = tuple(
            {position[fp] for fp in found if fp.pattern_type == "contains"}
            for found in (fps.match_body(pg.text), fps.false_positive_for_body(pg.text))
        )
        assert package == reference, (label, pg.name, "FingerprintSet", package, reference)
        if label == FULL:
            assert (bool(reference[0]), bool(reference[1])) == (pg.expect_block, pg.expect_false_positive), pg
        fns: dict[str, Callable[[], object]] = {
            name: functools.partial(fn, text) for name, fn in search.items()
        }
        fns["FingerprintSet"] = functools.partial(match_both, fps, pg.text)
        row = best_us(fns, args.number, args.repeat)
        for c in columns:
            totals[c] += row[c]
        print(f"| {pg.name} | {len(pg.text):,} | {' | '.join(f'{row[c]:,.0f}' for c in columns)} |")
    n = len(page_list)
    print(f"| **mean** | | {' | '.join(f'**{totals[c] / n:,.0f}**' for c in columns)} |")


BUILTIN = "built-in Vietnam rows (default config)"
FULL = "built-in + OONI full dns and http CSVs"


def fps_config(label: str, args: argparse.Namespace) -> FingerprintConfig:
    if label == BUILTIN:
        return FingerprintConfig()
    return FingerprintConfig(files=(args.ooni / "fingerprints_dns.csv", args.ooni / "fingerprints_http.csv"))


def machine() -> str:
    def git(*argv: str) -> str:
        return subprocess.run(
            ["git", *argv], cwd=REPO, capture_output=True, text=True, check=False
        ).stdout.strip()

    cpu = "unknown CPU"
    try:
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        pass
    dirty = "+dirty" if git("status", "--porcelain", "--untracked-files=no") else ""
    return (
        f"{time.strftime('%Y-%m-%d %H:%M')}, commit {git('rev-parse', '--short', 'HEAD')}{dirty}, "
        f"{os.cpu_count()} CPUs ({cpu}), load {os.getloadavg()[0]:.2f}, Python {platform.python_version()}, "
        f"pyahocorasick {metadata.version('pyahocorasick')}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.fingerprint_search", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--repeat", type=int, default=7, help="best of this many rounds (default 7)")
    parser.add_argument("--number", type=int, default=5, help="calls per method per round (default 5)")
    parser.add_argument("--ooni", type=Path, default=DEFAULT_OONI, help="directory of OONI's two CSVs")
    args = parser.parse_args(argv)
    if importlib.util.find_spec("ahocorasick") is None:
        print("pyahocorasick is not installed: .venv/bin/pip install pyahocorasick", file=sys.stderr)
        return 2
    if not (args.ooni / "fingerprints_http.csv").exists():
        print(f"no OONI fingerprints CSVs in {args.ooni} (--ooni DIR)", file=sys.stderr)
        return 2

    print(f"# Fingerprint search: hand-written vs pyahocorasick\n{machine()}")
    print(
        f"figures: best of {args.repeat} rounds of {args.number} calls, methods interleaved in each round; "
        "microseconds per 64 KiB page, block and false-positive sides together"
    )
    full = FingerprintSet.build(fps_config(FULL, args))
    page_list = pages(full)
    measure_set(BUILTIN, FingerprintSet.build(fps_config(BUILTIN, args)), page_list, args)
    measure_set(FULL, full, page_list, args)
    print(
        f"\nresults identical between hand, pyahocorasick and `in` on all {len(page_list)} pages, both sets"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
