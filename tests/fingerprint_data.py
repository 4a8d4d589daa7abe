"""Paths and text shared by the fingerprint tests (test_fingerprints*.py)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

OONI = Path(__file__).resolve().parents[2] / "shared" / "data" / "ooni"
OONI_DNS = OONI / "fingerprints_dns.csv"
OONI_HTTP = OONI / "fingerprints_http.csv"
DATA = Path(__file__).resolve().parents[1] / "auditor" / "data"
HEADER = (
    "name,scope,other_names,location_found,pattern_type,pattern,"
    "confidence_no_fp,expected_countries,source,exp_url,notes"
)

needs_ooni = pytest.mark.skipif(not OONI_HTTP.exists(), reason="shared OONI reference data not present")


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))
