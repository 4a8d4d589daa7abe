"""Dialers: one per vantage kind, each failure named as the measurement needs it.

Every destination is on loopback; the one non-loopback address (TEST-NET 192.0.2.1) only checks that the
loopback-only interlock refuses it, and the socket factories are patched to fail loudly so a broken guard
could never put a packet on the wire.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import time

import pytest

from auditor.lab.servers import Middlebox, MiddleboxPolicy
from probes import base
from probes.dialers import Dialer, DialError, SocketDialer, Socks5Dialer, make_dialer, os_error_failure
from tests.loopback_servers import LOOPBACK, Handler, TcpServer, closed_port, read_until_eof, running

LAB_WEB = "45.76.0.2"  # looks public; the middlebox maps it to a loopback listener
TEST_NET = "192.0.2.1"  # RFC 5737: must never be dialed


async def echo_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    data = await reader.read(100)
    writer.write(b"echo:" + data)
    await writer.drain()


async def roundtrip(sock: socket.socket, payload: bytes = b"ping") -> bytes:
    loop = asyncio.get_running_loop()
    try:
        await loop.sock_sendall(sock, payload)
        async with asyncio.timeout(2):
            return await loop.sock_recv(sock, 100)
    finally:
        sock.close()


async def dial_error(dialer: Dialer, ip: str, port: int, timeout: float = 1.0) -> DialError:
    with pytest.raises(DialError) as info:
        sock = await dialer.connect(ip, port, timeout)
        sock.close()
    return info.value


# --- direct and source address ----------------------------------------------------------------------


def test_direct_connect_reaches_the_server() -> None:
    async def main() -> bytes:
        async with TcpServer(echo_once) as server:
            sock = await SocketDialer().connect(LOOPBACK, server.port, 1.0)
            assert sock.getblocking() is False
            return await roundtrip(sock)

    assert asyncio.run(main()) == b"echo:ping"


def test_closed_port_is_connection_refused() -> None:
    async def main() -> DialError:
        return await dial_error(SocketDialer(), LOOPBACK, closed_port())

    err = asyncio.run(main())
    assert err.failure == base.CONNECTION_REFUSED == "connection_refused"
    assert not err.vantage_fault
    assert isinstance(err.__cause__, ConnectionRefusedError)


def test_source_address_is_the_peer_the_server_sees() -> None:
    async def main() -> tuple[bytes, list[tuple[str, int]]]:
        async with TcpServer(echo_once) as server:
            dialer = make_dialer("source_address", "127.0.0.2")
            assert dialer.describe() == "source address 127.0.0.2"
            sock = await dialer.connect(LOOPBACK, server.port, 1.0)
            assert sock.getsockname()[0] == "127.0.0.2"
            return await roundtrip(sock), server.peers

    reply, peers = asyncio.run(main())
    assert reply == b"echo:ping"
    assert [p[0] for p in peers] == ["127.0.0.2"]


def test_source_address_of_another_family_is_network_unreachable() -> None:
    async def main() -> DialError:
        return await dial_error(SocketDialer("source_address", source_address="::1"), LOOPBACK, closed_port())

    err = asyncio.run(main())
    assert err.failure == base.NETWORK_UNREACHABLE
    assert "address family" in err.error


def test_source_address_that_is_not_local_is_the_vantage_failing() -> None:
    # 203.0.113.7 (TEST-NET-3) is on no interface: bind fails before any connect; the destination is loopback
    try:
        with open("/proc/sys/net/ipv4/ip_nonlocal_bind") as f:
            if f.read().strip() == "1":
                pytest.skip("net.ipv4.ip_nonlocal_bind=1: any source address binds here")
    except OSError:
        pass
    async def main() -> DialError:
        dialer = SocketDialer("source_address", source_address="203.0.113.7")
        return await dial_error(dialer, LOOPBACK, closed_port())

    err = asyncio.run(main())
    assert err.failure == base.VANTAGE_UNAVAILABLE
    assert err.vantage_fault
    assert isinstance(err.__cause__, OSError) and err.__cause__.errno == errno.EADDRNOTAVAIL


def test_source_address_udp_socket_is_bound() -> None:
    sock = SocketDialer("source_address", source_address="127.0.0.3").udp_socket(LOOPBACK)
    assert sock is not None
    try:
        assert sock.type == socket.SOCK_DGRAM
        assert sock.getsockname()[0] == "127.0.0.3"
    finally:
        sock.close()


# --- interface --------------------------------------------------------------------------------------


def _skip_if_not_permitted(err: DialError) -> None:
    cause = err.__cause__
    if err.failure == base.VANTAGE_UNAVAILABLE and isinstance(cause, OSError) and cause.errno == errno.EPERM:
        pytest.skip("SO_BINDTODEVICE needs CAP_NET_RAW here")


def test_interface_lo_connects() -> None:
    async def main() -> tuple[bytes, list[tuple[str, int]]]:
        async with TcpServer(echo_once) as server:
            dialer = make_dialer("interface", "lo")
            assert dialer.describe() == "interface lo"
            try:
                sock = await dialer.connect(LOOPBACK, server.port, 1.0)
            except DialError as err:
                _skip_if_not_permitted(err)
                raise
            bound = sock.getsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, 16).rstrip(b"\0")
            assert bound == b"lo"
            return await roundtrip(sock), server.peers

    reply, peers = asyncio.run(main())
    assert reply == b"echo:ping"
    assert len(peers) == 1


def test_missing_interface_is_the_vantage_failing() -> None:
    async def main() -> DialError:
        return await dial_error(make_dialer("interface", "nosuchif0"), LOOPBACK, closed_port())

    err = asyncio.run(main())
    assert err.failure == base.VANTAGE_UNAVAILABLE
    assert err.vantage_fault
    assert "interface nosuchif0" in err.error
    # ENODEV with the privilege; EPERM before the name is even looked up without it
    assert isinstance(err.__cause__, OSError) and err.__cause__.errno in (errno.ENODEV, errno.EPERM)


def test_missing_interface_udp_socket_is_the_vantage_failing() -> None:
    with pytest.raises(DialError) as info:
        make_dialer("interface", "nosuchif0").udp_socket(LOOPBACK)
    assert info.value.failure == base.VANTAGE_UNAVAILABLE


# --- loopback-only interlock ------------------------------------------------------------------------


def _no_socket(*args: object, **kwargs: object) -> None:
    raise AssertionError("a socket was created for a destination the guard must refuse")


@pytest.mark.parametrize("kind,value", [("direct", ""), ("source_address", "127.0.0.2"), ("interface", "lo")])
def test_loopback_only_refuses_before_any_socket(
    monkeypatch: pytest.MonkeyPatch, kind: str, value: str
) -> None:
    monkeypatch.setattr(SocketDialer, "_socket", _no_socket)
    dialer = make_dialer(kind, value, loopback_only=True)

    async def main() -> DialError:
        return await dial_error(dialer, TEST_NET, 80)

    err = asyncio.run(main())
    assert err.failure == base.NOT_DIALED == "not_dialed"
    assert TEST_NET in err.error
    with pytest.raises(DialError) as info:
        dialer.udp_socket(TEST_NET)
    assert info.value.failure == base.NOT_DIALED


def test_loopback_only_still_dials_loopback() -> None:
    async def main() -> bytes:
        async with TcpServer(echo_once) as server:
            sock = await SocketDialer(loopback_only=True).connect(LOOPBACK, server.port, 1.0)
            return await roundtrip(sock)

    assert asyncio.run(main()) == b"echo:ping"


def test_loopback_only_refuses_a_non_loopback_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    import python_socks.async_.asyncio as socks_asyncio

    monkeypatch.setattr(socks_asyncio, "Proxy", _no_socket)
    dialer = Socks5Dialer(f"socks5://{TEST_NET}:1080", loopback_only=True)

    async def main() -> DialError:
        return await dial_error(dialer, LAB_WEB, 80)

    err = asyncio.run(main())
    assert err.failure == base.NOT_DIALED


# --- SOCKS5 through the lab middlebox ---------------------------------------------------------------


def test_socks5_connects_through_the_middlebox() -> None:
    async def main() -> bytes:
        async with TcpServer(echo_once) as web:
            async with running(Middlebox({(LAB_WEB, 80): (LOOPBACK, web.port)})) as box:
                dialer = make_dialer("proxy", f"socks5://127.0.0.1:{box.port}", loopback_only=True)
                assert dialer.udp_socket(LAB_WEB) is None  # no UDP through SOCKS
                sock = await dialer.connect(LAB_WEB, 80, 1.0)
                return await roundtrip(sock)

    assert asyncio.run(main()) == b"echo:ping"


def test_socks5_unknown_destination_is_connection_refused() -> None:
    async def main() -> DialError:
        async with running(Middlebox({})) as box:
            return await dial_error(Socks5Dialer(f"socks5://127.0.0.1:{box.port}"), LAB_WEB, 80)

    err = asyncio.run(main())
    assert err.failure == base.CONNECTION_REFUSED  # SOCKS reply 5
    assert not err.vantage_fault


def test_socks5_refuse_policy_is_connection_refused() -> None:
    async def main() -> DialError:
        policy = MiddleboxPolicy(tcp={LAB_WEB: "refuse"})
        async with running(Middlebox({(LAB_WEB, 80): (LOOPBACK, closed_port())}, policy)) as box:
            return await dial_error(Socks5Dialer(f"socks5://127.0.0.1:{box.port}"), LAB_WEB, 80)

    assert asyncio.run(main()).failure == base.CONNECTION_REFUSED


def test_socks5_blackhole_times_out_within_the_deadline() -> None:
    timeout = 0.4

    async def main() -> tuple[DialError, float]:
        policy = MiddleboxPolicy(tcp={LAB_WEB: "blackhole"})
        async with running(Middlebox({}, policy)) as box:
            box.hold_seconds = 5
            start = time.monotonic()
            err = await dial_error(Socks5Dialer(f"socks5://127.0.0.1:{box.port}"), LAB_WEB, 80, timeout)
            return err, time.monotonic() - start

    err, elapsed = asyncio.run(main())
    assert err.failure == base.TIMEOUT == "generic_timeout_error"
    assert timeout * 0.9 <= elapsed < timeout + 1


def test_socks5_proxy_not_listening_is_the_vantage_failing() -> None:
    async def main() -> DialError:
        return await dial_error(Socks5Dialer(f"socks5://127.0.0.1:{closed_port()}"), LAB_WEB, 80)

    err = asyncio.run(main())
    assert err.failure == base.VANTAGE_UNAVAILABLE
    assert err.vantage_fault is True


async def close_at_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read(3)  # the greeting; then FIN without a reply, as `ssh -D` does for a refused connect


async def close_after_greeting(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readexactly(3)
    writer.write(b"\x05\x00")  # no authentication
    await writer.drain()
    await reader.readexactly(10)  # CONNECT to an IPv4 address; then close without a reply


@pytest.mark.parametrize("handler", [close_at_once, close_after_greeting])
def test_socks5_proxy_closing_without_a_reply_is_eof(handler: Handler) -> None:
    async def main() -> DialError:
        async with TcpServer(handler) as proxy:
            return await dial_error(Socks5Dialer(f"socks5://127.0.0.1:{proxy.port}"), LAB_WEB, 80)

    err = asyncio.run(main())
    assert err.failure == base.EOF == "eof_error"
    assert not err.vantage_fault


def test_socks5_silent_proxy_times_out() -> None:
    async def main() -> tuple[DialError, float]:
        async with TcpServer(read_until_eof) as proxy:
            start = time.monotonic()
            err = await dial_error(Socks5Dialer(f"socks5://127.0.0.1:{proxy.port}"), LAB_WEB, 80, 0.3)
            return err, time.monotonic() - start

    err, elapsed = asyncio.run(main())
    assert err.failure == base.TIMEOUT
    assert elapsed < 1.3


def test_socks5_describe_never_shows_the_password() -> None:
    dialer = Socks5Dialer("socks5://user:secret@127.0.0.1:1080")
    assert dialer.username == "user" and dialer.password == "secret"
    assert dialer.describe() == "socks5 127.0.0.1:1080"
    assert "secret" not in dialer.describe()
    assert "secret" not in Socks5Dialer("socks5://user:s%65cret@[::1]:1081").describe()
    assert Socks5Dialer("socks5://[::1]").describe() == "socks5 [::1]:1080"


def test_socks5_error_text_never_shows_the_password() -> None:
    async def main() -> DialError:
        return await dial_error(Socks5Dialer(f"socks5://user:secret@127.0.0.1:{closed_port()}"), LAB_WEB, 80)

    err = asyncio.run(main())
    assert err.failure == base.VANTAGE_UNAVAILABLE
    assert "secret" not in err.error


# --- the errno map ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "exc,failure",
    [
        (ConnectionRefusedError(errno.ECONNREFUSED, "refused"), base.CONNECTION_REFUSED),
        (ConnectionResetError(errno.ECONNRESET, "reset"), base.CONNECTION_RESET),
        (ConnectionResetError("Connection lost"), base.EOF),  # asyncio's FIN during a TLS handshake
        (OSError(errno.EHOSTUNREACH, "no route"), base.HOST_UNREACHABLE),
        (OSError(errno.ENETUNREACH, "unreachable"), base.NETWORK_UNREACHABLE),
        (OSError(errno.EADDRNOTAVAIL, "not available"), base.NETWORK_UNREACHABLE),
        (TimeoutError(), base.TIMEOUT),
        (BrokenPipeError(errno.EPIPE, "pipe"), base.EOF),
        (OSError(errno.EACCES, "denied"), f"errno_{errno.EACCES}"),
    ],
)
def test_os_error_failure(exc: BaseException, failure: str) -> None:
    assert os_error_failure(exc) == failure
