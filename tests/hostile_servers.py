"""Hostile servers on loopback, and a small province that audits them through the real engine.

`HostileWorld` is a cut-down `auditor.lab.Lab`: one web server (http and https) whose sites each misbehave
in one way, a TLS server that stalls mid-handshake, a control resolver and a provider resolver (the latter
can misbehave per name), and two SOCKS5 middleboxes from the lab (control and provider) that map
public-looking addresses to these loopback listeners. Both vantages see the same hostile Internet, so a
verdict other than `accessible`/`inconclusive` would be the tool blaming the provider for a hostile site.

Every CONNECT either middlebox is asked for is recorded (`world.dialed`): a redirect to a private address
that was "not followed" must also never have been dialed.

Everything listens on 127.0.0.1 only; the world runs in its own thread and loop, like the lab, so the audit
runs in the test's thread (or in a subprocess) exactly as `auditor run` would.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import os
import ssl
import struct
import threading
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, Self
from urllib.parse import parse_qs, urlsplit

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
import trustme
import yaml

from auditor import codec
from auditor.lab.servers import LOOPBACK, Middlebox, read_request_head, request_host_and_path
from tests.loopback_servers import TcpServer, read_tls_record, read_until_eof

SITE_IP = "45.77.0.10"  # every hostile site, http on 80 and https on 443
STALL_IP = "45.77.0.20"  # a TLS server that stalls mid-handshake
CONTROL_RESOLVER = "45.77.53.1"
PROVIDER_RESOLVER = "45.77.53.2"
DOMAIN = "hostile.example"
CANARY = f"http://canary.{DOMAIN}/"
MB = 1024 * 1024

class Writer(Protocol):
    """Where a response is written: the connection's StreamWriter, or HostileWeb's counting stand-in for it."""

    def write(self, data: bytes) -> None: ...

    async def drain(self) -> None: ...


# (writer, path) -> None: writes a whole (hostile) response for a request already read
Response = Callable[[Writer, str], Awaitable[None]]


def name(label: str) -> str:
    return f"{label}.{DOMAIN}"


def head(status: str = "200 OK", headers: dict[str, str] | None = None) -> bytes:
    hdrs = {"Content-Type": "text/html; charset=utf-8", "Connection": "close", **(headers or {})}
    return (f"HTTP/1.1 {status}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs.items()) + "\r\n").encode("latin-1")


def size_of(path: str, default: int) -> int:
    """`?bytes=N` in the request path overrides a site's default size (the memory test scales it)."""
    values = parse_qs(urlsplit(path).query).get("bytes")
    return int(values[0]) if values else default


# --- responses -----------------------------------------------------------------------------------------


def page(body: bytes, content_type: str = "text/html; charset=utf-8", headers: dict[str, str] | None = None) -> Response:
    async def respond(writer: Writer, path: str) -> None:
        writer.write(head(headers={"Content-Type": content_type, "Content-Length": str(len(body)), **(headers or {})}))
        writer.write(body)
        await writer.drain()

    return respond


def gzip_page(body: bytes) -> Response:
    return page(gzip_bytes(body), headers={"Content-Encoding": "gzip"})


def gzip_bytes(data: bytes) -> bytes:
    c = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    return c.compress(data) + c.flush()


async def _stream(writer: Writer, total: int | None, chunk: bytes) -> None:
    """Write `chunk` until `total` bytes (None: forever); a client that goes away ends it with an error."""
    sent = 0
    while total is None or sent < total:
        piece = chunk if total is None else chunk[: total - sent]
        writer.write(piece)
        sent += len(piece)
        await writer.drain()
        await asyncio.sleep(0)  # drain() does not yield while the buffer has room: let the resolvers run


FILLER = b"<p>" + b"x" * 65530 + b"</p>"


def endless(title: str) -> Response:
    """200, no Content-Length, a body that never ends."""

    async def respond(writer: Writer, path: str) -> None:
        writer.write(head() + f"<html><head><title>{title}</title></head><body>".encode())
        await _stream(writer, None, FILLER)

    return respond


def huge(title: str, default: int) -> Response:
    """A Content-Length of `default` bytes (or ?bytes=N), streamed as fast as the client takes it."""

    async def respond(writer: Writer, path: str) -> None:
        total = size_of(path, default)
        start = f"<html><head><title>{title}</title></head><body>".encode()
        writer.write(head(headers={"Content-Length": str(total)}) + start)
        await _stream(writer, total - len(start), FILLER)

    return respond


def chunked_huge(title: str, default: int) -> Response:
    """Chunked, one chunk declared as big as the whole body."""

    async def respond(writer: Writer, path: str) -> None:
        total = size_of(path, default)
        start = f"<html><head><title>{title}</title></head><body>".encode()
        writer.write(head(headers={"Transfer-Encoding": "chunked"}) + f"{total:x}\r\n".encode() + start)
        await _stream(writer, total - len(start), FILLER)

    return respond


def gzip_bomb(title: str, default: int) -> Response:
    """gzip of a title then `default` (or ?bytes=N) zero bytes, about 1000:1. One compressed megabyte of
    zeros is repeated (a full flush resets the compressor, so every megabyte compresses alike): sending a
    400 MB bomb costs the server no CPU."""

    async def respond(writer: Writer, path: str) -> None:
        total = size_of(path, default)
        start = f"<html><head><title>{title}</title></head><body>".encode()
        c = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
        writer.write(head(headers={"Content-Encoding": "gzip"}))
        writer.write(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff" + c.compress(start) + c.flush(zlib.Z_FULL_FLUSH))
        block = c.compress(bytes(MB)) + c.flush(zlib.Z_FULL_FLUSH)
        crc = zlib.crc32(start)
        megabytes = max(1, total // MB)
        for _ in range(megabytes):
            writer.write(block)
            await writer.drain()
            await asyncio.sleep(0)
            crc = zlib.crc32(bytes(MB), crc)
        writer.write(c.flush() + struct.pack("<II", crc, (len(start) + megabytes * MB) & 0xFFFFFFFF))
        await writer.drain()

    return respond


def brotli_labelled(default: int) -> Response:
    """`Content-Encoding: br`, which the probe never advertises. The body is not real brotli (the probe does
    not decode br, so its bytes are opaque either way): `default` bytes of noise, streamed."""

    async def respond(writer: Writer, path: str) -> None:
        total = size_of(path, default)
        writer.write(head(headers={"Content-Encoding": "br", "Content-Length": str(total)}))
        await _stream(writer, total, b"\x1b\xff\xff\x7f" * 16384)

    return respond


def slow_head() -> Response:
    """The status line and headers one byte a second (slowloris, server side)."""

    async def respond(writer: Writer, path: str) -> None:
        for byte in head(headers={"Content-Length": "20"}) + b"<title>slow</title>":
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(1)

    return respond


def slow_body(title: str) -> Response:
    """Headers at once, then a long body one byte a second."""

    async def respond(writer: Writer, path: str) -> None:
        body = f"<html><head><title>{title}</title></head><body>".encode() + b"." * 10000
        writer.write(head(headers={"Content-Length": str(len(body))}))
        for byte in body:
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(1)

    return respond


def redirect(location: str, status: str = "302 Found") -> Response:
    async def respond(writer: Writer, path: str) -> None:
        writer.write(head(status, {"Location": location, "Content-Length": "0"}))
        await writer.drain()

    return respond


def chain(prefix: str, hops: int) -> Response:
    """/N redirects to /N+1 on the same site, `hops` times; then a page."""

    async def respond(writer: Writer, path: str) -> None:
        n = int(path.strip("/") or 0)
        if n < hops:
            await redirect(f"{prefix}/{n + 1}")(writer, path)
        else:
            await page(b"<title>end of the chain</title>")(writer, path)

    return respond


def header_flood(total: int) -> Response:
    """About `total` bytes of response headers (many 1000-byte headers), then a small page."""

    async def respond(writer: Writer, path: str) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n")
        line = b"X-Pad: " + b"p" * 991 + b"\r\n"
        for _ in range(total // len(line)):
            writer.write(line)
            await writer.drain()
            await asyncio.sleep(0)
        writer.write(b"Content-Length: 20\r\nConnection: close\r\n\r\n<title>flood</title>")
        await writer.drain()

    return respond


# --- the web server ----------------------------------------------------------------------------------


class HostileWeb:
    """Sites by Host header, over http and https (one certificate for every name)."""

    def __init__(self, sites: dict[str, Response], ssl_ctx: ssl.SSLContext) -> None:
        self.sites = sites
        self.http = TcpServer(self._serve)
        self.https = TcpServer(self._serve, ssl_ctx)
        self.requests: list[tuple[str, str]] = []  # (host, path) in arrival order
        self.sent: dict[str, int] = {}  # host -> bytes written to the transport (what the client could take)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        host, path = request_host_and_path(await read_request_head(reader))
        self.requests.append((host, path))
        respond = self.sites.get(host)
        if respond is None:
            respond = page(b"<title>Not found</title>")
        await respond(_Counting(writer, self.sent, host), path)


class _Counting:
    """A StreamWriter stand-in that counts what a response writes."""

    def __init__(self, writer: asyncio.StreamWriter, sent: dict[str, int], key: str) -> None:
        self._writer, self._sent, self._key = writer, sent, key

    def write(self, data: bytes) -> None:
        self._sent[self._key] = self._sent.get(self._key, 0) + len(data)
        self._writer.write(data)

    async def drain(self) -> None:
        await self._writer.drain()


async def stall_mid_handshake(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Read the ClientHello, send the first bytes of a ServerHello (its record claims 122 bytes), then say
    nothing more until the client leaves."""
    await read_tls_record(reader)
    writer.write(b"\x16\x03\x03\x00\x7a" + b"\x02\x00\x00\x76\x03\x03" + os.urandom(8))
    await writer.drain()
    await read_until_eof(reader, writer)


# --- DNS -----------------------------------------------------------------------------------------------


class HostileResolver:
    """A resolver for `zone` whose answers for some names misbehave (`behaviour[name]`):

    - "garbage": bytes that are no DNS message;
    - "wrong_id": a reply whose ID does not match, and nothing else;
    - "wrong_id_then_answer": a mismatched reply first, then the right one;
    - "tc_empty": the TC bit set and no answer (over TCP as well, where TC has no business);
    - "cut": the TC bit set and the message cut in the middle of a record (over TCP as well);
    - "tc_udp", "cut_udp": the same over UDP only, and the whole answer over TCP (a big answer done right);
    - "many": hundreds of A records, the zone's own address first.

    It serves UDP (`udp(data, addr)`, for `tests.loopback_servers.UdpServer`) and TCP (`tcp`, a handler).
    """

    MANY = 300

    def __init__(self, zone: dict[str, tuple[str, ...]], behaviour: dict[str, str] | None = None) -> None:
        self.zone = zone
        self.behaviour = behaviour or {}

    def replies(self, wire: bytes, transport: str = "udp") -> list[bytes]:
        try:
            query = dns.message.from_wire(wire)
        except Exception:  # noqa: BLE001 - garbage gets no answer
            return []
        if not query.question:
            return []
        q = query.question[0]
        qname = q.name.to_text(omit_final_dot=True).lower()
        reply = dns.message.make_response(query)
        reply.flags |= dns.flags.RA
        addresses = self.zone.get(qname)
        if addresses is None:
            reply.set_rcode(dns.rcode.NXDOMAIN)
            return [reply.to_wire()]
        v4 = [a for a in addresses if ":" not in a] if q.rdtype == dns.rdatatype.A else []
        how = self.behaviour.get(qname, "")
        if how.endswith("_udp"):
            how = {"tc_udp": "tc_empty", "cut_udp": "cut"}[how] if transport == "udp" else ""
        if how == "many" and v4:
            v4 = v4 + [f"45.78.{i // 250}.{i % 250 + 1}" for i in range(self.MANY)]
        if v4:
            reply.answer.append(dns.rrset.from_text_list(q.name, 300, "IN", "A", v4))
        good = reply.to_wire(want_shuffle=False)  # in the order given: the zone's address first
        if how == "garbage":
            return [b"\x00\x01garbage, not a DNS message" * 3]
        if how in ("wrong_id", "wrong_id_then_answer"):
            wrong = struct.pack("!H", query.id ^ 0x5A5A) + good[2:]
            return [wrong] if how == "wrong_id" else [wrong, good]
        if how == "tc_empty":
            empty = dns.message.make_response(query)
            empty.flags |= dns.flags.TC | dns.flags.RA
            return [empty.to_wire()]
        if how == "cut":
            flags = struct.unpack("!H", good[2:4])[0] | dns.flags.TC
            return [good[:2] + struct.pack("!H", flags) + good[4 : len(good) - 3]]
        return [good]

    def udp(self, data: bytes, addr: tuple[str, int]) -> list[bytes]:
        return self.replies(data, "udp")

    async def tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            (length,) = struct.unpack("!H", await reader.readexactly(2))
            for reply in self.replies(await reader.readexactly(length), "tcp"):
                writer.write(struct.pack("!H", len(reply)) + reply)
            await writer.drain()


# --- the world ----------------------------------------------------------------------------------------


class RecordingRoutes(dict[tuple[str, int], tuple[str, int]]):
    """The middleboxes' route table, noting every destination they are asked to connect to."""

    def __init__(self, routes: dict[tuple[str, int], tuple[str, int]], dialed: list[tuple[str, int]]) -> None:
        super().__init__(routes)
        self.dialed = dialed

    def get(self, key: Any, default: Any = None) -> Any:
        self.dialed.append(key)
        return super().get(key, default)


@dataclass
class HostileRun:
    result: Any  # auditor.engine.AuditResult
    records: dict[str, Any]  # url -> MeasurementRecord (the one provider)
    # url -> the control's observation as the store keeps it (JSON: dicts and lists, auditor.codec.to_builtins)
    controls: dict[str, dict[str, Any]] = field(default_factory=dict)
    out_dir: Path | None = None

    def provider(self, url: str) -> dict[str, Any]:
        """The provider's observation of `url` as the store keeps it (JSON), {} when none."""
        obs = self.records[url].observation
        return {} if obs is None else codec.to_builtins(obs)


class HostileWorld:
    """Start with `with HostileWorld(workdir, sites) as world:`; `world.audit(urls)` runs the real engine."""

    def __init__(
        self,
        workdir: Path,
        sites: dict[str, Response],
        *,
        zone: dict[str, tuple[str, ...]] | None = None,
        provider_dns: dict[str, str] | None = None,
        control_dns: dict[str, str] | None = None,
        timeouts: dict[str, float] | None = None,
    ) -> None:
        self.workdir = Path(workdir)
        self.sites = {name("canary"): page(b"<html><head><title>Canary</title></head><body>ok</body></html>"),
                      **sites}
        self.zone = {n: (SITE_IP,) for n in self.sites} | {name("stall"): (STALL_IP,)} | (zone or {})
        self.provider_dns = provider_dns or {}
        self.control_dns = control_dns or {}
        self.timeouts = timeouts or {"dns": 1.5, "connect": 2.0, "tls": 2.0, "http": 2.0}
        self.config_path = self.workdir / "hostile-config.yaml"
        self.list_path = self.workdir / "hostile-list.csv"
        self.ca_path = self.workdir / "hostile-ca.pem"
        self.store_path = self.workdir / "store" / "hostile.db"
        self.dialed: list[tuple[str, int]] = []
        self.web: HostileWeb | None = None
        self._ports: dict[str, int] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stack: contextlib.AsyncExitStack | None = None

    def __enter__(self) -> Self:
        self.workdir.mkdir(parents=True, exist_ok=True)
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name="hostile-world", daemon=True)
        self._thread.start()
        try:
            asyncio.run_coroutine_threadsafe(self._start(), loop).result(timeout=30)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        loop = self._loop
        if loop is None:
            return
        if self._stack is not None:
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(self._stack.aclose(), loop).result(timeout=15)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=10)
        loop.close()
        self._loop = None

    async def _start(self) -> None:
        stack = contextlib.AsyncExitStack()
        self._stack = stack
        ca = trustme.CA(organization_name="Hostile Lab CA")
        ca.cert_pem.write_to_path(str(self.ca_path))
        server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ca.issue_cert(*sorted(self.sites)).configure_cert(server_ctx)
        # the middleboxes start first so that they close last: by then every server has closed its side and
        # the pipes through them have ended (the lab's middlebox tasks are not meant to be cancelled)
        routes = RecordingRoutes({}, self.dialed)
        for role in ("control", "provider"):
            box = Middlebox(routes)
            await box.start()
            stack.push_async_callback(self._close_box, box)
            self._ports[role] = box.port
        self.web = HostileWeb(self.sites, server_ctx)
        http = await stack.enter_async_context(self.web.http)
        https = await stack.enter_async_context(self.web.https)
        stall = await stack.enter_async_context(TcpServer(stall_mid_handshake))
        control_dns = await stack.enter_async_context(TcpServer(HostileResolver(self.zone, self.control_dns).tcp))
        provider_dns = await stack.enter_async_context(TcpServer(HostileResolver(self.zone, self.provider_dns).tcp))
        routes.update(
            {
                (SITE_IP, 80): (LOOPBACK, http.port),
                (SITE_IP, 443): (LOOPBACK, https.port),
                (STALL_IP, 443): (LOOPBACK, stall.port),
                (CONTROL_RESOLVER, 53): (LOOPBACK, control_dns.port),
                (PROVIDER_RESOLVER, 53): (LOOPBACK, provider_dns.port),
            }
        )

    @staticmethod
    async def _close_box(box: Middlebox) -> None:
        connections = box.__dict__.get("_connections", set())
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(3):
                while connections:
                    await asyncio.sleep(0.01)
        await box.close()

    # --- config and runs ---

    def write_config(self, urls: list[str], *, into: Path | None = None) -> Path:
        """The world's config and list file for `urls`; with `into`, a config, list and store of their own
        there (a run that must not write into the store the world's own run is read from)."""
        list_path, config_path, store_path = self.list_path, self.config_path, self.store_path
        if into is not None:
            list_path, config_path, store_path = into / "list.csv", into / "config.yaml", into / "store.db"
        with list_path.open("w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(["url", "category_code", "category_description", "date_added", "source", "notes"])
            for url in urls:
                w.writerow([url, "XED", "hostile test", "2026-01-15", "tests", ""])
        config = {
            "province": "Hostile servers (tests)",
            "store": f"sqlite:///{store_path}",
            "output_dir": str(self.workdir / "out"),
            "lists": [str(list_path)],
            "canaries": [CANARY],
            "control": {
                "resolvers": [CONTROL_RESOLVER],
                "vantage": {"proxy": f"socks5://{LOOPBACK}:{self._ports['control']}"},
            },
            "providers": [
                {
                    "id": "isp",
                    "name": "Hostile test ISP",
                    "resolvers": [PROVIDER_RESOLVER],
                    "vantage": {"proxy": f"socks5://{LOOPBACK}:{self._ports['provider']}"},
                }
            ],
            "timeouts": self.timeouts,
            "concurrency": 40,
            "tls": {"extra_ca_file": str(self.ca_path)},
            "grace_hours": 0,
            "network": {"loopback_only": True, "simulated_internet": ["45.77.0.0/16"]},
        }
        config_path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        return config_path

    def audit(self, urls: list[str], out_dir: Path | None = None, *, keep_store_open: Callable[[Any], None] | None = None
              ) -> HostileRun:
        """One real `run_audit` over `urls` (config file, list file, SQLite store, CSVs when `out_dir`).
        `keep_store_open(store)` is called after the run, before the store is closed."""
        from auditor.config import load_config
        from auditor.engine import run_audit
        from auditor.store import open_store

        config = load_config(self.write_config(urls))
        store = open_store(config.store)
        try:
            result = asyncio.run(run_audit(config, store, out_dir=out_dir))
            records = {r.entry.url: r for r in store.iter_measurements(result.run.run_id)}
            controls = {u: codec.to_builtins(store.control_observation(result.run.run_id, u)) or {} for u in records}
            if keep_store_open is not None:
                keep_store_open(store)
        finally:
            store.close()
        return HostileRun(result, records, controls, out_dir)
