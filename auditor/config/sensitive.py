"""`sensitive`: entries whose content is never read, and whether outputs hide URLs behind a keyed hash."""

from __future__ import annotations

from pathlib import Path

from auditor.config.checks import Checker
from auditor.config.keys import SENSITIVE_KEYS
from auditor.config.model import SensitiveConfig


def sensitive(check: Checker, value: object, path: str, lists: tuple[Path, ...]) -> SensitiveConfig:
    if value is None:
        return SensitiveConfig()
    found = check.mapping(value, path, SENSITIVE_KEYS, "{categories: [XED], hash_urls: true}")
    if found is None:
        return SensitiveConfig()
    sensitive_lists: list[Path] = []
    for where, item in check.items(found, path, "lists", "[blocklists/sensitive.csv]"):
        p = check.existing_file(item, where, "list file", "blocklists/sensitive.csv")
        if p is None:
            continue
        if p not in lists:
            check.add(
                where, f"{p} is not one of `lists`; a sensitive list must also be audited: add it there"
            )
        sensitive_lists.append(p)
    categories = []
    for where, item in check.items(found, path, "categories", "[XED]"):
        code = check.text(item, where, "XED")
        if code is not None:
            categories.append(code.strip())
    hash_urls = SensitiveConfig.hash_urls
    if found.get("hash_urls") is not None:
        hash_urls = check.boolean(found["hash_urls"], f"{path}.hash_urls") or False
    env = SensitiveConfig.hash_key_env
    if found.get("hash_key_env") is not None:
        env = check.text(found["hash_key_env"], f"{path}.hash_key_env", "AUDITOR_URL_KEY") or env
    key = ""
    if found.get("hash_key") is not None:
        key = check.text(found["hash_key"], f"{path}.hash_key", "a long random string") or ""
        if key and len(key) < 16:
            check.add(f"{path}.hash_key", "must be at least 16 characters (better: 32 random bytes, base64)")
    return SensitiveConfig(tuple(sensitive_lists), tuple(categories), hash_urls, env, key)
