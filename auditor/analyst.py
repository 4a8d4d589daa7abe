"""What an analyst runs by hand (`auditor check`): one provider's health, then every asked URL at control
and at the provider, judged, with every observation kept for display. Nothing is stored."""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from auditor.config import Config
from auditor.health import (
    HealthCheck,
    ProviderHealthResult,
    check_control,
    check_provider,
    resolver_probe_name,
)
from auditor.measure import Vantage
from auditor.models import Judgement
from auditor.observations import UrlObservation
from auditor.toolkit import ProbeFunctions, Toolkit, build_toolkit
from auditor.urls import normalise_url
from auditor.verdict import inconclusive, judge


@dataclass(frozen=True)
class UrlCheck:
    url: str
    control: UrlObservation
    provider: UrlObservation
    judgement: Judgement


@dataclass(frozen=True)
class ProviderCheck:
    provider_id: str
    vantage: str
    measured: bool
    reason: str
    checks: tuple[HealthCheck, ...]  # control's, then the provider's
    results: tuple[UrlCheck, ...]


async def check_provider_urls(
    config: Config,
    provider_id: str,
    urls: Sequence[str],
    sensitive: Collection[str] = frozenset(),
    probes: ProbeFunctions | None = None,
) -> ProviderCheck:
    """Health, then every URL at control and at the provider, judged (`sensitive` URLs without reading
    content). The URLs are measured even when the provider is unhealthy, so the analyst sees why; the
    judgement then says it would not count."""
    kit = build_toolkit(config, [provider_id], probes)
    try:
        control = await check_control(kit)
        probe_name = resolver_probe_name(config.canaries, [normalise_url(u).host for u in urls[:1]])
        health = await check_provider(kit, provider_id, control, probe_name)
        # every listed URL may be asked for: stay within the configured concurrency
        slots = asyncio.Semaphore(config.concurrency)
        results = await asyncio.gather(*(_check_url(kit, provider_id, u, health, slots, u not in sensitive) for u in urls))
        return ProviderCheck(provider_id, kit.providers[provider_id].label, health.measured, health.reason,
                             control.checks + health.checks, tuple(results))
    finally:
        await kit.close()


async def _check_url(
    kit: Toolkit, provider_id: str, url: str, health: ProviderHealthResult, slots: asyncio.Semaphore, content: bool
) -> UrlCheck:
    provider: Vantage = kit.providers[provider_id]
    async with slots:
        control_obs = await kit.probes.measure_url(kit.control, url, content=content)
        obs = await kit.probes.measure_url(provider, url, control_obs, content=content)
    j = judge(obs, control_obs, kit.dns_fingerprint(provider_id), private_ok=kit.config.allow_private_destinations)
    if not health.measured:
        j = inconclusive("provider.not_measured", f"provider not measured: {health.reason} (would be: {j.verdict}, {j.rule})")
    return UrlCheck(url, control_obs, obs, j)
