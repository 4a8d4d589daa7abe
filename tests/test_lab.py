"""The real engine against the simulated province: one test per (provider, case), then the run's shape."""

from __future__ import annotations

import csv

import pytest

from auditor.lab import scenario
from auditor.models import Verdict
from auditor.report.csvformat import MEASUREMENTS_HEADER, SUMMARY_HEADER
from auditor.urls import normalise_url
from tests.labrun import LabRun

CASES = [(p, name) for p in scenario.PROVIDERS for name, _ in scenario.listed_urls()]


@pytest.mark.parametrize(("provider", "site"), CASES, ids=[f"{p.id}:{n}" for p, n in CASES])
def test_lab_case(lab_run: LabRun, provider: scenario.LabProvider, site: str) -> None:
    outcome = next(
        o for o in scenario.compare(lab_run.records) if o.provider_id == provider.id and o.site == site
    )
    expected = outcome.expected
    assert (outcome.verdict, outcome.method, outcome.confidence) == (
        expected.verdict,
        expected.method,
        expected.confidence,
    ), outcome.evidence
    if expected.rule:
        assert outcome.rule == expected.rule, outcome.evidence
    else:  # a plain accessible site: the last step that worked, TLS for https, the page for http
        assert expected.verdict == "accessible"
        lab_site = next(s for s in scenario.SITES if s.name == site)
        final_url = lab_site.location if lab_site.kind == "redirect" else outcome.url  # where the page is
        https = final_url.startswith("https://")
        assert outcome.rule == ("tls.valid_session" if https else "http.matches_control"), outcome.evidence
    assert outcome.evidence


def test_every_pair_is_stored_once(lab_run: LabRun) -> None:
    keys = [(r.provider_id, r.entry.url) for r in lab_run.records]
    assert len(keys) == len(set(keys)) == len(scenario.PROVIDERS) * len(scenario.listed_urls())


def test_unhealthy_providers_are_not_measured_with_the_reason(lab_run: LabRun) -> None:
    health = {h.provider_id: h for h in lab_run.result.health}
    assert health["viettel"].measured and health["vnpt"].measured and health["fpt"].measured
    assert not health["deadvantage"].measured and "vantage unreachable" in health["deadvantage"].reason
    assert not health["deadresolver"].measured and "resolver" in health["deadresolver"].reason
    assert not health["canaryfail"].measured and "canary" in health["canaryfail"].reason
    scores = {s.provider_id: s for s in lab_run.result.scores}
    assert scores["deadvantage"].compliance_pct is None
    assert scores["deadvantage"].inconclusive == len(scenario.listed_urls())
    assert not lab_run.result.all_measured


def test_scores_follow_the_verdicts_and_the_grace_period(lab_run: LabRun) -> None:
    score = {s.provider_id: s for s in lab_run.result.scores}["viettel"]
    mine = [r for r in lab_run.records if r.provider_id == "viettel"]
    blocked = sum(r.judgement.verdict is Verdict.BLOCKED for r in mine)
    accessible = sum(r.judgement.verdict is Verdict.ACCESSIBLE for r in mine)
    assert (score.blocked, score.accessible) == (blocked, accessible)
    # open-tls-case was added today: reported, not scored
    assert score.in_grace == 1
    grace_accessible = 1  # it is accessible at viettel
    assert score.compliance_pct == pytest.approx(100 * blocked / (blocked + accessible - grace_accessible))


def test_ministry_csvs_are_written_with_the_contract_headers(lab_run: LabRun) -> None:
    run_id = lab_run.result.run.run_id
    measurements = lab_run.out_dir / f"measurements-{run_id}.csv"
    summary = lab_run.out_dir / f"summary-{run_id}.csv"
    with measurements.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    assert tuple(rows[0]) == MEASUREMENTS_HEADER
    assert len(rows) - 1 == len(lab_run.records)
    by_url = {(r[3], r[6]): r for r in rows[1:]}
    nx = by_url[("viettel", "http://nxdomain-case.example/")]
    assert nx[9:12] == ["blocked", "dns", "confirmed"] and "NXDOMAIN" in nx[12]
    ok = by_url[("mobifone", "http://open-case.example/")]
    assert ok[9:12] == ["accessible", "", ""]
    with summary.open(encoding="utf-8", newline="") as fh:
        srows = list(csv.reader(fh))
    assert tuple(srows[0]) == SUMMARY_HEADER
    dead = next(r for r in srows if r[3] == "deadvantage")
    assert dead[6] == "no" and dead[11] == ""


def test_idn_entry_is_measured_under_its_ascii_name(lab_run: LabRun) -> None:
    assert normalise_url(f"http://{scenario.IDN_NAME}/").host == scenario.IDN_ASCII
    rec = next(r for r in lab_run.records if r.provider_id == "viettel" and r.entry.host == scenario.IDN_ASCII)
    assert rec.judgement.rule == "dns.nxdomain"


def test_observations_are_stored_for_rejudging(lab_run: LabRun) -> None:
    rec = next(r for r in lab_run.records if r.provider_id == "fpt" and "intercept-case" in r.entry.url)
    assert rec.observation is not None
    tls = rec.observation.hops[0].endpoints[0].tls
    assert tls is not None and tls.failure == "ssl_unknown_authority"
    assert tls.certificate is not None and "Interception" in tls.certificate.issuer
    control = lab_run.store.control_observation(lab_run.result.run.run_id, rec.entry.url)
    assert control is not None
    control_tls = control.hops[0].endpoints[0].tls
    assert control_tls is not None and control_tls.failure is None


def test_dns_only_blocking_is_told_apart(lab_run: LabRun) -> None:
    rec = next(r for r in lab_run.records if r.provider_id == "viettel" and "nxdomain-case" in r.entry.url)
    assert "DNS-only" in rec.judgement.evidence
