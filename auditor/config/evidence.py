"""`evidence`: where the key that signs evidence records is (auditor/evidence, `auditor evidence export`)."""

from __future__ import annotations

from auditor.config.checks import Checker
from auditor.config.keys import EVIDENCE_KEYS
from auditor.config.model import EvidenceConfig


def evidence(check: Checker, value: object, path: str) -> EvidenceConfig:
    if value is None:
        return EvidenceConfig()
    found = check.mapping(value, path, EVIDENCE_KEYS, "{signing_key: /etc/auditor/evidence.pem}")
    if found is None or found.get("signing_key") is None:
        return EvidenceConfig()
    where = f"{path}.signing_key"
    raw = check.text(found["signing_key"], where, "/etc/auditor/evidence.pem")
    key = check.path(raw, where) if raw is not None else None
    if key is not None and not key.is_file():
        check.add(where, f"signing key not found: {key}; create it with `auditor evidence keygen -o {key}`")
        return EvidenceConfig()
    return EvidenceConfig(signing_key=key)
