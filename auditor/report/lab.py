"""`auditor lab`'s output: the audit of the simulated province, the cases judged otherwise than expected,
and the check line that says how many were judged right (the lab's pass/fail, for people and for CI).

Renderables for the terminal, like auditor.report.table; the CLI prints them (the mismatches on stderr).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from auditor.analysis import RunAnalysis
from auditor.audit import AuditResult
from auditor.lab.scenario import CaseOutcome
from auditor.report.table import render_analysis, render_summary_table


def render_lab_summary(
    result: AuditResult,
    analysis: RunAnalysis | None,
    *,
    kept_in: Path | None = None,
    config_path: Path | None = None,
) -> Group:
    """The last night's audit (its analysis, with trends, when there was more than one night), the CSVs
    written, and where the lab was kept when asked to keep it."""
    parts: list[RenderableType] = [
        render_analysis(analysis) if analysis is not None else render_summary_table(result.scores, result.run)
    ]
    parts += [Text(f"wrote {path}") for path in result.csv_paths]
    if kept_in is not None:
        parts.append(Text(f"lab config, CA and store kept in {kept_in} (try: auditor report -c {config_path} "
                          "--format html -o report.html)"))
    return Group(*parts)


def render_lab_mismatches(wrong: Sequence[CaseOutcome]) -> Table:
    """The cases judged otherwise than expected: what was expected beside what the auditor concluded."""
    table = Table(title="Lab cases judged otherwise than expected")
    for col in ("provider", "case", "expected", "got", "evidence"):
        table.add_column(col, overflow="fold")
    for o in wrong:
        e = o.expected
        expected = f"{e.verdict} {e.method} {e.confidence} {e.rule}".strip()
        got = f"{o.verdict} {o.method} {o.confidence} {o.rule}".strip()
        table.add_row(Text(o.provider_id), Text(o.site), Text(expected), Text(got), Text(o.evidence))
    return table


def lab_check_line(outcomes: Sequence[CaseOutcome]) -> Text:
    right = sum(1 for o in outcomes if o.ok)
    return Text(f"lab check: {right}/{len(outcomes)} cases judged as expected")
