"""Block-page fingerprints: the set built from the shipped rows, OONI's files and config entries, and matching.

The CSV reader alone is in test_fingerprints_ooni_csv.py, the multi-string search in test_fingerprints_search.py.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from auditor.config import FingerprintConfig
from auditor.errors import ConfigError
from auditor.fingerprints import Fingerprint, FingerprintSet, normalise_address, normalise_host
from auditor.fingerprints.normalise import location_host
from tests.fingerprint_data import HEADER, OONI_DNS, OONI_HTTP, needs_ooni

NORMAL_PAGE = (
    "<!doctype html><html lang='vi'><head><meta charset='utf-8'><title>Tin tức hôm nay</title></head>"
    "<body><h1>Thời sự</h1><p>Hà Nội, 27/11 — Người dân xem tin tức về kinh tế, văn hóa và thể thao.</p>"
    "<a href='https://example.vn/bai-viet/1'>Đọc tiếp</a></body></html>"
)
VIETTEL_PAGE = (
    "<!DOCTYPE html><html><head><title>Access denied · Viettel WAF</title></head>"
    "<body><h1>Access denied</h1><p>Yêu cầu của bạn đã bị chặn.</p></body></html>"
)
FAKE_404_CRLF = (
    "<html>\r\n<header><title>404 Page</title></header>\r\n<body>\r\n"
    "<font size=\"6\"><b>We're sorry but the page you're looking for could not be found!!!!!</b></font>\r\n"
    "</body></html>"
)


@pytest.fixture(scope="module")
def builtin() -> FingerprintSet:
    return FingerprintSet.build(FingerprintConfig())


@pytest.fixture(scope="module")
def full_ooni() -> FingerprintSet:
    if not OONI_HTTP.exists():
        pytest.skip("shared OONI reference data not present")
    return FingerprintSet.build(FingerprintConfig(files=(OONI_DNS, OONI_HTTP)))


def ids(fps: tuple[Fingerprint, ...] | Fingerprint | None) -> list[str]:
    if fps is None:
        return []
    if isinstance(fps, Fingerprint):
        return [fps.id]
    return [fp.id for fp in fps]


# --- the shipped rows, as a set -------------------------------------------------------------------------


def test_builtin_matches_both_vietnamese_dns_sinkholes(builtin: FingerprintSet) -> None:
    assert ids(builtin.match_dns_ip("125.212.224.108")) == ["ooni.vn_dns_1"]
    assert ids(builtin.match_dns_ip("103.192.236.94")) == ["ooni.vn_dns_2"]
    # the same addresses written differently
    assert ids(builtin.match_dns_ip("::ffff:103.192.236.94")) == ["ooni.vn_dns_2"]
    assert ids(builtin.match_dns_ip(" 103.192.236.094 ")) == ["ooni.vn_dns_2"]
    assert ids(builtin.match_dns_ip("[::ffff:7dd4:e06c]")) == ["ooni.vn_dns_1"]


@pytest.mark.parametrize("ip", ["8.8.8.8", "125.212.224.10", "125.212.224.1080", "103.192.236.9", "::1", ""])
def test_builtin_does_not_match_unrelated_addresses(builtin: FingerprintSet, ip: str) -> None:
    assert builtin.match_dns_ip(ip) is None


def test_viettel_waf_body(builtin: FingerprintSet) -> None:
    assert ids(builtin.match_body(VIETTEL_PAGE)) == ["cp.c_isp_viettel"]
    assert builtin.match_body(NORMAL_PAGE) == ()
    # The pattern is exact: a different separator than U+00B7 is not this block page.
    assert builtin.match_body(VIETTEL_PAGE.replace("·", "|")) == ()


def test_fake_404_body_matches_with_crlf_or_lf(builtin: FingerprintSet) -> None:
    # OONI stores this multi-line pattern with CRLF line ends; servers may send either.
    assert ids(builtin.match_body(FAKE_404_CRLF)) == ["ooni.vn_http_1"]
    assert ids(builtin.match_body(FAKE_404_CRLF.replace("\r\n", "\n"))) == ["ooni.vn_http_1"]
    assert builtin.match_body(FAKE_404_CRLF.replace("!!!!!", "!")) == ()


def test_antlabs_portal_redirect(builtin: FingerprintSet) -> None:
    loc = "http://ezxcess.antlabs.com/login/index.ant?url=http://example.vn/"
    fp = builtin.match_redirect(loc)
    assert fp is not None and fp.id == "ooni.vn_0" and fp.scope == "inst"
    assert ids(builtin.match_headers([("Location", loc)])) == ["ooni.vn_0"]
    assert builtin.match_redirect("https://example.vn/login/index.ant?url") is None


def test_len_and_describe(builtin: FingerprintSet) -> None:
    assert len(builtin) == 5
    assert builtin.describe() == "5 fingerprints: dns 2, body 2, header.location 1 (0 known false positives)"
    assert builtin.header_names == ("location",)


# --- OONI's full files ----------------------------------------------------------------------------------


def test_not_an_ooni_csv_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "list.csv"
    path.write_text("url,category_code\nhttp://example.vn/,NEWS\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        FingerprintSet.build(FingerprintConfig(files=(path,)))
    assert [p.path for p in err.value.problems] == ["fingerprints.files[0]"]
    assert "no column" in err.value.problems[0].message


@needs_ooni
def test_header_fingerprints_from_the_full_file(full_ooni: FingerprintSet) -> None:
    # ooni.ae_0: header.server prefix "Protected by WireFilter"; header names compare case-insensitively.
    for name in ("Server", "server", "SERVER"):
        assert "ooni.ae_0" in ids(
            full_ooni.match_headers([("Date", "x"), (name, "Protected by WireFilter 8")])
        )
    # values compare as OONI does: case-sensitively
    assert full_ooni.match_headers([("Server", "protected by wirefilter")]) == ()
    assert full_ooni.match_headers([("Server", "nginx"), ("Content-Type", "text/html")]) == ()
    assert {"location", "server", "via"} <= set(full_ooni.header_names)


@needs_ooni
def test_false_positives_are_kept_apart(full_ooni: FingerprintSet) -> None:
    # cp.fp_x_generic_404_2 (" looking for could not be found") is a known false positive; it also occurs
    # inside Vietnam's fake-404 block page, so both lists say something about that page.
    assert "ooni.vn_http_1" in ids(full_ooni.match_body(FAKE_404_CRLF))
    assert "cp.fp_x_generic_404_2" not in ids(full_ooni.match_body(FAKE_404_CRLF))
    assert "cp.fp_x_generic_404_2" in ids(full_ooni.false_positive_for_body(FAKE_404_CRLF))
    assert all(fp.is_false_positive for fp in full_ooni.false_positive_for_body(FAKE_404_CRLF))
    assert not any(fp.is_false_positive for fp in full_ooni.match_body(FAKE_404_CRLF))
    page = "<html><body>Sorry, the page you are looking for could not be found</body></html>"
    assert full_ooni.match_body(page) == ()
    assert "cp.fp_x_generic_404_2" in ids(full_ooni.false_positive_for_body(page))


def test_false_positive_headers(tmp_path: Path) -> None:
    path = tmp_path / "fp.csv"
    path.write_text(
        HEADER + "\n"
        "t.fp,fp,,header.server,prefix,FriendlyProxy,5,,,,\n"
        "t.block,isp,,header.server,prefix,FriendlyProxy/blocker,5,,,,\n",
        encoding="utf-8",
    )
    fs = FingerprintSet.build(FingerprintConfig(files=(path,)), builtin=False)
    headers = [("server", "FriendlyProxy/1.0")]
    assert fs.match_headers(headers) == ()
    assert ids(fs.false_positive_for_headers(headers)) == ["t.fp"]
    both = [("Server", "FriendlyProxy/blocker")]
    assert ids(fs.match_headers(both)) == ["t.block"]
    assert ids(fs.false_positive_for_headers(both)) == ["t.fp"]


@needs_ooni
def test_full_file_body_matching_agrees_with_plain_substring_search(full_ooni: FingerprintSet) -> None:
    """The one-scan index must find exactly what `pattern in text` finds, pattern by pattern."""
    body_fps = [fp for fp in full_ooni if fp.location == "body" and fp.pattern_type == "contains"]
    rng = random.Random(7)
    for _ in range(40):
        chosen = rng.sample(body_fps, 3)
        parts = [NORMAL_PAGE[: rng.randrange(len(NORMAL_PAGE))]]
        for fp in chosen:
            cut = fp.pattern[: rng.randrange(1, len(fp.pattern) + 1)]  # sometimes whole, sometimes cut short
            parts += [cut.replace("\r\n", "\n"), NORMAL_PAGE[: rng.randrange(50)]]
        text = "".join(parts)
        expected = sorted(
            fp.id for fp in body_fps if not fp.is_false_positive and fp.pattern.replace("\r\n", "\n") in text
        )
        got = sorted(fp.id for fp in full_ooni.match_body(text) if fp.pattern_type == "contains")
        assert got == expected


# --- config entries -------------------------------------------------------------------------------------


def test_config_entries_are_fingerprints() -> None:
    cfg = FingerprintConfig(
        dns_ips=("10.0.0.1", "2001:DB8::0:1"),
        body_patterns=("Trang web .{0,20}bị chặn", r"block\.example"),
        redirect_hosts=("canhbao.example.vn",),
    )
    fs = FingerprintSet.build(cfg)
    assert len(fs) == 5 + 5
    assert ids(fs.match_dns_ip("10.0.0.1")) == ["config.dns_ip.1"]
    assert ids(fs.match_dns_ip("2001:db8::1")) == ["config.dns_ip.2"]
    assert ids(fs.match_body("<p>Trang web này đã bị chặn</p>")) == ["config.body.1"]
    fp = fs.get("config.body.2")
    assert fp is not None and fp.notes == "fingerprints.body_patterns[1]" and fp.origin == "config"
    assert fs.match_body(NORMAL_PAGE) == ()


def test_redirect_hosts_with_subdomains_and_idn() -> None:
    fs = FingerprintSet.build(
        FingerprintConfig(
            redirect_hosts=("canhbao.example.vn", "Cảnhbáo.vn", "xn--thngbo-tta2m.vn", "10.9.8.7")
        )
    )
    assert ids(fs.match_redirect("http://canhbao.example.vn/")) == ["config.redirect_host.1"]
    assert ids(fs.match_redirect("https://WWW.CanhBao.Example.VN.:8443/x?u=1")) == ["config.redirect_host.1"]
    assert ids(fs.match_redirect("//a.b.canhbao.example.vn/path")) == ["config.redirect_host.1"]
    # IDN: the config gives U-labels, the Location A-labels, and the other way round
    assert normalise_host("Cảnhbáo.vn") == "xn--cnhbo-0qa6344c.vn"
    assert ids(fs.match_redirect("http://xn--cnhbo-0qa6344c.vn/")) == ["config.redirect_host.2"]
    assert ids(fs.match_redirect("http://sub.cảnhbáo.vn/")) == ["config.redirect_host.2"]
    assert ids(fs.match_redirect("http://thôngbáo.vn/")) == ["config.redirect_host.3"]
    assert ids(fs.match_redirect("http://10.9.8.7/blocked")) == ["config.redirect_host.4"]
    for location in (
        "http://notcanhbao.example.vn/",
        "http://canhbao.example.vn.evil.com/",
        "http://example.vn/?next=canhbao.example.vn",
        "/canhbao.example.vn",
        "http://10.9.8.70/",
        "http://[::1/",
        "",
    ):
        assert fs.match_redirect(location) is None, location
    assert ids(fs.match_headers([("LOCATION", "http://x.canhbao.example.vn/")])) == ["config.redirect_host.1"]


def test_invalid_config_entries_are_all_reported_with_their_key_path(tmp_path: Path) -> None:
    cfg = FingerprintConfig(
        dns_ips=("103.192.236.94", "blocked.example.vn"),
        body_patterns=("ok", "also ok", "(unclosed", "a*"),
        redirect_hosts=("https://warning.example.vn/", "*.warning.example.vn", "ok.example.vn"),
        files=(tmp_path / "missing.csv",),
    )
    with pytest.raises(ConfigError) as err:
        FingerprintSet.build(cfg, source="audit.yaml")
    paths = [p.path for p in err.value.problems]
    assert paths == [
        "fingerprints.files[0]",
        "fingerprints.dns_ips[1]",
        "fingerprints.body_patterns[2]",
        "fingerprints.body_patterns[3]",
        "fingerprints.redirect_hosts[0]",
        "fingerprints.redirect_hosts[1]",
    ]
    assert err.value.source == "audit.yaml"
    assert "missing.csv" in err.value.problems[0].message
    assert "matches the empty string" in err.value.problems[3].message
    assert "fingerprints.body_patterns[2]" in str(err.value)


def test_provider_key_path_in_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        FingerprintSet.build(
            FingerprintConfig(files=(tmp_path,)),  # a directory: unreadable as a file
            builtin=False,
            id_prefix="provider.vnpt",
            key_path="providers[1].fingerprints",
        )
    assert [p.path for p in err.value.problems] == ["providers[1].fingerprints.files[0]"]


def test_merged_adds_provider_entries_without_duplicating_builtins(builtin: FingerprintSet) -> None:
    global_set = FingerprintSet.build(FingerprintConfig(dns_ips=("10.0.0.1",)))
    provider = FingerprintSet.build(
        FingerprintConfig(body_patterns=("Trang web bị chặn",), dns_ips=("10.0.0.1", "10.0.0.2")),
        builtin=False,
        id_prefix="provider.vnpt",
    )
    merged = global_set.merged(provider)
    assert len(merged) == len(global_set) + 2  # 10.0.0.1 is already there
    assert ids(merged.match_body("Trang web bị chặn")) == ["provider.vnpt.body.1"]
    assert ids(merged.match_dns_ip("10.0.0.1")) == ["config.dns_ip.1"]
    assert ids(merged.match_dns_ip("10.0.0.2")) == ["provider.vnpt.dns_ip.2"]
    assert ids(merged.match_dns_ip("103.192.236.94")) == ["ooni.vn_dns_2"]
    assert list(merged)[: len(global_set)] == list(global_set)  # global first, in order
    # a provider set that also carries the builtins does not duplicate them
    with_builtins = FingerprintSet.build(
        FingerprintConfig(body_patterns=("x{3}y",)), id_prefix="provider.fpt"
    )
    assert len(builtin.merged(with_builtins)) == len(builtin) + 1
    # the originals are unchanged
    assert global_set.match_body("Trang web bị chặn") == ()
    assert len(global_set) == len(builtin) + 1


# --- matching machinery ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("1.2.3.4", "1.2.3.4"),
        ("::ffff:1.2.3.4", "1.2.3.4"),
        ("001.002.003.004", "1.2.3.4"),
        ("2001:0DB8:0000::0001", "2001:db8::1"),
        ("[2001:db8::1]", "2001:db8::1"),
        ("Internet-Positif.ORG.", "internet-positif.org"),
    ],
)
def test_normalise_address(given: str, expected: str) -> None:
    assert normalise_address(given) == expected


@pytest.mark.parametrize(
    ("location", "host"),
    [
        ("http://CanhBao.Example.VN.:8080/x", "canhbao.example.vn"),
        ("https://cảnhbáo.vn/", "xn--cnhbo-0qa6344c.vn"),
        ("//[::ffff:10.9.8.7]/blocked", "10.9.8.7"),
        ("http://bad_idn_\u0378.vn/", "bad_idn_\u0378.vn"),  # not valid IDNA: compared as written, lower-case
        ("/relative/path", ""),
        ("http://[::1/", ""),  # unbalanced bracket: urlsplit refuses it
        ("", ""),
    ],
)
def test_location_host(location: str, host: str) -> None:
    assert location_host(location) == host


def test_dns_prefix_patterns_keep_their_dots(tmp_path: Path) -> None:
    path = tmp_path / "dns.csv"
    path.write_text(HEADER + "\nt.prefix,isp,,dns,prefix,10.10.,5,,,,\n", encoding="utf-8")
    fs = FingerprintSet.build(FingerprintConfig(files=(path,)), builtin=False)
    assert ids(fs.match_dns_ip("10.10.34.34")) == ["t.prefix"]
    assert fs.match_dns_ip("10.100.1.1") is None


def test_results_come_in_set_order(tmp_path: Path) -> None:
    path = tmp_path / "order.csv"
    path.write_text(
        HEADER + "\n"
        "o.3,isp,,body,contains,gamma,5,,,,\n"
        "o.1,isp,,body,regexp,al+pha,5,,,,\n"
        "o.2,isp,,body,full,alpha beta gamma,5,,,,\n"
        "o.4,isp,,body,prefix,alpha,5,,,,\n",
        encoding="utf-8",
    )
    fs = FingerprintSet.build(FingerprintConfig(files=(path,)), builtin=False)
    assert ids(fs.match_body("alpha beta gamma")) == ["o.3", "o.1", "o.2", "o.4"]
    assert ids(fs.match_body("alpha")) == ["o.1", "o.4"]
