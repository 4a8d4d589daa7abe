"""The config package's model: allowed keys come from the dataclass fields, the store URL is one typed value,
and the config digest survives a later version adding a field with its default."""

from __future__ import annotations

from dataclasses import field, fields, make_dataclass, replace
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
    EvidenceConfig,
    FingerprintConfig,
    LimitsConfig,
    ProviderConfig,
    ResolverAddress,
    SensitiveConfig,
    StoreUrl,
    StoreUrlError,
    StoreUrlProblem,
    Timeouts,
    VantageConfig,
    config_digest,
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
    written = (
        (set(TOP_KEYS) - {"tls", "network"})
        | {f"tls.{k}" for k in TLS_KEYS}
        | {f"network.{k}" for k in NETWORK_KEYS}
    )
    assert written == {CONFIG_YAML_PATHS.get(f.name, f.name) for f in fields(Config)} - {None}
    assert TLS_KEYS == ("extra_ca_file",) and NETWORK_KEYS == ("loopback_only", "allow_private_destinations", "simulated_internet")


def test_a_new_field_on_a_section_becomes_an_allowed_key() -> None:
    later_limits = make_dataclass(
        "LimitsConfig", [("burst", int, field(default=0))], bases=(LimitsConfig,), frozen=True
    )
    assert section_keys(later_limits) == LIMITS_KEYS + ("burst",)
    later = make_dataclass(
        "Config", [("colour", str, field(default=""))], bases=(Config,), frozen=True, kw_only=True
    )
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
    assert problem.message == "unknown key 'zzz'; expected one of: " + ", ".join(
        f.name for f in fields(LimitsConfig)
    )


# ---------------------------------------------------------------------------------------------------------
# The store URL, parsed once


def test_store_url_forms(tmp_path: Path) -> None:
    url = parse_store_url("sqlite:///data/audit.db", tmp_path)
    assert url == StoreUrl(
        "sqlite", str(tmp_path / "data" / "audit.db"), f"sqlite:///{tmp_path}/data/audit.db"
    )
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
    assert "s3cret" not in repr(url) and "s3cret" not in repr(
        Config(province="x", control=ControlConfig(()), providers=(), store=url)
    )
    assert "s3cret" not in config_digest_input(url)


def config_digest_input(url: StoreUrl) -> str:
    from auditor.config.digest import canonical

    return repr(canonical(url))


def test_lock_path_is_beside_the_database(tmp_path: Path) -> None:
    assert lock_path_for(parse_store_url(f"sqlite:///{tmp_path}/audit.db")) == tmp_path / "audit.db.lock"
    assert lock_path_for(MEMORY_STORE) is None


# ---------------------------------------------------------------------------------------------------------
# config_digest

A = Config(
    province="Gia Lai",
    store=parse_store_url("sqlite:////srv/auditor/a.db"),
    output_dir=Path("/srv/auditor/reports"),
    lists=(Path("/srv/auditor/lists/mic.csv"),),
    canaries=("https://chinhphu.vn/",),
    control=ControlConfig((ResolverAddress("1.1.1.1"),)),
    providers=(ProviderConfig("viettel", "Viettel", (ResolverAddress("203.113.131.1"),), asn=7552),),
    fingerprints=FingerprintConfig(dns_ips=("103.192.236.94",)),
    timeouts=Timeouts(dns=2.0),
    concurrency=50,
    extra_ca_file=Path("/srv/auditor/ca.pem"),
    grace_hours=12.0,
    timezone="Asia/Bangkok",
    loopback_only=True,
    allow_private_destinations=True,
    limits=LimitsConfig(resolver_qps=10.0),
    sensitive=SensitiveConfig(categories=("XED",)),
    must_block=("http://must-block.test/",),
    must_allow=("http://must-allow.test/",),
)
# A different value in every field of A (test_b_differs_from_a_in_every_field keeps it so)
B = Config(
    province="Kon Tum",
    store=parse_store_url("sqlite:////srv/auditor/b.db"),
    output_dir=Path("/srv/auditor/out"),
    lists=(Path("/srv/auditor/lists/other.csv"),),
    canaries=(),
    control=ControlConfig((ResolverAddress("1.1.1.1", 5353),)),
    providers=(
        ProviderConfig(
            "viettel",
            "Viettel",
            (ResolverAddress("203.113.131.1"),),
            vantage=VantageConfig("interface", "ppp0"),
        ),
    ),
    fingerprints=FingerprintConfig(redirect_hosts=("warning.example.vn",)),
    timeouts=Timeouts(dns=2.5),
    concurrency=100,  # the default: a value set back to its default changes the digest too
    extra_ca_file=None,
    grace_hours=0.0,
    timezone="Asia/Ho_Chi_Minh",
    loopback_only=False,
    allow_private_destinations=False,
    limits=LimitsConfig(per_destination=1),
    sensitive=SensitiveConfig(hash_urls=True),
    must_block=(),
    must_allow=("http://other.test/",),
    evidence=EvidenceConfig(signing_key=Path("/etc/auditor/evidence.pem")),
    simulated_internet=("45.76.0.0/16",),
    source=Path("/elsewhere/config.yaml"),
)
DIGESTED = [f.name for f in fields(Config) if f.compare]


def test_b_differs_from_a_in_every_field() -> None:
    assert [name for name in DIGESTED if getattr(A, name) == getattr(B, name)] == []


@pytest.mark.parametrize("name", DIGESTED)
def test_changing_any_value_changes_the_digest(name: str) -> None:
    assert config_digest(replace(A, **{name: getattr(B, name)})) != config_digest(A)


def test_the_digest_is_pinned() -> None:
    """A change here breaks `--resume` of every run started before it: only change it on purpose."""
    assert config_digest(A) == "f4fc834c6b1bde1d"


def test_the_source_file_and_secrets_are_not_part_of_the_digest() -> None:
    assert config_digest(replace(A, source=Path("/elsewhere/config.yaml"))) == config_digest(A)
    keyed = replace(A, sensitive=replace(A.sensitive, hash_key="k" * 32))
    assert config_digest(keyed) == config_digest(A)


def test_a_later_version_with_new_defaulted_fields_gives_the_same_digest() -> None:
    later_provider = make_dataclass(
        "ProviderConfig", [("weight", int, field(default=1))], bases=(ProviderConfig,), frozen=True
    )
    later_limits = make_dataclass(
        "LimitsConfig", [("burst", int, field(default=0))], bases=(LimitsConfig,), frozen=True
    )
    later_config = make_dataclass(
        "Config",
        [("retries", int, field(default=0)), ("labels", tuple[str, ...], field(default=()))],
        bases=(Config,),
        frozen=True,
        kw_only=True,
    )
    values = {f.name: getattr(A, f.name) for f in fields(Config)}
    values["providers"] = tuple(
        later_provider(**{f.name: getattr(p, f.name) for f in fields(p)}) for p in A.providers
    )
    values["limits"] = later_limits(**{f.name: getattr(A.limits, f.name) for f in fields(LimitsConfig)})
    later = later_config(**values)
    assert config_digest(later) == config_digest(A)
    # ... and a value of the new field that is not its default is a different set-up.
    assert config_digest(replace(later, retries=3)) != config_digest(A)
    assert config_digest(replace(later, limits=replace(later.limits, burst=5))) != config_digest(A)
