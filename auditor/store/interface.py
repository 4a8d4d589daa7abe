"""The store seam: where runs, provider health, judged measurements and control observations are kept.

One small interface here, one module per implementation (`sqlite.py` today; a server database would be
another module next to it, registered in `auditor.store.open_store`). No SQL or driver detail leaks through
this interface: callers see only the records of `auditor.models` and `auditor.observations` (typed and
frozen: observations are read back as the objects that were recorded, through `auditor.codec`).

Durability contract for writers: `record_measurement` and `record_control` may buffer, but a buffered row
must reach the database within about a second (and at once on `flush()`, `finish_run()` and `close()`), so a
run killed by cron or the OOM killer keeps everything it measured except the last second or so.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Protocol, Self, runtime_checkable

from auditor.models import MeasurementRecord, ProviderHealth, RunInfo, Verdict
from auditor.observations import UrlObservation

RUN_STATUSES = ("running", "complete", "partial")
FINAL_RUN_STATUSES = ("complete", "partial")


@dataclass(frozen=True)
class VerdictCount:
    """How many of a run's measurements share a provider, list, category, date added and verdict."""

    provider_id: str
    list_name: str
    category_code: str
    category_description: str
    date_added: dt.date | None
    verdict: Verdict
    count: int


@dataclass(frozen=True)
class FirstBlocked:
    """The first run in which a (provider, URL) was judged blocked."""

    provider_id: str
    url: str
    date_added: dt.date | None  # the entry's date in the run asked about
    run_id: str
    started_at: dt.datetime  # aware, UTC


@dataclass(frozen=True)
class PairVerdict:
    run_id: str
    provider_id: str
    url: str
    verdict: Verdict


@runtime_checkable
class Store(Protocol):
    """Everything the engine, the scorer and the reports need from persistent storage.

    Implementations raise `auditor.errors.StoreError` when the database is unusable (cannot be opened, is
    from a newer version of the tool, a write fails). Reads see the store's own buffered writes.
    """

    # -- writing a run -------------------------------------------------------------------------------
    def begin_run(self, run: RunInfo) -> None:
        """Record a new run (status "running"). Calling it again for the same run (same run_id and
        started_at) resumes it; a different run with an existing run_id is a StoreError."""
        ...

    def finish_run(self, run_id: str, finished_at: dt.datetime, status: str) -> None:
        """Flush, then mark the run `complete` or `partial` with its finish time."""
        ...

    def record_provider(self, health: ProviderHealth) -> None:
        """Insert or update one provider's health in a run; the first insert fixes its position."""
        ...

    def record_measurement(self, rec: MeasurementRecord, *, ordinal: int | None = None) -> None:
        """Buffer one judged (provider, URL) pair; re-recording a pair replaces it.

        `ordinal` is the entry's position in the run's list sequence (what "list order" means when several
        list files are read); without it, measurements are ordered by list name, then line.
        """
        ...

    def record_control(self, run_id: str, url: str, observation: UrlObservation) -> None:
        """Buffer the shared control measurement of `url` in a run; re-recording replaces it."""
        ...

    def flush(self) -> None:
        """Write every buffered row now."""
        ...

    def close(self) -> None:
        """Flush and release the database. Idempotent."""
        ...

    # -- reading ---------------------------------------------------------------------------------------
    def list_runs(self, limit: int = 20) -> list[RunInfo]:
        """The most recent runs, newest (by started_at) first."""
        ...

    def get_run(self, run_id: str) -> RunInfo | None: ...

    def latest_run_id(self) -> str | None: ...

    def providers(self, run_id: str) -> list[ProviderHealth]:
        """The run's providers in the order they were first recorded."""
        ...

    def iter_measurements(self, run_id: str, provider_id: str | None = None) -> Iterator[MeasurementRecord]:
        """Stream a run's measurements: by provider (insertion order), then list order."""
        ...

    def measured_urls(self, run_id: str, provider_id: str) -> set[str]:
        """URLs already judged for a provider in a run (to resume a killed run)."""
        ...

    def control_observation(self, run_id: str, url: str) -> UrlObservation | None:
        """The control measurement of `url` in a run, as recorded (with the records' observations, what a
        verdict rule needs to judge the run again)."""
        ...

    # -- reading across runs (trends, time to block, regressions: auditor.analysis) -------------------
    def runs_before(self, run_id: str, limit: int) -> list[RunInfo]:
        """Up to `limit` runs started before `run_id` (which must exist), newest first."""
        ...

    def runs_since(self, since: dt.datetime) -> list[RunInfo]:
        """Every run started at or after `since` (aware), oldest first."""
        ...

    def verdict_counts(self, run_id: str, exclude_urls: frozenset[str] = frozenset()) -> list[VerdictCount]:
        """A run's measurements counted by provider, list, category, date added and verdict, leaving out
        the URLs in `exclude_urls`: enough to score a run without reading every row."""
        ...

    def first_blocked(self, run_id: str) -> Iterator[FirstBlocked]:
        """For every (provider, URL) measured in `run_id` that was ever judged blocked in a run started no
        later than it: the earliest such run."""
        ...

    def earlier_verdicts(
        self, run_id: str, verdict: Verdict, earlier_run_ids: Sequence[str]
    ) -> Iterator[PairVerdict]:
        """For every (provider, URL) with `verdict` in `run_id`: its verdicts in `earlier_run_ids`."""
        ...

    # -- context manager: `with open_store(url) as store:` closes (and so flushes) on the way out ------
    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
