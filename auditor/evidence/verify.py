"""Verify an evidence directory against a public key: what the ministry runs on what it was given.

    result = verify_evidence(Path("evidence/"), load_public_key(Path("auditor-key.pub")))
    result.ok, result.problems          # every problem names its file and what failed

Checked, in this order (every problem is reported, not only the first):
1. `manifest.sig` is an Ed25519 signature of the exact bytes of `manifest.json` by this key (a manifest
   signed by another key says so, from the fingerprint the manifest names);
2. the manifest is one (its format known);
3. the directory holds exactly the files the manifest lists: one it does not list was added, one missing
   was removed (or renamed);
4. each file has the manifest's sha256 and length (a file holding another listed file's bytes was renamed
   or reordered);
5. the hash chain: each record's `previous_sha256` is the sha256 of the record before it (64 zeros for the
   first), its `sequence` and file name say its position, its run is the manifest's, and the manifest's
   chain head is the last record's sha256.
Only the signature makes the rest mean anything; the chain lets one record, shown alone, say where it
stood. Nothing here needs the config or the store.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from auditor.codec import CodecError
from auditor.errors import UsageError
from auditor.evidence.keys import fingerprint
from auditor.evidence.records import (
    MANIFEST_FORMAT,
    MANIFEST_NAME,
    RECORD_FORMAT,
    SIGNATURE_NAME,
    ZERO_SHA256,
    Manifest,
    ManifestFile,
    read_manifest,
    record_sequence,
    sha256_hex,
)


@dataclass(frozen=True)
class Problem:
    file: str  # a name inside the directory
    message: str  # what failed

    def __str__(self) -> str:
        return f"{self.file}: {self.message}"


@dataclass(frozen=True)
class Verification:
    directory: Path
    key_fingerprint: str  # of the key verified against
    problems: tuple[Problem, ...]
    manifest: Manifest | None  # None when there is none to read

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        m = self.manifest
        if self.ok and m is not None:
            return (f"evidence valid: {len(m.files)} records of run {m.run_id} ({m.province}), "
                    f"signed {m.created_at} by key {self.key_fingerprint}, chain head {m.chain_head}")
        return f"evidence NOT valid: {len(self.problems)} problem{'s' if len(self.problems) != 1 else ''} in {self.directory}"


def verify_evidence(directory: Path, key: Ed25519PublicKey) -> Verification:
    if not directory.is_dir():
        raise UsageError(f"{directory} is not a directory (an evidence export is a directory)")
    given = fingerprint(key)
    problems: list[Problem] = []
    manifest_path = directory / MANIFEST_NAME
    if not manifest_path.is_file():
        problems.append(Problem(MANIFEST_NAME, "missing: this is not an evidence directory, or its manifest was removed"))
        return Verification(directory, given, tuple(problems), None)
    data = manifest_path.read_bytes()
    manifest: Manifest | None
    try:
        manifest = read_manifest(data)
    except CodecError as exc:
        manifest = None
        problems.append(Problem(MANIFEST_NAME, f"not a manifest: {exc}"))
    problems += _check_signature(directory, data, key, given, manifest)
    if manifest is None:
        return Verification(directory, given, tuple(problems), None)
    if manifest.format != MANIFEST_FORMAT:
        problems.append(Problem(MANIFEST_NAME, f"format {manifest.format!r} is not {MANIFEST_FORMAT!r}"))
    problems += _check_files(directory, manifest)
    return Verification(directory, given, tuple(problems), manifest)


def _check_signature(
    directory: Path, data: bytes, key: Ed25519PublicKey, given: str, manifest: Manifest | None
) -> list[Problem]:
    path = directory / SIGNATURE_NAME
    if not path.is_file():
        return [Problem(SIGNATURE_NAME, "missing: the manifest is not signed")]
    try:
        signature = base64.b64decode(path.read_bytes().strip(), validate=True)
    except (binascii.Error, ValueError):
        return [Problem(SIGNATURE_NAME, "not base64: the signature was changed")]
    if len(signature) != 64:
        return [Problem(SIGNATURE_NAME, f"{len(signature)} bytes, not an Ed25519 signature's 64: the signature was changed")]
    try:
        key.verify(signature, data)
    except InvalidSignature:
        if manifest is not None and manifest.key_fingerprint != given:
            return [Problem(SIGNATURE_NAME, f"does not verify with the public key given ({given}); the manifest "
                                            f"names the key {manifest.key_fingerprint}: signed by another key")]
        return [Problem(SIGNATURE_NAME, f"does not verify {MANIFEST_NAME} with the public key given ({given}): "
                                        "the manifest or its signature was changed after signing")]
    return []


def _check_files(directory: Path, manifest: Manifest) -> list[Problem]:
    problems: list[Problem] = []
    listed = Counter(f.name for f in manifest.files)
    for name in sorted(n for n, count in listed.items() if count > 1):
        problems.append(Problem(MANIFEST_NAME, f"lists {name} more than once"))
    present = {p.name for p in directory.iterdir()} - {MANIFEST_NAME, SIGNATURE_NAME}
    for name in sorted(present - set(listed)):
        problems.append(Problem(name, "not in the manifest: a record was added"))
    by_hash = {f.sha256: f.name for f in manifest.files}
    previous = ZERO_SHA256
    for position, f in enumerate(manifest.files, start=1):
        problems += [Problem(f.name, m) for m in _file_problems(directory, f, position, previous, present, by_hash, manifest)]
        previous = f.sha256  # the manifest's (signed) hash: one changed file is reported once, not twice
    if manifest.chain_head != previous:
        problems.append(Problem(MANIFEST_NAME, f"chain head {manifest.chain_head} is not the last record's "
                                               f"sha256 {previous}"))
    return problems


def _file_problems(
    directory: Path, f: ManifestFile, position: int, previous: str, present: set[str], by_hash: dict[str, str],
    manifest: Manifest,
) -> list[str]:
    if record_sequence(f.name) is None:  # never a path outside the directory, whatever the manifest says
        return ["not a record's name (NNNNNN-provider.json)"]
    path = directory / f.name
    if f.name not in present or not path.is_file():
        return ["missing: a record was removed (or renamed)"]
    data = path.read_bytes()
    digest = sha256_hex(data)
    if digest in by_hash and by_hash[digest] != f.name:
        return [f"holds the record the manifest lists as {by_hash[digest]}: records were renamed or reordered"]
    if digest != f.sha256 or len(data) != f.bytes:
        return [f"sha256 {digest} ({len(data)} bytes) is not the manifest's {f.sha256} ({f.bytes} bytes): "
                "the record was changed"]
    return _record_problems(data, f, position, previous, manifest)  # only bytes the manifest vouches for


def _record_problems(data: bytes, f: ManifestFile, position: int, previous: str, manifest: Manifest) -> list[str]:
    try:
        doc: Any = json.loads(data.decode("utf-8"))
    except ValueError as exc:  # UnicodeDecodeError is a ValueError too
        return [f"not a JSON record: {exc}"]
    if not isinstance(doc, dict):
        return ["not a JSON record: not an object"]
    found = []
    if doc.get("format") != RECORD_FORMAT:
        found.append(f"format {doc.get('format')!r} is not {RECORD_FORMAT!r}")
    if doc.get("previous_sha256") != previous:
        found.append(f"the chain breaks: previous_sha256 is {doc.get('previous_sha256')}, the record before it "
                     f"has {previous}: records were removed, added or reordered")
    if doc.get("sequence") != position or record_sequence(f.name) != position:
        found.append(f"sequence {doc.get('sequence')} in a file named {f.name}, at position {position} of the "
                     "chain: records were renamed or reordered")
    if doc.get("run_id") != manifest.run_id:
        found.append(f"run {doc.get('run_id')!r} is not the manifest's {manifest.run_id!r}")
    return found
