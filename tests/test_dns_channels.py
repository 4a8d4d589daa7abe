"""Pipelined DNS over TCP: one connection per resolver carries many queries; a silent name or a connection
killed by one query never costs another name its answer."""

from __future__ import annotations

import asyncio
import socket
import struct

import dns.message
import dns.rrset

from probes import base
from probes import dns as dns_probe
from probes.dialers import SocketDialer

LOOPBACK = "127.0.0.1"


class TcpOnly(SocketDialer):
    """A direct dialer without UDP, like a SOCKS vantage."""

    def udp_socket(self, ip: str) -> socket.socket | None:
        return None


class CountingResolver:
    """DNS over TCP: answers every name 45.76.0.<n>, says nothing for silent.example, and closes the
    connection when asked for kill.example."""

    def __init__(self) -> None:
        self.connections = 0
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self.serve, LOOPBACK, 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                (n,) = struct.unpack("!H", await reader.readexactly(2))
                q = dns.message.from_wire(await reader.readexactly(n))
                name = q.question[0].name.to_text(omit_final_dot=True)
                if name == "silent.example":
                    continue
                if name == "kill.example":
                    break
                reply = dns.message.make_response(q)
                if q.question[0].rdtype == 1:
                    last = int(name.split(".")[0].removeprefix("n") or 0) % 250
                    reply.answer.append(dns.rrset.from_text(q.question[0].name, 60, "IN", "A", f"45.76.0.{last}"))
                await asyncio.sleep(0.01)  # replies in flight overlap
                wire = reply.to_wire()
                writer.write(struct.pack("!H", len(wire)) + wire)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def close(self) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()


def context(timeout: float = 1.0) -> base.ProbeContext:
    return base.ProbeContext(
        dialer=TcpOnly(), timeouts=base.Timeouts(dns=timeout, connect=timeout, tls=timeout, http=timeout),
        dns_channels=dns_probe.TcpChannels(),
    )


def test_many_queries_share_one_connection() -> None:
    async def go() -> tuple[list[base.DnsObservation], int]:
        server = CountingResolver()
        await server.start()
        ctx = context()
        try:
            got = await asyncio.gather(*(dns_probe.query(ctx, LOOPBACK, server.port, f"n{i}.example") for i in range(20)))
        finally:
            await ctx.dns_channels.close()
            await server.close()
        return list(got), server.connections

    got, connections = asyncio.run(go())
    assert connections == 1
    assert [o.addresses for o in got] == [(f"45.76.0.{i}",) for i in range(20)]
    assert all(o.transport == "tcp" and o.failure is None for o in got)


def test_a_silent_name_times_out_alone() -> None:
    async def go() -> tuple[list[base.DnsObservation], int]:
        server = CountingResolver()
        await server.start()
        ctx = context(timeout=0.5)
        try:
            got = await asyncio.gather(
                dns_probe.query(ctx, LOOPBACK, server.port, "silent.example"),
                *(dns_probe.query(ctx, LOOPBACK, server.port, f"n{i}.example") for i in range(5)),
            )
            after = await dns_probe.query(ctx, LOOPBACK, server.port, "n7.example")
        finally:
            await ctx.dns_channels.close()
            await server.close()
        return [*got, after], server.connections

    got, connections = asyncio.run(go())
    assert got[0].failure == base.Failure.GENERIC_TIMEOUT
    assert all(o.failure is None for o in got[1:])
    assert connections == 1  # the timeout did not close the shared connection


def test_a_query_that_kills_the_connection_costs_no_other_name_its_answer() -> None:
    async def go() -> list[base.DnsObservation]:
        server = CountingResolver()
        await server.start()
        ctx = context()
        try:
            return list(await asyncio.gather(
                *(dns_probe.query(ctx, LOOPBACK, server.port, f"n{i}.example") for i in range(5)),
                dns_probe.query(ctx, LOOPBACK, server.port, "kill.example"),
                *(dns_probe.query(ctx, LOOPBACK, server.port, f"n{i}.example") for i in range(5, 10)),
            ))
        finally:
            await ctx.dns_channels.close()
            await server.close()

    got = asyncio.run(go())
    killed = got[5]
    others = got[:5] + got[6:]
    assert killed.failure == base.Failure.EOF  # asked again on a connection of its own: closed there too
    assert all(o.failure is None and o.addresses for o in others), [o.failure for o in others]
