"""Plain typed records shared by the engine, the verdict rules, the store and the reports.

Measurement (what happened) lives in `auditor.observations`; this module holds what the audit is about
(list entries) and what it concludes (judgements, per-provider health and scores).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum

from auditor.observations import UrlObservation


class Verdict(StrEnum):
    BLOCKED = "blocked"
    ACCESSIBLE = "accessible"
    INCONCLUSIVE = "inconclusive"


class Method(StrEnum):
    """The technique by which a provider blocks: where the user's request is stopped."""

    DNS = "dns"
    TCP = "tcp"
    TLS = "tls"
    HTTP = "http"


class Confidence(StrEnum):
    CONFIRMED = "confirmed"  # explicit signal: fingerprint, rcode, reset, interception certificate
    LIKELY = "likely"  # consistent but weaker signal: a repeated timeout, an unknown page that differs


@dataclass(frozen=True)
class ListEntry:
    """One URL of a reference list, normalised."""

    url: str  # normalised: scheme://idna-host[:port]/path?query, no fragment
    host: str  # IDNA-encoded (ASCII), lower-case
    list_name: str  # the list file's stem, e.g. "example" for blocklists/example.csv
    line: int  # 1-based line of the (first) row that gave this URL
    category_code: str = ""
    category_description: str = ""
    date_added: dt.date | None = None
    source: str = ""
    notes: str = ""


@dataclass(frozen=True)
class ListIssue:
    """A row that was skipped, and why; reported with file and line."""

    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


@dataclass(frozen=True)
class Judgement:
    """The verdict for one (provider, URL), with the rule that produced it and one line of evidence."""

    verdict: Verdict
    rule: str  # stable id, e.g. "dns.nxdomain", "tls.sni_reset", "control.site_down"
    evidence: str  # one human line
    method: Method | None = None  # set only when blocked
    confidence: Confidence | None = None  # set only when blocked

    def __post_init__(self) -> None:
        blocked = self.verdict is Verdict.BLOCKED
        if blocked != (self.method is not None) or blocked != (self.confidence is not None):
            raise ValueError("method and confidence are set exactly when the verdict is blocked")


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    started_at: dt.datetime  # aware, UTC
    province: str
    status: str = "running"  # running | complete | partial
    finished_at: dt.datetime | None = None
    config_digest: str = ""  # sha256 of the effective config, to tell runs of different set-ups apart
    # the run whose stored observations these judgements re-judged (`auditor rejudge --store-as-new`);
    # "" for a run that measured
    rejudged_from: str = ""


@dataclass(frozen=True)
class ProviderHealth:
    """Whether a provider could be measured in a run, and why not."""

    run_id: str
    provider_id: str
    provider_name: str
    asn: int | None
    measured: bool
    reason: str = ""  # why not measured (dead vantage, resolvers down, canary failed), or notes
    checks: tuple[str, ...] = ()  # one line per health check, for the analyst


@dataclass(frozen=True)
class MeasurementRecord:
    """One judged (provider, URL) pair, as stored and as written to the ministry CSV."""

    run_id: str
    provider_id: str
    entry: ListEntry
    judgement: Judgement
    measured_at: dt.datetime  # aware, UTC
    # What the provider's vantage saw, the facts the judgement was drawn from (decoded back from the store,
    # so a better rule can judge the run again); None when nothing was measured (provider down, an internal
    # error, a hidden sensitive entry). Not part of ==: two records are the same judgement of the same pair.
    observation: UrlObservation | None = field(default=None, compare=False)


# Inconclusive rules that mean the provider's vantage failed under the measurement: pairs lost that run.
VANTAGE_LOST_RULES = frozenset({"vantage.down", "vantage.unhealthy"})


@dataclass(frozen=True)
class ProviderScore:
    """One row of the summary CSV."""

    run_id: str
    started_at: dt.datetime
    province: str
    provider_id: str
    provider_name: str
    asn: int | None
    measured: bool
    urls_total: int
    blocked: int
    accessible: int
    inconclusive: int
    in_grace: int
    compliance_pct: float | None  # None when nothing was measurable
    # pairs whose verdict the vantage's failure mid-run took away (vantage.down / vantage.unhealthy): the
    # provider was measured, but not fully; the run exits 3
    vantage_lost: int = 0
