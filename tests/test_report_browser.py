"""The HTML report opened in a real headless browser (Chromium from the system packages).

What the browser built (its DOM) and what it painted (a screenshot, saved under $ARTIFACTS_DIR or
tests/artifacts/ for a human to look at) are checked. Skipped when Chromium is missing on a developer's
machine; in CI (the CI variable set) a missing Chromium is a failure, never a silent skip.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from auditor.analysis import analyse
from auditor.report.html import PALETTE, render_html
from tests import fixed_store as fx
from tests.browser import dump_dom, find_chromium, read_png, screenshot

CHROMIUM = find_chromium()
if CHROMIUM is None:
    if os.environ.get("CI"):
        pytest.fail("CI is set but no Chromium was found: .ci/run must install the chromium package",
                    pytrace=False)
    pytest.skip("Chromium not installed (apt-get install chromium)", allow_module_level=True)


def artifacts_dir() -> Path:
    d = Path(os.environ.get("ARTIFACTS_DIR") or Path(__file__).parent / "artifacts")
    d.mkdir(parents=True, exist_ok=True)
    return d


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("html")
    with fx.fixed_store() as store:
        a = analyse(store, fx.LAST.run_id, grace_hours=fx.GRACE_HOURS, timezone=fx.TIMEZONE,
                    must_block=fx.MUST_BLOCK, must_allow=fx.MUST_ALLOW)
    paths = {}
    for lang in ("en", "vi"):
        paths[lang] = out / f"report-{lang}.html"
        paths[lang].write_text(render_html(a, lang), encoding="utf-8")
    return paths


def _text_of(dom: str, section_id: str) -> str:
    m = re.search(rf'<section id="{section_id}">(.*?)</section>', dom, re.DOTALL)
    assert m, f"section {section_id} missing from the DOM"
    return m.group(1)


@pytest.mark.parametrize("lang", ["en", "vi"])
def test_browser_builds_the_page_as_written(pages: dict[str, Path], tmp_path: Path, lang: str) -> None:
    assert CHROMIUM is not None
    dom = dump_dom(CHROMIUM, pages[lang], tmp_path / "profile")
    assert "<script" not in dom  # the hostile title stayed text: no element was made of it
    assert "&lt;/td&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in dom
    summary = _text_of(dom, "summary")
    for name in ("VNPT Gia Lai", "Viettel – Chi nhánh Pleiku", "FPT Telecom", "MobiFone"):
        assert name in summary
    violations = _text_of(dom, "violations")
    assert violations.count("<tr>") == 1 + 7  # header + the seven violations
    assert _text_of(dom, "trend").count("<polyline") == 4
    if lang == "vi":
        for label in ("Tỷ lệ tuân thủ", "Nhà mạng", "Bị chặn", "Truy cập được", "Không kết luận", "Xu hướng",
                      "Vi phạm", "Chặn nhầm", "BỊ GẮN CỜ"):
            assert label in dom, label
        assert "80,0" in summary and "16,6" in summary
    else:
        assert "80.0" in summary and "Compliance %" in summary


def test_screenshot_shows_the_report(pages: dict[str, Path], tmp_path: Path) -> None:
    assert CHROMIUM is not None
    png = artifacts_dir() / "report-vi.png"
    png.unlink(missing_ok=True)
    screenshot(CHROMIUM, pages["vi"], png, tmp_path / "profile", size=(1280, 2000))
    shutil.copy(pages["vi"], artifacts_dir() / "report-vi.html")
    data = png.read_bytes()
    assert len(data) > 50_000  # a page of text, tables and charts, not a blank canvas
    width, height, rows = read_png(data)
    assert (width, height) == (1280, 2000)
    pixels: Counter[bytes] = Counter()
    for row in rows:
        pixels.update(row[i : i + 3] for i in range(0, len(row), 3))
    white = pixels[b"\xff\xff\xff"]
    assert len(pixels) > 100, "nearly a single colour: the page did not render"
    assert white < 0.97 * width * height, "almost all white"
    # the trend lines of the first three providers, and the red FLAGGED badge, were painted
    for colour in (*PALETTE[:3], "#a40e26"):
        rgb = bytes.fromhex(colour[1:])
        assert pixels[rgb] > 30, f"{colour} not painted"


def test_a_font_with_vietnamese_glyphs_is_installed() -> None:
    # Without one, Chromium paints diacritics as empty boxes even though the DOM is right.
    fc_list = shutil.which("fc-list")
    if fc_list is None:
        pytest.skip("fontconfig's fc-list not available to ask")
    out = subprocess.run([fc_list, ":lang=vi", "family"], capture_output=True, text=True, timeout=30, check=True)
    assert out.stdout.strip(), "no installed font covers Vietnamese (install fonts-dejavu-core or fonts-noto-core)"
