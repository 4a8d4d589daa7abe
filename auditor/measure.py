"""Measure one URL through one vantage: DNS through its resolvers, TCP and TLS to the addresses under test
(Host and SNI stay the name), HTTP GET, and each redirect hop the same way through the same vantage.

Weak evidence (a timeout) is retried once before it is recorded. Nothing here judges; `auditor.verdict`
compares the result with control.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from urllib.parse import urljoin

from auditor.limits import KeyedLimits
from auditor.observations import (
    DnsLookup,
    EndpointObservation,
    HopObservation,
    UrlObservation,
    is_public_address,
)
from auditor.urls import NormalisedUrl, UrlError, normalise_url
from probes import base, dns, http, tcp, tls
from probes.http import PageMatcher

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
MAX_ADDRESSES_TRIED = 2


@dataclass
class Vantage:
    """A vantage ready to measure: its dialer, resolvers and what recognises a block page."""

    id: str
    probe: base.ProbeContext
    resolvers: tuple[tuple[str, int], ...]
    matcher: PageMatcher | None = None
    max_hops: int = 10
    retries: int = 1  # extra attempts for a timeout
    dial_non_public: bool = False  # dial private/loopback destinations (unit tests only)
    block_address: Callable[[str], bool] | None = None  # a known block-page address (its page may be read)
    limits: KeyedLimits = field(default_factory=KeyedLimits)  # per-resolver qps, per-destination connections
    _dns_cache: dict[str, asyncio.Future[DnsLookup]] = field(default_factory=dict, repr=False)

    @property
    def label(self) -> str:
        return self.probe.dialer.describe()

    @property
    def kind(self) -> str:
        return self.probe.dialer.kind


async def measure_url(
    v: Vantage, url: str, control: UrlObservation | None = None, *, content: bool = True
) -> UrlObservation:
    """Follow `url` hop by hop. With `control`, also check what only makes sense beside it: whether a
    differing address holds a valid certificate for the name, and whether the content is reachable on the
    control's addresses through this vantage (DNS-only blocking).

    `content=False` (a sensitive entry): over https no HTTP request is sent (DNS, TCP and the handshake
    decide); over http only the status line and headers are read, except from a known block-page address
    or after a redirect that matched a block-page fingerprint, where the page is the provider's own."""
    started = dt.datetime.now(dt.UTC)
    t0 = time.monotonic()
    hops: list[HopObservation] = []
    seen: set[str] = set()
    current = url
    while True:
        try:
            target = normalise_url(current)
        except UrlError as exc:
            hops.append(HopObservation(url=current, scheme="", host="", port=0, not_followed=f"invalid URL: {exc}"))
            break
        if target.url in seen:
            hops.append(_unfollowed(target, "redirect loop"))
            break
        if len(hops) > v.max_hops:
            hops.append(_unfollowed(target, f"more than {v.max_hops} redirects"))
            break
        seen.add(target.url)
        control_hop = _matching_hop(control, len(hops), target.url)
        block_redirect = bool(hops and hops[-1].http and hops[-1].http.fingerprints)
        hop = await _measure_hop(v, target, control_hop, content=content or block_redirect)
        hops.append(hop)
        location = hop.http.location if hop.http and hop.http.status in REDIRECT_STATUSES else ""
        if not location:
            break
        try:
            current = urljoin(target.url, location)
        except ValueError as exc:  # a hostile Location such as "http://[::1" makes urljoin raise
            hops.append(HopObservation(url=location[:2048], scheme="", host="", port=0,
                                       not_followed=f"invalid redirect URL: {exc}"))
            break
        if not current.lower().startswith(("http://", "https://")):
            hops.append(HopObservation(url=current[:2048], scheme="", host="", port=0, not_followed="not http(s)"))
            break
    depth = None
    first = hops[0]
    if control is not None and control.hops and first.dns is not None and control.hops[0].dns is not None:
        control_addresses = set(control.hops[0].dns.addresses)
        if control_addresses and not control_addresses & set(first.addresses):
            depth = await _measure_hop(v, normalise_url(url), None, forced=tuple(control.hops[0].dns.addresses),
                                       content=content)
    vantage_failure = next(
        (e.tcp.error for h in hops for e in h.endpoints if e.tcp.failure == base.Failure.VANTAGE_UNAVAILABLE), ""
    ) or next(
        (q.error for h in hops if h.dns for q in h.dns.queries if q.failure == base.Failure.VANTAGE_UNAVAILABLE), ""
    )
    return UrlObservation(
        url=url,
        vantage_id=v.id,
        vantage=v.label,
        hops=tuple(hops),
        started_at=started.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        elapsed_ms=round((time.monotonic() - t0) * 1000, 2),
        vantage_failure=vantage_failure,
        depth=depth,
    )


def _matching_hop(control: UrlObservation | None, index: int, url: str) -> HopObservation | None:
    if control is None or index >= len(control.hops):
        return None
    hop = control.hops[index]
    return hop if hop.url == url else None


def _unfollowed(target: NormalisedUrl, reason: str) -> HopObservation:
    return HopObservation(url=target.url, scheme=target.scheme, host=target.host, port=target.port, not_followed=reason)


def _is_address(host: str) -> bool:
    return host.replace(".", "").isdigit() or ":" in host


async def _measure_hop(
    v: Vantage, target: NormalisedUrl, control_hop: HopObservation | None, forced: tuple[str, ...] = (),
    *, content: bool = True,
) -> HopObservation:
    host = target.host.strip("[]")
    lookup: DnsLookup | None = None
    if forced:
        addresses = forced
    elif _is_address(host):
        addresses = (host,)
    else:
        lookup = await resolve(v, host)
        addresses = lookup.addresses
    hop = HopObservation(url=target.url, scheme=target.scheme, host=target.host, port=target.port, dns=lookup)
    if not addresses:
        return hop
    dialable = [a for a in addresses if v.dial_non_public or is_public_address(a)]
    if not dialable:
        return replace(hop, not_followed="only non-public addresses: not dialed")
    endpoints: list[EndpointObservation] = []
    result = None
    attempts = 0
    for ip in dialable[:MAX_ADDRESSES_TRIED]:
        endpoint, result, attempts = await _fetch(v, ip, target, content)
        endpoints.append(endpoint)
        if result is not None or endpoint.tcp.failure == base.Failure.VANTAGE_UNAVAILABLE:
            break
    withheld = not content and target.scheme == "https"
    hop = replace(hop, endpoints=tuple(endpoints), http=result, http_attempts=attempts, content_withheld=withheld)
    if (
        target.scheme == "http"
        and control_hop is not None
        and control_hop.dns is not None
        and lookup is not None
        and not set(lookup.addresses) & set(control_hop.dns.addresses)
    ):
        # is the differing address really the site's? a valid certificate for the name says so (CDN, GeoDNS)
        check, stream = await connect_endpoint(v, dialable[0], 443, target.host, tls_required=True)
        if stream is not None:
            stream[1].close()
        hop = replace(hop, tls_check=check)
    return hop


async def _fetch(
    v: Vantage, ip: str, target: NormalisedUrl, content: bool = True
) -> tuple[EndpointObservation, base.HttpObservation | None, int]:
    """Connect (TLS for https) and GET; a timeout at any step is retried once. Without `content`, https stops
    after the handshake and http reads the headers only (unless `ip` is a known block-page address)."""
    https = target.scheme == "https"
    read_body = content or (v.block_address is not None and v.block_address(ip))
    host_header = target.host if target.port == (443 if target.scheme == "https" else 80) else f"{target.host}:{target.port}"
    attempts = 0
    endpoint: EndpointObservation | None = None
    result: base.HttpObservation | None = None
    silent_before = 0
    for _ in range(1 + v.retries):
        attempts += 1
        async with v.limits.destination(ip):
            endpoint, stream = await connect_endpoint(v, ip, target.port, target.host, tls_required=https)
            if endpoint.tcp.failure == base.Failure.GENERIC_TIMEOUT:
                silent_before = v.limits.silent_connects(ip)
                v.limits.note_silence(ip)
            elif endpoint.tcp.failure not in _NOT_ANSWERED:
                v.limits.note_answer(ip)
            if stream is None:
                if endpoint.failure != base.Failure.GENERIC_TIMEOUT:
                    break
                if endpoint.step == "tcp" and silent_before >= v.limits.SILENT_AFTER:
                    break  # a known-silent address: other names on it already ruled out a lost SYN
                silent_before = 0
                continue
            if https and not read_body:
                stream[1].close()  # the handshake proved who answers; no request for content
                break
            result = await http.get(v.probe, stream[0], stream[1], host_header, target.path_query, v.matcher,
                                    read_body=read_body)
        if result.failure != base.Failure.GENERIC_TIMEOUT:
            break
    assert endpoint is not None
    endpoint = EndpointObservation(endpoint.ip, endpoint.port, endpoint.tcp, endpoint.tls, attempts,
                                   silent_before if endpoint.step == "tcp" else 0)
    return endpoint, result, attempts


async def connect_endpoint(
    v: Vantage, ip: str, port: int, server_name: str, *, tls_required: bool
) -> tuple[EndpointObservation, tuple[asyncio.StreamReader, asyncio.StreamWriter] | None]:
    tcp_obs, sock = await tcp.connect(v.probe, ip, port)
    if sock is None:
        return EndpointObservation(ip, port, tcp_obs), None
    if not tls_required:
        reader, writer = await asyncio.open_connection(sock=sock)
        return EndpointObservation(ip, port, tcp_obs), (reader, writer)
    tls_obs, stream = await tls.handshake(v.probe, sock, server_name)
    if tls_obs.failure in base.CERTIFICATE_FAILURES:
        cert = await tls.fetch_unverified_certificate(v.probe, ip, port, server_name)
        tls_obs = replace(tls_obs, certificate=cert)
    return EndpointObservation(ip, port, tcp_obs, tls_obs), stream


async def resolve(v: Vantage, name: str) -> DnsLookup:
    """A and AAAA through the vantage's resolvers, cached per name for the run (redirects and shared hosts)."""
    fut = v._dns_cache.get(name)
    if fut is None:
        if len(v._dns_cache) >= DNS_CACHE_NAMES:
            _evict(v._dns_cache)
        fut = asyncio.get_running_loop().create_future()
        v._dns_cache[name] = fut
        try:
            fut.set_result(await _resolve(v, name))
        except BaseException as exc:
            del v._dns_cache[name]
            fut.set_exception(exc)
            fut.exception()  # retrieved: the caller below re-raises it
            raise
    return await asyncio.shield(fut)


# The cache serves redirects and hosts shared by several URLs in flight at once; a run-long cache of every
# name grew the engine by about 10 KB per URL (BENCHMARKS finding 5). Oldest answered names go first.
DNS_CACHE_NAMES = 4096


def _evict(cache: dict[str, asyncio.Future[DnsLookup]]) -> None:
    for name in [n for n, f in cache.items() if f.done()][: len(cache) // 4 or 1]:
        del cache[name]


# connect outcomes that say nothing about whether the address answers (our own refusal, the vantage's)
_NOT_ANSWERED = frozenset({base.Failure.VANTAGE_UNAVAILABLE, base.Failure.NOT_DIALED, base.Failure.NETWORK_UNREACHABLE,
                           base.Failure.HOST_UNREACHABLE, base.Failure.UNKNOWN})

_NO_REPLY = frozenset(
    {base.Failure.GENERIC_TIMEOUT, base.Failure.CONNECTION_REFUSED, base.Failure.CONNECTION_RESET, base.Failure.EOF,
     base.Failure.VANTAGE_UNAVAILABLE, base.Failure.NETWORK_UNREACHABLE, base.Failure.HOST_UNREACHABLE,
     base.Failure.DNS_BAD_REPLY, base.Failure.NOT_DIALED}
)


async def _polite_query(v: Vantage, ip: str, port: int, name: str, qtype: str) -> base.DnsObservation:
    await v.limits.resolver_turn(f"{ip}:{port}")
    return await dns.query(v.probe, ip, port, name, qtype)


async def _resolve(v: Vantage, name: str) -> DnsLookup:
    queries: list[base.DnsObservation] = []
    attempts = 0
    for attempt in range(1 + v.retries):
        attempts = attempt + 1
        timed_out = False
        for ip, port in v.resolvers:
            a, aaaa = await asyncio.gather(
                _polite_query(v, ip, port, name, "A"), _polite_query(v, ip, port, name, "AAAA")
            )
            queries += [a, aaaa]
            if a.failure in _NO_REPLY and not aaaa.addresses:
                timed_out = timed_out or a.failure == base.Failure.GENERIC_TIMEOUT
                continue  # this resolver did not answer: ask the next
            addresses = a.addresses + tuple(x for x in aaaa.addresses if x not in a.addresses)
            failure = None if addresses else (a.failure if a.failure not in _NO_REPLY else aaaa.failure)
            return DnsLookup(name, tuple(queries), addresses, failure, attempts)
        if not timed_out:
            break  # refused or unreachable: a retry would say the same
    last = queries[-2] if len(queries) >= 2 else None
    return DnsLookup(name, tuple(queries), (), last.failure if last else base.Failure.GENERIC_TIMEOUT, attempts)
