"""The two CSV files sent to the ministry: one row per (provider, URL), and one row per provider.

The column lists below are a contract (see docs/csv-schema.md): exactly these names, in this order. The
schema only ever grows by new columns at the END; nothing is renamed, removed or reordered.

Free-text cells are neutralised against spreadsheet formulas (`neutralise`, the OWASP CSV-injection advice);
the cells programs read by value never are.

Formatting is done by pure functions that write to an open text file (`open(path, "w", encoding="utf-8",
newline="")`, or `io.StringIO(newline="")`); `write_run_csvs` adds the atomic file handling.
"""

from __future__ import annotations

import csv
import io
import os
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from auditor.analysis import RunAnalysis
from auditor.models import MeasurementRecord, ProviderHealth, ProviderScore, RunInfo, Verdict
from auditor.report.formatting import format_compliance_pct, format_hours, format_utc, iso_date
from auditor.report.i18n import CSV_COLUMNS_VI
from auditor.report.interface import AnalysedRun, HeaderStyle, ReportFormatter, ReportOptions

MEASUREMENTS_HEADER = (
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

SUMMARY_HEADER = (
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
    # appended with the run analysis (auditor.analysis), see docs/csv-schema.md
    "sla_breaches",
    "median_hours_to_block",
    "newly_accessible",
    "must_block_failed",
    "overblocked",
    # version 3 (issue 9): pairs lost to a vantage that failed mid-run
    "vantage_lost",
)

# Vietnamese headers, only behind an explicit option (headers="vi"): the contract is the English names.
MEASUREMENTS_HEADER_VI = tuple(CSV_COLUMNS_VI[c] for c in MEASUREMENTS_HEADER)
SUMMARY_HEADER_VI = tuple(CSV_COLUMNS_VI[c] for c in SUMMARY_HEADER)


@dataclass(frozen=True)
class SummaryExtras:
    """One provider's analysis figures, for the summary's last five columns."""

    sla_breaches: int
    median_hours_to_block: float | None
    newly_accessible: int
    must_block_failed: int
    overblocked: int


def summary_extras(analysis: RunAnalysis) -> dict[str, SummaryExtras]:
    """The `extras` argument of write_summary_csv / write_run_csvs, from a run's analysis."""
    return {
        p.provider_id: SummaryExtras(
            p.sla_breaches, p.median_hours_to_block, p.newly_accessible, p.must_block_failed, p.overblocked
        )
        for p in analysis.providers
    }


def _extras_cells(extras: Mapping[str, SummaryExtras] | None, score: ProviderScore) -> tuple[object, ...]:
    x = extras.get(score.provider_id) if extras is not None else None
    if x is None or not score.measured:  # no analysis given, or nothing measured: unknown, not zero
        return ("", "", "", "", "")
    return (x.sla_breaches, format_hours(x.median_hours_to_block), x.newly_accessible, x.must_block_failed,
            x.overblocked)


def _one_line(text: str) -> str:
    # Evidence is "one line" by contract; a page title or an error text from the network may not be.
    # splitlines() also knows U+2028 and friends, which some spreadsheet programs show as line breaks.
    return " ".join(text.splitlines())


# OWASP "CSV Injection": a spreadsheet takes a cell that starts with one of these for a formula (tab and CR
# too, because some programs strip them and then find the formula). https://owasp.org/www-community/attacks/CSV_Injection
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise(text: str) -> str:
    """A free-text cell made safe to open in a spreadsheet: a leading `'` if it could be read as a formula.

    A cell that already starts with quotes before such a character gets one more, so the change can be
    undone exactly: drop one leading `'` where the text after all its leading `'`s starts with one of
    them (docs/csv-schema.md). Only free text goes through here, never a value that programs read
    (verdict, method, confidence, times, counts), and those never start with these characters anyway.
    """
    return "'" + text if text.lstrip("'").startswith(_FORMULA_START) else text


def _writer(fh: TextIO) -> Any:
    # RFC 4180: comma, double-quote quoting (a quote inside is doubled), CRLF after every record.
    return csv.writer(fh, dialect="excel", lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)


def write_measurements_csv(
    fh: TextIO,
    run: RunInfo,
    providers: Sequence[ProviderHealth],
    measurements: Iterable[MeasurementRecord],
    *,
    headers: HeaderStyle = "contract",
) -> int:
    """Write the header and one row per record, streaming; return the number of rows written.
    `headers="vi"` writes Vietnamese column names instead of the contract's (only when asked for)."""
    names = {p.provider_id: p.provider_name for p in providers}
    writer = _writer(fh)
    writer.writerow(MEASUREMENTS_HEADER_VI if headers == "vi" else MEASUREMENTS_HEADER)
    count = 0
    for rec in measurements:
        entry, judgement = rec.entry, rec.judgement
        blocked = judgement.verdict is Verdict.BLOCKED
        writer.writerow(
            (
                rec.run_id,
                format_utc(rec.measured_at),
                neutralise(_one_line(run.province)),
                neutralise(rec.provider_id),
                neutralise(_one_line(names.get(rec.provider_id, ""))),
                neutralise(entry.list_name),
                neutralise(entry.url),
                neutralise(entry.category_code),
                iso_date(entry.date_added) or "",
                judgement.verdict.value,
                judgement.method.value if blocked and judgement.method else "",
                judgement.confidence.value if blocked and judgement.confidence else "",
                neutralise(_one_line(judgement.evidence)),
            )
        )
        count += 1
    return count


def write_summary_csv(
    fh: TextIO,
    scores: Sequence[ProviderScore],
    extras: Mapping[str, SummaryExtras] | None = None,
    *,
    headers: HeaderStyle = "contract",
) -> None:
    """Write the header and one row per provider score, in the given order. `extras` (summary_extras of
    the run's analysis) fills the last five columns; without it they are empty."""
    writer = _writer(fh)
    writer.writerow(SUMMARY_HEADER_VI if headers == "vi" else SUMMARY_HEADER)
    for s in scores:
        writer.writerow(
            (
                s.run_id,
                format_utc(s.started_at),
                neutralise(_one_line(s.province)),
                neutralise(s.provider_id),
                neutralise(_one_line(s.provider_name)),
                "" if s.asn is None else str(s.asn),
                "yes" if s.measured else "no",
                s.urls_total,
                s.blocked,
                s.accessible,
                s.inconclusive,
                format_compliance_pct(s.compliance_pct),
                *_extras_cells(extras, s),
                s.vantage_lost,
            )
        )


class CsvFormat(ReportFormatter):
    """`auditor report --format csv`: the summary, or with `measurements` the per-URL CSV, as sent to the
    ministry (the summary with the analysis columns)."""

    def format(self, run: AnalysedRun, options: ReportOptions) -> str:
        fh = io.StringIO(newline="")
        if options.measurements:
            records = run.measurements()
            write_measurements_csv(fh, run.run, run.providers, records, headers=options.csv_headers)
        else:
            a = run.analysis
            write_summary_csv(fh, a.scores, summary_extras(a), headers=options.csv_headers)
        return fh.getvalue()


def measurements_filename(run_id: str, partial: bool = False) -> str:
    return f"measurements-{_safe_run_id(run_id)}{PARTIAL_MARK if partial else ''}.csv"


def summary_filename(run_id: str, partial: bool = False) -> str:
    return f"summary-{_safe_run_id(run_id)}{PARTIAL_MARK if partial else ''}.csv"


# An interrupted run's files say so in their names, so a partial audit is never taken for a complete one;
# the resumed run's complete files replace them.
PARTIAL_MARK = ".partial"


def _safe_run_id(run_id: str) -> str:
    if not run_id or run_id in (".", "..") or any(c in run_id for c in "/\\\0"):
        raise ValueError(f"run id {run_id!r} cannot be part of a file name")
    return run_id


def _write_temp(target: Path, write: Callable[[TextIO], object]) -> Path:
    """Write a hidden temporary file next to `target`, fsync it, and return its path."""
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(8)}.tmp")
    # os.open with 0o666 rather than tempfile: the final file gets the usual umask-based permissions, not
    # tempfile's 0600, so that the job that uploads to the ministry (maybe another user) can read it.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
    try:
        with open(fd, "w", encoding="utf-8", newline="") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def _fsync_dir(path: Path) -> None:
    # Makes the renames durable on POSIX; not possible (nor needed) on some platforms.
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_run_csvs(
    out_dir: Path,
    run: RunInfo,
    providers: Sequence[ProviderHealth],
    measurement_source: Callable[[], Iterable[MeasurementRecord]],
    scores: Sequence[ProviderScore],
    *,
    partial: bool = False,
    extras: Mapping[str, SummaryExtras] | None = None,
) -> tuple[Path, Path]:
    """Write `measurements-<run_id>.csv` and `summary-<run_id>.csv` into `out_dir` (created if needed);
    for an interrupted run `measurements-<run_id>.partial.csv` and `summary-<run_id>.partial.csv`, which
    the complete files of the resumed run replace (the partial ones are then removed).

    Atomic per file: each is written to a temporary file in `out_dir`, fsynced, then renamed over the
    final name, so a reader (or the upload job) never sees a half-written file. Both renames happen only
    after both files were written. Returns (measurements path, summary path).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    measurements_path = out_dir / measurements_filename(run.run_id, partial)
    summary_path = out_dir / summary_filename(run.run_id, partial)
    tmp_measurements = _write_temp(
        measurements_path, lambda fh: write_measurements_csv(fh, run, providers, measurement_source())
    )
    try:
        tmp_summary = _write_temp(summary_path, lambda fh: write_summary_csv(fh, scores, extras))
    except BaseException:
        tmp_measurements.unlink(missing_ok=True)
        raise
    try:
        os.replace(tmp_measurements, measurements_path)
        os.replace(tmp_summary, summary_path)
    except BaseException:
        tmp_measurements.unlink(missing_ok=True)
        tmp_summary.unlink(missing_ok=True)
        raise
    if not partial:
        for stale in (measurements_filename(run.run_id, True), summary_filename(run.run_id, True)):
            (out_dir / stale).unlink(missing_ok=True)
    _fsync_dir(out_dir)
    return measurements_path, summary_path
