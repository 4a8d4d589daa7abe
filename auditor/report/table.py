"""Rich tables for the terminal: the per-provider summary, the violations, and the run analysis.

Plain functions returning renderables; printing is the CLI's business. Every cell that comes from a list,
a config or the network is a `Text`, never markup: a page title like "[/b]" must show as itself, not style
the table or raise a MarkupError. `lang="vi"` gives Vietnamese labels (auditor.report.i18n).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Sequence

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from auditor.analysis import RunAnalysis, TrendPoint
from auditor.models import ListEntry, MeasurementRecord, ProviderHealth, ProviderScore, RunInfo, Verdict
from auditor.report.formatting import fmt_hours, fmt_local, fmt_pct, format_asn, format_utc
from auditor.report.i18n import check_lang, t
from auditor.report.interface import AnalysedRun, ReportFormatter, ReportOptions

SPARK = "▁▂▃▄▅▆▇█"


class TableFormat(ReportFormatter):
    """`auditor report --format table`: the terminal's view of the run (render_analysis), then a line for
    each provider that could not be measured. For a terminal, the text carries its colours and styles."""

    def format(self, run: AnalysedRun, options: ReportOptions) -> str:
        buf = io.StringIO()
        # force_terminal=None for a file: rich decides as it would for any file (plain, unless FORCE_COLOR)
        console = Console(file=buf, width=options.width, force_terminal=True if options.terminal else None)
        if run.run.rejudged_from:
            console.print(Text(t("rejudged_note", options.lang, run_id=run.run.rejudged_from)))
        console.print(render_analysis(run.analysis, options.lang))
        for h in run.providers:
            if not h.measured:  # Text, not markup: the reason may quote the network
                console.print(Text.assemble((h.provider_id, "bold red"), f" not measured: {h.reason}"))
        return buf.getvalue()


def sparkline(points: Sequence[TrendPoint]) -> str:
    """One character per run, 0 % to 100 % as ▁ to █; a run without a score is a space."""
    out = []
    for p in points:
        if p.compliance_pct is None:
            out.append(" ")
        else:
            out.append(SPARK[min(len(SPARK) - 1, int(p.compliance_pct / 100 * len(SPARK)))])
    return "".join(out)


def render_summary_table(scores: Sequence[ProviderScore], run: RunInfo, lang: str = "en") -> Table:
    lang = check_lang(lang)
    table = Table(
        title=Text(t("table_title", lang, run_id=run.run_id, province=run.province, started=format_utc(run.started_at))),
        caption=Text(t("table_caption", lang)),
    )
    table.add_column(t("provider", lang))
    for key in ("asn",):
        table.add_column(t(key, lang), justify="right")
    table.add_column(t("measured", lang))
    for key in ("urls", "blocked", "accessible", "inconclusive", "in_grace", "compliance_pct"):
        table.add_column(t(key, lang), justify="right")
    for s in scores:
        pct = fmt_pct(s.compliance_pct, lang)
        table.add_row(
            Text(f"{s.provider_name} ({s.provider_id})"),
            Text(format_asn(s.asn)),
            Text(t("yes", lang)) if s.measured else Text(t("no", lang), style="bold red"),
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
    exclude_urls: frozenset[str] = frozenset(),
    lang: str = "en",
) -> Table:
    """The first `limit` accessible entries (violations) in record order; the caption counts them all.

    With `in_grace` (e.g. `lambda e: is_in_grace(e, run.started_at, hours, tz)`), accessible entries still
    in grace are left out: they are not violations yet, and the score ignores them too. So are the URLs in
    `exclude_urls` (the must-allow URLs: accessible is what they should be).
    """
    lang = check_lang(lang)
    names = {p.provider_id: p.provider_name for p in providers}
    table = Table(title=Text(t("violations_title", lang)))
    table.add_column(t("provider", lang))
    table.add_column(t("url", lang), overflow="fold")
    table.add_column(t("category", lang))
    table.add_column(t("evidence", lang), overflow="fold")
    total = 0
    for rec in records:
        if rec.judgement.verdict is not Verdict.ACCESSIBLE or (in_grace is not None and in_grace(rec.entry)):
            continue
        if rec.entry.url in exclude_urls:
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
        table.caption = Text(t("no_violations", lang))
    elif total > limit:
        table.caption = Text(t("violations_first", lang, total=total, limit=limit))
    else:
        table.caption = Text(t("violations_one" if total == 1 else "violations_many", lang, total=total))
    return table


def render_analysis_tables(analysis: RunAnalysis, lang: str = "en", limit: int = 50) -> list[RenderableType]:
    """What to act on, per provider and finding by finding: the terminal's view of `RunAnalysis`."""
    lang = check_lang(lang)
    a = analysis
    names = {p.provider_id: p.provider_name for p in a.providers}
    out: list[RenderableType] = []

    per = Table(title=Text(t("findings_title", lang, n=len(a.trend_runs))))
    per.add_column(t("provider", lang), no_wrap=True)  # the numbers' long headers wrap instead
    per.add_column(t("compliance_pct", lang), justify="right")
    per.add_column(t("trend", lang))
    for key in ("violations", "sla_breaches", "median_hours_to_block", "newly_accessible",
                "persistent_violations", "must_block_failed", "overblocked"):
        per.add_column(t(key, lang), justify="right")
    for p in a.providers:
        name = Text(f"{p.provider_name} ({p.provider_id})")
        if p.flagged:
            name.append(f" {t('flagged', lang)}", style="bold white on red")
        per.add_row(
            name,
            Text(fmt_pct(p.score.compliance_pct, lang), style="bold"),
            Text(sparkline(p.trend)),
            Text(str(p.violations), style="red" if p.violations else ""),
            Text(str(p.sla_breaches), style="red" if p.sla_breaches else ""),
            Text(fmt_hours(p.median_hours_to_block, lang)),
            Text(str(p.newly_accessible), style="bold red" if p.newly_accessible else ""),
            Text(str(p.persistent_violations), style="red" if p.persistent_violations else ""),
            Text(str(p.must_block_failed), style="bold red" if p.must_block_failed else ""),
            Text(str(p.overblocked), style="yellow" if p.overblocked else ""),
        )
    out.append(per)

    def findings(title: str, rows: Sequence[tuple[str, str, str]], total: int, extra: str) -> Table:
        table = Table(title=Text(f"{title} ({total})"))
        table.add_column(t("provider", lang))
        table.add_column(t("url", lang), overflow="fold")
        table.add_column(extra, overflow="fold")
        for pid, url, detail in rows[:limit]:
            table.add_row(Text(names.get(pid, pid)), Text(url), Text(detail))
        if total == 0:
            table.caption = Text(t("none", lang))
        elif total > min(len(rows), limit):
            table.caption = Text(t("shown_of", lang, shown=min(len(rows), limit), total=total))
        return table

    tz = a.timezone
    out.append(findings(
        t("violations_title", lang),
        [(f.provider_id, f.url, f.evidence) for f in a.violations],
        sum(p.violations for p in a.providers), t("evidence", lang),
    ))
    out.append(findings(
        t("newly_title", lang),
        [(n.finding.provider_id, n.finding.url,
          (f"{t('previous_run', lang)}: {n.previous_run_id} ({fmt_local(n.previous_started_at, tz, lang)}); "
           f"{n.finding.evidence}")) for n in a.newly_accessible],
        sum(p.newly_accessible for p in a.providers), t("details", lang),
    ))
    out.append(findings(
        t("persistent_title", lang, n=a.persistent_after),
        [(v.finding.provider_id, v.finding.url,
          f"{t('runs_in_a_row', lang)}: {v.runs_in_a_row}; {t('since', lang)} {fmt_local(v.since, tz, lang)}")
         for v in a.persistent_violations],
        sum(p.persistent_violations for p in a.providers), t("details", lang),
    ))
    out.append(findings(
        t("sla_title", lang),
        [(b.finding.provider_id, b.finding.url,
          f"{t('hours_overdue', lang)}: {fmt_hours(b.hours_overdue, lang)}") for b in a.sla_breaches],
        sum(p.sla_breaches for p in a.providers), t("details", lang),
    ))
    out.append(findings(
        t("must_block_title", lang),
        [(f.provider_id, f.url, f.evidence) for f in a.must_block_failed],
        sum(p.must_block_failed for p in a.providers), t("evidence", lang),
    ))
    out.append(findings(
        t("overblocked_title", lang),
        [(f.provider_id, f.url, f.evidence) for f in a.overblocked],
        sum(p.overblocked for p in a.providers), t("evidence", lang),
    ))
    return out


def render_analysis(analysis: RunAnalysis, lang: str = "en", limit: int = 50) -> Group:
    """The summary table, then the findings per provider and finding by finding, as one renderable."""
    return Group(render_summary_table(analysis.scores, analysis.run, lang),
                 *render_analysis_tables(analysis, lang, limit))
