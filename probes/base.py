"""What every probe shares: the failure vocabulary, the observation records and the probe context.

Probes record what happened and never raise for a network outcome: a refused connection, a reset, a
timeout or a bad certificate is data (`failure` set, `error` holding the raw text). Judging what it means is
`auditor.verdict`'s job.

Failure names reuse OONI's df-007 vocabulary where one exists, so evidence reads the same as OONI data.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field, fields, is_dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from probes.dialers import Dialer

# DNS
DNS_NXDOMAIN = "dns_nxdomain_error"
DNS_NO_ANSWER = "dns_no_answer"
DNS_REFUSED = "dns_refused_error"
DNS_SERVFAIL = "dns_servfail_error"
DNS_OTHER_RCODE = "dns_rcode_error"
DNS_BAD_REPLY = "dns_bad_reply"  # malformed or mismatched reply
# connection (any step)
TIMEOUT = "generic_timeout_error"
CONNECTION_REFUSED = "connection_refused"
CONNECTION_RESET = "connection_reset"
EOF = "eof_error"  # the peer closed; through a SOCKS relay a far-end reset arrives as this
HOST_UNREACHABLE = "host_unreachable"
NETWORK_UNREACHABLE = "network_unreachable"
# the vantage itself (SOCKS proxy down, source address not local, interface missing)
VANTAGE_UNAVAILABLE = "vantage_unavailable"
PROXY_REFUSED = "proxy_rule_refused"  # the SOCKS proxy refused by its own rules (reply 2)
NOT_DIALED = "not_dialed"  # refused by our own policy (non-public destination, loopback-only interlock)
# TLS
SSL_INVALID_HOSTNAME = "ssl_invalid_hostname"
SSL_UNKNOWN_AUTHORITY = "ssl_unknown_authority"
SSL_INVALID_CERTIFICATE = "ssl_invalid_certificate"
SSL_FAILED_HANDSHAKE = "ssl_failed_handshake"  # an alert or a protocol error during the handshake
# HTTP
HTTP_PROTOCOL_ERROR = "http_protocol_error"
HTTP_REQUEST_FAILED = "http_request_failed"

CERTIFICATE_FAILURES = frozenset({SSL_INVALID_HOSTNAME, SSL_UNKNOWN_AUTHORITY, SSL_INVALID_CERTIFICATE})
INTERRUPTION_FAILURES = frozenset({CONNECTION_RESET, EOF, SSL_FAILED_HANDSHAKE})


@dataclass(frozen=True)
class Timeouts:
    dns: float = 3.0
    connect: float = 5.0
    tls: float = 5.0
    http: float = 10.0


@dataclass(frozen=True)
class ProbeContext:
    """Everything a probe needs to reach a destination from one vantage."""

    dialer: Dialer
    timeouts: Timeouts = Timeouts()
    ssl_context: ssl.SSLContext | None = None  # verifying context, shared for the whole run
    body_limit: int = 64 * 1024  # bytes of body read, enough to recognise a block page, never stored
    dns_channels: Any = None  # probes.dns.TcpChannels: this vantage's pipelined DNS-over-TCP connections


def to_dict(obj: Any) -> Any:
    """JSON-able form of frozen observation records: like dataclasses.asdict without its deep copy of every
    leaf (strings and numbers are immutable), a measurable share of a run's CPU (BENCHMARKS finding 3)."""
    if is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in fields(obj)}
    if isinstance(obj, tuple):
        return tuple(to_dict(x) for x in obj)
    if isinstance(obj, list):
        return [to_dict(x) for x in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


@dataclass(frozen=True)
class DnsObservation:
    resolver: str  # "ip:port"
    qtype: str  # "A" | "AAAA" | ...
    transport: str  # "udp" | "tcp"
    failure: str | None
    rcode: str = ""  # "NOERROR", "NXDOMAIN", ... ("" when no reply)
    addresses: tuple[str, ...] = ()
    cnames: tuple[str, ...] = ()
    elapsed_ms: float = 0.0
    error: str = ""
    extra_answers: int = 0  # further distinct replies seen (an on-path injector races the real one)


@dataclass(frozen=True)
class TcpObservation:
    ip: str
    port: int
    failure: str | None
    elapsed_ms: float = 0.0
    error: str = ""


@dataclass(frozen=True)
class CertificateInfo:
    subject: str = ""
    issuer: str = ""
    sha256: str = ""
    not_after: str = ""
    names: tuple[str, ...] = ()  # subjectAltName DNS names


@dataclass(frozen=True)
class TlsObservation:
    server_name: str
    failure: str | None
    elapsed_ms: float = 0.0
    error: str = ""
    verify_code: int | None = None  # OpenSSL X509 verify code on a certificate failure
    version: str = ""
    certificate: CertificateInfo | None = None  # on success, and on a certificate failure (re-fetched)


@dataclass(frozen=True)
class HttpObservation:
    failure: str | None
    status: int | None = None
    reason: str = ""
    headers: tuple[tuple[str, str], ...] = ()  # selected headers only
    location: str = ""
    title: str = ""  # cleaned, NFC, at most 160 characters
    body_length: int = 0  # bytes of (decoded) body read, at most the limit
    declared_length: int | None = None  # Content-Length, when given
    truncated: bool = False  # stopped at the body limit
    body_sha256: str = ""  # of the bytes read (the prefix when truncated)
    fingerprints: tuple[str, ...] = ()  # ids of block-page fingerprints matched (body, headers, redirect)
    false_positives: tuple[str, ...] = ()  # ids of known false-positive patterns matched
    elapsed_ms: float = 0.0
    error: str = ""
    interrupted_after_request: bool = False  # the failure came after the request was sent
    body_read: bool = True  # False: status and headers only (a sensitive entry: its content is never read)
    extra: dict[str, Any] = field(default_factory=dict, compare=False)
