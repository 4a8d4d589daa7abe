"""Signed evidence records, for a dispute: a run's judgements with the facts behind them, one file per
(provider, URL), chained by hash, listed in a manifest signed with the auditor's Ed25519 key.

    keys.py     the key pair: generate, load, fingerprint (`auditor evidence keygen`, `pubkey`)
    records.py  the files' format: canonical JSON, names, the record and the manifest (docs/evidence.md)
    export.py   a stored run into a directory of records (`auditor evidence export`); only reads the store
    verify.py   a directory against a public key (`auditor evidence verify`); needs no config, no store
"""

from auditor.evidence.export import VERDICT_CHOICES, ExportResult, export_evidence, resolve_run
from auditor.evidence.keys import (
    fingerprint,
    generate_key,
    load_private_key,
    load_public_key,
    public_key_path,
    public_pem,
)
from auditor.evidence.verify import Problem, Verification, verify_evidence

__all__ = [
    "VERDICT_CHOICES",
    "ExportResult",
    "Problem",
    "Verification",
    "export_evidence",
    "fingerprint",
    "generate_key",
    "load_private_key",
    "load_public_key",
    "public_key_path",
    "public_pem",
    "resolve_run",
    "verify_evidence",
]
