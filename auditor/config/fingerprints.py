"""`fingerprints` (global, and each provider's own): what a block looks like. DNS answers, page text,
redirect hosts, and OONI's fingerprint CSV files."""

from __future__ import annotations

import ipaddress
import re

from auditor.config.checks import Checker, kind, quote_hint, show
from auditor.config.keys import FINGERPRINT_KEYS
from auditor.config.model import FingerprintConfig
from auditor.urls import UrlError, normalise_host


def fingerprints(check: Checker, value: object, path: str) -> FingerprintConfig:
    if value is None:
        return FingerprintConfig()
    example = "{dns_ips: [103.192.236.94], body_patterns: ['Access denied · Viettel WAF']}"
    found = check.mapping(value, path, FINGERPRINT_KEYS, example)
    if found is None:
        return FingerprintConfig()
    dns_ips = [
        fingerprint_ip(check, item, where)
        for where, item in check.items(found, path, "dns_ips", "[103.192.236.94]")
    ]
    patterns = [
        pattern(check, item, where)
        for where, item in check.items(found, path, "body_patterns", "['bị chặn']")
    ]
    hosts = [
        redirect_host(check, item, where)
        for where, item in check.items(found, path, "redirect_hosts", "[warning.example.vn]")
    ]
    files = [
        check.existing_file(item, where, "fingerprint file", "fingerprints/fingerprints_http.csv")
        for where, item in check.items(found, path, "files", "[fingerprints/fingerprints_dns.csv]")
    ]
    return FingerprintConfig(
        dns_ips=tuple(x for x in dns_ips if x is not None),
        body_patterns=tuple(x for x in patterns if x is not None),
        redirect_hosts=tuple(x for x in hosts if x is not None),
        files=tuple(x for x in files if x is not None),
    )


def fingerprint_ip(check: Checker, value: object, path: str) -> str | None:
    what = "must be an IP address that a blocking resolver answers with, e.g. 103.192.236.94"
    try:
        if not isinstance(value, str):
            raise ValueError
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        check.add(path, f"{what}; got {kind(value)}{quote_hint(value)}")
        return None


def pattern(check: Checker, value: object, path: str) -> str | None:
    if not isinstance(value, str):
        check.add(
            path,
            f"must be a regular expression as text, e.g. 'bị chặn'; got {kind(value)}{quote_hint(value)}",
        )
        return None
    try:
        compiled = re.compile(value)
    except (re.error, OverflowError, RecursionError, ValueError) as exc:
        check.add(path, f"invalid regular expression: {exc}; escape special characters like ( [ . * with \\")
        return None
    if compiled.search("") is not None:
        check.add(
            path,
            f"{show(value)} matches an empty page, so it would call every page a block page; "
            "write text that only a block page contains, e.g. 'Access denied · Viettel WAF'",
        )
        return None
    return value


def redirect_host(check: Checker, value: object, path: str) -> str | None:
    """The host in the one spelling URLs get (auditor.urls.normalise_host), so that redirects compare."""
    what = "must be a host name (not a URL) that block redirects lead to, e.g. warning.example.vn"
    try:
        if not isinstance(value, str):
            raise UrlError("not text")
        return normalise_host(value.strip())
    except UrlError:
        check.add(path, f"{what}; got {kind(value)}")
        return None
