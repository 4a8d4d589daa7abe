"""The audit's configuration: typed, validated before any probing.

`load_config(path)` reads YAML; `parse_config(data, base_dir)` validates a mapping. Every problem is
reported at once with its key path (and YAML line where known) in a ConfigError.

Validation never touches the network: resolvers must be IP literals because looking a name up would itself
be a measurement (through which resolver, from which vantage?). It does read the local files the config
names (lists, fingerprint CSVs, the extra CA file) to check that they exist.

Null means "not set": an optional key written with no value (`tls:` or `extra_ca_file: null`) takes its
default, exactly as if it were left out.

The package, in the order a document goes through it:
    load       the file and its YAML; key paths -> lines (lines)
    document   the top-level keys, each section by its module:
               outputs (store, output_dir), urllists (lists, canaries, must_block/must_allow),
               providers (control, providers, resolvers), vantage, fingerprints,
               settings (timeouts, concurrency, tls, grace_hours, timezone, network, limits), sensitive
    checks     the generic checks the sections are made of, and the wording of problems
    model      the frozen dataclasses; keys derives each section's allowed keys from their fields
    storeurl   the store URL, parsed once into a StoreUrl (also used by auditor.store and the run lock)
    digest     config_digest, stable when a later version adds a field with its default
"""

from __future__ import annotations

from auditor.config.checks import EXAMPLE_FILE
from auditor.config.digest import config_digest
from auditor.config.keys import (
    CONTROL_KEYS,
    FINGERPRINT_KEYS,
    LIMITS_KEYS,
    NETWORK_KEYS,
    PROVIDER_KEYS,
    SENSITIVE_KEYS,
    TIMEOUT_KEYS,
    TLS_KEYS,
    TOP_KEYS,
    VANTAGE_KEYS,
)
from auditor.config.load import load_config, parse_config
from auditor.config.model import (
    Config,
    ControlConfig,
    EvidenceConfig,
    FingerprintConfig,
    LimitsConfig,
    ProviderConfig,
    ResolverAddress,
    SensitiveConfig,
    Timeouts,
    VantageConfig,
    VantageKind,
)
from auditor.config.providers import MAX_ASN
from auditor.config.settings import MAX_CONCURRENCY, MAX_TIMEOUT
from auditor.config.storeurl import (
    MEMORY_STORE,
    StoreUrl,
    StoreUrlError,
    StoreUrlProblem,
    default_store_url,
    parse_store_url,
)
from auditor.config.vantage import MAX_IFNAME

__all__ = [
    "CONTROL_KEYS",
    "EXAMPLE_FILE",
    "FINGERPRINT_KEYS",
    "LIMITS_KEYS",
    "MAX_ASN",
    "MAX_CONCURRENCY",
    "MAX_IFNAME",
    "MAX_TIMEOUT",
    "MEMORY_STORE",
    "NETWORK_KEYS",
    "PROVIDER_KEYS",
    "SENSITIVE_KEYS",
    "TIMEOUT_KEYS",
    "TLS_KEYS",
    "TOP_KEYS",
    "VANTAGE_KEYS",
    "Config",
    "ControlConfig",
    "FingerprintConfig",
    "LimitsConfig",
    "ProviderConfig",
    "ResolverAddress",
    "SensitiveConfig",
    "EvidenceConfig",
    "StoreUrl",
    "StoreUrlError",
    "StoreUrlProblem",
    "Timeouts",
    "VantageConfig",
    "VantageKind",
    "config_digest",
    "default_store_url",
    "load_config",
    "parse_config",
    "parse_store_url",
]
