"""The registry: which ReportFormatter writes each ReportFormat.

Adding a format: its module (a ReportFormatter), one line below, its test (tests/test_report_formats.py
fails for an enum value without a format here).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from auditor.report.csvformat import CsvFormat
from auditor.report.html import HtmlFormat
from auditor.report.interface import AnalysedRun, ReportFormat, ReportFormatter, ReportOptions
from auditor.report.jsonformat import JsonFormat
from auditor.report.table import TableFormat

FORMATS: Mapping[ReportFormat, ReportFormatter] = MappingProxyType({
    ReportFormat.table: TableFormat(),
    ReportFormat.csv: CsvFormat(),
    ReportFormat.json: JsonFormat(),
    ReportFormat.html: HtmlFormat(),
})


def format_for(fmt: ReportFormat) -> ReportFormatter:
    return FORMATS[fmt]


def render(run: AnalysedRun, fmt: ReportFormat, options: ReportOptions | None = None) -> str | bytes:
    """The report of `run` in `fmt`."""
    return format_for(fmt).format(run, options or ReportOptions())
