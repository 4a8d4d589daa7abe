"""DNS probe: one query to one resolver, from the vantage.

UDP on a connected socket of our own (a closed resolver port then shows as `connection_refused`, not a
silent timeout), falling back to TCP when the reply is truncated. A vantage without UDP (SOCKS) queries over
TCP through the dialer with RFC 1035 §4.2.2 framing. Replies whose ID or question do not match are ignored,
as a stub resolver would; the deadline covers the whole exchange.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
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

_RCODE_FAILURES = {
    dns.rcode.NXDOMAIN: base.Failure.DNS_NXDOMAIN,
    dns.rcode.REFUSED: base.Failure.DNS_REFUSED,
    dns.rcode.SERVFAIL: base.Failure.DNS_SERVFAIL,
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
                channels = ctx.dns_channels
                if channels is not None:
                    try:
                        reply = await channels.channel(ctx, resolver_ip, resolver_port).exchange(q)
                    except ChannelLost:
                        # the shared connection died under this query: ask again on a connection of its
                        # own, so a reset caused by another name is never recorded against this one
                        reply = await _tcp_exchange(ctx, q, resolver_ip, resolver_port)
                else:
                    reply = await _tcp_exchange(ctx, q, resolver_ip, resolver_port)
    except TimeoutError:
        failure, text = base.Failure.GENERIC_TIMEOUT, f"no reply within {ctx.timeouts.dns:g}s"
        return _failed(resolver, qtype, transport, failure, text, start)
    except base.DialError as exc:
        return _failed(resolver, qtype, transport, exc.failure, exc.error, start)
    except (dns.exception.DNSException, ValueError, struct.error) as exc:
        return _failed(resolver, qtype, transport, base.Failure.DNS_BAD_REPLY, f"malformed reply: {exc}", start)
    except OSError as exc:
        return _failed(resolver, qtype, transport, base.os_error_failure(exc), str(exc), start)
    return _observe(reply, resolver, qtype, transport, start)


def _failed(
    resolver: str, qtype: str, transport: str, failure: base.Failure, error: str, start: float
) -> base.DnsObservation:
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
        failure = base.Failure.DNS_OTHER_RCODE
    error = ""
    if failure is None and not addresses:
        failure = base.Failure.DNS_NO_ANSWER
        if transport == "tcp" and reply.flags & dns.flags.TC:
            # TC over TCP (RFC 7766 §8: only for a reply over 64 KiB): the resolver says its empty answer is
            # incomplete, so it is no "no address" answer to call a block on
            failure = base.Failure.DNS_BAD_REPLY
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


# --- pipelined DNS over TCP -------------------------------------------------------------------------------


class ChannelLost(Exception):
    """The shared connection closed or failed before this query's reply came."""


class TcpChannels:
    """A vantage's DNS-over-TCP connections, one per resolver, kept open and pipelined (RFC 7766 §6.2.1.1).

    Through a SOCKS vantage every query used to cost a proxy dial of its own, the largest single cost of a
    measurement (BENCHMARKS.md, finding 1). Replies are matched by ID and question; a silent name times out
    alone without closing the connection; a lost connection fails only the queries in flight on it, and
    those are asked again on a connection of their own.
    """

    def __init__(self) -> None:
        self._channels: dict[tuple[str, int], _Channel] = {}

    def channel(self, ctx: base.ProbeContext, ip: str, port: int) -> _Channel:
        ch = self._channels.get((ip, port))
        if ch is None:
            ch = self._channels[(ip, port)] = _Channel(ctx, ip, port)
        return ch

    async def close(self) -> None:
        for ch in self._channels.values():
            await ch.close()
        self._channels.clear()


class _Connection:
    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.pending: dict[int, tuple[dns.message.Message, asyncio.Future[dns.message.Message]]] = {}
        self.alive = True
        self.reader_task: asyncio.Task[None] | None = None


class _Channel:
    def __init__(self, ctx: base.ProbeContext, ip: str, port: int) -> None:
        self.ctx, self.ip, self.port = ctx, ip, port
        self._conn: _Connection | None = None
        self._lock = asyncio.Lock()

    async def exchange(self, q: dns.message.Message) -> dns.message.Message:
        conn = await self._connection()
        while q.id in conn.pending:  # IDs must be unique among the queries in flight on one connection
            q.id = secrets.randbelow(65536)
        fut: asyncio.Future[dns.message.Message] = asyncio.get_running_loop().create_future()
        conn.pending[q.id] = (q, fut)
        try:
            wire = q.to_wire()
            conn.writer.write(struct.pack("!H", len(wire)) + wire)
            await conn.writer.drain()
            return await fut
        except (ConnectionError, OSError) as exc:
            raise ChannelLost(str(exc)) from exc
        finally:
            if conn.pending.get(q.id, (None, None))[1] is fut:
                del conn.pending[q.id]

    async def _connection(self) -> _Connection:
        async with self._lock:
            if self._conn is not None and self._conn.alive:
                return self._conn
            sock = await self.ctx.dialer.connect(self.ip, self.port, self.ctx.timeouts.dns)
            reader, writer = await asyncio.open_connection(sock=sock)
            conn = _Connection(writer)
            conn.reader_task = asyncio.create_task(self._read(conn, reader))
            self._conn = conn
            return conn

    async def _read(self, conn: _Connection, reader: asyncio.StreamReader) -> None:
        reason = "resolver closed the TCP connection"
        try:
            while True:
                (length,) = struct.unpack("!H", await reader.readexactly(2))
                data = await reader.readexactly(length)
                try:
                    reply = dns.message.from_wire(data, ignore_trailing=True)
                except dns.exception.DNSException as exc:
                    # garbage cannot be told apart by ID: the stream is suspect, so every query in flight is
                    # asked again on a connection of its own, where a bad reply is recorded as exactly that
                    reason = f"malformed message on the shared connection: {exc}"
                    break
                entry = conn.pending.get(reply.id)
                if entry is None:
                    continue  # a late reply to a query that gave up
                q, fut = entry
                if q.is_response(reply) and not fut.done():
                    fut.set_result(reply)
        except asyncio.IncompleteReadError:
            pass
        except (OSError, struct.error) as exc:
            reason = f"{type(exc).__name__}: {exc}"
        finally:
            conn.alive = False
            conn.writer.close()
            for _, fut in conn.pending.values():
                if not fut.done():
                    fut.set_exception(ChannelLost(reason))

    async def close(self) -> None:
        conn = self._conn
        self._conn = None
        if conn is None:
            return
        conn.alive = False
        conn.writer.close()
        if conn.reader_task is not None:
            conn.reader_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await conn.reader_task
        with contextlib.suppress(Exception):
            await conn.writer.wait_closed()
