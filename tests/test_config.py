"""Config loading and validation: every problem at once, with key path, line and a helpful message."""

from __future__ import annotations

import dataclasses
import shutil
import textwrap
from pathlib import Path

import pytest
import trustme
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditor.config import (
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
    Config,
    ControlConfig,
    FingerprintConfig,
    ProviderConfig,
    ResolverAddress,
    Timeouts,
    VantageConfig,
    default_store_url,
    load_config,
    parse_config,
    parse_store_url,
)
from auditor.errors import ConfigError, ConfigProblem, ExitStatus

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "config.example.yaml"

MINIMAL = """\
province: Gia Lai
lists: [list.csv]
canaries: []
control:
  resolvers: [1.1.1.1]
providers:
  - id: viettel
    name: Viettel
    resolvers: [203.113.131.1]
"""


def write(directory: Path, text: str, name: str = "config.yaml") -> Path:
    """A config file in `directory`, with the list file MINIMAL names."""
    (directory / "list.csv").write_text("url\nhttps://example.vn/\n", encoding="utf-8")
    path = directory / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def problems_of(directory: Path, text: str) -> list[ConfigProblem]:
    with pytest.raises(ConfigError) as info:
        load_config(write(directory, text))
    assert info.value.problems, "a ConfigError always lists at least one problem"
    return info.value.problems


def only(problems: list[ConfigProblem], path: str) -> ConfigProblem:
    found = [p for p in problems if p.path == path]
    assert len(found) == 1, f"expected one problem at {path}, got {problems}"
    return found[0]


# ---------------------------------------------------------------------------------------------------------
# A valid config


def test_full_config_round_trips_into_dataclasses(tmp_path: Path) -> None:
    (tmp_path / "blocklists").mkdir()
    (tmp_path / "blocklists" / "mic.csv").write_text("url\n", encoding="utf-8")
    (tmp_path / "fp").mkdir()
    (tmp_path / "fp" / "dns.csv").write_text("name\n", encoding="utf-8")
    (tmp_path / "fp" / "viettel.csv").write_text("name\n", encoding="utf-8")
    trustme.CA().cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    path = write(
        tmp_path,
        """\
        province: "Gia Lai"
        store: "sqlite:///data/audit.db"
        output_dir: out
        lists: ["blocklists/mic.csv", list.csv]
        canaries: ["https://chinhphu.vn/", "http://gialai.gov.vn/"]
        control:
          resolvers: ["1.1.1.1", "8.8.8.8:5353", "[2606:4700:4700::1111]:53", "2001:4860:4860::8888"]
          vantage: {}
        providers:
          - id: viettel
            name: "Viettel"
            asn: 7552
            resolvers: ["203.113.131.1"]
            vantage: {proxy: "socks5://probe:s3cret@127.0.0.1:1080"}
            fingerprints:
              body_patterns: ["Access denied · Viettel WAF"]
              files: [fp/viettel.csv]
          - id: vnpt
            name: VNPT
            asn: 45899
            resolvers: ["203.162.4.191:53"]
            vantage: {source_address: "192.168.2.10"}
          - id: fpt_2
            name: FPT Telecom
            resolvers: ["210.245.24.20"]
            vantage: {interface: ppp0}
        fingerprints:
          dns_ips: ["103.192.236.94", "2001:DB8::0:1"]
          body_patterns: ['(?i)bị chặn\\s']
          redirect_hosts: [Warning.Example.VN., "cảnhbáo.vn"]
          files: [fp/dns.csv]
        timeouts: {dns: 2, connect: 4.5, tls: 6, http: 12}
        concurrency: 50
        tls: {extra_ca_file: ca.pem}
        grace_hours: 12.5
        timezone: "Asia/Bangkok"
        network: {loopback_only: true}
        """,
    )
    config = load_config(path)
    expected = Config(
        province="Gia Lai",
        providers=(
            ProviderConfig(
                id="viettel",
                name="Viettel",
                resolvers=(ResolverAddress("203.113.131.1", 53),),
                vantage=VantageConfig("proxy", "socks5://probe:s3cret@127.0.0.1:1080"),
                asn=7552,
                fingerprints=FingerprintConfig(
                    body_patterns=("Access denied · Viettel WAF",), files=(tmp_path / "fp" / "viettel.csv",)
                ),
            ),
            ProviderConfig(
                id="vnpt",
                name="VNPT",
                resolvers=(ResolverAddress("203.162.4.191", 53),),
                vantage=VantageConfig("source_address", "192.168.2.10"),
                asn=45899,
            ),
            ProviderConfig(
                id="fpt_2",
                name="FPT Telecom",
                resolvers=(ResolverAddress("210.245.24.20", 53),),
                vantage=VantageConfig("interface", "ppp0"),
            ),
        ),
        control=ControlConfig(
            resolvers=(
                ResolverAddress("1.1.1.1", 53),
                ResolverAddress("8.8.8.8", 5353),
                ResolverAddress("2606:4700:4700::1111", 53),
                ResolverAddress("2001:4860:4860::8888", 53),
            ),
            vantage=VantageConfig("direct", ""),
        ),
        lists=(tmp_path / "blocklists" / "mic.csv", tmp_path / "list.csv"),
        canaries=("https://chinhphu.vn/", "http://gialai.gov.vn/"),
        store=parse_store_url(f"sqlite:///{tmp_path / 'data' / 'audit.db'}"),
        output_dir=tmp_path / "out",
        fingerprints=FingerprintConfig(
            dns_ips=("103.192.236.94", "2001:db8::1"),
            body_patterns=("(?i)bị chặn\\s",),
            redirect_hosts=("warning.example.vn", "xn--cnhbo-0qa6344c.vn"),
            files=(tmp_path / "fp" / "dns.csv",),
        ),
        timeouts=Timeouts(dns=2.0, connect=4.5, tls=6.0, http=12.0),
        concurrency=50,
        extra_ca_file=tmp_path / "ca.pem",
        grace_hours=12.5,
        timezone="Asia/Bangkok",
        loopback_only=True,
    )
    assert config == expected
    assert config.source == path
    # Frozen and made of tuples all the way down.
    assert isinstance(config.providers, tuple) and isinstance(config.control.resolvers, tuple)
    frozen_field = "province"  # by name: the type checker rightly refuses a plain assignment to a frozen field
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(config, frozen_field, "Kon Tum")
    assert str(config.control.resolvers[2]) == "[2606:4700:4700::1111]:53"
    # A provider's fingerprints are added to the global ones.
    merged = config.fingerprints_for(config.providers[0])
    assert merged.body_patterns == ("(?i)bị chặn\\s", "Access denied · Viettel WAF")
    assert merged.files == (tmp_path / "fp" / "dns.csv", tmp_path / "fp" / "viettel.csv")
    assert merged.dns_ips == ("103.192.236.94", "2001:db8::1")


def test_minimal_config_takes_the_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, MINIMAL))
    assert config.store.url == default_store_url()
    assert config.store.scheme == "sqlite" and Path(config.store.location).is_absolute()
    assert config.output_dir == tmp_path / "reports"
    assert config.timeouts == Timeouts()
    assert config.concurrency == 100
    assert config.grace_hours == 24.0
    assert config.timezone == "Asia/Ho_Chi_Minh"
    assert config.loopback_only is False
    assert config.extra_ca_file is None
    assert config.fingerprints == FingerprintConfig()
    assert config.canaries == ()
    assert config.control.vantage == VantageConfig()
    assert config.providers[0].vantage == VantageConfig()
    assert config.providers[0].asn is None


def test_null_optional_keys_take_their_defaults(tmp_path: Path) -> None:
    config = load_config(
        write(
            tmp_path,
            MINIMAL
            + "store:\noutput_dir:\nfingerprints:\ntimeouts: {dns: null}\nconcurrency:\n"
            + "tls: {extra_ca_file: null}\ngrace_hours:\ntimezone:\nnetwork:\n",
        )
    )
    assert config.timeouts == Timeouts()
    assert config.concurrency == 100
    assert config.store.url == default_store_url()


def test_parse_config_accepts_python_data_without_lines(tmp_path: Path) -> None:
    (tmp_path / "l.csv").write_text("url\n", encoding="utf-8")
    data: dict[str, object] = {
        "province": "Gia Lai",
        "lists": ["l.csv"],
        "canaries": [],
        "control": {"resolvers": ["1.1.1.1"]},
        "providers": [{"id": "vnpt", "name": "VNPT", "resolvers": ["203.162.4.191"]}],
    }
    config = parse_config(data, base_dir=tmp_path)
    assert config.lists == (tmp_path / "l.csv",)
    assert config.source is None
    data["concurrency"] = 0
    with pytest.raises(ConfigError) as info:
        parse_config(data, base_dir=tmp_path, source="inline")
    assert info.value.source == "inline"
    [problem] = info.value.problems
    assert (problem.path, problem.line) == ("concurrency", None)  # no YAML, so no line


# ---------------------------------------------------------------------------------------------------------
# config.example.yaml


def example_in(tmp_path: Path) -> Path:
    """A copy of config.example.yaml with the list file it names (the repo's own)."""
    copy = tmp_path / "config.example.yaml"
    shutil.copy(EXAMPLE, copy)
    (tmp_path / "blocklists").mkdir()
    shutil.copy(REPO / "blocklists" / "example.csv", tmp_path / "blocklists" / "example.csv")
    return copy


def test_example_config_parses_without_problems(tmp_path: Path) -> None:
    config = load_config(example_in(tmp_path))
    assert config.province == "Gia Lai"
    assert [(p.id, p.asn, p.vantage.kind) for p in config.providers] == [
        ("viettel", 7552, "proxy"),
        ("vnpt", 45899, "source_address"),
        ("fpt", 18403, "interface"),
    ]
    assert config.providers[0].vantage.describe() == "socks5 127.0.0.1:1080"
    assert config.control.vantage.kind == "direct"
    assert config.lists == (tmp_path / "blocklists" / "example.csv",)
    assert config.canaries and config.loopback_only is False
    assert load_config(EXAMPLE).lists == (REPO / "blocklists" / "example.csv",)  # the real file parses too


def test_example_config_shows_every_key() -> None:
    data = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    assert tuple(data) == TOP_KEYS
    assert set(data["control"]) == set(CONTROL_KEYS)
    assert set().union(*(p.keys() for p in data["providers"])) == set(PROVIDER_KEYS)
    vantages = [data["control"]["vantage"], *(p["vantage"] for p in data["providers"])]
    assert set().union(*(v.keys() for v in vantages)) == set(VANTAGE_KEYS)
    assert {} in vantages
    assert set(data["fingerprints"]) == set(FINGERPRINT_KEYS)
    assert set(data["timeouts"]) == set(TIMEOUT_KEYS)
    assert set(data["tls"]) == set(TLS_KEYS)
    assert set(data["network"]) == set(NETWORK_KEYS)
    assert set(data["sensitive"]) == set(SENSITIVE_KEYS)
    assert set(data["limits"]) == set(LIMITS_KEYS)


# ---------------------------------------------------------------------------------------------------------
# One kind of problem at a time: key path, line, and a message that says what to write


@pytest.mark.parametrize(
    ("text", "path", "line", "message"),
    [
        (MINIMAL.replace("province: Gia Lai", 'province: ""'), "province", 1, "must not be empty"),
        (MINIMAL.replace("province: Gia Lai\n", ""), "province", None, "is required"),
        (MINIMAL.replace("province: Gia Lai", "province: 2024"), "province", 1, "put it in quotes"),
        (MINIMAL.replace("[1.1.1.1]", "[]"), "control.resolvers", 5, "at least one resolver"),
        (MINIMAL.replace("[1.1.1.1]", "1.1.1.1"), "control.resolvers", 5, "write [1.1.1.1]"),
        (MINIMAL.replace("[1.1.1.1]", '["1.1.1.1:0"]'), "control.resolvers[0]", 5, "from 1 to 65535"),
        (MINIMAL.replace("[1.1.1.1]", '["1.1.1.1:dns"]'), "control.resolvers[0]", 5, "from 1 to 65535"),
        (MINIMAL.replace("[1.1.1.1]", '["1.1.1.300"]'), "control.resolvers[0]", 5,
         "must be IP or IP:PORT, e.g. 1.1.1.1 or 8.8.8.8:53"),
        (MINIMAL.replace("[1.1.1.1]", '["[::1"]'), "control.resolvers[0]", 5, "must be IP or IP:PORT"),
        (MINIMAL.replace("[1.1.1.1]", '["0.0.0.0"]'), "control.resolvers[0]", 5, "cannot be a resolver"),
        (MINIMAL.replace("    name: Viettel\n", ""), "providers[0].name", 7, "is required"),
        (MINIMAL.replace("name: Viettel", "name:"), "providers[0].name", 8, "is empty"),
        (MINIMAL.replace("id: viettel", "id: Viettel Telecom"), "providers[0].id", 7,
         "e.g. 'viettel-telecom'"),
        (MINIMAL.replace("id: viettel", "id: 7552"), "providers[0].id", 7, "lowercase letters"),
        (MINIMAL.replace("providers:\n  - id: viettel\n    name: Viettel\n    resolvers: [203.113.131.1]\n",
                         "providers: []\n"), "providers", 6, "at least one provider"),  # fmt: skip
        (MINIMAL.replace("lists: [list.csv]", "lists: []"), "lists", 2, "at least one reference list"),
        (MINIMAL.replace("lists: [list.csv]", "lists: [missing.csv]"), "lists[0]", 2, "not found"),
        (MINIMAL.replace("lists: [list.csv]", "lists: [.]"), "lists[0]", 2, "is a directory"),
        (MINIMAL.replace("canaries: []\n", ""), "canaries", None, "write canaries: [] for none"),
        (MINIMAL.replace("canaries: []", "canaries: [ftp://x.vn/]"), "canaries[0]", 3, "http:// or https://"),
        (MINIMAL.replace("canaries: []", "canaries: ['https://x.vn:99999/']"), "canaries[0]", 3,
         "https:// URL"),
        (MINIMAL.replace("canaries: []", "canaries: [chinhphu.vn]"), "canaries[0]", 3,
         "e.g. https://chinhphu.vn/"),
        (MINIMAL + "    asn: AS7552\n", "providers[0].asn", 10, "without 'AS' or quotes, e.g. 7552"),
        (MINIMAL + "    asn: 0\n", "providers[0].asn", 10, "from 1 to 4294967295"),
        (MINIMAL + "    asn: 4294967296\n", "providers[0].asn", 10, "from 1 to 4294967295"),
        (MINIMAL + "timeouts: {dns: 0}\n", "timeouts.dns", 10,
         "must be a positive number of seconds, e.g. 3"),
        (MINIMAL + "timeouts:\n  http: -1\n", "timeouts.http", 11, "e.g. 10"),
        (MINIMAL + "timeouts:\n  tls: 301\n", "timeouts.tls", 11, "up to 300"),
        (MINIMAL + "timeouts:\n  tls: .nan\n", "timeouts.tls", 11, "positive number of seconds"),
        (MINIMAL + "timeouts:\n  connect: '5'\n", "timeouts.connect", 11, "got the text '5'"),
        (MINIMAL + "timeouts: 5\n", "timeouts", 10, "must be a mapping, e.g. {dns: 3"),
        (MINIMAL + "concurrency: 0\n", "concurrency", 10, "from 1 to 10000, e.g. 100"),
        (MINIMAL + "concurrency: 10001\n", "concurrency", 10, "from 1 to 10000"),
        (MINIMAL + "concurrency: 2.0\n", "concurrency", 10, "whole number"),
        (MINIMAL + "grace_hours: -1\n", "grace_hours", 10, "0 or more, e.g. 24"),
        (MINIMAL + "grace_hours: .inf\n", "grace_hours", 10, "0 or more"),
        (MINIMAL + "timezone: Asia/Saigon_\n", "timezone", 10, "did you mean 'Asia/Saigon'?"),
        (MINIMAL + "timezone: Mars/Olympus\n", "timezone", 10, "unknown time zone"),
        (MINIMAL + "network: {loopback_only: 'yes'}\n", "network.loopback_only", 10, "true or false"),
        (MINIMAL + "network: {loopback_only: 1}\n", "network.loopback_only", 10, "true or false"),
        (MINIMAL + "tls: {extra_ca_file: ca.pem}\n", "tls.extra_ca_file", 10, "CA file not found"),
        (MINIMAL + "tls: {extra_ca_file: list.csv}\n", "tls.extra_ca_file", 10, "not a PEM file"),
        (MINIMAL + "fingerprints: {files: [ooni.csv]}\n", "fingerprints.files[0]", 10,
         "fingerprint file not found"),
        (MINIMAL + "fingerprints:\n  body_patterns:\n    - ok\n    - '[unclosed'\n",
         "fingerprints.body_patterns[1]", 13, "invalid regular expression: unterminated character set"),
        (MINIMAL + "fingerprints: {body_patterns: ['']}\n", "fingerprints.body_patterns[0]", 10,
         "would call every page a block page"),
        (MINIMAL + "fingerprints: {dns_ips: [sinkhole.vn]}\n", "fingerprints.dns_ips[0]", 10,
         "e.g. 103.192.236.94"),
        (MINIMAL + "fingerprints: {redirect_hosts: ['http://warn.vn/']}\n",
         "fingerprints.redirect_hosts[0]", 10, "not a URL"),
        (MINIMAL + "    fingerprints: {dns_ips: 1.2.3.4}\n", "providers[0].fingerprints.dns_ips", 10,
         "not a single string"),
        (MINIMAL + "store: postgresql://audit@db/audit\n", "store", 10,
         "unsupported store 'postgresql'; supported:"),
        (MINIMAL + "store: sqlite://audit.db\n", "store", 10, "three slashes"),
        (MINIMAL + "store: audit.db\n", "store", 10, "sqlite:///PATH"),
        (MINIMAL + "store: 'sqlite:///.'\n", "store", 10, "is a directory"),
        (MINIMAL + "output_dir: list.csv\n", "output_dir", 10, "not a directory"),
        (MINIMAL + "    vantage: {interface: a-very-long-interface0}\n", "providers[0].vantage.interface", 10,
         "at most 15 ASCII characters"),
        (MINIMAL + "    vantage: {source_address: 10.0.0.256}\n", "providers[0].vantage.source_address", 10,
         "e.g. 192.168.2.10"),
        (MINIMAL + "    vantage: {source_address: 0.0.0.0}\n", "providers[0].vantage.source_address", 10,
         "not a usable source address"),
        (MINIMAL + "    vantage: eth0\n", "providers[0].vantage", 10, "must be a mapping, e.g. {} (direct)"),
        (MINIMAL + "    vantage: {proxy: null}\n", "providers[0].vantage.proxy", 10, "must be a SOCKS5 URL"),
    ],
)  # fmt: skip
def test_each_problem_has_path_line_and_advice(
    tmp_path: Path, text: str, path: str, line: int | None, message: str
) -> None:
    problem = only(problems_of(tmp_path, text), path)
    assert problem.line == line
    assert message in problem.message
    assert str(problem).startswith(f"line {line}: {path}: " if line else f"{path}: ")


def test_many_problems_are_reported_at_once_in_file_order(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(
            write(
                tmp_path,
                """\
                province: ""
                lists: [missing.csv]
                canaries: https://chinhphu.vn/
                control:
                  resolver: [1.1.1.1]
                providers:
                  - id: viettel
                    name: Viettel
                    resolvers: [dns.viettel.vn]
                  - id: viettel
                    name: Viettel again
                    resolvers: ["8.8.8.8"]
                timeouts: {dns: 0}
                concurrency: true
                """,
            )
        )
    error = info.value
    assert [(p.line, p.path) for p in error.problems] == [
        (1, "province"),
        (2, "lists[0]"),
        (3, "canaries"),
        (4, "control.resolvers"),  # missing: reported on its parent's line
        (5, "control.resolver"),
        (9, "providers[0].resolvers[0]"),
        (10, "providers[1].id"),
        (13, "timeouts.dns"),
        (14, "concurrency"),
    ]
    assert error.exit_status == ExitStatus.USAGE
    assert "config.example.yaml" in error.hint
    text = str(error)
    assert text.startswith(f"invalid config {tmp_path / 'config.yaml'}:\n")
    assert "  line 10: providers[1].id: duplicate id 'viettel' (also providers[0])" in text
    assert "write [https://chinhphu.vn/]" in text


def test_unknown_keys_are_rejected_at_every_level_with_a_suggestion(tmp_path: Path) -> None:
    problems = problems_of(
        tmp_path,
        MINIMAL.replace("    resolvers: [203.113.131.1]", "    resolver: [203.113.131.1]")
        + "    vantage: {proxi: 'socks5://127.0.0.1:1080'}\n"
        + "timeout: {dns: 3}\n"
        + "fingerprints: {dns_ip: []}\n"
        + "colour: blue\n"
        + "42: answer\n",
    )
    assert (
        only(problems, "providers[0].resolver").message == "unknown key 'resolver'; did you mean 'resolvers'?"
    )
    assert only(problems, "providers[0].resolver").line == 9
    assert only(problems, "providers[0].resolvers").message.startswith("is required")
    assert (
        only(problems, "providers[0].vantage.proxi").message == "unknown key 'proxi'; did you mean 'proxy'?"
    )
    assert only(problems, "timeout").message == "unknown key 'timeout'; did you mean 'timeouts'?"
    assert only(problems, "timeout").line == 11
    assert only(problems, "fingerprints.dns_ip").message == "unknown key 'dns_ip'; did you mean 'dns_ips'?"
    colour = only(problems, "colour")
    assert colour.message.startswith("unknown key 'colour'; expected one of: province, store, output_dir")
    assert colour.line == 13
    assert only(problems, "42").message.startswith("unknown key '42'; expected one of")


def test_bool_is_not_a_number(tmp_path: Path) -> None:
    problems = problems_of(
        tmp_path,
        MINIMAL + "    asn: true\nconcurrency: true\ngrace_hours: false\ntimeouts: {dns: true}\n",
    )
    assert {p.path for p in problems} == {"providers[0].asn", "concurrency", "grace_hours", "timeouts.dns"}
    assert "got the boolean true" in only(problems, "concurrency").message
    assert "got the boolean false" in only(problems, "grace_hours").message


def test_a_string_is_not_a_list(tmp_path: Path) -> None:
    problems = problems_of(tmp_path, MINIMAL.replace("lists: [list.csv]", "lists: list.csv"))
    assert only(problems, "lists").message == "must be a list, not a single string; write [list.csv]"


def test_vantage_with_two_kinds(tmp_path: Path) -> None:
    problems = problems_of(
        tmp_path, MINIMAL + "    vantage:\n      interface: ppp0\n      proxy: socks5://127.0.0.1:1080\n"
    )
    problem = only(problems, "providers[0].vantage")
    assert problem.line == 10
    assert problem.message.startswith("has both 'interface' and 'proxy'; a vantage is exactly one of")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://10.0.0.2:3128", "unsupported proxy scheme 'http': only socks5:// is supported"),
        ("socks4://10.0.0.2:1080", "only socks5://"),
        ("socks5h://probe:s3cret@10.0.0.2:1080", "use socks5://, not socks5h://"),
        ("probe:s3cret@10.0.0.2:1080", "must start with socks5://"),
        ("socks5://10.0.0.2", "needs a port"),
        ("socks5://10.0.0.2:0", "needs a port"),
        ("socks5://10.0.0.2:99999", "is not a valid URL"),
        ("socks5://:1080", "needs a host"),
        ("socks5://bad_host!:1080", "a valid host name or IP address"),
        ("socks5://300.1.1.1:1080", "a valid host name or IP address"),
        ("socks5://[::1:1080", "is not a valid URL"),
        ("socks5://probe@10.0.0.2:1080", "both user and password"),
        ("socks5://:s3cret@10.0.0.2:1080", "both user and password"),
        ("socks5://probe:s3cret@10.0.0.2:1080/tunnel", "nothing after host:port"),
        ("socks5://probe:s3cret@10.0.0.2:1080?x=1", "nothing after host:port"),
    ],
)
def test_bad_proxy_urls(tmp_path: Path, url: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, MINIMAL + f"    vantage: {{proxy: '{url}'}}\n"))
    problem = only(info.value.problems, "providers[0].vantage.proxy")
    assert message in problem.message
    assert "e.g. socks5://127.0.0.1:1080" in problem.message
    assert problem.line == 10
    assert "s3cret" not in str(info.value)  # a proxy password never reaches an error message


@pytest.mark.parametrize(
    ("url", "described"),
    [
        ("socks5://127.0.0.1:1080", "socks5 127.0.0.1:1080"),
        ("socks5://probe:pw@box.example:1080", "socks5 box.example:1080"),
        ("socks5://[::1]:1080/", "socks5 [::1]:1080"),
    ],
)
def test_good_proxy_urls(tmp_path: Path, url: str, described: str) -> None:
    config = load_config(write(tmp_path, MINIMAL + f"    vantage: {{proxy: '{url}'}}\n"))
    assert config.providers[0].vantage == VantageConfig("proxy", url)
    assert config.providers[0].vantage.describe() == described


def test_a_proxy_password_in_the_wrong_key_is_masked_too(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(
            write(
                tmp_path, MINIMAL + "    vantage: {source_address: 'socks5://probe:s3cret@10.0.0.2:1080'}\n"
            )
        )
    problem = only(info.value.problems, "providers[0].vantage.source_address")
    assert "'socks5://***@10.0.0.2:1080'" in problem.message
    assert "s3cret" not in str(info.value)


def test_describe_never_shows_the_proxy_password() -> None:
    vantage = VantageConfig("proxy", "socks5://probe:hunter2@10.0.0.2:1080")
    assert vantage.describe() == "socks5 10.0.0.2:1080"
    assert "hunter2" not in vantage.describe() and "probe" not in vantage.describe()
    assert (
        VantageConfig("proxy", "socks5://u:p%40ss@[2001:db8::2]:1080").describe()
        == "socks5 [2001:db8::2]:1080"
    )
    assert VantageConfig().describe() == "direct"
    assert VantageConfig("source_address", "192.168.2.10").describe() == "source address 192.168.2.10"
    assert VantageConfig("interface", "ppp0").describe() == "interface ppp0"


@pytest.mark.parametrize("name", ["dns.google", "localhost", "resolver1.viettel.vn:53", "[dns.google]:53"])
def test_resolver_host_names_are_rejected(tmp_path: Path, name: str) -> None:
    problems = problems_of(tmp_path, MINIMAL.replace("[203.113.131.1]", f'["203.113.131.1", "{name}"]'))
    problem = only(problems, "providers[0].resolvers[1]")
    assert problem.line == 9
    assert problem.message.startswith("host names are not allowed")
    assert "write the resolver's IP address, e.g. 1.1.1.1 or 8.8.8.8:53" in problem.message


def test_unquoted_number_resolver_says_to_quote(tmp_path: Path) -> None:
    # YAML 1.1 reads 1:2:3 as a base-60 integer; the message must point at the quotes.
    problem = only(problems_of(tmp_path, MINIMAL.replace("[1.1.1.1]", "[1:2:3]")), "control.resolvers[0]")
    assert "put it in quotes" in problem.message


def test_relative_paths_are_resolved_against_the_config_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conf_dir = tmp_path / "etc" / "auditor"
    (conf_dir / "lists").mkdir(parents=True)
    (conf_dir / "lists" / "mic.csv").write_text("url\n", encoding="utf-8")
    (conf_dir / "fp.csv").write_text("name\n", encoding="utf-8")
    trustme.CA().cert_pem.write_to_path(str(conf_dir / "ca.pem"))
    elsewhere = tmp_path / "cron-cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    path = write(
        conf_dir,
        MINIMAL.replace("lists: [list.csv]", "lists: [lists/mic.csv, ../auditor/list.csv]")
        + "store: sqlite:///state/audit.db\noutput_dir: ../../var/reports\n"
        + "fingerprints: {files: [fp.csv]}\ntls: {extra_ca_file: ca.pem}\n",
    )
    config = load_config(Path(path))
    assert config.lists == (conf_dir / "lists" / "mic.csv", conf_dir / "list.csv")
    assert config.store.url == f"sqlite:///{conf_dir / 'state' / 'audit.db'}"
    assert config.output_dir == tmp_path / "var" / "reports"
    assert config.fingerprints.files == (conf_dir / "fp.csv",)
    assert config.extra_ca_file == conf_dir / "ca.pem"
    # The same file through a relative -c path from another directory gives the same absolute paths.
    monkeypatch.chdir(tmp_path)
    assert load_config(Path("etc/auditor/config.yaml")).lists == config.lists


def test_missing_list_message_names_the_resolved_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "conf").mkdir()
    problem = only(
        problems_of(tmp_path / "conf", MINIMAL.replace("list.csv]", "blocklists/x.csv]")), "lists[0]"
    )
    assert problem.message == (
        f"list file not found: {tmp_path / 'conf' / 'blocklists' / 'x.csv'} "
        f"('blocklists/x.csv' is read from {tmp_path / 'conf'}); check the path or create the file"
    )


@pytest.mark.parametrize(
    ("store", "expected"),
    [
        ("'sqlite:///:memory:'", "sqlite:///:memory:"),
        ("''", None),
        ("sqlite:///audit.db", "sqlite:///{dir}/audit.db"),
        ("sqlite:////var/lib/auditor/audit.db", "sqlite:////var/lib/auditor/audit.db"),
    ],
)
def test_store_urls(tmp_path: Path, store: str, expected: str | None) -> None:
    config = load_config(write(tmp_path, MINIMAL + f"store: {store}\n"))
    assert config.store.url == (expected.format(dir=tmp_path) if expected else default_store_url())


def test_default_store_is_in_the_user_data_dir() -> None:
    import platformdirs

    assert default_store_url() == f"sqlite:///{Path(platformdirs.user_data_dir('auditor')) / 'audit.db'}"


def test_duplicate_yaml_keys_are_reported(tmp_path: Path) -> None:
    problem = only(problems_of(tmp_path, MINIMAL + "province: Kon Tum\n"), "province")
    assert problem.line == 10
    assert problem.message.startswith("duplicate key (first at line 1)")


def test_a_duplicate_empty_key_at_the_top_has_a_path(tmp_path: Path) -> None:
    """Found by tests/test_bad_input.py: `{"", ""}` gave a problem whose path was empty."""
    problems = problems_of(tmp_path, '{"", ""}\n')
    assert all(p.path for p in problems)
    assert [p.line for p in problems if p.message.startswith("duplicate key") and p.path == "(top level)"] == [1]


def test_yaml_anchors_and_merge_keys_work(tmp_path: Path) -> None:
    config = load_config(
        write(
            tmp_path,
            MINIMAL
            + "    vantage: &tunnel {proxy: 'socks5://127.0.0.1:1080'}\n"
            + "  - &base\n    id: vnpt\n    name: VNPT\n    resolvers: [203.162.4.191]\n"
            + "    vantage: *tunnel\n"
            + "  - <<: *base\n    id: fpt\n    name: FPT\n",
        )
    )
    assert [p.id for p in config.providers] == ["viettel", "vnpt", "fpt"]
    assert config.providers[2].resolvers == (ResolverAddress("203.162.4.191"),)
    assert config.providers[2].vantage.kind == "proxy"


# ---------------------------------------------------------------------------------------------------------
# The file itself


def test_missing_file_says_to_copy_the_example(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "config.yaml")
    assert info.value.exit_status == ExitStatus.USAGE
    assert "config.example.yaml" in info.value.hint
    assert info.value.problems[0].message.startswith("no such file; copy config.example.yaml to")
    assert "-c/--config" in str(info.value)


def test_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    assert "is a directory" in str(info.value)


def test_yaml_syntax_error_has_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, "province: Gia Lai\ncontrol:\n  resolvers: [1.1.1.1\nproviders: []\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    [problem] = info.value.problems
    assert problem.path == "(yaml)"
    assert problem.line == 4
    assert "column" in problem.message and "expected ',' or ']'" in problem.message
    assert str(problem).startswith("line 4: (yaml): ")


def test_yaml_indentation_error(tmp_path: Path) -> None:
    path = write(tmp_path, "province: Gia Lai\ncontrol:\n  resolvers: []\n vantage: {}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.problems[0].line == 4
    assert "(column 2)" in info.value.problems[0].message


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the file is empty"),
        (b"# only a comment\n", "the file is empty"),
        (b"- province: Gia Lai\n", "must be a mapping"),
        (b"just text\n", "must be a mapping"),
        (b"a: 1\n---\nb: 2\n", "expected a single document"),
        (b"province: \xff\xfe\n", "is not UTF-8"),
        (b"province: \x07\n", "is not valid YAML"),
        (b"when: 2024-02-30\n", "quote the value"),
        (b"x: !!python/object:os.system {}\n", "could not determine a constructor"),
        (b"? [a, b]\n: c\n", "unhashable"),
    ],
)
def test_unusable_documents(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "config.yaml"
    path.write_bytes(content)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert message in str(info.value)


def test_non_mapping_document_via_parse_config(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(["province", "Gia Lai"], base_dir=tmp_path)
    [problem] = info.value.problems
    assert (problem.path, problem.line) == ("(top level)", None)
    assert "must be a mapping" in problem.message and "got a list" in problem.message


def test_utf8_bom_and_vietnamese_text(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL.replace("Gia Lai", '"Gia Lai – Tây Nguyên"'))
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert load_config(path).province == "Gia Lai – Tây Nguyên"


def test_no_network_io(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    asked: list[tuple[object, ...]] = []

    def refuse(*args: object, **kwargs: object) -> None:
        asked.append(args)  # noted as well as raised: a loader that swallowed the error must still fail here
        raise OSError("the config loader must not touch the network")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "gethostbyname", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    assert load_config(example_in(tmp_path)).province == "Gia Lai"
    problem = only(problems_of(tmp_path, MINIMAL.replace("[1.1.1.1]", "[dns.google]")), "control.resolvers[0]")
    assert "IP address" in problem.message  # a name is refused as it is, never looked up
    assert asked == []


# ---------------------------------------------------------------------------------------------------------
# Property: any YAML-ish value gives a Config or a ConfigError, never another exception

KEY_NAMES = sorted(
    set(TOP_KEYS + CONTROL_KEYS + PROVIDER_KEYS + VANTAGE_KEYS + FINGERPRINT_KEYS + TIMEOUT_KEYS + TLS_KEYS
        + NETWORK_KEYS + SENSITIVE_KEYS + LIMITS_KEYS)
)  # fmt: skip
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(
        ["1.1.1.1", "8.8.8.8:53", "[::1]:53", "::1", "socks5://u:p@h:1", "socks5://[::1", "sqlite:///x.db",
         "sqlite:///:memory:", "https://x.vn/", "viettel", "~", "~nobody_such_user/x", "a\x00b", "(", "a*",
         "Asia/Ho_Chi_Minh", "../" * 10, "/", ".", "\ud800", "x" * 300]
    ),
)  # fmt: skip
REQUIRED = ("province", "control", "providers", "lists", "canaries")
KEYS = st.one_of(st.sampled_from(KEY_NAMES), st.text(max_size=8))
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(KEYS, inner, max_size=5)),
    max_leaves=25,
)
DOCUMENTS = st.one_of(
    VALUES,
    st.fixed_dictionaries(
        {"province": VALUES, "control": VALUES, "providers": VALUES, "lists": VALUES, "canaries": VALUES},
        optional={key: VALUES for key in TOP_KEYS if key not in REQUIRED},
    ),
    st.fixed_dictionaries(
        {
            "province": st.just("Gia Lai"),
            "lists": st.just([]),
            "canaries": st.lists(SCALARS, max_size=2),
            "control": st.fixed_dictionaries(
                {"resolvers": st.lists(SCALARS, max_size=2)}, optional={"vantage": VALUES}
            ),
            "providers": st.lists(
                st.fixed_dictionaries(
                    {"id": SCALARS, "name": SCALARS, "resolvers": VALUES},
                    optional={
                        "asn": SCALARS,
                        "vantage": st.dictionaries(st.sampled_from(VANTAGE_KEYS), SCALARS),
                        "fingerprints": st.dictionaries(st.sampled_from(FINGERPRINT_KEYS), VALUES),
                    },
                ),
                max_size=3,
            ),
        },
        optional={key: VALUES for key in TOP_KEYS if key not in REQUIRED},
    ),
)  # fmt: skip


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(DOCUMENTS)
def test_any_document_gives_a_config_or_a_config_error(data: object) -> None:
    try:
        result = parse_config(data, base_dir=Path("/nonexistent/auditor-test"))
    except ConfigError as error:
        assert error.problems
        assert all(isinstance(p, ConfigProblem) and p.path and p.message for p in error.problems)
        str(error)
    else:
        assert isinstance(result, Config)


@settings(max_examples=100, deadline=None)
@given(VALUES)
def test_any_yaml_file_gives_a_config_or_a_config_error(data: object) -> None:
    import tempfile

    try:
        text = yaml.safe_dump(data, allow_unicode=False)
    except yaml.YAMLError:
        return
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "config.yaml"
        path.write_text(text, encoding="utf-8")
        try:
            assert isinstance(load_config(path), Config)
        except ConfigError as error:
            assert error.problems


def test_sensitive_and_must_lists(tmp_path: Path) -> None:
    lst = tmp_path / "secret.csv"
    lst.write_text("url\nhttp://a.example/\n", encoding="utf-8")
    text = MINIMAL.replace("lists: [list.csv]", "lists: [list.csv, secret.csv]") + (
        "sensitive: {lists: [secret.csv], categories: [XED], hash_urls: true, hash_key: 0123456789abcdef0123}\n"
        "must_block: ['http://Canary-Test.example']\nmust_allow: ['https://dichvucong.gov.vn/']\n"
    )
    cfg = load_config(write(tmp_path, text))
    assert cfg.sensitive.lists == (lst,) and cfg.sensitive.categories == ("XED",) and cfg.sensitive.hash_urls
    assert cfg.sensitive.is_sensitive("secret", "") and cfg.sensitive.is_sensitive("other", "XED")
    assert not cfg.sensitive.is_sensitive("other", "GMB")
    assert cfg.must_block == ("http://canary-test.example/",)
    assert cfg.must_allow == ("https://dichvucong.gov.vn/",)
    assert "0123456789abcdef" not in repr(cfg)


def test_sensitive_list_must_be_audited(tmp_path: Path) -> None:
    (tmp_path / "secret.csv").write_text("url\nhttp://a.example/\n", encoding="utf-8")
    problems = problems_of(tmp_path, MINIMAL + "sensitive: {lists: [secret.csv]}\n")
    assert any(p.path == "sensitive.lists[0]" and "add it there" in p.message for p in problems)


def test_evidence_signing_key_and_simulated_internet(tmp_path: Path) -> None:
    key = tmp_path / "evidence.pem"
    key.write_text("not checked here", encoding="utf-8")
    good = MINIMAL + f"evidence: {{signing_key: {key}}}\nnetwork: {{loopback_only: true, simulated_internet: [45.76.0.0/16]}}\n"
    cfg = load_config(write(tmp_path, good))
    assert cfg.evidence.signing_key == key and cfg.simulated_internet == ("45.76.0.0/16",)
    missing = only(problems_of(tmp_path, MINIMAL + f"evidence: {{signing_key: {tmp_path / 'nope.pem'}}}\n"),
                   "evidence.signing_key")
    assert "signing key not found" in missing.message and "auditor evidence keygen -o" in missing.message
    alone = only(problems_of(tmp_path, MINIMAL + "network: {simulated_internet: [45.76.0.0/16]}\n"),
                 "network.simulated_internet")
    assert "only with loopback_only: true" in alone.message
    bad = only(problems_of(tmp_path, MINIMAL + "network: {loopback_only: true, simulated_internet: [nowhere]}\n"),
               "network.simulated_internet[0]")
    assert "is not an address range" in bad.message
