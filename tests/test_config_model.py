"""The config package's model: allowed keys come from the dataclass fields, the store URL is one typed value."""

from __future__ import annotations

from dataclasses import field, fields, make_dataclass
from pathlib import Path
from typing import Any

import pytest

from auditor.config import (
    CONTROL_KEYS,
    FINGERPRINT_KEYS,
    LIMITS_KEYS,
    MEMORY_STORE,
    NETWORK_KEYS,
    PROVIDER_KEYS,
    SENSITIVE_KEYS,
    TIMEOUT_KEYS,
    TLS_KEYS,
    TOP_KEYS,
    Config,
    ControlConfig,
    FingerprintConfig,
    LimitsConfig,
    ProviderConfig,
    SensitiveConfig,
    StoreUrl,
    StoreUrlError,
    StoreUrlProblem,
    Timeouts,
    parse_config,
    parse_store_url,
)
from auditor.config.keys import CONFIG_YAML_PATHS, section_keys
from auditor.errors import ConfigError
from auditor.runlock import lock_path_for

# ---------------------------------------------------------------------------------------------------------
# Allowed keys are the dataclass fields

SECTIONS = [
    (CONTROL_KEYS, ControlConfig),
    (PROVIDER_KEYS, ProviderConfig),
    (FINGERPRINT_KEYS, FingerprintConfig),
    (TIMEOUT_KEYS, Timeouts),
    (LIMITS_KEYS, LimitsConfig),
    (SENSITIVE_KEYS, SensitiveConfig),
]


@pytest.mark.parametrize(("keys", "cls"), SECTIONS, ids=[cls.__name__ for _, cls in SECTIONS])
def test_a_sections_keys_are_its_fields(keys: tuple[str, ...], cls: type[Any]) -> None:
    assert keys == tuple(f.name for f in fields(cls))


def test_every_config_field_is_a_yaml_key_where_the_mapping_says() -> None:
    written = (set(TOP_KEYS) - {"tls", "network"}) | {f"tls.{k}" for k in TLS_KEYS} | {
        f"network.{k}" for k in NETWORK_KEYS
    }
    assert written == {CONFIG_YAML_PATHS.get(f.name, f.name) for f in fields(Config)} - {None}
    assert TLS_KEYS == ("extra_ca_file",) and NETWORK_KEYS == ("loopback_only", "allow_private_destinations")


def test_a_new_field_on_a_section_becomes_an_allowed_key() -> None:
    later_limits = make_dataclass("LimitsConfig", [("burst", int, field(default=0))], bases=(LimitsConfig,), frozen=True)
    assert section_keys(later_limits) == LIMITS_KEYS + ("burst",)
    later = make_dataclass("Config", [("colour", str, field(default=""))], bases=(Config,), frozen=True, kw_only=True)
    assert section_keys(later, CONFIG_YAML_PATHS) == TOP_KEYS + ("colour",)


def test_an_unknown_key_message_lists_the_fields(tmp_path: Path) -> None:
    (tmp_path / "l.csv").write_text("url\n", encoding="utf-8")
    document = {
        "province": "Gia Lai", "lists": ["l.csv"], "canaries": [], "control": {"resolvers": ["1.1.1.1"]},
        "providers": [{"id": "viettel", "name": "Viettel", "resolvers": ["203.113.131.1"]}],
        "limits": {"zzz": 1},
    }  # fmt: skip
    with pytest.raises(ConfigError) as info:
        parse_config(document, tmp_path)
    [problem] = info.value.problems
    assert problem.path == "limits.zzz"
    assert problem.message == "unknown key 'zzz'; expected one of: " + ", ".join(f.name for f in fields(LimitsConfig))


# ---------------------------------------------------------------------------------------------------------
# The store URL, parsed once


def test_store_url_forms(tmp_path: Path) -> None:
    url = parse_store_url("sqlite:///data/audit.db", tmp_path)
    assert url == StoreUrl("sqlite", str(tmp_path / "data" / "audit.db"), f"sqlite:///{tmp_path}/data/audit.db")
    assert str(url) == url.url and not url.in_memory
    assert parse_store_url("SQLite:////var/lib/auditor/audit.db").location == "/var/lib/auditor/audit.db"
    assert parse_store_url("sqlite:///:memory:") == MEMORY_STORE and MEMORY_STORE.in_memory
    assert parse_store_url("sqlite:///~/audit.db").location == str(Path.home() / "audit.db")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("audit.db", StoreUrlProblem.NO_SCHEME),
        ("sqlite:audit.db", StoreUrlProblem.NO_SCHEME),
        ("mysql://x/y", StoreUrlProblem.UNSUPPORTED_SCHEME),
        ("sqlite://host/audit.db", StoreUrlProblem.HOST),
        ("sqlite://", StoreUrlProblem.HOST),
        ("sqlite:///", StoreUrlProblem.NO_PATH),
        ("sqlite:///a.db?mode=ro", StoreUrlProblem.QUERY),
        ("sqlite:///~nobody_such_user_here/a.db", StoreUrlProblem.BAD_PATH),
    ],
)
def test_store_url_problems(text: str, problem: StoreUrlProblem) -> None:
    with pytest.raises(StoreUrlError) as info:
        parse_store_url(text)
    assert info.value.problem is problem


def test_a_store_password_never_shows() -> None:
    """A server store (PostgreSQL, later) keeps its password in `url`, for the driver only."""
    url = StoreUrl("postgresql", "db.example:5432/audit", "postgresql://auditor:s3cret@db.example:5432/audit")
    assert url.redacted() == "postgresql://auditor:***@db.example:5432/audit" == str(url) == f"{url}"
    assert "s3cret" not in repr(url) and "s3cret" not in repr(Config(province="x", control=ControlConfig(()),
                                                                     providers=(), store=url))


def test_lock_path_is_beside_the_database(tmp_path: Path) -> None:
    assert lock_path_for(parse_store_url(f"sqlite:///{tmp_path}/audit.db")) == tmp_path / "audit.db.lock"
    assert lock_path_for(MEMORY_STORE) is None
