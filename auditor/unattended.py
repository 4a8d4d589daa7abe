"""The nightly job around audit() (what `auditor run` calls): one run per store at a time, resumable, and
stopped cleanly by a signal.

- The lock (auditor.runlock): a second run on the same store is refused; a lock left by a run that died
  is taken over, and the log says so.
- `resume`: the latest run of the store, if it did not complete (killed, or stopped by a signal), is
  continued; otherwise a new run starts.
- The first SIGTERM/SIGINT stops scheduling; what is in flight gets a few seconds; the run is stored and
  its CSVs written as partial.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Sequence
from pathlib import Path

from auditor.audit import AuditResult, audit
from auditor.config import Config
from auditor.lists import ListSet
from auditor.logs import EventLog
from auditor.models import RunInfo
from auditor.progress import AuditObserver
from auditor.runlock import RunLock, lock_path_for
from auditor.store import Store, open_store

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def audit_unattended(
    config: Config,
    lists: ListSet,
    observer: AuditObserver,
    log: EventLog,
    *,
    provider_ids: Sequence[str] = (),
    out_dir: Path | None = None,
    resume: bool = False,
    workers: int = 1,
) -> AuditResult:
    """Lock the store, open it, find the run to resume (when `resume`), audit until done or signalled, and
    log the CSVs written (into `out_dir`, by default the config's output_dir)."""
    with contextlib.ExitStack() as stack:
        lock_path = lock_path_for(config.store)
        if lock_path is not None:
            lock = stack.enter_context(RunLock(lock_path).acquire({"config": str(config.source or "")}))
            if lock.taken_over:
                log.warning("lock.taken_over", f"took over the lock left by a run that died ({lock.taken_over})")
        store = open_store(config.store)
        stack.callback(store.close)
        unfinished = run_to_resume(store, log) if resume else None
        result = asyncio.run(
            audit_until_signalled(config, store, observer, log, provider_ids=provider_ids,
                                  out_dir=out_dir or config.output_dir, lists=lists, resume=unfinished,
                                  workers=workers)
        )
        for path in result.csv_paths:
            log.info("run.output", f"wrote {path}", path=str(path))
        return result


def find_unfinished(store: Store) -> RunInfo | None:
    """The latest run, if it did not complete (killed, or stopped by a signal)."""
    runs = store.list_runs(limit=1)
    return runs[0] if runs and runs[0].status in ("running", "partial") else None


def run_to_resume(store: Store, log: EventLog) -> RunInfo | None:
    unfinished = find_unfinished(store)
    if unfinished is None:
        log.info("run.resume", "no unfinished run to resume: starting a new run")
    else:
        log.info("run.resume", f"resuming run {unfinished.run_id} (started {unfinished.started_at:%Y-%m-%dT%H:%M:%SZ})",
                 run_id=unfinished.run_id)
    return unfinished


async def audit_until_signalled(
    config: Config,
    store: Store,
    observer: AuditObserver,
    log: EventLog,
    *,
    provider_ids: Sequence[str],
    out_dir: Path,
    lists: ListSet,
    resume: RunInfo | None,
    workers: int = 1,
) -> AuditResult:
    """Run the audit; the first SIGTERM/SIGINT stops scheduling and lets what is in flight finish."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, _stop_on_signal, stop, log, sig.name)
    try:
        return await audit(config, store, observer, provider_ids=provider_ids, out_dir=out_dir, lists=lists,
                           resume=resume, stop=stop, workers=workers)
    finally:
        for sig in STOP_SIGNALS:
            loop.remove_signal_handler(sig)


def _stop_on_signal(stop: asyncio.Event, log: EventLog, name: str) -> None:
    if not stop.is_set():
        log.error("run.signal", f"received {name}: finishing what is in flight, then stopping")
    stop.set()
