"""The audit: check every vantage's health, measure each listed URL once at control and then at every
healthy provider, judge, store each judgement as it completes, score, write the ministry CSVs.

Progress goes to an observer (only the CLI knows about terminals). Nothing here prints.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import secrets
import ssl
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

from auditor.config import Config, ResolverAddress, VantageConfig
from auditor.errors import UsageError
from auditor.fingerprints import FingerprintSet
from auditor.limits import KeyedLimits
from auditor.lists import ListSet, read_lists
from auditor.measure import Vantage, measure_url
from auditor.models import (
    Confidence,
    Judgement,
    ListEntry,
    MeasurementRecord,
    ProviderHealth,
    ProviderScore,
    RunInfo,
    Verdict,
)
from auditor.observations import UrlObservation
from auditor.report.csvformat import summary_extras, write_run_csvs
from auditor.sensitive import hasher_for, hidden, is_sensitive, redactor
from auditor.store import Store
from auditor.urls import normalise_url
from auditor.verdict import inconclusive, judge
from probes import base, dns
from probes.dialers import make_dialer
from probes.dns import TcpChannels

CONTROL_ID = "control"


class AuditObserver(Protocol):
    def run_started(self, run: RunInfo, entries: int, providers: Sequence[str]) -> None: ...
    def provider_checked(self, health: ProviderHealth) -> None: ...
    def measured(self, record: MeasurementRecord) -> None: ...
    def run_finished(self, run: RunInfo, scores: Sequence[ProviderScore]) -> None: ...


class NullObserver:
    def run_started(self, run: RunInfo, entries: int, providers: Sequence[str]) -> None:
        pass

    def provider_checked(self, health: ProviderHealth) -> None:
        pass

    def measured(self, record: MeasurementRecord) -> None:
        pass

    def run_finished(self, run: RunInfo, scores: Sequence[ProviderScore]) -> None:
        pass


@dataclass(frozen=True)
class AuditResult:
    run: RunInfo
    health: tuple[ProviderHealth, ...]
    scores: tuple[ProviderScore, ...]
    lists: ListSet
    csv_paths: tuple[Path, ...] = ()

    @property
    def all_measured(self) -> bool:
        return all(h.measured for h in self.health)


@dataclass
class Toolkit:
    """What a run builds once and shares: the TLS context, fingerprints, vantages."""

    config: Config
    ssl_context: ssl.SSLContext
    fingerprints: FingerprintSet
    control: Vantage
    providers: dict[str, Vantage] = field(default_factory=dict)
    provider_fingerprints: dict[str, FingerprintSet] = field(default_factory=dict)

    async def close(self) -> None:
        """Close what the vantages keep open between probes (pipelined DNS connections)."""
        for v in (self.control, *self.providers.values()):
            if v.probe.dns_channels is not None:
                await v.probe.dns_channels.close()

    def dns_fingerprint(self, vantage_id: str) -> Callable[[str], str | None]:
        fps = self.provider_fingerprints.get(vantage_id, self.fingerprints)

        def lookup(ip: str) -> str | None:
            fp = fps.match_dns_ip(ip)
            return fp.id if fp else None

        return lookup


def make_ssl_context(config: Config) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    if config.extra_ca_file:
        ctx.load_verify_locations(cafile=str(config.extra_ca_file))
    return ctx


def page_matcher(fps: FingerprintSet):  # type: ignore[no-untyped-def]
    def match(text: str, headers: Sequence[tuple[str, str]], location: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
        ids = [f.id for f in fps.match_body(text)] + [f.id for f in fps.match_headers(headers)]
        if location:
            r = fps.match_redirect(location)
            if r is not None:
                ids.append(r.id)
        false = [f.id for f in fps.false_positive_for_body(text)] + [
            f.id for f in fps.false_positive_for_headers(headers)
        ]
        return tuple(dict.fromkeys(ids)), tuple(dict.fromkeys(false))

    return match


def build_toolkit(config: Config, provider_ids: Iterable[str] = ()) -> Toolkit:
    ssl_context = make_ssl_context(config)
    fps = FingerprintSet.build(config.fingerprints)
    timeouts = config.timeouts

    def vantage(vid: str, vcfg: VantageConfig, resolvers: Sequence[ResolverAddress], f: FingerprintSet) -> Vantage:
        dialer = make_dialer(vcfg.kind, vcfg.value, loopback_only=config.loopback_only)
        probe = base.ProbeContext(dialer=dialer, timeouts=timeouts, ssl_context=ssl_context,
                                  dns_channels=TcpChannels())
        return Vantage(vid, probe, tuple((r.ip, r.port) for r in resolvers), matcher=page_matcher(f),
                       block_address=lambda ip: f.match_dns_ip(ip) is not None,
                       limits=KeyedLimits(config.limits.resolver_qps, config.limits.per_destination),
                       dial_non_public=config.allow_private_destinations)

    kit = Toolkit(config, ssl_context, fps, vantage(CONTROL_ID, config.control.vantage, config.control.resolvers, fps))
    wanted = set(provider_ids)
    for p in config.providers:
        if wanted and p.id not in wanted:
            continue
        pf = fps.merged(FingerprintSet.build(p.fingerprints, builtin=False, id_prefix=f"provider.{p.id}"))
        kit.provider_fingerprints[p.id] = pf
        kit.providers[p.id] = vantage(p.id, p.vantage, p.resolvers, pf)
    return kit


def new_run_id(now: dt.datetime) -> str:
    return now.strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(2)


def config_digest(config: Config) -> str:
    return hashlib.sha256(repr(replace(config, source=None)).encode()).hexdigest()[:16]


# --- health -------------------------------------------------------------------------------------------


async def check_control(kit: Toolkit) -> tuple[bool, list[str], dict[str, UrlObservation]]:
    """Control must reach every canary; without it there is no verdict for anyone."""
    observations: dict[str, UrlObservation] = {}
    checks: list[str] = []
    ok = True
    for url in kit.config.canaries:
        obs = await measure_url(kit.control, url)
        observations[url] = obs
        final = obs.hops[-1]
        if obs.vantage_failure or final.http is None or final.http.failure:
            ok = False
            checks.append(f"canary {url}: FAILED at control ({_first_failure(obs)})")
        else:
            checks.append(f"canary {url}: ok at control (HTTP {final.http.status})")
    if not kit.config.canaries:
        checks.append("no canaries configured: control reachability not verified")
    return ok, checks, observations


async def check_provider(
    kit: Toolkit, pid: str, control_canaries: dict[str, UrlObservation], probe_name: str
) -> tuple[bool, str, list[str]]:
    """Vantage up, resolvers answering, canaries accessible. Returns (measured, reason, checks)."""
    v = kit.providers[pid]
    checks: list[str] = []
    alive: list[tuple[str, int]] = []
    for ip, port in v.resolvers:
        obs = await dns.query(v.probe, ip, port, probe_name, "A")
        if obs.failure == base.VANTAGE_UNAVAILABLE:
            return False, f"vantage unreachable: {obs.error}", [f"vantage {v.label}: DOWN ({obs.error})"]
        if obs.rcode and obs.rcode != "REFUSED":
            alive.append((ip, port))
            checks.append(f"resolver {obs.resolver}: answers ({obs.rcode}, {obs.elapsed_ms:.0f} ms)")
        else:
            checks.append(f"resolver {obs.resolver}: NOT ANSWERING ({obs.rcode or obs.failure}: {obs.error})")
    if not alive:
        return False, "no resolver of the provider answers from its vantage", checks
    v.resolvers = tuple(alive)
    for url, control_obs in control_canaries.items():
        obs = await measure_url(v, url, control_obs)
        j = judge(obs, control_obs, kit.dns_fingerprint(pid), private_ok=kit.config.allow_private_destinations)
        if obs.vantage_failure:
            checks.append(f"vantage {v.label}: DOWN ({obs.vantage_failure})")
            return False, f"vantage unreachable: {obs.vantage_failure}", checks
        if j.verdict is not Verdict.ACCESSIBLE:
            checks.append(f"canary {url}: FAILED ({j.verdict}: {j.evidence})")
            return False, f"canary {url} not reachable: {j.evidence}", checks
        checks.append(f"canary {url}: ok ({j.evidence})")
    return True, "", checks


# Verdicts that rest on silence: before one counts, the vantage must prove it still works (a resolver that
# died or an `ssh -D` that hangs mid-run must not turn every later URL into "blocked").
SILENCE_RULES = frozenset({"dns.timeout", "tcp.timeout", "tls.timeout", "http.timeout"})


class HealthMonitor:
    """Re-checks a provider's vantage on demand, at most once per `interval` seconds, one check at a time."""

    def __init__(self, kit: Toolkit, pid: str, canaries: dict[str, UrlObservation], probe_name: str,
                 interval: float = 20.0) -> None:
        self.kit, self.pid, self.canaries, self.probe_name, self.interval = kit, pid, canaries, probe_name, interval
        self._last: tuple[float, bool, str] | None = None
        self._lock = asyncio.Lock()

    async def healthy(self) -> tuple[bool, str]:
        loop = asyncio.get_running_loop()
        async with self._lock:
            if self._last is not None and loop.time() - self._last[0] < self.interval:
                return self._last[1], self._last[2]
            ok, reason, _ = await check_provider(self.kit, self.pid, self.canaries, self.probe_name)
            self._last = (loop.time(), ok, reason)
            return ok, reason


def rests_on_silence(judgement: Judgement, obs: UrlObservation) -> bool:
    """A blocked verdict that a dead vantage could also explain: a timeout rule, or a likely verdict whose
    provider observation holds a timeout (e.g. a differing DNS answer whose address never answered)."""
    if judgement.verdict is not Verdict.BLOCKED:
        return False
    if judgement.rule in SILENCE_RULES:
        return True
    if judgement.confidence is not Confidence.LIKELY:
        return False
    for hop in obs.hops:
        steps = [*(e.failure for e in hop.endpoints), hop.http.failure if hop.http else None]
        steps += [q.failure for q in hop.dns.queries] if hop.dns else []
        if base.TIMEOUT in steps:
            return True
    return False


async def confirm_silence(judgement: Judgement, monitor: HealthMonitor | None, obs: UrlObservation) -> Judgement:
    if monitor is None or not rests_on_silence(judgement, obs):
        return judgement
    ok, reason = await monitor.healthy()
    if ok:
        return judgement
    return inconclusive(
        "vantage.unhealthy", f"{judgement.evidence}; but the vantage failed its re-check: {reason}"
    )


def _first_failure(obs: UrlObservation) -> str:
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


# --- the run ------------------------------------------------------------------------------------------


async def run_audit(
    config: Config,
    store: Store,
    observer: AuditObserver | None = None,
    *,
    provider_ids: Sequence[str] = (),
    out_dir: Path | None = None,
    lists: ListSet | None = None,
    resume: RunInfo | None = None,
    stop: asyncio.Event | None = None,
    drain_seconds: float = 5.0,
) -> AuditResult:
    """Audit, storing each judgement as it completes.

    `resume`: an unfinished run of this store (see `find_unfinished`) to continue: pairs already stored are
    not measured again, and the finished run looks as if it had never been interrupted.
    `stop`: when set (SIGTERM/SIGINT), no new URL is started; measurements in flight get `drain_seconds` to
    finish, then are abandoned; the run is stored and reported as partial.
    """
    observer = observer or NullObserver()
    hasher_for(config)  # a missing URL-hash key stops the run here, before any probing
    lists = lists if lists is not None else read_lists(config.lists)
    entries = audited_entries(config, lists)
    done: dict[str, set[str]] = {}
    if resume is not None:
        if resume.config_digest != config_digest(config):
            raise UsageError(
                f"run {resume.run_id} was started with another configuration: it cannot be resumed with this "
                "one (run without --resume to start a new run)"
            )
        provider_ids = [h.provider_id for h in store.providers(resume.run_id)] or list(provider_ids)
        run = replace(resume, status="running", finished_at=None)
        done = {pid: store.measured_urls(run.run_id, pid) for pid in provider_ids}
    else:
        started = dt.datetime.now(dt.UTC).replace(microsecond=0)
        run = RunInfo(new_run_id(started), started, config.province, config_digest=config_digest(config))
    kit = build_toolkit(config, provider_ids)
    try:
        store.begin_run(run)
        provider_cfgs = [p for p in config.providers if p.id in kit.providers]
        todo = [e for e in entries if any(e.url not in done.get(p.id, ()) for p in provider_cfgs)]
        observer.run_started(run, len(todo), [p.id for p in provider_cfgs])

        control_ok, control_checks, canary_obs = await check_control(kit)
        probe_name = _health_probe_name(config, entries)
        health: dict[str, ProviderHealth] = {}

        async def check(p) -> None:  # type: ignore[no-untyped-def]
            if not control_ok:
                measured, reason, checks = False, "control vantage cannot reach the canaries: no verdict possible", []
            else:
                measured, reason, checks = await check_provider(kit, p.id, canary_obs, probe_name)
            h = ProviderHealth(run.run_id, p.id, p.name, p.asn, measured, reason, tuple(control_checks + checks))
            health[p.id] = h

        await asyncio.gather(*(check(p) for p in provider_cfgs))
        for p in provider_cfgs:  # in config order
            store.record_provider(health[p.id])
            observer.provider_checked(health[p.id])
        store.flush()

        healthy = [p.id for p in provider_cfgs if health[p.id].measured]
        monitors = {pid: HealthMonitor(kit, pid, canary_obs, probe_name) for pid in healthy}
        unhealthy = [p.id for p in provider_cfgs if not health[p.id].measured]
        limit = asyncio.Semaphore(config.concurrency)
        ordinal = {e.url: i for i, e in enumerate(entries)}  # CSV rows follow the lists' order

        async def one_url(entry: ListEntry) -> None:
            wanted = [pid for pid in healthy if entry.url not in done.get(pid, ())]
            control_obs: UrlObservation | None = None
            content = not is_sensitive(config, entry)
            if wanted:
                try:
                    async with limit:
                        control_obs = await measure_url(kit.control, entry.url, content=content)
                except Exception as exc:  # noqa: BLE001 - a bug on one URL must not end the night's run
                    for pid in wanted:
                        record(pid, entry, _internal_error(exc, "control"), None)
                    return
                store.record_control(run.run_id, entry.url, control_obs)

            async def at(pid: str) -> None:
                assert control_obs is not None
                try:
                    async with limit:
                        obs = await measure_url(kit.providers[pid], entry.url, control_obs, content=content)
                    judgement = judge(obs, control_obs, kit.dns_fingerprint(pid), private_ok=config.allow_private_destinations)
                    judgement = await confirm_silence(judgement, monitors[pid], obs)
                except Exception as exc:  # noqa: BLE001 - recorded as inconclusive, the run goes on
                    record(pid, entry, _internal_error(exc, pid), None)
                    return
                record(pid, entry, judgement, obs)

            await asyncio.gather(*(at(pid) for pid in wanted))
            for pid in unhealthy:
                if entry.url not in done.get(pid, ()):
                    record(pid, entry, inconclusive("provider.not_measured", f"provider not measured: {health[pid].reason}"), None)

        def record(pid: str, entry: ListEntry, judgement: Judgement, obs: UrlObservation | None) -> None:
            rec = MeasurementRecord(run.run_id, pid, entry, judgement, dt.datetime.now(dt.UTC), obs)
            store.record_measurement(rec, ordinal=ordinal[entry.url])
            observer.measured(rec)

        completed = await _bounded_gather(
            # twice the probe limit in URLs: a URL waiting on something that holds no probe slot (a vantage
            # re-check, its control) must not leave a slot idle (BENCHMARKS finding 6)
            (one_url(e) for e in todo), max(8, 2 * config.concurrency), stop, drain_seconds
        )
        status = "complete" if completed else "partial"
        finished = dt.datetime.now(dt.UTC).replace(microsecond=0)
        store.finish_run(run.run_id, finished, status)
        store.flush()
        run = replace(run, status=status, finished_at=finished)
        healths = [health[p.id] for p in provider_cfgs]
        analysis = analyse_run(store, run.run_id, config)
        scores = list(analysis.scores)
        paths: tuple[Path, ...] = ()
        if out_dir is not None:
            paths = write_run_csvs(
                out_dir, run, healths, lambda: hidden(store.iter_measurements(run.run_id), config), scores,
                partial=not completed, extras=summary_extras(analysis),
            )
        observer.run_finished(run, scores)
        return AuditResult(run, tuple(healths), tuple(scores), lists, paths)
    finally:
        await kit.close()


def _internal_error(exc: Exception, where: str) -> Judgement:
    """A bug met while measuring one URL: inconclusive, with what it was, so it can be reported and fixed."""
    import traceback

    frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    at = f" at {Path(frame.filename).name}:{frame.lineno}" if frame else ""
    return inconclusive("internal.error", f"internal error measuring at {where}: {type(exc).__name__}{at} (a bug: please report)")


def analyse_run(store: Store, run_id: str, config: Config, **options):  # type: ignore[no-untyped-def]
    """Scores, trends, SLA and regressions of a stored run, as the config defines them (sensitive URLs
    hashed in the findings when asked)."""
    from auditor.analysis import analyse

    return analyse(
        store, run_id, grace_hours=config.grace_hours, timezone=config.timezone,
        must_block=config.must_block, must_allow=config.must_allow, redact=redactor(config), **options,
    )


def audited_entries(config: Config, lists: ListSet) -> list[ListEntry]:
    """The list entries, then the must-block and must-allow URLs that no list holds (measured every run)."""
    entries = list(lists.entries)
    seen = {e.url for e in entries}
    for name, urls in (("must-block", config.must_block), ("must-allow", config.must_allow)):
        for i, url in enumerate(urls):
            if url not in seen:
                seen.add(url)
                entries.append(ListEntry(url=url, host=normalise_url(url).host, list_name=name, line=i + 1))
    return entries


def find_unfinished(store: Store) -> RunInfo | None:
    """The latest run, if it did not complete (killed, or stopped by a signal)."""
    runs = store.list_runs(limit=1)
    return runs[0] if runs and runs[0].status in ("running", "partial") else None


async def _bounded_gather(
    coros: Iterable, limit: int, stop: asyncio.Event | None = None, drain_seconds: float = 5.0  # type: ignore[type-arg]
) -> bool:
    """Run coroutines with at most `limit` in flight, without creating them all up front. Returns False when
    `stop` was set before all of them ran to completion."""
    pending: set[asyncio.Task] = set()  # type: ignore[type-arg]
    stopping = asyncio.ensure_future(stop.wait()) if stop is not None else None

    def settle(finished: set) -> None:  # type: ignore[type-arg]
        for t in finished:
            if t is not stopping:
                t.result()

    try:
        for coro in coros:
            while len(pending) >= limit and not (stop and stop.is_set()):
                done, pending = await asyncio.wait(
                    pending | ({stopping} if stopping else set()), return_when=asyncio.FIRST_COMPLETED
                )
                pending.discard(stopping)  # type: ignore[arg-type]
                settle(done)
            if stop is not None and stop.is_set():
                coro.close()  # never started
                break
            pending.add(asyncio.ensure_future(coro))
        else:
            while pending and not (stop and stop.is_set()):
                done, pending = await asyncio.wait(
                    pending | ({stopping} if stopping else set()), return_when=asyncio.FIRST_COMPLETED
                )
                pending.discard(stopping)  # type: ignore[arg-type]
                settle(done)
            if not pending:
                return True
        # stopping: give what is in flight a few seconds, then abandon it (it is not stored)
        if pending:
            done, pending = await asyncio.wait(pending, timeout=drain_seconds)
            settle(done)
            for t in pending:
                t.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        return False
    finally:
        if stopping is not None:
            stopping.cancel()


def _health_probe_name(config: Config, entries: Sequence[ListEntry]) -> str:
    """A name to ask each resolver, to see that it answers at all (any rcode but REFUSED counts)."""
    for url in config.canaries:
        return normalise_url(url).host
    return entries[0].host if entries else "example.com"


# --- one provider by hand -----------------------------------------------------------------------------


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
    checks: tuple[str, ...]
    results: tuple[UrlCheck, ...]


async def check_provider_urls(
    config: Config, provider_id: str, urls: Sequence[str], sensitive: frozenset[str] | set[str] = frozenset()
) -> ProviderCheck:
    """What an analyst runs by hand: health, then every URL at control and at the provider, judged.
    The URLs are measured even when the provider is unhealthy, so the analyst sees why; the judgement then
    says it would not count."""
    kit = build_toolkit(config, [provider_id])
    try:
        v = kit.providers[provider_id]
        control_ok, control_checks, canary_obs = await check_control(kit)
        if control_ok:
            measured, reason, checks = await check_provider(kit, provider_id, canary_obs, _health_probe_name(config, [normalise_url(u) for u in urls[:1]]))
        else:
            measured, reason, checks = False, "control vantage cannot reach the canaries: no verdict possible", []

        limit = asyncio.Semaphore(config.concurrency)  # every listed URL may be asked for: stay within limits

        async def one(url: str) -> UrlCheck:
            content = url not in sensitive
            async with limit:
                control_obs = await measure_url(kit.control, url, content=content)
                obs = await measure_url(v, url, control_obs, content=content)
            j = judge(obs, control_obs, kit.dns_fingerprint(provider_id), private_ok=kit.config.allow_private_destinations)
            if not measured:
                j = inconclusive("provider.not_measured", f"provider not measured: {reason} (would be: {j.verdict}, {j.rule})")
            return UrlCheck(url, control_obs, obs, j)

        results = await asyncio.gather(*(one(u) for u in urls))
        return ProviderCheck(provider_id, v.label, measured, reason, tuple(control_checks + checks), tuple(results))
    finally:
        await kit.close()
