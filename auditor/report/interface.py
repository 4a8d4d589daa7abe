"""The seam between a stored run and its report formats: one small interface, one module per format.

A format is a `ReportFormatter`: `format(run, options)` is a pure function from an analysed stored run to
the report's text (or bytes, for a binary format). The `ReportFormat` enum names the formats the CLI
offers, and auditor.report.formats maps each to its implementation. Adding a format: its module, one
line in that registry, its test (tests/test_report_formats.py checks every enum value has one).

pip-audit's `VulnerabilityFormat` (pip_audit/_format/interface.py) is the model. It also has
`is_manifest`, for formats printed even when nothing was found; every format here is always written,
so there is no such property.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from auditor.report.i18n import Lang

if TYPE_CHECKING:  # for the annotations only: the CLI imports this module for ReportFormat at start-up
    from auditor.analysis import RunAnalysis
    from auditor.models import MeasurementRecord, ProviderHealth, RunInfo

# The CSV's column names: the ministry contract's, or Vietnamese ones (for people, not programs).
HeaderStyle = Literal["contract", "vi"]
HEADER_STYLES: tuple[HeaderStyle, ...] = ("contract", "vi")


class ReportFormat(enum.StrEnum):
    """`auditor report --format`."""

    table = "table"
    csv = "csv"
    json = "json"
    html = "html"


@dataclass(frozen=True)
class ReportOptions:
    """How to write a report; each format reads the options that concern it and ignores the others."""

    lang: Lang = "en"  # table, html: the labels' language
    measurements: bool = False  # csv: the per-URL CSV instead of the per-provider summary
    csv_headers: HeaderStyle = "contract"  # csv
    # table: the text's width, and whether it goes to a terminal (then with its colours and styles)
    width: int = 150
    terminal: bool = False


@dataclass(frozen=True)
class AnalysedRun:
    """A stored run, analysed: what every format reads."""

    analysis: RunAnalysis
    providers: tuple[ProviderHealth, ...]
    # each call reads the run's records from the store again, sensitive URLs already hashed when the
    # config asks for it; only formats that list every URL call it
    measurements: Callable[[], Iterable[MeasurementRecord]]

    @property
    def run(self) -> RunInfo:
        return self.analysis.run


class ReportFormatter(ABC):
    """One report format."""

    @abstractmethod
    def format(self, run: AnalysedRun, options: ReportOptions) -> str | bytes:
        """The whole report: text (written as UTF-8) or, for a binary format, bytes."""


def check_header_style(style: str) -> HeaderStyle:
    for known in HEADER_STYLES:
        if style == known:
            return known
    raise ValueError(f"unknown CSV header style {style!r}: one of {', '.join(HEADER_STYLES)}")
