"""Every core: after the health checks, the entries still to measure are spread over N worker processes; the
run's own process stays the one store writer and the one observer.

    measured = await measure_run(config, store, entries, observer, measure=WorkerPool(2))

- The parent checks health once (control and every provider), stores and reports it, as a one-process run
  does. Then entry i goes to worker i % N, so every worker gets a similar mix of the lists.
- A worker is a "spawn" process (never a fork of a process whose event loop runs). It builds its own
  toolkit from the config, takes the parent's health results (which providers are measured, the resolvers
  that answered, control's canary observations for the vantage re-checks) and measures its entries with the
  code a one-process run uses (auditor.scheduler.EntryMeasurer). Each judged pair and each control
  observation goes back over a pipe, encoded by auditor.codec; the parent stores it with the entry's
  ordinal (CSV rows follow the lists' order) and reports it to the observer.
- Politeness is per vantage for the whole run, not per process: the N workers share the limits, each with
  resolver_qps / N, per_destination // N and concurrency // N (at least 1; 0, no limit, stays 0).
- Stop: the parent's stop event reaches the workers; each drains for `drain_seconds` and exits; the run is
  partial and --resume measures the rest. A worker that dies (a bug, the OOM killer): the pairs it had not
  sent are recorded as `internal.error`, never lost silently, and the run goes on. A worker whose parent
  died stops: its pipe closes.

Known differences from one process: what a vantage learns within the run (an address that never answers a
connect, auditor.limits) is learned by each worker on its own, so the evidence's count of silent connects
covers that worker's names. And, as with any "spawn" process, a script that calls `audit(workers=2)` must
do so under `if __name__ == "__main__":` (the worker imports the main module; the CLI and bench do).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import multiprocessing
import os
import signal
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from auditor import codec
from auditor.config import Config
from auditor.health import ControlHealth
from auditor.models import ListEntry, MeasurementRecord, ProviderHealth, RunInfo
from auditor.observations import UrlObservation
from auditor.progress import NullObserver
from auditor.scheduler import EntryMeasurer, RunScheduler
from auditor.toolkit import ProbeFunctions, build_toolkit
from auditor.verdict import inconclusive

STOP = b"stop"  # parent -> worker: stop starting URLs, drain, exit
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def default_workers() -> int:
    """The machine's cores this process may use (what `auditor run --workers` defaults to)."""
    count = getattr(os, "process_cpu_count", None)  # Python 3.13+: honours the CPU affinity
    if count is not None:
        return int(count() or 1)
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1


def worker_config(config: Config, workers: int) -> Config:
    """One worker's share of the run's limits: together the N workers keep the config's politeness."""
    limits = config.limits
    share = replace(
        limits,
        resolver_qps=limits.resolver_qps / workers,
        per_destination=max(1, limits.per_destination // workers) if limits.per_destination else 0,
    )
    return replace(config, concurrency=max(1, config.concurrency // workers), limits=share)


# --- what crosses the pipes ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ProviderResolvers:
    """The resolvers of a provider that answered its health check (the others are dropped for the run)."""

    provider_id: str
    resolvers: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class WorkerHealth:
    """The parent's health results, as each worker needs them (encoded by auditor.codec)."""

    health: tuple[ProviderHealth, ...]  # in config order
    control: ControlHealth
    probe_name: str
    resolvers: tuple[ProviderResolvers, ...]


@dataclass(frozen=True)
class WorkerJob:
    """What a worker is started with (pickled by multiprocessing): its entries and what it measures them with."""

    index: int  # 1-based, as in the process name
    workers: int
    config: Config
    provider_ids: tuple[str, ...]
    run: RunInfo
    entries: tuple[ListEntry, ...]
    ordinals: tuple[int, ...]  # each entry's position in the run's lists
    stored: dict[str, set[str]]  # provider id -> URLs of these entries stored before (resume)
    health: str  # a WorkerHealth, auditor.codec text
    drain_seconds: float


@dataclass(frozen=True)
class WorkerMessage:
    """Worker -> parent, one of: `record` (a judged pair, at `ordinal`); `control` (control's observation of
    `url`); `done` (the worker's entries are measured, or it stopped: `completed` says which); `failure`
    (the worker hit a bug outside any URL and exits)."""

    record: MeasurementRecord | None = None
    ordinal: int = 0
    url: str = ""
    control: UrlObservation | None = None
    done: bool = False
    completed: bool = False
    failure: str = ""


# --- the parent -----------------------------------------------------------------------------------------


@dataclass
class _Link:
    """The parent's side of one worker."""

    index: int
    process: multiprocessing.process.BaseProcess
    conn: Connection
    entries: tuple[ListEntry, ...]
    ended: asyncio.Future[None]
    received: set[tuple[str, str]] = field(default_factory=set)  # (provider id, url) recorded
    done: bool = False
    completed: bool = False
    failure: str = ""


class WorkerPool:
    """`measure` for auditor.scheduler.measure_run: the entries left after the health checks, measured by
    `workers` processes. One worker (or one entry) is measured in this process, as without a pool."""

    def __init__(self, workers: int, *, grace_seconds: float = 5.0) -> None:
        self.workers = workers
        self.grace_seconds = grace_seconds  # after the drain, before a worker that has not exited is killed

    async def __call__(
        self, scheduler: RunScheduler, todo: Sequence[ListEntry], stop: asyncio.Event | None, drain_seconds: float
    ) -> bool:
        n = min(self.workers, len(todo))
        if n <= 1:
            return await scheduler.measure_here(todo, stop, drain_seconds)
        if scheduler.kit.probes != ProbeFunctions():
            raise ValueError("worker processes measure with the real probes: fake probes need workers=1")
        links = self._start(scheduler, todo, n, drain_seconds)
        try:
            stopped = await self._wait(links, stop, drain_seconds)
        finally:
            for link in links:
                _end(link)
        for link in links:
            if not link.done and not stopped:
                self._record_lost(scheduler, link)
        return not stopped and all(link.completed or not link.done for link in links)

    def _start(self, scheduler: RunScheduler, todo: Sequence[ListEntry], n: int, drain: float) -> list[_Link]:
        health = _worker_health(scheduler)
        ctx = multiprocessing.get_context("spawn")
        loop = asyncio.get_running_loop()
        links = []
        for i in range(n):
            mine = tuple(todo[i::n])
            urls = {e.url for e in mine}
            stored = {pid: urls & set(done) for pid, done in scheduler.stored.items()}
            job = WorkerJob(i + 1, n, scheduler.config, tuple(p.id for p in scheduler.providers), scheduler.run_info,
                            mine, tuple(scheduler.ordinal[e.url] for e in mine), stored, health, drain)
            parent_end, child_end = ctx.Pipe()
            process = ctx.Process(target=worker_main, args=(job, child_end), name=f"auditor-worker-{i + 1}",
                                  daemon=True)
            process.start()
            child_end.close()  # the parent's copy: the pipe reaches EOF when the worker exits
            link = _Link(i + 1, process, parent_end, mine, loop.create_future())
            loop.add_reader(parent_end.fileno(), self._readable, scheduler, link)
            links.append(link)
        return links

    async def _wait(self, links: Sequence[_Link], stop: asyncio.Event | None, drain_seconds: float) -> bool:
        """Until every worker has exited. True when `stop` was set before they all had."""
        ended = [link.ended for link in links]
        if stop is None:
            await asyncio.gather(*ended)
            return False
        stopping: asyncio.Future[Any] = asyncio.ensure_future(stop.wait())
        try:
            while not stop.is_set() and not all(f.done() for f in ended):
                await asyncio.wait([*ended, stopping], return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
        if all(f.done() for f in ended):
            return False
        for link in links:
            if not link.ended.done():
                try:
                    link.conn.send_bytes(STOP)
                except OSError:
                    pass  # it is exiting already
        _, late = await asyncio.wait(ended, timeout=drain_seconds + self.grace_seconds)
        for link in links:
            if link.ended in late:
                link.process.kill()
        if late:
            await asyncio.wait(late, timeout=self.grace_seconds)
        return True

    def _readable(self, scheduler: RunScheduler, link: _Link) -> None:
        """Store and report what the worker sent (what is waiting, a bounded batch at a time)."""
        try:
            for _ in range(256):
                message = codec.decode(WorkerMessage, link.conn.recv_bytes())
                self._handle(scheduler, link, message)
                if not link.conn.poll():
                    break
        except (EOFError, OSError):  # the worker exited (or died)
            asyncio.get_running_loop().remove_reader(link.conn.fileno())
            if not link.ended.done():
                link.ended.set_result(None)

    def _handle(self, scheduler: RunScheduler, link: _Link, message: WorkerMessage) -> None:
        if message.record is not None:
            rec = message.record
            scheduler.store.record_measurement(rec, ordinal=message.ordinal)
            link.received.add((rec.provider_id, rec.entry.url))
            scheduler.observer.measured(rec)
        elif message.control is not None:
            scheduler.store.record_control(scheduler.run_info.run_id, message.url, message.control)
        elif message.done:
            link.done, link.completed = True, message.completed
        elif message.failure:
            link.failure = message.failure

    def _record_lost(self, scheduler: RunScheduler, link: _Link) -> None:
        """The pairs of a worker that died before sending them: inconclusive `internal.error`, with why."""
        code = link.process.exitcode
        how = f"exit code {code}" if code is None or code >= 0 else f"killed by {signal.Signals(-code).name}"
        cause = f": {link.failure}" if link.failure else ""
        for entry in link.entries:
            for p in scheduler.providers:
                if entry.url in scheduler.stored.get(p.id, ()) or (p.id, entry.url) in link.received:
                    continue
                judgement = inconclusive(
                    "internal.error", f"internal error: worker process {link.index} ended ({how}{cause}) before "
                    f"measuring this URL at {p.id} (please report)"
                )
                rec = MeasurementRecord(scheduler.run_info.run_id, p.id, entry, judgement, dt.datetime.now(dt.UTC))
                scheduler.store.record_measurement(rec, ordinal=scheduler.ordinal[entry.url])
                scheduler.observer.measured(rec)


def _worker_health(scheduler: RunScheduler) -> str:
    assert scheduler.control is not None, "check_health() first"
    health = tuple(scheduler.health[p.id] for p in scheduler.providers)
    resolvers = tuple(ProviderResolvers(h.provider_id, scheduler.kit.providers[h.provider_id].resolvers)
                      for h in health if h.measured)
    return codec.encode(WorkerHealth(health, scheduler.control, scheduler.probe_name, resolvers))


def _end(link: _Link) -> None:
    """Make sure the worker is gone and its pipe closed (also when the parent is cancelled)."""
    if link.process.is_alive():
        link.process.kill()
    link.process.join(timeout=5)
    if not link.conn.closed:
        asyncio.get_running_loop().remove_reader(link.conn.fileno())
        link.conn.close()


# --- the worker -----------------------------------------------------------------------------------------


class PipeSink:
    """auditor.scheduler.RecordSink for a worker: every record goes to the parent, which stores it."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def send(self, message: WorkerMessage) -> None:
        self.conn.send_bytes(codec.encode(message).encode("utf-8"))

    def record_measurement(self, rec: MeasurementRecord, *, ordinal: int | None = None) -> None:
        self.send(WorkerMessage(record=rec, ordinal=ordinal or 0))

    def record_control(self, run_id: str, url: str, observation: UrlObservation) -> None:
        self.send(WorkerMessage(url=url, control=observation))


def worker_main(job: WorkerJob, conn: Connection) -> None:
    """A worker process: measure `job.entries`, send every record to the parent, then exit."""
    sink = PipeSink(conn)
    try:
        completed = asyncio.run(_measure(job, conn, sink))
        sink.send(WorkerMessage(done=True, completed=completed))
    except (BrokenPipeError, ConnectionResetError):
        os._exit(1)  # the parent is gone: nobody to tell
    except Exception as exc:  # noqa: BLE001 - told to the parent, which records the worker's pairs as lost
        frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
        at = f" at {Path(frame.filename).name}:{frame.lineno}" if frame else ""
        try:
            sink.send(WorkerMessage(failure=f"{type(exc).__name__}{at}"))
        finally:
            os._exit(1)
    finally:
        conn.close()


async def _measure(job: WorkerJob, conn: Connection, sink: PipeSink) -> bool:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in STOP_SIGNALS:  # Ctrl-C reaches the whole process group: drain, as the parent does
        loop.add_signal_handler(sig, stop.set)
    loop.add_reader(conn.fileno(), _from_parent, conn, stop)
    config = worker_config(job.config, job.workers)
    kit = build_toolkit(config, job.provider_ids)
    try:
        health = codec.decode(WorkerHealth, job.health)
        for r in health.resolvers:
            kit.providers[r.provider_id].resolvers = r.resolvers
        ordinal: Mapping[str, int] = dict(zip((e.url for e in job.entries), job.ordinals, strict=True))
        measurer = EntryMeasurer(config, sink, NullObserver(), kit, job.run, health.health, health.control,
                                 health.probe_name, job.stored, ordinal)
        return await measurer.measure_all(job.entries, stop, job.drain_seconds)
    finally:
        loop.remove_reader(conn.fileno())
        await kit.close()


def _from_parent(conn: Connection, stop: asyncio.Event) -> None:
    try:
        conn.recv_bytes()  # the one message a parent sends: STOP
    except (EOFError, OSError):  # the parent died: stop too
        asyncio.get_running_loop().remove_reader(conn.fileno())
    stop.set()
