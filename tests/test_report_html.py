"""HTML report, labels in two languages, terminal tables of the analysis, and `history`: from the fixed store.

Golden files live in tests/golden/; `UPDATE_GOLDEN=1 pytest tests/test_report_html.py` rewrites them (then
read the diff before committing it).
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
from rich.console import Console

from auditor.analysis import RunAnalysis, analyse
from auditor.report.formatting import fmt_pct
from auditor.report.history import render_history
from auditor.report.html import render_html
from auditor.report.i18n import LABELS, LANGS, t
from auditor.report.table import render_analysis, render_summary_table, sparkline
from tests import fixed_store as fx

GOLDEN = Path(__file__).parent / "golden"


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(text.encode("utf-8"))
    assert path.exists(), f"{path} missing: run with UPDATE_GOLDEN=1 to create it"
    expected = path.read_bytes().decode("utf-8")
    assert text == expected, f"{name} differs from the golden file (UPDATE_GOLDEN=1 to accept the change)"


@pytest.fixture(scope="module")
def analysis() -> Iterator[RunAnalysis]:
    store = fx.fixed_store()
    try:
        yield analyse(store, fx.LAST.run_id, grace_hours=fx.GRACE_HOURS, timezone=fx.TIMEZONE,
                      must_block=fx.MUST_BLOCK, must_allow=fx.MUST_ALLOW)
    finally:
        store.close()


@pytest.mark.parametrize("lang", LANGS)
def test_html_golden(analysis: RunAnalysis, lang: str) -> None:
    check_golden(f"report-{lang}.html", render_html(analysis, lang))


class _Structure(HTMLParser):
    """Collects tags, checks they nest, and keeps the text shown in each section."""

    VOID = frozenset({"meta", "br", "hr", "img", "input", "link", "rect", "circle", "line", "polyline"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.errors: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        if tag in self.VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
        else:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        if self.stack and self.stack[-1] not in ("style", "title"):
            self.text.append(data)


def parse(doc: str) -> _Structure:
    p = _Structure()
    p.feed(doc)
    p.close()
    return p


def test_html_is_self_contained_and_well_formed(analysis: RunAnalysis) -> None:
    doc = render_html(analysis, "en")
    p = parse(doc)
    assert not p.errors and p.stack == [], p.errors
    tags = {tag for tag, _ in p.tags}
    assert "script" not in tags and "link" not in tags and "img" not in tags and "iframe" not in tags
    for _, attrs in p.tags:  # nothing is fetched: no src, no href, no url() in styles
        assert "src" not in attrs and "href" not in attrs
    assert "url(" not in doc and "@import" not in doc
    assert doc.startswith("<!DOCTYPE html>\n") and '<meta charset="utf-8">' in doc
    assert "default-src 'none'" in doc  # and the browser is told not to fetch or run anything either


def test_html_escapes_what_came_from_the_network(analysis: RunAnalysis) -> None:
    doc = render_html(analysis, "en")
    assert "<script>" not in doc and "</td><script>" not in doc
    assert "&lt;/td&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in doc
    assert "http://evil.example/a?b=1&amp;c=%3Cx%3E" in doc
    shown = " ".join(parse(doc).text)
    assert 'title "</td><script>alert(1)</script>" & length as control' in shown  # shown as text


def section_html(doc: str, section_id: str) -> str:
    """The markup of one <section> of the page, which must be there."""
    m = re.search(rf'<section id="{section_id}">(.*?)</section>', doc, re.DOTALL)
    assert m, section_id
    return m.group(1)


def _section(doc: str, section_id: str) -> str:
    """The text one <section> of the page shows."""
    return " ".join(parse(section_html(doc, section_id)).text)


def test_html_shows_every_finding(analysis: RunAnalysis) -> None:
    doc = render_html(analysis, "en")
    summary = _section(doc, "summary")
    assert [p.provider_id for p in analysis.providers] == [pid for pid, _, _ in fx.PROVIDERS]
    for p in analysis.providers:
        assert p.provider_name in summary
    assert "80.0" in summary and "16.6" in summary and "FLAGGED" in summary
    assert "FPT Telecom" in _section(doc, "alerts") and "MobiFone not measured" in _section(doc, "alerts")
    assert "Violations: listed URLs that were accessible (7)" in _section(doc, "violations")
    sla = _section(doc, "sla")
    assert "(5)" in sla and "73.5" in sla and "97.5" in sla
    regressions = _section(doc, "regressions")
    assert "(2)" in regressions and "20261126T183000Z-003" in regressions
    assert "accessible 3 runs in a row or more (3)" in regressions
    assert "canary.gialai.example" in _section(doc, "must-block")
    over = _section(doc, "overblocking")
    assert "dichvucong.example" in over and "DNS" in over and "NXDOMAIN" in over
    cats = _section(doc, "categories")
    assert "CB — Cờ bạc" in cats and "TE — Bảo vệ trẻ em" in cats and "(no category)" in cats
    # the trend: one polyline per provider with at least two scored runs, 4 runs on the axis
    trend = section_html(doc, "trend")
    assert trend.count("<polyline") == 4  # mobifone: its three scored nights; the fourth has no score
    assert trend.count("<circle") == 3 * 4 + 3
    assert "25/11" not in trend and "11-25" in trend and "11-28" in trend


def test_html_in_vietnamese(analysis: RunAnalysis) -> None:
    doc = render_html(analysis, "vi")
    assert '<html lang="vi">' in doc
    shown = " ".join(parse(doc).text)
    for label in ("Nhà mạng", "Bị chặn", "Truy cập được", "Không kết luận", "Tỷ lệ tuân thủ %", "Vi phạm",
                  "Xu hướng tuân thủ", "Chặn nhầm", "Mới truy cập được", "Vi phạm kéo dài", "BỊ GẮN CỜ"):
        assert label in shown, label
    assert "80,0" in shown and "16,6" in shown  # decimal comma
    assert "01/11/2026" in shown  # dd/mm/yyyy
    assert "Compliance" not in shown and "Provider" not in shown


def test_every_label_exists_in_every_language() -> None:
    for key, texts in LABELS.items():
        assert len(texts) == len(LANGS) and all(texts), key
        fields = [set(re.findall(r"{(\w+)}", s)) for s in texts]
        assert all(f == fields[0] for f in fields), f"{key}: placeholders differ between languages"
    assert t("provider", "vi") == "Nhà mạng" and t("compliance_pct", "vi").startswith("Tỷ lệ tuân thủ")
    with pytest.raises(ValueError, match="unknown language"):
        t("provider", "fr")
    assert fmt_pct(99.96, "vi") == "99,9" and fmt_pct(None, "vi") == "—"


def _text(renderable: object) -> str:
    console = Console(record=True, width=160, color_system=None)
    console.print(renderable)
    return console.export_text()


def test_summary_table_in_vietnamese(analysis: RunAnalysis) -> None:
    text = _text(render_summary_table(analysis.scores, analysis.run, lang="vi"))
    for label in ("Nhà mạng", "Đã đo", "Bị chặn", "Truy cập được", "Không kết luận", "Tỷ lệ tuân thủ %"):
        assert label in text
    vnpt = next(line for line in text.splitlines() if "(vnpt)" in line)
    assert vnpt.split("│")[-2].strip() == "80,0" and " có " in vnpt


def test_analysis_tables(analysis: RunAnalysis) -> None:
    text = _text(render_analysis(analysis, "en"))
    fpt = next(line for line in text.splitlines() if "FPT Telecom (fpt)" in line and "FLAGGED" in line)
    cells = [c.strip() for c in fpt.split("│")[1:-1]]
    assert cells == ["FPT Telecom (fpt) FLAGGED", "16.6", "▄▄▅▂", "5", "3", "577.5", "1", "2", "1", "0"]
    assert "Newly accessible: blocked in the previous run, accessible now (2)" in text
    assert "Over-blocking: must-allow URLs that were blocked (1)" in text
    assert 'title "</td><script>alert(1)</script>"' in text
    vi = _text(render_analysis(analysis, "vi"))
    assert "Mới truy cập được" in vi and "BỊ GẮN CỜ" in vi and "577,5" in vi


def test_sparkline() -> None:
    from auditor.analysis import TrendPoint

    at = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    points = [TrendPoint("r", at, True, pct) for pct in (0.0, 49.9, 100.0)] + [TrendPoint("r", at, False, None)]
    assert sparkline(points) == "▁▄█ "


def test_history() -> None:
    now = dt.datetime(2026, 11, 28, tzinfo=dt.UTC)
    with fx.fixed_store() as store:
        text = _text(render_history(store, None, 7, "en", grace_hours=fx.GRACE_HOURS, timezone=fx.TIMEZONE,
                                    must_allow=fx.MUST_ALLOW, now=now))
        vnpt = next(line for line in text.splitlines() if "VNPT Gia Lai (vnpt)" in line)
        assert [c.strip() for c in vnpt.split("│")[1:-1]] == ["VNPT Gia Lai (vnpt)", "4", "▇▇█▇", "80.0", "80.0",
                                                              "−3.3"]
        night3 = next(line for line in text.splitlines() if "20261126T183000Z-003" in line)
        assert [c.strip() for c in night3.split("│")[1:-1]] == [
            "2026-11-27 01:30", "20261126T183000Z-003", "100.0", "83.3", "50.0", "0.0"
        ]
        one = _text(render_history(store, "fpt", 2, "vi", timezone=fx.TIMEZONE, must_allow=fx.MUST_ALLOW, now=now))
        assert "Tuân thủ trong 2 ngày qua" in one and "vnpt" not in one
        assert "01:30 27/11/2026" in one and "−33,3" in one
        nothing = _text(render_history(store, None, 1, "en", now=now + dt.timedelta(days=30)))
        assert "no run in this period" in nothing


def test_trend_axis_tells_runs_of_the_same_day_apart() -> None:
    from dataclasses import replace

    with fx.fixed_store() as store:
        a = analyse(store, fx.LAST.run_id, grace_hours=fx.GRACE_HOURS, timezone=fx.TIMEZONE)
    # the last two runs at 01:30 and 21:45 on the same local day
    later = a.trend_runs[-2].started_at + dt.timedelta(hours=20, minutes=15)
    runs = a.trend_runs[:-1] + (replace(a.trend_runs[-1], started_at=later),)
    doc = render_html(replace(a, trend_runs=runs), "en")
    trend = section_html(doc, "trend")
    assert "11-27 01:30" in trend and "11-27 21:45" in trend
    assert ">11-25<" not in trend and "11-25 01:30" in trend
