"""TLS probe: a verifying handshake against loopback servers that present good, foreign, wrong-name and
expired certificates, or that reset, close, stay silent or answer in plaintext after the ClientHello."""

from __future__ import annotations

import asyncio
import datetime as dt
import errno
import ssl
import time
from collections.abc import Iterator
from typing import Any

import pytest
import trustme

from auditor.lab.servers import Middlebox, MiddleboxPolicy, reset
from probes import base, tls
from probes.base import Dialer
from probes.dialers import SocketDialer, Socks5Dialer
from tests.loopback_servers import (
    LOOPBACK,
    Handler,
    TcpServer,
    closed_port,
    read_tls_record,
    read_until_eof,
    running,
)

NAME = "tintuc.vn"
LAB_WEB = "45.76.0.2"
FAST = base.Timeouts(dns=1.0, connect=1.0, tls=1.0, http=1.0)
SHORT = base.Timeouts(dns=0.3, connect=0.3, tls=0.3, http=0.3)


class Pki:
    def __init__(self) -> None:
        self.ca = trustme.CA(organization_name="Lab Root CA")
        self.evil = trustme.CA(organization_name="Evil Interception Co")
        # verifies the chain and the name; trusts only the lab CA
        self.client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        self.ca.configure_trust(self.client)

    def server(self, ca: trustme.CA, *names: str, **kw: Any) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ca.issue_cert(*names, **kw).configure_cert(ctx)
        return ctx


@pytest.fixture(scope="module")
def pki() -> Iterator[Pki]:
    yield Pki()


def ctx_for(pki: Pki, dialer: Dialer | None = None, timeouts: base.Timeouts = FAST) -> base.ProbeContext:
    dialer = dialer or SocketDialer(loopback_only=True)
    return base.ProbeContext(dialer=dialer, timeouts=timeouts, ssl_context=pki.client)


async def probe(
    ctx: base.ProbeContext, port: int, name: str = NAME, ip: str = LOOPBACK
) -> base.TlsObservation:
    sock = await ctx.dialer.connect(ip, port, ctx.timeouts.connect)
    obs, stream = await tls.handshake(ctx, sock, name)
    if stream is not None:
        stream[1].close()
        await stream[1].wait_closed()
    else:
        for _ in range(3):  # the transport closes the socket on its next loop turn (it owns it)
            await asyncio.sleep(0)
        assert sock.fileno() == -1, "a failed handshake closes the socket"
    return obs


def handshake_with(
    pki: Pki,
    handler: Handler = read_until_eof,
    ssl_ctx: ssl.SSLContext | None = None,
    timeouts: base.Timeouts = FAST,
    name: str = NAME,
) -> base.TlsObservation:
    async def main() -> base.TlsObservation:
        async with TcpServer(handler, ssl_ctx) as server:
            return await probe(ctx_for(pki, timeouts=timeouts), server.port, name)

    return asyncio.run(main())


# --- certificates -----------------------------------------------------------------------------------


def test_valid_handshake_records_the_certificate(pki: Pki) -> None:
    obs = handshake_with(pki, ssl_ctx=pki.server(pki.ca, NAME, "www.tintuc.vn"))
    assert obs.failure is None
    assert obs.server_name == NAME
    assert obs.version in ("TLSv1.2", "TLSv1.3")
    cert = obs.certificate
    assert cert is not None
    assert cert.issuer == "O=Lab Root CA"
    assert cert.names == (NAME, "www.tintuc.vn")
    assert len(cert.sha256) == 64
    assert cert.not_after.endswith("Z")
    assert obs.verify_code is None and obs.error == ""


def test_unknown_authority_then_the_unverified_certificate_names_the_issuer(pki: Pki) -> None:
    async def main() -> tuple[base.TlsObservation, base.CertificateInfo | None]:
        async with TcpServer(read_until_eof, pki.server(pki.evil, NAME)) as server:
            ctx = ctx_for(pki)
            obs = await probe(ctx, server.port)
            cert = await tls.fetch_unverified_certificate(ctx, LOOPBACK, server.port, NAME)
            return obs, cert

    obs, cert = asyncio.run(main())
    assert obs.failure == base.Failure.SSL_UNKNOWN_AUTHORITY == "ssl_unknown_authority"
    assert obs.verify_code == 20  # unable to get local issuer certificate
    assert obs.error  # OpenSSL's verify message
    assert obs.certificate is None
    assert cert is not None
    assert cert.issuer == "O=Evil Interception Co"
    assert cert.names == (NAME,)


def test_name_mismatch(pki: Pki) -> None:
    obs = handshake_with(pki, ssl_ctx=pki.server(pki.ca, "other.vn"))
    assert obs.failure == base.Failure.SSL_INVALID_HOSTNAME
    assert obs.verify_code == 62
    assert "mismatch" in obs.error.lower()


def test_expired_certificate(pki: Pki) -> None:
    past = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    ctx = pki.server(pki.ca, NAME, not_before=past - dt.timedelta(days=30), not_after=past)
    obs = handshake_with(pki, ssl_ctx=ctx)
    assert obs.failure == base.Failure.SSL_INVALID_CERTIFICATE
    assert obs.verify_code == 10


def test_fetch_unverified_certificate_from_a_closed_port_is_none(pki: Pki) -> None:
    assert asyncio.run(tls.fetch_unverified_certificate(ctx_for(pki), LOOPBACK, closed_port(), NAME)) is None


def test_fetch_unverified_certificate_from_a_silent_server_is_none(pki: Pki) -> None:
    async def main() -> base.CertificateInfo | None:
        async with TcpServer(read_until_eof) as server:
            probe_ctx = ctx_for(pki, timeouts=SHORT)
            return await tls.fetch_unverified_certificate(probe_ctx, LOOPBACK, server.port, NAME)

    start = time.monotonic()
    assert asyncio.run(main()) is None
    assert time.monotonic() - start < 1.5


# --- interruptions ----------------------------------------------------------------------------------


async def reset_after_client_hello(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_tls_record(reader)
    reset(writer)


async def close_after_client_hello(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_tls_record(reader)  # then FIN (the whole ClientHello was read, so no RST for unread data)


async def plaintext_reply(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_tls_record(reader)
    writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    await writer.drain()


def test_reset_after_client_hello(pki: Pki) -> None:
    obs = handshake_with(pki, reset_after_client_hello)
    assert obs.failure == base.Failure.CONNECTION_RESET == "connection_reset"
    assert obs.certificate is None


def test_close_after_client_hello(pki: Pki) -> None:
    obs = handshake_with(pki, close_after_client_hello)
    assert obs.failure == base.Failure.EOF == "eof_error"


def test_silence_after_connect_times_out(pki: Pki) -> None:
    start = time.monotonic()
    obs = handshake_with(pki, read_until_eof, timeouts=SHORT)
    assert obs.failure == base.Failure.GENERIC_TIMEOUT == "generic_timeout_error"
    assert obs.error == "no handshake within 0.3s"
    assert 280 <= obs.elapsed_ms < 1000
    assert time.monotonic() - start < 1.3


def test_plaintext_on_the_tls_port(pki: Pki) -> None:
    obs = handshake_with(pki, plaintext_reply)
    assert obs.failure == base.Failure.SSL_FAILED_HANDSHAKE == "ssl_failed_handshake"
    assert "WRONG_VERSION_NUMBER" in obs.error.upper() or "record layer" in obs.error.lower()


# --- through a SOCKS vantage ------------------------------------------------------------------------


def test_sni_policies_through_the_middlebox(pki: Pki) -> None:
    async def main() -> dict[str, object]:
        real = pki.server(pki.ca, NAME, "blocked.vn", "intercepted.vn")
        forged = pki.server(pki.evil, "intercepted.vn")
        async with TcpServer(read_until_eof, real) as web, TcpServer(read_until_eof, forged) as interceptor:
            policy = MiddleboxPolicy(
                sni={"blocked.vn": "reset", "intercepted.vn": "intercept"},
                pages={"intercept": (LOOPBACK, interceptor.port)},
            )
            async with running(Middlebox({(LAB_WEB, 443): (LOOPBACK, web.port)}, policy)) as box:
                ctx = ctx_for(pki, dialer=Socks5Dialer(f"socks5://127.0.0.1:{box.port}", loopback_only=True,
                                                             simulated=("0.0.0.0/0",)))
                return {
                    "ok": await probe(ctx, 443, NAME, LAB_WEB),
                    "reset": await probe(ctx, 443, "blocked.vn", LAB_WEB),
                    "intercept": await probe(ctx, 443, "intercepted.vn", LAB_WEB),
                    "evidence": await tls.fetch_unverified_certificate(ctx, LAB_WEB, 443, "intercepted.vn"),
                }

    out = asyncio.run(main())
    ok, rst, intercept, evidence = out["ok"], out["reset"], out["intercept"], out["evidence"]
    assert isinstance(ok, base.TlsObservation) and ok.failure is None
    assert ok.certificate is not None and ok.certificate.issuer == "O=Lab Root CA"
    assert isinstance(rst, base.TlsObservation) and rst.failure == base.Failure.CONNECTION_RESET
    assert isinstance(intercept, base.TlsObservation) and intercept.failure == base.Failure.SSL_UNKNOWN_AUTHORITY
    assert isinstance(evidence, base.CertificateInfo) and evidence.issuer == "O=Evil Interception Co"


# --- classify on synthetic exception chains ---------------------------------------------------------


def cert_error(code: int, message: str = "verify failed") -> ssl.SSLCertVerificationError:
    e = ssl.SSLCertVerificationError(1, f"[SSL: CERTIFICATE_VERIFY_FAILED] {message}")
    e.verify_code = code
    e.verify_message = message
    return e


def chained(outer: BaseException, inner: BaseException, cause: bool = True) -> BaseException:
    if cause:
        outer.__cause__ = inner
    else:
        outer.__context__ = inner
    return outer


@pytest.mark.parametrize(
    "exc,expected",
    [
        (cert_error(62, "Hostname mismatch"), (base.Failure.SSL_INVALID_HOSTNAME, 62)),
        (cert_error(20), (base.Failure.SSL_UNKNOWN_AUTHORITY, 20)),
        (cert_error(19), (base.Failure.SSL_UNKNOWN_AUTHORITY, 19)),  # self-signed in chain
        (cert_error(18), (base.Failure.SSL_UNKNOWN_AUTHORITY, 18)),  # self-signed leaf
        (cert_error(10), (base.Failure.SSL_INVALID_CERTIFICATE, 10)),  # expired
        # a certificate error anywhere in the chain wins over what wraps it
        (chained(ConnectionResetError(errno.ECONNRESET, "reset"), cert_error(62)),
         (base.Failure.SSL_INVALID_HOSTNAME, 62)),
        (chained(RuntimeError("wrapped"), chained(OSError("x"), cert_error(20)), cause=False),
         (base.Failure.SSL_UNKNOWN_AUTHORITY, 20)),
        (TimeoutError(), (base.Failure.GENERIC_TIMEOUT, None)),
        (chained(asyncio.CancelledError(), TimeoutError(), cause=False), (base.Failure.GENERIC_TIMEOUT, None)),
        (ssl.SSLEOFError(8, "EOF occurred in violation of protocol"), (base.Failure.EOF, None)),
        (ssl.SSLZeroReturnError(6, "TLS/SSL connection has been closed"), (base.Failure.EOF, None)),
        (ConnectionResetError(errno.ECONNRESET, "Connection reset by peer"), (base.Failure.CONNECTION_RESET, None)),
        (ConnectionResetError("Connection lost"), (base.Failure.EOF, None)),  # asyncio's FIN during a handshake
        (ConnectionRefusedError(errno.ECONNREFUSED, "refused"), (base.Failure.CONNECTION_REFUSED, None)),
        (ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number"),
         (base.Failure.SSL_FAILED_HANDSHAKE, None)),
        (ssl.SSLError(1, "[SSL: TLSV1_UNRECOGNIZED_NAME] tlsv1 unrecognized name"),
         (base.Failure.SSL_FAILED_HANDSHAKE, None)),
        (ValueError("something else"), (base.Failure.SSL_FAILED_HANDSHAKE, None)),
    ],
)
def test_classify(exc: BaseException, expected: tuple[str, int | None]) -> None:
    assert tls.classify(exc) == expected


def test_classify_survives_a_cycle() -> None:
    a, b = RuntimeError("a"), ssl.SSLError(1, "b")
    a.__context__, b.__context__ = b, a
    assert tls.classify(a) == (base.Failure.SSL_FAILED_HANDSHAKE, None)


def test_certificate_info_of_garbage_keeps_the_hash() -> None:
    info = tls.certificate_info(b"not a certificate")
    assert info is not None and info.issuer == "" and len(info.sha256) == 64
    assert tls.certificate_info(None) is None and tls.certificate_info(b"") is None
