"""What an evidence directory holds, byte for byte: the record files, the manifest, their names and hashes.

Shared by the exporter and the verifier, so the two cannot disagree on a name or an encoding. The format is
documented for the ministry's own tools in docs/evidence.md; a version only grows by new keys.

Every file is canonical JSON: keys sorted, two-space indents, UTF-8 (not \\u escapes), no NaN or
infinity, one final newline. Exporting the same run twice gives byte-identical record files, and a verifier
never re-serialises anything: it hashes the bytes as they are.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import re
from dataclasses import dataclass
from typing import Any

from auditor import codec
from auditor.models import MeasurementRecord, RunInfo
from auditor.observations import UrlObservation
from auditor.report.csvformat import format_utc

RECORD_FORMAT = "auditor.evidence/1"
MANIFEST_FORMAT = "auditor.evidence-manifest/1"
MANIFEST_NAME = "manifest.json"
SIGNATURE_NAME = "manifest.sig"
ZERO_SHA256 = "0" * 64  # the first record's previous_sha256
_RECORD_NAME = re.compile(r"^(\d{6,})-([a-z0-9_-]+)\.json$")


def canonical_bytes(doc: Any) -> bytes:
    """The one encoding of every file: ValueError for a NaN or infinity (a record must mean one thing)."""
    return (json.dumps(doc, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def record_name(sequence: int, provider_id: str) -> str:
    """`000001-viettel.json`: the chain's order is the names' order (for up to 999,999 records)."""
    return f"{sequence:06d}-{provider_id}.json"


def record_sequence(name: str) -> int | None:
    """The sequence number in a record file's name, None when it is not a record's name."""
    m = _RECORD_NAME.match(name)
    return int(m.group(1)) if m else None


def is_evidence_name(name: str) -> bool:
    """A name an export writes (what `--force` may replace)."""
    return name in (MANIFEST_NAME, SIGNATURE_NAME) or record_sequence(name) is not None


def tool_version() -> str:
    try:
        return importlib.metadata.version("auditor")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def evidence_record(
    *,
    sequence: int,
    previous_sha256: str,
    run: RunInfo,
    provider_name: str,
    record: MeasurementRecord,
    control: UrlObservation | None,
    withheld: bool,
    version: str,
) -> dict[str, Any]:
    """One (provider, URL) judgement with the facts it was drawn from, as a JSON-able dict.

    `record` is the record as outputs show it (auditor.sensitive.hide'd for a hidden sensitive entry: URL
    token, evidence without URL or host, no observation); `withheld` says so, and then `control` is None."""
    e, j = record.entry, record.judgement
    return {
        "format": RECORD_FORMAT,
        "sequence": sequence,
        "previous_sha256": previous_sha256,
        "run_id": run.run_id,
        "province": run.province,
        "run_status": run.status,
        "run_started_at": format_utc(run.started_at),
        "run_finished_at": format_utc(run.finished_at) if run.finished_at else None,
        "config_digest": run.config_digest,
        "tool_version": version,
        "provider_id": record.provider_id,
        "provider_name": provider_name,
        "url": e.url,
        "list": e.list_name,
        "category_code": e.category_code,
        "category_description": e.category_description,
        "date_added": e.date_added.isoformat() if e.date_added else None,
        "verdict": j.verdict.value,
        "method": j.method.value if j.method else None,
        "confidence": j.confidence.value if j.confidence else None,
        "rule": j.rule,
        "evidence": j.evidence,
        "measured_at": format_utc(record.measured_at),
        # as the JSON report has them (auditor.codec's encoding of the stored records), with control's beside
        "observations": {
            "provider": None if record.observation is None else codec.to_builtins(record.observation),
            "control": None if control is None else codec.to_builtins(control),
            "withheld": withheld,
        },
    }


@dataclass(frozen=True)
class ManifestFile:
    name: str
    sha256: str
    bytes: int


@dataclass(frozen=True)
class Selection:
    """Which of the run's records the export holds: a subset is not a record removed."""

    providers: tuple[str, ...]  # empty: every provider of the run
    verdict: str  # blocked | accessible | all


@dataclass(frozen=True)
class Manifest:
    format: str
    run_id: str
    province: str
    created_at: str
    tool_version: str
    key_fingerprint: str
    selection: Selection
    files: tuple[ManifestFile, ...]  # the records in chain order
    chain_head: str  # sha256 of the last record file (ZERO_SHA256 with none)


def manifest_bytes(manifest: Manifest) -> bytes:
    return canonical_bytes(codec.to_builtins(manifest))


def read_manifest(data: bytes) -> Manifest:
    """The manifest in `data`; auditor.codec.CodecError when it is not one."""
    return codec.decode(Manifest, data)
