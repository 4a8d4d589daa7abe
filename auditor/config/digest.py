"""`config_digest(config)`: which set-up a run was measured with. Stored with every run, shown in the JSON
report, and compared by `auditor run --resume`, which refuses to go on with another configuration.

The digest is of a canonical JSON of the config in which every field equal to its dataclass default is
left out, at every depth. A later version that adds a field with a default (the way a config grows) so
gives today's config the same digest, and a run started before an upgrade can be resumed after it. Not
in the digest either: fields left out of comparison (Config.source, the file the config came from: the
same settings from another path are the same set-up) and fields left out of repr (secrets: the key of the
URL hash, a store's password).
"""

from __future__ import annotations

import enum
import hashlib
import json
from dataclasses import MISSING, Field, fields, is_dataclass
from pathlib import PurePath
from typing import Any, TypeAlias

from auditor.config.model import Config

Json: TypeAlias = None | bool | int | float | str | list["Json"] | dict[str, "Json"]


def config_digest(config: Config) -> str:
    """16 hex digits of sha256 over the canonical JSON of the non-default settings."""
    text = json.dumps(canonical(config), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def canonical(value: object) -> Json:
    """`value` as JSON data: dataclasses as objects without their default fields, tuples as lists,
    paths as text, enums as their values."""
    if is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: canonical(getattr(value, f.name))
            for f in fields(value)
            if f.compare and f.repr and not _is_default(f, getattr(value, f.name))
        }
    if isinstance(value, enum.Enum):
        return canonical(value.value)
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, (tuple, list)):
        return [canonical(item) for item in value]
    if isinstance(value, (set, frozenset)):
        return sorted((canonical(item) for item in value), key=json.dumps)
    if isinstance(value, dict):
        return {str(key): canonical(item) for key, item in value.items()}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"config_digest cannot encode a {type(value).__name__}")


def _is_default(f: Field[Any], value: object) -> bool:
    if f.default is not MISSING:
        return bool(value == f.default)
    if f.default_factory is not MISSING:
        return bool(value == f.default_factory())
    return False  # a required field is always part of the set-up
