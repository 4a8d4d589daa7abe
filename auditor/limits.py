"""Politeness: a provider's resolvers and a destination address are shared with real users, so a nightly
audit spreads its load (issue 4): queries per second per resolver, connections at once per destination.

The per-destination limit spares servers that answer. An address that never answers a connect at this
vantage (a provider that drops a CDN address shared by hundreds of listed names) spares nobody: held
slots only made the run wait 2 timeouts per name in file (issue 10). So each vantage learns, within the
run, which addresses are silent (`SILENT_AFTER` connects timed out, none answered): connects to them take
no slot and their timeouts are not retried (a retry rules out a lost SYN; the other names on the address
already have); the evidence says how many connects to that address were silent. One answered connect
makes the address an ordinary, rate-limited one again."""

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

    SILENT_AFTER = 3  # connect timeouts, with no answered connect, before an address counts as silent

    def __init__(self, resolver_qps: float = 0.0, per_destination: int = 0) -> None:
        self.resolver_qps = resolver_qps
        self.per_destination = per_destination
        self._rates: dict[str, RateLimiter] = {}
        self._slots: dict[str, _Destination] = {}
        # ip -> connects that timed out since the last answered one; only silent addresses are kept, so it
        # grows with the addresses a vantage cannot reach, not with the list
        self._silence: dict[str, int] = {}

    def note_silence(self, ip: str) -> None:
        """A TCP connect to `ip` got no answer at all (timed out)."""
        self._silence[ip] = self._silence.get(ip, 0) + 1
        if self._silence[ip] == self.SILENT_AFTER:
            self._became_silent(ip)

    def note_answer(self, ip: str) -> None:
        """A TCP connect to `ip` was answered (accepted; a refusal or reset is an answer too)."""
        if self._silence.pop(ip, 0) >= self.SILENT_AFTER:
            entry = self._slots.get(ip)
            if entry is not None:
                entry.silent = asyncio.Event()  # it answers again: new callers wait for slots again

    def silent_connects(self, ip: str) -> int:
        """How many connects to `ip` timed out at this vantage since one was last answered."""
        return self._silence.get(ip, 0)

    def is_silent(self, ip: str) -> bool:
        return self._silence.get(ip, 0) >= self.SILENT_AFTER

    async def resolver_turn(self, resolver: str) -> None:
        if self.resolver_qps <= 0:
            return
        limiter = self._rates.get(resolver)
        if limiter is None:
            limiter = self._rates[resolver] = RateLimiter(self.resolver_qps)
        await limiter.acquire()

    @contextlib.asynccontextmanager
    async def destination(self, ip: str) -> AsyncIterator[None]:
        if self.per_destination <= 0 or self.is_silent(ip):
            yield
            return
        entry = self._slots.get(ip)
        if entry is None:
            entry = self._slots[ip] = _Destination(asyncio.Semaphore(self.per_destination))
        entry.users += 1
        held = False
        try:
            held = await entry.turn()
            yield
        finally:
            if held:
                entry.slot.release()
            entry.users -= 1
            if entry.users == 0:  # nobody holds or waits: forget it, or a long list grows one per address
                del self._slots[ip]

    def _became_silent(self, ip: str) -> None:
        entry = self._slots.get(ip)
        if entry is not None:
            entry.silent.set()  # the callers queued for a slot go now: nothing answers there to spare


class _Destination:
    """One address's connection slots, and the signal that releases its queue when it proves silent."""

    __slots__ = ("slot", "silent", "users")

    def __init__(self, slot: asyncio.Semaphore) -> None:
        self.slot, self.silent, self.users = slot, asyncio.Event(), 0

    async def turn(self) -> bool:
        """Wait for a slot (True) or for the address to prove silent (False: no slot is taken)."""
        if self.silent.is_set():
            return False
        if not self.slot.locked():
            await self.slot.acquire()  # free: no wait, no extra task (the common case)
            return True
        acquiring = asyncio.ensure_future(self.slot.acquire())
        silenced = asyncio.ensure_future(self.silent.wait())
        try:
            await asyncio.wait({acquiring, silenced}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            silenced.cancel()
            if not acquiring.done():
                acquiring.cancel()
        if acquiring.cancelled():
            return False
        if acquiring.done() and acquiring.exception() is None:
            return True
        return False
