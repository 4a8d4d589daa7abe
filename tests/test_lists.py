import datetime as dt
import unicodedata
from dataclasses import replace
from pathlib import Path

import pytest

from auditor.errors import ListError, UsageError
from auditor.lists import ListReadResult, format_validation_report, read_list, read_lists
from auditor.models import ListEntry, ListIssue

CITIZENLAB = Path("/work/shared/data/citizenlab")
REPO = Path(__file__).resolve().parent.parent
HEADER = "url,category_code,category_description,date_added,source,notes"


def write(tmp_path: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


@pytest.mark.parametrize(("name", "rows"), [("vn.csv", 411), ("global.csv", 1722)])
def test_real_citizen_lab_lists_read_without_issues(name: str, rows: int) -> None:
    result = read_list(CITIZENLAB / name)
    assert result.issues == ()
    assert (result.rows, len(result.entries), result.duplicates) == (rows, rows, 0)
    assert {e.list_name for e in result.entries} == {name.removesuffix(".csv")}
    assert all(e.date_added is not None and e.category_code for e in result.entries)


def test_citizen_lab_vn_first_row() -> None:
    first = read_list(CITIZENLAB / "vn.csv").entries[0]
    assert first == ListEntry(
        url="https://bongcuoi.com/",
        host="bongcuoi.com",
        list_name="vn",
        line=2,
        category_code="ALDR",
        category_description="Alcohol & Drugs",
        date_added=dt.date(2021, 7, 2),
        source="Netalitica",
        notes="Funky balls, drugs",
    )


def test_real_lists_merge_across_files() -> None:
    merged = read_lists([CITIZENLAB / "vn.csv", CITIZENLAB / "global.csv"])
    assert len(merged.entries) == 411 + 1722  # the two lists share no URL
    assert merged.issues == ()
    assert [r.rows for r in merged.results] == [411, 1722]


def test_example_list_reads_cleanly() -> None:
    result = read_list(REPO / "blocklists" / "example.csv")
    assert result.issues == ()
    assert 6 <= len(result.entries) <= 10
    assert all(e.host.endswith(".example") for e in result.entries)
    assert any(e.host.startswith("xn--") for e in result.entries)  # the Vietnamese IDN row


def test_bad_rows_are_reported_and_skipped(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "mixed.csv",
        f"{HEADER}\n"
        "http://good-one.example/,NEWS,News Media,2024-01-02,me,\n"  # line 2
        ",NEWS,News Media,2024-01-02,me,no url\n"  # line 3
        "ftp://files.example/,FILE,File-sharing,,,\n"  # line 4
        "http://bad-date.example/,NEWS,News Media,02/01/2024,,\n"  # line 5
        "http://bad-date2.example/,NEWS,News Media,2024-02-30,,\n"  # line 6
        "http://bad host.example/,NEWS,,,,\n"  # line 7
        "http://good-two.example:8080/x,GMB,Gambling,,,\n",  # line 8
    )
    result = read_list(path)
    assert [(e.url, e.line) for e in result.entries] == [
        ("http://good-one.example/", 2),
        ("http://good-two.example:8080/x", 8),
    ]
    assert [(i.file, i.line) for i in result.issues] == [(str(path), n) for n in (3, 4, 5, 6, 7)]
    messages = [i.message for i in result.issues]
    assert messages[0] == "no URL"
    assert "unsupported scheme 'ftp'" in messages[1]
    assert "bad date_added '02/01/2024'" in messages[2] and "YYYY-MM-DD" in messages[2]
    assert "bad date_added '2024-02-30'" in messages[3]
    assert "bad URL 'http://bad host.example/'" in messages[4]
    assert (result.rows, result.skipped, result.duplicates) == (7, 5, 0)
    assert result.entries[1].date_added is None


def test_bom_and_crlf(tmp_path: Path) -> None:
    path = tmp_path / "excel.csv"
    path.write_bytes(
        b"\xef\xbb\xbf"
        + f"{HEADER}\r\nhttp://a.example/,NEWS,News,2024-01-02,me,n\r\n\r\nbad url,,,,,\r\n".encode()
    )
    result = read_list(path)
    assert [(e.url, e.line, e.notes) for e in result.entries] == [("http://a.example/", 2, "n")]
    assert [i.line for i in result.issues] == [4]


def test_multi_line_quoted_fields_count_physical_lines(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "multiline.csv",
        f"{HEADER}\r\n"
        'http://a.example/,NEWS,News,,,"first line\r\nsecond line\r\nthird"\r\n'  # lines 2-4
        'http://b.example/,NEWS,News,,,"one\nmore"\r\n'  # lines 5-6
        "not a url at all,NEWS,,,,\r\n"  # line 7
        "http://c.example/,NEWS,,,,\r\n",  # line 8
    )
    result = read_list(path)
    assert [(e.host, e.line) for e in result.entries] == [
        ("a.example", 2),
        ("b.example", 5),
        ("c.example", 8),
    ]
    assert result.entries[0].notes == "first line\nsecond line\nthird"  # line endings made uniform
    assert [i.line for i in result.issues] == [7]


def test_unclosed_quote_that_swallows_rows_is_reported(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "unclosed.csv",
        f"{HEADER}\n"
        "http://a.example/,NEWS,,,,ok\n"  # line 2
        'http://b.example/,NEWS,,,,"oops\n'  # line 3: the quote is never closed
        "http://c.example/,NEWS,,,,\n"
        "http://d.example/,NEWS,,,,\n",
    )
    result = read_list(path)
    assert [e.host for e in result.entries] == ["a.example"]
    assert [i.line for i in result.issues] == [3]
    assert "closing quote" in result.issues[0].message and "line 3 to line 5" in result.issues[0].message


def test_duplicates_are_merged_keeping_the_first_row(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "dups.csv",
        f"{HEADER}\n"
        "http://a.example/,NEWS,News,2024-01-01,first,\n"
        "HTTP://A.EXAMPLE:80/#top,GMB,Gambling,2024-02-02,second,\n"
        "a.example,XED,,,third,\n"
        "https://a.example/,NEWS,,,,\n",  # another scheme is another URL
    )
    result = read_list(path)
    assert [(e.url, e.line, e.category_code, e.source) for e in result.entries] == [
        ("http://a.example/", 2, "NEWS", "first"),
        ("https://a.example/", 5, "NEWS", ""),
    ]
    assert (result.rows, result.duplicates, result.issues) == (4, 2, ())


def test_subset_of_columns_in_any_order_and_unknown_columns(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "subset.csv",
        " Notes ,extra,URL,category_code\nfree text,ignored,http://a.example/,PORN\nx,y,b.example\n",
    )
    result = read_list(path)
    assert result.issues == ()
    assert result.entries[0] == ListEntry(
        url="http://a.example/",
        host="a.example",
        list_name="subset",
        line=2,
        category_code="PORN",
        notes="free text",
    )
    assert (result.entries[1].url, result.entries[1].category_code) == ("http://b.example/", "")


def test_semicolon_delimited_csv(tmp_path: Path) -> None:
    path = write(tmp_path, "excel-vi.csv", "url;category_code;notes\nhttp://a.example/;GMB;a, b\n")
    result = read_list(path)
    assert [(e.url, e.category_code, e.notes) for e in result.entries] == [
        ("http://a.example/", "GMB", "a, b")
    ]


def test_plain_text_with_comments_and_bare_domains(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "plain.txt",
        "# reference list\n"  # 1
        "\n"  # 2
        "harmful-content.example\n"  # 3
        "   https://casino.example/vi/   # inline comment\n"  # 4
        "   # indented comment\n"  # 5
        "Trẻem-Việt.vn/Đường\n"  # 6
        "ftp://files.example/\n"  # 7
        "0.0.0.0 hosts-file.example\n"  # 8
        "HARMFUL-CONTENT.example/\n",  # 9: duplicate of line 3
    )
    result = read_list(path)
    assert [(e.url, e.line) for e in result.entries] == [
        ("http://harmful-content.example/", 3),
        ("https://casino.example/vi/", 4),
        ("http://xn--trem-vit-d40dve.vn/%C4%90%C6%B0%E1%BB%9Dng", 6),
    ]
    assert all(
        e.category_code == "" and e.date_added is None and e.list_name == "plain" for e in result.entries
    )
    assert [i.line for i in result.issues] == [7, 8]
    assert "more than one word" in result.issues[1].message
    assert (result.rows, result.duplicates) == (6, 1)


def test_idn_in_csv(tmp_path: Path) -> None:
    path = write(tmp_path, "idn.csv", "url,category_code\nhttp://cá-cược.vn.example/,GMB\n")
    entry = read_list(path).entries[0]
    assert entry.host == "xn--c-cc-5na85j946j.vn.example" and entry.url == f"http://{entry.host}/"


TONE_MARKS = "\u0300\u0301\u0303\u0309\u0323"  # the five combining tone marks Windows-1258 has


def to_cp1258(text: str) -> bytes:
    """Text as Excel writes it in Windows-1258: a letter the code page lacks (most Vietnamese letters with a
    tone) is its base letter, itself maybe precomposed (ê, ơ, ă), plus the tone as a combining mark."""
    out = b""
    for char in text:
        try:
            out += char.encode("cp1258")
        except UnicodeEncodeError:
            decomposed = unicodedata.normalize("NFD", char)
            tone = next(mark for mark in decomposed if mark in TONE_MARKS)
            out += unicodedata.normalize("NFC", decomposed.replace(tone, "")).encode("cp1258") + tone.encode(
                "cp1258"
            )
    return out


VIETNAMESE_ROWS = (
    f"{HEADER}\r\n"
    "http://cá-cược-trực-tuyến.vn.example/,GMB,Cờ bạc,2024-03-02,Bộ Công an,Việt Nam\r\n"  # line 2
    "http://Trẻem-Việt.vn/Đường,XED,,,,\r\n"  # line 3
    "not a url,,,,,\r\n"  # line 4
)


def test_windows_1258_file_is_read_with_one_warning(tmp_path: Path) -> None:
    data = to_cp1258(VIETNAMESE_ROWS)
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    assert "\u0323".encode("cp1258") in data  # a combining dot below, as Excel writes it
    legacy = tmp_path / "legacy.csv"
    legacy.write_bytes(data)
    utf8 = write(tmp_path, "utf8.csv", VIETNAMESE_ROWS)

    result, expected = read_list(legacy), read_list(utf8)
    assert result.encoding == "Windows-1258" and expected.encoding == "UTF-8"
    # The same entries as the UTF-8 file, text in NFC: "Việt" is not "Vie\u0302\u0323t".
    assert [(e.url, e.line, e.category_description, e.source, e.notes) for e in result.entries] == [
        (e.url, e.line, e.category_description, e.source, e.notes) for e in expected.entries
    ]
    assert [e.url for e in result.entries] == [
        "http://xn--c-cc-trc-tuyn-3db122a7s2phra6h.vn.example/",
        "http://xn--trem-vit-d40dve.vn/%C4%90%C6%B0%E1%BB%9Dng",
    ]
    assert result.entries[0].notes == "Việt Nam" and result.entries[0].source == "Bộ Công an"
    assert [(i.file, i.line) for i in result.issues] == [(str(legacy), 1), (str(legacy), 4)]
    assert result.issues[0].message.startswith("read as Windows-1258")
    assert "first non-UTF-8 byte on line 2" in result.issues[0].message
    assert "save it as UTF-8" in result.issues[0].message
    assert (result.rows, result.warnings, result.skipped) == (3, 1, 1)  # the warning skipped no row
    assert format_validation_report([result]).splitlines()[-1] == (
        f"{legacy}: 3 rows, 2 entries, 0 duplicates merged, 1 rows skipped"
    )


def test_windows_1258_bytes_it_does_not_define_make_their_row_an_issue(tmp_path: Path) -> None:
    path = tmp_path / "legacy.txt"
    path.write_bytes(to_cp1258("Việt.example\n") + b"bad\x81host.example\n" + to_cp1258("ổn.example\n"))
    result = read_list(path)
    assert [e.host for e in result.entries] == ["xn--vit-5kz.example", "xn--n-zxm.example"]
    assert [i.line for i in result.issues] == [1, 2]
    assert "U+FFFD" in result.issues[1].message and "Windows-1258" in result.issues[1].message


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be"])
def test_utf16_and_utf32_with_a_bom_are_read(tmp_path: Path, encoding: str) -> None:
    # Excel's "Unicode Text" is UTF-16 LE with a BOM; "utf-16" in Python writes the BOM itself.
    text = VIETNAMESE_ROWS if encoding in ("utf-16", "utf-32") else "\ufeff" + VIETNAMESE_ROWS
    result = read_list(write(tmp_path, "unicode.csv", text, encoding))
    expected = read_list(write(tmp_path, "utf8.csv", VIETNAMESE_ROWS))
    assert result.encoding == encoding[:6].upper()
    assert result.entries == tuple(replace(e, list_name="unicode") for e in expected.entries)
    assert [(i.line, i.message) for i in result.issues] == [(i.line, i.message) for i in expected.issues]


def test_damaged_utf16_marks_only_its_row(tmp_path: Path) -> None:
    data = f"\ufeff{HEADER}\nhttp://a.example/\n".encode("utf-16-le")
    data += (
        "http://b".encode("utf-16-le") + b"\x00\xd8" + ".example/\nhttp://c.example/\n".encode("utf-16-le")
    )
    data += b"\x41"  # an odd last byte
    path = tmp_path / "damaged.csv"
    path.write_bytes(data)
    result = read_list(path)
    assert [e.url for e in result.entries] == ["http://a.example/", "http://c.example/"]
    assert [i.line for i in result.issues] == [3, 5]  # a lone surrogate in line 3; the odd byte on line 5
    assert all("not valid UTF-16" in i.message for i in result.issues)


def test_utf8_with_one_damaged_row_stays_utf8(tmp_path: Path) -> None:
    # One stray byte must not make the whole file Windows-1258: that would garble every Vietnamese host.
    path = tmp_path / "damaged.csv"
    path.write_bytes(
        f"{HEADER}\nhttp://cá-cược.vn.example/,GMB,,,,\n".encode()  # line 2
        + b"http://bad\xff.example/,GMB,,,,\n"  # line 3
        + "http://trẻem.vn.example/,XED,,,,caf\xe9 \xff\n".encode()[:-3]  # line 4: notes end in a bad byte
        + b"\xff\n"
    )
    result = read_list(path)
    assert result.encoding == "UTF-8" and result.warnings == 0
    assert [e.host for e in result.entries] == ["xn--c-cc-5na85j946j.vn.example", "xn--trem-wu5a.vn.example"]
    assert result.entries[1].notes == "café \ufffd"  # free text: kept, with the mark where the byte was
    assert [i.line for i in result.issues] == [3]
    assert "not valid UTF-8" in result.issues[0].message and "bad\ufffd.example" in result.issues[0].message


def test_a_nul_byte_means_not_a_text_file(tmp_path: Path) -> None:
    for name, data in [
        ("book.xlsx", b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00"),
        ("utf16-no-bom.csv", f"{HEADER}\nhttp://a.example/\n".encode("utf-16-le")),
        ("nul.txt", b"a.example\nb.example\r\nc\x00.example\n"),
    ]:
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(ListError) as caught:
            read_list(path)
        assert str(path) in str(caught.value) and "NUL byte" in str(caught.value)
        assert "CSV UTF-8" in caught.value.hint
        assert isinstance(caught.value, UsageError)  # exit status 2: nothing probed
    assert "line 3 has a NUL byte" in str(caught.value)


def test_missing_file_is_a_list_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.csv"
    with pytest.raises(ListError, match="nope.csv") as caught:
        read_list(missing)
    assert "No such file" in str(caught.value)


def test_csv_header_without_url_column_is_a_list_error(tmp_path: Path) -> None:
    path = write(tmp_path, "nourl.csv", "link,category_code\nhttp://a.example/,NEWS\n")
    with pytest.raises(ListError, match="no 'url' column"):
        read_list(path)


def test_csv_without_header_is_a_list_error(tmp_path: Path) -> None:
    path = write(tmp_path, "noheader.csv", "http://a.example/,NEWS,News Media,2024-01-02,me,\n")
    with pytest.raises(ListError, match="no header"):
        read_list(path)


def test_empty_files(tmp_path: Path) -> None:
    for name, text in [("empty.txt", ""), ("blank.txt", "\n\n  \n"), ("header-only.csv", HEADER + "\n")]:
        result = read_list(write(tmp_path, name, text))
        assert (result.entries, result.issues, result.rows) == ((), (), 0)


def test_read_lists_first_list_wins_and_issues_are_concatenated(tmp_path: Path) -> None:
    first = write(tmp_path, "first.csv", f"{HEADER}\nhttp://shared.example/,GMB,,,,\nnope nope,,,,,\n")
    second = write(tmp_path, "second.txt", "shared.example\nonly-second.example\nftp://x.example/\n")
    merged = read_lists([first, second])
    assert [(e.url, e.list_name) for e in merged.entries] == [
        ("http://shared.example/", "first"),
        ("http://only-second.example/", "second"),
    ]
    assert [(i.file, i.line) for i in merged.issues] == [(str(first), 3), (str(second), 3)]
    assert [r.path for r in merged.results] == [first, second]
    assert merged.duplicates_across_lists == 1


def test_validation_report_text() -> None:
    results = [
        ListReadResult(
            entries=(ListEntry(url="http://a.example/", host="a.example", list_name="a", line=2),),
            issues=(
                ListIssue(file="lists/a.csv", line=3, message="no URL"),
                ListIssue(file="lists/a.csv", line=7, message="bad date_added 'x': expected YYYY-MM-DD"),
            ),
            path=Path("lists/a.csv"),
            rows=5,
            duplicates=2,
        ),
        ListReadResult(entries=(), issues=(), path=Path("b.txt"), rows=0),
    ]
    assert format_validation_report(results) == (
        "lists/a.csv:3: no URL\n"
        "lists/a.csv:7: bad date_added 'x': expected YYYY-MM-DD\n"
        "lists/a.csv: 5 rows, 1 entries, 2 duplicates merged, 2 rows skipped\n"
        "b.txt: 0 rows, 0 entries, 0 duplicates merged, 0 rows skipped"
    )


def test_validation_report_of_a_real_read(tmp_path: Path) -> None:
    path = write(tmp_path, "l.txt", "a.example\nb.example\na.example\nftp://c.example/\n")
    assert format_validation_report([read_list(path)]) == (
        f"{path}:4: bad URL 'ftp://c.example/': unsupported scheme 'ftp' (only http and https)\n"
        f"{path}: 4 rows, 2 entries, 1 duplicates merged, 1 rows skipped"
    )


def test_unparsable_csv_row_is_an_issue_and_reading_goes_on(tmp_path: Path) -> None:
    huge = "x" * 140_000  # over the csv module's field size limit
    path = write(tmp_path, "huge.csv", f'url,notes\nhttp://a.example/,"{huge}"\nhttp://b.example/,ok\n')
    result = read_list(path)
    assert [e.url for e in result.entries] == ["http://b.example/"]
    assert [(i.line, i.message) for i in result.issues] == [
        (2, "cannot parse CSV row: field larger than field limit (131072)")
    ]


def test_plain_text_url_with_a_comma_is_not_taken_for_csv(tmp_path: Path) -> None:
    path = write(tmp_path, "commas.txt", "http://a.example/maps/@21.0,105.8,zoom\nb.example\n")
    result = read_list(path)
    assert [e.url for e in result.entries] == ["http://a.example/maps/@21.0,105.8,zoom", "http://b.example/"]


def test_one_megabyte_cells_and_lines_are_issues_and_reading_goes_on(tmp_path: Path) -> None:
    mb = "x" * 1_000_000
    csv_path = write(
        tmp_path,
        "huge.csv",
        f"url,notes\r\nhttp://a.example/,{mb}\r\n"  # line 2: unquoted
        f'http://b.example/,"{mb}"\r\n'  # line 3: quoted
        f"http://{mb}.example/,short\r\n"  # line 4: in the URL itself
        "http://c.example/,ok\r\n",  # line 5
    )
    result = read_list(csv_path)
    assert [e.url for e in result.entries] == ["http://c.example/"]
    assert [i.line for i in result.issues] == [2, 3, 4]
    assert all("field larger than field limit" in i.message for i in result.issues)

    text_path = write(tmp_path, "huge.txt", f"http://a.example/{mb}\nhttp://{mb}/\nb.example\n")
    result = read_list(text_path)
    assert [e.url for e in result.entries] == ["http://b.example/"]
    assert [i.line for i in result.issues] == [1, 2]
    assert all("URL is too long (1000" in i.message and len(i.message) < 300 for i in result.issues)


def test_a_csv_header_that_cannot_be_parsed_is_a_list_error(tmp_path: Path) -> None:
    huge = write(tmp_path, "huge-header.csv", f"url,notes{'x' * 200_000}\nhttp://a.example/,n\n")
    with pytest.raises(ListError, match="line 1: cannot parse the CSV header"):
        read_list(huge)
    # Read on, the header would swallow every row and the list would look empty.
    unclosed = write(tmp_path, "unclosed.csv", '\nurl,"notes\nhttp://a.example/,n\nhttp://b.example/,n\n')
    with pytest.raises(ListError, match=r"line 2: a quote \(\"\) in the CSV header is not closed.*line 4"):
        read_list(unclosed)


def test_formula_cells_are_bad_urls_and_plain_notes(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "formulas.csv",
        "url,category_code,notes\n"
        '"=HYPERLINK(""http://evil.example"",""x"")",XED,\n'  # line 2
        '=HYPERLINK("http://evil.example","x"),XED,\n'  # line 3: unquoted, split at its comma
        "@SUM(1+1),XED,\n"  # line 4
        'http://a.example/,=1+2,"=HYPERLINK(""http://evil.example"",""x"")"\n',  # line 5
    )
    result = read_list(path)
    assert [(i.line, i.message.split(":")[0]) for i in result.issues] == [
        (2, "bad URL '=HYPERLINK(\"http"),
        (3, "bad URL '=HYPERLINK(\"http"),
        (4, "bad URL '@SUM(1+1)'"),
    ]
    assert [(e.url, e.category_code, e.notes) for e in result.entries] == [
        ("http://a.example/", "=1+2", '=HYPERLINK("http://evil.example","x")')
    ]
