"""The one place tests build list entries, judgements, provider health, runs and measurement records.

Every `MeasurementRecord` a test makes is made here (`make_record`, `observed`), so a change to the record's
fields touches this module only. Keyword defaults give a valid object; a test names what it is about.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from urllib.parse import urlsplit

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

UTC = dt.UTC
STARTED = dt.datetime(2026, 11, 27, 22, 30, tzinfo=UTC)  # 05:30 on 2026-11-28 in Gia Lai


def make_entry(
    url: str = "https://site.example/",
    *,
    host: str | None = None,
    list_name: str = "l",
    line: int = 1,
    category_code: str = "",
    category_description: str = "",
    date_added: dt.date | None = None,
    source: str = "",
    notes: str = "",
) -> ListEntry:
    """A list entry; its host is the URL's unless given (give it for a URL that is not one)."""
    return ListEntry(
        url=url,
        host=host if host is not None else (urlsplit(url).hostname or ""),
        list_name=list_name,
        line=line,
        category_code=category_code,
        category_description=category_description,
        date_added=date_added,
        source=source,
        notes=notes,
    )


# what a verdict is judged by when a test does not say: (rule, evidence, method, confidence)
_DEFAULT_JUDGEMENT: dict[Verdict, tuple[str, str, Method | None, Confidence | None]] = {
    Verdict.BLOCKED: ("dns.nxdomain", "NXDOMAIN", Method.DNS, Confidence.CONFIRMED),
    Verdict.ACCESSIBLE: ("tls.valid_session", "valid", None, None),
    Verdict.INCONCLUSIVE: ("control.unreachable", "down", None, None),
}


def make_judgement(
    verdict: Verdict = Verdict.BLOCKED,
    rule: str | None = None,
    evidence: str | None = None,
    method: Method | None = None,
    confidence: Confidence | None = None,
) -> Judgement:
    """A judgement; what is not given is the verdict's default (a blocked one: DNS, confirmed)."""
    default_rule, default_evidence, default_method, default_confidence = _DEFAULT_JUDGEMENT[verdict]
    return Judgement(
        verdict,
        rule if rule is not None else default_rule,
        evidence if evidence is not None else default_evidence,
        method if method is not None else default_method,
        confidence if confidence is not None else default_confidence,
    )


def make_health(
    provider_id: str,
    *,
    run_id: str = "r1",
    provider_name: str | None = None,
    asn: int | None = None,
    measured: bool = True,
    reason: str = "",
    checks: tuple[str, ...] = (),
) -> ProviderHealth:
    """A provider's health in a run; its name is its id in capitals unless given."""
    name = provider_name if provider_name is not None else provider_id.upper()
    return ProviderHealth(run_id=run_id, provider_id=provider_id, provider_name=name, asn=asn, measured=measured,
                          reason=reason, checks=checks)


def make_run(
    run_id: str = "r1",
    started_at: dt.datetime = STARTED,
    *,
    province: str = "Gia Lai",
    status: str = "running",
    finished_at: dt.datetime | None = None,
    config_digest: str = "",
) -> RunInfo:
    return RunInfo(run_id=run_id, started_at=started_at, province=province, status=status, finished_at=finished_at,
                   config_digest=config_digest)


def make_record(
    entry: ListEntry | None = None,
    *,
    provider_id: str = "p",
    run_id: str = "r1",
    judgement: Judgement | None = None,
    verdict: Verdict = Verdict.BLOCKED,
    measured_at: dt.datetime = STARTED,
    observation: UrlObservation | None = None,
) -> MeasurementRecord:
    """One judged (provider, URL) pair; `verdict` picks a default judgement when none is given."""
    return MeasurementRecord(
        run_id=run_id,
        provider_id=provider_id,
        entry=entry if entry is not None else make_entry(),
        judgement=judgement if judgement is not None else make_judgement(verdict),
        measured_at=measured_at,
        observation=observation,
    )


def observed(record: MeasurementRecord, observation: UrlObservation | None) -> MeasurementRecord:
    """The same record holding another provider observation."""
    return replace(record, observation=observation)
