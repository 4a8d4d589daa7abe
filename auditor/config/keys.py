"""The YAML keys of each config section, derived from the model's dataclass fields.

A section's keys are its dataclass's field names, in declaration order. A new field with a default becomes
an allowed key without touching this file (its section module still has to read it). Where the YAML is
shaped differently from the model, the mappings below say so, and nothing else does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import Any, get_args

from auditor.config.model import (
    Config,
    ControlConfig,
    EvidenceConfig,
    FingerprintConfig,
    LimitsConfig,
    ProviderConfig,
    SensitiveConfig,
    Timeouts,
    VantageKind,
)

# Config fields that the YAML keeps in a section of their own (field -> "section.key"), or not at all (None).
CONFIG_YAML_PATHS: Mapping[str, str | None] = {
    "extra_ca_file": "tls.extra_ca_file",
    "loopback_only": "network.loopback_only",
    "allow_private_destinations": "network.allow_private_destinations",
    "simulated_internet": "network.simulated_internet",
    "source": None,  # the file the config came from
}


def section_keys(cls: type[Any], yaml_paths: Mapping[str, str | None] | None = None) -> tuple[str, ...]:
    """The keys a mapping for `cls` may hold: its fields' names, or the first part of their YAML path."""
    paths = yaml_paths or {}
    keys = [
        path.split(".")[0] for path in (paths.get(f.name, f.name) for f in fields(cls)) if path is not None
    ]
    return tuple(dict.fromkeys(keys))


def subsection_fields(cls: type[Any], yaml_paths: Mapping[str, str | None], section: str) -> dict[str, str]:
    """The keys of `section` (the rest of each YAML path that starts with it) -> the fields they fill."""
    prefix = section + "."
    found = ((f.name, yaml_paths.get(f.name) or "") for f in fields(cls))
    return {path.removeprefix(prefix): name for name, path in found if path.startswith(prefix)}


TOP_KEYS = section_keys(Config, CONFIG_YAML_PATHS)
TLS_FIELDS = subsection_fields(Config, CONFIG_YAML_PATHS, "tls")
TLS_KEYS = tuple(TLS_FIELDS)
NETWORK_FIELDS = subsection_fields(Config, CONFIG_YAML_PATHS, "network")
NETWORK_KEYS = tuple(NETWORK_FIELDS)
CONTROL_KEYS = section_keys(ControlConfig)
PROVIDER_KEYS = section_keys(ProviderConfig)
FINGERPRINT_KEYS = section_keys(FingerprintConfig)
TIMEOUT_KEYS = section_keys(Timeouts)
LIMITS_KEYS = section_keys(LimitsConfig)
SENSITIVE_KEYS = section_keys(SensitiveConfig)
EVIDENCE_KEYS = section_keys(EvidenceConfig)
# A vantage is written as its kind, {proxy: URL}; the kind "direct" is written as {}.
VANTAGE_KEYS: tuple[str, ...] = tuple(kind for kind in get_args(VantageKind) if kind != "direct")
