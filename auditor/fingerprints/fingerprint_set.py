"""FingerprintSet: the ordered fingerprints of an audit (built-in rows, CSV files, config entries) and their
compiled matchers, asked by the probes' callbacks whether a DNS answer, a page or a redirect is a block."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence

from auditor.config import FingerprintConfig
from auditor.errors import ConfigError, ConfigProblem
from auditor.fingerprints.matcher import LocationMatcher
from auditor.fingerprints.model import HOST_PATTERN, Fingerprint, regexp_problem
from auditor.fingerprints.normalise import (
    is_ip,
    location_host,
    normalise_address,
    normalise_body,
    normalise_host,
)
from auditor.fingerprints.ooni_csv import builtin_fingerprints, load_ooni_csv


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
        self._matchers: dict[tuple[str, bool], LocationMatcher] = {}
        for (location, is_fp), entries in groups.items():
            if location == "dns":
                matcher = LocationMatcher(entries, normalise_address)
            elif location == "body":
                matcher = LocationMatcher(entries, normalise_body, normalise_body)
            else:
                matcher = LocationMatcher(entries)
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
            shipped, shipped_problems = builtin_fingerprints()
            fingerprints += shipped
            problems += shipped_problems

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
            if not is_ip(address):
                errors.append(ConfigProblem(f"{key_path}.dns_ips[{i}]", f"{raw!r} is not an IP address"))
                continue
            fingerprints.append(
                _config_fp(id_prefix, "dns_ip", i, "dns", "full", text, f"{key_path}.dns_ips[{i}]")
            )

        for i, pattern in enumerate(cfg.body_patterns):
            where = f"{key_path}.body_patterns[{i}]"
            problem = "empty pattern, it would match every page" if pattern == "" else regexp_problem(pattern)
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
        host = location_host(location)
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
                    found |= matcher.match_host(location_host(value))
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
    if "://" in text or any(c in text for c in "/?#@ ") or (":" in text and not is_ip(text.strip("[]"))):
        return f"{host!r} is not a host name; write just the host (e.g. warning.example.vn)"
    if text.startswith("*."):
        return f"write {text[2:]!r}: subdomains of a redirect host always count"
    try:
        normalise_host(text)
    except ValueError as exc:
        return str(exc)
    return ""
