"""Small loopback servers for probe tests: each misbehaves in one precise way.

Everything listens on 127.0.0.1, port 0, no privileges. Every server is an async context manager that ends
its connections on exit (cancelled handlers close their transports), so no socket or transport outlives a
test: pytest runs with warnings as errors and an unclosed transport is a ResourceWarning.
The lab's own servers (`auditor.lab.servers`) are used directly where they already do the job.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, cast

LOOPBACK = "127.0.0.1"

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
# (datagram, peer address) -> datagrams to send back (in order)
UdpResponder = Callable[[bytes, tuple[str, int]], list[bytes]]


class TcpServer:
    """Runs `handler(reader, writer)` for every connection; `peers` records who connected."""

    def __init__(self, handler: Handler, ssl_ctx: ssl.SSLContext | None = None, host: str = LOOPBACK) -> None:
        self.handler = handler
        self.ssl_ctx = ssl_ctx
        self.host = host
        self.port = 0
        self.peers: list[tuple[str, int]] = []
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    async def _guarded(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.peers.append(writer.get_extra_info("peername")[:2])
        try:
            await self.handler(reader, writer)
        except (OSError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        except asyncio.CancelledError:
            # ended by __aexit__: finish normally, or asyncio's done-callback of a server connection task
            # (task.exception() on a cancelled task) logs a spurious error
            pass
        finally:
            writer.close()
            self._tasks.discard(task)

    async def __aenter__(self) -> TcpServer:
        extra: dict[str, Any] = {"ssl": self.ssl_ctx, "ssl_handshake_timeout": 5} if self.ssl_ctx else {}
        self._server = await asyncio.start_server(self._guarded, self.host, 0, **extra)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._server.wait_closed()
        await asyncio.sleep(0)  # let the closed transports' connection_lost callbacks run


class UdpServer:
    """A UDP server on 127.0.0.1 answering each datagram with what `respond` returns."""

    def __init__(self, respond: UdpResponder, port: int = 0) -> None:
        self.respond = respond
        self.port = port
        self.received: list[tuple[bytes, tuple[str, int]]] = []
        self._transport: asyncio.DatagramTransport | None = None

    async def __aenter__(self) -> UdpServer:
        server = self

        class Protocol(asyncio.DatagramProtocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                # a datagram endpoint's transport (CPython's is no DatagramTransport subclass: no isinstance)
                self.transport = cast(asyncio.DatagramTransport, transport)

            def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
                server.received.append((data, addr))
                for reply in server.respond(data, addr):
                    self.transport.sendto(reply, addr)

        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(Protocol, local_addr=(LOOPBACK, self.port))
        self._transport = transport
        self.port = transport.get_extra_info("sockname")[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._transport is not None
        self._transport.close()
        await asyncio.sleep(0)


@contextlib.asynccontextmanager
async def dns_on_one_port(udp: UdpResponder, tcp: Handler) -> AsyncIterator[tuple[UdpServer, TcpServer]]:
    """A DNS server with UDP and TCP on the same port number (the probe falls back to TCP on that port)."""
    for _ in range(20):
        async with UdpServer(udp) as u:
            tcp_server = TcpServer(tcp)
            probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                probe.bind((LOOPBACK, u.port))
            except OSError:
                continue  # the TCP port of that number is taken: try another UDP port
            finally:
                probe.close()
            server = await asyncio.start_server(tcp_server._guarded, LOOPBACK, u.port)
            tcp_server._server = server
            tcp_server.port = u.port
            try:
                yield u, tcp_server
            finally:
                await tcp_server.__aexit__(None, None, None)
            return
    raise RuntimeError("no port free for both UDP and TCP")


@contextlib.asynccontextmanager
async def running(server: Any) -> AsyncIterator[Any]:
    """Start and close a lab server (`auditor.lab.servers`) around a block."""
    await server.start()
    try:
        yield server
    finally:
        # let connections the client already closed wind down (a middlebox pipe needs a few loop turns to see
        # the EOF on both sides), so asyncio.run does not cancel them and log spurious errors
        connections = server.__dict__.get("_connections", set())
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(1):
                while connections:
                    await asyncio.sleep(0.005)
        await server.close()
        await asyncio.sleep(0)


def closed_port(kind: int = socket.SOCK_STREAM) -> int:
    """A loopback port nothing listens on (bound, then released)."""
    s = socket.socket(socket.AF_INET, kind)
    try:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])
    finally:
        s.close()


async def read_until_eof(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Accept and stay silent: read (and ignore) everything until the client goes away."""
    while await reader.read(65536):
        pass


async def read_some(reader: asyncio.StreamReader, n: int = 1) -> bytes:
    """Wait for at least `n` bytes (a ClientHello, a request head...)."""
    data = b""
    while len(data) < n:
        chunk = await reader.read(65536)
        if not chunk:
            break
        data += chunk
    return data


async def read_dns_tcp(reader: asyncio.StreamReader) -> bytes:
    (length,) = struct.unpack("!H", await reader.readexactly(2))
    return await reader.readexactly(length)


def dns_tcp_frame(wire: bytes) -> bytes:
    return struct.pack("!H", len(wire)) + wire


async def drain_loop() -> None:
    """A few loop turns, so transports closed by the code under test finish closing."""
    for _ in range(3):
        await asyncio.sleep(0)


async def read_tls_record(reader: asyncio.StreamReader) -> bytes:
    """One whole TLS record (the ClientHello): closing afterwards then sends a FIN, not a RST for unread
    data."""
    header = await reader.readexactly(5)
    (length,) = struct.unpack("!H", header[3:5])
    return header + await reader.readexactly(length)
