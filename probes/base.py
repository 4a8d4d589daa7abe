"""What every probe shares: the failure taxonomy, the dialer seam, the observation records, the probe context.

Probes record what happened and never raise for a network outcome: a refused connection, a reset, a
timeout or a bad certificate is data (`failure` set, `error` holding the raw text). Judging what it means is
`auditor.verdict`'s job.

The dialer seam: `Dialer` is the one function every probe's traffic goes through (implementations, one per
vantage kind, are in `probes.dialers`); it raises `DialError` carrying a `Failure`. `os_error_failure` is the
one map from socket errors to failures, used by every probe.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import ssl
from dataclasses import dataclass, field, fields, is_dataclass
from enum import StrEnum
from typing import Any, Protocol


class Failure(StrEnum):
    """Why a step failed. OONI's df-007 names where OONI has one (ooni/spec `data-formats/df-007-errors.md`,
    ooni/probe-cli `internal/netxlite/errno.go`), so evidence reads the same as OONI data; ours are marked.

    Members are `str`: they compare equal to the names already stored and written to the CSV evidence.
    """

    # DNS
    DNS_NXDOMAIN = "dns_nxdomain_error"
    DNS_NO_ANSWER = "dns_no_answer"
    DNS_REFUSED = "dns_refused_error"
    DNS_SERVFAIL = "dns_servfail_error"
    DNS_OTHER_RCODE = "dns_rcode_error"  # ours: another error rcode (FORMERR, NOTIMP, ...)
    DNS_BAD_REPLY = "dns_bad_reply"  # ours: a malformed or mismatched reply
    # connection (any step)
    GENERIC_TIMEOUT = "generic_timeout_error"
    CONNECTION_REFUSED = "connection_refused"
    CONNECTION_RESET = "connection_reset"
    EOF = "eof_error"  # the peer closed; through a SOCKS relay a far-end reset arrives as this
    HOST_UNREACHABLE = "host_unreachable"
    NETWORK_UNREACHABLE = "network_unreachable"
    # ours: the vantage itself (SOCKS proxy down or unusable, source address not local, interface missing)
    VANTAGE_UNAVAILABLE = "vantage_unavailable"
    PROXY_REFUSED = "proxy_rule_refused"  # ours: the SOCKS proxy refused by its own rules (reply 2)
    NOT_DIALED = "not_dialed"  # ours: refused by our policy (non-public destination, loopback-only interlock)
    # TLS (df-007 spells "ssl_unknown_autority"; OONI's code, and every run we stored, spell it right)
    SSL_INVALID_HOSTNAME = "ssl_invalid_hostname"
    SSL_UNKNOWN_AUTHORITY = "ssl_unknown_authority"
    SSL_INVALID_CERTIFICATE = "ssl_invalid_certificate"
    SSL_FAILED_HANDSHAKE = "ssl_failed_handshake"  # an alert or a protocol error during the handshake
    # HTTP
    HTTP_PROTOCOL_ERROR = "http_protocol_error"  # ours: the response is not HTTP
    HTTP_REQUEST_FAILED = "http_request_failed"  # the request could not be sent (a target h11 refuses)
    # anything not classified above: never evidence of blocking (docs/verdicts.md, `measure.unknown_failure`)
    UNKNOWN = "unknown_failure"


CERTIFICATE_FAILURES = frozenset(
    {Failure.SSL_INVALID_HOSTNAME, Failure.SSL_UNKNOWN_AUTHORITY, Failure.SSL_INVALID_CERTIFICATE}
)


def os_error_failure(exc: BaseException) -> Failure:
    """Map an error from connect/read/write to a failure; what is not recognised is `UNKNOWN` (OONI's
    `unknown_failure`), its errno and text kept in the observation's `error`."""
    code = getattr(exc, "errno", None)
    if isinstance(exc, ConnectionRefusedError) or code == errno.ECONNREFUSED:
        return Failure.CONNECTION_REFUSED
    if isinstance(exc, ConnectionResetError) or code == errno.ECONNRESET:
        # asyncio reports a FIN during a TLS handshake as ConnectionResetError with errno None
        return Failure.CONNECTION_RESET if code == errno.ECONNRESET else Failure.EOF
    if code == errno.EHOSTUNREACH:
        return Failure.HOST_UNREACHABLE
    if code in (errno.ENETUNREACH, errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT):
        return Failure.NETWORK_UNREACHABLE
    if isinstance(exc, (TimeoutError, asyncio.TimeoutError)):
        return Failure.GENERIC_TIMEOUT
    if isinstance(exc, (BrokenPipeError, ConnectionAbortedError, EOFError)):  # EOFError: IncompleteReadError
        return Failure.EOF
    return Failure.UNKNOWN


class DialError(Exception):
    """A dial that failed: `failure` names it, `error` is the raw text (never a password)."""

    def __init__(self, failure: Failure, error: str) -> None:
        super().__init__(error)
        self.failure = failure
        self.error = error

    @property
    def vantage_fault(self) -> bool:
        """The vantage itself failed (proxy down, address not local), not the destination."""
        return self.failure is Failure.VANTAGE_UNAVAILABLE


class Dialer(Protocol):
    """How a probe's traffic leaves from inside a provider's network: `connect` returns a connected
    non-blocking socket or raises `DialError`. Everything (DNS over TCP, TLS, HTTP) sits on it."""

    kind: str

    def describe(self) -> str: ...

    async def connect(self, ip: str, port: int, timeout: float) -> socket.socket: ...

    def udp_socket(self, ip: str) -> socket.socket | None:
        """A non-blocking UDP socket leaving through the vantage, or None when the vantage has no UDP."""
        ...

    async def tunnel_problem(self, timeout: float) -> str:
        """What is wrong with the way out itself (a proxy that accepts TCP but never answers its greeting),
        in words for the health check; "" when nothing is, or there is nothing to check (direct kinds)."""
        ...


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
