"""Compliance scores: per provider, how much of the (non-new) reference list it blocks.

    compliance_pct = 100 × blocked / (blocked + accessible), over entries NOT in grace

- `inconclusive` never counts for or against a provider: we could not tell (dead vantage, site down).
- An entry is in grace while its `date_added` (a date, read as local midnight in the configured time zone,
  e.g. Asia/Ho_Chi_Minh) is less than `grace_hours` before the run started: providers get that long to
  apply a new list entry. In-grace entries are counted (`in_grace`, and in blocked/accessible/inconclusive)
  but left out of the score. An entry dated after the run started is in grace too.
- The score is None when nothing is measurable: the provider was not measured (its vantage or resolvers
  were down), or no entry out of grace got a blocked/accessible verdict. None is "unknown", never 0 or 100.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from auditor.models import ListEntry, MeasurementRecord, ProviderHealth, ProviderScore, RunInfo, Verdict


def is_in_grace(entry: ListEntry, started_at: dt.datetime, grace_hours: float, timezone: str) -> bool:
    """Whether `entry` was added less than `grace_hours` before `started_at` (an aware datetime)."""
    if entry.date_added is None:
        return False
    added = dt.datetime.combine(entry.date_added, dt.time(0, 0), tzinfo=ZoneInfo(timezone))
    return started_at - added < dt.timedelta(hours=grace_hours)


@dataclass
class _Counts:
    total: int = 0
    blocked: int = 0
    accessible: int = 0
    inconclusive: int = 0
    in_grace: int = 0
    scored_blocked: int = 0
    scored_accessible: int = 0


def score_run(
    run: RunInfo,
    providers: Sequence[ProviderHealth],
    measurements: Iterable[MeasurementRecord],
    *,
    grace_hours: float,
    timezone: str,
) -> list[ProviderScore]:
    """One score per provider, in the order of `providers`; `measurements` is consumed once, streaming.

    Measurements of another run or of a provider not in `providers` are ignored.
    """
    ZoneInfo(timezone)  # fail early on a bad zone name, before consuming the stream (ZoneInfo caches it)
    counts = {p.provider_id: _Counts() for p in providers}
    for rec in measurements:
        c = counts.get(rec.provider_id)
        if c is None or rec.run_id != run.run_id:
            continue
        c.total += 1
        verdict = rec.judgement.verdict
        if verdict is Verdict.BLOCKED:
            c.blocked += 1
        elif verdict is Verdict.ACCESSIBLE:
            c.accessible += 1
        else:
            c.inconclusive += 1
        if is_in_grace(rec.entry, run.started_at, grace_hours, timezone):
            c.in_grace += 1
        elif verdict is Verdict.BLOCKED:
            c.scored_blocked += 1
        elif verdict is Verdict.ACCESSIBLE:
            c.scored_accessible += 1

    scores = []
    for p in providers:
        c = counts[p.provider_id]
        denominator = c.scored_blocked + c.scored_accessible
        # 100 * blocked first, then one division: the float is the one nearest the exact ratio, so a
        # score like 57.3 prints as 57.3 and never as 57.29999.
        pct = 100 * c.scored_blocked / denominator if p.measured and denominator else None
        scores.append(
            ProviderScore(
                run_id=run.run_id,
                started_at=run.started_at,
                province=run.province,
                provider_id=p.provider_id,
                provider_name=p.provider_name,
                asn=p.asn,
                measured=p.measured,
                urls_total=c.total,
                blocked=c.blocked,
                accessible=c.accessible,
                inconclusive=c.inconclusive,
                in_grace=c.in_grace,
                compliance_pct=pct,
            )
        )
    return scores
