"""The whole run as one JSON-able dict, for machines and for archiving.

`"schema": "auditor.report/1"`; like the CSVs, version 1 only grows by new keys. Datetimes are ISO 8601 UTC
with a `Z`; a missing score is null. Raw observations are left out unless asked for: they are large and
are the store's business.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from auditor.models import MeasurementRecord, ProviderHealth, ProviderScore, RunInfo
from auditor.report.csvformat import format_utc

SCHEMA = "auditor.report/1"


def run_to_json(
    run: RunInfo,
    providers: Sequence[ProviderHealth],
    scores: Sequence[ProviderScore],
    measurements: Iterable[MeasurementRecord],
    *,
    include_observations: bool = False,
) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "run": {
            "run_id": run.run_id,
            "province": run.province,
            "status": run.status,
            "started_at": format_utc(run.started_at),
            "finished_at": format_utc(run.finished_at) if run.finished_at else None,
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


def _measurement(rec: MeasurementRecord, include_observations: bool) -> dict[str, Any]:
    e, j = rec.entry, rec.judgement
    out: dict[str, Any] = {
        "provider_id": rec.provider_id,
        "url": e.url,
        "list": e.list_name,
        "category_code": e.category_code,
        "date_added": e.date_added.isoformat() if e.date_added else None,
        "verdict": j.verdict.value,
        "method": j.method.value if j.method else None,
        "confidence": j.confidence.value if j.confidence else None,
        "rule": j.rule,
        "evidence": j.evidence,
        "measured_at": format_utc(rec.measured_at),
    }
    if include_observations:
        out["observations"] = rec.observations
    return out
