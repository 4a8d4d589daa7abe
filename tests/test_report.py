"""Report formats against exact expected output: the ministry CSVs, the JSON, the terminal tables."""

from __future__ import annotations

import csv
import datetime as dt
import importlib
import io
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console

import auditor.report
from auditor.models import (
    Confidence,
    Judgement,
    ListEntry,
    MeasurementRecord,
    Method,
    ProviderHealth,
    ProviderScore,
    Verdict,
)
from auditor.observations import DnsLookup, HopObservation, UrlObservation
from auditor.report.csvformat import (
    MEASUREMENTS_HEADER,
    SUMMARY_HEADER,
    neutralise,
    write_measurements_csv,
    write_run_csvs,
    write_summary_csv,
)
from auditor.report.formatting import format_compliance_pct
from auditor.report.jsonformat import run_to_json
from auditor.report.table import render_summary_table, render_violations_table
from probes import base
from tests.builders import make_entry, make_health, make_judgement, make_record, make_run

UTC = dt.UTC
RUN = make_run(
    "20261127T223000Z",
    dt.datetime(2026, 11, 27, 22, 30, 0, 250000, tzinfo=UTC),
    status="complete",
    finished_at=dt.datetime(2026, 11, 27, 23, 1, 2, tzinfo=UTC),
    config_digest="sha256:0f",
)
PROVIDERS = [
    make_health("vnpt", run_id=RUN.run_id, provider_name="VNPT Gia Lai", asn=45899,
                checks=("resolver 203.162.4.191: ok",)),
    make_health("viettel", run_id=RUN.run_id, provider_name="Viettel – Chi nhánh Pleiku", asn=7552),
    make_health("fpt", run_id=RUN.run_id, provider_name="FPT Telecom", measured=False, reason="vantage unreachable"),
]


_DNS = base.DnsObservation("203.162.4.191:53", "A", "udp", None, "NOERROR", ("192.0.2.1",), elapsed_ms=2.5)
OBS = UrlObservation(
    "https://casino.example/",
    "vnpt",
    "direct",
    (HopObservation("https://casino.example/", "https", "casino.example", 443,
                    DnsLookup("casino.example", (_DNS,), ("192.0.2.1",), None)),),
    "2026-11-27T22:31:05Z",
    3.0,
)


def _rec(provider_id: str, entry: ListEntry, judgement: Judgement, at: dt.datetime) -> MeasurementRecord:
    return make_record(entry, provider_id=provider_id, run_id=RUN.run_id, judgement=judgement, measured_at=at,
                       observation=OBS)


CASINO = make_entry(
    "https://casino.example/",
    list_name="bocongan",
    line=2,
    category_code="CB",
    category_description="Cờ bạc",
    date_added=dt.date(2026, 11, 1),
)
NEWS = make_entry(
    "https://xn--tintc-yva.example/b%C3%A0i?id=1&x=2",
    list_name="bocongan",
    line=3,
    category_code="TT",
)
FORUM = make_entry("http://forum.example/", list_name="extra", line=1)

RECORDS = [
    _rec(
        "vnpt",
        CASINO,
        make_judgement(
            Verdict.BLOCKED, "dns.nxdomain", "NXDOMAIN from 203.162.4.191", Method.DNS, Confidence.CONFIRMED
        ),
        dt.datetime(2026, 11, 27, 22, 31, 5, 678000, tzinfo=UTC),
    ),
    _rec(
        "vnpt",
        NEWS,
        make_judgement(Verdict.ACCESSIBLE, "http.same_as_control", 'title "Trang chủ, tin tức" matches control'),
        # given in +07:00: written in UTC
        dt.datetime(2026, 11, 28, 5, 31, 6, tzinfo=dt.timezone(dt.timedelta(hours=7))),
    ),
    _rec(
        "viettel",
        CASINO,
        make_judgement(
            Verdict.BLOCKED,
            "http.blockpage",
            "Trang cảnh báo: nội dung bị chặn",
            Method.HTTP,
            Confidence.LIKELY,
        ),
        dt.datetime(2026, 11, 27, 22, 32, 0, tzinfo=UTC),
    ),
    _rec(
        "viettel",
        FORUM,
        make_judgement(Verdict.INCONCLUSIVE, "control.site_down", "control: connection_refused\nretried once"),
        dt.datetime(2026, 11, 27, 22, 32, 1, tzinfo=UTC),
    ),
]


def _score(
    provider: ProviderHealth, counts: tuple[int, int, int, int, int], pct: float | None
) -> ProviderScore:
    total, blocked, accessible, inconclusive, in_grace = counts
    return ProviderScore(
        RUN.run_id,
        RUN.started_at,
        RUN.province,
        provider.provider_id,
        provider.provider_name,
        provider.asn,
        provider.measured,
        total,
        blocked,
        accessible,
        inconclusive,
        in_grace,
        pct,
    )


SCORES = [
    _score(PROVIDERS[0], (8, 7, 1, 0, 0), 87.5),
    _score(PROVIDERS[1], (4, 2, 1, 1, 1), 200 / 3),
    _score(PROVIDERS[2], (0, 0, 0, 0, 0), None),
]

EXPECTED_MEASUREMENTS = (
    "run_id,measured_at,province,provider_id,provider_name,list,url,category_code,date_added,verdict,method,"
    "confidence,evidence\r\n"
    "20261127T223000Z,2026-11-27T22:31:05Z,Gia Lai,vnpt,VNPT Gia Lai,bocongan,https://casino.example/,CB,"
    "2026-11-01,blocked,dns,confirmed,NXDOMAIN from 203.162.4.191\r\n"
    "20261127T223000Z,2026-11-27T22:31:06Z,Gia Lai,vnpt,VNPT Gia Lai,bocongan,"
    "https://xn--tintc-yva.example/b%C3%A0i?id=1&x=2,TT,,accessible,,,"
    '"title ""Trang chủ, tin tức"" matches control"\r\n'
    "20261127T223000Z,2026-11-27T22:32:00Z,Gia Lai,viettel,Viettel – Chi nhánh Pleiku,bocongan,"
    "https://casino.example/,CB,2026-11-01,blocked,http,likely,Trang cảnh báo: nội dung bị chặn\r\n"
    "20261127T223000Z,2026-11-27T22:32:01Z,Gia Lai,viettel,Viettel – Chi nhánh Pleiku,extra,"
    "http://forum.example/,,,inconclusive,,,control: connection_refused retried once\r\n"
)

EXPECTED_SUMMARY = (
    "run_id,started_at,province,provider_id,provider_name,asn,measured,urls_total,blocked,accessible,"
    "inconclusive,compliance_pct,sla_breaches,median_hours_to_block,newly_accessible,must_block_failed,"
    "overblocked,vantage_lost\r\n"
    # without the run's analysis the five analysis columns are empty (unknown), never 0
    "20261127T223000Z,2026-11-27T22:30:00Z,Gia Lai,vnpt,VNPT Gia Lai,45899,yes,8,7,1,0,87.5,,,,,,0\r\n"
    "20261127T223000Z,2026-11-27T22:30:00Z,Gia Lai,viettel,Viettel – Chi nhánh Pleiku,7552,yes,4,2,1,1,66.6,,,,,,0\r\n"
    "20261127T223000Z,2026-11-27T22:30:00Z,Gia Lai,fpt,FPT Telecom,,no,0,0,0,0,,,,,,,0\r\n"
)


def test_headers_are_the_ministry_contract() -> None:
    assert MEASUREMENTS_HEADER == (
        "run_id",
        "measured_at",
        "province",
        "provider_id",
        "provider_name",
        "list",
        "url",
        "category_code",
        "date_added",
        "verdict",
        "method",
        "confidence",
        "evidence",
    )
    assert SUMMARY_HEADER == (
        "run_id",
        "started_at",
        "province",
        "provider_id",
        "provider_name",
        "asn",
        "measured",
        "urls_total",
        "blocked",
        "accessible",
        "inconclusive",
        "compliance_pct",
        "sla_breaches",
        "median_hours_to_block",
        "newly_accessible",
        "must_block_failed",
        "overblocked",
        "vantage_lost",
    )


def test_measurements_csv_exact() -> None:
    fh = io.StringIO(newline="")
    assert write_measurements_csv(fh, RUN, PROVIDERS, iter(RECORDS)) == 4
    assert fh.getvalue() == EXPECTED_MEASUREMENTS


def test_measurements_csv_streams() -> None:
    def stream() -> Iterator[MeasurementRecord]:
        yield from RECORDS

    fh = io.StringIO(newline="")
    write_measurements_csv(fh, RUN, PROVIDERS, stream())
    assert fh.getvalue() == EXPECTED_MEASUREMENTS


def test_measurements_csv_empty_run_is_just_the_header() -> None:
    fh = io.StringIO(newline="")
    assert write_measurements_csv(fh, RUN, PROVIDERS, []) == 0
    assert fh.getvalue() == ",".join(MEASUREMENTS_HEADER) + "\r\n"


def test_summary_csv_exact() -> None:
    fh = io.StringIO(newline="")
    write_summary_csv(fh, SCORES)
    assert fh.getvalue() == EXPECTED_SUMMARY


@pytest.mark.parametrize(
    "pct, text",
    [
        (87.5, "87.5"),
        (100.0, "100.0"),
        (0.0, "0.0"),
        (57.3, "57.3"),  # stored as 57.29999...: must not become 57.2
        (200 / 3, "66.6"),  # truncated, not rounded
        (100 * 9999 / 10000, "99.9"),  # one violation in 10000 never shows as 100.0
        (None, ""),
    ],
)
def test_compliance_pct_format(pct: float | None, text: str) -> None:
    assert format_compliance_pct(pct) == text


def test_write_run_csvs_atomic(tmp_path: Path) -> None:
    out = tmp_path / "reports" / "2026-11"
    calls = []

    def source() -> Iterator[MeasurementRecord]:
        calls.append(1)
        return iter(RECORDS)

    m_path, s_path = write_run_csvs(out, RUN, PROVIDERS, source, SCORES)
    assert m_path == out / "measurements-20261127T223000Z.csv"
    assert s_path == out / "summary-20261127T223000Z.csv"
    assert sorted(p.name for p in out.iterdir()) == [
        "measurements-20261127T223000Z.csv",
        "summary-20261127T223000Z.csv",
    ]  # no temporary file left behind
    assert m_path.read_bytes() == EXPECTED_MEASUREMENTS.encode("utf-8")  # UTF-8, no BOM, CRLF kept
    assert s_path.read_bytes() == EXPECTED_SUMMARY.encode("utf-8")
    assert calls == [1]
    umask = os.umask(0)
    os.umask(umask)
    assert m_path.stat().st_mode & 0o777 == 0o666 & ~umask  # not tempfile's 0600


def test_write_run_csvs_replaces_and_cleans_up_on_failure(tmp_path: Path) -> None:
    write_run_csvs(tmp_path, RUN, PROVIDERS, lambda: RECORDS, SCORES)

    def broken() -> Iterator[MeasurementRecord]:
        yield RECORDS[0]
        raise RuntimeError("store went away")

    with pytest.raises(RuntimeError):
        write_run_csvs(tmp_path, RUN, PROVIDERS, broken, SCORES)
    # the previous, complete files are untouched and no temporary file is left
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "measurements-20261127T223000Z.csv",
        "summary-20261127T223000Z.csv",
    ]
    assert (tmp_path / "measurements-20261127T223000Z.csv").read_bytes() == EXPECTED_MEASUREMENTS.encode()


def test_write_run_csvs_refuses_a_run_id_that_is_a_path(tmp_path: Path) -> None:
    bad = make_run("../etc", RUN.started_at)
    with pytest.raises(ValueError):
        write_run_csvs(tmp_path, bad, PROVIDERS, list, [])


def test_run_to_json() -> None:
    doc = run_to_json(RUN, PROVIDERS, SCORES, iter(RECORDS))
    assert doc["schema"] == "auditor.report/1"
    assert doc["run"] == {
        "run_id": "20261127T223000Z",
        "province": "Gia Lai",
        "status": "complete",
        "started_at": "2026-11-27T22:30:00Z",
        "finished_at": "2026-11-27T23:01:02Z",
        "config_digest": "sha256:0f",
    }
    assert doc["providers"][2] == {
        "provider_id": "fpt",
        "provider_name": "FPT Telecom",
        "asn": None,
        "measured": False,
        "reason": "vantage unreachable",
        "checks": [],
    }
    assert doc["providers"][0]["checks"] == ["resolver 203.162.4.191: ok"]
    assert doc["scores"][0] == {
        "provider_id": "vnpt",
        "provider_name": "VNPT Gia Lai",
        "asn": 45899,
        "measured": True,
        "urls_total": 8,
        "blocked": 7,
        "accessible": 1,
        "inconclusive": 0,
        "in_grace": 0,
        "compliance_pct": 87.5,
    }
    assert doc["scores"][2]["compliance_pct"] is None
    assert doc["measurements"][0] == {
        "provider_id": "vnpt",
        "url": "https://casino.example/",
        "list": "bocongan",
        "category_code": "CB",
        "date_added": "2026-11-01",
        "verdict": "blocked",
        "method": "dns",
        "confidence": "confirmed",
        "rule": "dns.nxdomain",
        "evidence": "NXDOMAIN from 203.162.4.191",
        "measured_at": "2026-11-27T22:31:05Z",
    }
    assert doc["measurements"][1]["method"] is None and doc["measurements"][1]["date_added"] is None
    assert all("observations" not in m for m in doc["measurements"])
    json.dumps(doc, allow_nan=False)  # JSON-able as is


def test_run_to_json_with_observations() -> None:
    doc = run_to_json(RUN, PROVIDERS, SCORES, RECORDS, include_observations=True)
    stored = {"provider": json.loads(json.dumps(base.to_dict(OBS)))}  # as the store keeps it
    assert [m["observations"] for m in doc["measurements"]] == [stored] * 4
    assert doc["measurements"][0]["observations"]["provider"]["hops"][0]["dns"]["queries"][0]["rcode"] == "NOERROR"


def _text(renderable: object) -> str:
    console = Console(record=True, width=120, color_system=None)
    console.print(renderable)
    return console.export_text()


def test_summary_table_renders() -> None:
    text = _text(render_summary_table(SCORES, RUN))
    assert "Compliance, run 20261127T223000Z (Gia Lai, started 2026-11-27T22:30:00Z)" in text
    for heading in (
        "Provider",
        "ASN",
        "Measured",
        "URLs",
        "Blocked",
        "Accessible",
        "Inconclusive",
        "In grace",
        "Compliance %",
    ):
        assert heading in text
    lines = text.splitlines()
    vnpt = next(line for line in lines if "VNPT Gia Lai (vnpt)" in line)
    assert vnpt.split("│")[2:] == [
        " AS45899 ",
        " yes      ",
        "    8 ",
        "       7 ",
        "          1 ",
        "            0 ",
        "        0 ",
        "         87.5 ",
        "",
    ]
    fpt = next(line for line in lines if "FPT Telecom (fpt)" in line)
    assert " no " in fpt and fpt.rstrip().endswith("— │")
    assert "66.6" in text


def test_violations_table_renders_accessible_entries_only() -> None:
    odd = make_record(
        FORUM,
        provider_id="viettel",
        run_id=RUN.run_id,
        judgement=make_judgement(Verdict.ACCESSIBLE, "http.same_as_control", "title [/b] [bold]Diễn đàn[/bold]"),
        measured_at=RUN.started_at,
    )
    text = _text(render_violations_table([*RECORDS, odd], PROVIDERS))
    assert "Violations" in text
    flat = " ".join(text.split())  # long cells fold over two lines at width 120
    assert "https://xn--tintc-yva.example/b%C3%A" in text and "0i?id=1&x=2" in text  # folded, not cut
    assert 'title "Trang chủ, tin tức" matches' in flat
    assert "title [/b] [bold]Diễn đàn[/bold]" in text  # shown as is, never parsed as markup
    assert "VNPT Gia Lai" in text and "TT" in text
    assert "casino.example" not in text  # blocked: not a violation
    assert "forum.example" in text
    assert "2 violations" in text


def test_violations_table_limit_and_grace() -> None:
    many = [
        make_record(
            make_entry(f"https://v{n}.example/", line=n),
            provider_id="vnpt",
            run_id=RUN.run_id,
            judgement=make_judgement(Verdict.ACCESSIBLE, "r", "e"),
            measured_at=RUN.started_at,
        )
        for n in range(5)
    ]
    text = _text(render_violations_table(many, PROVIDERS, limit=2))
    assert "v0.example" in text and "v1.example" in text and "v2.example" not in text
    assert "5 violations, first 2 shown" in text
    text = _text(render_violations_table(many, PROVIDERS, in_grace=lambda e: e.line != 3))
    assert "v3.example" in text and "v0.example" not in text
    assert "1 violation" in text
    assert "no violations" in _text(render_violations_table(RECORDS[:1], PROVIDERS))


def test_csv_schema_doc_matches_the_headers() -> None:
    """docs/csv-schema.md is the contract: its column tables and examples must follow the code."""
    doc = (Path(__file__).parent.parent / "docs" / "csv-schema.md").read_text(encoding="utf-8")
    m_section, s_section = doc.split("## `measurements-")[1].split("## `summary-")
    for section, header in ((m_section, MEASUREMENTS_HEADER), (s_section, SUMMARY_HEADER)):
        table_columns = tuple(re.findall(r"^\| \d+ \| `(\w+)` \|", section, flags=re.MULTILINE))
        assert table_columns == header
    examples = re.findall(r"```csv\n(.*?)```", doc, flags=re.DOTALL)
    assert [e.splitlines()[0] for e in examples] == [",".join(MEASUREMENTS_HEADER), ",".join(SUMMARY_HEADER)]


# Every free-text field starts with a character a spreadsheet would take for a formula.
HOSTILE_RUN = make_run(
    "20261127T223000Z",
    dt.datetime(2026, 11, 27, 22, 30, tzinfo=UTC),
    province="+84 Gia Lai",
    status="complete",
)
HOSTILE_PROVIDERS = [
    make_health("-vnpt", run_id=RUN.run_id, provider_name='=HYPERLINK("http://evil.example","x")', asn=45899)
]
HOSTILE_ENTRY = make_entry(
    "=cmd|' /C calc'!A0",  # normalise_url would refuse it; the writer must not rely on that
    host="x",
    list_name="@list",
    line=2,
    category_code="=1+2",
    date_added=dt.date(2026, 11, 1),
)
HOSTILE_RECORDS = [
    _rec(
        "-vnpt",
        HOSTILE_ENTRY,
        make_judgement(Verdict.BLOCKED, "r", "@SUM(1+1)", Method.HTTP, Confidence.CONFIRMED),
        dt.datetime(2026, 11, 27, 22, 31, 5, tzinfo=UTC),
    ),
    _rec(
        "-vnpt",
        HOSTILE_ENTRY,
        make_judgement(Verdict.ACCESSIBLE, "r", "\t=1+1"),
        dt.datetime(2026, 11, 27, 22, 31, 6, tzinfo=UTC),
    ),
    _rec(
        "-vnpt",
        HOSTILE_ENTRY,
        make_judgement(Verdict.INCONCLUSIVE, "r", "'=1+1 already quoted"),
        dt.datetime(2026, 11, 27, 22, 31, 7, tzinfo=UTC),
    ),
    _rec(
        "-vnpt",
        HOSTILE_ENTRY,
        make_judgement(Verdict.INCONCLUSIVE, "r", "'quoted', and a=1 later"),  # nothing to neutralise
        dt.datetime(2026, 11, 27, 22, 31, 8, tzinfo=UTC),
    ),
]
HOSTILE_SCORE = ProviderScore(
    RUN.run_id,
    HOSTILE_RUN.started_at,
    "@Gia Lai",
    "-vnpt",
    "-VNPT",
    45899,
    True,
    4,
    1,
    1,
    2,
    0,
    50.0,
)


def test_measurements_csv_neutralises_formulas_in_free_text_only() -> None:
    fh = io.StringIO(newline="")
    write_measurements_csv(fh, HOSTILE_RUN, HOSTILE_PROVIDERS, HOSTILE_RECORDS)
    fixed = (
        '20261127T223000Z,{at},\'+84 Gia Lai,\'-vnpt,"\'=HYPERLINK(""http://evil.example"",""x"")",\'@list,'
    )
    fixed += "'=cmd|' /C calc'!A0,'=1+2,2026-11-01,"
    assert fh.getvalue() == (
        ",".join(MEASUREMENTS_HEADER) + "\r\n"
        + fixed.format(at="2026-11-27T22:31:05Z") + "blocked,http,confirmed,'@SUM(1+1)\r\n"
        + fixed.format(at="2026-11-27T22:31:06Z") + "accessible,,,'\t=1+1\r\n"
        + fixed.format(at="2026-11-27T22:31:07Z") + "inconclusive,,,''=1+1 already quoted\r\n"
        + fixed.format(at="2026-11-27T22:31:08Z") + "inconclusive,,,\"'quoted', and a=1 later\"\r\n"
    )  # fmt: skip


def test_summary_csv_neutralises_formulas_in_free_text_only() -> None:
    fh = io.StringIO(newline="")
    write_summary_csv(fh, [HOSTILE_SCORE])
    assert fh.getvalue() == (
        ",".join(SUMMARY_HEADER) + "\r\n"
        "20261127T223000Z,2026-11-27T22:30:00Z,'@Gia Lai,'-vnpt,'-VNPT,45899,yes,4,1,1,2,50.0,,,,,,0\r\n"
    )


def restore(cell: str) -> str:
    """The reading rule of docs/csv-schema.md, for a program that needs the original text."""
    if cell.startswith("'") and cell.lstrip("'").startswith(("=", "+", "-", "@", "\t", "\r")):
        return cell[1:]
    return cell


def test_neutralised_csv_reads_back_to_the_same_values() -> None:
    fh = io.StringIO(newline="")
    write_measurements_csv(fh, HOSTILE_RUN, HOSTILE_PROVIDERS, HOSTILE_RECORDS)
    rows = list(csv.DictReader(io.StringIO(fh.getvalue(), newline="")))
    # What programs read by value is untouched.
    assert [(r["verdict"], r["method"], r["confidence"], r["date_added"]) for r in rows] == [
        ("blocked", "http", "confirmed", "2026-11-01"),
        ("accessible", "", "", "2026-11-01"),
        ("inconclusive", "", "", "2026-11-01"),
        ("inconclusive", "", "", "2026-11-01"),
    ]
    # Free text comes back exactly with the documented rule.
    free = ("province", "provider_id", "provider_name", "list", "url", "category_code", "evidence")
    assert [tuple(restore(r[k]) for k in free) for r in rows] == [
        (
            HOSTILE_RUN.province,
            "-vnpt",
            HOSTILE_PROVIDERS[0].provider_name,
            "@list",
            HOSTILE_ENTRY.url,
            "=1+2",
            rec.judgement.evidence,
        )
        for rec in HOSTILE_RECORDS
    ]


@pytest.mark.parametrize(
    ("text", "written"),
    [
        ("=1", "'=1"), ("+1", "'+1"), ("-1", "'-1"), ("@x", "'@x"), ("\tx", "'\tx"), ("\rx", "'\rx"),
        ("'=1", "''=1"), ("''@x", "'''@x"), ("'a", "'a"), ("a=1", "a=1"), (" =1", " =1"), ("", ""),
        ("Gia Lai", "Gia Lai"), ("https://a.example/=x", "https://a.example/=x"),
    ],
)  # fmt: skip
def test_neutralise(text: str, written: str) -> None:
    assert neutralise(text) == written
    assert restore(written) == text


@pytest.mark.parametrize("name", sorted(auditor.report.__all__))
def test_the_report_package_names_are_its_modules_own(name: str) -> None:
    """`from auditor.report import X` (loaded on first use) gives the very object its module defines."""
    module = importlib.import_module(f"auditor.report.{auditor.report._EXPORTS[name]}")
    assert getattr(auditor.report, name) is getattr(module, name)
