"""Records to flat rows and back, for a SQL store: one place that knows the column order and the text forms.

Datetimes are ISO 8601 UTC text with microseconds and a `Z` (fixed width, so text order is time order),
read back as aware UTC datetimes; dates as ISO text; enums by value; observations as compact JSON text
(`auditor.codec`), decoded back into the typed records when read. A value that does not decode is a
`StoreError` that says which row it is. A server database would reuse this module with its own SQL.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, TypeVar

from auditor import codec
from auditor.errors import StoreError
from auditor.models import (
    Confidence,
    Judgement,
    ListEntry,
    MeasurementRecord,
    Method,
    ProviderHealth,
    RunInfo,
    Verdict,
)
from auditor.observations import UrlObservation

T = TypeVar("T")

# the order of `measurement_row` and `measurement_from_row`
MEASUREMENT_COLUMNS = (
    "run_id, provider_id, ordinal, url, list_name, line, category_code, category_description, date_added, "
    "source, notes, host, measured_at, verdict, method, confidence, rule, evidence, observations_json"
)
# the order of run_from_row
RUN_COLUMNS = "run_id, started_at, province, status, finished_at, config_digest, rejudged_from"
# the order of provider_from_row
PROVIDER_COLUMNS = "run_id, provider_id, provider_name, asn, measured, reason, checks_json"


def dt_to_text(value: dt.datetime) -> str:
    if value.tzinfo is None or value.utcoffset() is None:
        # A naive datetime would be silently read as local time: that is a bug in the caller.
        raise ValueError(f"naive datetime {value!r}: the store keeps aware (UTC) datetimes only")
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def dt_from_text(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).astimezone(dt.UTC)


def _decode(type_: type[T], text: str, what: str) -> T:
    try:
        return codec.decode(type_, text)
    except codec.CodecError as exc:
        raise StoreError(f"{what} in the store does not decode: {exc}") from exc


def measurement_row(rec: MeasurementRecord, ordinal: int | None) -> tuple[Any, ...]:
    e, j = rec.entry, rec.judgement
    return (
        rec.run_id,
        rec.provider_id,
        0 if ordinal is None else ordinal,
        e.url,
        e.list_name,
        e.line,
        e.category_code,
        e.category_description,
        e.date_added.isoformat() if e.date_added else None,
        e.source,
        e.notes,
        e.host,
        dt_to_text(rec.measured_at),
        j.verdict.value,
        j.method.value if j.method else None,
        j.confidence.value if j.confidence else None,
        j.rule,
        j.evidence,
        codec.encode_measured(rec.observation),
    )


def measurement_from_row(r: tuple[Any, ...]) -> MeasurementRecord:
    (
        run_id,
        provider_id,
        _ordinal,
        url,
        list_name,
        line,
        category_code,
        category_description,
        date_added,
        source,
        notes,
        host,
        measured_at,
        verdict,
        method,
        confidence,
        rule,
        evidence,
        observations_json,
    ) = r
    entry = ListEntry(
        url=url,
        host=host,
        list_name=list_name,
        line=line,
        category_code=category_code,
        category_description=category_description,
        date_added=dt.date.fromisoformat(date_added) if date_added else None,
        source=source,
        notes=notes,
    )
    judgement = Judgement(
        verdict=Verdict(verdict),
        rule=rule,
        evidence=evidence,
        method=Method(method) if method else None,
        confidence=Confidence(confidence) if confidence else None,
    )
    stored = _decode(
        codec.MeasuredObservations, observations_json, f"the observation of {url} by {provider_id} in run {run_id}"
    )
    return MeasurementRecord(
        run_id=run_id,
        provider_id=provider_id,
        entry=entry,
        judgement=judgement,
        measured_at=dt_from_text(measured_at),
        observation=stored.provider,
    )


def control_text(observation: UrlObservation) -> str:
    return codec.encode(observation)


def control_from_text(text: str, run_id: str, url: str) -> UrlObservation:
    return _decode(UrlObservation, text, f"the control observation of {url} in run {run_id}")


def run_from_row(row: tuple[Any, ...]) -> RunInfo:
    run_id, started_at, province, status, finished_at, config_digest, rejudged_from = row
    return RunInfo(
        run_id=run_id,
        started_at=dt_from_text(started_at),
        province=province,
        status=status,
        finished_at=dt_from_text(finished_at) if finished_at else None,
        config_digest=config_digest,
        rejudged_from=rejudged_from,
    )


def checks_text(health: ProviderHealth) -> str:
    return codec.encode(health.checks)


def provider_from_row(r: tuple[Any, ...]) -> ProviderHealth:
    run_id, provider_id, provider_name, asn, measured, reason, checks_json = r
    return ProviderHealth(
        run_id=run_id,
        provider_id=provider_id,
        provider_name=provider_name,
        asn=asn,
        measured=bool(measured),
        reason=reason,
        checks=_decode(tuple[str, ...], checks_json, f"the checks of provider {provider_id} in run {run_id}"),
    )
