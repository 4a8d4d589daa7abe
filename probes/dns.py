"""DNS probe: one query to one resolver, from the vantage.

UDP on a connected socket of our own (a closed resolver port then shows as `connection_refused`, not a
silent timeout), falling back to TCP when the reply is truncated. A vantage without UDP (SOCKS) queries over
TCP through the dialer with RFC 1035 §4.2.2 framing. Replies whose ID or question do not match are ignored,
as a stub resolver would; the deadline covers the whole exchange.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import time

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype

from probes import base
from probes.dialers import DialError, os_error_failure

_RCODE_FAILURES = {
    dns.rcode.NXDOMAIN: base.DNS_NXDOMAIN,
    dns.rcode.REFUSED: base.DNS_REFUSED,
    dns.rcode.SERVFAIL: base.DNS_SERVFAIL,
}
MAX_ADDRESSES = 64  # a reply holding hundreds of records is recorded, not kept whole


async def query(
    ctx: base.ProbeContext, resolver_ip: str, resolver_port: int, name: str, qtype: str = "A"
) -> base.DnsObservation:
    """Ask one resolver for `name` (IDNA ASCII) and record what came back."""
    rdtype = dns.rdatatype.from_text(qtype)
    q = dns.message.make_query(dns.name.from_text(name), rdtype)
    resolver = f"[{resolver_ip}]:{resolver_port}" if ":" in resolver_ip else f"{resolver_ip}:{resolver_port}"
    start = time.monotonic()
    transport = "udp"
    try:
        async with asyncio.timeout(ctx.timeouts.dns):
            udp = ctx.dialer.udp_socket(resolver_ip)
            reply = None
            if udp is not None:
                reply = await _udp_exchange(udp, q, resolver_ip, resolver_port)
            if reply is None or reply.flags & dns.flags.TC:
                transport = "tcp"
                reply = await _tcp_exchange(ctx, q, resolver_ip, resolver_port)
    except TimeoutError:
        return _failed(resolver, qtype, transport, base.TIMEOUT, f"no reply within {ctx.timeouts.dns:g}s", start)
    except DialError as exc:
        return _failed(resolver, qtype, transport, exc.failure, exc.error, start)
    except (dns.exception.DNSException, ValueError, struct.error) as exc:
        return _failed(resolver, qtype, transport, base.DNS_BAD_REPLY, f"malformed reply: {exc}", start)
    except OSError as exc:
        return _failed(resolver, qtype, transport, os_error_failure(exc), str(exc), start)
    return _observe(reply, resolver, qtype, transport, start)


def _failed(resolver: str, qtype: str, transport: str, failure: str, error: str, start: float) -> base.DnsObservation:
    return base.DnsObservation(
        resolver=resolver,
        qtype=qtype,
        transport=transport,
        failure=failure,
        elapsed_ms=_ms(start),
        error=error,
    )


def _ms(start: float) -> float:
    return round((time.monotonic() - start) * 1000, 2)


def _observe(reply: dns.message.Message, resolver: str, qtype: str, transport: str, start: float) -> base.DnsObservation:
    rcode = reply.rcode()
    addresses: list[str] = []
    cnames: list[str] = []
    for rrset in reply.answer:
        for rdata in rrset:
            if rrset.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
                if len(addresses) < MAX_ADDRESSES and rdata.address not in addresses:
                    addresses.append(rdata.address)
            elif rrset.rdtype == dns.rdatatype.CNAME and len(cnames) < 16:
                cnames.append(rdata.target.to_text(omit_final_dot=True))
    failure = _RCODE_FAILURES.get(rcode)
    if failure is None and rcode != dns.rcode.NOERROR:
        failure = base.DNS_OTHER_RCODE
    error = ""
    if failure is None and not addresses:
        failure = base.DNS_NO_ANSWER
        if transport == "tcp" and reply.flags & dns.flags.TC:
            # TC over TCP (RFC 7766 §8: only for a reply over 64 KiB): the resolver says its empty answer is
            # incomplete, so it is no "no address" answer to call a block on
            failure = base.DNS_BAD_REPLY
            error = "truncated reply over TCP with no answer"
    return base.DnsObservation(
        resolver=resolver,
        qtype=qtype,
        transport=transport,
        failure=failure,
        rcode=dns.rcode.to_text(rcode),
        addresses=tuple(addresses),
        cnames=tuple(cnames),
        elapsed_ms=_ms(start),
        error=error,
    )


async def _udp_exchange(sock: socket.socket, q: dns.message.Message, ip: str, port: int) -> dns.message.Message:
    loop = asyncio.get_running_loop()
    try:
        sock.connect((ip, port))
        await loop.sock_sendall(sock, q.to_wire())
        while True:
            data = await loop.sock_recv(sock, 65535)
            try:
                # raise_on_truncation: without it dnspython raises a plain FormError for a TC reply cut
                # mid-record, which would be skipped as garbage and the probe would time out
                reply = dns.message.from_wire(data, ignore_trailing=True, raise_on_truncation=True)
            except dns.message.Truncated:
                # a truncated reply may not parse whole: retry over TCP
                try:
                    header_only = dns.message.from_wire(data, question_only=True)
                except dns.exception.DNSException:
                    continue  # garbage that happens to have the TC bit set: skipped like any other garbage
                if q.is_response(header_only):
                    header_only.flags |= dns.flags.TC
                    return header_only
                continue
            except dns.exception.DNSException:
                continue  # garbage on our port: keep waiting for the real reply
            if q.is_response(reply):
                return reply
    finally:
        sock.close()


async def _tcp_exchange(ctx: base.ProbeContext, q: dns.message.Message, ip: str, port: int) -> dns.message.Message:
    sock = await ctx.dialer.connect(ip, port, ctx.timeouts.dns)
    reader, writer = await asyncio.open_connection(sock=sock)
    try:
        wire = q.to_wire()
        writer.write(struct.pack("!H", len(wire)) + wire)
        await writer.drain()
        while True:
            try:
                (length,) = struct.unpack("!H", await reader.readexactly(2))
                data = await reader.readexactly(length)
            except asyncio.IncompleteReadError as exc:
                raise ConnectionResetError("resolver closed the TCP connection without a reply") from exc
            reply = dns.message.from_wire(data, ignore_trailing=True)
            if q.is_response(reply):
                return reply
    finally:
        writer.close()
