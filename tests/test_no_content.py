"""No response body is kept: a page whose body (not its title) holds a unique random marker is audited for
real, and afterwards the marker is nowhere on disk (store, its -wal and -shm files, CSVs, logs, reports,
evidence records).

The same run must prove it read those bodies (their lengths and sha256 are stored, and found in the
store's bytes), so these tests cannot pass by measuring nothing.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from auditor.cli import app
from auditor.models import Verdict
from tests import hostile_servers as hs
from tests.hostile_servers import HostileRun, HostileWorld, name

LIMIT = 64 * 1024
TITLE = "Tin tức hôm nay"


def marker_forms(marker: str) -> dict[str, bytes]:
    return {
        "ascii": marker.encode(),
        "utf-16-le": marker.encode("utf-16-le"),
        "utf-16-be": marker.encode("utf-16-be"),
    }


def files_holding(root: Path, needles: dict[str, bytes]) -> list[tuple[str, str]]:
    """(file, form) for every file under `root` whose bytes contain a form of the marker."""
    found = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        found += [(str(path.relative_to(root)), form) for form, needle in needles.items() if needle in data]
    return found


def store_bytes(store_dir: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(store_dir.iterdir()) if p.is_file())


class Pages:
    """The marked pages, served plain, gzip-compressed, over https, and in ways that end in an error."""

    def __init__(self) -> None:
        self.marker = f"NOCONTENT{secrets.token_hex(16)}"
        self.body = (
            f"<html><head><title>{TITLE}</title></head><body><h1>Tin</h1><p>{self.marker}</p>"
            + "<p>Nội dung của trang.</p>" * 40
            + "</body></html>"
        ).encode()
        # a page bigger than the limit, the marker inside the prefix that is read
        self.big = self.body.replace(b"</body>", b"<p>" + b"z" * (2 * LIMIT) + b"</p></body>")
        self.sites: dict[str, hs.Response] = {
            name("plain"): hs.page(self.body),
            name("gzip"): hs.gzip_page(self.body),
            name("big"): hs.page(self.big),
            # a redirect whose own body carries the marker, then the plain page
            name("moved"): raw(hs.head("302 Found", {"Location": f"http://{name('plain')}/",
                                                     "Content-Length": str(len(self.body))}) + self.body),
            # the page sent bare, without a status line (HTTP/0.9 style, or a block page injected as is):
            # h11's error quotes the offending line, which is this body
            name("bare"): raw(self.body.replace(b"</p>", b"</p>\r\n\r\n", 1)),  # first line: up to the marker
            # an illegal header line holding the marker: quoted by h11 too
            name("bad-header"): raw(b"HTTP/1.1 200 OK\r\n" + self.marker.encode() + b" no colon\r\n\r\n" + self.body),
        }
        self.urls = [
            f"http://{name('plain')}/",
            f"http://{name('gzip')}/",
            f"https://{name('plain')}/",
            f"https://{name('gzip')}/",
            f"http://{name('big')}/",
            f"http://{name('moved')}/",
            f"http://{name('bare')}/",
            f"http://{name('bad-header')}/",
        ]


def raw(response: bytes) -> hs.Response:
    async def respond(writer: Any, path: str) -> None:
        writer.write(response)
        await writer.drain()

    return respond


@pytest.fixture
def pages() -> Pages:
    return Pages()


@pytest.fixture
def world(tmp_path: Path, pages: Pages) -> Iterator[HostileWorld]:
    with HostileWorld(tmp_path / "world", pages.sites) as w:
        yield w


def http_at(obs: dict[str, Any], hop: int = 0) -> dict[str, Any]:
    http: dict[str, Any] = obs["hops"][hop]["http"]
    return http


def assert_bodies_were_read(run: HostileRun, pages: Pages) -> list[str]:
    """Every marked page was fetched at both vantages; returns the sha256 values that must be stored."""
    whole = hashlib.sha256(pages.body).hexdigest()
    prefix = hashlib.sha256(pages.big[:LIMIT]).hexdigest()
    for u in pages.urls[:4]:
        j = run.records[u].judgement
        assert j.verdict is Verdict.ACCESSIBLE, (u, j)
        for obs in (run.provider(u), run.controls[u]):
            h = http_at(obs)
            assert (h["status"], h["title"], h["truncated"]) == (200, TITLE, False)
            assert h["body_length"] == len(pages.body)  # decoded: the gzip page too
            assert h["body_sha256"] == whole
    assert http_at(run.controls[pages.urls[1]])["declared_length"] == len(hs.gzip_bytes(pages.body))
    big = http_at(run.provider(f"http://{name('big')}/"))
    assert (big["body_length"], big["truncated"], big["body_sha256"]) == (LIMIT, True, prefix)
    moved = run.provider(f"http://{name('moved')}/")
    assert http_at(moved)["status"] == 302 and http_at(moved)["body_sha256"] == whole
    assert http_at(moved, 1)["body_sha256"] == whole
    for label in ("bare", "bad-header"):
        h = http_at(run.provider(f"http://{name(label)}/"))
        assert h["failure"] == "http_protocol_error" and "not kept" in h["error"], h
    return [whole, prefix]


def test_no_body_reaches_the_store_or_the_csvs(world: HostileWorld, pages: Pages) -> None:
    out_dir = world.workdir / "out"
    store_dir = world.store_path.parent
    needles = marker_forms(pages.marker)
    while_open: list[tuple[list[tuple[str, str]], bytes, list[str]]] = []

    def scan_open(store: Any) -> None:
        store.flush()
        while_open.append((files_holding(world.workdir, needles), store_bytes(store_dir),
                           sorted(p.name for p in store_dir.iterdir())))

    run = world.audit(pages.urls, out_dir, keep_store_open=scan_open)
    hashes = assert_bodies_were_read(run, pages)

    (found_open, stored_open, names_open), = while_open
    assert found_open == [], found_open
    assert any(n.endswith("-wal") for n in names_open), names_open  # the WAL was there to be scanned
    assert all(h.encode() in stored_open for h in hashes)  # the store's bytes hold the measurements

    assert files_holding(world.workdir, needles) == []
    assert all(h.encode() in store_bytes(store_dir) for h in hashes)
    csvs = sorted(out_dir.glob("*.csv"))
    assert len(csvs) == 2
    assert sum(c.read_text(encoding="utf-8").count(name("plain")) for c in csvs) >= 2


def test_nor_the_cli_logs_reports_and_the_analysts_view(world: HostileWorld, pages: Pages) -> None:
    config = world.write_config(pages.urls)
    reports = world.workdir / "reports"
    runner = CliRunner()
    runs = [
        ["run", "-c", str(config), "--out", str(reports), "--log-file", str(reports / "run.log"),
         "--log-format", "json"],
        ["report", "-c", str(config), "--format", "json", "-o", str(reports / "report.json")],
        ["report", "-c", str(config), "--format", "csv", "--measurements", "-o", str(reports / "m.csv")],
        ["check", "isp", "-c", str(config), *pages.urls],
        # evidence for a dispute: the raw observations of every pair, and still no body
        ["evidence", "keygen", "-o", str(reports / "evidence.pem")],
        ["evidence", "export", "-c", str(config), "--run", "latest", "--key", str(reports / "evidence.pem"),
         "-o", str(reports / "evidence")],
        ["evidence", "verify", str(reports / "evidence"), "--public-key", str(reports / "evidence.pem.pub")],
        # judged again and stored as a new run: the same observations, copied, and still no body
        ["rejudge", "-c", str(config), "--run", "latest", "--store-as-new", "--format", "json"],
    ]
    printed = []
    for args in runs:
        result = runner.invoke(app, args, catch_exceptions=False)
        assert result.exit_code == 0, (args, result.output)
        printed.append(result.output)
    report = json.loads((reports / "report.json").read_text(encoding="utf-8"))
    assert report and (reports / "run.log").stat().st_size > 0
    # the analyst's view shows the page's title and hash, never its text
    assert TITLE in printed[3] and hashlib.sha256(pages.body).hexdigest()[:12] in printed[3]
    # the evidence holds the observations (the bodies' hashes), one record per URL
    evidence = sorted((reports / "evidence").glob("0*.json"))
    assert len(evidence) == len(pages.urls)
    assert hashlib.sha256(pages.body).hexdigest().encode() in b"".join(e.read_bytes() for e in evidence)
    assert files_holding(world.workdir, marker_forms(pages.marker)) == []
    assert all(pages.marker not in out for out in printed)
