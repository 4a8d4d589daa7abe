"""Rich tables for the terminal: the per-provider summary and the list of violations.

Plain functions returning renderables; printing is the CLI's business. Every cell that comes from a list,
a config or the network is a `Text`, never markup: a page title like "[/b]" must show as itself, not style
the table or raise a MarkupError.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from rich.table import Table
from rich.text import Text

from auditor.models import ListEntry, MeasurementRecord, ProviderHealth, ProviderScore, RunInfo, Verdict
from auditor.report.csvformat import format_compliance_pct, format_utc

NO_SCORE = "—"


def render_summary_table(scores: Sequence[ProviderScore], run: RunInfo) -> Table:
    table = Table(
        title=Text(f"Compliance, run {run.run_id} ({run.province}, started {format_utc(run.started_at)})"),
        caption=Text("compliance % = blocked / (blocked + accessible), entries in grace left out"),
    )
    table.add_column("Provider")
    table.add_column("ASN", justify="right")
    table.add_column("Measured")
    table.add_column("URLs", justify="right")
    table.add_column("Blocked", justify="right")
    table.add_column("Accessible", justify="right")
    table.add_column("Inconclusive", justify="right")
    table.add_column("In grace", justify="right")
    table.add_column("Compliance %", justify="right")
    for s in scores:
        pct = format_compliance_pct(s.compliance_pct) or NO_SCORE
        table.add_row(
            Text(f"{s.provider_name} ({s.provider_id})"),
            Text("" if s.asn is None else f"AS{s.asn}"),
            Text("yes") if s.measured else Text("no", style="bold red"),
            Text(str(s.urls_total)),
            Text(str(s.blocked)),
            Text(str(s.accessible), style="red" if s.accessible else ""),
            Text(str(s.inconclusive), style="yellow" if s.inconclusive else ""),
            Text(str(s.in_grace)),
            Text(pct, style="bold"),
        )
    return table


def render_violations_table(
    records: Iterable[MeasurementRecord],
    providers: Sequence[ProviderHealth],
    limit: int = 50,
    *,
    in_grace: Callable[[ListEntry], bool] | None = None,
) -> Table:
    """The first `limit` accessible entries (violations) in record order; the caption counts them all.

    With `in_grace` (e.g. `lambda e: is_in_grace(e, run.started_at, hours, tz)`), accessible entries still
    in grace are left out: they are not violations yet, and the score ignores them too.
    """
    names = {p.provider_id: p.provider_name for p in providers}
    table = Table(title=Text("Violations: listed URLs that were accessible"))
    table.add_column("Provider")
    table.add_column("URL", overflow="fold")
    table.add_column("Category")
    table.add_column("Evidence", overflow="fold")
    total = 0
    for rec in records:
        if rec.judgement.verdict is not Verdict.ACCESSIBLE or (in_grace is not None and in_grace(rec.entry)):
            continue
        total += 1
        if total <= limit:
            table.add_row(
                Text(names.get(rec.provider_id, rec.provider_id)),
                Text(rec.entry.url),
                Text(rec.entry.category_code),
                Text(rec.judgement.evidence),
            )
    if total == 0:
        table.caption = Text("no violations")
    elif total > limit:
        table.caption = Text(f"{total} violations, first {limit} shown")
    else:
        table.caption = Text(f"{total} violation{'s' if total != 1 else ''}")
    return table
