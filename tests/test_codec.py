"""Stored observations come back as the typed records that were measured, so a stored run can be judged again."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, fields, is_dataclass, replace
from typing import Any, cast

import pytest

from auditor import codec
from auditor.config import Config, load_config
from auditor.engine import build_toolkit, run_audit
from auditor.lab import Lab
from auditor.models import MeasurementRecord, Verdict
from auditor.observations import DnsLookup, EndpointObservation, HopObservation, UrlObservation
from auditor.store.sqlite import SqliteStore
from auditor.verdict import judge
from probes import base
from tests.labrun import LabRun


def old_text(obj: object) -> str:
    """What the store wrote before auditor.codec: probes.base.to_dict + json.dumps."""
    return json.dumps(base.to_dict(obj), separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def sample() -> UrlObservation:
    host, ip = "tin-tức.example", "192.0.2.7"
    dns = DnsLookup(
        host,
        (
            base.DnsObservation("203.162.4.191:53", "A", "udp", None, "NOERROR", (ip,), ("cdn.example",), 4.5,
                                extra_answers=1),
            base.DnsObservation("203.162.4.191:53", "AAAA", "udp", base.Failure.DNS_NO_ANSWER, "NOERROR", elapsed_ms=3),
        ),
        (ip,),
        None,
        attempts=2,
    )
    cert = base.CertificateInfo("CN=Interception", "CN=Bộ chặn", "0f" * 32, "2027-01-01T00:00:00Z", (host, "*.x"))
    tls = base.TlsObservation(host, base.Failure.SSL_UNKNOWN_AUTHORITY, 7.25, "certificate verify failed", 20, "TLSv1.3",
                              cert)
    http = base.HttpObservation(
        None, 302, "Found", (("location", "http://warning.example/"), ("server", "nginx")),
        "http://warning.example/", "Trang bị chặn", 512, None, False, "ab" * 32, ("ooni.vn_http_1",), (), 9.5,
    )
    first = HopObservation(
        "https://tin-tức.example/", "https", host, 443, dns,
        (EndpointObservation(ip, 443, base.TcpObservation(ip, 443, None, 1.5), tls, attempts=2),),
        http, http_attempts=1,
        tls_check=EndpointObservation(ip, 443, base.TcpObservation(ip, 443, base.Failure.CONNECTION_RESET, 0.5, "reset")),
    )
    second = HopObservation("http://warning.example/", "http", "warning.example", 80, not_followed="not public")
    return UrlObservation("https://tin-tức.example/", "vnpt", "socks5 127.0.0.1:1080", (first, second),
                          "2026-11-27T22:31:05.000001Z", 31.75, depth=replace(first, content_withheld=True))


def assert_typed(obj: Any, where: str = "$") -> None:
    """Every sequence inside is a tuple (a frozen record holds no list or dict), recursively."""
    assert not isinstance(obj, (list, dict)), where
    if isinstance(obj, tuple):
        for i, x in enumerate(obj):
            assert_typed(x, f"{where}[{i}]")
    elif is_dataclass(obj):
        for f in fields(obj):
            if f.name != "extra":  # probes.base.HttpObservation.extra: a dict field, never set (see the report)
                assert_typed(getattr(obj, f.name), f"{where}.{f.name}")


# --- the codec on its own -------------------------------------------------------------------------


def test_encode_writes_the_text_the_old_encoder_wrote_and_decode_gives_the_record_back() -> None:
    obs = sample()
    text = codec.encode(obs)
    assert text == old_text(obs)
    back = codec.decode(UrlObservation, text)
    assert back == obs and back.hops[0].http is not None and back.hops[0].http.extra == {}
    assert_typed(back)
    assert codec.decode(UrlObservation, text.encode("utf-8")) == obs  # bytes too
    assert codec.to_builtins(obs) == json.loads(text)  # dicts and lists, for embedding in the JSON report


def test_a_measurement_row_holds_the_provider_observation_or_nothing() -> None:
    obs = sample()
    assert codec.encode_measured(None) == "{}"
    assert codec.encode_measured(obs) == '{"provider":' + old_text(obs) + "}"
    assert codec.decode(codec.MeasuredObservations, "{}").provider is None
    assert codec.decode(codec.MeasuredObservations, codec.encode_measured(obs)).provider == obs


def test_rows_without_later_fields_decode_with_their_defaults_and_unknown_keys_are_ignored() -> None:
    stored = json.loads(old_text(sample()))
    query = stored["hops"][0]["dns"]["queries"][0]
    del query["extra_answers"], stored["hops"][0]["http"]["body_read"], stored["depth"]
    query["added_by_a_later_version"] = [1, 2]
    back = codec.decode(UrlObservation, json.dumps(stored))
    assert back.depth is None
    assert back.hops[0].dns is not None and back.hops[0].dns.queries[0].extra_answers == 0
    assert back.hops[0].http is not None and back.hops[0].http.body_read is True
    # the rest is as written
    full = json.loads(old_text(sample())) | {"depth": None}
    full["hops"][0]["dns"]["queries"][0]["extra_answers"] = 0
    assert back == codec.decode(UrlObservation, json.dumps(full))
    # msgspec leaves a missing field's default on the class, so encoding `back` again leaves it out too:
    # that text still decodes to the same record
    assert codec.decode(UrlObservation, codec.encode(back)) == back


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"url": 7}', r"not a stored UrlObservation: Expected `str`, got `int` - at `\$\.url`"),
        ('{"url": "u"}', r"Object missing required field `vantage_id`"),
        ('{"url": "u", ', r"not a stored UrlObservation: (Input data was truncated|JSON is malformed)"),
        ("", r"not a stored UrlObservation"),
    ],
)
def test_text_that_is_not_an_observation_is_a_codec_error(text: str, message: str) -> None:
    with pytest.raises(codec.CodecError, match=message):
        codec.decode(UrlObservation, text)


def test_a_value_json_cannot_hold_is_a_type_error_at_encode() -> None:
    with pytest.raises(TypeError):
        codec.encode(replace(sample(), vantage=cast(str, object())))


# --- every lab case: measured, stored, read back, judged again ------------------------------------


class RecordingStore(SqliteStore):
    """The real store, keeping the very objects the engine handed it (the originals)."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.measured: dict[tuple[str, str], MeasurementRecord] = {}
        self.controls: dict[str, UrlObservation] = {}

    def record_measurement(self, rec: MeasurementRecord, *, ordinal: int | None = None) -> None:
        self.measured[(rec.provider_id, rec.entry.url)] = rec
        super().record_measurement(rec, ordinal=ordinal)

    def record_control(self, run_id: str, url: str, observation: UrlObservation) -> None:
        self.controls[url] = observation
        super().record_control(run_id, url, observation)


@dataclass
class StoredRun:
    config: Config
    run_id: str
    originals: RecordingStore
    records: list[MeasurementRecord]  # read back from the file by a fresh store
    controls: dict[str, UrlObservation | None]


@pytest.fixture(scope="module")
def stored_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StoredRun]:
    workdir = tmp_path_factory.mktemp("codec")
    with Lab(workdir) as lab:
        config = load_config(lab.config_path)
        path = str(workdir / "codec.db")
        originals = RecordingStore(path)
        try:
            result = asyncio.run(run_audit(config, originals))
        finally:
            originals.close()
        run_id = result.run.run_id
        with SqliteStore(path) as store:
            records = list(store.iter_measurements(run_id))
            controls = {r.entry.url: store.control_observation(run_id, r.entry.url) for r in records}
        yield StoredRun(config, run_id, originals, records, controls)


def test_every_lab_case_reads_back_as_the_observations_that_were_measured(stored_run: StoredRun) -> None:
    run = stored_run
    assert len(run.records) == len(run.originals.measured) > 100
    with_observation = 0
    for rec in run.records:
        original = run.originals.measured[(rec.provider_id, rec.entry.url)]
        assert rec == original
        assert rec.observation == original.observation, (rec.provider_id, rec.entry.url)
        if rec.observation is not None:
            with_observation += 1
            assert_typed(rec.observation)
            assert rec.observation.hops[0].http is None or rec.observation.hops[0].http.extra == {}
            # the text is what an older version (to_dict + json) wrote, and its rows decode to the same
            assert codec.encode(original.observation) == old_text(original.observation)
            assert codec.decode(UrlObservation, old_text(original.observation)) == original.observation
        control = run.controls[rec.entry.url]
        assert control == run.originals.controls.get(rec.entry.url)
        if control is not None:
            assert_typed(control)
            assert codec.encode(control) == old_text(control)
            assert codec.decode(UrlObservation, old_text(control)) == control
    assert with_observation > 100
    assert sum(c is not None for c in run.controls.values()) == len(run.originals.controls) > 20


def test_every_lab_case_judges_again_to_its_stored_judgement(lab_run: LabRun) -> None:
    """What `rejudge` will do: the suite's shared lab run, judged again from what its store gives back."""
    kit = build_toolkit(lab_run.config)
    run_id = lab_run.result.run.run_id
    rejudged = 0
    for rec in lab_run.records:
        if rec.observation is None:  # nothing was measured: a provider that failed its health check
            assert rec.judgement.verdict is Verdict.INCONCLUSIVE and rec.judgement.rule == "provider.not_measured"
            continue
        control = lab_run.store.control_observation(run_id, rec.entry.url)
        again = judge(rec.observation, control, kit.dns_fingerprint(rec.provider_id),
                      private_ok=lab_run.config.allow_private_destinations)
        if rec.judgement.rule == "vantage.unhealthy":  # the engine's re-check of the vantage overrode it
            assert rec.judgement.evidence.startswith(again.evidence)
        else:
            assert again == rec.judgement, (rec.provider_id, rec.entry.url)
        rejudged += 1
    assert rejudged > 100


def test_the_lab_store_text_reads_back_byte_for_byte(lab_run: LabRun) -> None:
    assert isinstance(lab_run.store, SqliteStore)
    conn = sqlite3.connect(lab_run.store.path)
    try:
        rows = conn.execute("SELECT observations_json FROM measurements WHERE run_id = ? UNION ALL "
                            "SELECT observations_json FROM controls WHERE run_id = ?",
                            (lab_run.result.run.run_id,) * 2).fetchall()
    finally:
        conn.close()
    assert len(rows) > len(lab_run.records)
    for (text,) in rows:
        if text.startswith('{"provider":') or text == "{}":
            assert codec.encode_measured(codec.decode(codec.MeasuredObservations, text).provider) == text
        else:
            assert codec.encode(codec.decode(UrlObservation, text)) == text
