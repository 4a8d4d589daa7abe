"""Politeness: a provider's resolvers and a destination address are shared with real users, so a nightly
audit spreads its load (issue 4): queries per second per resolver, connections at once per destination."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator


class RateLimiter:
    """At most `rate` acquisitions per second, evenly spaced (a token bucket of depth 1); rate 0 = unlimited."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self._next = 0.0

    async def acquire(self) -> None:
        if not self.interval:
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        slot = max(now, self._next)
        self._next = slot + self.interval
        if slot > now:
            await asyncio.sleep(slot - now)


class KeyedLimits:
    """A RateLimiter per resolver and a semaphore per destination, created on first use."""

    def __init__(self, resolver_qps: float = 0.0, per_destination: int = 0) -> None:
        self.resolver_qps = resolver_qps
        self.per_destination = per_destination
        self._rates: dict[str, RateLimiter] = {}
        self._slots: dict[str, tuple[asyncio.Semaphore, list[int]]] = {}  # ip -> (slot, [users])

    async def resolver_turn(self, resolver: str) -> None:
        if self.resolver_qps <= 0:
            return
        limiter = self._rates.get(resolver)
        if limiter is None:
            limiter = self._rates[resolver] = RateLimiter(self.resolver_qps)
        await limiter.acquire()

    @contextlib.asynccontextmanager
    async def destination(self, ip: str) -> AsyncIterator[None]:
        if self.per_destination <= 0:
            yield
            return
        entry = self._slots.get(ip)
        if entry is None:
            entry = self._slots[ip] = (asyncio.Semaphore(self.per_destination), [0])
        slot, users = entry
        users[0] += 1
        try:
            async with slot:
                yield
        finally:
            users[0] -= 1
            if users[0] == 0:  # nobody holds or waits: forget it, or a long list grows one per address
                del self._slots[ip]
