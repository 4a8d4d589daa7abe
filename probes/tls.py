"""TLS probe: a handshake with SNI = the name under test and full certificate validation.

Failures are mapped in one place (`classify`), certificate errors first: they are the strongest signal
(interception), then resets and EOFs (SNI filtering), then other handshake errors (alerts, plaintext).
On a certificate failure the certificate is fetched again without validation, so the evidence can say who
issued it: an interception certificate is named, not just "invalid".
"""

from __future__ import annotations

import asyncio
import hashlib
import socket
import ssl
import time

from probes import base

# OpenSSL X509_V_ERR_* codes (x509_vfy.h)
_HOSTNAME_MISMATCH = 62
_UNKNOWN_AUTHORITY = {2, 18, 19, 20, 21, 27}
_NO_VERIFY = ssl.create_default_context()
_NO_VERIFY.check_hostname = False
_NO_VERIFY.verify_mode = ssl.CERT_NONE


def classify(exc: BaseException) -> tuple[base.Failure, int | None]:
    """Failure name (and OpenSSL verify code) for an exception raised by a handshake."""
    seen: set[int] = set()
    chain: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:  # outside-in through causes and contexts
        seen.add(id(cur))
        chain.append(cur)
        cur = cur.__cause__ or cur.__context__
    for e in chain:
        if isinstance(e, ssl.SSLCertVerificationError):
            code = e.verify_code
            if code == _HOSTNAME_MISMATCH:
                return base.Failure.SSL_INVALID_HOSTNAME, code
            if code in _UNKNOWN_AUTHORITY:
                return base.Failure.SSL_UNKNOWN_AUTHORITY, code
            return base.Failure.SSL_INVALID_CERTIFICATE, code
    for e in chain:
        if isinstance(e, (TimeoutError, asyncio.TimeoutError)):
            return base.Failure.GENERIC_TIMEOUT, None
        if isinstance(e, (ssl.SSLEOFError, ssl.SSLZeroReturnError)):
            return base.Failure.EOF, None
        if isinstance(e, (ConnectionError, OSError)) and not isinstance(e, ssl.SSLError):
            return base.os_error_failure(e), None
    return base.Failure.SSL_FAILED_HANDSHAKE, None


async def handshake(
    ctx: base.ProbeContext, sock: socket.socket, server_name: str
) -> tuple[base.TlsObservation, tuple[asyncio.StreamReader, asyncio.StreamWriter] | None]:
    """Handshake over a connected socket; on success return the TLS stream (the caller closes it)."""
    assert ctx.ssl_context is not None, "a verifying SSL context is built once per run"
    start = time.monotonic()
    # The socket goes to a plain transport first and is upgraded with start_tls: from here on only the
    # transport closes it. Closing the socket ourselves after a failed handshake freed its descriptor while
    # asyncio's TLS transport still held the number (shutting down), so the next socket got the same number
    # and asyncio refused it ("File descriptor N is used by transport"): 13,308 lost measurements in one
    # 50k-URL benchmark run.
    reader, writer = await asyncio.open_connection(sock=sock)
    try:
        async with asyncio.timeout(ctx.timeouts.tls):
            await writer.start_tls(ctx.ssl_context, server_hostname=server_name, ssl_handshake_timeout=ctx.timeouts.tls)
    except BaseException as exc:
        writer.transport.abort()
        if isinstance(exc, (KeyboardInterrupt, SystemExit, asyncio.CancelledError)):
            raise
        failure, code = classify(exc)
        text = getattr(exc, "verify_message", "") or str(exc) or type(exc).__name__
        if failure == base.Failure.GENERIC_TIMEOUT:
            text = f"no handshake within {ctx.timeouts.tls:g}s"
        return base.TlsObservation(server_name, failure, _ms(start), text, code), None
    ssl_obj = writer.get_extra_info("ssl_object")
    cert = certificate_info(ssl_obj.getpeercert(binary_form=True)) if ssl_obj else None
    version = ssl_obj.version() or "" if ssl_obj else ""
    return base.TlsObservation(server_name, None, _ms(start), version=version, certificate=cert), (reader, writer)


async def fetch_unverified_certificate(
    ctx: base.ProbeContext, ip: str, port: int, server_name: str
) -> base.CertificateInfo | None:
    """The certificate an address presents for a name, without validating it (evidence only)."""
    try:
        sock = await ctx.dialer.connect(ip, port, ctx.timeouts.connect)
    except base.DialError:
        return None
    _, writer = await asyncio.open_connection(sock=sock)  # the transport owns the socket (see handshake)
    try:
        async with asyncio.timeout(ctx.timeouts.tls):
            await writer.start_tls(_NO_VERIFY, server_hostname=server_name)
    except (OSError, ssl.SSLError, TimeoutError):
        writer.transport.abort()
        return None
    try:
        ssl_obj = writer.get_extra_info("ssl_object")
        return certificate_info(ssl_obj.getpeercert(binary_form=True)) if ssl_obj else None
    finally:
        writer.close()


def certificate_info(der: bytes | None) -> base.CertificateInfo | None:
    if not der:
        return None
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    try:
        cert = x509.load_der_x509_certificate(der)
    except ValueError:
        return base.CertificateInfo(sha256=hashlib.sha256(der).hexdigest())

    def name_of(n: x509.Name) -> str:
        cn = n.get_attributes_for_oid(NameOID.COMMON_NAME)
        org = n.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
        parts = [f"CN={_text(cn[0].value)}"] if cn else []
        parts += [f"O={_text(org[0].value)}"] if org else []
        return ", ".join(parts) or n.rfc4514_string()[:120]

    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        names = tuple(san.value.get_values_for_type(x509.DNSName))[:20]
    except x509.ExtensionNotFound:
        names = ()
    return base.CertificateInfo(
        subject=name_of(cert.subject),
        issuer=name_of(cert.issuer),
        sha256=hashlib.sha256(der).hexdigest(),
        not_after=cert.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
        names=names,
    )


def _text(value: str | bytes) -> str:
    """An attribute's value: `str` for CN and O (cryptography types a few other OIDs' values as bytes)."""
    return value if isinstance(value, str) else value.decode("utf-8", "replace")


def _ms(start: float) -> float:
    return round((time.monotonic() - start) * 1000, 2)
