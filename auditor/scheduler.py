"""The run: check every vantage's health, then measure each listed URL once at control and at every healthy
provider beside it, judge, and store each judgement as it completes.

Scoring and writing outputs are the audit's next steps (auditor.audit): nothing here writes a file or prints.
Progress goes to an observer.

Limits: at most `config.concurrency` URL measurements at once over all vantages (each probe step of a
measurement holds at most one connection), per-resolver and per-destination limits inside each vantage
(auditor.limits), and at most twice `concurrency` URLs in flight, created as they start.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets
import traceback
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from auditor.config import Config, config_digest
from auditor.confirm import VantageMonitor, confirm_blocked
from auditor.errors import UsageError
from auditor.health import ControlHealth, check_control, check_provider, resolver_probe_name
from auditor.lists import ListSet
from auditor.models import Judgement, ListEntry, MeasurementRecord, ProviderHealth, RunInfo
from auditor.observations import UrlObservation
from auditor.progress import AuditObserver, NullObserver
from auditor.sensitive import is_sensitive
from auditor.store import Store
from auditor.toolkit import ProbeFunctions, Toolkit, build_toolkit
from auditor.urls import normalise_url
from auditor.verdict import inconclusive, judge


@dataclass(frozen=True)
class MeasuredRun:
    """A run whose measurements are stored: complete, or partial when it was stopped."""

    run: RunInfo
    health: tuple[ProviderHealth, ...]  # in config order

    @property
    def completed(self) -> bool:
        return self.run.status == "complete"


async def measure_run(
    config: Config,
    store: Store,
    entries: Sequence[ListEntry],
    observer: AuditObserver | None = None,
    *,
    provider_ids: Sequence[str] = (),
    resume: RunInfo | None = None,
    stop: asyncio.Event | None = None,
    drain_seconds: float = 5.0,
    probes: ProbeFunctions | None = None,
    measure: MeasureTodo | None = None,
) -> MeasuredRun:
    """Measure `entries` at every configured provider (only `provider_ids` when given), storing as it goes.

    `resume`: an unfinished run of this store to continue: pairs already stored are not measured again.
    `stop`: when set, no new URL is started; URLs in flight get `drain_seconds`, then are abandoned (not
    stored); the run is stored as partial. `probes`: the probe functions (fakes in tests). `measure`: how
    the entries are measured after the health checks (default: in this process; auditor.workers spreads
    them over processes)."""
    run, provider_ids, stored = start_or_resume(config, store, provider_ids, resume)
    kit = build_toolkit(config, provider_ids, probes)
    try:
        scheduler = RunScheduler(config, store, observer or NullObserver(), kit, run, entries, stored)
        return await scheduler.run(stop, drain_seconds, measure)
    finally:
        await kit.close()


def start_or_resume(
    config: Config, store: Store, provider_ids: Sequence[str], resume: RunInfo | None
) -> tuple[RunInfo, Sequence[str], Mapping[str, set[str]]]:
    """The run to store into, the providers it measures, and the URLs each of them already has stored."""
    if resume is None:
        started = dt.datetime.now(dt.UTC).replace(microsecond=0)
        return RunInfo(new_run_id(started), started, config.province, config_digest=config_digest(config)), provider_ids, {}
    if resume.config_digest != config_digest(config):
        raise UsageError(
            f"run {resume.run_id} was started with another configuration: it cannot be resumed with this "
            "one (run without --resume to start a new run)"
        )
    provider_ids = [h.provider_id for h in store.providers(resume.run_id)] or list(provider_ids)
    stored = {pid: store.measured_urls(resume.run_id, pid) for pid in provider_ids}
    return replace(resume, status="running", finished_at=None), provider_ids, stored


def new_run_id(now: dt.datetime) -> str:
    return now.strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(2)


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


class RecordSink(Protocol):
    """Where measured pairs go: the store (auditor.store.Store is one), or a worker's pipe to the parent
    process that writes the store (auditor.workers)."""

    def record_measurement(self, rec: MeasurementRecord, *, ordinal: int | None = None) -> None: ...
    def record_control(self, run_id: str, url: str, observation: UrlObservation) -> None: ...


# How the entries still to measure, after the health checks, are measured: in this process by default
# (RunScheduler.measure_here), or spread over worker processes (auditor.workers.WorkerPool). Returns False
# when `stop` ended it early.
MeasureTodo = Callable[["RunScheduler", Sequence[ListEntry], "asyncio.Event | None", float], Awaitable[bool]]


class RunScheduler:
    """One run's measurements: `run()` checks health, measures every entry not stored yet, finishes the run."""

    def __init__(
        self,
        config: Config,
        store: Store,
        observer: AuditObserver,
        kit: Toolkit,
        run: RunInfo,
        entries: Sequence[ListEntry],
        stored: Mapping[str, set[str]],
    ) -> None:
        self.config, self.store, self.observer, self.kit, self.run_info = config, store, observer, kit, run
        self.entries = entries
        self.stored = stored  # provider id -> URLs stored before this process started (resume)
        self.providers = [p for p in config.providers if p.id in kit.providers]  # in config order
        self.ordinal = {e.url: i for i, e in enumerate(entries)}  # CSV rows follow the lists' order
        self.health: dict[str, ProviderHealth] = {}
        self.control: ControlHealth | None = None  # set by check_health
        self.probe_name = ""

    async def run(
        self, stop: asyncio.Event | None = None, drain_seconds: float = 5.0, measure: MeasureTodo | None = None
    ) -> MeasuredRun:
        self.store.begin_run(self.run_info)
        provider_ids = [p.id for p in self.providers]
        todo = [e for e in self.entries if any(e.url not in self.stored.get(pid, ()) for pid in provider_ids)]
        self.observer.run_started(self.run_info, len(todo), provider_ids)
        await self.check_health()
        completed = await (measure or RunScheduler.measure_here)(self, todo, stop, drain_seconds)
        return self.finish(completed)

    async def check_health(self) -> None:
        """Control, then every provider at once; stored and reported in config order."""
        control = await check_control(self.kit)
        probe_name = resolver_probe_name(self.config.canaries, (e.host for e in self.entries))
        results = await asyncio.gather(*(check_provider(self.kit, p.id, control, probe_name) for p in self.providers))
        for p, result in zip(self.providers, results, strict=True):
            checks = tuple(str(c) for c in (*control.checks, *result.checks))
            health = ProviderHealth(self.run_info.run_id, p.id, p.name, p.asn, result.measured, result.reason, checks)
            self.health[p.id] = health
            self.store.record_provider(health)
            self.observer.provider_checked(health)
        self.store.flush()
        self.control, self.probe_name = control, probe_name

    async def measure_here(self, todo: Sequence[ListEntry], stop: asyncio.Event | None, drain_seconds: float) -> bool:
        """Measure `todo` in this process, recording into the store."""
        assert self.control is not None, "check_health() first"
        health = tuple(self.health[p.id] for p in self.providers)
        measurer = EntryMeasurer(self.config, self.store, self.observer, self.kit, self.run_info, health,
                                 self.control, self.probe_name, self.stored, self.ordinal)
        return await measurer.measure_all(todo, stop, drain_seconds)

    def finish(self, completed: bool) -> MeasuredRun:
        status = "complete" if completed else "partial"
        finished = dt.datetime.now(dt.UTC).replace(microsecond=0)
        self.store.finish_run(self.run_info.run_id, finished, status)
        self.store.flush()
        run = replace(self.run_info, status=status, finished_at=finished)
        return MeasuredRun(run, tuple(self.health[p.id] for p in self.providers))


class EntryMeasurer:
    """Measures list entries once the health checks are done: each URL at control once, then at every
    healthy provider beside it; judges, confirms and records each pair into `sink`. The same code runs in
    the run's own process and in each worker process (auditor.workers)."""

    def __init__(
        self,
        config: Config,
        sink: RecordSink,
        observer: AuditObserver,
        kit: Toolkit,
        run: RunInfo,
        health: Sequence[ProviderHealth],  # in config order
        control: ControlHealth,
        probe_name: str,
        stored: Mapping[str, set[str]],
        ordinal: Mapping[str, int],
    ) -> None:
        self.config, self.sink, self.observer, self.kit, self.run_info = config, sink, observer, kit, run
        self.health = {h.provider_id: h for h in health}
        self.healthy = [h.provider_id for h in health if h.measured]
        self.unhealthy = [h.provider_id for h in health if not h.measured]
        self.stored, self.ordinal = stored, ordinal
        self.probe_slots = asyncio.Semaphore(config.concurrency)
        self.monitors = {pid: VantageMonitor(kit, pid, control, probe_name) for pid in self.healthy}

    async def measure_all(self, todo: Sequence[ListEntry], stop: asyncio.Event | None, drain_seconds: float) -> bool:
        # twice the probe limit in URLs: a URL waiting on something that holds no probe slot (a vantage
        # re-check, its control) must not leave a slot idle (BENCHMARKS finding 6)
        in_flight = max(8, 2 * self.config.concurrency)
        return await bounded_gather((self.measure_entry(e) for e in todo), in_flight, stop, drain_seconds)

    def is_stored(self, provider_id: str, entry: ListEntry) -> bool:
        return entry.url in self.stored.get(provider_id, ())

    async def measure_entry(self, entry: ListEntry) -> None:
        """One URL: at control once, then at every healthy provider beside it; the others get no verdict."""
        wanted = [pid for pid in self.healthy if not self.is_stored(pid, entry)]
        content = not is_sensitive(self.config, entry)
        if wanted:
            control = await self.measure_control(entry, wanted, content)
            if control is not None:
                await asyncio.gather(*(self.measure_at(pid, entry, control, content) for pid in wanted))
        for pid in self.unhealthy:
            if not self.is_stored(pid, entry):
                reason = f"provider not measured: {self.health[pid].reason}"
                self.record(pid, entry, inconclusive("provider.not_measured", reason), None)

    async def measure_control(self, entry: ListEntry, wanted: Sequence[str], content: bool) -> UrlObservation | None:
        try:
            async with self.probe_slots:
                control = await self.kit.probes.measure_url(self.kit.control, entry.url, content=content)
        except Exception as exc:  # noqa: BLE001 - a bug on one URL must not end the night's run
            for pid in wanted:
                self.record(pid, entry, internal_error(exc, "control"), None)
            return None
        self.sink.record_control(self.run_info.run_id, entry.url, control)
        return control

    async def measure_at(self, provider_id: str, entry: ListEntry, control: UrlObservation, content: bool) -> None:
        monitor = self.monitors[provider_id]
        try:
            if not await monitor.usable():  # the vantage died under an earlier URL and has not come back
                self.record(provider_id, entry, monitor.down_judgement(), None)
                return
            async with self.probe_slots:
                obs = await self.kit.probes.measure_url(self.kit.providers[provider_id], entry.url, control, content=content)
            failed_at = asyncio.get_running_loop().time()
            judgement = judge(obs, control, self.kit.dns_fingerprint(provider_id),
                              private_ok=self.config.allow_private_destinations)
            if obs.vantage_failure:
                monitor.mark_down(obs.vantage_failure)
            judgement = await confirm_blocked(judgement, obs, self.kit, monitor, failed_at, content=content,
                                              control_slot=self.probe_slots)
        except Exception as exc:  # noqa: BLE001 - recorded as inconclusive, the run goes on
            self.record(provider_id, entry, internal_error(exc, provider_id), None)
            return
        self.record(provider_id, entry, judgement, obs)

    def record(self, provider_id: str, entry: ListEntry, judgement: Judgement, obs: UrlObservation | None) -> None:
        rec = MeasurementRecord(self.run_info.run_id, provider_id, entry, judgement, dt.datetime.now(dt.UTC), obs)
        self.sink.record_measurement(rec, ordinal=self.ordinal[entry.url])
        self.observer.measured(rec)


def internal_error(exc: Exception, where: str) -> Judgement:
    """A bug met while measuring one URL: inconclusive, with what it was, so it can be reported and fixed."""
    frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    at = f" at {Path(frame.filename).name}:{frame.lineno}" if frame else ""
    return inconclusive("internal.error", f"internal error measuring at {where}: {type(exc).__name__}{at} (a bug: please report)")


async def bounded_gather(
    coros: Iterable[Coroutine[Any, Any, None]], limit: int, stop: asyncio.Event | None = None, drain_seconds: float = 5.0
) -> bool:
    """Run coroutines with at most `limit` in flight, without creating them all up front. Returns False when
    `stop` was set before all of them ran to completion: then no new one starts, those in flight get
    `drain_seconds`, and what is still running after that is cancelled."""
    loop = asyncio.get_running_loop()
    stopping: asyncio.Future[Any] = asyncio.ensure_future(stop.wait()) if stop is not None else loop.create_future()
    pending: set[asyncio.Future[None]] = set()
    try:
        for coro in coros:
            while len(pending) >= limit and not _stopped(stop):
                await _settle_one(pending, stopping)
            if _stopped(stop):
                coro.close()  # never started
                break
            pending.add(asyncio.ensure_future(coro))
        else:
            while pending and not _stopped(stop):
                await _settle_one(pending, stopping)
            if not pending:
                return True
        if pending:
            done, abandoned = await asyncio.wait(pending, timeout=drain_seconds)
            for task in done:
                task.result()
            for task in abandoned:
                task.cancel()
            await asyncio.gather(*abandoned, return_exceptions=True)
        return False
    finally:
        stopping.cancel()


def _stopped(stop: asyncio.Event | None) -> bool:
    return stop is not None and stop.is_set()


async def _settle_one(pending: set[asyncio.Future[None]], stopping: asyncio.Future[Any]) -> None:
    """Wait until a task in `pending` finishes (or `stopping` does); re-raise what a finished task raised."""
    done, _ = await asyncio.wait({*pending, stopping}, return_when=asyncio.FIRST_COMPLETED)
    for task in done:
        if task is not stopping:
            pending.discard(task)
            task.result()
