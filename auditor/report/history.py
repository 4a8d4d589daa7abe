"""`auditor history`: compliance over time in the terminal.

One line per provider with a sparkline over the period (one character per run it took part in), its
lowest, first and latest score; then one row per run with each provider's score. Scores come from the
store's aggregate counts (`auditor.analysis.score_from_counts`), by the same rule as every report.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from rich.console import Group
from rich.table import Table
from rich.text import Text

from auditor.analysis import TrendPoint, score_from_counts
from auditor.models import RunInfo
from auditor.report.formatting import NO_VALUE, fmt_local, fmt_pct
from auditor.report.i18n import check_lang, t
from auditor.report.table import sparkline
from auditor.store.interface import Store


def compliance_history(
    store: Store,
    since: dt.datetime,
    *,
    provider: str | None = None,
    grace_hours: float = 24.0,
    timezone: str = "Asia/Ho_Chi_Minh",
    must_allow: Iterable[str] = (),
) -> tuple[list[tuple[RunInfo, dict[str, TrendPoint]]], list[tuple[str, str]]]:
    """(runs, providers): each run with {provider_id: point}, oldest first, and each provider seen as
    (provider_id, name) in order of first appearance."""
    excluded = frozenset(must_allow)
    runs: list[tuple[RunInfo, dict[str, TrendPoint]]] = []
    names: dict[str, str] = {}
    for run in store.runs_since(since):
        health = [h for h in store.providers(run.run_id) if provider is None or h.provider_id == provider]
        if not health:
            continue
        points = {}
        for s in score_from_counts(store, run, health, grace_hours=grace_hours, timezone=timezone,
                                   exclude_urls=excluded):
            names.setdefault(s.provider_id, s.provider_name)
            points[s.provider_id] = TrendPoint(run.run_id, run.started_at, s.measured, s.compliance_pct)
        runs.append((run, points))
    return runs, list(names.items())


def render_history(
    store: Store,
    provider: str | None,
    days: int,
    lang: str = "en",
    *,
    grace_hours: float = 24.0,
    timezone: str = "Asia/Ho_Chi_Minh",
    must_allow: Iterable[str] = (),
    now: dt.datetime | None = None,
) -> Group:
    """Compliance per provider over the last `days` days (all providers, or only `provider`)."""
    lang = check_lang(lang)
    since = (now or dt.datetime.now(dt.UTC)) - dt.timedelta(days=days)
    runs, providers = compliance_history(
        store, since, provider=provider, grace_hours=grace_hours, timezone=timezone, must_allow=must_allow
    )
    title = Text(t("history_title", lang, days=days))
    if not runs:
        return Group(title, Text(t("no_runs", lang)))

    overview = Table(title=title)
    overview.add_column(t("provider", lang))
    overview.add_column(t("runs", lang), justify="right")
    overview.add_column(t("trend", lang))
    overview.add_column(t("lowest", lang), justify="right")
    overview.add_column(t("latest", lang), justify="right")
    overview.add_column(t("change", lang), justify="right")
    for pid, name in providers:
        points = [pts[pid] for _, pts in runs if pid in pts]
        scored = [p.compliance_pct for p in points if p.compliance_pct is not None]
        latest = points[-1].compliance_pct
        change = Text(NO_VALUE)
        if len(scored) >= 2 and latest is not None:
            delta = latest - scored[0]
            sign = "+" if delta > 0 else "−" if delta < 0 else "±"
            change = Text(f"{sign}{fmt_pct(abs(delta), lang)}", style="red" if delta < 0 else "green" if delta > 0 else "")
        overview.add_row(
            Text(f"{name} ({pid})"),
            Text(str(len(points))),
            Text(sparkline(points)),
            Text(fmt_pct(min(scored), lang) if scored else NO_VALUE),
            Text(fmt_pct(latest, lang), style="bold"),
            change,
        )

    per_run = Table(title=Text(t("compliance_pct", lang)))
    per_run.add_column(t("started", lang))
    per_run.add_column(t("run", lang))
    for pid, _ in providers:
        per_run.add_column(Text(pid), justify="right")
    for run, pts in runs:
        per_run.add_row(
            Text(fmt_local(run.started_at, timezone, lang)), Text(run.run_id),
            *(Text(fmt_pct(pts[pid].compliance_pct, lang) if pid in pts else "") for pid, _ in providers),
        )
    return Group(overview, per_run)
