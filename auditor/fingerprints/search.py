"""Multi-string search: which of many literal needles occur in a text (or start it), in one pass.

Hand-written on top of `re`, because `re` runs one compiled automaton over the text in C: a trie-shaped
regex for prefixes, and for substrings a scan for short "anchors" picked by how rare their characters are
in web pages, each hit confirmed in place. bench/fingerprint_search.py measures this against
pyahocorasick (a C Aho-Corasick automaton) on OONI's full fingerprint set; see BENCHMARKS.md.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable

# A character trie: each key is one character of a needle ("" marks the end of a needle).
_Trie = dict[str, "_Trie"]


def trie_regex(needles: Iterable[str]) -> str:
    """One regex matching any of the needles, written as a trie so `re` checks each position cheaply.

    Greedy optional groups make it return the LONGEST needle matching at a position; every other needle
    matching there is a prefix of that one.
    """
    root: _Trie = {}
    for needle in needles:
        node = root
        for ch in needle:
            node = node.setdefault(ch, {})
        node[""] = {}

    def emit(node: _Trie) -> str:
        branches = []
        for ch in sorted(k for k in node if k):
            chain = [ch]
            child = node[ch]
            while len(child) == 1 and "" not in child:  # compress a run of single children
                (nxt,) = child
                chain.append(nxt)
                child = child[nxt]
            branches.append(re.escape("".join(chain)) + emit(child))
        if not branches:
            return ""
        terminal = "" in node
        if len(branches) == 1 and not terminal:
            return branches[0]
        return "(?:" + "|".join(branches) + ")" + ("?" if terminal else "")

    return emit(root)


# How often each ASCII character occurs in web pages, in percent (measured on a sample of HTML pages; only
# rough sizes matter). It decides which part of each pattern the body scan looks for; see SubstringIndex.
_CHAR_PERCENT = {
    " ": 16.6,
    "e": 5.8,
    "t": 4.5,
    "s": 3.8,
    "o": 3.7,
    "a": 3.6,
    ".": 3.4,
    "-": 3.1,
    "i": 3.0,
    "n": 2.9,
    "r": 2.9,
    "c": 2.7,
    "l": 2.4,
    "d": 2.2,
    ">": 2.1,
    "<": 2.1,
    '"': 1.9,
    "h": 1.9,
    "2": 1.8,
    "/": 1.8,
    "1": 1.8,
    "p": 1.6,
    "m": 1.5,
    "3": 1.5,
    "4": 1.5,
    "u": 1.3,
    "\n": 1.2,
    "6": 1.2,
    "=": 1.1,
    "0": 1.1,
    "g": 1.1,
    "f": 1.1,
    "b": 1.0,
    "5": 0.9,
    "8": 0.9,
    "w": 0.7,
    "7": 0.7,
    "9": 0.6,
    "v": 0.6,
    "y": 0.5,
    "k": 0.4,
    ":": 0.4,
    "x": 0.3,
    ",": 0.3,
    "C": 0.3,
    "L": 0.3,
    "(": 0.24,
    ")": 0.24,
    "I": 0.24,
    "F": 0.23,
    "_": 0.19,
    "T": 0.17,
    "M": 0.16,
    ";": 0.16,
    "S": 0.15,
    "!": 0.15,
    "'": 0.14,
    "z": 0.14,
    "A": 0.12,
    "B": 0.11,
    "#": 0.11,
    "^": 0.1,
    "H": 0.08,
    "{": 0.07,
    "O": 0.07,
    "}": 0.07,
    "&": 0.06,
    "j": 0.06,
    "P": 0.06,
    "R": 0.06,
    "E": 0.06,
    "`": 0.05,
    "|": 0.05,
    "V": 0.05,
    "Y": 0.05,
    "@": 0.04,
    "q": 0.04,
    "[": 0.04,
    "]": 0.04,
    "W": 0.03,
    "N": 0.03,
    "D": 0.02,
    "U": 0.02,
    "+": 0.02,
    "\t": 0.02,
}
_RARE_PERCENT = 0.01
_LATIN_LETTER_PERCENT = 0.5  # Vietnamese text is full of Latin letters with diacritics


def _char_percent(ch: str) -> float:
    if ch in _CHAR_PERCENT:
        return _CHAR_PERCENT[ch]
    if not ch.isascii() and ch.isalpha() and unicodedata.name(ch, "").startswith("LATIN"):
        return _LATIN_LETTER_PERCENT
    return _RARE_PERCENT


class PrefixIndex:
    """Literal needles that must start the text: one anchored match of one trie regex."""

    def __init__(self, needles: dict[str, list[int]]) -> None:
        self._regex = re.compile(trie_regex(needles)) if needles else None
        self._closure = {needle: _prefix_closure(needle, needles) for needle in needles}

    def prefixes_of(self, text: str) -> set[int]:
        m = self._regex.match(text) if self._regex is not None else None
        return set(self._closure[m.group()]) if m else set()


class SubstringIndex:
    """Literal needles anywhere in the text, found with ONE regex scan instead of one scan per needle.

    A plain alternation of ~1,000 literals costs `re` hundreds of milliseconds on 64 KiB, a trie of them
    ~10 ms: at each position `re` tries the alternatives one by one. So each needle is represented by an
    anchor, a slice of ANCHOR_LEN characters, and the anchors are chosen to START with few distinct and
    fairly rare characters (a greedy set cover, see _plan_anchors): `re` then passes over most positions
    with one character-set test, and where an anchor can start it has only a few alternatives to try.
    Every anchor hit is confirmed by comparing the whole needle in place.

    Measured (CPython 3.11, 64 KiB of HTML, OONI's 860 non-fp body rows): ~1 ms, against ~9 ms for one
    `in` per needle, ~10 ms for a plain trie and ~250 ms for a plain alternation. About 0.3-0.4 ms of it is
    the floor of any `re` scan that starts with a character set; going well below needs a native
    Aho-Corasick automaton.
    """

    ANCHOR_LEN = 6
    # The scan costs `re` a character-set test per character (~0.4 ms per 64 KiB) whatever the needles;
    # `needle in text` costs ~10 us each. Below this many needles, plain `in` is faster.
    SCAN_FROM = 40

    def __init__(self, needles: dict[str, list[int]]) -> None:
        self._indices = needles
        self._regex: re.Pattern[str] | None = None
        self._few: tuple[str, ...] = ()
        if len(needles) < self.SCAN_FROM:
            self._few = tuple(needles)
            return
        anchors: dict[str, list[tuple[str, int]]] = {}
        for needle, offset in _plan_anchors(needles, self.ANCHOR_LEN).items():
            anchors.setdefault(needle[offset : offset + self.ANCHOR_LEN], []).append((needle, offset))
        self._regex = re.compile(trie_regex(anchors))
        # The regex reports the longest anchor at a position; the shorter anchors there are its prefixes.
        self._candidates: dict[str, tuple[tuple[str, int], ...]] = {
            anchor: tuple(pair for end in range(1, len(anchor) + 1) for pair in anchors.get(anchor[:end], ()))
            for anchor in anchors
        }

    def contained_in(self, text: str) -> set[int]:
        if self._regex is None:
            return {index for needle in self._few if needle in text for index in self._indices[needle]}
        found: set[str] = set()
        search = self._regex.search
        pos = 0
        # Restart one character after each hit so that overlapping occurrences are all seen.
        while (m := search(text, pos)) is not None:
            start = m.start()
            for needle, offset in self._candidates[m.group()]:
                if start >= offset and needle not in found and text.startswith(needle, start - offset):
                    found.add(needle)
            pos = start + 1
        return {index for needle in found for index in self._indices[needle]}


# Cost, in the units of _CHAR_PERCENT, of one more distinct character that an anchor may start with: `re`
# tries the alternatives for each such character in turn wherever any of them occurs. Tuned by measuring.
_START_CHAR_COST = 1.0


def _plan_anchors(needles: Iterable[str], length: int) -> dict[str, int]:
    """For each needle, where its anchor starts. First pick the set of start characters by a greedy set
    cover (each step takes the character that covers most remaining needles per unit of cost: its frequency
    plus _START_CHAR_COST); then, within each needle, the window starting with a picked character whose
    characters are rarest (fewer false hits to confirm on ordinary pages)."""
    starts = {n: {n[i] for i in range(max(0, len(n) - length) + 1)} for n in needles}
    uncovered = set(starts)
    picked: set[str] = set()
    while uncovered:
        count = Counter(c for n in uncovered for c in starts[n])
        best = max(sorted(count), key=lambda c: count[c] / (_char_percent(c) + _START_CHAR_COST))
        picked.add(best)
        uncovered = {n for n in uncovered if best not in starts[n]}

    def rarity(window: str) -> float:
        return -sum(math.log(_char_percent(c)) for c in window)

    return {
        n: max(
            (i for i in range(max(0, len(n) - length) + 1) if n[i] in picked),
            key=lambda i: (rarity(n[i : i + length]), -i),
        )
        for n in starts
    }


def _prefix_closure(needle: str, needles: dict[str, list[int]]) -> frozenset[int]:
    """Indices of every needle that is a prefix of `needle` (itself included)."""
    return frozenset(i for end in range(1, len(needle) + 1) for i in needles.get(needle[:end], ()))


_REGEX_SPECIAL = frozenset("\\.^$*+?{}[]()|")


def required_prefix(pattern: str) -> str:
    """Literal text every match of `pattern` starts with ("" if unsure), e.g. "U.S." for U\\.S\\..*Command.

    Conservative: none for a pattern with "|" anywhere; escapes other than of punctuation end the prefix;
    a character followed by a quantifier is not required."""
    if "|" in pattern:
        return ""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern) and not pattern[i + 1].isalnum():
            literal, i = pattern[i + 1], i + 2
        elif ch not in _REGEX_SPECIAL:
            literal, i = ch, i + 1
        else:
            break
        if i < len(pattern) and pattern[i] in "*?{":
            break  # optional (or {0,n}): not required
        out.append(literal)
        if i < len(pattern) and pattern[i] == "+":
            break  # required once, but what follows is not adjacent
    return "".join(out)
