"""The OONI blocking-fingerprints CSV reader alone: rows to Fingerprints, bad rows to problems."""

from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path

import pytest

from auditor.config import FingerprintConfig
from auditor.fingerprints import Fingerprint, FingerprintSet, builtin_fingerprints, load_ooni_csv
from auditor.fingerprints.ooni_csv import parse_ooni_csv
from tests.fingerprint_data import DATA, HEADER, OONI, OONI_DNS, OONI_HTTP, needs_ooni, read_rows


def parse(text: str) -> tuple[list[Fingerprint], list[str]]:
    return parse_ooni_csv(io.StringIO(text, newline=""), label="t.csv", origin="test")


# --- the shipped rows and OONI's files ------------------------------------------------------------------


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


# --- the reader on small files --------------------------------------------------------------------------


def test_reader_alone_on_a_small_csv_with_bad_rows() -> None:
    fingerprints, problems = parse(
        HEADER + "\r\n"
        'r.crlf,nat,,body,contains,"first\r\nsecond",5,VN,,,n\r\n'  # lines 2-3: CRLF kept inside the field
        "r.extra,isp,,body,contains,x,5,VN,,,,surplus\r\n"  # line 4: a non-empty 12th field
        "r.trailing,isp,,body,contains,y,5,VN,,,,\r\n"  # line 5: an empty 12th field is harmless
        ",isp,,body,contains,z,5,VN,,,\r\n"  # line 6: no name
        "r.dot,isp,,body,regexp,.*,5,VN,,,\r\n"  # line 7: matches the empty string
        "   ,  ,,,,,,,,,\r\n"  # line 8: blank: skipped silently
        "r.scope, ODD ,,DNS,Full,10.0.0.1,5,,,,\r\n"  # line 9: unknown scope kept, names lower-cased
    )
    assert [(fp.id, fp.scope, fp.location, fp.pattern_type, fp.pattern) for fp in fingerprints] == [
        ("r.crlf", "nat", "body", "contains", "first\r\nsecond"),
        ("r.trailing", "isp", "body", "contains", "y"),
        ("r.scope", "odd", "dns", "full", "10.0.0.1"),
    ]
    assert {fp.origin for fp in fingerprints} == {"test"}
    assert fingerprints[0].notes == "n"
    assert problems == [
        "t.csv:4: skipped: 12 fields, expected 11 (shifted columns?)",
        "t.csv:6: skipped: no name",
        "t.csv:7: skipped: regexp '.*' matches the empty string, so it would match everything",
    ]


def test_reader_takes_columns_by_name_in_any_order_without_optional_ones() -> None:
    fingerprints, problems = parse(
        "Pattern,Pattern_Type,Location_Found,Scope,Name\nBlocked,prefix,header.Server,isp,o.1\n"
    )
    assert problems == []
    assert fingerprints == [Fingerprint("o.1", "isp", "header.server", "prefix", "Blocked", "test", "")]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "t.csv: empty file, expected an OONI fingerprints CSV header"),
        ("url,category_code\nhttp://example.vn/,NEWS\n",
         "t.csv: not an OONI fingerprints CSV (no column name, scope, location_found, pattern_type, pattern)"),
        (HEADER + "\n" + "a,isp,,body,contains,\"" + "x" * (csv.field_size_limit() + 1) + "\",5,,,,\n",
         "t.csv:2: unreadable CSV: field larger than field limit"),
    ],
)  # fmt: skip
def test_reader_refuses_what_is_not_an_ooni_csv(text: str, message: str) -> None:
    with pytest.raises(ValueError) as err:
        parse(text)
    assert str(err.value).startswith(message)


def test_load_reads_a_byte_order_mark_and_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bom.csv"
    path.write_bytes(("\ufeff" + HEADER + "\nb.1,isp,,body,contains,bị chặn,5,VN,,,\n").encode())
    fingerprints, problems = load_ooni_csv(path)
    assert problems == [] and [fp.pattern for fp in fingerprints] == ["bị chặn"]
    assert fingerprints[0].origin == f"file:{path}"
    path.write_bytes(b"\xff\xfe not utf-8")
    with pytest.raises(UnicodeDecodeError):
        load_ooni_csv(path)
