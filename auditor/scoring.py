"""Compliance scores: per provider, how much of the (non-new) reference list it blocks.

    compliance_pct = 100 × blocked / (blocked + accessible), over entries NOT in grace

- `inconclusive` never counts for or against a provider: we could not tell (dead vantage, site down).
- An entry is in grace while its `date_added` (a date, read as local midnight in the configured time zone,
  e.g. Asia/Ho_Chi_Minh) is less than `grace_hours` before the run started: providers get that long to
  apply a new list entry. In-grace entries are counted (`in_grace`, and in blocked/accessible/inconclusive)
  but left out of the score. An entry dated after the run started is in grace too.
- The score is None when nothing is measurable: the provider was not measured (its vantage or resolvers
  were down), or no entry out of grace got a blocked/accessible verdict. None is "unknown", never 0 or 100.
- URLs in `exclude_urls` (the must-allow URLs: they must stay reachable, see auditor.analysis) are left out
  entirely, counts included: a blocked must-allow URL is over-blocking, not compliance.

The same rule scores a provider over one list or one category (`score_groups`), and `ComplianceTally` does
all of it in one pass over a stream of measurements, or over pre-aggregated counts from the store.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from auditor.models import (
    VANTAGE_LOST_RULES,
    ListEntry,
    MeasurementRecord,
    ProviderHealth,
    ProviderScore,
    RunInfo,
    Verdict,
)


def date_in_grace(date_added: dt.date | None, started_at: dt.datetime, grace_hours: float, timezone: str) -> bool:
    """Whether a list date (local midnight in `timezone`) is less than `grace_hours` before `started_at`."""
    if date_added is None:
        return False
    return started_at - local_midnight(date_added, timezone) < dt.timedelta(hours=grace_hours)


def local_midnight(day: dt.date, timezone: str) -> dt.datetime:
    """The instant a list date begins: midnight of that day in the configured time zone."""
    return dt.datetime.combine(day, dt.time(0, 0), tzinfo=ZoneInfo(timezone))


def is_in_grace(entry: ListEntry, started_at: dt.datetime, grace_hours: float, timezone: str) -> bool:
    """Whether `entry` was added less than `grace_hours` before `started_at` (an aware datetime)."""
    return date_in_grace(entry.date_added, started_at, grace_hours, timezone)


@dataclass(frozen=True)
class GroupScore:
    """One provider's compliance over one list or one category."""

    key: str  # the list name, or the category code ("" when the list gives none)
    label: str  # the category description (first one seen); the list name for a list
    urls_total: int
    blocked: int
    accessible: int
    inconclusive: int
    in_grace: int
    compliance_pct: float | None


@dataclass(frozen=True)
class ProviderBreakdown:
    provider_id: str
    by_list: tuple[GroupScore, ...]  # sorted by list name
    by_category: tuple[GroupScore, ...]  # sorted by category code


@dataclass
class _Counts:
    total: int = 0
    blocked: int = 0
    accessible: int = 0
    inconclusive: int = 0
    in_grace: int = 0
    scored_blocked: int = 0
    scored_accessible: int = 0

    def add(self, verdict: Verdict, in_grace: bool, n: int = 1) -> None:
        self.total += n
        if verdict is Verdict.BLOCKED:
            self.blocked += n
        elif verdict is Verdict.ACCESSIBLE:
            self.accessible += n
        else:
            self.inconclusive += n
        if in_grace:
            self.in_grace += n
        elif verdict is Verdict.BLOCKED:
            self.scored_blocked += n
        elif verdict is Verdict.ACCESSIBLE:
            self.scored_accessible += n

    def pct(self, measured: bool) -> float | None:
        denominator = self.scored_blocked + self.scored_accessible
        # 100 * blocked first, then one division: the float is the one nearest the exact ratio, so a
        # score like 57.3 prints as 57.3 and never as 57.29999.
        return 100 * self.scored_blocked / denominator if measured and denominator else None

    def group(self, key: str, label: str, measured: bool) -> GroupScore:
        return GroupScore(
            key, label, self.total, self.blocked, self.accessible, self.inconclusive, self.in_grace,
            self.pct(measured),
        )


class ComplianceTally:
    """Counts for every provider of a run, overall, per list and per category, fed one record (or one
    aggregated count) at a time. Records of another run or of a provider not in `providers` are ignored."""

    def __init__(
        self,
        run: RunInfo,
        providers: Sequence[ProviderHealth],
        *,
        grace_hours: float,
        timezone: str,
        exclude_urls: frozenset[str] = frozenset(),
    ) -> None:
        ZoneInfo(timezone)  # fail early on a bad zone name, before consuming a stream (ZoneInfo caches it)
        self.run, self.providers = run, list(providers)
        self.grace_hours, self.timezone, self.exclude_urls = grace_hours, timezone, exclude_urls
        self._overall = {p.provider_id: _Counts() for p in providers}
        self._lists: dict[str, dict[str, _Counts]] = {p.provider_id: {} for p in providers}
        self._categories: dict[str, dict[str, _Counts]] = {p.provider_id: {} for p in providers}
        self._labels: dict[str, str] = {}  # category code -> first description seen
        self._lost = {p.provider_id: 0 for p in providers}  # vantage failed under the measurement

    def add(self, rec: MeasurementRecord) -> bool:
        """Count one record; False when it is left out (another run or provider, or an excluded URL)."""
        if rec.run_id != self.run.run_id:
            return False
        if rec.judgement.rule in VANTAGE_LOST_RULES and rec.provider_id in self._lost:
            self._lost[rec.provider_id] += 1  # a must-allow pair lost is lost too
        if rec.entry.url in self.exclude_urls:
            return False
        e = rec.entry
        return self.add_count(
            rec.provider_id, e.list_name, e.category_code, e.category_description, e.date_added,
            rec.judgement.verdict,
        )

    def add_count(
        self,
        provider_id: str,
        list_name: str,
        category_code: str,
        category_description: str,
        date_added: dt.date | None,
        verdict: Verdict,
        n: int = 1,
    ) -> bool:
        """Count `n` entries alike (the caller has already left out excluded URLs)."""
        overall = self._overall.get(provider_id)
        if overall is None:
            return False
        in_grace = date_in_grace(date_added, self.run.started_at, self.grace_hours, self.timezone)
        overall.add(verdict, in_grace, n)
        self._lists[provider_id].setdefault(list_name, _Counts()).add(verdict, in_grace, n)
        self._categories[provider_id].setdefault(category_code, _Counts()).add(verdict, in_grace, n)
        if category_description:
            self._labels.setdefault(category_code, category_description)
        return True

    def scores(self) -> list[ProviderScore]:
        """One score per provider, in the order of `providers`."""
        out = []
        for p in self.providers:
            c = self._overall[p.provider_id]
            out.append(
                ProviderScore(
                    run_id=self.run.run_id,
                    started_at=self.run.started_at,
                    province=self.run.province,
                    provider_id=p.provider_id,
                    provider_name=p.provider_name,
                    asn=p.asn,
                    measured=p.measured,
                    urls_total=c.total,
                    blocked=c.blocked,
                    accessible=c.accessible,
                    inconclusive=c.inconclusive,
                    in_grace=c.in_grace,
                    compliance_pct=c.pct(p.measured),
                    vantage_lost=self._lost[p.provider_id],
                )
            )
        return out

    def breakdowns(self) -> list[ProviderBreakdown]:
        """Per list and per category, for each provider in the order of `providers`."""
        out = []
        for p in self.providers:
            lists = self._lists[p.provider_id]
            cats = self._categories[p.provider_id]
            out.append(
                ProviderBreakdown(
                    p.provider_id,
                    tuple(lists[k].group(k, k, p.measured) for k in sorted(lists)),
                    tuple(cats[k].group(k, self._labels.get(k, ""), p.measured) for k in sorted(cats)),
                )
            )
        return out


def score_run(
    run: RunInfo,
    providers: Sequence[ProviderHealth],
    measurements: Iterable[MeasurementRecord],
    *,
    grace_hours: float,
    timezone: str,
    exclude_urls: frozenset[str] = frozenset(),
) -> list[ProviderScore]:
    """One score per provider, in the order of `providers`; `measurements` is consumed once, streaming.

    Measurements of another run or of a provider not in `providers` are ignored, and so are the URLs in
    `exclude_urls` (the must-allow URLs).
    """
    tally = ComplianceTally(run, providers, grace_hours=grace_hours, timezone=timezone, exclude_urls=exclude_urls)
    for rec in measurements:
        tally.add(rec)
    return tally.scores()


def score_groups(
    run: RunInfo,
    providers: Sequence[ProviderHealth],
    measurements: Iterable[MeasurementRecord],
    *,
    grace_hours: float,
    timezone: str,
    exclude_urls: frozenset[str] = frozenset(),
) -> list[ProviderBreakdown]:
    """Per-list and per-category compliance of each provider, by the same rule as `score_run`."""
    tally = ComplianceTally(run, providers, grace_hours=grace_hours, timezone=timezone, exclude_urls=exclude_urls)
    for rec in measurements:
        tally.add(rec)
    return tally.breakdowns()
