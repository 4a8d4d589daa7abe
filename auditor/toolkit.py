"""What a run builds once and shares: the TLS context, the fingerprint sets, one vantage for control and
one per provider, and the probe functions that measure through them.

`ProbeFunctions` is the seam between a run and the network: a run uses the real probes; tests of the
scheduler pass fakes there and keep the rest of the run real (tests/test_scheduler.py).
"""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from auditor.config import Config, ProviderConfig, ResolverAddress, VantageConfig
from auditor.fingerprints import FingerprintSet
from auditor.limits import KeyedLimits
from auditor.measure import Vantage, measure_url
from auditor.observations import UrlObservation
from probes import base, dns
from probes.dialers import make_dialer
from probes.dns import TcpChannels
from probes.http import PageMatcher

CONTROL_ID = "control"


class MeasureUrl(Protocol):
    """auditor.measure.measure_url: follow one URL hop by hop through one vantage."""

    def __call__(
        self, v: Vantage, url: str, control: UrlObservation | None = None, /, *, content: bool = True
    ) -> Awaitable[UrlObservation]: ...


class QueryResolver(Protocol):
    """probes.dns.query: ask one resolver one name, through the vantage of `ctx`."""

    def __call__(
        self, ctx: base.ProbeContext, resolver_ip: str, resolver_port: int, name: str, qtype: str = "A", /
    ) -> Awaitable[base.DnsObservation]: ...


@dataclass(frozen=True)
class ProbeFunctions:
    """How a run reaches the network: every measurement and every health check goes through these two."""

    measure_url: MeasureUrl = measure_url
    query_resolver: QueryResolver = dns.query


@dataclass
class Toolkit:
    """What a run builds once and shares: the TLS context, fingerprints, vantages, probe functions."""

    config: Config
    ssl_context: ssl.SSLContext
    fingerprints: FingerprintSet
    control: Vantage
    providers: dict[str, Vantage] = field(default_factory=dict)
    provider_fingerprints: dict[str, FingerprintSet] = field(default_factory=dict)
    probes: ProbeFunctions = field(default_factory=ProbeFunctions)

    async def close(self) -> None:
        """Close what the vantages keep open between probes (pipelined DNS connections)."""
        for v in (self.control, *self.providers.values()):
            if v.probe.dns_channels is not None:
                await v.probe.dns_channels.close()

    def dns_fingerprint(self, vantage_id: str) -> Callable[[str], str | None]:
        """The block-page fingerprint id of a DNS answer at this vantage, or None."""
        return dns_fingerprint_lookup(self.provider_fingerprints.get(vantage_id, self.fingerprints))


def provider_fingerprint_set(fps: FingerprintSet, provider: ProviderConfig) -> FingerprintSet:
    """A provider's fingerprints: the global set `fps`, then the provider's own additions (auditor.rejudge
    builds the same set to judge a stored run again)."""
    return fps.merged(FingerprintSet.build(provider.fingerprints, builtin=False, id_prefix=f"provider.{provider.id}"))


def dns_fingerprint_lookup(fps: FingerprintSet) -> Callable[[str], str | None]:
    """What `auditor.verdict.judge` asks of a DNS answer: the id of its block-page fingerprint, or None."""

    def lookup(ip: str) -> str | None:
        fp = fps.match_dns_ip(ip)
        return fp.id if fp else None

    return lookup


def make_ssl_context(config: Config) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    if config.extra_ca_file:
        ctx.load_verify_locations(cafile=str(config.extra_ca_file))
    return ctx


def page_matcher(fps: FingerprintSet) -> PageMatcher:
    """What the HTTP probe asks of a page it read: (block-page fingerprint ids, false-positive ids)."""

    def match(text: str, headers: Sequence[tuple[str, str]], location: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
        ids = [f.id for f in fps.match_body(text)] + [f.id for f in fps.match_headers(headers)]
        if location:
            r = fps.match_redirect(location)
            if r is not None:
                ids.append(r.id)
        false = [f.id for f in fps.false_positive_for_body(text)] + [
            f.id for f in fps.false_positive_for_headers(headers)
        ]
        return tuple(dict.fromkeys(ids)), tuple(dict.fromkeys(false))

    return match


def build_toolkit(config: Config, provider_ids: Iterable[str] = (), probes: ProbeFunctions | None = None) -> Toolkit:
    """The control vantage and one vantage per provider (only `provider_ids` when given). Nothing is dialed."""
    ssl_context = make_ssl_context(config)
    fps = FingerprintSet.build(config.fingerprints)
    control = _vantage(config, ssl_context, CONTROL_ID, config.control.vantage, config.control.resolvers, fps)
    kit = Toolkit(config, ssl_context, fps, control, probes=probes or ProbeFunctions())
    wanted = set(provider_ids)
    for p in config.providers:
        if wanted and p.id not in wanted:
            continue
        pf = provider_fingerprint_set(fps, p)
        kit.provider_fingerprints[p.id] = pf
        kit.providers[p.id] = _vantage(config, ssl_context, p.id, p.vantage, p.resolvers, pf)
    return kit


def _vantage(
    config: Config,
    ssl_context: ssl.SSLContext,
    vantage_id: str,
    vcfg: VantageConfig,
    resolvers: Sequence[ResolverAddress],
    fps: FingerprintSet,
) -> Vantage:
    dialer = make_dialer(vcfg.kind, vcfg.value, loopback_only=config.loopback_only,
                         simulated=config.simulated_internet)
    probe = base.ProbeContext(dialer=dialer, timeouts=config.timeouts, ssl_context=ssl_context,
                              dns_channels=TcpChannels())
    return Vantage(vantage_id, probe, tuple((r.ip, r.port) for r in resolvers), matcher=page_matcher(fps),
                   block_address=lambda ip: fps.match_dns_ip(ip) is not None,
                   limits=KeyedLimits(config.limits.resolver_qps, config.limits.per_destination),
                   dial_non_public=config.allow_private_destinations)
