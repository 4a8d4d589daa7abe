"""The audit: run (measure, judge, store: auditor.scheduler), analyse the stored run, write the ministry CSVs.

`audit()` works on an open store; the nightly job around it (the lock, resume, signals) is
auditor.unattended. Nothing here prints: progress goes to an observer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from auditor.analysis import RunAnalysis, analyse
from auditor.config import Config
from auditor.lists import ListSet, read_lists
from auditor.models import ProviderHealth, ProviderScore, RunInfo
from auditor.progress import AuditObserver, NullObserver
from auditor.report.csvformat import summary_extras, write_run_csvs
from auditor.scheduler import MeasuredRun, audited_entries, measure_run
from auditor.sensitive import hasher_for, hidden, redactor
from auditor.store import Store
from auditor.toolkit import ProbeFunctions
from auditor.workers import WorkerPool


@dataclass(frozen=True)
class AuditResult:
    run: RunInfo
    health: tuple[ProviderHealth, ...]
    scores: tuple[ProviderScore, ...]
    lists: ListSet
    csv_paths: tuple[Path, ...] = ()

    @property
    def all_measured(self) -> bool:
        """Every provider measured, and no pair lost to a vantage that failed mid-run (else exit 3)."""
        return all(h.measured for h in self.health) and not any(s.vantage_lost for s in self.scores)


async def audit(
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
    probes: ProbeFunctions | None = None,
    workers: int = 1,
) -> AuditResult:
    """Audit into `store`, then score the run and write its CSVs into `out_dir` (when given).

    `resume`: an unfinished run of this store (auditor.unattended.find_unfinished) to continue: pairs
    already stored are not measured again, and the finished run looks as if it had never been interrupted.
    `stop`: when set (SIGTERM/SIGINT), no new URL is started; measurements in flight get `drain_seconds` to
    finish, then are abandoned; the run is stored and reported as partial. `workers`: processes that share
    the measuring (auditor.workers); 1 measures in this process."""
    observer = observer or NullObserver()
    hasher_for(config)  # a missing URL-hash key stops the run here, before any probing
    lists = lists if lists is not None else read_lists(config.lists)
    measured = await measure_run(
        config, store, audited_entries(config, lists), observer, provider_ids=provider_ids, resume=resume,
        stop=stop, drain_seconds=drain_seconds, probes=probes, measure=WorkerPool(workers) if workers > 1 else None,
    )
    analysis = analyse_run(store, measured.run.run_id, config)
    scores = analysis.scores
    paths = write_outputs(config, store, measured, analysis, out_dir) if out_dir is not None else ()
    observer.run_finished(measured.run, scores)
    return AuditResult(measured.run, measured.health, scores, lists, paths)


def analyse_run(store: Store, run_id: str, config: Config, *, history_runs: int = 10) -> RunAnalysis:
    """Scores, trends, SLA and regressions of a stored run, as the config defines them (sensitive URLs
    hashed in the findings when asked)."""
    return analyse(
        store, run_id, grace_hours=config.grace_hours, timezone=config.timezone, must_block=config.must_block,
        must_allow=config.must_allow, redact=redactor(config), history_runs=history_runs,
    )


def write_outputs(
    config: Config, store: Store, measured: MeasuredRun, analysis: RunAnalysis, out_dir: Path
) -> tuple[Path, ...]:
    """The ministry CSVs of the run (`.partial` ones for a partial run), sensitive URLs hashed when asked."""
    run_id = measured.run.run_id
    return write_run_csvs(
        out_dir, measured.run, measured.health, lambda: hidden(store.iter_measurements(run_id), config),
        analysis.scores, partial=not measured.completed, extras=summary_extras(analysis),
    )
