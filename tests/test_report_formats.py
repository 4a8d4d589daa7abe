"""The report formats behind their interface: every ReportFormat has a formatter, and each one renders a
real stored run (the fixed four-night store) exactly as its golden file says.

Adding a format: its module, one line in auditor/report/formats.py, and a case in CASES below (the test
that every format is tested fails until then).
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from auditor.analysis import analyse
from auditor.report.formats import FORMATS, format_for, render
from auditor.report.interface import AnalysedRun, ReportFormat, ReportFormatter, ReportOptions
from auditor.report.stored import write_report
from tests import fixed_store as fx
from tests.test_report_html import check_golden

# (format, options, golden file in tests/golden/)
CASES = [
    (ReportFormat.table, ReportOptions(), "report-table-en.txt"),
    (ReportFormat.table, ReportOptions(lang="vi"), "report-table-vi.txt"),
    (ReportFormat.csv, ReportOptions(), "summary.csv"),
    (ReportFormat.csv, ReportOptions(measurements=True), "measurements.csv"),
    (ReportFormat.json, ReportOptions(), "report.json"),
    (ReportFormat.html, ReportOptions(), "report-en.html"),
    (ReportFormat.html, ReportOptions(lang="vi"), "report-vi.html"),
]


@pytest.fixture(scope="module")
def stored() -> Iterator[AnalysedRun]:
    with fx.fixed_store() as store:
        run_id = fx.LAST.run_id
        analysis = analyse(store, run_id, grace_hours=fx.GRACE_HOURS, timezone=fx.TIMEZONE,
                           must_block=fx.MUST_BLOCK, must_allow=fx.MUST_ALLOW)
        yield AnalysedRun(analysis, tuple(store.providers(run_id)), lambda: store.iter_measurements(run_id))


def test_every_format_has_a_formatter() -> None:  # pip-audit's test_to_format_is_exhaustive
    for fmt in ReportFormat:
        assert isinstance(format_for(fmt), ReportFormatter), fmt
    assert set(FORMATS) == set(ReportFormat)


def test_every_format_is_tested() -> None:
    assert {fmt for fmt, _, _ in CASES} == set(ReportFormat)


@pytest.mark.parametrize(("fmt", "options", "golden"), CASES, ids=[g for _, _, g in CASES])
def test_each_format_renders_a_stored_run(stored: AnalysedRun, fmt: ReportFormat, options: ReportOptions,
                                          golden: str) -> None:
    report = render(stored, fmt, options)
    assert isinstance(report, str)
    check_golden(golden, report)


def test_the_table_says_which_provider_was_not_measured(stored: AnalysedRun) -> None:
    text = render(stored, ReportFormat.table)
    assert isinstance(text, str)
    assert text.endswith("\nmobifone not measured: vantage unreachable: connection refused by socks5 "
                         "127.0.0.1:1084\n")
    # a reason is text, never markup: what a network said cannot style the report or break it
    odd = replace(stored, providers=tuple(replace(h, reason="[bold]x[/] :smile:") if not h.measured else h
                                          for h in stored.providers))
    shown = render(odd, ReportFormat.table)
    assert isinstance(shown, str) and shown.endswith("mobifone not measured: [bold]x[/] :smile:\n")


def test_the_table_for_a_terminal_has_its_width_and_colours(stored: AnalysedRun) -> None:
    plain = render(stored, ReportFormat.table, ReportOptions(width=100))
    coloured = render(stored, ReportFormat.table, ReportOptions(width=100, terminal=True))
    assert isinstance(plain, str) and isinstance(coloured, str)
    assert "\x1b[" not in plain and max(len(line) for line in plain.splitlines()) <= 100
    assert "\x1b[" in coloured
    assert re.sub(r"\x1b\[[0-9;]*m", "", coloured) == plain


def test_write_report(tmp_path: Path) -> None:
    write_report("a,b\r\nc,d\r\n", tmp_path / "new" / "r.csv")
    assert (tmp_path / "new" / "r.csv").read_bytes() == b"a,b\r\nc,d\r\n"  # CRLF kept, directory made
    write_report(b"%PDF-1.7\n", tmp_path / "r.pdf")
    assert (tmp_path / "r.pdf").read_bytes() == b"%PDF-1.7\n"
    raw = io.BytesIO()
    out = io.TextIOWrapper(raw, encoding="utf-8", newline="")
    write_report("tỷ lệ\n", None, out)
    write_report(b"\x00\x01", None, out)
    out.flush()
    assert raw.getvalue() == "tỷ lệ\n".encode() + b"\x00\x01"
