"""What is audited: `lists` (the reference list files), `canaries` (URLs that must load everywhere), and
`must_block` / `must_allow` (URLs seeded into the audit with a known right answer)."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from auditor.config.checks import MISSING, Checker, show
from auditor.urls import UrlError, normalise_url


def lists(check: Checker, top: dict[Any, Any]) -> tuple[Path, ...]:
    example = "[blocklists/example.csv]"
    value = check.required(top, "", "lists", f"the reference lists to audit, e.g. lists: {example}")
    if value is MISSING:
        return ()
    items = check.sequence(value, "lists", example)
    if items is None:
        return ()
    if not items:
        check.add("lists", f"needs at least one reference list, e.g. {example}")
    found = [
        check.existing_file(item, f"lists[{i}]", "list file", "blocklists/example.csv")
        for i, item in enumerate(items)
    ]
    return tuple(f for f in found if f is not None)


def canaries(check: Checker, top: dict[Any, Any]) -> tuple[str, ...]:
    example = "[https://chinhphu.vn/]"
    value = check.required(
        top,
        "",
        "canaries",
        f"URLs that must load at every provider, e.g. canaries: {example} (write canaries: [] for none)",
    )
    if value is MISSING:
        return ()
    items = check.sequence(value, "canaries", example)
    urls = [web_url(check, item, f"canaries[{i}]") for i, item in enumerate(items or ())]
    return tuple(u for u in urls if u is not None)


def url_list(check: Checker, top: dict[Any, Any], key: str) -> tuple[str, ...]:
    """An optional list of http(s) URLs, normalised (so they match list entries)."""
    urls: list[str] = []
    for where, item in check.items(top, "", key, "[https://dichvucong.gov.vn/]"):
        url = web_url(check, item, where)
        if url is None:
            continue
        try:
            urls.append(normalise_url(url).url)
        except UrlError as exc:
            check.add(where, f"must be an http:// or https:// URL ({exc})")
    return tuple(dict.fromkeys(urls))


def web_url(check: Checker, value: object, path: str) -> str | None:
    example = "https://chinhphu.vn/"
    url = check.text(value, path, example)
    if url is None:
        return None
    what = f"must be an http:// or https:// URL, e.g. {example}"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError as exc:
        check.add(path, f"{what} ({exc})")
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname or any(c.isspace() for c in url):
        check.add(path, f"{what}; got {show(url)}")
        return None
    return url
