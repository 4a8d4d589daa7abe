"""The run as one self-contained HTML page, for the department head and the analyst.

`render_html(analysis, lang)` is a pure function from a `RunAnalysis` to text: inline CSS, inline SVG
charts, no script, no external font, image or style sheet, so the file can be mailed, archived and opened
offline. A Content-Security-Policy meta tag forbids scripts and every fetch as a second line of defence:
titles and evidence come from hostile networks, and every one of them is escaped (`_e`).

Sections: the run, alerts (flagged and unmeasured providers), the per-provider summary, the compliance
trend over the last runs (one polyline per provider), per-category and per-list compliance, then the
findings: violations with their evidence, SLA breaches, regressions (newly accessible, persistent),
must-block test URLs let through and over-blocking.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence

from auditor.analysis import Finding, RunAnalysis
from auditor.report.formatting import (
    fmt_date,
    fmt_hours,
    fmt_local,
    fmt_pct,
    fmt_short_date,
    fmt_time,
    format_asn,
    format_utc,
)
from auditor.report.i18n import LABELS, check_lang, confidence_label, method_label, t
from auditor.report.interface import AnalysedRun, ReportFormatter, ReportOptions

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf",
           "#7f7f7f", "#bcbd22")

_CSS = """
:root { color-scheme: light; }
body { font-family: "Segoe UI", "Noto Sans", "DejaVu Sans", Arial, sans-serif; margin: 24px auto;
       max-width: 1200px; padding: 0 16px; color: #1b1f24; background: #fff; line-height: 1.4; }
h1 { font-size: 1.6em; margin: 0 0 4px; }
h2 { font-size: 1.25em; margin: 28px 0 8px; border-bottom: 2px solid #d0d7de; padding-bottom: 4px; }
h3 { font-size: 1.05em; margin: 16px 0 6px; }
.meta { color: #57606a; margin: 0; }
table { border-collapse: collapse; width: 100%; font-size: 0.92em; }
th, td { border: 1px solid #d0d7de; padding: 4px 6px; text-align: left; vertical-align: top; }
th { background: #f6f8fa; }
td.n, th.n { text-align: right; }
td.n { white-space: nowrap; }
td.url { word-break: break-all; }
td.ev { overflow-wrap: anywhere; }
#findings { margin-top: 12px; }
tr.flagged td { background: #fff0f0; }
#summary td:first-child { white-space: nowrap; }
.good { color: #116329; font-weight: bold; }
.fair { color: #9a6700; font-weight: bold; }
.poor { color: #a40e26; font-weight: bold; }
.badge { display: inline-block; background: #a40e26; color: #fff; border-radius: 3px; padding: 0 5px;
         font-size: 0.8em; font-weight: bold; }
.alert { border-left: 5px solid #a40e26; background: #fff0f0; padding: 6px 10px; margin: 6px 0; }
.warn { border-left: 5px solid #9a6700; background: #fff8e5; padding: 6px 10px; margin: 6px 0; }
.caption, .note { color: #57606a; font-size: 0.88em; margin: 4px 0; }
.none { color: #57606a; font-style: italic; }
svg { display: block; max-width: 100%; height: auto; }
svg text { font-family: inherit; font-size: 12px; fill: #1b1f24; }
footer { margin-top: 32px; color: #57606a; font-size: 0.85em; }
"""


def _e(value: object) -> str:
    """Escape text for HTML content and attribute values (quotes included)."""
    return html.escape(str(value), quote=True)


def _pct_class(pct: float | None) -> str:
    if pct is None:
        return ""
    return "good" if pct >= 95 else "fair" if pct >= 80 else "poor"


class HtmlFormat(ReportFormatter):
    """`auditor report --format html`: one self-contained page."""

    def format(self, run: AnalysedRun, options: ReportOptions) -> str:
        return render_html(run.analysis, options.lang)


def render_html(analysis: RunAnalysis, lang: str = "en") -> str:
    """The whole report as one HTML document (UTF-8 text)."""
    lang = check_lang(lang)
    a = analysis
    names = {p.provider_id: p.provider_name for p in a.providers}
    title = f"{t('report_title', lang)} — {a.run.province}"
    parts = [
        "<!DOCTYPE html>",
        f'<html lang="{lang}">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">",
        f"<title>{_e(title)}</title>",
        f"<style>{_CSS}</style>",
        "</head>",
        "<body>",
        _header(a, lang, title),
        _alerts(a, lang),
        _summary(a, lang),
        _trend(a, lang),
        _categories(a, lang),
        _findings_section(
            "violations", t("violations_title", lang), a.violations, names, lang,
            total=sum(p.violations for p in a.providers), evidence=True,
        ),
        _sla(a, names, lang),
        _regressions(a, names, lang),
        _findings_section(
            "must-block", t("must_block_title", lang), a.must_block_failed, names, lang,
            total=sum(p.must_block_failed for p in a.providers), evidence=True,
        ),
        _findings_section(
            "overblocking", t("overblocked_title", lang), a.overblocked, names, lang,
            total=sum(p.overblocked for p in a.providers), evidence=True, method=True,
        ),
        (
            f'<footer><p>{_e(t("generated_by", lang))} {_e(a.run.run_id)} · '
            f"{_e(t('grace_hours', lang))}: {_e(fmt_hours(a.grace_hours, lang))} · "
            f"{_e(t('timezone', lang))}: {_e(a.timezone)}</p></footer>"
        ),
        "</body>",
        "</html>",
    ]
    return "\n".join(p for p in parts if p) + "\n"


def _header(a: RunAnalysis, lang: str, title: str) -> str:
    run = a.run
    key = f"status_{run.status}"
    status = t(key, lang) if key in LABELS else run.status
    return (
        f'<header><h1>{_e(title)}</h1><p class="meta">'
        f"{_e(t('run', lang))} <b>{_e(run.run_id)}</b> · {_e(t('started', lang))} "
        f"{_e(fmt_local(run.started_at, a.timezone, lang))} ({_e(a.timezone)}; {_e(format_utc(run.started_at))})"
        f" · {_e(t('status', lang))}: {_e(status)}</p></header>"
    )


def _alerts(a: RunAnalysis, lang: str) -> str:
    out = []
    for p in a.providers:
        if p.flagged:
            out.append(
                f'<p class="alert"><span class="badge">{_e(t("flagged", lang))}</span> '
                f"<b>{_e(p.provider_name)}</b> ({_e(p.provider_id)}): {_e(t('flagged_reason', lang))} "
                f"({_e(t('must_block_failed', lang))}: {p.must_block_failed})</p>"
            )
    for p in a.providers:
        if not p.measured:
            out.append(
                f'<p class="warn">{_e(t("not_measured_note", lang, provider=p.provider_name, reason=p.reason))}</p>'
            )
    return f'<section id="alerts">{"".join(out)}</section>' if out else ""


_COUNT_COLUMNS = ("asn", "measured", "urls", "blocked", "accessible", "inconclusive", "in_grace", "compliance_pct")
_FINDING_COLUMNS = (
    "violations", "sla_breaches", "median_hours_to_block", "newly_accessible", "persistent_violations",
    "must_block_failed", "overblocked",
)


def _summary(a: RunAnalysis, lang: str) -> str:
    """Two tables side by side in meaning: the counts and score, then what to act on."""

    def head(columns: Sequence[str]) -> str:
        return f"<th>{_e(t('provider', lang))}</th>" + "".join(f'<th class="n">{_e(t(c, lang))}</th>' for c in columns)

    counts, findings = [], []
    for p in a.providers:
        s = p.score
        badge = f' <span class="badge">{_e(t("flagged", lang))}</span>' if p.flagged else ""
        name = f"<td><b>{_e(p.provider_name)}</b> ({_e(p.provider_id)}){badge}</td>"
        cls = ' class="flagged"' if p.flagged else ""
        cells = [
            format_asn(p.asn),
            t("yes", lang) if p.measured else t("no", lang),
            s.urls_total, s.blocked, s.accessible, s.inconclusive, s.in_grace,
        ]
        tds = "".join(f'<td class="n">{_e(c)}</td>' for c in cells)
        tds += (
            f'<td class="n"><span class="{_pct_class(s.compliance_pct)}">'
            f"{_e(fmt_pct(s.compliance_pct, lang))}</span></td>"
        )
        counts.append(f"<tr{cls}>{name}{tds}</tr>")
        values = (
            p.violations, p.sla_breaches, fmt_hours(p.median_hours_to_block, lang), p.newly_accessible,
            p.persistent_violations, p.must_block_failed, p.overblocked,
        )
        findings.append(f"<tr{cls}>{name}" + "".join(f'<td class="n">{_e(v)}</td>' for v in values) + "</tr>")
    return (
        f'<section id="summary"><h2>{_e(t("summary", lang))}</h2>'
        f"<table><thead><tr>{head(_COUNT_COLUMNS)}</tr></thead><tbody>{''.join(counts)}</tbody></table>"
        f'<p class="caption">{_e(t("summary_caption", lang))}</p>'
        f'<table id="findings"><thead><tr>{head(_FINDING_COLUMNS)}</tr></thead><tbody>{"".join(findings)}</tbody>'
        "</table></section>"
    )


def _trend(a: RunAnalysis, lang: str) -> str:
    runs = a.trend_runs
    width, height = 960, 320
    left, right, top, bottom = 48, 300, 16, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    index = {r.run_id: i for i, r in enumerate(runs)}

    def x(i: int) -> float:
        return left + (plot_w / 2 if len(runs) == 1 else plot_w * i / (len(runs) - 1))

    def y(pct: float) -> float:
        return top + plot_h * (1 - pct / 100)

    svg = [
        (
            f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
            f'height="{height}" role="img" aria-label="{_e(t("trend_title", lang, n=len(runs)))}">'
        )
    ]
    for g in (0, 25, 50, 75, 100):
        svg.append(
            f'<line x1="{left}" y1="{y(g):.1f}" x2="{left + plot_w}" y2="{y(g):.1f}" stroke="#d0d7de"/>'
            f'<text x="{left - 6}" y="{y(g) + 4:.1f}" text-anchor="end">{g}%</text>'
        )
    step = max(1, -(-len(runs) // 12))  # at most about 12 labels
    labels = [fmt_short_date(r.started_at, a.timezone, lang) for r in runs]
    if len(set(labels)) < len(labels):  # several runs a day: their local times tell them apart
        dated = [f"{d} {fmt_time(r.started_at, a.timezone)}" for d, r in zip(labels, runs, strict=True)]
        if len(set(dated)) < len(dated):  # even in the same minute (back-to-back runs in the lab)
            dated = [f"{d} {fmt_time(r.started_at, a.timezone, seconds=True)}" for d, r in zip(labels, runs, strict=True)]
        labels = dated
    for i, label in enumerate(labels):
        if i % step == 0 or i == len(runs) - 1:
            svg.append(
                f'<text x="{x(i):.1f}" y="{top + plot_h + 18}" text-anchor="middle">{_e(label)}</text>'
            )
    for n, p in enumerate(a.providers):
        color = PALETTE[n % len(PALETTE)]
        segment: list[str] = []
        segments: list[list[str]] = []
        dots = []
        for pt in p.trend:
            at = index.get(pt.run_id)
            if at is None or pt.compliance_pct is None:
                if segment:
                    segments.append(segment)
                segment = []
                continue
            px, py = x(at), y(pt.compliance_pct)
            segment.append(f"{px:.1f},{py:.1f}")
            dots.append(
                f'<circle cx="{px:.1f}" cy="{py:.1f}" r="3.5" fill="{color}"><title>'
                f"{_e(p.provider_name)}: {_e(fmt_pct(pt.compliance_pct, lang))}% ({_e(pt.run_id)})</title></circle>"
            )
        if segment:
            segments.append(segment)
        for seg in segments:
            if len(seg) > 1:
                svg.append(f'<polyline fill="none" stroke="{color}" stroke-width="2.5" points="{" ".join(seg)}"/>')
        svg.extend(dots)
        ly = top + 14 + 20 * n
        last = fmt_pct(p.score.compliance_pct, lang)
        last = f"{last}%" if p.score.compliance_pct is not None else last
        name = p.provider_name if len(p.provider_name) <= 30 else p.provider_name[:29] + "…"
        svg.append(
            f'<rect x="{left + plot_w + 16}" y="{ly - 9}" width="14" height="10" fill="{color}"/>'
            f'<text x="{left + plot_w + 36}" y="{ly}"><title>{_e(p.provider_name)}</title>'
            f"{_e(name)} ({_e(last)})</text>"
        )
    svg.append("</svg>")
    return f'<section id="trend"><h2>{_e(t("trend_title", lang, n=len(runs)))}</h2>{"".join(svg)}</section>'


def _bars(groups: Sequence[tuple[str, float | None]], lang: str) -> str:
    label_w, bar_w, row_h = 300, 460, 22
    height = row_h * len(groups) + 6
    svg = [
        (
            f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {label_w + bar_w + 80} {height}" '
            f'width="{label_w + bar_w + 80}" height="{height}">'
        )
    ]
    for i, (label, pct) in enumerate(groups):
        yy = 3 + i * row_h
        shown = label if len(label) <= 44 else label[:43] + "…"
        svg.append(f'<text x="0" y="{yy + 15}"><title>{_e(label)}</title>{_e(shown)}</text>')
        svg.append(f'<rect x="{label_w}" y="{yy + 3}" width="{bar_w}" height="15" fill="#eaeef2"/>')
        if pct is not None:
            fill = {"good": "#2da44e", "fair": "#bf8700", "poor": "#cf222e"}[_pct_class(pct)]
            svg.append(f'<rect x="{label_w}" y="{yy + 3}" width="{bar_w * pct / 100:.1f}" height="15" fill="{fill}"/>')
        svg.append(f'<text x="{label_w + bar_w + 6}" y="{yy + 15}">{_e(fmt_pct(pct, lang))}</text>')
    svg.append("</svg>")
    return "".join(svg)


def _categories(a: RunAnalysis, lang: str) -> str:
    out = [f'<section id="categories"><h2>{_e(t("per_category", lang))}</h2>']
    for p in a.providers:
        if not p.measured or not p.by_category:
            continue
        groups = [
            (f"{g.key} — {g.label}" if g.key and g.label else g.key or t("no_category", lang), g.compliance_pct)
            for g in p.by_category
        ]
        out.append(f"<h3>{_e(p.provider_name)}</h3>{_bars(groups, lang)}")
    lists = sorted({g.key for p in a.providers for g in p.by_list})
    if lists:
        out.append(f"<h3>{_e(t('per_list', lang))}</h3><table><thead><tr><th>{_e(t('provider', lang))}</th>")
        out.append("".join(f'<th class="n">{_e(name)}</th>' for name in lists) + "</tr></thead><tbody>")
        for p in a.providers:
            by = {g.key: g.compliance_pct for g in p.by_list}
            cells = "".join(
                f'<td class="n"><span class="{_pct_class(by.get(k))}">{_e(fmt_pct(by.get(k), lang))}</span></td>'
                for k in lists
            )
            out.append(f"<tr><td>{_e(p.provider_name)}</td>{cells}</tr>")
        out.append("</tbody></table>")
    out.append("</section>")
    return "".join(out)


def _shown(kept: int, total: int, lang: str) -> str:
    if kept >= total:
        return ""
    return f'<p class="note">{_e(t("shown_of", lang, shown=kept, total=total))}</p>'


def _table(headers: Sequence[tuple[str, str]], rows: Iterable[Sequence[tuple[str, str]]], lang: str) -> str:
    """headers: (css class, label); rows: cells of (css class, already escaped html)."""
    body = "".join("<tr>" + "".join(f'<td class="{c}">{v}</td>' for c, v in row) + "</tr>" for row in rows)
    if not body:
        return f'<p class="none">{_e(t("none", lang))}</p>'
    head = "".join(f'<th class="{c}">{_e(label)}</th>' for c, label in headers)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _finding_cells(f: Finding, names: dict[str, str], lang: str) -> list[tuple[str, str]]:
    category = f.category_code + (f" — {f.category_description}" if f.category_description else "")
    return [
        ("", _e(names.get(f.provider_id, f.provider_id))),
        ("url", _e(f.url)),
        ("", _e(f.list_name)),
        ("", _e(category)),
        ("n", _e(fmt_date(f.date_added, lang))),
    ]


def _finding_headers(lang: str) -> list[tuple[str, str]]:
    return [("", t("provider", lang)), ("", t("url", lang)), ("", t("list", lang)), ("", t("category", lang)),
            ("n", t("date_added", lang))]


def _findings_section(
    section_id: str, title: str, findings: Sequence[Finding], names: dict[str, str], lang: str, *,
    total: int, evidence: bool = False, method: bool = False,
) -> str:
    headers = _finding_headers(lang)
    if method:
        headers += [("", t("method", lang)), ("", t("confidence", lang))]
    if evidence:
        headers.append(("ev", t("evidence", lang)))
    rows = []
    for f in findings:
        cells = _finding_cells(f, names, lang)
        if method:
            method_value = f.method.value if f.method else None
            confidence_value = f.confidence.value if f.confidence else None
            cells += [("", _e(method_label(method_value, lang))), ("", _e(confidence_label(confidence_value, lang)))]
        if evidence:
            cells.append(("ev", _e(f.evidence)))
        rows.append(cells)
    return (
        f'<section id="{section_id}"><h2>{_e(title)} ({total})</h2>'
        f"{_table(headers, rows, lang)}{_shown(len(findings), total, lang)}</section>"
    )


def _sla(a: RunAnalysis, names: dict[str, str], lang: str) -> str:
    headers = _finding_headers(lang) + [
        ("n", t("hours_since_added", lang)), ("n", t("hours_overdue", lang)), ("ev", t("evidence", lang))
    ]
    rows = [
        _finding_cells(b.finding, names, lang)
        + [("n", _e(fmt_hours(b.hours_since_added, lang))), ("n", _e(fmt_hours(b.hours_overdue, lang))),
           ("ev", _e(b.finding.evidence))]
        for b in a.sla_breaches
    ]
    total = sum(p.sla_breaches for p in a.providers)
    return (
        f'<section id="sla"><h2>{_e(t("sla_title", lang))} ({total})</h2>'
        f"{_table(headers, rows, lang)}{_shown(len(a.sla_breaches), total, lang)}</section>"
    )


def _regressions(a: RunAnalysis, names: dict[str, str], lang: str) -> str:
    newly_total = sum(p.newly_accessible for p in a.providers)
    headers = _finding_headers(lang) + [("", t("previous_run", lang)), ("ev", t("evidence", lang))]
    newly_rows = [
        _finding_cells(n.finding, names, lang)
        + [("", _e(f"{n.previous_run_id} ({fmt_local(n.previous_started_at, a.timezone, lang)})")),
           ("ev", _e(n.finding.evidence))]
        for n in a.newly_accessible
    ]
    persistent_total = sum(p.persistent_violations for p in a.providers)
    pheaders = _finding_headers(lang) + [
        ("n", t("runs_in_a_row", lang)), ("", t("since", lang)), ("ev", t("evidence", lang))
    ]
    persistent_rows = [
        _finding_cells(v.finding, names, lang)
        + [("n", _e(v.runs_in_a_row)), ("", _e(f"{v.since_run_id} ({fmt_local(v.since, a.timezone, lang)})")),
           ("ev", _e(v.finding.evidence))]
        for v in a.persistent_violations
    ]
    return (
        f'<section id="regressions"><h2>{_e(t("regressions", lang))}</h2>'
        f'<h3 id="newly-accessible">{_e(t("newly_title", lang))} ({newly_total})</h3>'
        f"{_table(headers, newly_rows, lang)}{_shown(len(a.newly_accessible), newly_total, lang)}"
        f'<h3 id="persistent">{_e(t("persistent_title", lang, n=a.persistent_after))} ({persistent_total})</h3>'
        f"{_table(pheaders, persistent_rows, lang)}{_shown(len(a.persistent_violations), persistent_total, lang)}"
        "</section>"
    )

