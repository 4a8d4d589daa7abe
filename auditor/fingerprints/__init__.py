"""Block-page fingerprints: known signs that a DNS answer, a page or a redirect is a block.

Sources, in this order (the order results are reported in):
  1. the Vietnam rows of OONI's blocking-fingerprints, shipped in auditor/data (see data/ATTRIBUTION.md);
  2. OONI-format CSV files named in `fingerprints.files`;
  3. `fingerprints.dns_ips`, `fingerprints.body_patterns` (Python regexps) and `fingerprints.redirect_hosts`.

A fingerprint of scope `fp` is a known FALSE positive (it looks like a block page but is not): the `match_*`
methods never return one; `false_positive_for_*` return only those, so a verdict can say why it did not
count a page as a block.

The package only compares strings: it does no network I/O and keeps no state beyond the compiled matchers.

    model.py            Fingerprint, OONI's pattern types and scopes
    ooni_csv.py         the OONI CSV reader and the shipped Vietnam rows (reading only, no matching)
    normalise.py        the forms addresses, hosts and bodies are compared in
    search.py           multi-string search (prefix and substring indexes over many literals)
    matcher.py          the compiled matcher of one location
    fingerprint_set.py  FingerprintSet: building from config, merging, matching
"""

from __future__ import annotations

from auditor.fingerprints.fingerprint_set import FingerprintSet
from auditor.fingerprints.model import (
    FALSE_POSITIVE_SCOPE,
    HOST_PATTERN,
    PATTERN_TYPES,
    SCOPES,
    Fingerprint,
)
from auditor.fingerprints.normalise import normalise_address, normalise_host
from auditor.fingerprints.ooni_csv import BUILTIN_FILES, BUILTIN_ORIGIN, builtin_fingerprints, load_ooni_csv

__all__ = [
    "BUILTIN_FILES",
    "BUILTIN_ORIGIN",
    "FALSE_POSITIVE_SCOPE",
    "HOST_PATTERN",
    "PATTERN_TYPES",
    "SCOPES",
    "Fingerprint",
    "FingerprintSet",
    "builtin_fingerprints",
    "load_ooni_csv",
    "normalise_address",
    "normalise_host",
]
