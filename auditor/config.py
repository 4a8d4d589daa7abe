"""The audit's configuration: typed, validated before any probing.

`load_config(path)` reads YAML; `parse_config(data, base_dir)` validates a mapping. Every problem is
reported at once with its key path (and YAML line where known) in a ConfigError.

Validation never touches the network: resolvers must be IP literals because looking a name up would itself
be a measurement (through which resolver, from which vantage?). It does read the local files the config
names (lists, fingerprint CSVs, the extra CA file) to check that they exist.

Null means "not set": an optional key written with no value (`tls:` or `extra_ca_file: null`) takes its
default, exactly as if it were left out.
"""

from __future__ import annotations

import difflib
import ipaddress
import math
import os
import re
import ssl
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

import yaml

from auditor.errors import ConfigError, ConfigProblem
from probes.base import Timeouts  # one definition: the probes apply them, the config sets them

VantageKind = Literal["direct", "source_address", "interface", "proxy"]


@dataclass(frozen=True)
class VantageConfig:
    """Where a provider's traffic leaves from: {} direct, a local source address, an interface, SOCKS5."""

    kind: VantageKind = "direct"
    value: str = ""  # IP for source_address, NAME for interface, socks5:// URL for proxy

    def describe(self) -> str:
        """For logs and reports: never shows a proxy password."""
        if self.kind == "proxy":
            from urllib.parse import urlsplit

            parts = urlsplit(self.value)
            host = parts.hostname or ""
            if ":" in host:
                host = f"[{host}]"
            return f"socks5 {host}:{parts.port}"
        if self.kind == "direct":
            return "direct"
        return f"{self.kind.replace('_', ' ')} {self.value}"


@dataclass(frozen=True)
class ResolverAddress:
    ip: str
    port: int = 53

    def __str__(self) -> str:
        return f"[{self.ip}]:{self.port}" if ":" in self.ip else f"{self.ip}:{self.port}"


@dataclass(frozen=True)
class FingerprintConfig:
    dns_ips: tuple[str, ...] = ()
    body_patterns: tuple[str, ...] = ()  # regular expressions (Python re), matched on decoded text
    redirect_hosts: tuple[str, ...] = ()  # a redirect to this host or a subdomain of it is a block
    files: tuple[Path, ...] = ()  # OONI blocking-fingerprints CSVs


@dataclass(frozen=True)
class ProviderConfig:
    id: str
    name: str
    resolvers: tuple[ResolverAddress, ...]
    vantage: VantageConfig = VantageConfig()
    asn: int | None = None
    fingerprints: FingerprintConfig = FingerprintConfig()


@dataclass(frozen=True)
class ControlConfig:
    resolvers: tuple[ResolverAddress, ...]
    vantage: VantageConfig = VantageConfig()


@dataclass(frozen=True)
class LimitsConfig:
    """Politeness toward the networks being measured: they serve real users."""

    resolver_qps: float = 100.0  # queries per second to each resolver, from each vantage (0: no limit)
    per_destination: int = 8  # connections at once to one address, from each vantage (0: no limit)


@dataclass(frozen=True)
class SensitiveConfig:
    """Entries whose content must never be read, and whose URLs outputs may hide behind a keyed hash."""

    lists: tuple[Path, ...] = ()  # every entry of these lists is sensitive
    categories: tuple[str, ...] = ()  # category codes sensitive in any list (e.g. a CSAM code)
    hash_urls: bool = False  # CSVs and reports show HMAC-SHA256(key, url) instead of the URL
    hash_key_env: str = "AUDITOR_URL_KEY"  # environment variable holding the HMAC key
    hash_key: str = field(default="", repr=False)  # or the key itself (keep the config file private)

    @property
    def list_names(self) -> frozenset[str]:
        return frozenset(p.stem for p in self.lists)

    def is_sensitive(self, list_name: str, category_code: str) -> bool:
        return list_name in self.list_names or (bool(category_code) and category_code in self.categories)


@dataclass(frozen=True)
class Config:
    province: str
    providers: tuple[ProviderConfig, ...]
    control: ControlConfig
    lists: tuple[Path, ...] = ()
    canaries: tuple[str, ...] = ()
    store: str = ""  # store URL; parse_config fills in the default (see default_store_url); "" means it too
    output_dir: Path = Path("reports")
    fingerprints: FingerprintConfig = FingerprintConfig()
    timeouts: Timeouts = Timeouts()
    concurrency: int = 100
    extra_ca_file: Path | None = None  # tls.extra_ca_file
    grace_hours: float = 24.0
    timezone: str = "Asia/Ho_Chi_Minh"  # how list dates (YYYY-MM-DD) are read for the grace period
    loopback_only: bool = False  # network.loopback_only: refuse to dial anything but 127.0.0.0/8 and ::1
    allow_private_destinations: bool = False  # network.allow_private_destinations: dial non-public answers
    sensitive: SensitiveConfig = SensitiveConfig()
    limits: LimitsConfig = LimitsConfig()
    must_block: tuple[str, ...] = ()  # benign test URLs seeded into the lists: a provider must block them
    must_allow: tuple[str, ...] = ()  # URLs that must stay reachable: any blocked is over-blocking
    source: Path | None = field(default=None, compare=False)  # the file it came from

    def provider(self, provider_id: str) -> ProviderConfig | None:
        return next((p for p in self.providers if p.id == provider_id), None)

    def fingerprints_for(self, provider: ProviderConfig) -> FingerprintConfig:
        """The global fingerprints plus the provider's own (a provider's list adds, never replaces)."""
        mine, theirs = self.fingerprints, provider.fingerprints

        def both(a: tuple[Any, ...], b: tuple[Any, ...]) -> tuple[Any, ...]:
            return tuple(dict.fromkeys(a + b))

        return FingerprintConfig(
            dns_ips=both(mine.dns_ips, theirs.dns_ips),
            body_patterns=both(mine.body_patterns, theirs.body_patterns),
            redirect_hosts=both(mine.redirect_hosts, theirs.redirect_hosts),
            files=both(mine.files, theirs.files),
        )


# ---------------------------------------------------------------------------------------------------------
# Loading

EXAMPLE_FILE = "config.example.yaml"

# The schema's key names, in the order config.example.yaml shows them (also the order of "expected one of").
TOP_KEYS = (
    "province", "store", "output_dir", "lists", "canaries", "control", "providers",
    "fingerprints", "timeouts", "concurrency", "tls", "grace_hours", "timezone", "network",
    "limits", "sensitive", "must_block", "must_allow",
)  # fmt: skip
LIMITS_KEYS = ("resolver_qps", "per_destination")
SENSITIVE_KEYS = ("lists", "categories", "hash_urls", "hash_key_env", "hash_key")
CONTROL_KEYS = ("resolvers", "vantage")
PROVIDER_KEYS = ("id", "name", "asn", "resolvers", "vantage", "fingerprints")
VANTAGE_KEYS = ("source_address", "interface", "proxy")
FINGERPRINT_KEYS = ("dns_ips", "body_patterns", "redirect_hosts", "files")
TIMEOUT_KEYS = ("dns", "connect", "tls", "http")
TLS_KEYS = ("extra_ca_file",)
NETWORK_KEYS = ("loopback_only", "allow_private_destinations")

MAX_TIMEOUT = 300  # seconds: a single probe step stuck longer than this would stall the nightly run
MAX_CONCURRENCY = 10_000
MAX_ASN = 4_294_967_295  # 32-bit AS numbers (RFC 6793)
MAX_IFNAME = 15  # Linux IFNAMSIZ (16) minus the terminating NUL

_PROVIDER_ID = re.compile(r"[a-z0-9_-]+")
_URL_CREDENTIALS = re.compile(r"(?i)([a-z][a-z0-9+.-]*://)[^/?#@\s]*@")
_HOST_LABEL = re.compile(r"(?!-)[a-z0-9_-]{1,63}(?<!-)")
_RESOLVER_EXAMPLE = "1.1.1.1 or 8.8.8.8:53"
_RESOLVER_FORMS = (
    f"must be IP or IP:PORT, e.g. {_RESOLVER_EXAMPLE} ([2001:4860:4860::8888]:53 for IPv6 with a port)"
)
_PROXY_EXAMPLE = (
    "socks5://127.0.0.1:1080 (from `ssh -D 1080 probe@box-on-the-line`) or socks5://user:pass@10.0.0.2:1080"
)
_STORE_FORMS = (
    "supported: sqlite:///PATH (a relative PATH is read from the config file's directory; "
    "sqlite:////var/lib/auditor/audit.db for an absolute one), sqlite:///:memory: (nothing kept), "
    "or an empty string for the default file in the user's data directory"
)
_HINT = f"{EXAMPLE_FILE} shows every key, with comments"
_MISSING: Any = object()


def default_store_url() -> str:
    """sqlite:/// + platformdirs.user_data_dir("auditor")/audit.db: absolute, so four slashes on POSIX."""
    import platformdirs

    return "sqlite:///" + str(Path(platformdirs.user_data_dir("auditor")) / "audit.db")


def load_config(path: Path) -> Config:
    """Read and validate a YAML config file; raise ConfigError listing every problem, with line numbers."""
    path = Path(path)
    source = str(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise _file_error(
            source,
            "no such file",
            f"copy {EXAMPLE_FILE} to {source} and edit it, or pass -c/--config PATH",
        ) from None
    except IsADirectoryError:
        raise _file_error(
            source, "is a directory, not a YAML file", "pass -c/--config PATH/TO/config.yaml"
        ) from None
    except OSError as exc:
        raise _file_error(
            source, f"cannot be read: {exc.strerror or exc}", "check the path and permissions"
        ) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _file_error(
            source, f"is not UTF-8 text (bad byte at offset {exc.start})", "save it as UTF-8"
        ) from None

    loader: yaml.SafeLoader | None = None
    try:
        loader = yaml.SafeLoader(text)  # the reader already rejects control characters here
        node = loader.get_single_node()
        lines, duplicates = _key_lines(node)
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        raise _yaml_error(source, exc) from None
    except yaml.YAMLError as exc:
        raise _file_error(source, f"is not valid YAML: {exc}", "check the YAML syntax") from None
    except RecursionError:
        raise _file_error(source, "is nested too deeply to be a config", _HINT) from None
    # The constructor raises plain errors too, e.g. ValueError for a date like 2024-02-30.
    except (ValueError, TypeError, OverflowError) as exc:
        raise _file_error(source, f"has a value YAML cannot read: {exc}", "quote the value") from None
    # PyYAML's constructors for explicit tags fail on a value not of their type with bare errors:
    # KeyError for `!!bool x`, IndexError for `!!int ''`, AttributeError for `!!timestamp x`.
    except (LookupError, AttributeError):
        raise _file_error(
            source,
            "has a value with a tag (!!bool, !!int, !!float, !!timestamp) that it does not match",
            "remove the tag or fix the value",
        ) from None
    finally:
        if loader is not None:
            loader.dispose()
    config = _parse(data, path.parent, source, lines, duplicates)
    return replace(config, source=path)


def parse_config(
    data: object, base_dir: Path, source: str = "<config>", *, lines: Mapping[str, int] | None = None
) -> Config:
    """Validate an already-parsed document; relative paths are read from `base_dir`.

    `lines` maps key paths (as in ConfigProblem.path) to 1-based YAML lines; problems at a path without
    a line of its own take the line of the nearest enclosing key.
    """
    return _parse(data, base_dir, source, lines or {}, [])


def _parse(
    data: object, base_dir: Path, source: str, lines: Mapping[str, int], early: list[ConfigProblem]
) -> Config:
    check = _Checker(Path(os.path.abspath(base_dir)), lines)
    check.problems.extend(early)
    if data is None:
        check.add("", f"the file is empty; copy {EXAMPLE_FILE} and edit it")
        raise check.error(source)
    config = check.config(data)
    if check.problems or config is None:
        raise check.error(source)
    return config


def _file_error(source: str, message: str, hint: str) -> ConfigError:
    error = ConfigError(source, [ConfigProblem("(file)", f"{message}; {hint}")])
    error.hint = hint
    return error


def _yaml_error(source: str, exc: yaml.MarkedYAMLError) -> ConfigError:
    mark = exc.problem_mark or exc.context_mark
    what = " ".join(part for part in (exc.context, exc.problem) if part) or "invalid YAML"
    where = f" (column {mark.column + 1})" if mark is not None else ""
    hint = "fix the YAML syntax near that line (indentation, a missing ':' or an unclosed quote or bracket)"
    error = ConfigError(
        source,
        [ConfigProblem("(yaml)", f"{what}{where}; {hint}", mark.line + 1 if mark is not None else None)],
    )
    error.hint = hint
    return error


def _key_lines(root: yaml.Node | None) -> tuple[dict[str, int], list[ConfigProblem]]:
    """The 1-based line of each mapping key and sequence item, by key path; and duplicate keys.

    Walks the composed node tree (before construction, so merge keys are still visible) without
    recursion, visiting an anchored node once, so aliases cannot blow it up.
    """
    lines: dict[str, int] = {}
    duplicates: list[ConfigProblem] = []
    seen: set[int] = set()
    stack: list[tuple[yaml.Node, str]] = [(root, "")] if root is not None else []
    while stack:
        node, path = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            first: dict[str, int] = {}
            for key_node, value_node in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    stack.append((value_node, path))
                    continue
                if not isinstance(key_node, yaml.ScalarNode):
                    continue
                child = _join(path, key_node.value)
                line = key_node.start_mark.line + 1
                if key_node.value in first:
                    message = (
                        f"duplicate key (first at line {first[key_node.value]}); YAML would silently keep "
                        "only the last one: remove one of them"
                    )
                    duplicates.append(ConfigProblem(child, message, line))
                    continue
                first[key_node.value] = line
                lines.setdefault(child, line)
                stack.append((value_node, child))
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                child = f"{path}[{index}]"
                lines.setdefault(child, item.start_mark.line + 1)
                stack.append((item, child))
    return lines, duplicates


def _join(path: str, key: object) -> str:
    return f"{path}.{key}" if path else str(key)


def _parent(path: str) -> str:
    cut = path.rfind("[") if path.endswith("]") else path.rfind(".")
    return path[:cut] if cut > 0 else ""


def _kind(value: object) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the text {_show(value)}"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"a {type(value).__name__}"  # e.g. a date YAML read from 2024-01-01


def _show(text: str, limit: int = 60) -> str:
    """A value quoted for a message: shortened, and with any URL password masked wherever it was put."""
    text = _URL_CREDENTIALS.sub(r"\1***@", text)
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _quote_hint(value: object) -> str:
    if value is None or isinstance(value, (str, list, tuple, dict)):
        return ""
    return "; put it in quotes if it is meant as text"


class _Checker:
    """Collects problems while converting the document; each method returns None for a bad value."""

    def __init__(self, base_dir: Path, lines: Mapping[str, int]) -> None:
        self.base_dir = base_dir
        self.lines = lines
        self.problems: list[ConfigProblem] = []

    def add(self, path: str, message: str) -> None:
        self.problems.append(ConfigProblem(path or "(top level)", message, self._line(path)))

    def _line(self, path: str) -> int | None:
        while path:
            if path in self.lines:
                return self.lines[path]
            path = _parent(path)
        return None

    def error(self, source: str) -> ConfigError:
        # Problems in file order make them easy to fix top to bottom; those without a line come first.
        problems = sorted(self.problems, key=lambda p: (p.line is not None, p.line or 0))
        error = ConfigError(source, problems)
        error.hint = _HINT
        return error

    # -- generic shapes --------------------------------------------------------------------------------------

    def mapping(
        self, value: object, path: str, allowed: tuple[str, ...], example: str
    ) -> dict[Any, Any] | None:
        if not isinstance(value, dict):
            self.add(path, f"must be a mapping, e.g. {example}; got {_kind(value)}")
            return None
        for key in value:
            if not (isinstance(key, str) and key in allowed):
                self.add(_join(path, key), _unknown_key(key, allowed))
        return value

    def required(self, mapping: dict[Any, Any], path: str, key: str, what: str) -> Any:
        value = mapping.get(key)
        if value is None:
            state = "is empty" if key in mapping else "is required"
            self.add(_join(path, key), f"{state}: {what}")
            return _MISSING
        return value

    def sequence(self, value: object, path: str, example: str) -> list[Any] | None:
        if isinstance(value, str):
            self.add(
                path,
                f"must be a list, not a single string; write [{value.strip()}]"
                if len(value) < 200
                else "must be a list, not a single string",
            )
            return None
        if not isinstance(value, (list, tuple)):
            self.add(path, f"must be a list, e.g. {example}; got {_kind(value)}")
            return None
        return list(value)

    def text(self, value: object, path: str, example: str) -> str | None:
        if not isinstance(value, str):
            self.add(path, f"must be text, e.g. {example}; got {_kind(value)}{_quote_hint(value)}")
            return None
        if not value.strip():
            self.add(path, f"must not be empty, e.g. {example}")
            return None
        return value.strip()

    def number(self, value: object, path: str, low: float, high: float, what: str) -> float | None:
        if _is_number(value) and math.isfinite(value) and low <= value <= high:  # type: ignore[arg-type]
            return float(value)  # type: ignore[arg-type]
        got = f"; got {_kind(value)}" if not _is_number(value) else ""
        self.add(path, f"{what}{got}")
        return None

    def integer(self, value: object, path: str, low: int, high: int, what: str) -> int | None:
        if isinstance(value, int) and not isinstance(value, bool) and low <= value <= high:
            return value
        got = "" if isinstance(value, int) and not isinstance(value, bool) else f"; got {_kind(value)}"
        self.add(path, f"{what}{got}")
        return None

    def path(self, raw: str, where: str) -> Path | None:
        """A path from the config, made absolute: relative ones are read from the config file's directory."""
        try:
            candidate = Path(raw).expanduser()
            if not candidate.is_absolute():
                candidate = self.base_dir / candidate
            return Path(os.path.abspath(candidate))
        except (RuntimeError, ValueError, OSError) as exc:  # e.g. ~nobody-known
            self.add(where, f"is not a usable path ({exc}); write a path like reports or /var/lib/auditor")
            return None

    def existing_file(self, value: object, where: str, what: str, example: str) -> Path | None:
        raw = self.text(value, where, example)
        if raw is None:
            return None
        found = self.path(raw, where)
        if found is None:
            return None
        try:
            is_file, is_dir = found.is_file(), found.is_dir()
        except (OSError, ValueError) as exc:
            self.add(where, f"cannot be checked ({exc}); write the path of an existing {what}")
            return None
        if is_file:
            return found
        relative = (
            "" if Path(raw).expanduser().is_absolute() else f" ({_show(raw)} is read from {self.base_dir})"
        )
        if is_dir:
            self.add(where, f"{found} is a directory; write the path of a {what}, e.g. {example}")
        else:
            self.add(where, f"{what} not found: {found}{relative}; check the path or create the file")
        return None

    def items(self, mapping: dict[Any, Any], path: str, key: str, example: str) -> list[tuple[str, Any]]:
        """(path, item) for each item of an optional list; [] if absent or not a list (reported)."""
        value = mapping.get(key)
        if value is None:
            return []
        where = _join(path, key)
        items = self.sequence(value, where, example)
        return [(f"{where}[{i}]", item) for i, item in enumerate(items or ())]

    # -- the document ----------------------------------------------------------------------------------------

    def config(self, data: object) -> Config | None:
        top = self.mapping(data, "", TOP_KEYS, f"province: ..., providers: [...] (see {EXAMPLE_FILE})")
        if top is None:
            return None
        province = self.required(top, "", "province", 'the province\'s name, e.g. province: "Gia Lai"')
        if province is not _MISSING:
            province = self.text(province, "province", '"Gia Lai"')

        store = self.store(top.get("store"), "store")
        output_dir = self.output_dir(top.get("output_dir"), "output_dir")
        lists = self.lists(top)
        canaries = self.canaries(top)
        control = self.control(top)
        providers = self.providers(top)
        fingerprints = self.fingerprints(top.get("fingerprints"), "fingerprints")
        timeouts = self.timeouts(top.get("timeouts"), "timeouts")
        concurrency = 100
        if top.get("concurrency") is not None:
            concurrency = self.integer(
                top["concurrency"],
                "concurrency",
                1,
                MAX_CONCURRENCY,
                f"must be a whole number of probes at once from 1 to {MAX_CONCURRENCY}, e.g. 100",
            )
        extra_ca_file = self.tls(top.get("tls"), "tls")
        grace_hours = 24.0
        if top.get("grace_hours") is not None:
            grace_hours = self.number(
                top["grace_hours"],
                "grace_hours",
                0,
                math.inf,
                "must be a number of hours, 0 or more, e.g. 24",
            )
        timezone = self.timezone(top.get("timezone"), "timezone")
        loopback_only, allow_private = self.network(top.get("network"), "network")
        sensitive = self.sensitive(top.get("sensitive"), "sensitive", lists)
        limits = self.limits(top.get("limits"), "limits")
        must_block = self.url_list(top, "must_block")
        must_allow = self.url_list(top, "must_allow")

        if self.problems:
            return None
        return Config(
            province=province,
            providers=providers,
            control=control,
            lists=lists,
            canaries=canaries,
            store=store,
            output_dir=output_dir,
            fingerprints=fingerprints,
            timeouts=timeouts,
            concurrency=concurrency,
            extra_ca_file=extra_ca_file,
            grace_hours=grace_hours,
            timezone=timezone,
            loopback_only=loopback_only,
            allow_private_destinations=allow_private,
            sensitive=sensitive,
            limits=limits,
            must_block=must_block,
            must_allow=must_allow,
        )

    def store(self, value: object, path: str) -> str:
        if value is None or (isinstance(value, str) and not value.strip()):
            return default_store_url()
        if not isinstance(value, str):
            self.add(path, f"must be a store URL; {_STORE_FORMS}; got {_kind(value)}")
            return ""
        url = value.strip()
        scheme, sep, rest = url.partition("://")
        if not sep:
            self.add(path, f"{_show(url)} is not a store URL; {_STORE_FORMS}")
            return ""
        if scheme.lower() != "sqlite":
            self.add(path, f"unsupported store {_show(scheme)}; {_STORE_FORMS}")
            return ""
        if not rest.startswith("/") or len(rest) == 1:
            self.add(
                path,
                "a SQLite URL is sqlite:/// (three slashes) then a file path, e.g. sqlite:///audit.db; "
                + _STORE_FORMS,
            )
            return ""
        file = rest[1:]
        if file == ":memory:":
            return "sqlite:///:memory:"
        if "?" in file or "#" in file:
            self.add(path, f"query parameters are not supported in the store URL; {_STORE_FORMS}")
            return ""
        found = self.path(file, path)
        if found is None:
            return ""
        try:
            is_dir = found.is_dir()
        except (OSError, ValueError):
            is_dir = False
        if is_dir:
            self.add(
                path, f"{found} is a directory; write a database file path, e.g. sqlite:///{found}/audit.db"
            )
            return ""
        return f"sqlite:///{found}"

    def output_dir(self, value: object, path: str) -> Path:
        if value is None:
            return self.base_dir / "reports"
        raw = self.text(value, path, "reports")
        found = self.path(raw, path) if raw is not None else None
        if found is None:
            return Path("reports")
        try:
            not_a_dir = found.exists() and not found.is_dir()
        except (OSError, ValueError):
            not_a_dir = False
        if not_a_dir:
            self.add(
                path,
                f"{found} exists and is not a directory; write a directory for the reports, e.g. reports",
            )
        return found

    def lists(self, top: dict[Any, Any]) -> tuple[Path, ...]:
        example = "[blocklists/example.csv]"
        value = self.required(top, "", "lists", f"the reference lists to audit, e.g. lists: {example}")
        if value is _MISSING:
            return ()
        items = self.sequence(value, "lists", example)
        if items is None:
            return ()
        if not items:
            self.add("lists", f"needs at least one reference list, e.g. {example}")
        found = [
            self.existing_file(item, f"lists[{i}]", "list file", "blocklists/example.csv")
            for i, item in enumerate(items)
        ]
        return tuple(f for f in found if f is not None)

    def canaries(self, top: dict[Any, Any]) -> tuple[str, ...]:
        example = "[https://chinhphu.vn/]"
        value = self.required(
            top,
            "",
            "canaries",
            f"URLs that must load at every provider, e.g. canaries: {example} (write canaries: [] for none)",
        )
        if value is _MISSING:
            return ()
        items = self.sequence(value, "canaries", example)
        urls = [self.web_url(item, f"canaries[{i}]") for i, item in enumerate(items or ())]
        return tuple(u for u in urls if u is not None)

    def limits(self, value: object, path: str) -> LimitsConfig:
        if value is None:
            return LimitsConfig()
        found = self.mapping(value, path, LIMITS_KEYS, "{resolver_qps: 100, per_destination: 8}")
        if found is None:
            return LimitsConfig()
        qps, per_destination = LimitsConfig.resolver_qps, LimitsConfig.per_destination
        if found.get("resolver_qps") is not None:
            got = self.number(found["resolver_qps"], f"{path}.resolver_qps", 0, 100_000,
                              "must be queries per second, 0 or more (0: no limit), e.g. 100")
            qps = qps if got is None else float(got)
        if found.get("per_destination") is not None:
            got = self.integer(found["per_destination"], f"{path}.per_destination", 0, 10_000,
                               "must be a whole number of connections, 0 or more (0: no limit), e.g. 8")
            per_destination = per_destination if got is None else got
        return LimitsConfig(qps, per_destination)

    def url_list(self, top: dict[Any, Any], key: str) -> tuple[str, ...]:
        """An optional list of http(s) URLs, normalised (so they match list entries)."""
        from auditor.urls import UrlError, normalise_url

        urls: list[str] = []
        for where, item in self.items(top, "", key, "[https://dichvucong.gov.vn/]"):
            url = self.web_url(item, where)
            if url is None:
                continue
            try:
                urls.append(normalise_url(url).url)
            except UrlError as exc:
                self.add(where, f"must be an http:// or https:// URL ({exc})")
        return tuple(dict.fromkeys(urls))

    def sensitive(self, value: object, path: str, lists: tuple[Path, ...]) -> SensitiveConfig:
        if value is None:
            return SensitiveConfig()
        found = self.mapping(value, path, SENSITIVE_KEYS, "{categories: [XED], hash_urls: true}")
        if found is None:
            return SensitiveConfig()
        sensitive_lists: list[Path] = []
        for where, item in self.items(found, path, "lists", "[blocklists/sensitive.csv]"):
            p = self.existing_file(item, where, "list file", "blocklists/sensitive.csv")
            if p is None:
                continue
            if p not in lists:
                self.add(where, f"{p} is not one of `lists`; a sensitive list must also be audited: add it there")
            sensitive_lists.append(p)
        categories = []
        for where, item in self.items(found, path, "categories", "[XED]"):
            code = self.text(item, where, "XED")
            if code is not None:
                categories.append(code.strip())
        hash_urls = False
        if found.get("hash_urls") is not None:
            if isinstance(found["hash_urls"], bool):
                hash_urls = found["hash_urls"]
            else:
                self.add(f"{path}.hash_urls", f"must be true or false (without quotes); got {_kind(found['hash_urls'])}")
        env = SensitiveConfig.hash_key_env
        if found.get("hash_key_env") is not None:
            env = self.text(found["hash_key_env"], f"{path}.hash_key_env", "AUDITOR_URL_KEY") or env
        key = ""
        if found.get("hash_key") is not None:
            key = self.text(found["hash_key"], f"{path}.hash_key", "a long random string") or ""
            if key and len(key) < 16:
                self.add(f"{path}.hash_key", "must be at least 16 characters (better: 32 random bytes, base64)")
        return SensitiveConfig(tuple(sensitive_lists), tuple(categories), hash_urls, env, key)

    def web_url(self, value: object, path: str) -> str | None:
        example = "https://chinhphu.vn/"
        url = self.text(value, path, example)
        if url is None:
            return None
        what = f"must be an http:// or https:// URL, e.g. {example}"
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 - raises ValueError for a bad port
        except ValueError as exc:
            self.add(path, f"{what} ({exc})")
            return None
        if (
            parts.scheme.lower() not in ("http", "https")
            or not parts.hostname
            or any(c.isspace() for c in url)
        ):
            self.add(path, f"{what}; got {_show(url)}")
            return None
        return url

    def control(self, top: dict[Any, Any]) -> ControlConfig:
        example = "{resolvers: [1.1.1.1, 8.8.8.8], vantage: {}}"
        value = self.required(
            top, "", "control", f"the control vantage and resolvers, e.g. control: {example}"
        )
        if value is _MISSING:
            return ControlConfig(resolvers=())
        control = self.mapping(value, "control", CONTROL_KEYS, example)
        if control is None:
            return ControlConfig(resolvers=())
        resolvers = self.resolvers(
            control, "control", "trusted public resolvers, e.g. resolvers: [1.1.1.1, 8.8.8.8]"
        )
        vantage = self.vantage(control.get("vantage"), "control.vantage")
        return ControlConfig(resolvers=resolvers, vantage=vantage or VantageConfig())

    def providers(self, top: dict[Any, Any]) -> tuple[ProviderConfig, ...]:
        example = "[{id: viettel, name: Viettel, resolvers: [...], vantage: {...}}]"
        value = self.required(top, "", "providers", f"the providers to audit, e.g. providers: {example}")
        if value is _MISSING:
            return ()
        items = self.sequence(value, "providers", example)
        if items is None:
            return ()
        if not items:
            self.add("providers", f"needs at least one provider, e.g. {example}")
        providers: list[ProviderConfig] = []
        first_index: dict[str, int] = {}
        for index, item in enumerate(items):
            path = f"providers[{index}]"
            provider = self.provider(item, path)
            if provider is not None:
                providers.append(provider)
            # Checked on the raw id, so a duplicate shows up even while the provider has other problems.
            ident = item.get("id") if isinstance(item, dict) else None
            if not (isinstance(ident, str) and _PROVIDER_ID.fullmatch(ident)):
                continue
            if ident in first_index:
                self.add(
                    f"{path}.id",
                    f"duplicate id {_show(ident)} (also providers[{first_index[ident]}]); "
                    "give each provider its own id",
                )
            else:
                first_index[ident] = index
        return tuple(providers)

    def provider(self, value: object, path: str) -> ProviderConfig | None:
        example = "{id: viettel, name: Viettel, asn: 7552, resolvers: [203.113.131.1], vantage: {...}}"
        provider = self.mapping(value, path, PROVIDER_KEYS, example)
        if provider is None:
            return None
        ident = self.required(
            provider, path, "id", "a short id of lowercase letters, digits, '_' or '-', e.g. viettel"
        )
        if ident is not _MISSING:
            ident = self.provider_id(ident, f"{path}.id")
        name = self.required(provider, path, "name", 'the provider\'s name for reports, e.g. name: "Viettel"')
        if name is not _MISSING:
            name = self.text(name, f"{path}.name", '"Viettel"')
        asn = None
        if provider.get("asn") is not None:
            asn = self.asn(provider["asn"], f"{path}.asn")
        resolvers = self.resolvers(
            provider,
            path,
            "the provider's own resolvers, queried from its vantage, e.g. resolvers: [203.113.131.1]",
        )
        vantage = self.vantage(provider.get("vantage"), f"{path}.vantage")
        fingerprints = self.fingerprints(provider.get("fingerprints"), f"{path}.fingerprints")
        if ident in (None, _MISSING) or name in (None, _MISSING) or vantage is None:
            return None
        return ProviderConfig(
            id=ident, name=name, resolvers=resolvers, vantage=vantage, asn=asn, fingerprints=fingerprints
        )

    def provider_id(self, value: object, path: str) -> str | None:
        if isinstance(value, str) and _PROVIDER_ID.fullmatch(value):
            return value
        suggestion = (
            re.sub(r"[^a-z0-9_-]+", "-", value.strip().lower()).strip("-") if isinstance(value, str) else ""
        )
        example = _show(suggestion) if suggestion else "viettel"
        got = f"; got {_kind(value)}" if not isinstance(value, str) else ""
        self.add(
            path,
            f"must be lowercase letters, digits, '_' or '-' (it names the provider in reports), "
            f"e.g. {example}{got}",
        )
        return None

    def asn(self, value: object, path: str) -> int | None:
        if isinstance(value, str) and re.fullmatch(r"(?i)\s*AS\s*\d+\s*", value):
            digits = re.sub(r"\D", "", value)
            self.add(path, f"must be the AS number alone, without 'AS' or quotes, e.g. {int(digits)}")
            return None
        return self.integer(value, path, 1, MAX_ASN, f"must be an AS number from 1 to {MAX_ASN}, e.g. 7552")

    def resolvers(self, mapping: dict[Any, Any], path: str, what: str) -> tuple[ResolverAddress, ...]:
        value = self.required(mapping, path, "resolvers", what)
        if value is _MISSING:
            return ()
        where = _join(path, "resolvers")
        items = self.sequence(value, where, f"[{_RESOLVER_EXAMPLE.replace(' or ', ', ')}]")
        if items is None:
            return ()
        if not items:
            self.add(where, f"needs at least one resolver; {what}")
        found = [self.resolver(item, f"{where}[{i}]") for i, item in enumerate(items)]
        return tuple(r for r in found if r is not None)

    def resolver(self, value: object, path: str) -> ResolverAddress | None:
        if not isinstance(value, str):
            self.add(path, f"{_RESOLVER_FORMS}; got {_kind(value)}{_quote_hint(value)}")
            return None
        text = value.strip()
        port_text: str | None = None
        if text.startswith("["):
            match = re.fullmatch(r"\[([^\]]*)\](?::([^:]*))?", text)
            if match is None:
                self.add(path, f"{_RESOLVER_FORMS}; got {_show(text)}")
                return None
            host, port_text = match[1], match[2]
        elif text.count(":") == 1:
            host, port_text = text.split(":")
        else:  # no colon: IPv4 or a name; two or more: a bare IPv6 address (no port without brackets)
            host = text
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            if re.fullmatch(r"(?i)[a-z0-9_.-]*[a-z_-][a-z0-9_.-]*", host):
                self.add(
                    path,
                    f"host names are not allowed ({_show(host)}): looking a name up would itself be a "
                    f"measurement; write the resolver's IP address, e.g. {_RESOLVER_EXAMPLE}",
                )
            else:
                self.add(path, f"{_RESOLVER_FORMS}; got {_show(text)}")
            return None
        if text.startswith("[") and ip.version == 4:
            self.add(
                path,
                f"brackets are only for IPv6 addresses; write {ip}" + (f":{port_text}" if port_text else ""),
            )
            return None
        if ip.is_unspecified or ip.is_multicast:
            self.add(path, f"{ip} cannot be a resolver's address; {_RESOLVER_FORMS}")
            return None
        port = 53
        if port_text is not None:
            if not re.fullmatch(r"[0-9]{1,5}", port_text) or not 1 <= int(port_text) <= 65535:
                self.add(
                    path, f"the port must be a number from 1 to 65535, e.g. {ResolverAddress(str(ip), 53)}"
                )
                return None
            port = int(port_text)
        return ResolverAddress(ip=str(ip), port=port)

    def vantage(self, value: object, path: str) -> VantageConfig | None:
        if value is None:
            return VantageConfig()
        example = (
            "{} (direct), {source_address: 192.168.2.10}, {interface: ppp0} "
            "or {proxy: socks5://127.0.0.1:1080}"
        )
        vantage = self.mapping(value, path, VANTAGE_KEYS, example)
        if vantage is None:
            return None
        kinds = [key for key in VANTAGE_KEYS if key in vantage]
        if not kinds:
            return VantageConfig()
        if len(kinds) > 1:
            both = " and ".join(repr(k) for k in kinds)
            self.add(
                path,
                f"has both {both}; a vantage is exactly one of source_address, interface or proxy "
                "(or {} to connect directly)",
            )
            return None
        kind = kinds[0]
        where = f"{path}.{kind}"
        raw = vantage[kind]
        if kind == "source_address":
            address = self.source_address(raw, where)
            return VantageConfig("source_address", address) if address else None
        if kind == "interface":
            name = self.interface(raw, where)
            return VantageConfig("interface", name) if name else None
        url = self.proxy(raw, where)
        return VantageConfig("proxy", url) if url else None

    def source_address(self, value: object, path: str) -> str | None:
        what = "must be an IP address of this machine to send from, e.g. 192.168.2.10"
        if not isinstance(value, str):
            self.add(path, f"{what}; got {_kind(value)}{_quote_hint(value)}")
            return None
        try:
            ip = ipaddress.ip_address(value.strip())
        except ValueError:
            self.add(path, f"{what}; got {_show(value)}")
            return None
        if ip.is_unspecified or ip.is_multicast:
            self.add(
                path,
                f"{ip} is not a usable source address; {what} (or write vantage: {{}} to connect directly)",
            )
            return None
        return str(ip)

    def interface(self, value: object, path: str) -> str | None:
        name = self.text(value, path, "ppp0 or eth1")
        if name is None:
            return None
        # Linux takes up to 15 bytes except '/' and whitespace; we also insist on printable ASCII, which
        # every real interface name is, so the dialer can hand it to SO_BINDTODEVICE as is.
        if (
            len(name) > MAX_IFNAME
            or not (name.isascii() and name.isprintable())
            or " " in name
            or "/" in name
        ):
            self.add(
                path,
                f"must be a network interface name of at most {MAX_IFNAME} ASCII characters without "
                "spaces or '/', e.g. ppp0 or eth1 (see `ip link`)",
            )
            return None
        return name

    def proxy(self, value: object, path: str) -> str | None:
        # Never echo the URL itself: it may carry a password.
        if not isinstance(value, str) or not value.strip():
            self.add(path, f"must be a SOCKS5 URL, e.g. {_PROXY_EXAMPLE}; got {_kind(value)}")
            return None
        url = value.strip()
        if not (url.isascii() and url.isprintable()):
            self.add(
                path,
                f"must be plain ASCII (percent-encode other characters in the user or password); "
                f"e.g. {_PROXY_EXAMPLE}",
            )
            return None
        try:
            parts = urlsplit(url)
            port = parts.port
            host = parts.hostname
        except ValueError:
            self.add(path, f"is not a valid URL; write e.g. {_PROXY_EXAMPLE}")
            return None
        scheme = parts.scheme.lower()
        if scheme != "socks5":
            if scheme == "socks5h":
                message = (
                    "use socks5://, not socks5h://: the auditor resolves names itself, through the "
                    "provider's resolvers, and never lets the proxy do it"
                )
            elif "://" not in url:
                message = "must start with socks5://"
            else:
                message = f"unsupported proxy scheme {_show(scheme)}: only socks5:// is supported"
            self.add(path, f"{message}; e.g. {_PROXY_EXAMPLE}")
            return None
        problems: list[str] = []
        if not host:
            problems.append("a host")
        elif not _valid_host(host):
            problems.append("a valid host name or IP address (IPv6 in brackets: socks5://[::1]:1080)")
        if port is None or port == 0:
            problems.append("a port from 1 to 65535 (ssh -D 1080 listens on 1080)")
        if "@" in parts.netloc and (not parts.username or parts.password is None):
            problems.append("both user and password before '@' (user:pass@host:port), or no '@' at all")
        elif (
            len(unquote(parts.username or "").encode()) > 255
            or len(unquote(parts.password or "").encode()) > 255
        ):
            problems.append("a user and password of at most 255 bytes each (RFC 1929)")
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            problems.append("nothing after host:port (no path, query or fragment)")
        if problems:
            self.add(path, f"the proxy URL needs {'; '.join(problems)}; e.g. {_PROXY_EXAMPLE}")
            return None
        return url

    def fingerprints(self, value: object, path: str) -> FingerprintConfig:
        if value is None:
            return FingerprintConfig()
        example = "{dns_ips: [103.192.236.94], body_patterns: ['Access denied · Viettel WAF']}"
        fingerprints = self.mapping(value, path, FINGERPRINT_KEYS, example)
        if fingerprints is None:
            return FingerprintConfig()
        dns_ips = [
            self.fingerprint_ip(item, where)
            for where, item in self.items(fingerprints, path, "dns_ips", "[103.192.236.94]")
        ]
        patterns = [
            self.pattern(item, where)
            for where, item in self.items(fingerprints, path, "body_patterns", "['bị chặn']")
        ]
        hosts = [
            self.redirect_host(item, where)
            for where, item in self.items(fingerprints, path, "redirect_hosts", "[warning.example.vn]")
        ]
        files = [
            self.existing_file(item, where, "fingerprint file", "fingerprints/fingerprints_http.csv")
            for where, item in self.items(fingerprints, path, "files", "[fingerprints/fingerprints_dns.csv]")
        ]
        return FingerprintConfig(
            dns_ips=tuple(x for x in dns_ips if x is not None),
            body_patterns=tuple(x for x in patterns if x is not None),
            redirect_hosts=tuple(x for x in hosts if x is not None),
            files=tuple(x for x in files if x is not None),
        )

    def fingerprint_ip(self, value: object, path: str) -> str | None:
        what = "must be an IP address that a blocking resolver answers with, e.g. 103.192.236.94"
        try:
            if not isinstance(value, str):
                raise ValueError
            return str(ipaddress.ip_address(value.strip()))
        except ValueError:
            self.add(path, f"{what}; got {_kind(value)}{_quote_hint(value)}")
            return None

    def pattern(self, value: object, path: str) -> str | None:
        if not isinstance(value, str):
            self.add(
                path,
                "must be a regular expression as text, e.g. 'bị chặn'; "
                f"got {_kind(value)}{_quote_hint(value)}",
            )
            return None
        try:
            compiled = re.compile(value)
        except (re.error, OverflowError, RecursionError, ValueError) as exc:
            self.add(
                path, f"invalid regular expression: {exc}; escape special characters like ( [ . * with \\"
            )
            return None
        if compiled.search("") is not None:
            self.add(
                path,
                f"{_show(value)} matches an empty page, so it would call every page a block page; "
                "write text that only a block page contains, e.g. 'Access denied · Viettel WAF'",
            )
            return None
        return value

    def redirect_host(self, value: object, path: str) -> str | None:
        what = "must be a host name (not a URL) that block redirects lead to, e.g. warning.example.vn"
        host = value.strip().lower().rstrip(".") if isinstance(value, str) else ""
        if not host.isascii():  # a Vietnamese name: compare in the IDNA (ASCII) form the list reader uses
            import idna

            try:
                host = idna.encode(host, uts46=True).decode("ascii")
            except ValueError:  # idna.IDNAError is a UnicodeError
                host = ""
        if not _valid_host(host):
            self.add(path, f"{what}; got {_kind(value)}")
            return None
        return host

    def timeouts(self, value: object, path: str) -> Timeouts:
        defaults = Timeouts()
        if value is None:
            return defaults
        timeouts = self.mapping(value, path, TIMEOUT_KEYS, "{dns: 3, connect: 5, tls: 5, http: 10}")
        if timeouts is None:
            return defaults
        found: dict[str, float] = {}
        for key in TIMEOUT_KEYS:
            if timeouts.get(key) is None:
                continue
            default = getattr(defaults, key)
            seconds = self.number(
                timeouts[key],
                f"{path}.{key}",
                0,
                MAX_TIMEOUT,
                f"must be a positive number of seconds up to {MAX_TIMEOUT}, e.g. {default:g}",
            )
            if seconds is not None and seconds <= 0:
                self.add(f"{path}.{key}", f"must be a positive number of seconds, e.g. {default:g}")
            elif seconds is not None:
                found[key] = seconds
        return Timeouts(**found)

    def tls(self, value: object, path: str) -> Path | None:
        if value is None:
            return None
        tls = self.mapping(value, path, TLS_KEYS, "{extra_ca_file: /etc/auditor/provincial-ca.pem}")
        if tls is None or tls.get("extra_ca_file") is None:
            return None
        where = f"{path}.extra_ca_file"
        found = self.existing_file(tls["extra_ca_file"], where, "CA file", "/etc/auditor/provincial-ca.pem")
        if found is None:
            return None
        try:  # local file parsing only; catches a DER file or a key instead of a certificate before the run
            ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cafile=found)
        except (ssl.SSLError, OSError, ValueError) as exc:
            self.add(
                where,
                f"{found} is not a PEM file of CA certificates ({exc}); convert it with "
                "`openssl x509 -inform der -in CA.cer -out CA.pem`",
            )
            return None
        return found

    def timezone(self, value: object, path: str) -> str:
        default = Config.timezone
        if value is None:
            return default
        name = self.text(value, path, default)
        if name is None:
            return default
        try:
            zoneinfo.ZoneInfo(name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
            close = difflib.get_close_matches(name, sorted(zoneinfo.available_timezones()), n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"e.g. {default}"
            self.add(path, f"unknown time zone {_show(name)}; {hint}")
            return default
        return name

    def network(self, value: object, path: str) -> tuple[bool, bool]:
        """(loopback_only, allow_private_destinations)"""
        if value is None:
            return False, False
        network = self.mapping(value, path, NETWORK_KEYS, "{loopback_only: false}")
        if network is None:
            return False, False
        flags = []
        for key in NETWORK_KEYS:
            flag = network.get(key)
            if flag is None:
                flags.append(False)
            elif not isinstance(flag, bool):
                self.add(f"{path}.{key}", f"must be true or false (without quotes); got {_kind(flag)}")
                flags.append(False)
            else:
                flags.append(flag)
        return flags[0], flags[1]


def _unknown_key(key: object, allowed: tuple[str, ...]) -> str:
    name = str(key)
    close = difflib.get_close_matches(name, allowed, n=1) if isinstance(key, str) else []
    if close:
        return f"unknown key {_show(name)}; did you mean {close[0]!r}?"
    return f"unknown key {_show(name)}; expected one of: {', '.join(allowed)}"


def _valid_host(host: str) -> bool:
    """An IP literal or a DNS name of letters, digits, '_' and '-' (lower-case, ASCII/IDNA)."""
    if not host or len(host) > 253:
        return False
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    if re.fullmatch(r"[0-9.]+", host):  # 300.1.1.1 is a bad address, not a name
        return False
    return all(_HOST_LABEL.fullmatch(label) for label in host.lower().split("."))
