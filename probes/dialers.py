"""The dialers, one per vantage kind: implementations of `probes.base.Dialer`.

`await dialer.connect(ip, port, timeout)` returns a connected non-blocking socket or raises `DialError`
carrying the `Failure`. Everything (DNS over TCP, TLS, HTTP) sits on this one function, so every probe
goes through the vantage. UDP exists only where the vantage has it (not through SOCKS).

Kinds: direct; source address (bind before connect); interface (SO_BINDTODEVICE before bind/connect; an
httpx `socket_options` would be applied after connect, too late); SOCKS5 (`ssh -D`, dante), through
python-socks, with our own deadline around the whole handshake because `ssh -D` may never answer.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from typing import NamedTuple
from urllib.parse import unquote, urlsplit

from python_socks import ProxyConnectionError, ProxyError, ProxyTimeoutError, ProxyType

# python-socks wraps "the proxy closed before its reply was complete" in a ProxyError without a reply code,
# caused by this error of its own (3.x; not exported from the package, so a rename fails here, loudly)
from python_socks._errors import IncompleteReadError as SocksIncompleteRead
from python_socks.async_.asyncio import Proxy

from probes.base import Dialer, DialError, Failure, os_error_failure


def is_loopback(ip: str) -> bool:
    try:
        return ipaddress.ip_address(ip).is_loopback
    except ValueError:
        return False


def family_of(ip: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in ip else socket.AF_INET


@dataclass
class SocketDialer:
    """Direct, bound-source-address or bound-interface dialing."""

    kind: str = "direct"  # direct | source_address | interface
    source_address: str = ""
    interface: str = ""
    loopback_only: bool = False

    def describe(self) -> str:
        if self.kind == "source_address":
            return f"source address {self.source_address}"
        if self.kind == "interface":
            return f"interface {self.interface}"
        return "direct"

    def _guard(self, ip: str) -> None:
        if self.loopback_only and not is_loopback(ip):
            raise DialError(Failure.NOT_DIALED, f"loopback-only: refusing to dial {ip}")

    def _socket(self, ip: str, kind: int) -> socket.socket:
        sock = socket.socket(family_of(ip), kind)
        try:
            sock.setblocking(False)
            if self.kind == "interface":
                # must precede bind/connect; needs CAP_NET_RAW on most kernels
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, self.interface.encode())
            if self.kind == "source_address":
                if family_of(self.source_address) != family_of(ip):
                    raise DialError(
                        Failure.NETWORK_UNREACHABLE,
                        f"source address {self.source_address} cannot reach {ip} (address family)",
                    )
                sock.bind((self.source_address, 0))
        except DialError:
            sock.close()
            raise
        except OSError as exc:
            sock.close()
            raise DialError(Failure.VANTAGE_UNAVAILABLE, f"{self.describe()}: {exc}") from exc
        return sock

    async def connect(self, ip: str, port: int, timeout: float) -> socket.socket:
        self._guard(ip)
        sock = self._socket(ip, socket.SOCK_STREAM)
        try:
            async with asyncio.timeout(timeout):
                await asyncio.get_running_loop().sock_connect(sock, (ip, port))
        except TimeoutError as exc:
            sock.close()
            text = f"connect to {ip}:{port} timed out after {timeout:g}s"
            raise DialError(Failure.GENERIC_TIMEOUT, text) from exc
        except OSError as exc:
            sock.close()
            raise DialError(os_error_failure(exc), f"connect to {ip}:{port}: {exc}") from exc
        return sock

    async def tunnel_problem(self, timeout: float) -> str:
        return ""  # nothing between us and the network to check

    def udp_socket(self, ip: str) -> socket.socket | None:
        self._guard(ip)
        return self._socket(ip, socket.SOCK_DGRAM)


@dataclass
class Socks5Dialer:
    """Through a SOCKS5 proxy (`ssh -D` on a box on the provider's line). Addresses, never names, are sent
    (rdns off): the address under test is what we connect to."""

    url: str
    loopback_only: bool = False
    # with loopback_only: address ranges of a simulated Internet behind this (loopback) proxy, which maps
    # them to loopback listeners (the lab); any other non-loopback destination is refused before the proxy
    # sees it, since a real `ssh -D` would connect to it
    simulated: tuple[str, ...] = ()
    kind: str = "proxy"

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        self.proxy_host = parts.hostname or ""
        self.proxy_port = parts.port or 1080
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        self._proxy_is_loopback = is_loopback(self.proxy_host)  # once, not per dial
        self._simulated = tuple(ipaddress.ip_network(r) for r in self.simulated)

    def _refused(self, ip: str) -> str:
        """Why the loopback-only interlock refuses this dial ("" when it allows it)."""
        if not self._proxy_is_loopback:
            return f"loopback-only: refusing to use proxy {self.describe()}"
        if is_loopback(ip):
            return ""
        address = ipaddress.ip_address(ip)
        if any(address in net for net in self._simulated):
            return ""
        return f"loopback-only: refusing to send {ip} through proxy {self.describe()} (not loopback)"

    def describe(self) -> str:
        host = f"[{self.proxy_host}]" if ":" in self.proxy_host else self.proxy_host
        return f"socks5 {host}:{self.proxy_port}"  # never the password

    async def connect(self, ip: str, port: int, timeout: float) -> socket.socket:
        if self.loopback_only and (refused := self._refused(ip)):
            raise DialError(Failure.NOT_DIALED, refused)
        proxy = Proxy(
            proxy_type=ProxyType.SOCKS5,
            host=self.proxy_host,
            port=self.proxy_port,
            username=self.username,
            password=self.password,
            rdns=False,
        )
        try:
            # our own deadline too: python-socks' timeout does not cover every stall of a dying ssh -D
            async with asyncio.timeout(timeout + 0.5):
                return await proxy.connect(dest_host=ip, dest_port=port, timeout=timeout)
        except ProxyConnectionError as exc:
            raise DialError(Failure.VANTAGE_UNAVAILABLE, f"{self.describe()} unreachable: {exc}") from exc
        except (ProxyTimeoutError, TimeoutError) as exc:
            text = f"connect to {ip}:{port} via {self.describe()} timed out"
            raise DialError(Failure.GENERIC_TIMEOUT, text) from exc
        except ProxyError as exc:
            raise _socks_error(exc, f"{self.describe()} → {ip}:{port}: {exc}") from exc
        except OSError as exc:
            # the proxy reset or closed without a reply: `ssh -D` does so for refused and reset connections
            raise DialError(Failure.EOF, f"{self.describe()} → {ip}:{port}: {exc}") from exc

    def udp_socket(self, ip: str) -> socket.socket | None:
        return None

    async def tunnel_problem(self, timeout: float) -> str:
        """Greet the proxy (RFC 1928 §3) without asking it to connect anywhere: a tunnel whose TCP port is
        open but whose far side is gone (an `ssh -D` whose link froze) accepts, then never answers. A full
        CONNECT cannot tell that from a destination that does not answer."""
        if self.loopback_only and not self._proxy_is_loopback:
            return f"loopback-only: refusing to use proxy {self.describe()}"
        where = self.describe()
        writer: asyncio.StreamWriter | None = None
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_connection(self.proxy_host, self.proxy_port)
                writer.write(b"\x05\x02\x00\x02" if self.username else b"\x05\x01\x00")
                await writer.drain()
                reply = await reader.readexactly(2)
        except TimeoutError:
            if writer is None:
                return f"the tunnel is not answering: {where} does not accept connections within {timeout:g}s"
            return (f"the tunnel is not answering: {where} accepts connections but does not answer the SOCKS "
                    f"greeting within {timeout:g}s (a frozen or dying ssh -D?)")
        except asyncio.IncompleteReadError:
            return f"the tunnel is not answering: {where} closes the connection without answering the SOCKS greeting"
        except OSError as exc:
            return f"the tunnel is down: {where} unreachable ({exc.strerror or exc})"
        finally:
            if writer is not None:
                writer.close()
        if reply[0] != 5 or reply[1] == 0xFF:
            return f"{where} does not speak SOCKS5 as configured (greeting reply {reply.hex()})"
        return ""


class SocksReply(NamedTuple):
    failure: Failure
    vantage_fault: bool  # the proxy's own fault, saying nothing about the destination (verdict: vantage.down)


# RFC 1928 §6: the reply code of a refused CONNECT. What `ssh -D` (OpenSSH) and dante answer differ: ssh -D
# closes without a reply when its connect fails (→ EOF, in `_socks_error`); dante maps the connect errno.
SOCKS5_REPLIES: dict[int, SocksReply] = {
    # 0x01 general SOCKS server failure: dante's answer for a connect errno it has no code for; it names
    # nothing we can classify, and the proxy answered, so it is not proof that the vantage is down
    0x01: SocksReply(Failure.UNKNOWN, False),
    # 0x02 connection not allowed by ruleset: the proxy's own rules (judged `tcp.proxy_refused`, likely)
    0x02: SocksReply(Failure.PROXY_REFUSED, False),
    # 0x03 network unreachable / 0x04 host unreachable: the proxy's connect got ENETUNREACH / EHOSTUNREACH
    0x03: SocksReply(Failure.NETWORK_UNREACHABLE, False),
    0x04: SocksReply(Failure.HOST_UNREACHABLE, False),
    # 0x05 connection refused: the destination (or a box on the way) answered the SYN with a RST
    0x05: SocksReply(Failure.CONNECTION_REFUSED, False),
    # 0x06 TTL expired: dante's answer for a connect that timed out
    0x06: SocksReply(Failure.GENERIC_TIMEOUT, False),
    # 0x07 command not supported: the proxy does not do CONNECT, so no destination can ever be measured
    0x07: SocksReply(Failure.VANTAGE_UNAVAILABLE, True),
    # 0x08 address type not supported: the proxy cannot dial this address family (e.g. no IPv6 there)
    0x08: SocksReply(Failure.VANTAGE_UNAVAILABLE, True),
}


def _socks_error(exc: ProxyError, text: str) -> DialError:
    """A refused SOCKS handshake, by reply code (never by the exception's wording)."""
    code = exc.error_code
    if code is not None:
        reply = SOCKS5_REPLIES.get(code)
        # a code RFC 1928 does not define: the proxy does not speak SOCKS5 as we need it
        return DialError(reply.failure if reply else Failure.VANTAGE_UNAVAILABLE, text)
    if isinstance(exc.__cause__, SocksIncompleteRead):
        # the proxy closed before a complete reply, as `ssh -D` does for a refused or reset connect
        return DialError(Failure.EOF, text)
    # no reply code and not closed: authentication refused, or a reply that is not SOCKS5 (an unknown code,
    # another protocol on the proxy's port): the proxy is unusable, whatever the destination
    return DialError(Failure.VANTAGE_UNAVAILABLE, text)


def make_dialer(
    kind: str, value: str = "", *, loopback_only: bool = False, simulated: tuple[str, ...] = ()
) -> Dialer:
    if kind == "proxy":
        return Socks5Dialer(value, loopback_only=loopback_only, simulated=simulated)
    if kind == "source_address":
        return SocketDialer("source_address", source_address=value, loopback_only=loopback_only)
    if kind == "interface":
        return SocketDialer("interface", interface=value, loopback_only=loopback_only)
    return SocketDialer("direct", loopback_only=loopback_only)
