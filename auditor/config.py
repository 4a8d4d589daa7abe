"""The audit's configuration: typed, validated before any probing.

`load_config(path)` reads YAML; `parse_config(data, base_dir)` validates a mapping. Every problem is
reported at once with its key path (and YAML line where known) in a ConfigError.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

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
class Timeouts:
    """Seconds; each is a hard deadline around one probe step."""

    dns: float = 3.0
    connect: float = 5.0
    tls: float = 5.0
    http: float = 10.0


@dataclass(frozen=True)
class Config:
    province: str
    providers: tuple[ProviderConfig, ...]
    control: ControlConfig
    lists: tuple[Path, ...] = ()
    canaries: tuple[str, ...] = ()
    store: str = ""  # store URL; "" means the default SQLite file in the user's data dir
    output_dir: Path = Path("reports")
    fingerprints: FingerprintConfig = FingerprintConfig()
    timeouts: Timeouts = Timeouts()
    concurrency: int = 100
    extra_ca_file: Path | None = None  # tls.extra_ca_file
    grace_hours: float = 24.0
    timezone: str = "Asia/Ho_Chi_Minh"  # how list dates (YYYY-MM-DD) are read for the grace period
    loopback_only: bool = False  # network.loopback_only: refuse to dial anything but 127.0.0.0/8 and ::1
    source: Path | None = field(default=None, compare=False)  # the file it came from

    def provider(self, provider_id: str) -> ProviderConfig | None:
        return next((p for p in self.providers if p.id == provider_id), None)
