"""Report formats: pure functions from a run's records to text (CSV), renderables (rich) or dicts (JSON).

One module per format: `csvformat` (the ministry contract, see docs/csv-schema.md), `table` (terminal),
`jsonformat` (machines).
"""

from auditor.report.csvformat import (
    MEASUREMENTS_HEADER,
    SUMMARY_HEADER,
    format_compliance_pct,
    write_measurements_csv,
    write_run_csvs,
    write_summary_csv,
)
from auditor.report.jsonformat import run_to_json
from auditor.report.table import render_summary_table, render_violations_table

__all__ = [
    "MEASUREMENTS_HEADER",
    "SUMMARY_HEADER",
    "format_compliance_pct",
    "render_summary_table",
    "render_violations_table",
    "run_to_json",
    "write_measurements_csv",
    "write_run_csvs",
    "write_summary_csv",
]
