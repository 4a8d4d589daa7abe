"""The ministry CSVs from the fixed four-night store, golden; the analysis columns; Vietnamese headers."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from auditor.analysis import RunAnalysis, analyse
from auditor.report.csvformat import (
    MEASUREMENTS_HEADER,
    MEASUREMENTS_HEADER_VI,
    SUMMARY_HEADER,
    SUMMARY_HEADER_VI,
    SummaryExtras,
    format_hours,
    summary_extras,
    write_measurements_csv,
    write_run_csvs,
    write_summary_csv,
)
from auditor.store import SqliteStore
from tests import fixed_store as fx
from tests.test_report_html import check_golden


@pytest.fixture(scope="module")
def analysed() -> Iterator[tuple[SqliteStore, RunAnalysis]]:
    store = fx.fixed_store()
    a = analyse(store, fx.LAST.run_id, grace_hours=fx.GRACE_HOURS, timezone=fx.TIMEZONE,
                must_block=fx.MUST_BLOCK, must_allow=fx.MUST_ALLOW)
    try:
        yield store, a
    finally:
        store.close()


EXTRAS = SUMMARY_HEADER[-6:-1]  # the five analysis columns (version 2); vantage_lost (version 3) follows


def test_summary_csv_golden(analysed: tuple[SqliteStore, RunAnalysis]) -> None:
    _, a = analysed
    fh = io.StringIO(newline="")
    write_summary_csv(fh, a.scores, summary_extras(a))
    check_golden("summary.csv", fh.getvalue())
    rows = {r["provider_id"]: r for r in csv.DictReader(io.StringIO(fh.getvalue(), newline=""))}
    assert [rows["fpt"][c] for c in EXTRAS] == ["3", "577.5", "1", "1", "0"]
    assert [rows["vnpt"][c] for c in EXTRAS] == ["1", "349.5", "1", "0", "0"]
    assert [rows["viettel"][c] for c in EXTRAS] == ["1", "121.5", "0", "0", "1"]
    assert [rows["mobifone"][c] for c in SUMMARY_HEADER[-7:-1]] == [""] * 6  # not measured: unknown, not 0
    assert {r["vantage_lost"] for r in rows.values()} == {"0"}  # no vantage failed under a measurement
    assert rows["vnpt"]["urls_total"] == "7"  # the must-allow portal is left out of the counts


def test_measurements_csv_golden(analysed: tuple[SqliteStore, RunAnalysis]) -> None:
    store, a = analysed
    fh = io.StringIO(newline="")
    write_measurements_csv(fh, a.run, store.providers(a.run.run_id), store.iter_measurements(a.run.run_id))
    check_golden("measurements.csv", fh.getvalue())


def test_existing_columns_are_unchanged_by_the_analysis(analysed: tuple[SqliteStore, RunAnalysis]) -> None:
    _, a = analysed
    with_extras, without = io.StringIO(newline=""), io.StringIO(newline="")
    write_summary_csv(with_extras, a.scores, summary_extras(a))
    write_summary_csv(without, a.scores)
    cut = len(SUMMARY_HEADER) - 6
    rows_with, rows_without = (list(csv.reader(io.StringIO(fh.getvalue()))) for fh in (with_extras, without))
    assert len(rows_with) == len(rows_without) == 1 + len(fx.PROVIDERS)  # the header and one row each
    assert [r[:cut] for r in rows_with] == [r[:cut] for r in rows_without]
    assert SUMMARY_HEADER[:cut][-1] == "compliance_pct"  # appended after the last contract column


def test_vietnamese_headers_only_when_asked(analysed: tuple[SqliteStore, RunAnalysis]) -> None:
    store, a = analysed
    fh = io.StringIO(newline="")
    write_summary_csv(fh, a.scores, summary_extras(a), headers="vi")
    header = next(csv.reader(io.StringIO(fh.getvalue())))
    assert tuple(header) == SUMMARY_HEADER_VI
    assert header[3] == "Mã nhà mạng" and header[11] == "Tỷ lệ tuân thủ (%)" and header[-2] == "Chặn nhầm" and header[-1] == "Số cặp mất do điểm đo lỗi"
    fh = io.StringIO(newline="")
    write_measurements_csv(fh, a.run, store.providers(a.run.run_id), [], headers="vi")
    assert fh.getvalue() == ",".join(MEASUREMENTS_HEADER_VI) + "\r\n"
    assert len(set(SUMMARY_HEADER_VI)) == len(SUMMARY_HEADER) and len(set(MEASUREMENTS_HEADER_VI)) == len(MEASUREMENTS_HEADER)
    # the contract is the default
    fh = io.StringIO(newline="")
    write_summary_csv(fh, a.scores)
    assert fh.getvalue().startswith(",".join(SUMMARY_HEADER) + "\r\n")


def test_run_csvs_carry_the_extras(analysed: tuple[SqliteStore, RunAnalysis], tmp_path: Path) -> None:
    store, a = analysed
    extras = {"vnpt": SummaryExtras(2, 0.25, 3, 4, 5)}
    _, summary = write_run_csvs(tmp_path, a.run, store.providers(a.run.run_id),
                                lambda: store.iter_measurements(a.run.run_id), a.scores, extras=extras)
    with summary.open(encoding="utf-8", newline="") as fh:
        rows = {r["provider_id"]: r for r in csv.DictReader(fh)}
    assert [rows["vnpt"][c] for c in EXTRAS] == ["2", "0.3", "3", "4", "5"]
    assert [rows["fpt"][c] for c in EXTRAS] == [""] * 5  # no figures given for it


@pytest.mark.parametrize(("hours", "text"), [(None, ""), (0.0, "0.0"), (73.25, "73.3"), (577.5, "577.5"),
                                             (1 / 3, "0.3"), (7613.996944, "7614.0")])
def test_format_hours(hours: float | None, text: str) -> None:
    assert format_hours(hours) == text


def test_header_lists_line_up() -> None:
    assert len(SUMMARY_HEADER_VI) == len(SUMMARY_HEADER) and len(MEASUREMENTS_HEADER_VI) == len(MEASUREMENTS_HEADER)
