"""The configuration as the rest of the tool sees it: frozen dataclasses of tuples, checked before any probe.

Each section's fields are declared in the order config.example.yaml shows its keys: the allowed YAML keys
are derived from these fields (auditor.config.keys), in this order, which is also the order of "expected
one of" in messages. That is why Config is keyword-only and ProviderConfig's `asn` is a keyword.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from auditor.config.storeurl import MEMORY_STORE, StoreUrl
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
    asn: int | None = field(default=None, kw_only=True)  # a keyword: declared here for the keys' order
    resolvers: tuple[ResolverAddress, ...]
    vantage: VantageConfig = VantageConfig()
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
class EvidenceConfig:
    """`evidence`: signed evidence records for a dispute (auditor/evidence)."""

    signing_key: Path | None = None  # the Ed25519 private key (`auditor evidence keygen -o PATH`)


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


@dataclass(frozen=True, kw_only=True)
class Config:
    province: str
    store: StoreUrl = MEMORY_STORE  # parse_config fills in the default file (see default_store_url)
    output_dir: Path = Path("reports")
    lists: tuple[Path, ...] = ()
    canaries: tuple[str, ...] = ()
    control: ControlConfig
    providers: tuple[ProviderConfig, ...]
    fingerprints: FingerprintConfig = FingerprintConfig()
    timeouts: Timeouts = Timeouts()
    concurrency: int = 100
    extra_ca_file: Path | None = None  # tls.extra_ca_file
    grace_hours: float = 24.0
    timezone: str = "Asia/Ho_Chi_Minh"  # how list dates (YYYY-MM-DD) are read for the grace period
    loopback_only: bool = False  # network.loopback_only: refuse to dial anything but 127.0.0.0/8 and ::1
    allow_private_destinations: bool = False  # network.allow_private_destinations: dial non-public answers
    limits: LimitsConfig = LimitsConfig()
    sensitive: SensitiveConfig = SensitiveConfig()
    must_block: tuple[str, ...] = ()  # benign test URLs seeded into the lists: a provider must block them
    must_allow: tuple[str, ...] = ()  # URLs that must stay reachable: any blocked is over-blocking
    evidence: EvidenceConfig = EvidenceConfig()
    # network.simulated_internet: address ranges of a simulated Internet that a SOCKS proxy on loopback maps
    # to loopback listeners (the lab); with loopback_only they may be sent to such a proxy, and only there
    simulated_internet: tuple[str, ...] = ()
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
