"""Export a stored run's judgements as signed evidence records (one file per (provider, URL)).

    result = export_evidence(store, run, out_dir, private_key, verdict="blocked", redact=redactor(config))

The records are written into a new hidden directory beside `out_dir`, each fsynced, and that directory is
renamed to `out_dir` only when the manifest is signed: a crash or an error leaves no half export behind
(at most a `.NAME.tmp-*` directory). The export only reads the store.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import os
import secrets
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from auditor.errors import UsageError
from auditor.evidence.keys import fingerprint
from auditor.evidence.records import (
    MANIFEST_FORMAT,
    MANIFEST_NAME,
    SIGNATURE_NAME,
    ZERO_SHA256,
    Manifest,
    ManifestFile,
    Selection,
    canonical_bytes,
    evidence_record,
    is_evidence_name,
    manifest_bytes,
    record_name,
    sha256_hex,
    tool_version,
)
from auditor.models import MeasurementRecord, RunInfo, Verdict
from auditor.report.csvformat import format_utc
from auditor.store import Store

VERDICT_CHOICES = ("blocked", "accessible", "all")

Redact = Callable[[MeasurementRecord], MeasurementRecord]


@dataclass(frozen=True)
class ExportResult:
    directory: Path
    run_id: str
    records: int
    key_fingerprint: str
    chain_head: str


def resolve_run(store: Store, run_id: str, where: str) -> RunInfo:
    """The run `run_id` names (`latest`: the newest), or a UsageError naming the store `where`."""
    rid = store.latest_run_id() if run_id == "latest" else run_id
    run = store.get_run(rid) if rid else None
    if run is None:
        raise UsageError(f"no run {run_id!r} in the store {where}" if rid else f"the store {where} holds no run yet")
    return run


def export_evidence(
    store: Store,
    run: RunInfo,
    out_dir: Path,
    key: Ed25519PrivateKey,
    *,
    provider_ids: Sequence[str] = (),
    verdict: str = "all",
    redact: Redact | None = None,
    force: bool = False,
    now: dt.datetime | None = None,
) -> ExportResult:
    """Write the run's records (of `provider_ids`, all when empty; of `verdict`) into `out_dir`, in the
    store's order (provider order, then list order), chained by hash, with the signed manifest.

    `redact` is auditor.sensitive.redactor(config): a record it hides (its URL becomes the token) keeps
    no observation, its control observation included. `out_dir` must be new or empty; with `force` it may
    hold an earlier export, which is replaced (never a directory holding anything else)."""
    if verdict not in VERDICT_CHOICES:
        raise UsageError(f"unknown verdict {verdict!r}: one of {', '.join(VERDICT_CHOICES)}")
    names = {h.provider_id: h.provider_name for h in store.providers(run.run_id)}
    unknown = [p for p in provider_ids if p not in names]
    if unknown:
        raise UsageError(f"provider {', '.join(unknown)} not in run {run.run_id}; its providers: {', '.join(names)}")
    out_dir = out_dir.absolute()
    _check_target(out_dir, force)
    staging = out_dir.with_name(f".{out_dir.name}.tmp-{secrets.token_hex(4)}")
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        os.mkdir(staging)
    except OSError as exc:
        raise UsageError(f"cannot write evidence beside {out_dir}: {exc.strerror or exc}") from exc
    try:
        files = _write_records(store, run, staging, names, provider_ids, verdict, redact)
        if not files:
            which = f" of {', '.join(provider_ids)}" if provider_ids else ""
            raise UsageError(f"run {run.run_id} has no {'' if verdict == 'all' else verdict + ' '}"
                             f"measurement{which}: nothing to export")
        head = files[-1].sha256
        manifest = Manifest(
            format=MANIFEST_FORMAT,
            run_id=run.run_id,
            province=run.province,
            created_at=format_utc(now or dt.datetime.now(dt.UTC)),
            tool_version=tool_version(),
            key_fingerprint=fingerprint(key.public_key()),
            selection=Selection(providers=tuple(provider_ids), verdict=verdict),
            files=tuple(files),
            chain_head=head,
        )
        data = manifest_bytes(manifest)
        _write(staging / MANIFEST_NAME, data)
        _write(staging / SIGNATURE_NAME, base64.b64encode(key.sign(data)) + b"\n")
        _fsync_dir(staging)
        _install(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return ExportResult(out_dir, run.run_id, len(files), manifest.key_fingerprint, head)


def _write_records(
    store: Store,
    run: RunInfo,
    staging: Path,
    names: dict[str, str],
    provider_ids: Sequence[str],
    verdict: str,
    redact: Redact | None,
) -> list[ManifestFile]:
    wanted = set(provider_ids)
    version = tool_version()
    files: list[ManifestFile] = []
    previous = ZERO_SHA256
    for rec in store.iter_measurements(run.run_id):
        if (wanted and rec.provider_id not in wanted) or (verdict != "all" and rec.judgement.verdict != Verdict(verdict)):
            continue
        shown = redact(rec) if redact is not None else rec
        withheld = shown.entry.url != rec.entry.url  # hidden: the URL became its keyed hash
        control = None if withheld else store.control_observation(run.run_id, rec.entry.url)
        doc = evidence_record(
            sequence=len(files) + 1, previous_sha256=previous, run=run, provider_name=names.get(rec.provider_id, ""),
            record=shown, control=control, withheld=withheld, version=version,
        )
        data = canonical_bytes(doc)
        name = record_name(len(files) + 1, rec.provider_id)
        _write(staging / name, data)
        previous = sha256_hex(data)
        files.append(ManifestFile(name=name, sha256=previous, bytes=len(data)))
    return files


def _check_target(out_dir: Path, force: bool) -> None:
    if not out_dir.exists():
        return
    if not out_dir.is_dir():
        raise UsageError(f"{out_dir} exists and is not a directory: evidence goes into a new or empty directory")
    present = sorted(p.name for p in out_dir.iterdir())
    if not present:
        return
    if not force:
        raise UsageError(f"{out_dir} is not empty: evidence goes into a new or empty directory "
                         "(--force replaces an earlier export there)")
    strangers = [n for n in present if not (is_evidence_name(n) and (out_dir / n).is_file())]
    if strangers:
        raise UsageError(f"{out_dir} holds files that are not evidence ({', '.join(strangers[:3])}): --force "
                         "replaces only an earlier export; choose a new or empty directory")


def _install(staging: Path, out_dir: Path) -> None:
    """Rename the finished export into place; an earlier one (checked by _check_target) goes only then."""
    if not out_dir.exists():
        os.rename(staging, out_dir)
        return
    if not any(out_dir.iterdir()):
        out_dir.rmdir()
        os.rename(staging, out_dir)
        return
    old = out_dir.with_name(f".{out_dir.name}.old-{secrets.token_hex(4)}")
    os.rename(out_dir, old)
    os.rename(staging, out_dir)
    shutil.rmtree(old)


def _write(path: Path, data: bytes) -> None:
    with path.open("xb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # not every filesystem lets a directory be opened for fsync
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
