"""One dialer per vantage kind: how a probe's traffic leaves from inside a provider's network.

`await dialer.connect(ip, port, timeout)` returns a connected non-blocking socket or raises `DialError`
carrying the failure name. Everything (DNS over TCP, TLS, HTTP) sits on this one function, so every probe
goes through the vantage. UDP exists only where the vantage has it (not through SOCKS).

Kinds: direct; source address (bind before connect); interface (SO_BINDTODEVICE before bind/connect; an
httpx `socket_options` would be applied after connect, too late); SOCKS5 (`ssh -D`, dante), through
python-socks, with our own deadline around the whole handshake because `ssh -D` may never answer.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import socket
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import unquote, urlsplit

from python_socks import ProxyConnectionError, ProxyError, ProxyTimeoutError, ProxyType
from python_socks.async_.asyncio import Proxy

from probes import base


class DialError(Exception):
    def __init__(self, failure: str, error: str) -> None:
        super().__init__(error)
        self.failure = failure
        self.error = error

    @property
    def vantage_fault(self) -> bool:
        """The vantage itself failed (proxy down, address not local), not the destination."""
        return self.failure == base.VANTAGE_UNAVAILABLE


class Dialer(Protocol):
    kind: str

    def describe(self) -> str: ...

    async def connect(self, ip: str, port: int, timeout: float) -> socket.socket: ...

    def udp_socket(self, ip: str) -> socket.socket | None:
        """A non-blocking UDP socket leaving through the vantage, or None when the vantage has no UDP."""
        ...


def is_loopback(ip: str) -> bool:
    try:
        return ipaddress.ip_address(ip).is_loopback
    except ValueError:
        return False


def family_of(ip: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in ip else socket.AF_INET


def os_error_failure(exc: BaseException) -> str:
    """Map an OSError from connect/read/write to a failure name."""
    code = getattr(exc, "errno", None)
    if isinstance(exc, ConnectionRefusedError) or code == errno.ECONNREFUSED:
        return base.CONNECTION_REFUSED
    if isinstance(exc, ConnectionResetError) or code == errno.ECONNRESET:
        # asyncio reports a FIN during a TLS handshake as ConnectionResetError with errno None
        return base.CONNECTION_RESET if code == errno.ECONNRESET else base.EOF
    if code == errno.EHOSTUNREACH:
        return base.HOST_UNREACHABLE
    if code in (errno.ENETUNREACH, errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT):
        return base.NETWORK_UNREACHABLE
    if isinstance(exc, (TimeoutError, asyncio.TimeoutError)):
        return base.TIMEOUT
    if isinstance(exc, (BrokenPipeError, ConnectionAbortedError)):
        return base.EOF
    return base.HTTP_REQUEST_FAILED if code is None else f"errno_{code}"


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
            raise DialError(base.NOT_DIALED, f"loopback-only: refusing to dial {ip}")

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
                        base.NETWORK_UNREACHABLE,
                        f"source address {self.source_address} cannot reach {ip} (address family)",
                    )
                sock.bind((self.source_address, 0))
        except DialError:
            sock.close()
            raise
        except OSError as exc:
            sock.close()
            raise DialError(base.VANTAGE_UNAVAILABLE, f"{self.describe()}: {exc}") from exc
        return sock

    async def connect(self, ip: str, port: int, timeout: float) -> socket.socket:
        self._guard(ip)
        sock = self._socket(ip, socket.SOCK_STREAM)
        try:
            async with asyncio.timeout(timeout):
                await asyncio.get_running_loop().sock_connect(sock, (ip, port))
        except TimeoutError as exc:
            sock.close()
            raise DialError(base.TIMEOUT, f"connect to {ip}:{port} timed out after {timeout:g}s") from exc
        except OSError as exc:
            sock.close()
            raise DialError(os_error_failure(exc), f"connect to {ip}:{port}: {exc}") from exc
        return sock

    def udp_socket(self, ip: str) -> socket.socket | None:
        self._guard(ip)
        return self._socket(ip, socket.SOCK_DGRAM)


@dataclass
class Socks5Dialer:
    """Through a SOCKS5 proxy (`ssh -D` on a box on the provider's line). Addresses, never names, are sent
    (rdns off): the address under test is what we connect to."""

    url: str
    loopback_only: bool = False
    kind: str = "proxy"

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        self.proxy_host = parts.hostname or ""
        self.proxy_port = parts.port or 1080
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        self._proxy_is_loopback = is_loopback(self.proxy_host)  # once, not per dial

    def describe(self) -> str:
        host = f"[{self.proxy_host}]" if ":" in self.proxy_host else self.proxy_host
        return f"socks5 {host}:{self.proxy_port}"  # never the password

    async def connect(self, ip: str, port: int, timeout: float) -> socket.socket:
        if self.loopback_only and not self._proxy_is_loopback:
            raise DialError(base.NOT_DIALED, f"loopback-only: refusing to use proxy {self.describe()}")
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
            raise DialError(base.VANTAGE_UNAVAILABLE, f"{self.describe()} unreachable: {exc}") from exc
        except (ProxyTimeoutError, TimeoutError) as exc:
            raise DialError(base.TIMEOUT, f"connect to {ip}:{port} via {self.describe()} timed out") from exc
        except ProxyError as exc:
            raise DialError(_socks_reply_failure(exc), f"{self.describe()} → {ip}:{port}: {exc}") from exc
        except OSError as exc:
            # the proxy closed without a reply: `ssh -D` does so for refused and reset connections
            raise DialError(base.EOF, f"{self.describe()} → {ip}:{port}: {exc}") from exc

    def udp_socket(self, ip: str) -> socket.socket | None:
        return None


# RFC 1928 §6 reply codes
_SOCKS_REPLIES = {
    2: base.PROXY_REFUSED,
    3: base.NETWORK_UNREACHABLE,
    4: base.HOST_UNREACHABLE,
    5: base.CONNECTION_REFUSED,
    6: base.TIMEOUT,  # TTL expired
}


def _socks_reply_failure(exc: Exception) -> str:
    code = getattr(exc, "error_code", None)
    if code in _SOCKS_REPLIES:
        return _SOCKS_REPLIES[code]
    text = str(exc).lower()
    # the proxy closed without a (complete) reply, as `ssh -D` does for a refused connect: python-socks 3.x
    # wraps its IncompleteReadError("Connection closed unexpectedly") in a ProxyError with no error_code
    closed = type(exc.__cause__).__name__ == "IncompleteReadError" or "closed unexpectedly" in text
    if closed or "empty" in text or "malformed" in text:
        return base.EOF
    if "auth" in text:
        return base.VANTAGE_UNAVAILABLE
    return base.HTTP_REQUEST_FAILED if code is None else f"socks_reply_{code}"


def make_dialer(kind: str, value: str = "", *, loopback_only: bool = False) -> Dialer:
    if kind == "proxy":
        return Socks5Dialer(value, loopback_only=loopback_only)
    if kind == "source_address":
        return SocketDialer("source_address", source_address=value, loopback_only=loopback_only)
    if kind == "interface":
        return SocketDialer("interface", interface=value, loopback_only=loopback_only)
    return SocketDialer("direct", loopback_only=loopback_only)
