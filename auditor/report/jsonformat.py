"""The whole run as one JSON-able dict, for machines and for archiving.

`"schema": "auditor.report/2"` is version 1 plus an `analysis` object (auditor.analysis: per-list and
per-category compliance, trends, time to block, SLA breaches, regressions, must-block and must-allow
findings); without an analysis the document is `"auditor.report/1"`, exactly as before. Like the CSVs, a
version only grows by new keys. Datetimes are ISO 8601 UTC with a `Z`; a missing score or value is null.
Raw observations are left out unless asked for: they are large and are the store's business.

The schema is documented in docs/report-json-schema.md, and docs/report.schema.json is a JSON Schema
(draft 2020-12) that the tests validate every document against.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from auditor import codec
from auditor.analysis import Finding, GroupScore, RunAnalysis
from auditor.models import MeasurementRecord, ProviderHealth, ProviderScore, RunInfo
from auditor.report.formatting import format_utc, format_utc_or_none, iso_date
from auditor.report.interface import AnalysedRun, ReportFormatter, ReportOptions

SCHEMA_V1 = "auditor.report/1"
SCHEMA = SCHEMA_V2 = "auditor.report/2"


class JsonFormat(ReportFormatter):
    """`auditor report --format json`: the version 2 document, indented, non-ASCII as itself."""

    def format(self, run: AnalysedRun, options: ReportOptions) -> str:
        doc = report_to_json(run.analysis, run.providers, run.measurements())
        return json.dumps(doc, ensure_ascii=False, indent=2) + "\n"


def run_to_json(
    run: RunInfo,
    providers: Sequence[ProviderHealth],
    scores: Sequence[ProviderScore],
    measurements: Iterable[MeasurementRecord],
    *,
    include_observations: bool = False,
    analysis: RunAnalysis | None = None,
) -> dict[str, Any]:
    """Version 2 with `analysis` (then `scores` should be `analysis.scores`), version 1 without."""
    doc: dict[str, Any] = {
        "schema": SCHEMA_V2 if analysis is not None else SCHEMA_V1,
        "run": {
            "run_id": run.run_id,
            "province": run.province,
            "status": run.status,
            "started_at": format_utc(run.started_at),
            "finished_at": format_utc_or_none(run.finished_at),
            "config_digest": run.config_digest,
        },
        "providers": [
            {
                "provider_id": p.provider_id,
                "provider_name": p.provider_name,
                "asn": p.asn,
                "measured": p.measured,
                "reason": p.reason,
                "checks": list(p.checks),
            }
            for p in providers
        ],
        "scores": [
            {
                "provider_id": s.provider_id,
                "provider_name": s.provider_name,
                "asn": s.asn,
                "measured": s.measured,
                "urls_total": s.urls_total,
                "blocked": s.blocked,
                "accessible": s.accessible,
                "inconclusive": s.inconclusive,
                "in_grace": s.in_grace,
                "compliance_pct": s.compliance_pct,
            }
            for s in scores
        ],
        "measurements": [_measurement(m, include_observations) for m in measurements],
    }
    if run.rejudged_from:  # only for a re-judged run (auditor rejudge --store-as-new)
        doc["run"]["rejudged_from"] = run.rejudged_from
    if analysis is not None:
        doc["analysis"] = analysis_to_json(analysis)
    return doc


def report_to_json(
    analysis: RunAnalysis,
    providers: Sequence[ProviderHealth],
    measurements: Iterable[MeasurementRecord],
    *,
    include_observations: bool = False,
) -> dict[str, Any]:
    """The version 2 document of an analysed run (its scores are the analysis's: must-allow URLs left out)."""
    return run_to_json(analysis.run, providers, analysis.scores, measurements,
                       include_observations=include_observations, analysis=analysis)


def _group(g: GroupScore) -> dict[str, Any]:
    return {
        "key": g.key,
        "label": g.label,
        "urls_total": g.urls_total,
        "blocked": g.blocked,
        "accessible": g.accessible,
        "inconclusive": g.inconclusive,
        "in_grace": g.in_grace,
        "compliance_pct": g.compliance_pct,
    }


def _finding(f: Finding, **extra: Any) -> dict[str, Any]:
    return {
        "provider_id": f.provider_id,
        "url": f.url,
        "list": f.list_name,
        "category_code": f.category_code,
        "category_description": f.category_description,
        "date_added": iso_date(f.date_added),
        "verdict": f.verdict.value,
        "method": f.method.value if f.method else None,
        "confidence": f.confidence.value if f.confidence else None,
        "rule": f.rule,
        "evidence": f.evidence,
        "measured_at": format_utc(f.measured_at),
        **extra,
    }


def analysis_to_json(a: RunAnalysis) -> dict[str, Any]:
    """The `analysis` object of a version 2 document."""
    return {
        "settings": {
            "grace_hours": a.grace_hours,
            "timezone": a.timezone,
            "history_runs": a.history_runs,
            "persistent_after": a.persistent_after,
            "max_findings": a.max_findings,
            "must_block": list(a.must_block),
            "must_allow": list(a.must_allow),
        },
        "trend_runs": [{"run_id": r.run_id, "started_at": format_utc(r.started_at)} for r in a.trend_runs],
        "providers": [
            {
                "provider_id": p.provider_id,
                "flagged": p.flagged,
                "violations": p.violations,
                "sla_breaches": p.sla_breaches,
                "median_hours_to_block": p.median_hours_to_block,
                "blocked_with_date": p.blocked_with_date,
                "newly_accessible": p.newly_accessible,
                "persistent_violations": p.persistent_violations,
                "must_block_failed": p.must_block_failed,
                "overblocked": p.overblocked,
                "by_list": [_group(g) for g in p.by_list],
                "by_category": [_group(g) for g in p.by_category],
                "trend": [
                    {
                        "run_id": t.run_id,
                        "started_at": format_utc(t.started_at),
                        "measured": t.measured,
                        "compliance_pct": t.compliance_pct,
                    }
                    for t in p.trend
                ],
            }
            for p in a.providers
        ],
        "violations": [_finding(f) for f in a.violations],
        "sla_breaches": [
            _finding(b.finding, hours_since_added=b.hours_since_added, hours_overdue=b.hours_overdue)
            for b in a.sla_breaches
        ],
        "time_to_block": [
            {
                "provider_id": t.provider_id,
                "url": t.url,
                "date_added": iso_date(t.date_added),
                "run_id": t.run_id,
                "blocked_at": format_utc(t.blocked_at),
                "hours": t.hours,
            }
            for t in a.time_to_block
        ],
        "newly_accessible": [
            _finding(n.finding, previous_run_id=n.previous_run_id,
                     previous_started_at=format_utc_or_none(n.previous_started_at))
            for n in a.newly_accessible
        ],
        "persistent_violations": [
            _finding(v.finding, runs_in_a_row=v.runs_in_a_row, since_run_id=v.since_run_id,
                     since=format_utc_or_none(v.since))
            for v in a.persistent_violations
        ],
        "must_block_failed": [_finding(f) for f in a.must_block_failed],
        "overblocked": [_finding(f) for f in a.overblocked],
    }


def _measurement(rec: MeasurementRecord, include_observations: bool) -> dict[str, Any]:
    e, j = rec.entry, rec.judgement
    out: dict[str, Any] = {
        "provider_id": rec.provider_id,
        "url": e.url,
        "list": e.list_name,
        "category_code": e.category_code,
        "date_added": iso_date(e.date_added),
        "verdict": j.verdict.value,
        "method": j.method.value if j.method else None,
        "confidence": j.confidence.value if j.confidence else None,
        "rule": j.rule,
        "evidence": j.evidence,
        "measured_at": format_utc(rec.measured_at),
    }
    if include_observations:  # as stored: {"provider": <the provider's observation>}, or {} when none
        out["observations"] = {} if rec.observation is None else {"provider": codec.to_builtins(rec.observation)}
    return out
