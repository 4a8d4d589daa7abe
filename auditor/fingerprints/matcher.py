"""The compiled matcher for the fingerprints of one location: full, prefix, contains, regexp and host."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from auditor.fingerprints.model import HOST_PATTERN, Fingerprint
from auditor.fingerprints.normalise import identity, normalise_host
from auditor.fingerprints.search import PrefixIndex, SubstringIndex, required_prefix


class LocationMatcher:
    """The fingerprints of one location (and one side: blocks or false positives).

    `normalise` is applied to the value matched and to `full` patterns (equality); `normalise_literal` to
    `prefix` and `contains` patterns (for DNS these stay as written: "10.10." must not become "10.10")."""

    def __init__(
        self,
        entries: Sequence[tuple[int, Fingerprint]],
        normalise: Callable[[str], str] = identity,
        normalise_literal: Callable[[str], str] = identity,
    ) -> None:
        self._normalise = normalise
        full: dict[str, list[int]] = {}
        prefix: dict[str, list[int]] = {}
        contains: dict[str, list[int]] = {}
        self._regexps: list[tuple[int, str, re.Pattern[str]]] = []
        self._hosts: list[tuple[int, str]] = []
        for index, fp in entries:
            if fp.pattern_type == "regexp":
                self._regexps.append((index, required_prefix(fp.pattern), re.compile(fp.pattern)))
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
        self._prefix = PrefixIndex(prefix)
        self._contains = SubstringIndex(contains)

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
