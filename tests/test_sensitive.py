"""Sensitive entries: their content is never read, their URLs can leave only as keyed hashes."""

from __future__ import annotations

import asyncio
import csv
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from auditor.cli import app
from auditor.config import load_config
from auditor.engine import AuditResult, run_audit
from auditor.errors import ExitStatus
from auditor.lab import Lab
from auditor.models import MeasurementRecord
from auditor.observations import HopObservation
from auditor.sensitive import TOKEN_PREFIX, UrlHasher
from auditor.store import open_store
from probes import base
from tests.labrun import LabRun, lab_config

SENSITIVE = {
    "https://open-tls-case.example/": ("mobifone", "accessible", "tls.valid_handshake"),
    "https://snireset-case.example/": ("vnpt", "blocked", "tls.reset"),
    "http://open-case.example/": ("mobifone", "accessible", "http.matches_control"),
    "http://sinkhole-case.example/": ("viettel", "blocked", "dns.blockpage_address"),
    "http://blockpage-case.example/": ("fpt", "blocked", "http.differs"),
}
KEY = "a-test-key-that-is-long-enough"

# the run's result, its records by (provider, URL), HTTP requests each host got during it, the CSV directory
SensitiveRun = tuple[AuditResult, dict[tuple[str, str], MeasurementRecord], dict[str, int], Path]


def first_hop(record: MeasurementRecord) -> HopObservation:
    assert record.observation is not None, (record.provider_id, record.entry.url)
    return record.observation.hops[0]


def http_of(record: MeasurementRecord) -> base.HttpObservation:
    http = first_hop(record).http
    assert http is not None, (record.provider_id, record.entry.url)
    return http


@pytest.fixture(scope="module")
def sensitive_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SensitiveRun]:
    workdir = tmp_path_factory.mktemp("sensitive")
    with Lab(workdir) as lab:
        secret = workdir / "secret.csv"
        secret.write_text("url,category_code\n" + "".join(f"{u},XED\n" for u in SENSITIVE), encoding="utf-8")
        text = lab.config_path.read_text(encoding="utf-8").replace(
            f"lists:\n- {lab.list_path}", f"lists:\n- {secret}\n- {lab.list_path}"
        )
        text += f"sensitive:\n  lists: [{secret}]\n  hash_urls: true\n  hash_key: {KEY}\n"
        config_path = workdir / "sensitive.yaml"
        config_path.write_text(text, encoding="utf-8")
        config = load_config(config_path)
        assert config.sensitive.lists == (secret,)
        before = dict(lab.web.requests)
        store = open_store(config.store)
        out = workdir / "out"
        try:
            result = asyncio.run(run_audit(config, store, out_dir=out,
                                           provider_ids=["viettel", "vnpt", "fpt", "mobifone"]))
            records = {(r.provider_id, r.entry.url): r for r in store.iter_measurements(result.run.run_id)}
        finally:
            store.close()
        asked = {h: n - before.get(h, 0) for h, n in lab.web.requests.items()}
        yield result, records, asked, out


def test_https_sensitive_entries_get_no_http_request_at_all(sensitive_run: SensitiveRun) -> None:
    _, records, asked, _ = sensitive_run
    assert asked.get("open-tls-case.example", 0) == 0
    assert asked.get("snireset-case.example", 0) == 0
    assert asked.get("open-case.example", 0) > 0  # http: the status line and headers were asked for
    hop = first_hop(records[("mobifone", "https://open-tls-case.example/")])
    assert hop.content_withheld and hop.http is None


def test_http_sensitive_entries_read_headers_only(sensitive_run: SensitiveRun) -> None:
    _, records, _, _ = sensitive_run
    for pid in ("mobifone", "viettel"):
        http = http_of(records[(pid, "http://open-case.example/")])
        assert http.body_read is False and http.body_length == 0 and http.title == ""


def test_a_known_block_page_address_is_still_read_to_confirm_it(sensitive_run: SensitiveRun) -> None:
    _, records, _, _ = sensitive_run
    http = http_of(records[("viettel", "http://sinkhole-case.example/")])
    assert http.body_read is True and "ooni.vn_http_1" in http.fingerprints


@pytest.mark.parametrize("url", sorted(SENSITIVE))
def test_sensitive_verdicts(sensitive_run: SensitiveRun, url: str) -> None:
    _, records, _, _ = sensitive_run
    provider, verdict, rule = SENSITIVE[url]
    j = records[(provider, url)].judgement
    assert (j.verdict.value, j.rule) == (verdict, rule), j.evidence


def test_csv_shows_only_keyed_hashes_for_sensitive_urls(sensitive_run: SensitiveRun) -> None:
    result, records, _, out = sensitive_run
    text = (out / f"measurements-{result.run.run_id}.csv").read_text(encoding="utf-8")
    for url in SENSITIVE:
        host = url.split("/")[2]
        assert host not in text, f"{host} leaked into the CSV"
    hasher = UrlHasher(KEY.encode())
    rows = list(csv.DictReader(text.splitlines()))
    tokens = {r["url"] for r in rows if r["url"].startswith(TOKEN_PREFIX)}
    assert tokens == {hasher.token(u) for u in SENSITIVE}
    assert any(r["url"] == "http://nxdomain-case.example/" for r in rows)  # others stay readable
    # the store keeps the real URLs
    assert ("mobifone", "https://open-tls-case.example/") in records


def test_missing_hash_key_stops_before_probing(tmp_path: Path, lab_run: LabRun, monkeypatch: pytest.MonkeyPatch) -> None:
    path = lab_config(lab_run, tmp_path, append="sensitive:\n  categories: [GMB]\n  hash_urls: true\n")
    monkeypatch.delenv("AUDITOR_URL_KEY", raising=False)
    before = dict(lab_run.lab.web.requests)
    result = CliRunner().invoke(app, ["run", "-c", str(path), "--quiet"])
    assert result.exit_code == ExitStatus.USAGE and "AUDITOR_URL_KEY" in result.output
    assert lab_run.lab.web.requests == before  # no site was asked for anything
    with open_store(f"sqlite:///{tmp_path / 'audit.db'}") as store:
        assert store.list_runs() == []  # no run was begun


def test_logs_never_quote_a_sensitive_list(tmp_path: Path, lab_run: LabRun) -> None:
    secret = tmp_path / "secret.csv"
    secret.write_text("url,category_code\nhttp://open-case.example/,XED\nnot a url at all secret-marker,XED\n",
                      encoding="utf-8")
    path = lab_config(lab_run, tmp_path, first_lists=[secret], append=f"sensitive:\n  lists: [{secret}]\n")
    log = tmp_path / "run.log"
    result = CliRunner().invoke(app, ["run", "-c", str(path), "--provider", "mobifone", "--log-file", str(log)])
    assert result.exit_code == ExitStatus.OK, result.output
    logged = log.read_text(encoding="utf-8")
    assert f"{secret}:3: row skipped (sensitive list: details withheld)" in logged
    assert "secret-marker" not in logged and "open-case" not in logged
