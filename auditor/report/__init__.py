"""Report formats: pure functions from a run's records to text (CSV), renderables (rich) or dicts (JSON).

One module per format: `csvformat` (the ministry contract, see docs/csv-schema.md), `table` (terminal),
`jsonformat` (machines), `html` (one self-contained page), `history` (compliance over time); labels in
English and Vietnamese in `i18n`.
"""

from auditor.report.csvformat import (
    MEASUREMENTS_HEADER,
    SUMMARY_HEADER,
    format_compliance_pct,
    write_measurements_csv,
    write_run_csvs,
    write_summary_csv,
)
from auditor.report.history import render_history
from auditor.report.html import render_html
from auditor.report.jsonformat import run_to_json
from auditor.report.table import render_analysis, render_summary_table, render_violations_table

__all__ = [
    "MEASUREMENTS_HEADER",
    "SUMMARY_HEADER",
    "format_compliance_pct",
    "render_analysis",
    "render_history",
    "render_html",
    "render_summary_table",
    "render_violations_table",
    "run_to_json",
    "write_measurements_csv",
    "write_run_csvs",
    "write_summary_csv",
]
