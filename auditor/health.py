"""Health: whether a vantage can be measured at all, before a run and again during it.

Control must reach every canary, or no provider gets a verdict. A provider is measured when its vantage is
up, one of its resolvers answers from there, and every canary is accessible through it. During the run the
same provider check is the vantage's re-check (auditor.confirm): a resolver that died or an `ssh -D` that
dies mid-run must not turn any URL into "blocked".
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from auditor.models import Verdict
from auditor.observations import UrlObservation
from auditor.toolkit import Toolkit
from auditor.urls import normalise_url
from auditor.verdict import judge
from probes import base


@dataclass(frozen=True)
class HealthCheck:
    """One step of a health check, e.g. name "resolver 10.0.0.1:53", detail "answers (NOERROR, 12 ms)"."""

    name: str
    ok: bool
    detail: str

    def __str__(self) -> str:
        """The line stored with the provider's health and shown by `check` and `doctor`."""
        return f"{self.name}: {self.detail}"


@dataclass(frozen=True)
class ControlHealth:
    """Control's canary checks, and what it saw of each canary (the provider's canaries are judged against
    these)."""

    ok: bool
    checks: tuple[HealthCheck, ...]
    canaries: tuple[UrlObservation, ...]


@dataclass(frozen=True)
class ProviderHealthResult:
    """Whether a provider can be measured; `reason` says why not."""

    measured: bool
    reason: str
    checks: tuple[HealthCheck, ...]


# A canary refused this way through a SOCKS vantage is often the tunnel's own policy, not the provider: an
# `ssh -D` whose sshd forbids the destination (PermitOpen) closes it without a reply; dante replies code 2.
PROXY_REFUSAL_RULES = frozenset({"tcp.closed", "tcp.proxy_refused"})

CONTROL_UNUSABLE = ProviderHealthResult(False, "control vantage cannot reach the canaries: no verdict possible", ())


async def check_control(kit: Toolkit) -> ControlHealth:
    """Control must reach every canary; without it there is no verdict for anyone."""
    observed: dict[str, UrlObservation] = {}  # a canary listed twice is judged once at each provider
    checks: list[HealthCheck] = []
    for url in kit.config.canaries:
        obs = await kit.probes.measure_url(kit.control, url)
        observed[url] = obs
        final = obs.hops[-1]
        if obs.vantage_failure or final.http is None or final.http.failure:
            checks.append(HealthCheck(f"canary {url}", False, f"FAILED at control ({first_failure(obs)})"))
        else:
            checks.append(HealthCheck(f"canary {url}", True, f"ok at control (HTTP {final.http.status})"))
    if not kit.config.canaries:
        checks.append(HealthCheck("no canaries configured", True, "control reachability not verified"))
    return ControlHealth(all(c.ok for c in checks), tuple(checks), tuple(observed.values()))


async def check_provider(kit: Toolkit, provider_id: str, control: ControlHealth, probe_name: str) -> ProviderHealthResult:
    """Vantage up, resolvers answering (asked for `probe_name`), canaries accessible beside control.

    The resolvers that did not answer are dropped from the provider's vantage for the rest of the run."""
    if not control.ok:
        return CONTROL_UNUSABLE
    v = kit.providers[provider_id]
    problem = await v.probe.dialer.tunnel_problem(v.probe.timeouts.connect)
    if problem:  # said as it is, not as "no resolver answers" (which is all the resolver queries would show)
        down = HealthCheck(f"vantage {v.label}", False, f"DOWN ({problem})")
        return ProviderHealthResult(False, f"vantage unreachable: {problem}", (down,))
    checks: list[HealthCheck] = []
    alive: list[tuple[str, int]] = []
    for ip, port in v.resolvers:
        answer = await kit.probes.query_resolver(v.probe, ip, port, probe_name, "A")
        if answer.failure == base.Failure.VANTAGE_UNAVAILABLE:
            down = HealthCheck(f"vantage {v.label}", False, f"DOWN ({answer.error})")
            return ProviderHealthResult(False, f"vantage unreachable: {answer.error}", (down,))
        if answer.rcode and answer.rcode != "REFUSED":
            alive.append((ip, port))
            checks.append(HealthCheck(f"resolver {answer.resolver}", True,
                                      f"answers ({answer.rcode}, {answer.elapsed_ms:.0f} ms)"))
        else:
            checks.append(HealthCheck(f"resolver {answer.resolver}", False,
                                      f"NOT ANSWERING ({answer.rcode or answer.failure}: {answer.error})"))
    if not alive:
        return ProviderHealthResult(False, "no resolver of the provider answers from its vantage", tuple(checks))
    v.resolvers = tuple(alive)
    for control_obs in control.canaries:
        url = control_obs.url
        obs = await kit.probes.measure_url(v, url, control_obs)
        j = judge(obs, control_obs, kit.dns_fingerprint(provider_id), private_ok=kit.config.allow_private_destinations)
        if obs.vantage_failure:
            checks.append(HealthCheck(f"vantage {v.label}", False, f"DOWN ({obs.vantage_failure})"))
            return ProviderHealthResult(False, f"vantage unreachable: {obs.vantage_failure}", tuple(checks))
        if j.verdict is not Verdict.ACCESSIBLE:
            why = j.evidence
            if v.kind == "proxy" and j.rule in PROXY_REFUSAL_RULES:
                why += ("; the tunnel itself may refuse this destination: check the vantage box's sshd "
                        "PermitOpen / AllowTcpForwarding (it must allow every destination)")
            checks.append(HealthCheck(f"canary {url}", False, f"FAILED ({j.verdict}: {why})"))
            return ProviderHealthResult(False, f"canary {url} not reachable: {why}", tuple(checks))
        checks.append(HealthCheck(f"canary {url}", True, f"ok ({j.evidence})"))
    return ProviderHealthResult(True, "", tuple(checks))


def resolver_probe_name(canaries: Sequence[str], audited_hosts: Iterable[str]) -> str:
    """A name to ask each resolver, to see that it answers at all (any rcode but REFUSED counts): the first
    canary's host, else the first audited host, never a name outside the audit if there is one."""
    for url in canaries:
        return normalise_url(url).host
    return next(iter(audited_hosts), "example.com")


def first_failure(obs: UrlObservation) -> str:
    """The first step that failed, in a few words, e.g. "DNS NXDOMAIN", "tcp connection_reset_error"."""
    if obs.vantage_failure:
        return obs.vantage_failure
    for hop in obs.hops:
        if hop.dns is not None and not hop.dns.resolved:
            return f"DNS {hop.dns.rcode or hop.dns.failure}"
        for e in hop.endpoints:
            if e.failure:
                return f"{e.step} {e.failure}"
        if hop.http is not None and hop.http.failure:
            return f"HTTP {hop.http.failure}"
    return "no response"
