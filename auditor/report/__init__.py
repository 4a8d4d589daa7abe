"""Report formats: pure functions from a stored run to text (CSV, JSON, HTML) or terminal tables (rich).

- `interface`: the seam: `ReportFormat` (the enum the CLI offers), `ReportFormatter`, `ReportOptions`,
  `AnalysedRun` (what a format reads); `formats`: the registry, `format_for(ReportFormat)`.
- One module per format: `csvformat` (the ministry contract, see docs/csv-schema.md), `table` (terminal),
  `jsonformat` (machines), `html` (one self-contained page); `history` (compliance over time, terminal)
  and `lab` (`auditor lab`'s output) beside them.
- `formatting`: numbers, dates and times for every format; `i18n`: labels in English and Vietnamese.
- `stored`: `auditor report` itself: read a stored run back, analyse it, write it in a format.

Importing this package loads none of them: the audit imports `csvformat` (the ministry CSVs) and must not
load rich on the way. The names below are still importable from here, each loaded on first use.
"""

from __future__ import annotations

_EXPORTS = {
    "MEASUREMENTS_HEADER": "csvformat",
    "SUMMARY_HEADER": "csvformat",
    "write_measurements_csv": "csvformat",
    "write_run_csvs": "csvformat",
    "write_summary_csv": "csvformat",
    "format_compliance_pct": "formatting",
    "render_history": "history",
    "render_html": "html",
    "run_to_json": "jsonformat",
    "render_analysis": "table",
    "render_summary_table": "table",
    "render_violations_table": "table",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> object:
    """PEP 562: `from auditor.report import render_html` loads auditor.report.html then, not before."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f"{__name__}.{module}"), name)
