"""Before a blocked verdict counts: what a provider contesting it would ask first.

1. Control, test, control: control measures the URL again after the provider's measurement. If control
   now fails where the provider failed (the connect, the handshake, the request, the lookup), the site
   flapped: `control.flapped`, inconclusive.
2. No verdict from a dying vantage: a blocked verdict that rests on the vantage's own transport (a close, a
   reset, a refusal, a timeout, a proxy error: anything but a DNS answer, a certificate, a fingerprint or
   an HTTP response, see `auditor.verdict.rests_on_transport`) counts only once a re-check of the vantage
   that STARTED AFTER the failure passes. A `ssh -D` killed mid-run closes every connection in flight in
   the same second: each of those closes looks like blocking, and only a later check tells them apart.
   When the re-check fails the verdict is `vantage.unhealthy` and the vantage is down: its next URLs are
   not measured (`vantage.unhealthy`, counted as lost) until a re-check, tried every `retry_seconds`,
   passes again; then measuring resumes.

Only blocked verdicts pay for this (BENCHMARKS.md shows the cost).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from auditor.health import ControlHealth, ProviderHealthResult, check_provider
from auditor.models import Judgement, Verdict
from auditor.observations import UrlObservation
from auditor.toolkit import Toolkit
from auditor.verdict import inconclusive, judge, rests_on_transport


@dataclass(frozen=True)
class VantageState:
    """What the monitor knows of a vantage: up, or down since `since` (wall clock) for `reason`."""

    up: bool
    reason: str = ""
    since: float = 0.0


class VantageMonitor:
    """One provider's vantage during a run: re-checks on demand, one at a time, and remembers whether the
    vantage is down.

    A caller that saw a transport failure at loop time `t` asks `check_after(t)`: the answer comes from a
    check that started at or after `t`, run now if none has (callers that failed before the same check
    started share it, so a tunnel that dies under 200 connections costs one check, not 200)."""

    retry_seconds = 10.0  # how often a down vantage is re-checked (by the next URL that wants it)

    def __init__(self, kit: Toolkit, provider_id: str, control: ControlHealth, probe_name: str) -> None:
        self.kit, self.provider_id, self.control, self.probe_name = kit, provider_id, control, probe_name
        self.state = VantageState(True)
        self.checks = 0  # re-checks run (for the benchmark and the tests)
        self._lock = asyncio.Lock()
        self._last_start = float("-inf")
        self._last: ProviderHealthResult | None = None

    async def check_after(self, t: float) -> ProviderHealthResult:
        async with self._lock:
            if self._last is not None and self._last_start >= t:
                return self._last
            start = asyncio.get_running_loop().time()
            result = await check_provider(self.kit, self.provider_id, self.control, self.probe_name)
            self.checks += 1
            self._last_start, self._last = start, result
            if result.measured:
                self.state = VantageState(True)
            elif self.state.up:
                self.state = VantageState(False, result.reason, time.time())
            return result

    def mark_down(self, reason: str) -> None:
        """The vantage failed under a measurement (its proxy refused us): down until a re-check passes."""
        if self.state.up:
            self.state = VantageState(False, reason, time.time())

    async def usable(self) -> bool:
        """Whether to measure the next URL here: yes when up; when down, a re-check is due every
        `retry_seconds` (the URL that asks runs it) and its outcome decides."""
        if self.state.up:
            return True
        now = asyncio.get_running_loop().time()
        if now - self._last_start < self.retry_seconds:
            return False
        result = await self.check_after(now)
        return result.measured

    def down_judgement(self) -> Judgement:
        since = time.strftime("%H:%M:%S", time.gmtime(self.state.since))
        return inconclusive(
            "vantage.unhealthy",
            f"not measured: the provider's vantage has been failing its re-check since {since}Z "
            f"({self.state.reason}); measuring resumes when a re-check passes",
        )


async def confirm_blocked(
    judgement: Judgement,
    provider: UrlObservation,
    kit: Toolkit,
    monitor: VantageMonitor | None,
    failed_at: float,
    *,
    content: bool,
    control_slot: asyncio.Semaphore | None = None,
) -> Judgement:
    """`judgement` if it holds after control's re-test and, for a transport verdict, the vantage's re-check
    (started after `failed_at`, loop time); otherwise the inconclusive judgement that says why not."""
    if judgement.verdict is not Verdict.BLOCKED:
        return judgement
    if provider.vantage_failure and monitor is not None:
        monitor.mark_down(provider.vantage_failure)
    if rests_on_transport(judgement, provider) and monitor is not None:
        health = await monitor.check_after(failed_at)
        if not health.measured:
            return inconclusive(
                "vantage.unhealthy", f"{judgement.evidence}; but the vantage failed a re-check made after "
                f"the failure: {health.reason}"
            )
    if control_slot is not None:
        async with control_slot:
            again = await kit.probes.measure_url(kit.control, provider.url, content=content)
    else:
        again = await kit.probes.measure_url(kit.control, provider.url, content=content)
    retest = judge(provider, again, kit.dns_fingerprint(provider.vantage_id),
                   private_ok=kit.config.allow_private_destinations)
    if retest.verdict is Verdict.BLOCKED:
        return judgement
    return inconclusive(
        "control.flapped",
        f"{judgement.evidence}; but control, measured again after the provider, no longer supports it: "
        f"{retest.evidence}",
    )
