"""The lab's network pieces, all on 127.0.0.1 ephemeral ports, no root needed.

- `WebServer`: the "Internet" sites over http and https, by Host and SNI (certificates from the lab CA).
- `FixedPageServer`: a server that answers every request with one response (block pages, warning pages).
- `LabResolver`: a DNS server over UDP and TCP with per-name policies (answer, NXDOMAIN, REFUSED, silence).
- `Middlebox`: a SOCKS5 server that IS a provider's network: the vantage's traffic enters it, its
  filtering policy is applied on path (refuse, blackhole, reset after the ClientHello or the request,
  TLS interception, block pages), and what passes is piped to the lab server behind the address. It never
  connects anywhere but 127.0.0.1: an address it does not know is refused.

The addresses the lab hands out look public (so the tool's bogon rule treats them as real), but every
connection to them goes to a middlebox on loopback, which maps them to loopback listeners.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import socket
import ssl
import struct
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import cast

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset

Endpoint = tuple[str, int]
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
LOOPBACK = "127.0.0.1"


def reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP RST, as an on-path middlebox injecting a reset would appear."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


def http_response(status: int, reason: str, body: bytes, headers: dict[str, str] | None = None) -> bytes:
    head = [f"HTTP/1.1 {status} {reason}", f"Content-Length: {len(body)}", "Connection: close"]
    hdrs = {"Content-Type": "text/html; charset=utf-8", **(headers or {})}
    head += [f"{k}: {v}" for k, v in hdrs.items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


async def read_request_head(reader: asyncio.StreamReader, limit: int = 65536) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data and len(data) < limit:
        chunk = await reader.read(4096)
        if not chunk:
            break
        data += chunk
    return data


def request_host_and_path(head: bytes) -> tuple[str, str]:
    lines = head.decode("latin-1", "replace").split("\r\n")
    parts = lines[0].split(" ") if lines else []
    path = parts[1] if len(parts) > 1 else "/"
    host = ""
    for line in lines[1:]:
        if line.lower().startswith("host:"):
            host = line.split(":", 1)[1].strip().lower()
            break
    return host.split(":")[0] if not host.startswith("[") else host, path


class LabServer:
    """An asyncio server on 127.0.0.1:0 with a handler."""

    server: asyncio.Server | None = None
    port: int = 0

    async def _listen(self, handler: Handler, ssl_ctx: ssl.SSLContext | None = None) -> int:
        connections: set[asyncio.Task[object] | None] = self.__dict__.setdefault("_connections", set())

        async def guarded(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            connections.add(task)  # a strong reference: a connection stuck in a pipe is not collected
            try:
                await handler(reader, writer)
            except (OSError, asyncio.IncompleteReadError, ssl.SSLError, ValueError):
                pass
            finally:
                writer.close()
                connections.discard(task)

        # a deep accept queue: with asyncio's default of 100, a burst of connections overflows it and the
        # kernel drops SYNs, which the client retransmits a second later (a lab artefact, not a filter)
        self.server = await asyncio.start_server(
            guarded, LOOPBACK, 0, backlog=4096,
            ssl=ssl_ctx, ssl_handshake_timeout=5 if ssl_ctx is not None else None,  # asyncio: timeout only with ssl
        )
        return self.server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.server.wait_closed(), 1)


# --- the Internet's sites ----------------------------------------------------------------------------


@dataclass
class Site:
    name: str  # IDNA ASCII
    kind: str = "static"  # static | dynamic | large | redirect
    title: str = ""
    location: str = ""  # for kind redirect
    text: str = ""


def site_body(site: Site) -> bytes:
    if site.kind == "dynamic":
        # content that changes every request (a token, a clock): the same site, a different hash
        token = os.urandom(24).hex()
        return (
            f"<html><head><title>{site.title}</title></head><body><p>Tin mới nhất</p>"
            f"<p>phiên {token}</p><p>{'nội dung ' * 40}</p></body></html>"
        ).encode()
    if site.kind == "large":
        return b""  # streamed by the server
    return (
        f"<html><head><title>{site.title}</title></head><body><h1>{site.title}</h1>"
        f"<p>{site.text or 'Nội dung của trang web. ' * 30}</p></body></html>"
    ).encode()


LARGE_PAGE_BYTES = 5 * 1024 * 1024


class WebServer(LabServer):
    """All sites over http (one port) and https (another), virtual-hosted by Host and SNI."""

    def __init__(self, sites: dict[str, Site], cert_contexts: dict[str, ssl.SSLContext], default_ctx: ssl.SSLContext):
        self.sites = sites
        self.cert_contexts = cert_contexts  # per-name TLS contexts (a bad certificate for one name)
        self.default_ctx = default_ctx
        self.https = LabServer()
        self.http_port = 0
        self.https_port = 0
        self.requests: dict[str, int] = {}  # host -> HTTP requests served (tests: was content asked for?)

    async def start(self) -> None:
        self.http_port = await self._listen(self._serve)

        def pick_cert(sslobj: ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext) -> None:
            if name and name in self.cert_contexts:
                sslobj.context = self.cert_contexts[name]

        self.default_ctx.sni_callback = pick_cert
        self.https_port = await self.https._listen(self._serve, self.default_ctx)

    async def close(self) -> None:
        await super().close()
        await self.https.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await read_request_head(reader)
        host, _path = request_host_and_path(head)
        self.requests[host] = self.requests.get(host, 0) + 1
        site = self.sites.get(host)
        if site is None:
            writer.write(http_response(404, "Not Found", b"<html><title>Not found</title></html>"))
        elif site.kind == "redirect":
            writer.write(http_response(301, "Moved Permanently", b"", {"Location": site.location}))
        elif site.kind == "large":
            head_bytes = (
                "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n"
                f"Content-Length: {LARGE_PAGE_BYTES}\r\nConnection: close\r\n\r\n"
                f"<html><head><title>{site.title}</title></head><body>"
            ).encode()
            writer.write(head_bytes)
            chunk = b"<p>" + b"x" * 8185 + b"</p>"
            sent = len(head_bytes)
            while sent < LARGE_PAGE_BYTES:
                writer.write(chunk)
                sent += len(chunk)
                await writer.drain()  # a client that stops reading ends this with an error
        else:
            writer.write(http_response(200, "OK", site_body(site)))
        await writer.drain()


class FixedPageServer(LabServer):
    """Answers every request with one response: a provider's block page, warning page or redirect."""

    def __init__(self, response: bytes, ssl_ctx: ssl.SSLContext | None = None) -> None:
        self.response = response
        self.ssl_ctx = ssl_ctx

    async def start(self) -> None:
        self.port = await self._listen(self._serve, self.ssl_ctx)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request_head(reader)
        writer.write(self.response)
        await writer.drain()


# --- DNS ---------------------------------------------------------------------------------------------


@dataclass
class DnsPolicy:
    action: str  # answer | nxdomain | refused | servfail | drop
    addresses: tuple[str, ...] = ()


class LabResolver(LabServer):
    """A recursive resolver as seen by a client: the lab zone, plus this resolver's own policies."""

    def __init__(self, zone: Mapping[str, tuple[str, ...]], policies: dict[str, DnsPolicy] | None = None,
                 silent: bool = False) -> None:
        self.zone = zone
        self.policies = policies or {}
        self.silent = silent  # a dead resolver: accepts, never answers
        self.peers: set[str] = set()  # source addresses of UDP queries (tests: was the vantage's address used?)
        self.udp_port = 0
        self._udp: asyncio.DatagramTransport | None = None

    async def start(self) -> None:
        self.port = await self._listen(self._serve_tcp)
        loop = asyncio.get_running_loop()
        resolver = self

        class Udp(asyncio.DatagramProtocol):
            transport: asyncio.DatagramTransport

            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                # a datagram endpoint's transport has sendto, but on 3.11 its class does not inherit
                # DatagramTransport (no isinstance): typeshed's DatagramProtocol types it so
                self.transport = cast(asyncio.DatagramTransport, transport)

            def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:  # IPv4: bound to 127.0.0.1
                resolver.peers.add(addr[0])
                reply = resolver.answer(data)
                if reply is not None:
                    self.transport.sendto(reply, addr)

        transport, _ = await loop.create_datagram_endpoint(Udp, local_addr=(LOOPBACK, 0))
        self._udp = transport
        self.udp_port = transport.get_extra_info("sockname")[1]

    async def close(self) -> None:
        await super().close()
        if self._udp is not None:
            self._udp.close()

    def answer(self, wire: bytes) -> bytes | None:
        if self.silent:
            return None
        try:
            query = dns.message.from_wire(wire)
        except Exception:  # noqa: BLE001 - garbage gets no answer, like a real server
            return None
        if not query.question:
            return None
        q = query.question[0]
        name = q.name.to_text(omit_final_dot=True).lower()
        reply = dns.message.make_response(query)
        reply.flags |= dns.flags.RA
        policy = self.policies.get(name)
        if policy is None:
            if name not in self.zone:
                reply.set_rcode(dns.rcode.NXDOMAIN)
                return reply.to_wire()
            policy = DnsPolicy("answer", self.zone[name])
        if policy.action == "drop":
            return None
        if policy.action in ("nxdomain", "refused", "servfail"):
            reply.set_rcode({"nxdomain": dns.rcode.NXDOMAIN, "refused": dns.rcode.REFUSED,
                             "servfail": dns.rcode.SERVFAIL}[policy.action])
            return reply.to_wire()
        want = 4 if q.rdtype == dns.rdatatype.A else 6 if q.rdtype == dns.rdatatype.AAAA else 0
        addrs = [a for a in policy.addresses if ipaddress.ip_address(a).version == want]
        if addrs:
            rtype = "A" if want == 4 else "AAAA"
            reply.answer.append(dns.rrset.from_text_list(q.name, 300, "IN", rtype, addrs))
        return reply.to_wire()

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            (length,) = struct.unpack("!H", await reader.readexactly(2))
            reply = self.answer(await reader.readexactly(length))
            if reply is not None:
                writer.write(struct.pack("!H", len(reply)) + reply)
                await writer.drain()


# --- a provider's network -----------------------------------------------------------------------------


@dataclass
class MiddleboxPolicy:
    """What the provider's filter does, by destination address, TLS server name, or HTTP Host."""

    tcp: dict[str, str] = field(default_factory=dict)  # ip -> refuse | blackhole
    sni: dict[str, str] = field(default_factory=dict)  # name -> reset | blackhole | intercept
    http: dict[str, str] = field(default_factory=dict)  # host -> reset | a key of `pages`
    pages: dict[str, Endpoint] = field(default_factory=dict)  # page key / "intercept" -> lab server to pipe to


class Middlebox(LabServer):
    """A SOCKS5 server (RFC 1928, no auth, CONNECT only) standing for a provider's network."""

    def __init__(self, routes: dict[Endpoint, Endpoint], policy: MiddleboxPolicy | None = None) -> None:
        self.routes = routes  # (lab address, port) -> (127.0.0.1, real port)
        self.policy = policy or MiddleboxPolicy()
        self.hold_seconds = 30.0  # how long a blackhole keeps a connection silent
        self.hang = False  # the whole vantage stops answering (an `ssh -D` whose link died)

    async def start(self) -> None:
        self.port = await self._listen(self._serve)

    async def kill(self) -> None:
        """The vantage dies as an `ssh -D` client does when killed: every connection through it closes at
        once and its port refuses new ones."""
        if self.server is not None:
            self.server.close()
        for task in list(self.__dict__.get("_connections", ())):
            task.cancel()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        ver, nmethods = await reader.readexactly(2)
        await reader.readexactly(nmethods)
        if ver != 5:
            return
        writer.write(b"\x05\x00")
        _, cmd, _, atyp = await reader.readexactly(4)
        if atyp == 1:
            ip = socket.inet_ntop(socket.AF_INET, await reader.readexactly(4))
        elif atyp == 4:
            ip = socket.inet_ntop(socket.AF_INET6, await reader.readexactly(16))
        else:  # names are never sent by the tool (rdns off); refuse them
            n = (await reader.readexactly(1))[0]
            await reader.readexactly(n + 2)
            writer.write(_socks_reply(8))
            return
        (port,) = struct.unpack("!H", await reader.readexactly(2))
        if self.hang:
            await self._hold(reader)
            return
        if cmd != 1:
            writer.write(_socks_reply(7))
            return
        action = self.policy.tcp.get(ip)
        if action == "blackhole":  # SYNs dropped: like `ssh -D`, the proxy never replies
            await self._hold(reader)
            return
        if action == "refuse":  # RST to the SYN
            writer.write(_socks_reply(5))
            return
        upstream = self.routes.get((ip, port))
        if upstream is None:
            writer.write(_socks_reply(5))  # nothing listens there
            return
        writer.write(_socks_reply(0))
        await writer.drain()
        first = b""
        if port == 443 and self.policy.sni:
            first = await _read_tls_record(reader)
            rule = self.policy.sni.get(server_name_of(first) or "")
            if rule == "reset":
                reset(writer)
                return
            if rule == "blackhole":
                await self._hold(reader)
                return
            if rule == "intercept":
                upstream = self.policy.pages["intercept"]
        elif port == 80 and self.policy.http:
            first = await read_request_head(reader)
            host, _ = request_host_and_path(first)
            rule = self.policy.http.get(host)
            if rule == "reset":
                reset(writer)
                return
            if rule is not None:
                upstream = self.policy.pages[rule]
        await _pipe(reader, writer, upstream, first)

    async def _hold(self, reader: asyncio.StreamReader) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.hold_seconds):
                while await reader.read(4096):
                    pass


def _socks_reply(code: int) -> bytes:
    return bytes([5, code, 0, 1, 0, 0, 0, 0, 0, 0])


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, upstream: Endpoint, first: bytes) -> None:
    assert upstream[0] == LOOPBACK, "the lab never connects off loopback"
    up_reader, up_writer = await asyncio.open_connection(*upstream)
    up_writer.write(first)

    async def copy(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        try:
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                if dst.can_write_eof():
                    dst.write_eof()

    try:
        await asyncio.gather(copy(reader, up_writer), copy(up_reader, writer))
    finally:
        up_writer.close()


async def _read_tls_record(reader: asyncio.StreamReader) -> bytes:
    header = await reader.readexactly(5)
    (length,) = struct.unpack("!H", header[3:5])
    return header + await reader.readexactly(min(length, 16384))


def server_name_of(record: bytes) -> str | None:
    """The SNI of a ClientHello record (RFC 8446 §4.1.2, RFC 6066 §3), or None."""
    try:
        if record[0] != 22:
            return None
        hs = record[5:]
        if hs[0] != 1:
            return None
        pos = 4 + 2 + 32  # handshake header, legacy_version, random
        pos += 1 + hs[pos]  # session id
        pos += 2 + struct.unpack("!H", hs[pos : pos + 2])[0]  # cipher suites
        pos += 1 + hs[pos]  # compression methods
        end = pos + 2 + struct.unpack("!H", hs[pos : pos + 2])[0]
        pos += 2
        while pos + 4 <= end:
            ext_type, ext_len = struct.unpack("!HH", hs[pos : pos + 4])
            pos += 4
            if ext_type == 0:
                name_len = struct.unpack("!H", hs[pos + 3 : pos + 5])[0]
                return hs[pos + 5 : pos + 5 + name_len].decode("ascii").lower()
            pos += ext_len
    except (IndexError, struct.error, UnicodeDecodeError):
        return None
    return None


def make_server_context(configure: Callable[[ssl.SSLContext], None]) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    configure(ctx)
    return ctx
