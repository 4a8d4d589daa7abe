"""The multi-string search: prefix and substring indexes over many literals, and regexps' literal prefixes."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auditor.fingerprints.search import PrefixIndex, SubstringIndex, required_prefix, trie_regex


class _AlwaysScan(SubstringIndex):
    SCAN_FROM = 0  # use the one-scan index even for a handful of needles


@pytest.mark.parametrize("index_class", [SubstringIndex, _AlwaysScan])
def test_overlapping_and_nested_literals_are_all_found(index_class: type[SubstringIndex]) -> None:
    needles = ["abcab", "bcab", "cabc", "ab", "abcabcab", "zz"]
    index = index_class({n: [i] for i, n in enumerate(needles)})
    text = "xxabcabcabyy"
    assert index.contained_in(text) == {i for i, n in enumerate(needles) if n in text} == {0, 1, 2, 3, 4}


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.text(alphabet="abcA<>/é ", min_size=1, max_size=9), min_size=1, max_size=25, unique=True),
    st.text(alphabet="abcA<>/é \n", max_size=300),
)
def test_substring_index_agrees_with_in(needles: list[str], text: str) -> None:
    index = _AlwaysScan({n: [i] for i, n in enumerate(needles)})
    assert index.contained_in(text) == {i for i, n in enumerate(needles) if n in text}


@pytest.mark.parametrize(
    ("pattern", "prefix"),
    [
        (r"U\.S\..*Command", "U.S."),
        ("ab*c", "a"),
        ("abc?", "ab"),
        ("ab+c", "ab"),
        ("a|bc", ""),
        (r"\d+x", ""),
        ("(?i)blocked", ""),
        ("x{2}", ""),
        (r"a\nb", "a"),
        ("Trang web .{0,20}bị chặn", "Trang web "),
    ],
)
def test_required_prefix_of_regexps(pattern: str, prefix: str) -> None:
    assert required_prefix(pattern) == prefix
    # whatever the pattern matches starts with that prefix
    matched = 0
    for text in (
        "U.S. Cyber Command",
        "abbbc",
        "ac",
        "abc",
        "bc",
        "1x",
        "BLOCKED",
        "xx",
        "a\nb",
        "Trang web này bị chặn",
    ):
        m = re.search(pattern, text)
        if m:
            matched += 1
            assert m.group().startswith(prefix)
    assert matched, f"no sample text matches {pattern}: the prefix was never checked"


def test_prefix_index_finds_every_needle_that_starts_the_text() -> None:
    needles = {"10.10.": [0], "10.1": [1], "10.10.34": [2, 3], "192.": [4]}
    index = PrefixIndex(needles)
    assert index.prefixes_of("10.10.34.34") == {0, 1, 2, 3}
    assert index.prefixes_of("10.100.1.1") == {1}
    assert index.prefixes_of("x10.10.34.34") == set()
    assert PrefixIndex({}).prefixes_of("anything") == set()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet="ab.(|*", min_size=1, max_size=6), min_size=1, max_size=12, unique=True))
def test_trie_regex_matches_exactly_the_needles_and_prefers_the_longest(needles: list[str]) -> None:
    rx = re.compile(trie_regex(needles))
    for needle in needles:  # regex metacharacters in needles are literals
        m = rx.match(needle)
        assert m is not None and m.group() == needle
    for text in ("ab.", "a(|*b", "ba.ab"):
        m = rx.match(text)
        starts = [n for n in needles if text.startswith(n)]
        assert (m.group() if m else None) == (max(starts, key=len) if starts else None)
