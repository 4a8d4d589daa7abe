"""Politeness limits: spacing of queries per resolver, connections at once per destination."""

from __future__ import annotations

import asyncio

from auditor.limits import KeyedLimits, RateLimiter


def test_rate_limiter_never_runs_ahead_of_its_rate() -> None:
    async def go() -> tuple[float, list[float]]:
        limiter = RateLimiter(50)  # one every 20 ms
        loop = asyncio.get_running_loop()
        start = loop.time()
        stamps = []
        for _ in range(6):
            await limiter.acquire()
            stamps.append(loop.time())
        return start, stamps

    start, stamps = asyncio.run(go())
    # the i-th query never goes out before start + i intervals (a lower bound that load cannot break:
    # a late wake-up delays one query, it never lets a later one run ahead of the schedule)
    assert all(t >= start + i * 0.02 - 1e-6 for i, t in enumerate(stamps)), [t - start for t in stamps]


def test_concurrent_callers_share_one_resolver_budget_but_not_another() -> None:
    async def go() -> tuple[float, float]:
        limits = KeyedLimits(resolver_qps=20)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await asyncio.gather(*(limits.resolver_turn("1.2.3.4:53") for _ in range(5)))
        one = loop.time() - t0
        t1 = loop.time()
        await asyncio.gather(*(limits.resolver_turn(f"10.0.0.{i}:53") for i in range(5)))
        return one, loop.time() - t1

    same, different = asyncio.run(go())
    assert same >= 0.19  # 5 queries at 20/s to one resolver: the 5th waits 4 intervals
    assert different < same  # separate resolvers do not wait for each other


def test_per_destination_slots() -> None:
    async def go() -> dict[str, int]:
        limits = KeyedLimits(per_destination=2)
        active: dict[str, int] = {}
        peak: dict[str, int] = {}

        async def use(ip: str) -> None:
            async with limits.destination(ip):
                active[ip] = active.get(ip, 0) + 1
                peak[ip] = max(peak.get(ip, 0), active[ip])
                await asyncio.sleep(0.01)
                active[ip] -= 1

        await asyncio.gather(*(use("45.76.0.1") for _ in range(6)), *(use("45.76.0.2") for _ in range(3)))
        return peak

    assert asyncio.run(go()) == {"45.76.0.1": 2, "45.76.0.2": 2}


def test_zero_means_no_limit() -> None:
    async def go() -> int:
        limits = KeyedLimits(0, 0)
        active = peak = 0

        async def use() -> None:
            nonlocal active, peak
            await limits.resolver_turn("r")
            async with limits.destination("d"):
                active += 1
                peak = max(peak, active)
                await asyncio.sleep(0.01)
                active -= 1

        await asyncio.gather(*(use() for _ in range(10)))
        return peak

    assert asyncio.run(go()) == 10


def test_an_answering_destination_never_has_more_connections_than_its_slots() -> None:
    """The politeness promise: a server that answers sees at most `per_destination` connections at once."""
    async def go() -> int:
        limits = KeyedLimits(per_destination=2)
        inside = peak = 0

        async def connect() -> None:
            nonlocal inside, peak
            async with limits.destination("198.51.100.7"):
                inside += 1
                peak = max(peak, inside)
                await asyncio.sleep(0.01)
                limits.note_answer("198.51.100.7")
                inside -= 1

        await asyncio.gather(*(connect() for _ in range(20)))
        return peak

    assert asyncio.run(go()) == 2


def test_a_silent_destination_stops_holding_the_queue() -> None:
    """Once SILENT_AFTER connects to an address time out with none answered, the callers queued for its
    slots go at once and new ones take no slot (nothing answers there to spare)."""
    async def go() -> tuple[int, int, bool]:
        limits = KeyedLimits(per_destination=1)
        ip = "198.51.100.9"
        release = asyncio.Event()
        entered: list[int] = []

        async def connect(i: int) -> None:
            async with limits.destination(ip):
                entered.append(i)
                await release.wait()

        tasks = [asyncio.ensure_future(connect(i)) for i in range(10)]
        await asyncio.sleep(0.01)
        queued = len(entered)  # one holds the only slot, nine wait
        for _ in range(KeyedLimits.SILENT_AFTER):
            limits.note_silence(ip)
        await asyncio.sleep(0.01)
        after = len(entered)
        release.set()
        await asyncio.gather(*tasks)
        limits.note_answer(ip)  # it answers again: an ordinary address, with slots
        return queued, after, limits.is_silent(ip)

    queued, after, still_silent = asyncio.run(go())
    assert (queued, after, still_silent) == (1, 10, False)
