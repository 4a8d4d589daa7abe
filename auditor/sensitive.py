"""Sensitive entries: which they are, and how outputs hide them behind a keyed hash.

The store keeps the real URL (it is the department's own record); the CSVs and reports can show
`hmac-sha256:<hex>` instead, with the URL and host also removed from the evidence, so a file sent to the
ministry or read by a spreadsheet user never names an address of illegal material. The same key gives the
same token every night, so entries can be followed across runs and matched by whoever holds the key.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace

from auditor.config import Config
from auditor.errors import UsageError
from auditor.models import ListEntry, MeasurementRecord

TOKEN_PREFIX = "hmac-sha256:"
_URL_IN_TEXT = re.compile(r"\bhttps?://[^\s,;)']+", re.IGNORECASE)

Redact = Callable[[MeasurementRecord], MeasurementRecord]  # a record -> what outputs may show of it


def is_sensitive(config: Config, entry: ListEntry) -> bool:
    return config.sensitive.is_sensitive(entry.list_name, entry.category_code)


class UrlHasher:
    def __init__(self, key: bytes) -> None:
        self._key = key

    def token(self, url: str) -> str:
        return TOKEN_PREFIX + hmac.new(self._key, url.encode("utf-8"), hashlib.sha256).hexdigest()

    def host_token(self, host: str) -> str:
        return "host:" + hmac.new(self._key, host.encode("utf-8"), hashlib.sha256).hexdigest()[:16]


def hasher_for(config: Config) -> UrlHasher | None:
    """The hasher when `sensitive.hash_urls` is on; a missing key stops the run before any probing."""
    s = config.sensitive
    if not s.hash_urls:
        return None
    key = os.environ.get(s.hash_key_env, "") or s.hash_key
    if not key:
        raise UsageError(
            f"sensitive.hash_urls is on but there is no key: set the environment variable {s.hash_key_env} "
            "(or sensitive.hash_key in the config) to a long random string, e.g. `openssl rand -base64 32`"
        )
    return UrlHasher(key.encode("utf-8"))


def hide(record: MeasurementRecord, hasher: UrlHasher) -> MeasurementRecord:
    """The record as outputs show it: URL replaced by its token, URL and host gone from the evidence."""
    entry = record.entry
    token = hasher.token(entry.url)
    # every URL in the evidence (redirect hops lead to more of the same material), then the entry's host
    evidence = _URL_IN_TEXT.sub(lambda m: hasher.token(m.group(0)), record.judgement.evidence)
    if entry.host:
        evidence = evidence.replace(entry.host, hasher.host_token(entry.host))
    return replace(
        record,
        entry=replace(entry, url=token, host=hasher.host_token(entry.host), notes=""),
        judgement=replace(record.judgement, evidence=evidence),
        observation=None,
    )


def hidden(records: Iterable[MeasurementRecord], config: Config) -> Iterator[MeasurementRecord]:
    """Records for an output: sensitive ones hidden when hashing is on, the rest as they are."""
    hasher = hasher_for(config)
    for rec in records:
        yield hide(rec, hasher) if hasher is not None and is_sensitive(config, rec.entry) else rec


def redactor(config: Config) -> Redact | None:
    """A record -> record function for the analysis' findings, or None when nothing is hashed."""
    hasher = hasher_for(config)
    if hasher is None:
        return None
    return lambda rec: hide(rec, hasher) if is_sensitive(config, rec.entry) else rec
