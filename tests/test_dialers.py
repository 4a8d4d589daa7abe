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

from auditor.lab.servers import Middlebox, MiddleboxPolicy, reset
from probes import base
from probes.base import Dialer, DialError, os_error_failure
from probes.dialers import SOCKS5_REPLIES, SocketDialer, Socks5Dialer, make_dialer
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
    assert err.failure == base.Failure.CONNECTION_REFUSED == "connection_refused"
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
    assert err.failure == base.Failure.NETWORK_UNREACHABLE
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
    assert err.failure == base.Failure.VANTAGE_UNAVAILABLE
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
    if err.failure == base.Failure.VANTAGE_UNAVAILABLE and isinstance(cause, OSError) and cause.errno == errno.EPERM:
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
    assert err.failure == base.Failure.VANTAGE_UNAVAILABLE
    assert err.vantage_fault
    assert "interface nosuchif0" in err.error
    # ENODEV with the privilege; EPERM before the name is even looked up without it
    assert isinstance(err.__cause__, OSError) and err.__cause__.errno in (errno.ENODEV, errno.EPERM)


def test_missing_interface_udp_socket_is_the_vantage_failing() -> None:
    with pytest.raises(DialError) as info:
        make_dialer("interface", "nosuchif0").udp_socket(LOOPBACK)
    assert info.value.failure == base.Failure.VANTAGE_UNAVAILABLE


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
    assert err.failure == base.Failure.NOT_DIALED == "not_dialed"
    assert TEST_NET in err.error
    with pytest.raises(DialError) as info:
        dialer.udp_socket(TEST_NET)
    assert info.value.failure == base.Failure.NOT_DIALED


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
    assert err.failure == base.Failure.NOT_DIALED


# --- SOCKS5 through the lab middlebox ---------------------------------------------------------------


def test_socks5_connects_through_the_middlebox() -> None:
    async def main() -> bytes:
        async with TcpServer(echo_once) as web:
            async with running(Middlebox({(LAB_WEB, 80): (LOOPBACK, web.port)})) as box:
                dialer = make_dialer("proxy", f"socks5://127.0.0.1:{box.port}", loopback_only=True,
                                     simulated=("45.76.0.0/16",))
                assert dialer.udp_socket(LAB_WEB) is None  # no UDP through SOCKS
                sock = await dialer.connect(LAB_WEB, 80, 1.0)
                return await roundtrip(sock)

    assert asyncio.run(main()) == b"echo:ping"


def test_socks5_unknown_destination_is_connection_refused() -> None:
    async def main() -> DialError:
        async with running(Middlebox({})) as box:
            return await dial_error(Socks5Dialer(f"socks5://127.0.0.1:{box.port}"), LAB_WEB, 80)

    err = asyncio.run(main())
    assert err.failure == base.Failure.CONNECTION_REFUSED  # SOCKS reply 5
    assert not err.vantage_fault


def test_socks5_refuse_policy_is_connection_refused() -> None:
    async def main() -> DialError:
        policy = MiddleboxPolicy(tcp={LAB_WEB: "refuse"})
        async with running(Middlebox({(LAB_WEB, 80): (LOOPBACK, closed_port())}, policy)) as box:
            return await dial_error(Socks5Dialer(f"socks5://127.0.0.1:{box.port}"), LAB_WEB, 80)

    assert asyncio.run(main()).failure == base.Failure.CONNECTION_REFUSED


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
    assert err.failure == base.Failure.GENERIC_TIMEOUT == "generic_timeout_error"
    assert timeout * 0.9 <= elapsed < timeout + 1


def test_socks5_proxy_not_listening_is_the_vantage_failing() -> None:
    async def main() -> DialError:
        return await dial_error(Socks5Dialer(f"socks5://127.0.0.1:{closed_port()}"), LAB_WEB, 80)

    err = asyncio.run(main())
    assert err.failure == base.Failure.VANTAGE_UNAVAILABLE
    assert err.vantage_fault is True


async def close_at_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read(3)  # the greeting; then FIN without a reply, as `ssh -D` does for a refused connect


async def close_after_greeting(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readexactly(3)
    writer.write(b"\x05\x00")  # no authentication
    await writer.drain()
    await reader.readexactly(10)  # CONNECT to an IPv4 address; then close without a reply


async def reset_after_request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readexactly(3)
    writer.write(b"\x05\x00")
    await writer.drain()
    await reader.readexactly(10)
    reset(writer)  # a RST instead of a reply


@pytest.mark.parametrize("handler", [close_at_once, close_after_greeting, reset_after_request])
def test_socks5_proxy_closing_without_a_reply_is_eof(handler: Handler) -> None:
    async def main() -> DialError:
        async with TcpServer(handler) as proxy:
            return await dial_error(Socks5Dialer(f"socks5://127.0.0.1:{proxy.port}"), LAB_WEB, 80)

    err = asyncio.run(main())
    assert err.failure == base.Failure.EOF == "eof_error"
    assert not err.vantage_fault


def answering(code: int) -> Handler:
    """A SOCKS5 proxy (RFC 1928, no authentication) that answers every CONNECT with reply `code`."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert await reader.readexactly(3) == b"\x05\x01\x00"  # version 5, one method: no authentication
        writer.write(b"\x05\x00")
        await writer.drain()
        request = await reader.readexactly(10)  # CONNECT (1) to an IPv4 address (1): the address, never a name
        assert request[:4] == b"\x05\x01\x00\x01"
        writer.write(bytes([5, code, 0, 1, 0, 0, 0, 0, 0, 0]))
        await writer.drain()
        await reader.read(1)  # until the client closes

    return handler


@pytest.mark.parametrize(
    "code,failure,vantage_fault",
    [
        (0x01, base.Failure.UNKNOWN, False),  # general SOCKS server failure: nothing we can classify
        (0x02, base.Failure.PROXY_REFUSED, False),  # not allowed by ruleset
        (0x03, base.Failure.NETWORK_UNREACHABLE, False),
        (0x04, base.Failure.HOST_UNREACHABLE, False),
        (0x05, base.Failure.CONNECTION_REFUSED, False),
        (0x06, base.Failure.GENERIC_TIMEOUT, False),  # TTL expired: dante's answer for a connect timeout
        (0x07, base.Failure.VANTAGE_UNAVAILABLE, True),  # command not supported: no CONNECT at all
        (0x08, base.Failure.VANTAGE_UNAVAILABLE, True),  # address type not supported
        (0x09, base.Failure.VANTAGE_UNAVAILABLE, True),  # no such code in RFC 1928: not a SOCKS5 proxy we can use
    ],
)
def test_socks5_reply_code_names_the_failure(code: int, failure: base.Failure, vantage_fault: bool) -> None:
    async def main() -> DialError:
        async with TcpServer(answering(code)) as proxy:
            return await dial_error(Socks5Dialer(f"socks5://127.0.0.1:{proxy.port}"), LAB_WEB, 80)

    err = asyncio.run(main())
    assert err.failure is failure
    assert err.vantage_fault is vantage_fault
    assert err.error.startswith("socks5 127.0.0.1:") and f"→ {LAB_WEB}:80" in err.error


def test_socks5_reply_table_covers_rfc1928_and_says_whose_fault() -> None:
    assert sorted(SOCKS5_REPLIES) == list(range(1, 9))
    for code, reply in SOCKS5_REPLIES.items():
        assert DialError(reply.failure, "").vantage_fault is reply.vantage_fault, code


async def no_acceptable_method(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readexactly(3)
    writer.write(b"\x05\xff")  # none of the offered methods: the proxy wants credentials we do not have
    await writer.drain()
    await reader.read(1)


async def refuse_credentials(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readexactly(4)  # version 5, two methods: none, username/password
    writer.write(b"\x05\x02")
    await writer.drain()
    await reader.read(64)  # RFC 1929 username/password
    writer.write(b"\x01\x01")  # failure
    await writer.drain()
    await reader.read(1)


@pytest.mark.parametrize("handler,url", [(no_acceptable_method, "socks5://127.0.0.1:{port}"),
                                         (refuse_credentials, "socks5://user:wrong@127.0.0.1:{port}")])
def test_socks5_proxy_refusing_us_is_the_vantage_failing(handler: Handler, url: str) -> None:
    async def main() -> DialError:
        async with TcpServer(handler) as proxy:
            return await dial_error(Socks5Dialer(url.format(port=proxy.port)), LAB_WEB, 80)

    err = asyncio.run(main())
    assert err.failure is base.Failure.VANTAGE_UNAVAILABLE
    assert err.vantage_fault
    assert "wrong" not in err.error


def test_socks5_silent_proxy_times_out() -> None:
    async def main() -> tuple[DialError, float]:
        async with TcpServer(read_until_eof) as proxy:
            start = time.monotonic()
            err = await dial_error(Socks5Dialer(f"socks5://127.0.0.1:{proxy.port}"), LAB_WEB, 80, 0.3)
            return err, time.monotonic() - start

    err, elapsed = asyncio.run(main())
    assert err.failure == base.Failure.GENERIC_TIMEOUT
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
    assert err.failure == base.Failure.VANTAGE_UNAVAILABLE
    assert "secret" not in err.error


# --- the errno map ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "exc,failure",
    [
        (ConnectionRefusedError(errno.ECONNREFUSED, "refused"), base.Failure.CONNECTION_REFUSED),
        (ConnectionResetError(errno.ECONNRESET, "reset"), base.Failure.CONNECTION_RESET),
        (ConnectionResetError("Connection lost"), base.Failure.EOF),  # asyncio's FIN during a TLS handshake
        (OSError(errno.EHOSTUNREACH, "no route"), base.Failure.HOST_UNREACHABLE),
        (OSError(errno.ENETUNREACH, "unreachable"), base.Failure.NETWORK_UNREACHABLE),
        (OSError(errno.EADDRNOTAVAIL, "not available"), base.Failure.NETWORK_UNREACHABLE),
        (TimeoutError(), base.Failure.GENERIC_TIMEOUT),
        (BrokenPipeError(errno.EPIPE, "pipe"), base.Failure.EOF),
        (ConnectionAbortedError(errno.ECONNABORTED, "aborted"), base.Failure.EOF),
        (asyncio.IncompleteReadError(b"", 2), base.Failure.EOF),
        # OONI's unknown_failure for the rest; the errno stays in the observation's error text
        (OSError(errno.EACCES, "denied"), base.Failure.UNKNOWN),
        (OSError("no errno"), base.Failure.UNKNOWN),
    ],
)
def test_os_error_failure(exc: BaseException, failure: base.Failure) -> None:
    assert os_error_failure(exc) is failure


def test_loopback_only_refuses_a_public_destination_through_a_loopback_proxy() -> None:
    """A loopback `ssh -D` would connect to whatever it is sent: the interlock refuses the destination
    before the proxy sees it, except in a declared simulated Internet (the lab's middleboxes)."""
    async def go() -> tuple[str, str]:
        reached = 0

        async def count(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            nonlocal reached
            reached += 1
            await read_until_eof(reader, writer)  # never a SOCKS reply

        async with TcpServer(count) as server:
            dialer = Socks5Dialer(f"socks5://{LOOPBACK}:{server.port}", loopback_only=True,
                                  simulated=("45.76.0.0/16",))
            with pytest.raises(DialError) as refused:
                await dialer.connect("8.8.8.8", 443, 0.5)
            assert reached == 0  # refused before the proxy saw it
            with pytest.raises(DialError) as simulated:
                await dialer.connect("45.76.0.1", 443, 0.3)  # allowed: reaches the proxy, which never answers
            return refused.value.failure, simulated.value.failure

    refused, simulated = asyncio.run(go())
    assert refused == base.Failure.NOT_DIALED
    assert simulated == base.Failure.GENERIC_TIMEOUT
