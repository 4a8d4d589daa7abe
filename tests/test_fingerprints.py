"""Block-page fingerprints: the shipped Vietnam rows, OONI CSV reading, config entries and matching."""

from __future__ import annotations

import csv
import random
import shutil
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auditor.config import FingerprintConfig
from auditor.errors import ConfigError
from auditor.fingerprints import (
    Fingerprint,
    FingerprintSet,
    _required_prefix,
    _SubstringIndex,
    builtin_fingerprints,
    load_ooni_csv,
    normalise_address,
    normalise_host,
)

OONI = Path(__file__).resolve().parents[2] / "shared" / "data" / "ooni"
OONI_DNS = OONI / "fingerprints_dns.csv"
OONI_HTTP = OONI / "fingerprints_http.csv"
DATA = Path(__file__).resolve().parents[1] / "auditor" / "data"
HEADER = (
    "name,scope,other_names,location_found,pattern_type,pattern,"
    "confidence_no_fp,expected_countries,source,exp_url,notes"
)

needs_ooni = pytest.mark.skipif(not OONI_HTTP.exists(), reason="shared OONI reference data not present")

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


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def ids(fps: tuple[Fingerprint, ...] | Fingerprint | None) -> list[str]:
    if fps is None:
        return []
    if isinstance(fps, Fingerprint):
        return [fps.id]
    return [fp.id for fp in fps]


# --- the shipped rows -----------------------------------------------------------------------------------


def test_builtin_rows_load_without_problems() -> None:
    fingerprints, problems = builtin_fingerprints()
    assert problems == ()
    assert {fp.id for fp in fingerprints} == {
        "ooni.vn_dns_1",
        "ooni.vn_dns_2",
        "ooni.vn_0",
        "cp.c_isp_viettel",
        "ooni.vn_http_1",
    }
    assert all(fp.origin == "ooni-builtin" for fp in fingerprints)


@needs_ooni
def test_shipped_rows_are_the_upstream_rows_unchanged() -> None:
    for kind in ("dns", "http"):
        upstream = {row["name"]: row for row in read_rows(OONI / f"fingerprints_{kind}.csv")}
        shipped = read_rows(DATA / f"ooni_fingerprints_{kind}_vn.csv")
        assert shipped, kind
        for row in shipped:
            assert row == upstream[row["name"]]
        vn = {n for n, r in upstream.items() if "VN" in r["expected_countries"].split(",")}
        assert vn <= {row["name"] for row in shipped}
    assert (DATA / "ATTRIBUTION.md").read_text().count("github.com/ooni/blocking-fingerprints") >= 1


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


@needs_ooni
def test_full_files_load_every_row() -> None:
    http_locations = {"body", "header.location", "header.server", "header.via", "header.x-app-url"}
    for path, expected in ((OONI_DNS, {"dns"}), (OONI_HTTP, http_locations)):
        with path.open(newline="") as fh:
            records = list(csv.reader(fh))[1:]
        fingerprints, problems = load_ooni_csv(path)
        # This copy of OONI's files has no malformed rows (upstream validates its CSVs in CI now);
        # malformed rows are tested below on a copy with some added.
        assert problems == []
        assert len(fingerprints) == len(records)
        assert {fp.location for fp in fingerprints} == expected
    fingerprints, _ = load_ooni_csv(OONI_HTTP)
    multi_line = next(fp for fp in fingerprints if fp.id == "ooni.vn_http_1")
    assert multi_line.pattern.count("\n") == 2 and multi_line.origin == f"file:{OONI_HTTP}"


@needs_ooni
def test_malformed_rows_in_a_real_file_are_skipped_and_reported(tmp_path: Path) -> None:
    broken = tmp_path / "fingerprints_http.csv"
    shutil.copy(OONI_HTTP, broken)
    with broken.open("a", encoding="utf-8", newline="") as fh:
        # a shifted row (an unquoted comma in other_names), then a sound one after it
        fh.write("x.shifted,isp,a,b,body,contains,Blocked here,5,VN,,,\r\n")
        fh.write("x.fine,isp,,body,contains,Sound row after the bad one,5,VN,,,\r\n")
    with OONI_HTTP.open(newline="") as fh:
        lines = sum(1 for _ in fh)
    fingerprints, problems = load_ooni_csv(broken)
    assert problems == [f"{broken}:{lines + 1}: skipped: unknown location_found 'b'"]
    assert fingerprints[-1].id == "x.fine"
    fs = FingerprintSet.build(FingerprintConfig(files=(broken,)), builtin=False)
    assert fs.problems == tuple(problems)
    assert "1 rows skipped" in fs.describe()


def test_malformed_rows_are_skipped_with_their_line(tmp_path: Path) -> None:
    path = tmp_path / "fp.csv"
    path.write_text(
        HEADER + "\n"
        'a.multi,isp,,body,contains,"line one\nline two",5,VN,,,\n'  # lines 2-3
        "a.type,isp,,body,glob,x*,5,VN,,,\n"  # line 4
        "a.loc,isp,,cookie,contains,x,5,VN,,,\n"  # line 5
        "a.short,isp,,body,contains\n"  # line 6
        "a.re,isp,,body,regexp,(unclosed,5,VN,,,\n"  # line 7
        "a.empty,isp,,body,contains,,5,VN,,,\n"  # line 8
        "\n"
        "a.ok,ISP,,Header.Server,full,Blocker,5,VN,,,note\n",  # line 10
        encoding="utf-8",
    )
    fingerprints, problems = load_ooni_csv(path)
    assert [fp.id for fp in fingerprints] == ["a.multi", "a.ok"]
    assert fingerprints[0].pattern == "line one\nline two"
    assert fingerprints[1] == Fingerprint(
        "a.ok", "isp", "header.server", "full", "Blocker", f"file:{path}", "note"
    )
    assert problems[0] == f"{path}:4: skipped: unknown pattern_type 'glob'"
    assert problems[1] == f"{path}:5: skipped: unknown location_found 'cookie'"
    assert problems[2].startswith(f"{path}:6: skipped: ")
    assert problems[3].startswith(f"{path}:7: skipped: invalid regexp '(unclosed'")
    assert problems[4] == f"{path}:8: skipped: empty pattern"
    assert len(problems) == 5


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


def test_dns_prefix_patterns_keep_their_dots(tmp_path: Path) -> None:
    path = tmp_path / "dns.csv"
    path.write_text(HEADER + "\nt.prefix,isp,,dns,prefix,10.10.,5,,,,\n", encoding="utf-8")
    fs = FingerprintSet.build(FingerprintConfig(files=(path,)), builtin=False)
    assert ids(fs.match_dns_ip("10.10.34.34")) == ["t.prefix"]
    assert fs.match_dns_ip("10.100.1.1") is None


class _AlwaysScan(_SubstringIndex):
    SCAN_FROM = 0  # use the one-scan index even for a handful of needles


@pytest.mark.parametrize("index_class", [_SubstringIndex, _AlwaysScan])
def test_overlapping_and_nested_literals_are_all_found(index_class: type[_SubstringIndex]) -> None:
    needles = ["abcab", "bcab", "cabc", "ab", "abcabcab", "zz"]
    index = index_class({n: [i] for i, n in enumerate(needles)})
    text = "xxabcabcabyy"
    assert index.contained_in(text) == {i for i, n in enumerate(needles) if n in text} == {0, 1, 2, 3, 4}


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.text(alphabet="abcA<>/é ", min_size=1, max_size=9), min_size=1, max_size=25, unique=True),
    st.text(alphabet="abcA<>/é \n", max_size=300),
)
def test_substring_index_agrees_with_in(needles: list[str], text: str) -> None:
    index = _AlwaysScan({n: [i] for i, n in enumerate(needles)})
    assert index.contained_in(text) == {i for i, n in enumerate(needles) if n in text}


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


@pytest.mark.parametrize(
    ("pattern", "prefix"),
    [
        (r"U\.S\..*Command", "U.S."),
        ("ab*c", "a"),
        ("abc?", "ab"),
        ("ab+c", "ab"),
        ("a|bc", ""),
        (r"\d+x", ""),
        ("(?i)blocked", ""),
        ("x{2}", ""),
        (r"a\nb", "a"),
        ("Trang web .{0,20}bị chặn", "Trang web "),
    ],
)
def test_required_prefix_of_regexps(pattern: str, prefix: str) -> None:
    import re

    assert _required_prefix(pattern) == prefix
    # whatever the pattern matches starts with that prefix
    matched = 0
    for text in (
        "U.S. Cyber Command",
        "abbbc",
        "ac",
        "abc",
        "bc",
        "1x",
        "BLOCKED",
        "xx",
        "a\nb",
        "Trang web này bị chặn",
    ):
        m = re.search(pattern, text)
        if m:
            matched += 1
            assert m.group().startswith(prefix)
    assert matched, f"no sample text matches {pattern}: the prefix was never checked"
