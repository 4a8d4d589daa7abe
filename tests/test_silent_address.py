"""Issue 10: an address that never answers a connect at a vantage stops costing politeness slots and
retries, and every name on it is still measured, its evidence saying how many connects there were silent.
A real silent address on loopback: a listener whose accept queue is full drops every SYN."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator

import pytest

from auditor.lab.servers import LabResolver
from auditor.limits import KeyedLimits
from auditor.measure import Vantage, measure_url
from probes import base
from probes.dialers import SocketDialer

NAMES = [f"n{i}.example" for i in range(12)]


@pytest.fixture
def silent_port() -> Iterator[int]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = int(listener.getsockname()[1])
    filler = socket.create_connection(("127.0.0.1", port))  # fills the accept queue: later SYNs are dropped
    try:
        yield port
    finally:
        filler.close()
        listener.close()


def test_every_name_on_a_silent_address_is_measured_without_serialising(silent_port: int) -> None:
    async def scenario() -> tuple[list[base.Failure | str | None], list[int], list[int], int]:
        dns = LabResolver({n: ("127.0.0.1",) for n in NAMES})
        await dns.start()
        try:
            probe = base.ProbeContext(SocketDialer(loopback_only=True),
                                      base.Timeouts(dns=1.0, connect=0.3, tls=0.3, http=0.5))
            limits = KeyedLimits(per_destination=1)
            v = Vantage("isp", probe, (("127.0.0.1", dns.udp_port),), dial_non_public=True, limits=limits)
            peak = 0

            async def one(name: str) -> tuple[str | None, int, int]:
                nonlocal peak
                obs = await measure_url(v, f"http://{name}:{silent_port}/")
                e = obs.hops[0].endpoints[0]
                peak = max(peak, limits.silent_connects("127.0.0.1"))
                return e.tcp.failure, e.attempts, e.silent_before

            first = [await one(n) for n in NAMES[:2]]  # two names, one at a time: learning
            rest = await asyncio.gather(*(one(n) for n in NAMES[2:]))
            got = first + list(rest)
            return [g[0] for g in got], [g[1] for g in got], [g[2] for g in got], peak
        finally:
            await dns.close()

    failures, attempts, silent_before, peak = asyncio.run(scenario())
    assert failures == [base.Failure.GENERIC_TIMEOUT] * len(NAMES)  # every name measured
    assert attempts[:2] == [2, 2]  # before the address is known silent, a timeout is retried
    assert attempts[2:] == [1] * (len(NAMES) - 2)  # after: no retry, and no slot held (all went at once)
    assert all(n >= KeyedLimits.SILENT_AFTER for n in silent_before[2:])
    assert peak >= 2 * 2 + len(NAMES) - 2
