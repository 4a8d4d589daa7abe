"""Signed evidence records: the key pair, the export (records, chain, manifest, signature) and the verifier,
which must refuse every tampering. Unit tests on the fixed store; the CLI in-process on the lab's run."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import shutil
import stat
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from typer.testing import CliRunner, Result

from auditor.cli import EvidenceVerdict, app
from auditor.errors import ExitStatus, UsageError
from auditor.evidence import (
    VERDICT_CHOICES,
    ExportResult,
    export_evidence,
    fingerprint,
    generate_key,
    load_private_key,
    load_public_key,
    public_key_path,
    verify_evidence,
)
from auditor.evidence.records import (
    MANIFEST_NAME,
    RECORD_FORMAT,
    SIGNATURE_NAME,
    ZERO_SHA256,
    canonical_bytes,
    read_manifest,
    sha256_hex,
)
from auditor.models import MeasurementRecord
from auditor.sensitive import TOKEN_PREFIX, UrlHasher
from auditor.store import SqliteStore
from tests import fixed_store as fx
from tests.builders import observed
from tests.labrun import LabRun

runner = CliRunner()
NOW = dt.datetime(2026, 11, 28, 3, 0, tzinfo=dt.UTC)


def invoke(*args: str) -> Result:
    return runner.invoke(app, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def store() -> Iterator[SqliteStore]:
    s = fx.fixed_store()
    yield s
    s.close()


@pytest.fixture(scope="module")
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def export(store: SqliteStore, out: Path, key: Ed25519PrivateKey, **kw: Any) -> ExportResult:
    return export_evidence(store, fx.LAST, out, key, now=NOW, **kw)


def records(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.name not in (MANIFEST_NAME, SIGNATURE_NAME))


# -- keys ---------------------------------------------------------------------------------------------------
def test_keygen_writes_a_private_key_only_its_owner_reads(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "evidence.pem"
    key = generate_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert public_key_path(path) == tmp_path / "keys" / "evidence.pem.pub"
    assert b"BEGIN PRIVATE KEY" in path.read_bytes()  # PKCS8
    assert fingerprint(load_public_key(public_key_path(path))) == fingerprint(key.public_key())
    assert fingerprint(load_private_key(path).public_key()) == fingerprint(key.public_key())


def test_keygen_never_overwrites_unless_forced(tmp_path: Path) -> None:
    path = tmp_path / "k.pem"
    first = generate_key(path)
    with pytest.raises(UsageError, match="already exist"):
        generate_key(path)
    public_key_path(path).unlink()  # the public half alone missing: still refused
    with pytest.raises(UsageError, match="already exists"):
        generate_key(path)
    os.chmod(path, 0o644)
    second = generate_key(path, force=True)
    assert fingerprint(second.public_key()) != fingerprint(first.public_key())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # a new file, not the old one's mode
    assert fingerprint(load_private_key(path).public_key()) == fingerprint(second.public_key())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k.pem", "k.pem.pub"]  # no temp file left


def test_key_files_that_are_not_the_right_kind_are_usage_errors(tmp_path: Path) -> None:
    path = tmp_path / "k.pem"
    generate_key(path)
    with pytest.raises(UsageError, match="is a private key"):
        load_public_key(path)
    with pytest.raises(UsageError, match="not a PEM private key"):
        load_private_key(public_key_path(path))
    with pytest.raises(UsageError, match="no signing key at"):
        load_private_key(tmp_path / "nope.pem")
    locked = tmp_path / "locked.pem"
    locked.write_bytes(Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret")))
    with pytest.raises(UsageError, match="passphrase"):
        load_private_key(locked)


# -- the export: records, chain, manifest ------------------------------------------------------------------
def test_records_are_chained_in_provider_then_list_order(store: SqliteStore, key: Ed25519PrivateKey, tmp_path: Path) -> None:
    result = export(store, tmp_path / "ev", key)
    files = records(tmp_path / "ev")
    assert result.records == len(files) == len(fx.PROVIDERS) * len(fx.ENTRIES)
    expected = [(pid, e.url) for pid, _, _ in fx.PROVIDERS for e in fx.ENTRIES]
    previous = ZERO_SHA256
    for n, (path, (pid, url)) in enumerate(zip(files, expected, strict=True), start=1):
        data = path.read_bytes()
        doc = json.loads(data)
        assert path.name == f"{n:06d}-{pid}.json"
        assert (doc["sequence"], doc["provider_id"], doc["url"]) == (n, pid, url)
        assert doc["previous_sha256"] == previous
        assert canonical_bytes(doc) == data  # canonical: sorted keys, UTF-8, one encoding
        assert "\\u" not in data.decode("utf-8")
        previous = sha256_hex(data)
    assert result.chain_head == previous


def test_a_record_holds_the_judgement_and_the_run(store: SqliteStore, key: Ed25519PrivateKey, tmp_path: Path) -> None:
    export(store, tmp_path / "ev", key)
    doc = json.loads((tmp_path / "ev" / "000009-viettel.json").read_text(encoding="utf-8"))
    assert doc == {
        "format": RECORD_FORMAT,
        "sequence": 9,
        "previous_sha256": sha256_hex((tmp_path / "ev" / "000008-vnpt.json").read_bytes()),
        "run_id": fx.LAST.run_id,
        "province": fx.PROVINCE,
        "run_status": "complete",
        "run_started_at": "2026-11-27T18:30:00Z",
        "run_finished_at": "2026-11-27T18:52:10Z",
        "config_digest": fx.LAST.config_digest,
        "tool_version": doc["tool_version"],
        "provider_id": "viettel",
        "provider_name": "Viettel – Chi nhánh Pleiku",
        "url": fx.CASINO.url,
        "list": "bocongan",
        "category_code": "CB",
        "category_description": "Cờ bạc",
        "date_added": "2026-11-01",
        "verdict": "blocked",
        "method": "dns",
        "confidence": "confirmed",
        "rule": "dns.nxdomain",
        "evidence": "NXDOMAIN from 203.113.131.1; control resolves 45.76.0.2 (DNS-only: reachable on control's address)",
        "measured_at": "2026-11-27T18:30:05Z",
        # the fixed store keeps no observations; the lab's run does (test_cli_export_of_the_lab_run)
        "observations": {"provider": None, "control": None, "withheld": False},
    }
    assert doc["tool_version"] and doc["tool_version"] != "unknown"


def test_the_manifest_lists_every_file_and_is_signed(store: SqliteStore, key: Ed25519PrivateKey, tmp_path: Path) -> None:
    result = export(store, tmp_path / "ev", key, provider_ids=["vnpt", "fpt"], verdict="blocked")
    data = (tmp_path / "ev" / MANIFEST_NAME).read_bytes()
    key.public_key().verify(base64.b64decode((tmp_path / "ev" / SIGNATURE_NAME).read_bytes()), data)
    m = read_manifest(data)
    assert canonical_bytes(json.loads(data)) == data
    assert (m.run_id, m.province, m.created_at) == (fx.LAST.run_id, fx.PROVINCE, "2026-11-28T03:00:00Z")
    assert m.key_fingerprint == fingerprint(key.public_key()) == result.key_fingerprint
    assert (m.selection.providers, m.selection.verdict) == (("vnpt", "fpt"), "blocked")
    files = records(tmp_path / "ev")
    assert [f.name for f in m.files] == [p.name for p in files]
    assert [(f.sha256, f.bytes) for f in m.files] == [(sha256_hex(p.read_bytes()), p.stat().st_size) for p in files]
    assert m.chain_head == m.files[-1].sha256
    blocked = {(pid, e.url) for pid in ("vnpt", "fpt") for e, runs in fx.PATTERNS[pid].items() if runs[3] == "B"}
    shown = {(json.loads(p.read_bytes())["provider_id"], json.loads(p.read_bytes())["url"]) for p in files}
    assert shown == blocked and len(files) == 5
    assert all(json.loads(p.read_bytes())["verdict"] == "blocked" for p in files)


def test_the_same_run_exports_to_the_same_bytes(store: SqliteStore, key: Ed25519PrivateKey, tmp_path: Path) -> None:
    export(store, tmp_path / "a", key)
    export(store, tmp_path / "b", key)
    for name in [p.name for p in (tmp_path / "a").iterdir()]:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_sensitive_entries_keep_no_url_host_or_observation(store: SqliteStore, key: Ed25519PrivateKey, tmp_path: Path) -> None:
    from dataclasses import replace

    from auditor.sensitive import hide

    hasher = UrlHasher(b"a-test-key-that-is-long-enough")

    def redact(rec: MeasurementRecord) -> MeasurementRecord:
        return hide(rec, hasher) if rec.entry.list_name == "treem" else rec

    # a store whose records hold observations naming the URL, to see them go
    from auditor.observations import UrlObservation

    s = SqliteStore(":memory:")
    fx.fill(s)
    for rec in list(s.iter_measurements(fx.LAST.run_id)):
        obs = UrlObservation(url=rec.entry.url, vantage_id=rec.provider_id, vantage="direct", hops=(),
                             started_at="2026-11-27T18:30:05Z", elapsed_ms=1.0)
        s.record_measurement(observed(rec, obs), ordinal=fx.ENTRIES.index(rec.entry))
        s.record_control(fx.LAST.run_id, rec.entry.url, replace(obs, vantage_id="control"))
    s.flush()
    export_evidence(s, fx.LAST, tmp_path / "ev", key, redact=redact, now=NOW)
    s.close()
    docs = [json.loads(p.read_bytes()) for p in records(tmp_path / "ev")]
    everything = b"".join(p.read_bytes() for p in (tmp_path / "ev").iterdir())
    for host in (fx.EVIL.host, fx.FORUM.host):
        assert host.encode() not in everything
    secret = [d for d in docs if d["list"] == "treem"]
    assert len(secret) == 8
    for d in secret:
        assert d["url"].startswith(TOKEN_PREFIX) and d["url"] in (hasher.token(fx.EVIL.url), hasher.token(fx.FORUM.url))
        assert d["observations"] == {"provider": None, "control": None, "withheld": True}
    others = [d for d in docs if d["list"] != "treem"]
    assert all(d["observations"]["provider"]["url"] == d["url"] == d["observations"]["control"]["url"] for d in others)


def test_the_target_must_be_new_or_an_earlier_export(store: SqliteStore, key: Ed25519PrivateKey, tmp_path: Path) -> None:
    out = tmp_path / "ev"
    out.mkdir()
    export(store, out, key)  # an empty directory is fine
    with pytest.raises(UsageError, match="is not empty"):
        export(store, out, key, verdict="blocked")
    export(store, out, key, verdict="blocked", force=True)  # an earlier export is replaced whole
    assert read_manifest((out / MANIFEST_NAME).read_bytes()).selection.verdict == "blocked"
    assert verify_evidence(out, key.public_key()).ok
    (out / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(UsageError, match="not evidence .*notes.txt"):
        export(store, out, key, force=True)
    assert (out / "notes.txt").exists()
    with pytest.raises(UsageError, match="nothing to export"):
        export(store, tmp_path / "none", key, provider_ids=["mobifone"], verdict="blocked")
    assert not (tmp_path / "none").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ev"]  # no staging directory left behind
    with pytest.raises(UsageError, match="not in run"):
        export(store, tmp_path / "x", key, provider_ids=["nosuch"])


def test_verify_accepts_an_untouched_export(store: SqliteStore, key: Ed25519PrivateKey, tmp_path: Path) -> None:
    result = export(store, tmp_path / "ev", key)
    v = verify_evidence(tmp_path / "ev", key.public_key())
    assert v.ok, v.problems
    assert v.summary() == (f"evidence valid: {result.records} records of run {fx.LAST.run_id} ({fx.PROVINCE}), "
                           f"signed 2026-11-28T03:00:00Z by key {result.key_fingerprint}, chain head {result.chain_head}")


def _resign(directory: Path, key: Ed25519PrivateKey, change: Callable[[dict[str, Any]], None]) -> None:
    m = json.loads((directory / MANIFEST_NAME).read_bytes())
    change(m)
    data = canonical_bytes(m)
    (directory / MANIFEST_NAME).write_bytes(data)
    (directory / SIGNATURE_NAME).write_bytes(base64.b64encode(key.sign(data)) + b"\n")


def test_the_chain_holds_even_under_a_valid_signature(store: SqliteStore, key: Ed25519PrivateKey, tmp_path: Path) -> None:
    """A manifest signed with the right key that lists the records out of order (or drops one) still fails:
    each record says where it stood."""
    out = tmp_path / "ev"
    export(store, out, key)

    def swap(m: dict[str, Any]) -> None:
        m["files"][3], m["files"][4] = m["files"][4], m["files"][3]

    _resign(out, key, swap)
    found = {str(p) for p in verify_evidence(out, key.public_key()).problems}
    assert any(p.startswith("000005-vnpt.json: the chain breaks") for p in found), found
    assert any(p.startswith("000005-vnpt.json: sequence 5 in a file named 000005-vnpt.json, at position 4") for p in found)
    assert not any(p.startswith("manifest.sig") for p in found)

    export(store, out, key, force=True)
    _resign(out, key, lambda m: m["files"].pop(5))
    (out / "000006-vnpt.json").unlink()
    found = {str(p) for p in verify_evidence(out, key.public_key()).problems}
    assert any(p.startswith("000007-vnpt.json: the chain breaks") for p in found), found
    assert "manifest.json: chain head" not in " ".join(found)  # the last record is still the head

    export(store, out, key, force=True)
    _resign(out, key, lambda m: m.update(chain_head=ZERO_SHA256))
    assert [str(p) for p in verify_evidence(out, key.public_key()).problems] == [
        f"manifest.json: chain head {ZERO_SHA256} is not the last record's sha256 "
        f"{read_manifest((out / MANIFEST_NAME).read_bytes()).files[-1].sha256}"]

    export(store, out, key, force=True)
    _resign(out, key, lambda m: m["files"][0].update(name="../outside.json"))
    found = {str(p) for p in verify_evidence(out, key.public_key()).problems}
    assert "../outside.json: not a record's name (NNNNNN-provider.json)" in found
    assert "000001-vnpt.json: not in the manifest: a record was added" in found


def test_verdict_choices_match_the_cli() -> None:
    assert tuple(v.value for v in EvidenceVerdict) == VERDICT_CHOICES


# -- every tampering is refused, through the CLI, on the lab's run -----------------------------------------
@pytest.fixture(scope="module")
def lab_export(lab_run: LabRun, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The lab run exported once (through the CLI) with a new key: (directory, private key)."""
    where = tmp_path_factory.mktemp("evidence")
    keyfile = where / "auditor.pem"
    assert invoke("evidence", "keygen", "-o", str(keyfile)).exit_code == ExitStatus.OK
    result = invoke("evidence", "export", "-c", str(lab_run.lab.config_path), "--run", lab_run.result.run.run_id,
                    "--key", str(keyfile), "-o", str(where / "ev"))
    assert result.exit_code == ExitStatus.OK, result.output
    assert f"{len(lab_run.records)} evidence records of run {lab_run.result.run.run_id}" in result.output
    return where / "ev", keyfile


def test_cli_export_of_the_lab_run(lab_run: LabRun, lab_export: tuple[Path, Path]) -> None:
    directory, keyfile = lab_export
    docs = [json.loads(p.read_bytes()) for p in records(directory)]
    assert [(d["provider_id"], d["url"]) for d in docs] == [(r.provider_id, r.entry.url) for r in lab_run.records]
    (nx,) = [d for d in docs if (d["provider_id"], d["url"]) == ("viettel", "http://nxdomain-case.example/")]
    assert (nx["verdict"], nx["method"], nx["confidence"], nx["rule"]) == ("blocked", "dns", "confirmed", "dns.nxdomain")
    assert nx["observations"]["provider"]["hops"][0]["dns"]["queries"][0]["rcode"] == "NXDOMAIN"
    assert nx["observations"]["control"]["vantage_id"] == "control"
    assert nx["observations"]["control"]["hops"][0]["dns"]["addresses"] == ["45.76.0.10"]
    assert nx["config_digest"] == lab_run.result.run.config_digest != ""
    assert nx["provider_name"] == "Viettel (lab)" and nx["province"] == lab_run.config.province
    result = invoke("evidence", "verify", str(directory), "--public-key", str(public_key_path(keyfile)))
    assert result.exit_code == ExitStatus.OK, result.output
    assert result.output.startswith(f"evidence valid: {len(docs)} records of run {lab_run.result.run.run_id}")
    assert len(result.output.splitlines()) == 1


def _flip_a_byte(d: Path) -> None:
    path = d / "000003-viettel.json"
    data = bytearray(path.read_bytes())
    i = data.index(b'"verdict": "') + len(b'"verdict": "')
    data[i] ^= 0x01  # "blocked"/"accessible" -> one letter off
    path.write_bytes(bytes(data))


def _remove(d: Path) -> None:
    (d / "000002-viettel.json").unlink()


def _remove_the_last(d: Path) -> None:
    records(d)[-1].unlink()


def _add(d: Path) -> None:
    last = records(d)[-1]
    doc = json.loads(last.read_bytes())
    doc.update(sequence=doc["sequence"] + 1, previous_sha256=sha256_hex(last.read_bytes()), verdict="blocked")
    (d / f"{doc['sequence']:06d}-{doc['provider_id']}.json").write_bytes(canonical_bytes(doc))


def _swap(d: Path) -> None:  # two records trade names: each is where the other should be
    a, b = d / "000001-viettel.json", d / "000002-viettel.json"
    a.rename(d / "tmp")
    b.rename(a)
    (d / "tmp").rename(b)


def _rename(d: Path) -> None:  # a record shown under another provider's name
    (d / "000001-viettel.json").rename(d / "000001-vnpt.json")


def _edit_manifest(d: Path) -> None:
    path = d / MANIFEST_NAME
    path.write_bytes(path.read_bytes().replace(b'"created_at": "2', b'"created_at": "1'))


def _forge_manifest(d: Path) -> None:
    """Change a record and put its new hash into the manifest, without the key."""
    path = d / "000003-viettel.json"
    doc = json.loads(path.read_bytes())
    doc["verdict"] = "accessible" if doc["verdict"] == "blocked" else "blocked"
    path.write_bytes(canonical_bytes(doc))
    m = json.loads((d / MANIFEST_NAME).read_bytes())
    m["files"][2].update(sha256=sha256_hex(path.read_bytes()), bytes=path.stat().st_size)
    (d / MANIFEST_NAME).write_bytes(canonical_bytes(m))


def _change_signature(d: Path) -> None:
    sig = bytearray(base64.b64decode((d / SIGNATURE_NAME).read_bytes()))
    sig[10] ^= 0x01
    (d / SIGNATURE_NAME).write_bytes(base64.b64encode(bytes(sig)) + b"\n")


def _garble_signature(d: Path) -> None:
    (d / SIGNATURE_NAME).write_bytes(b"not base64 at all!\n")


def _remove_signature(d: Path) -> None:
    (d / SIGNATURE_NAME).unlink()


def _remove_manifest(d: Path) -> None:
    (d / MANIFEST_NAME).unlink()


def _resign_with_another_key(d: Path) -> None:
    """Drop a record, fix the chain and the manifest, and sign it all with a key of one's own."""
    _remove_the_last(d)
    m = json.loads((d / MANIFEST_NAME).read_bytes())
    m["files"] = m["files"][:-1]
    m["chain_head"] = m["files"][-1]["sha256"]
    other = Ed25519PrivateKey.generate()
    m["key_fingerprint"] = fingerprint(other.public_key())
    data = canonical_bytes(m)
    (d / MANIFEST_NAME).write_bytes(data)
    (d / SIGNATURE_NAME).write_bytes(base64.b64encode(other.sign(data)) + b"\n")


TAMPERINGS: dict[str, tuple[Callable[[Path], None], list[tuple[str, str]]]] = {
    "a byte of a record changed": (_flip_a_byte, [("000003-viettel.json", "the record was changed")]),
    "a record removed": (_remove, [("000002-viettel.json", "missing: a record was removed")]),
    "the last record removed": (_remove_the_last, [("-", "missing: a record was removed")]),
    "a record added": (_add, [("-", "not in the manifest: a record was added")]),
    "records swapped": (_swap, [("000001-viettel.json", "lists as 000002-viettel.json: records were renamed or reordered"),
                                ("000002-viettel.json", "lists as 000001-viettel.json: records were renamed or reordered")]),
    "a record renamed": (_rename, [("000001-vnpt.json", "not in the manifest"),
                                   ("000001-viettel.json", "missing: a record was removed (or renamed)")]),
    "the manifest changed": (_edit_manifest, [(SIGNATURE_NAME, "the manifest or its signature was changed")]),
    "the manifest forged": (_forge_manifest, [(SIGNATURE_NAME, "the manifest or its signature was changed"),
                                              ("000004-viettel.json", "the chain breaks")]),
    "the signature changed": (_change_signature, [(SIGNATURE_NAME, "the manifest or its signature was changed")]),
    "the signature garbled": (_garble_signature, [(SIGNATURE_NAME, "not base64")]),
    "the signature removed": (_remove_signature, [(SIGNATURE_NAME, "missing: the manifest is not signed")]),
    "the manifest removed": (_remove_manifest, [(MANIFEST_NAME, "missing")]),
    "signed again by another key": (_resign_with_another_key, [(SIGNATURE_NAME, "signed by another key")]),
}


@pytest.mark.parametrize("name", sorted(TAMPERINGS))
def test_every_tampering_is_refused(lab_export: tuple[Path, Path], tmp_path: Path, name: str) -> None:
    directory, keyfile = lab_export
    copy = tmp_path / "ev"
    shutil.copytree(directory, copy)
    tamper, expected = TAMPERINGS[name]
    tamper(copy)
    result = invoke("evidence", "verify", str(copy), "--public-key", str(public_key_path(keyfile)))
    assert result.exit_code == ExitStatus.EVIDENCE_INVALID, result.output
    lines = result.output.splitlines()
    assert lines[-1].startswith("evidence NOT valid: ")
    for file, what in expected:
        assert any(line.startswith(file if file != "-" else "") and what in line for line in lines[:-1]), (file, what, lines)


def test_another_key_is_refused(lab_export: tuple[Path, Path], tmp_path: Path) -> None:
    directory, keyfile = lab_export
    other = tmp_path / "other.pem"
    generate_key(other)
    result = invoke("evidence", "verify", str(directory), "--public-key", str(public_key_path(other)))
    assert result.exit_code == ExitStatus.EVIDENCE_INVALID, result.output
    manifest = read_manifest((directory / MANIFEST_NAME).read_bytes())
    assert result.output.splitlines()[0] == (
        f"{SIGNATURE_NAME}: does not verify with the public key given ({fingerprint(load_public_key(public_key_path(other)))}); "
        f"the manifest names the key {manifest.key_fingerprint}: signed by another key")
    assert manifest.key_fingerprint == fingerprint(load_private_key(keyfile).public_key())


def test_cli_pubkey_prints_what_openssl_and_cryptography_read(lab_export: tuple[Path, Path], tmp_path: Path) -> None:
    _, keyfile = lab_export
    result = invoke("evidence", "pubkey", "--key", str(keyfile))
    assert result.exit_code == ExitStatus.OK, result.output
    expected = fingerprint(load_private_key(keyfile).public_key())
    assert result.output.splitlines()[0] == f"fingerprint: {expected}"
    printed = tmp_path / "given.pub"
    printed.write_text(result.output, encoding="utf-8")
    assert fingerprint(load_public_key(printed)) == expected
    assert result.output.split("\n", 1)[1] == public_key_path(keyfile).read_text(encoding="ascii")


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")
def test_the_ministry_can_verify_with_openssl_alone(lab_export: tuple[Path, Path], tmp_path: Path) -> None:
    """docs/evidence.md's recipe: the fingerprint and the signature checked without this tool."""
    directory, keyfile = lab_export
    pub = public_key_path(keyfile)
    der = subprocess.run(["openssl", "pkey", "-pubin", "-in", str(pub), "-outform", "DER"], capture_output=True, check=True)
    assert "sha256:" + sha256_hex(der.stdout) == fingerprint(load_public_key(pub))
    sig = tmp_path / "manifest.sig.bin"
    sig.write_bytes(base64.b64decode((directory / SIGNATURE_NAME).read_bytes()))
    ok = subprocess.run(["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", str(pub), "-rawin",
                         "-in", str(directory / MANIFEST_NAME), "-sigfile", str(sig)], capture_output=True, text=True)
    assert ok.returncode == 0 and "Signature Verified Successfully" in ok.stdout, ok


def test_cli_usage_errors(lab_run: LabRun, lab_export: tuple[Path, Path], tmp_path: Path) -> None:
    directory, keyfile = lab_export
    config = str(lab_run.lab.config_path)
    run_id = lab_run.result.run.run_id
    no_key = invoke("evidence", "export", "-c", config, "--run", run_id, "-o", str(tmp_path / "a"))
    assert no_key.exit_code == ExitStatus.USAGE and "--key KEYFILE" in no_key.output
    assert invoke("evidence", "pubkey", "-c", config).exit_code == ExitStatus.USAGE
    unknown = invoke("evidence", "export", "-c", config, "--run", run_id, "--key", str(keyfile),
                     "--provider", "nosuch", "-o", str(tmp_path / "b"))
    assert unknown.exit_code == ExitStatus.USAGE and "nosuch" in unknown.output
    no_run = invoke("evidence", "export", "-c", config, "--run", "nosuch", "--key", str(keyfile), "-o", str(tmp_path / "c"))
    assert no_run.exit_code == ExitStatus.USAGE and "no run 'nosuch'" in no_run.output
    taken = invoke("evidence", "export", "-c", config, "--run", run_id, "--key", str(keyfile), "-o", str(directory))
    assert taken.exit_code == ExitStatus.USAGE and "not empty" in taken.output
    private = invoke("evidence", "verify", str(directory), "--public-key", str(keyfile))
    assert private.exit_code == ExitStatus.USAGE and "is a private key" in private.output
    not_dir = invoke("evidence", "verify", str(tmp_path / "nope"), "--public-key", str(public_key_path(keyfile)))
    assert not_dir.exit_code == ExitStatus.USAGE
    again = invoke("evidence", "keygen", "-o", str(keyfile))
    assert again.exit_code == ExitStatus.USAGE and "not overwriting" in again.output
    assert not list(tmp_path.iterdir())


def test_cli_export_one_provider_blocked_and_sensitive_hashed(lab_run: LabRun, lab_export: tuple[Path, Path],
                                                               tmp_path: Path) -> None:
    """With sensitive.hash_urls, a sensitive entry's record names neither its URL nor its host, anywhere."""
    _, keyfile = lab_export
    hash_key = "a-test-key-that-is-long-enough"
    config = tmp_path / "sensitive.yaml"
    config.write_text(lab_run.lab.config_path.read_text(encoding="utf-8")
                      + f"sensitive:\n  categories: [GMB]\n  hash_urls: true\n  hash_key: {hash_key}\n", encoding="utf-8")
    result = invoke("evidence", "export", "-c", str(config), "--run", lab_run.result.run.run_id, "--key", str(keyfile),
                    "--provider", "viettel", "--verdict", "blocked", "-o", str(tmp_path / "ev"))
    assert result.exit_code == ExitStatus.OK, result.output
    hasher = UrlHasher(hash_key.encode())
    blocked = [r for r in lab_run.records if r.provider_id == "viettel" and r.judgement.verdict.value == "blocked"]
    docs = [json.loads(p.read_bytes()) for p in records(tmp_path / "ev")]
    assert [d["url"] for d in docs] == [hasher.token(r.entry.url) for r in blocked] and len(docs) > 3
    assert all(d["observations"] == {"provider": None, "control": None, "withheld": True} for d in docs)
    everything = b"".join(p.read_bytes() for p in (tmp_path / "ev").iterdir())
    for r in blocked:
        assert r.entry.host.encode() not in everything, r.entry.host
    assert b"case.example" not in everything
    ok = invoke("evidence", "verify", str(tmp_path / "ev"), "--public-key", str(public_key_path(keyfile)))
    assert ok.exit_code == ExitStatus.OK, ok.output
