"""Block-page fingerprints: known signs that a DNS answer, a page or a redirect is a block.

Sources, in this order (the order results are reported in):
  1. the Vietnam rows of OONI's blocking-fingerprints, shipped in auditor/data (see data/ATTRIBUTION.md);
  2. OONI-format CSV files named in `fingerprints.files`;
  3. `fingerprints.dns_ips`, `fingerprints.body_patterns` (Python regexps) and `fingerprints.redirect_hosts`.

A fingerprint of scope `fp` is a known FALSE positive (it looks like a block page but is not): the `match_*`
methods never return one; `false_positive_for_*` return only those, so a verdict can say why it did not
count a page as a block.

This module only compares strings: it does no network I/O and keeps no state beyond the compiled matchers.

Matching follows OONI's semantics (case-sensitive, Python `re.search` without flags) with two deliberate
additions: IP addresses are compared in canonical form, and in bodies a CRLF counts the same as an LF
(OONI's CSV stores its multi-line body patterns with CRLF line ends, while many servers send LF).
"""

from __future__ import annotations

import csv
import functools
import ipaddress
import math
import os
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import IO
from urllib.parse import urlsplit

import idna

from auditor.config import FingerprintConfig
from auditor.errors import ConfigError, ConfigProblem

PATTERN_TYPES = frozenset({"full", "prefix", "contains", "regexp"})
# Not an OONI pattern type: a config `redirect_hosts` entry, matching the Location URL's host or a subdomain.
HOST_PATTERN = "host"
# OONI's scopes (its scripts/validate_csv.py accepts exactly these eight), and ours for config entries.
SCOPES = {
    "nat": "national",
    "isp": "ISP",
    "prod": "middlebox product",
    "inst": "institution",
    "vbw": "vague word",
    "fp": "known false positive",
    "injb": "benign injection (e.g. a router's update notice), not a block",
    "prov": "the site's own restriction (e.g. a geoblock), not the network's",
    "config": "given in the audit config",
}
FALSE_POSITIVE_SCOPE = "fp"
BUILTIN_FILES = ("ooni_fingerprints_dns_vn.csv", "ooni_fingerprints_http_vn.csv")
BUILTIN_ORIGIN = "ooni-builtin"

_REQUIRED_COLUMNS = ("name", "scope", "location_found", "pattern_type", "pattern")
_HEADER_LOCATION = re.compile(r"header\.[!#$%&'*+.^_`|~0-9a-z-]+")  # RFC 9110 token, lower-cased
_DOTTED_QUAD = re.compile(r"(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})")


@dataclass(frozen=True)
class Fingerprint:
    id: str  # OONI name, or e.g. "config.dns_ip.1", "provider.viettel.body.2"
    scope: str  # OONI scope: nat, isp, prod, inst, vbw, fp (others are kept as given)
    location: str  # "dns", "body" or "header.<lower-case-name>"
    pattern_type: str  # full, prefix, contains, regexp; "host" for a redirect_hosts entry
    pattern: str  # as written in the source (CSV rows are not altered)
    origin: str  # "ooni-builtin", "file:PATH" or "config"
    notes: str = ""

    @property
    def is_false_positive(self) -> bool:
        return self.scope == FALSE_POSITIVE_SCOPE


# ---------------------------------------------------------------------------------------------------------
# Reading OONI CSVs


def load_ooni_csv(path: str | os.PathLike[str]) -> tuple[list[Fingerprint], list[str]]:
    """Read an OONI blocking-fingerprints CSV (either the dns or the http one).

    Returns the fingerprints and the problems, one per skipped row ("PATH:LINE: skipped: ..."). A row is
    skipped when its location_found or pattern_type is unknown (OONI's file has had rows with shifted
    columns), its field count is wrong, its pattern is empty, or its regexp does not compile.
    Raises OSError / UnicodeDecodeError if the file cannot be read, and ValueError if it is not an OONI
    fingerprints CSV at all (no such header) or the CSV itself is broken.
    """
    with open(path, encoding="utf-8-sig", newline="") as fh:
        return _parse_ooni_csv(fh, label=str(path), origin=f"file:{path}")


def _parse_ooni_csv(fh: IO[str], *, label: str, origin: str) -> tuple[list[Fingerprint], list[str]]:
    reader = csv.reader(fh)
    header = next(reader, None)
    if header is None:
        raise ValueError(f"{label}: empty file, expected an OONI fingerprints CSV header")
    columns = [h.strip().lower() for h in header]
    missing = [c for c in _REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise ValueError(f"{label}: not an OONI fingerprints CSV (no column {', '.join(missing)})")
    col = {name: columns.index(name) for name in columns}

    fingerprints: list[Fingerprint] = []
    problems: list[str] = []
    start = reader.line_num + 1  # the physical line a record starts on (records can span lines)
    rows = iter(reader)
    while True:
        try:
            row = next(rows)
        except StopIteration:
            break
        except csv.Error as exc:  # e.g. a field over csv.field_size_limit(): the rest cannot be trusted
            raise ValueError(f"{label}:{reader.line_num}: unreadable CSV: {exc}") from exc
        line, start = start, reader.line_num + 1
        if not any(field.strip() for field in row):
            continue
        problem = _row_problem(row, col, len(columns))
        if problem:
            problems.append(f"{label}:{line}: skipped: {problem}")
            continue
        fingerprints.append(
            Fingerprint(
                id=row[col["name"]].strip(),
                scope=row[col["scope"]].strip().lower(),
                location=row[col["location_found"]].strip().lower(),
                pattern_type=row[col["pattern_type"]].strip().lower(),
                pattern=row[col["pattern"]],
                origin=origin,
                notes=row[col["notes"]] if "notes" in col and col["notes"] < len(row) else "",
            )
        )
    return fingerprints, problems


def _row_problem(row: list[str], col: dict[str, int], width: int) -> str:
    def get(name: str) -> str:
        i = col[name]
        return row[i] if i < len(row) else ""

    location = get("location_found").strip().lower()
    pattern_type = get("pattern_type").strip().lower()
    if location not in ("dns", "body") and not _HEADER_LOCATION.fullmatch(location):
        return f"unknown location_found {_short(get('location_found'))}"
    if pattern_type not in PATTERN_TYPES:
        return f"unknown pattern_type {_short(get('pattern_type'))}"
    if len(row) < width or any(field.strip() for field in row[width:]):
        return f"{len(row)} fields, expected {width} (shifted columns?)"
    if not get("name").strip():
        return "no name"
    pattern = get("pattern")
    if pattern == "":
        return "empty pattern"
    if pattern_type == "regexp":
        return _regexp_problem(pattern)
    return ""


def _regexp_problem(pattern: str) -> str:
    try:
        rx = re.compile(pattern)
    except (re.error, OverflowError, RecursionError, ValueError) as exc:
        return f"invalid regexp {_short(pattern)}: {exc}"
    if rx.search("") is not None:
        return f"regexp {_short(pattern)} matches the empty string, so it would match everything"
    return ""


def _short(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


@functools.cache
def builtin_fingerprints() -> tuple[tuple[Fingerprint, ...], tuple[str, ...]]:
    """The shipped Vietnam rows of OONI's fingerprints, read once."""
    fingerprints: list[Fingerprint] = []
    problems: list[str] = []
    data = resources.files("auditor").joinpath("data")
    for name in BUILTIN_FILES:
        with data.joinpath(name).open("r", encoding="utf-8-sig", newline="") as fh:
            fps, probs = _parse_ooni_csv(fh, label=f"auditor/data/{name}", origin=BUILTIN_ORIGIN)
        fingerprints += fps
        problems += probs
    return tuple(fingerprints), tuple(problems)


# ---------------------------------------------------------------------------------------------------------
# Normalisation


def normalise_address(value: str) -> str:
    """Canonical text of an address: '::ffff:1.2.3.4' -> '1.2.3.4', '010.001.2.3' -> '10.1.2.3',
    IPv6 compressed and lower-case. Anything that is not an IP address is lower-cased (OONI's dns file
    also holds a few host names)."""
    text = value.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        m = _DOTTED_QUAD.fullmatch(text)
        # ipaddress rejects leading zeros (they meant octal to inet_aton); resolvers' answers never have
        # them, so a config or CSV that does means decimal.
        if m and all(int(octet) <= 255 for octet in m.groups()):
            return ".".join(str(int(octet)) for octet in m.groups())
        return text.lower().rstrip(".")
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def normalise_host(host: str) -> str:
    """A host name as compared for redirects: lower-case, no trailing dot, IDNA A-labels (UTS 46);
    an IP literal in canonical form. Raises ValueError if a non-ASCII name is not valid IDNA."""
    text = host.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    text = text.rstrip(".")
    if _is_ip(text) or _DOTTED_QUAD.fullmatch(text):
        return normalise_address(text)
    if text.isascii():
        # Plain ASCII needs no IDNA (and IDNA would refuse legal DNS names such as ones with "_").
        return text.lower()
    try:
        return idna.encode(text, uts46=True, transitional=False).decode("ascii").lower()
    except idna.IDNAError as exc:
        raise ValueError(f"{host!r} is not a valid internationalised host name: {exc}") from exc


def _normalise_body(text: str) -> str:
    return text.replace("\r\n", "\n") if "\r" in text else text


def _identity(text: str) -> str:
    return text


# ---------------------------------------------------------------------------------------------------------
# Matchers


def _trie_regex(needles: Iterable[str]) -> str:
    """One regex matching any of the needles, written as a trie so `re` checks each position cheaply.

    Greedy optional groups make it return the LONGEST needle matching at a position; every other needle
    matching there is a prefix of that one.
    """
    root: dict[str, dict] = {}
    for needle in needles:
        node = root
        for ch in needle:
            node = node.setdefault(ch, {})
        node[""] = {}

    def emit(node: dict[str, dict]) -> str:
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
# rough sizes matter). It decides which part of each pattern the body scan looks for; see _SubstringIndex.
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


class _PrefixIndex:
    """Literal needles that must start the text: one anchored match of one trie regex."""

    def __init__(self, needles: dict[str, list[int]]) -> None:
        self._regex = re.compile(_trie_regex(needles)) if needles else None
        self._closure = {needle: _prefix_closure(needle, needles) for needle in needles}

    def prefixes_of(self, text: str) -> set[int]:
        m = self._regex.match(text) if self._regex is not None else None
        return set(self._closure[m.group()]) if m else set()


class _SubstringIndex:
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
        self._regex = re.compile(_trie_regex(anchors))
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


def _required_prefix(pattern: str) -> str:
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


class _Matcher:
    """The fingerprints of one location (and one side: blocks or false positives).

    `normalise` is applied to the value matched and to `full` patterns (equality); `normalise_literal` to
    `prefix` and `contains` patterns (for DNS these stay as written: "10.10." must not become "10.10")."""

    def __init__(
        self,
        entries: Sequence[tuple[int, Fingerprint]],
        normalise: Callable[[str], str] = _identity,
        normalise_literal: Callable[[str], str] = _identity,
    ) -> None:
        self._normalise = normalise
        full: dict[str, list[int]] = {}
        prefix: dict[str, list[int]] = {}
        contains: dict[str, list[int]] = {}
        self._regexps: list[tuple[int, str, re.Pattern[str]]] = []
        self._hosts: list[tuple[int, str]] = []
        for index, fp in entries:
            if fp.pattern_type == "regexp":
                self._regexps.append((index, _required_prefix(fp.pattern), re.compile(fp.pattern)))
            elif fp.pattern_type == HOST_PATTERN:
                self._hosts.append((index, normalise_host(fp.pattern)))
            elif fp.pattern_type == "full":
                full.setdefault(normalise(fp.pattern), []).append(index)
            elif fp.pattern_type in ("prefix", "contains"):
                table = prefix if fp.pattern_type == "prefix" else contains
                table.setdefault(normalise_literal(fp.pattern), []).append(index)
            else:
                raise ValueError(f"fingerprint {fp.id}: unknown pattern_type {fp.pattern_type!r}")
        self._full = full
        self._prefix = _PrefixIndex(prefix)
        self._contains = _SubstringIndex(contains)

    def match(self, value: str) -> set[int]:
        text = self._normalise(value)
        found = set(self._full.get(text, ()))
        found |= self._prefix.prefixes_of(text)
        found |= self._contains.contained_in(text)
        for index, required, rx in self._regexps:
            # `in` finds a literal several times faster than `re` does; most pages lack it.
            if required in text and rx.search(text):
                found.add(index)
        return found

    def match_host(self, host: str) -> set[int]:
        return {i for i, h in self._hosts if host == h or host.endswith("." + h)}


# ---------------------------------------------------------------------------------------------------------
# The set


class FingerprintSet:
    """An ordered, de-duplicated set of fingerprints with compiled matchers. Immutable once built."""

    def __init__(self, fingerprints: Iterable[Fingerprint] = (), problems: Iterable[str] = ()) -> None:
        unique: list[Fingerprint] = []
        seen: set[tuple[str, str, str, str]] = set()
        for fp in fingerprints:
            key = (fp.location, fp.pattern_type, fp.pattern, fp.scope)
            if key not in seen:  # the same pattern from two sources: keep the first (its id is reported)
                seen.add(key)
                unique.append(fp)
        self._fingerprints = tuple(unique)
        self.problems: tuple[str, ...] = tuple(dict.fromkeys(problems))

        groups: dict[tuple[str, bool], list[tuple[int, Fingerprint]]] = {}
        for index, fp in enumerate(self._fingerprints):
            groups.setdefault((fp.location, fp.is_false_positive), []).append((index, fp))
        self._matchers: dict[tuple[str, bool], _Matcher] = {}
        for (location, is_fp), entries in groups.items():
            if location == "dns":
                matcher = _Matcher(entries, normalise_address)
            elif location == "body":
                matcher = _Matcher(entries, _normalise_body, _normalise_body)
            else:
                matcher = _Matcher(entries)
            self._matchers[(location, is_fp)] = matcher
        self._header_names = sorted({loc[len("header.") :] for loc, _ in groups if loc.startswith("header.")})

    # -- construction

    @classmethod
    def build(
        cls,
        cfg: FingerprintConfig,
        *,
        builtin: bool = True,
        id_prefix: str = "config",
        key_path: str = "fingerprints",
        source: str = "config",
    ) -> FingerprintSet:
        """The builtin Vietnam rows (unless builtin=False), then cfg.files, dns_ips, body_patterns and
        redirect_hosts. Raises ConfigError listing every unreadable file and invalid entry by key path
        (`key_path` is e.g. "providers[1].fingerprints" for a provider's additions; `source` names the
        config file). Skipped CSV rows are not errors: they are in `.problems`."""
        fingerprints: list[Fingerprint] = []
        problems: list[str] = []
        errors: list[ConfigProblem] = []
        if builtin:
            fps, probs = builtin_fingerprints()
            fingerprints += fps
            problems += probs

        for i, path in enumerate(cfg.files):
            where = f"{key_path}.files[{i}]"
            try:
                fps, probs = load_ooni_csv(path)
            except OSError as exc:
                errors.append(
                    ConfigProblem(where, f"cannot read fingerprint file {path}: {exc.strerror or exc}")
                )
                continue
            except UnicodeDecodeError as exc:
                errors.append(ConfigProblem(where, f"fingerprint file {path} is not UTF-8 text: {exc}"))
                continue
            except ValueError as exc:
                errors.append(ConfigProblem(where, f"{exc}; expected an OONI blocking-fingerprints CSV"))
                continue
            fingerprints += fps
            problems += probs

        for i, raw in enumerate(cfg.dns_ips):
            text = raw.strip()
            address = normalise_address(text)
            if not _is_ip(address):
                errors.append(ConfigProblem(f"{key_path}.dns_ips[{i}]", f"{raw!r} is not an IP address"))
                continue
            fingerprints.append(
                _config_fp(id_prefix, "dns_ip", i, "dns", "full", text, f"{key_path}.dns_ips[{i}]")
            )

        for i, pattern in enumerate(cfg.body_patterns):
            where = f"{key_path}.body_patterns[{i}]"
            problem = (
                "empty pattern, it would match every page" if pattern == "" else _regexp_problem(pattern)
            )
            if problem:
                errors.append(ConfigProblem(where, f"{problem} (a Python regular expression is expected)"))
                continue
            fingerprints.append(_config_fp(id_prefix, "body", i, "body", "regexp", pattern, where))

        for i, host in enumerate(cfg.redirect_hosts):
            where = f"{key_path}.redirect_hosts[{i}]"
            problem = _redirect_host_problem(host)
            if problem:
                errors.append(ConfigProblem(where, problem))
                continue
            fingerprints.append(
                _config_fp(
                    id_prefix, "redirect_host", i, "header.location", HOST_PATTERN, host.strip(), where
                )
            )

        if errors:
            raise ConfigError(source, errors)
        return cls(fingerprints, problems)

    def merged(self, other: FingerprintSet) -> FingerprintSet:
        """This set with `other`'s fingerprints after it (e.g. a provider's additions on top of the global
        set). A fingerprint already here (same location, type, pattern and scope) is not added twice, so
        merging a set that also holds the builtins does not duplicate them."""
        return FingerprintSet(self._fingerprints + other._fingerprints, self.problems + other.problems)

    # -- matching

    def match_dns_ip(self, ip: str) -> Fingerprint | None:
        """The first block fingerprint for this resolved address, or None."""
        found = self._match(("dns", False), ip)
        return found[0] if found else None

    def match_body(self, text: str) -> tuple[Fingerprint, ...]:
        """Block fingerprints found in already-decoded body text (whatever prefix the caller read)."""
        return self._match(("body", False), text)

    def false_positive_for_body(self, text: str) -> tuple[Fingerprint, ...]:
        """Known false-positive (scope fp) fingerprints found in the body text."""
        return self._match(("body", True), text)

    def match_headers(self, headers: Sequence[tuple[str, str]]) -> tuple[Fingerprint, ...]:
        """Block fingerprints on response headers; names compare case-insensitively, values as given.
        A Location header is also checked against redirect_hosts (as match_redirect does)."""
        return self._match_headers(headers, False)

    def false_positive_for_headers(self, headers: Sequence[tuple[str, str]]) -> tuple[Fingerprint, ...]:
        return self._match_headers(headers, True)

    def match_redirect(self, location: str) -> Fingerprint | None:
        """A block fingerprint for a redirect: the Location URL's host is a `redirect_hosts` entry or a
        subdomain of one, or a header.location fingerprint matches the Location value."""
        matcher = self._matchers.get(("header.location", False))
        if matcher is None:
            return None
        found = matcher.match(location.strip())
        host = _location_host(location)
        if host:
            found |= matcher.match_host(host)
        return self._fingerprints[min(found)] if found else None

    def _match(self, key: tuple[str, bool], value: str) -> tuple[Fingerprint, ...]:
        matcher = self._matchers.get(key)
        if matcher is None:
            return ()
        return tuple(self._fingerprints[i] for i in sorted(matcher.match(value)))

    def _match_headers(
        self, headers: Sequence[tuple[str, str]], false_positive: bool
    ) -> tuple[Fingerprint, ...]:
        found: set[int] = set()
        for name, value in headers:
            lower = name.strip().lower()
            matcher = self._matchers.get((f"header.{lower}", false_positive))
            if matcher is not None:
                found |= matcher.match(value)
                if lower == "location":
                    found |= matcher.match_host(_location_host(value))
        return tuple(self._fingerprints[i] for i in sorted(found))

    # -- introspection

    @property
    def fingerprints(self) -> tuple[Fingerprint, ...]:
        return self._fingerprints

    @property
    def header_names(self) -> tuple[str, ...]:
        """Lower-case names of the headers some fingerprint looks at (e.g. "location", "server")."""
        return tuple(self._header_names)

    def __len__(self) -> int:
        return len(self._fingerprints)

    def __iter__(self) -> Iterator[Fingerprint]:
        return iter(self._fingerprints)

    def __contains__(self, item: object) -> bool:
        return item in self._fingerprints

    def get(self, fingerprint_id: str) -> Fingerprint | None:
        return next((fp for fp in self._fingerprints if fp.id == fingerprint_id), None)

    def describe(self) -> str:
        """E.g. "5 fingerprints: dns 2, body 2, header.location 1 (0 known false positives)"."""
        per_location = Counter(fp.location for fp in self._fingerprints)
        order = sorted(per_location, key=lambda loc: ({"dns": 0, "body": 1}.get(loc, 2), loc))
        parts = ", ".join(f"{loc} {per_location[loc]}" for loc in order) or "none"
        fps = sum(fp.is_false_positive for fp in self._fingerprints)
        text = f"{len(self)} fingerprints: {parts} ({fps} known false positives)"
        if self.problems:
            text += f"; {len(self.problems)} rows skipped"
        return text

    def __repr__(self) -> str:
        return f"<FingerprintSet {self.describe()}>"


def _config_fp(
    prefix: str, kind: str, i: int, location: str, pattern_type: str, pattern: str, where: str
) -> Fingerprint:
    # Ids count from 1 ("config.body.1" is body_patterns[0]); the key path is kept in notes.
    return Fingerprint(
        id=f"{prefix}.{kind}.{i + 1}",
        scope="config",
        location=location,
        pattern_type=pattern_type,
        pattern=pattern,
        origin="config",
        notes=where,
    )


def _redirect_host_problem(host: str) -> str:
    text = host.strip()
    if not text:
        return "empty host name"
    if "://" in text or any(c in text for c in "/?#@ ") or (":" in text and not _is_ip(text.strip("[]"))):
        return f"{host!r} is not a host name; write just the host (e.g. warning.example.vn)"
    if text.startswith("*."):
        return f"write {text[2:]!r}: subdomains of a redirect host always count"
    try:
        normalise_host(text)
    except ValueError as exc:
        return str(exc)
    return ""


def _location_host(location: str) -> str:
    try:
        hostname = urlsplit(location.strip()).hostname
    except ValueError:  # e.g. an unbalanced IPv6 bracket
        return ""
    if not hostname:
        return ""
    try:
        return normalise_host(hostname)
    except ValueError:
        return hostname.lower().rstrip(".")


__all__ = [
    "FALSE_POSITIVE_SCOPE",
    "PATTERN_TYPES",
    "SCOPES",
    "Fingerprint",
    "FingerprintSet",
    "builtin_fingerprints",
    "load_ooni_csv",
    "normalise_address",
    "normalise_host",
]
