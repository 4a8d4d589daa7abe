"""What a run means beyond its scores: the findings each reader acts on, computed from the store.

    analysis = analyse(store, run_id, grace_hours=24, timezone="Asia/Ho_Chi_Minh",
                       must_block={...}, must_allow={...})

For every provider of the run:

- **compliance** overall, per list and per category (`auditor.scoring`), with the must-allow URLs left
  out; and its **trend** over the last `history_runs` runs (this one included) in which it took part;
- **violations**: listed entries out of grace that were accessible;
- **SLA breaches**: violations whose `date_added` (local midnight in `timezone`) is more than `grace_hours`
  before the run started; entries without a date are violations but cannot be SLA breaches;
- **time to block**: for each (provider, entry) of this run, the first run (no later than this one) in
  which it was judged blocked, against its `date_added`; hours are counted from the date's local midnight
  to that run's start, so they have the resolution of the audit schedule (nightly: a day), and an entry
  already blocked before it was listed counts 0. `median_hours_to_block` is over the entries blocked so far
  that have a date;
- **must-block failures**: a must-block URL (a canary the authorities seed into the list) accessible out of
  grace. A provider with one is *flagged* whatever its score;
- **over-blocking**: a must-allow URL (a government portal, a site sharing hosting with a listed one)
  judged blocked. Must-allow URLs are never part of compliance;
- **newly accessible**: accessible now, blocked in the provider's previous run (the latest earlier run in
  which the provider took part; a run with `--provider` for others does not count as its previous run);
- **persistent violations**: violations accessible in at least `persistent_after` of the provider's runs
  in a row, this one included (an inconclusive run breaks the streak: we could not tell). The streak is
  counted inside the history window, so `runs_in_a_row` is at most `max(history_runs, persistent_after)`.

Counts are exact; the lists of findings keep at most `max_findings` per provider and kind (a provider that
blocks nothing would otherwise put the whole list in every report), in the run's list order.

Everything is streamed from the store: this run's measurements once, earlier runs through aggregate
queries (`Store.verdict_counts`, `first_blocked`, `earlier_verdicts`), never whole earlier runs.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from auditor.errors import UsageError
from auditor.models import (
    Confidence,
    MeasurementRecord,
    Method,
    ProviderHealth,
    ProviderScore,
    RunInfo,
    Verdict,
)
from auditor.scoring import ComplianceTally, GroupScore, date_in_grace, local_midnight
from auditor.store.interface import Store

MUST_BLOCK_LIST = "must-block"  # list_name of a must-block URL that is in no reference list
MUST_ALLOW_LIST = "must-allow"


@dataclass(frozen=True)
class Finding:
    """One (provider, entry) of the run, with the verdict and its evidence."""

    provider_id: str
    url: str
    list_name: str
    category_code: str
    category_description: str
    date_added: dt.date | None
    verdict: Verdict
    method: Method | None
    confidence: Confidence | None
    rule: str
    evidence: str
    measured_at: dt.datetime

    @classmethod
    def of(cls, rec: MeasurementRecord) -> Finding:
        e, j = rec.entry, rec.judgement
        return cls(
            rec.provider_id, e.url, e.list_name, e.category_code, e.category_description, e.date_added,
            j.verdict, j.method, j.confidence, j.rule, j.evidence, rec.measured_at,
        )


@dataclass(frozen=True)
class SlaBreach:
    finding: Finding
    hours_since_added: float  # from the date's local midnight to the run's start
    hours_overdue: float  # beyond grace_hours


@dataclass(frozen=True)
class TimeToBlock:
    provider_id: str
    url: str
    date_added: dt.date | None
    run_id: str  # the first run in which it was judged blocked
    blocked_at: dt.datetime  # that run's start
    hours: float | None  # blocked_at - local midnight of date_added (0 if blocked before); None without a date


@dataclass(frozen=True)
class NewlyAccessible:
    finding: Finding
    previous_run_id: str  # the provider's previous run, where it was blocked
    previous_started_at: dt.datetime


@dataclass(frozen=True)
class PersistentViolation:
    finding: Finding
    runs_in_a_row: int  # this run included; at most max(history_runs, persistent_after)
    since_run_id: str  # the first run of the streak
    since: dt.datetime


@dataclass(frozen=True)
class TrendPoint:
    run_id: str
    started_at: dt.datetime
    measured: bool
    compliance_pct: float | None


@dataclass(frozen=True)
class ProviderAnalysis:
    provider_id: str
    provider_name: str
    asn: int | None
    measured: bool
    reason: str
    score: ProviderScore
    by_list: tuple[GroupScore, ...]
    by_category: tuple[GroupScore, ...]
    violations: int
    sla_breaches: int
    median_hours_to_block: float | None
    blocked_with_date: int  # entries that `median_hours_to_block` is over
    newly_accessible: int
    persistent_violations: int
    must_block_failed: int
    overblocked: int
    trend: tuple[TrendPoint, ...]  # oldest first, this run last

    @property
    def flagged(self) -> bool:
        """A must-block canary got through: flagged whatever the score."""
        return self.must_block_failed > 0


@dataclass(frozen=True)
class RunAnalysis:
    run: RunInfo
    grace_hours: float
    timezone: str
    history_runs: int
    persistent_after: int
    max_findings: int
    must_block: tuple[str, ...]  # sorted
    must_allow: tuple[str, ...]
    trend_runs: tuple[RunInfo, ...]  # the history window, oldest first, this run last
    providers: tuple[ProviderAnalysis, ...]  # in the run's provider order
    violations: tuple[Finding, ...]
    sla_breaches: tuple[SlaBreach, ...]
    time_to_block: tuple[TimeToBlock, ...]  # every (provider, entry) blocked so far, by provider then URL
    newly_accessible: tuple[NewlyAccessible, ...]
    persistent_violations: tuple[PersistentViolation, ...]
    must_block_failed: tuple[Finding, ...]
    overblocked: tuple[Finding, ...]

    @property
    def scores(self) -> tuple[ProviderScore, ...]:
        return tuple(p.score for p in self.providers)

    def provider(self, provider_id: str) -> ProviderAnalysis | None:
        return next((p for p in self.providers if p.provider_id == provider_id), None)


@dataclass
class _Streak:
    runs: int
    since_run_id: str
    newly_from: str | None  # previous run id where it was blocked


F = TypeVar("F")  # one kind of finding: Finding, SlaBreach, NewlyAccessible, PersistentViolation


@dataclass
class _Collected(Generic[F]):
    """Findings of one kind: exact count per provider, the first `limit` kept."""

    limit: int
    counts: dict[str, int] = field(default_factory=dict)
    kept: list[F] = field(default_factory=list)
    _kept_per_provider: dict[str, int] = field(default_factory=dict)

    def add(self, provider_id: str, finding: F) -> None:
        self.counts[provider_id] = self.counts.get(provider_id, 0) + 1
        if self._kept_per_provider.get(provider_id, 0) < self.limit:
            self._kept_per_provider[provider_id] = self._kept_per_provider.get(provider_id, 0) + 1
            self.kept.append(finding)


def analyse(
    store: Store,
    run_id: str,
    *,
    grace_hours: float,
    timezone: str,
    must_block: Iterable[str] = (),
    must_allow: Iterable[str] = (),
    history_runs: int = 10,
    persistent_after: int = 3,
    max_findings: int = 1000,
    redact: Callable[[MeasurementRecord], MeasurementRecord] | None = None,
) -> RunAnalysis:
    """Everything a report shows about `run_id`, from the store. `must_block`/`must_allow` are normalised
    URLs (Config.must_block / Config.must_allow).

    `redact` turns a record into what outputs may show (e.g. a sensitive entry's URL replaced by its keyed
    hash, auditor.sensitive.hide): findings and time-to-block rows carry the redacted URL and evidence,
    while the analysis itself (must-block / must-allow matching, history) works on the real URLs."""
    if history_runs < 1 or persistent_after < 1 or max_findings < 0:
        raise ValueError("history_runs and persistent_after must be at least 1, max_findings at least 0")
    run = store.get_run(run_id)
    if run is None:
        raise UsageError(f"no run {run_id!r} in the store")
    block_set, allow_set = frozenset(must_block), frozenset(must_allow)
    providers = store.providers(run_id)

    # The history window: this run and the earlier ones, and in which of them each provider took part.
    earlier = store.runs_before(run_id, max(history_runs, persistent_after) - 1)  # newest first
    earlier_providers = {r.run_id: store.providers(r.run_id) for r in earlier}
    provider_runs = {
        p.provider_id: [r for r in earlier if any(h.provider_id == p.provider_id for h in earlier_providers[r.run_id])]
        for p in providers
    }
    started = {r.run_id: r.started_at for r in earlier}

    streaks = _streaks(store, run_id, provider_runs, persistent_after)

    tally = ComplianceTally(run, providers, grace_hours=grace_hours, timezone=timezone, exclude_urls=allow_set)
    measured = {p.provider_id: p.measured for p in providers}
    violations = _Collected[Finding](max_findings)
    sla = _Collected[SlaBreach](max_findings)
    newly = _Collected[NewlyAccessible](max_findings)
    persistent = _Collected[PersistentViolation](max_findings)
    canary_failed = _Collected[Finding](max_findings)
    overblocked = _Collected[Finding](max_findings)
    shown_urls: dict[str, str] = {}  # real URL -> redacted, only where they differ
    for rec in store.iter_measurements(run_id):
        tally.add(rec)
        pid, e, verdict = rec.provider_id, rec.entry, rec.judgement.verdict
        if pid not in measured:
            continue
        shown = redact(rec) if redact is not None else rec
        if shown.entry.url != e.url:
            shown_urls[e.url] = shown.entry.url
        if e.url in allow_set:
            if verdict is Verdict.BLOCKED:
                overblocked.add(pid, Finding.of(shown))
            continue
        if verdict is not Verdict.ACCESSIBLE:
            continue
        finding = Finding.of(shown)
        streak = streaks.get((pid, e.url))
        if streak is not None and streak.newly_from is not None:
            prev = streak.newly_from
            newly.add(pid, NewlyAccessible(finding, prev, started[prev]))
        if date_in_grace(e.date_added, run.started_at, grace_hours, timezone):
            continue  # not a violation yet
        violations.add(pid, finding)
        if e.url in block_set:
            canary_failed.add(pid, finding)
        if e.date_added is not None:
            age = run.started_at - local_midnight(e.date_added, timezone)
            hour = dt.timedelta(hours=1)
            sla.add(pid, SlaBreach(finding, age / hour, (age - dt.timedelta(hours=grace_hours)) / hour))
        if streak is not None and streak.runs >= persistent_after:
            persistent.add(
                pid,
                PersistentViolation(finding, streak.runs, streak.since_run_id, started[streak.since_run_id]),
            )

    ttb = tuple(_time_to_block(store, run_id, timezone, allow_set, shown_urls))
    hours: dict[str, list[float]] = {pid: [] for pid in measured}
    for t in ttb:
        if t.hours is not None and t.provider_id in hours:
            hours[t.provider_id].append(t.hours)
    median = {pid: statistics.median(h) for pid, h in hours.items() if h}

    window = earlier[: history_runs - 1]
    trends = _trends(run, providers, tally.scores(), window, earlier_providers, store,
                     grace_hours=grace_hours, timezone=timezone, exclude_urls=allow_set)
    scores = {s.provider_id: s for s in tally.scores()}
    breakdowns = {b.provider_id: b for b in tally.breakdowns()}
    per_provider = tuple(
        ProviderAnalysis(
            provider_id=p.provider_id,
            provider_name=p.provider_name,
            asn=p.asn,
            measured=p.measured,
            reason=p.reason,
            score=scores[p.provider_id],
            by_list=breakdowns[p.provider_id].by_list,
            by_category=breakdowns[p.provider_id].by_category,
            violations=violations.counts.get(p.provider_id, 0),
            sla_breaches=sla.counts.get(p.provider_id, 0),
            median_hours_to_block=median.get(p.provider_id),
            blocked_with_date=len(hours[p.provider_id]),
            newly_accessible=newly.counts.get(p.provider_id, 0),
            persistent_violations=persistent.counts.get(p.provider_id, 0),
            must_block_failed=canary_failed.counts.get(p.provider_id, 0),
            overblocked=overblocked.counts.get(p.provider_id, 0),
            trend=trends[p.provider_id],
        )
        for p in providers
    )
    return RunAnalysis(
        run=run,
        grace_hours=grace_hours,
        timezone=timezone,
        history_runs=history_runs,
        persistent_after=persistent_after,
        max_findings=max_findings,
        must_block=tuple(sorted(block_set)),
        must_allow=tuple(sorted(allow_set)),
        trend_runs=tuple(reversed(window)) + (run,),
        providers=per_provider,
        violations=tuple(violations.kept),
        sla_breaches=tuple(sla.kept),
        time_to_block=ttb,
        newly_accessible=tuple(newly.kept),
        persistent_violations=tuple(persistent.kept),
        must_block_failed=tuple(canary_failed.kept),
        overblocked=tuple(overblocked.kept),
    )


def _streaks(
    store: Store, run_id: str, provider_runs: dict[str, list[RunInfo]], persistent_after: int
) -> dict[tuple[str, str], _Streak]:
    """For each (provider, URL) accessible in `run_id` that is newly accessible or persistently so: how.

    Only those are kept, so memory grows with the findings, not with the list."""
    out: dict[tuple[str, str], _Streak] = {}
    ids = [r.run_id for runs in provider_runs.values() for r in runs]
    if not ids:
        return out

    def settle(key: tuple[str, str], verdicts: dict[str, Verdict]) -> None:
        runs = provider_runs.get(key[0], [])
        count, since = 1, run_id
        for r in runs:  # newest first
            if verdicts.get(r.run_id) is not Verdict.ACCESSIBLE:
                break
            count, since = count + 1, r.run_id
        newly = runs[0].run_id if runs and verdicts.get(runs[0].run_id) is Verdict.BLOCKED else None
        if newly is not None or count >= persistent_after:
            out[key] = _Streak(count, since, newly)

    current: tuple[str, str] | None = None
    verdicts: dict[str, Verdict] = {}
    for pv in store.earlier_verdicts(run_id, Verdict.ACCESSIBLE, ids):  # grouped by (provider, URL)
        key = (pv.provider_id, pv.url)
        if key != current:
            if current is not None:
                settle(current, verdicts)
            current, verdicts = key, {}
        verdicts[pv.run_id] = pv.verdict
    if current is not None:
        settle(current, verdicts)
    return out


def _time_to_block(
    store: Store, run_id: str, timezone: str, exclude: frozenset[str], shown_urls: dict[str, str]
) -> Iterable[TimeToBlock]:
    for fb in store.first_blocked(run_id):
        if fb.url in exclude:
            continue
        hours = None
        if fb.date_added is not None:
            hours = max(0.0, (fb.started_at - local_midnight(fb.date_added, timezone)) / dt.timedelta(hours=1))
        url = shown_urls.get(fb.url, fb.url)
        yield TimeToBlock(fb.provider_id, url, fb.date_added, fb.run_id, fb.started_at, hours)


def _trends(
    run: RunInfo,
    providers: Sequence[ProviderHealth],
    current: Sequence[ProviderScore],
    earlier: Sequence[RunInfo],
    earlier_providers: dict[str, list[ProviderHealth]],
    store: Store,
    *,
    grace_hours: float,
    timezone: str,
    exclude_urls: frozenset[str],
) -> dict[str, tuple[TrendPoint, ...]]:
    points: dict[str, list[TrendPoint]] = {p.provider_id: [] for p in providers}
    for r in reversed(earlier):  # oldest first
        scores = score_from_counts(store, r, earlier_providers[r.run_id], grace_hours=grace_hours,
                                   timezone=timezone, exclude_urls=exclude_urls)
        for s in scores:
            if s.provider_id in points:
                points[s.provider_id].append(TrendPoint(r.run_id, r.started_at, s.measured, s.compliance_pct))
    for s in current:
        points[s.provider_id].append(TrendPoint(run.run_id, run.started_at, s.measured, s.compliance_pct))
    return {pid: tuple(pts) for pid, pts in points.items()}


def score_from_counts(
    store: Store,
    run: RunInfo,
    providers: Sequence[ProviderHealth],
    *,
    grace_hours: float,
    timezone: str,
    exclude_urls: frozenset[str] = frozenset(),
) -> list[ProviderScore]:
    """The same scores as `score_run`, from the store's aggregate counts rather than every row."""
    tally = ComplianceTally(run, providers, grace_hours=grace_hours, timezone=timezone, exclude_urls=exclude_urls)
    for c in store.verdict_counts(run.run_id, exclude_urls):
        tally.add_count(c.provider_id, c.list_name, c.category_code, c.category_description, c.date_added,
                        c.verdict, c.count)
    return tally.scores()
