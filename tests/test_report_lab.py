"""End to end: two nights of the simulated province into one store, then the analysis and every format
(HTML, JSON, the summary CSV, the terminal).

Night 2 changes policies (scenario.providers_for): vnpt stops blackholing tcpblackhole-case (newly
accessible), mobifone starts blocking open-case, a must-block test URL gets through at mobifone (flagged)
and viettel's DNS over-blocks the must-allow portal.
"""

from __future__ import annotations

import asyncio
import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from rich.console import Console

from auditor.analysis import ProviderAnalysis, RunAnalysis, analyse
from auditor.config import Config, load_config
from auditor.engine import run_audit
from auditor.lab import Lab, scenario
from auditor.models import RunInfo
from auditor.report.csvformat import summary_extras, write_summary_csv
from auditor.report.formatting import format_compliance_pct
from auditor.report.html import render_html
from auditor.report.jsonformat import report_to_json
from auditor.report.table import render_analysis
from auditor.store import Store, open_store
from tests.test_report_json import validator

TCPBLACKHOLE = "http://tcpblackhole-case.example/"


@dataclass
class TwoNights:
    config: Config
    store: Store
    runs: tuple[RunInfo, RunInfo]
    analysis: RunAnalysis


def provider_of(a: RunAnalysis, provider_id: str) -> ProviderAnalysis:
    p = a.provider(provider_id)
    assert p is not None, provider_id
    return p


def html_part(pattern: str, doc: str) -> str:
    """The first group of `pattern` in the page, which must be there."""
    m = re.search(pattern, doc, re.DOTALL)
    assert m is not None, pattern
    return m.group(1)


@pytest.fixture(scope="module")
def two_nights(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TwoNights]:
    workdir = tmp_path_factory.mktemp("two-nights")
    runs: list[RunInfo] = []
    for night in (1, 2):
        with Lab(workdir, night=night) as lab:
            config = load_config(lab.config_path)
            with open_store(config.store) as store:
                result = asyncio.run(run_audit(config, store))
                wrong = [o for o in scenario.compare(store.iter_measurements(result.run.run_id), night) if not o.ok]
            assert not wrong, wrong
            runs.append(result.run)
    store = open_store(config.store)  # night 2's config: it names the must-block and must-allow URLs
    try:
        a = analyse(store, runs[1].run_id, grace_hours=config.grace_hours, timezone=config.timezone,
                    must_block=config.must_block, must_allow=config.must_allow, persistent_after=2)
        yield TwoNights(config, store, (runs[0], runs[1]), a)
    finally:
        store.close()


def test_night_2_is_judged_as_the_scenario_says(two_nights: TwoNights) -> None:
    assert two_nights.config.must_block == (scenario.MUST_BLOCK_URL,)
    assert two_nights.config.must_allow == (scenario.MUST_ALLOW_URL,)
    assert [r.run_id for r in two_nights.analysis.trend_runs] == [r.run_id for r in two_nights.runs]


def test_analysis_shows_the_regressions(two_nights: TwoNights) -> None:
    a = two_nights.analysis
    assert [(n.finding.provider_id, n.finding.url, n.previous_run_id) for n in a.newly_accessible] == [
        ("vnpt", TCPBLACKHOLE, two_nights.runs[0].run_id)
    ]
    assert [(f.provider_id, f.url) for f in a.must_block_failed] == [("mobifone", scenario.MUST_BLOCK_URL)]
    assert provider_of(a, "mobifone").flagged and not provider_of(a, "viettel").flagged
    assert [(f.provider_id, f.url, f.rule) for f in a.overblocked] == [
        ("viettel", scenario.MUST_ALLOW_URL, "dns.nxdomain")
    ]
    # mobifone: every violation of night 1 that is still one on night 2 is persistent (two in a row)
    mobifone = provider_of(a, "mobifone")
    assert (mobifone.violations, mobifone.persistent_violations) == (22, 21)  # the must-block URL is new tonight
    # trends: two points per provider; mobifone went up (it blocks open-case now), vnpt down (the blackhole
    # is gone); the unmeasured have no score either night
    trend = {p.provider_id: [format_compliance_pct(t.compliance_pct) for t in p.trend] for p in a.providers}
    assert trend == {
        "viettel": ["39.1", "41.6"], "vnpt": ["18.1", "17.3"], "fpt": ["22.7", "26.0"], "mobifone": ["0.0", "4.3"],
        "deadvantage": ["", ""], "deadresolver": ["", ""], "canaryfail": ["", ""],
    }
    # the must-allow portal is no part of anyone's compliance: no provider has a group for its list
    assert {g.key for p in a.providers for g in p.by_list} == {"lab-list", "must-block"}
    # time to block: open-case was first blocked at mobifone tonight
    ttb = {(t.provider_id, t.url): t for t in a.time_to_block}
    assert ttb[("mobifone", "http://open-case.example/")].run_id == two_nights.runs[1].run_id
    assert ttb[("vnpt", TCPBLACKHOLE)].run_id == two_nights.runs[0].run_id


def test_every_format_shows_them(two_nights: TwoNights) -> None:
    a, store = two_nights.analysis, two_nights.store
    run_id = a.run.run_id
    # HTML
    doc = render_html(a, "vi")
    newly = html_part(r'<h3 id="newly-accessible">(.*?)</table>', doc)
    assert "tcpblackhole-case.example" in newly and "(1)" in newly
    trend = html_part(r'<section id="trend">(.*?)</section>', doc)
    assert trend.count("<polyline") == 4  # the four measured providers, two nights each
    assert "kiemtra-chan.example" in html_part(r'<section id="must-block">(.*?)</section>', doc)
    # JSON
    j = report_to_json(a, store.providers(run_id), store.iter_measurements(run_id))
    validator().validate(j)
    assert [n["url"] for n in j["analysis"]["newly_accessible"]] == [TCPBLACKHOLE]
    assert [len(p["trend"]) for p in j["analysis"]["providers"]] == [2] * 7
    # the ministry's summary CSV
    fh = io.StringIO(newline="")
    write_summary_csv(fh, a.scores, summary_extras(a))
    rows = {r["provider_id"]: r for r in csv.DictReader(io.StringIO(fh.getvalue(), newline=""))}
    assert rows["vnpt"]["newly_accessible"] == "1" and rows["viettel"]["newly_accessible"] == "0"
    assert rows["mobifone"]["must_block_failed"] == "1" and rows["viettel"]["overblocked"] == "1"
    assert rows["deadvantage"]["sla_breaches"] == ""
    # terminal
    console = Console(file=io.StringIO(), width=160, color_system=None, record=True)
    console.print(render_analysis(a, "en"))
    text = console.export_text()
    assert "Newly accessible: blocked in the previous run, accessible now (1)" in text
    assert TCPBLACKHOLE in text and "FLAGGED" in text


def test_lab_nights_are_validated() -> None:
    with pytest.raises(ValueError, match="nights"):
        Lab(Path("unused"), night=3)


def test_lab_output_names_every_case_judged_otherwise() -> None:
    from auditor.lab.scenario import CaseOutcome, Expected
    from auditor.report.lab import lab_check_line, render_lab_mismatches

    right = CaseOutcome("vnpt", "tcpreset-case.example", "http://tcpreset-case.example/",
                        Expected("blocked", "tcp", "confirmed", "tcp.refused"), "blocked", "tcp", "confirmed",
                        "tcp.refused", "TCP connection refused; control connected")
    wrong = CaseOutcome("viettel", "nxdomain-case.example", "http://nxdomain-case.example/",
                        Expected("blocked", "dns", "confirmed", "dns.nxdomain"), "accessible", "", "",
                        "tls.valid_session", "title [b]x[/b]")
    console = Console(file=io.StringIO(), width=200, color_system=None, record=True)
    console.print(render_lab_mismatches([wrong]))
    console.print(lab_check_line([right, wrong]))
    text = console.export_text()
    row = next(line for line in text.splitlines() if "nxdomain-case.example" in line)
    assert [c.strip() for c in row.split("│")[1:-1]] == [
        "viettel", "nxdomain-case.example", "blocked dns confirmed dns.nxdomain", "accessible   tls.valid_session",
        "title [b]x[/b]",  # evidence is text, not markup
    ]
    assert text.endswith("lab check: 1/2 cases judged as expected\n")
