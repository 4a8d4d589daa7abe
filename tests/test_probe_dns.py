"""DNS probe: every rcode and every way a resolver can fail, over UDP and over TCP through a SOCKS vantage."""

from __future__ import annotations

import asyncio
import socket
import time

import dns.flags
import dns.message
import dns.rcode
import dns.rrset
import pytest

from auditor.lab.servers import DnsPolicy, LabResolver, Middlebox
from probes import base
from probes import dns as dns_probe
from probes.dialers import SocketDialer, Socks5Dialer
from tests.loopback_servers import (
    LOOPBACK,
    TcpServer,
    UdpServer,
    closed_port,
    dns_on_one_port,
    dns_tcp_frame,
    read_dns_tcp,
    running,
)

FAST = base.Timeouts(dns=1.0, connect=1.0, tls=1.0, http=1.0)
SHORT = base.Timeouts(dns=0.3, connect=0.3, tls=0.3, http=0.3)
LAB_DNS = "45.76.0.53"  # the resolver's address as the vantage's network knows it (SOCKS middlebox route)

ZONE = {
    "tintuc.vn": ("45.76.0.2",),
    "v6only.vn": ("2001:db8::2",),
    "dual.vn": ("45.76.0.3", "2001:db8::3"),
}
POLICIES = {
    "blocked.vn": DnsPolicy("nxdomain"),
    "refused.vn": DnsPolicy("refused"),
    "broken.vn": DnsPolicy("servfail"),
    "dropped.vn": DnsPolicy("drop"),
    "empty.vn": DnsPolicy("answer", ()),
}


def direct(timeouts: base.Timeouts = FAST) -> base.ProbeContext:
    return base.ProbeContext(dialer=SocketDialer(loopback_only=True), timeouts=timeouts)


def answer(
    wire: bytes, *addresses: str, rcode: dns.rcode.Rcode = dns.rcode.NOERROR, flags: int = 0
) -> dns.message.Message:
    q = dns.message.from_wire(wire)
    r = dns.message.make_response(q)
    r.set_rcode(rcode)
    r.flags |= flags
    if addresses:
        r.answer.append(dns.rrset.from_text_list(q.question[0].name, 300, "IN", "A", list(addresses)))
    return r


def query_udp(
    name: str, qtype: str = "A", timeouts: base.Timeouts = FAST, **resolver_kw: bool
) -> base.DnsObservation:
    async def main() -> base.DnsObservation:
        async with running(LabResolver(ZONE, POLICIES, **resolver_kw)) as resolver:
            return await dns_probe.query(direct(timeouts), LOOPBACK, resolver.udp_port, name, qtype)

    return asyncio.run(main())


def query_socks(
    name: str, qtype: str = "A", timeouts: base.Timeouts = FAST, **resolver_kw: bool
) -> base.DnsObservation:
    async def main() -> base.DnsObservation:
        async with running(LabResolver(ZONE, POLICIES, **resolver_kw)) as resolver:
            async with running(Middlebox({(LAB_DNS, 53): (LOOPBACK, resolver.port)})) as box:
                dialer = Socks5Dialer(f"socks5://127.0.0.1:{box.port}")
                ctx = base.ProbeContext(dialer=dialer, timeouts=timeouts)
                return await dns_probe.query(ctx, LAB_DNS, 53, name, qtype)

    return asyncio.run(main())


QUERY = {"udp": query_udp, "tcp": query_socks}
TRANSPORTS = pytest.mark.parametrize("transport", ["udp", "tcp"])


# --- rcodes and answers, over UDP and over TCP through SOCKS -----------------------------------------


@TRANSPORTS
def test_a_answer(transport: str) -> None:
    obs = QUERY[transport]("tintuc.vn")
    assert obs.failure is None
    assert obs.rcode == "NOERROR"
    assert obs.addresses == ("45.76.0.2",)
    assert obs.transport == transport
    assert obs.qtype == "A"
    assert obs.elapsed_ms > 0


def test_aaaa_answer_and_resolver_label() -> None:
    obs = query_udp("dual.vn", "AAAA")
    assert obs.failure is None
    assert obs.addresses == ("2001:db8::3",)
    assert obs.resolver.startswith("127.0.0.1:")
    tcp = query_socks("dual.vn", "AAAA")
    assert tcp.resolver == f"{LAB_DNS}:53"
    assert tcp.addresses == ("2001:db8::3",)


@TRANSPORTS
@pytest.mark.parametrize(
    "name,failure,rcode",
    [
        ("blocked.vn", base.Failure.DNS_NXDOMAIN, "NXDOMAIN"),
        ("not-in-zone.vn", base.Failure.DNS_NXDOMAIN, "NXDOMAIN"),
        ("refused.vn", base.Failure.DNS_REFUSED, "REFUSED"),
        ("broken.vn", base.Failure.DNS_SERVFAIL, "SERVFAIL"),
        ("empty.vn", base.Failure.DNS_NO_ANSWER, "NOERROR"),
        ("v6only.vn", base.Failure.DNS_NO_ANSWER, "NOERROR"),  # an A query for a name with only AAAA
    ],
)
def test_rcodes(transport: str, name: str, failure: str, rcode: str) -> None:
    obs = QUERY[transport](name)
    assert obs.failure == failure
    assert obs.rcode == rcode
    assert obs.addresses == ()
    assert obs.transport == transport


def test_other_rcode_is_recorded() -> None:
    async def main() -> base.DnsObservation:
        async with UdpServer(lambda w, a: [answer(w, rcode=dns.rcode.NOTIMP).to_wire()]) as server:
            return await dns_probe.query(direct(), LOOPBACK, server.port, "tintuc.vn")

    obs = asyncio.run(main())
    assert obs.failure == base.Failure.DNS_OTHER_RCODE
    assert obs.rcode == "NOTIMP"


@TRANSPORTS
@pytest.mark.parametrize("silent", [True, False])
def test_silence_times_out(transport: str, silent: bool) -> None:
    # silent: a dead resolver; not silent: a resolver dropping only this name
    start = time.monotonic()
    obs = QUERY[transport]("dropped.vn", timeouts=SHORT, silent=silent)
    elapsed = time.monotonic() - start
    assert obs.failure == base.Failure.GENERIC_TIMEOUT == "generic_timeout_error"
    assert obs.rcode == ""
    assert obs.transport == transport
    assert "0.3s" in obs.error
    assert 280 <= obs.elapsed_ms < 1000
    assert elapsed < 1.3


def test_udp_to_a_closed_port_is_connection_refused() -> None:
    async def main() -> base.DnsObservation:
        return await dns_probe.query(direct(), LOOPBACK, closed_port(socket.SOCK_DGRAM), "tintuc.vn")

    obs = asyncio.run(main())
    assert obs.failure == base.Failure.CONNECTION_REFUSED
    assert obs.transport == "udp"
    assert obs.elapsed_ms < 500  # an ICMP port unreachable, not a timeout


def test_tcp_through_socks_to_an_unrouted_resolver_is_connection_refused() -> None:
    async def main() -> base.DnsObservation:
        async with running(Middlebox({})) as box:
            ctx = base.ProbeContext(dialer=Socks5Dialer(f"socks5://127.0.0.1:{box.port}"), timeouts=FAST)
            return await dns_probe.query(ctx, LAB_DNS, 53, "tintuc.vn")

    obs = asyncio.run(main())
    assert obs.failure == base.Failure.CONNECTION_REFUSED
    assert obs.transport == "tcp"


def test_proxy_down_is_the_vantage_failing() -> None:
    async def main() -> base.DnsObservation:
        ctx = base.ProbeContext(dialer=Socks5Dialer(f"socks5://127.0.0.1:{closed_port()}"), timeouts=FAST)
        return await dns_probe.query(ctx, LAB_DNS, 53, "tintuc.vn")

    assert asyncio.run(main()).failure == base.Failure.VANTAGE_UNAVAILABLE


def test_loopback_only_refuses_a_public_resolver_without_sending(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_socket(*args: object) -> None:
        raise AssertionError("a socket was created for a refused resolver")

    monkeypatch.setattr(SocketDialer, "_socket", no_socket)

    async def main() -> base.DnsObservation:
        return await dns_probe.query(direct(), "192.0.2.1", 53, "tintuc.vn")

    obs = asyncio.run(main())
    assert obs.failure == base.Failure.NOT_DIALED


def test_source_address_vantage_sends_from_that_address() -> None:
    async def main() -> tuple[base.DnsObservation, UdpServer]:
        async with UdpServer(lambda w, a: [answer(w, "45.76.0.2").to_wire()]) as server:
            dialer = SocketDialer("source_address", source_address="127.0.0.2")
            ctx = base.ProbeContext(dialer=dialer, timeouts=FAST)
            return await dns_probe.query(ctx, LOOPBACK, server.port, "tintuc.vn"), server

    obs, server = asyncio.run(main())
    assert obs.failure is None
    assert [addr[0] for _, addr in server.received] == ["127.0.0.2"]


# --- replies a stub resolver must see through --------------------------------------------------------


def test_a_reply_with_the_wrong_id_is_ignored() -> None:
    def respond(wire: bytes, addr: tuple[str, int]) -> list[bytes]:
        forged = answer(wire, "10.10.34.35")
        forged.id ^= 0x5A5A
        other = dns.message.make_query("other.vn", "A", id=forged.id ^ 0x5A5A)  # the right ID, another name
        wrong_question = dns.message.make_response(other)
        right = answer(wire, "45.76.0.2")
        return [forged.to_wire(), b"\x00garbage", wrong_question.to_wire(), right.to_wire()]

    async def main() -> base.DnsObservation:
        async with UdpServer(respond) as server:
            return await dns_probe.query(direct(), LOOPBACK, server.port, "tintuc.vn")

    obs = asyncio.run(main())
    assert obs.failure is None
    assert obs.addresses == ("45.76.0.2",)


@pytest.mark.parametrize("cut", [False, True], ids=["whole", "cut-mid-record"])
def test_truncated_udp_reply_falls_back_to_tcp(cut: bool) -> None:
    many = [f"45.76.1.{i}" for i in range(1, 40)]

    def udp(wire: bytes, addr: tuple[str, int]) -> list[bytes]:
        if not cut:
            return [answer(wire, flags=dns.flags.TC).to_wire()]
        whole = answer(wire, *many, flags=dns.flags.TC).to_wire()
        return [whole[: len(whole) - 7]]  # a reply cut in the middle of an A record

    async def tcp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        wire = await read_dns_tcp(reader)
        writer.write(dns_tcp_frame(answer(wire, *many).to_wire()))
        await writer.drain()
        await reader.read(1)

    async def main() -> tuple[base.DnsObservation, int]:
        async with dns_on_one_port(udp, tcp) as (u, t):
            return await dns_probe.query(direct(), LOOPBACK, u.port, "tintuc.vn"), len(t.peers)

    obs, tcp_connections = asyncio.run(main())
    assert obs.failure is None, obs
    assert obs.transport == "tcp"
    assert sorted(obs.addresses) == sorted(many)  # an RRset is a set: order is not kept
    assert tcp_connections == 1


@pytest.mark.parametrize("garbage", [b"garbage", bytes(range(40))], ids=["short", "bad-sections"])
def test_malformed_tcp_reply_is_a_bad_reply(garbage: bytes) -> None:
    async def tcp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_dns_tcp(reader)
        writer.write(dns_tcp_frame(garbage))
        await writer.drain()
        await reader.read(1)

    async def main() -> base.DnsObservation:
        async with TcpServer(tcp) as server:
            async with running(Middlebox({(LAB_DNS, 53): (LOOPBACK, server.port)})) as box:
                ctx = base.ProbeContext(dialer=Socks5Dialer(f"socks5://127.0.0.1:{box.port}"), timeouts=FAST)
                return await dns_probe.query(ctx, LAB_DNS, 53, "tintuc.vn")

    obs = asyncio.run(main())
    assert obs.failure == base.Failure.DNS_BAD_REPLY == "dns_bad_reply"
    assert obs.transport == "tcp"
    assert obs.error.startswith("malformed reply")


def test_tcp_resolver_closing_without_a_reply_is_eof() -> None:
    async def tcp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_dns_tcp(reader)

    async def main() -> base.DnsObservation:
        async with TcpServer(tcp) as server:
            async with running(Middlebox({(LAB_DNS, 53): (LOOPBACK, server.port)})) as box:
                ctx = base.ProbeContext(dialer=Socks5Dialer(f"socks5://127.0.0.1:{box.port}"), timeouts=FAST)
                return await dns_probe.query(ctx, LAB_DNS, 53, "tintuc.vn")

    obs = asyncio.run(main())
    assert obs.failure == base.Failure.EOF
    assert obs.transport == "tcp"


def test_hundreds_of_addresses_are_capped() -> None:
    addresses = tuple(f"45.77.{i // 250}.{i % 250 + 1}" for i in range(300))
    policies = {"many.vn": DnsPolicy("answer", addresses)}

    async def main() -> base.DnsObservation:
        async with running(LabResolver({}, policies)) as resolver:
            return await dns_probe.query(direct(), LOOPBACK, resolver.udp_port, "many.vn")

    obs = asyncio.run(main())
    assert obs.failure is None
    assert obs.transport == "udp"
    assert len(obs.addresses) == dns_probe.MAX_ADDRESSES
    assert set(obs.addresses) <= set(addresses)  # an RRset is a set: which 64 are kept is unspecified
    assert len(set(obs.addresses)) == dns_probe.MAX_ADDRESSES


def test_cname_chain_and_duplicate_addresses() -> None:
    def respond(wire: bytes, addr: tuple[str, int]) -> list[bytes]:
        q = dns.message.from_wire(wire)
        r = dns.message.make_response(q)
        r.answer.append(dns.rrset.from_text(q.question[0].name, 300, "IN", "CNAME", "edge.cdn.vn."))
        r.answer.append(dns.rrset.from_text("edge.cdn.vn.", 300, "IN", "A", "45.76.0.7"))
        r.answer.append(dns.rrset.from_text("edge2.cdn.vn.", 300, "IN", "A", "45.76.0.7"))
        return [r.to_wire()]

    async def main() -> base.DnsObservation:
        async with UdpServer(respond) as server:
            return await dns_probe.query(direct(), LOOPBACK, server.port, "tintuc.vn")

    obs = asyncio.run(main())
    assert obs.failure is None
    assert obs.cnames == ("edge.cdn.vn",)
    assert obs.addresses == ("45.76.0.7",)


def test_observation_is_json_able() -> None:
    obs = query_udp("tintuc.vn")
    d = base.to_dict(obs)
    assert d["addresses"] == ("45.76.0.2",) and d["failure"] is None and d["transport"] == "udp"
