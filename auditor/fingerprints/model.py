"""What a fingerprint is: the record, OONI's pattern types and scopes, and when a regexp is usable."""

from __future__ import annotations

import re
from dataclasses import dataclass

PATTERN_TYPES = frozenset({"full", "prefix", "contains", "regexp"})
# Not an OONI pattern type: a config `redirect_hosts` entry, matching the Location URL's host or a subdomain.
HOST_PATTERN = "host"
# OONI's scopes (its scripts/validate_csv.py accepts exactly these eight), and ours for config entries.
SCOPES = {
    "nat": "national",
    "isp": "ISP",
    "prod": "middlebox product",
    "inst": "institution",
    "vbw": "vague word",
    "fp": "known false positive",
    "injb": "benign injection (e.g. a router's update notice), not a block",
    "prov": "the site's own restriction (e.g. a geoblock), not the network's",
    "config": "given in the audit config",
}
FALSE_POSITIVE_SCOPE = "fp"


@dataclass(frozen=True)
class Fingerprint:
    id: str  # OONI name, or e.g. "config.dns_ip.1", "provider.viettel.body.2"
    scope: str  # OONI scope: nat, isp, prod, inst, vbw, fp (others are kept as given)
    location: str  # "dns", "body" or "header.<lower-case-name>"
    pattern_type: str  # full, prefix, contains, regexp; "host" for a redirect_hosts entry
    pattern: str  # as written in the source (CSV rows are not altered)
    origin: str  # "ooni-builtin", "file:PATH" or "config"
    notes: str = ""

    @property
    def is_false_positive(self) -> bool:
        return self.scope == FALSE_POSITIVE_SCOPE


def regexp_problem(pattern: str) -> str:
    """Why `pattern` cannot be a fingerprint regexp ("" if it can): it does not compile, or it matches the
    empty string (and so every page). Shared by CSV rows and config `body_patterns`."""
    try:
        rx = re.compile(pattern)
    except (re.error, OverflowError, RecursionError, ValueError) as exc:
        return f"invalid regexp {short(pattern)}: {exc}"
    if rx.search("") is not None:
        return f"regexp {short(pattern)} matches the empty string, so it would match everything"
    return ""


def short(text: str, limit: int = 60) -> str:
    """`text` quoted for a message, cut at `limit` characters."""
    return repr(text if len(text) <= limit else text[:limit] + "...")
