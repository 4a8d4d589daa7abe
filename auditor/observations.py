"""What one vantage saw of one URL: the raw facts a verdict is drawn from, stored so a better rule can
re-judge old runs (`auditor.codec` writes them as JSON and reads them back). Bodies are never part of it
(see probes.http)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from probes.base import DnsObservation, HttpObservation, TcpObservation, TlsObservation


@dataclass(frozen=True)
class DnsLookup:
    """A and AAAA for one name through a vantage's resolvers (the first resolver that answered)."""

    name: str
    queries: tuple[DnsObservation, ...]
    addresses: tuple[str, ...]  # IPv4 first
    failure: str | None  # None when some address came back
    attempts: int = 1

    @property
    def resolved(self) -> bool:
        return bool(self.addresses)

    @property
    def answering_resolver(self) -> str:
        for q in self.queries:
            if q.rcode:
                return q.resolver
        return self.queries[-1].resolver if self.queries else ""

    @property
    def rcode(self) -> str:
        """The rcode of the decisive (last answering) A query, or ""."""
        for q in reversed(self.queries):
            if q.rcode and q.qtype == "A":
                return q.rcode
        return ""


@dataclass(frozen=True)
class EndpointObservation:
    ip: str
    port: int
    tcp: TcpObservation
    tls: TlsObservation | None = None  # None for cleartext, or when TCP failed
    attempts: int = 1
    # connects to this address that had timed out at this vantage before this one, when that made the
    # address known-silent and the retry was skipped (auditor.limits); 0 otherwise
    silent_before: int = 0

    @property
    def failure(self) -> str | None:
        if self.tcp.failure:
            return self.tcp.failure
        return self.tls.failure if self.tls else None

    @property
    def step(self) -> str:
        """The step that failed ("tcp" or "tls"), or "" on success."""
        if self.tcp.failure:
            return "tcp"
        if self.tls and self.tls.failure:
            return "tls"
        return ""


@dataclass(frozen=True)
class HopObservation:
    url: str
    scheme: str
    host: str
    port: int
    dns: DnsLookup | None = None  # None for an address literal
    endpoints: tuple[EndpointObservation, ...] = ()
    http: HttpObservation | None = None
    http_attempts: int = 0
    not_followed: str = ""  # why this redirect target was recorded but not fetched
    tls_check: EndpointObservation | None = None  # for http://: does the address hold a valid cert on 443?
    content_withheld: bool = False  # a sensitive entry over https: no HTTP request was sent at all

    @property
    def addresses(self) -> tuple[str, ...]:
        if self.dns is not None:
            return self.dns.addresses
        return (self.host,)

    @property
    def connected(self) -> EndpointObservation | None:
        return next((e for e in self.endpoints if e.failure is None), None)


@dataclass(frozen=True)
class UrlObservation:
    url: str
    vantage_id: str
    vantage: str  # how the vantage dials, never a password
    hops: tuple[HopObservation, ...]
    started_at: str
    elapsed_ms: float
    vantage_failure: str = ""  # the vantage itself failed during this measurement
    depth: HopObservation | None = None  # the URL fetched on control's addresses through this vantage


def is_public_address(ip: str) -> bool:
    """Globally routable: not private, loopback, link-local, documentation, CGNAT, multicast, reserved."""
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return addr.is_global and not addr.is_multicast
