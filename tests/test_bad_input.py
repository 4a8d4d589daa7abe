"""Hostile input never gives a traceback: random config files and random list files.

A config file either loads or raises ConfigError; a list file either reads (its bad rows reported as issues
with a line inside the file) or raises ListError. Anything else escaping is a bug: the nightly cron job
would die with a traceback instead of a message saying which file and line to fix.
"""

from __future__ import annotations

import re
import tempfile
import unicodedata
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditor.config import (
    CONTROL_KEYS,
    FINGERPRINT_KEYS,
    NETWORK_KEYS,
    PROVIDER_KEYS,
    TIMEOUT_KEYS,
    TLS_KEYS,
    TOP_KEYS,
    VANTAGE_KEYS,
    Config,
    load_config,
)
from auditor.errors import ConfigError, ConfigProblem, ListError
from auditor.lists import ListReadResult, read_list

# ---------------------------------------------------------------------------------------------------------
# Config files: random YAML document text
# ---------------------------------------------------------------------------------------------------------

KEY_NAMES = sorted(
    set(TOP_KEYS + CONTROL_KEYS + PROVIDER_KEYS + VANTAGE_KEYS + FINGERPRINT_KEYS + TIMEOUT_KEYS + TLS_KEYS
        + NETWORK_KEYS)
)  # fmt: skip

# Scalars as they would be written in YAML source: plain, quoted, tagged, and the values PyYAML turns into
# something other than a string (huge integers, sexagesimal numbers, NaN, dates that do not exist).
SCALAR_SOURCES = [
    "", "~", "null", "true", "no", "on", "0", "-1", "0x1F", "0o17", "0b101", "1_000", "190:20:30",
    "1" * 5000, "-" + "9" * 4301, "1e999", "-1e999", ".nan", ".NaN", ".inf", "-.inf", "0.", "._",
    "2024-01-01", "2024-02-30", "2024-01-01 25:00:00", "2001-12-14t21:59:43.10-05:00", "0000-01-01",
    "1.1.1.1", "8.8.8.8:53", "[::1]:53", "'::1'", "socks5://u:p@127.0.0.1:1080", "socks5://[::1",
    "'socks5://h:99999999999999999999'", "sqlite:///x.db", "sqlite:///:memory:", "list.csv", "missing.csv",
    ".", "/", "'~nobody_such_user/x'", "Asia/Ho_Chi_Minh", "'../../etc/passwd'", "Gia Lai", "viettel",
    '"a\\0b"', '"\\ud800"', '"\\x85"', "'" + "x" * 300 + "'", "'(?P<a'", "'" + "(" * 300 + "'",
    "Trẻem-Việt.vn", "'=HYPERLINK(\"http://x\")'", "|\n  block\n  text", ">-\n  folded",
    "!!python/object:os.system x", "!!python/name:os.system ''", "!!binary zz", "!!binary aGk=",
    "!!timestamp x", "!!timestamp ''", "!!bool x", "!!bool ''", "!!int ''", "!!int '-'", "!!int x",
    "!!float ''", "!!float '_'", "!!null x", "!!str 1", "!!set {a, b}", "!!omap [a: 1]", "!!pairs [a: 1]",
    "!!omap x", "!!seq x", "!!map x", "!!merge x", "!!value x", "!foo x", "!<tag:yaml.org,2002:int> ''",
    "*a", "*undefined", "&a 1", "&a [*a]", "&a {k: *a}", "[", "{", "]", "}", "'unclosed", '"unclosed',
    "[" * 200 + "]" * 200, "[" * 3000 + "]" * 3000, "{a: " * 100 + "1" + "}" * 100, "? [a]", "? {a: 1}",
    "%YAML 1.1", "---", "...", "- x", "a: b: c", "\t", "\ufeff", "\x7f", "\x85", "\u2028", "@x", "`x",
]  # fmt: skip


def flow_node(max_leaves: int = 12) -> st.SearchStrategy[str]:
    """YAML flow-style source text: scalars, tagged and anchored nodes, aliases, lists and mappings."""
    scalar = st.one_of(
        st.sampled_from(SCALAR_SOURCES),
        st.text(max_size=20).map(lambda s: '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'),
        st.from_regex(r"[A-Za-z0-9_.:/@%-]{0,20}", fullmatch=True),
    )
    key = st.one_of(st.sampled_from(KEY_NAMES + ["<<", "? [a, b]", "? {a: 1}", "''", "1", "~"]), scalar)

    def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        return st.one_of(
            st.lists(inner, max_size=4).map(lambda items: "[" + ", ".join(items) + "]"),
            st.lists(st.tuples(key, inner), max_size=4).map(
                lambda pairs: "{" + ", ".join(f"{k}: {v}" for k, v in pairs) + "}"
            ),
            st.tuples(st.sampled_from(["&a", "&b", "!!map", "!!seq", "!!set", "!!omap", "!foo"]), inner).map(
                " ".join
            ),
        )

    return st.recursive(scalar, extend, max_leaves=max_leaves)


@st.composite
def block_documents(draw: st.DrawFn) -> str:
    """Block-style documents whose keys are mostly real config keys, nested at random indentation."""
    lines: list[str] = []
    for _ in range(draw(st.integers(min_value=0, max_value=12))):
        indent = " " * draw(st.sampled_from([0, 0, 0, 2, 2, 4, 6, 1, 3]))
        dash = draw(st.sampled_from(["", "", "", "- "]))
        key = draw(st.sampled_from(KEY_NAMES + ["<<", "unknown_key", "? complex"]))
        value = draw(st.one_of(st.just(""), flow_node(max_leaves=6)))
        lines.append(f"{indent}{dash}{key}: {value}".rstrip())
    return "\n".join(lines) + draw(st.sampled_from(["\n", "", "\r\n", "\n...\n", "\n---\nsecond: doc\n"]))


@st.composite
def valid_config_with_one_value_replaced(draw: st.DrawFn) -> str:
    """A config that passes validation, with one value swapped for hostile text: reaches deep checks."""
    slots = {
        "province": "Gia Lai",
        "list": "list.csv",
        "control_resolver": "1.1.1.1",
        "id": "viettel",
        "name": "Viettel",
        "asn": "7552",
        "resolver": "203.113.131.1",
        "vantage": "{proxy: 'socks5://127.0.0.1:1080'}",
        "fingerprints": "{dns_ips: [10.0.0.1], body_patterns: [blocked], redirect_hosts: [block.vn]}",
        "timeouts": "{dns: 2, connect: 5, tls: 5, http: 10}",
        "concurrency": "8",
        "grace_hours": "24",
        "timezone": "Asia/Ho_Chi_Minh",
        "store": "'sqlite:///audit.db'",
        "output_dir": ".",
        "tls": "{extra_ca_file: null}",
        "network": "{loopback_only: false}",
    }
    slot = draw(st.sampled_from(sorted(slots)))
    slots[slot] = draw(flow_node(max_leaves=6))
    s = slots
    return (
        f"province: {s['province']}\n"
        f"lists: [{s['list']}]\n"
        "canaries: []\n"
        f"control: {{resolvers: [{s['control_resolver']}]}}\n"
        "providers:\n"
        f"  - id: {s['id']}\n"
        f"    name: {s['name']}\n"
        f"    asn: {s['asn']}\n"
        f"    resolvers: [{s['resolver']}]\n"
        f"    vantage: {s['vantage']}\n"
        f"    fingerprints: {s['fingerprints']}\n"
        f"timeouts: {s['timeouts']}\n"
        f"concurrency: {s['concurrency']}\n"
        f"grace_hours: {s['grace_hours']}\n"
        f"timezone: {s['timezone']}\n"
        f"store: {s['store']}\n"
        f"output_dir: {s['output_dir']}\n"
        f"tls: {s['tls']}\n"
        f"network: {s['network']}\n"
    )


def _shared(value: object) -> object:
    # The same object twice in a document: yaml.dump writes an anchor and an alias for it.
    return {"providers": [value, value], "control": value}


DUMPED = st.recursive(
    st.one_of(
        st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=10), st.dates(), st.datetimes()
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.lists(inner, max_size=3).map(tuple),  # !!python/tuple: SafeLoader refuses it
        st.dictionaries(st.sampled_from(KEY_NAMES), inner, max_size=4),
    ),
    max_leaves=15,
).map(lambda value: yaml.dump(_shared(value), allow_unicode=True))

YAML_TEXTS = st.one_of(
    st.text(max_size=200),
    st.text(alphabet=st.sampled_from(list("{}[]:,-?&*!|>'\"#%@` \n\tab1")), max_size=60),
    flow_node(),
    block_documents(),
    valid_config_with_one_value_replaced(),
    DUMPED,
)
LINE_BREAK = re.compile("\r\n|[\r\n\x85\u2028\u2029]")
YAML_FILES = st.one_of(
    YAML_TEXTS.map(lambda text: text.encode("utf-8", "surrogatepass")),
    YAML_TEXTS.map(lambda text: b"\xef\xbb\xbf" + text.encode("utf-8", "surrogatepass")),
    st.binary(max_size=300),
)


@pytest.fixture(scope="module")
def config_dir() -> Iterator[Path]:
    # Module-scoped: hypothesis refuses function-scoped fixtures such as tmp_path.
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory)
        (path / "list.csv").write_text("url\nhttps://example.vn/\n", encoding="utf-8")
        yield path


def assert_config_or_config_error(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    try:
        result = load_config(path)
    except ConfigError as error:
        assert error.problems, "a ConfigError always lists at least one problem"
        # YAML's line breaks, which are also an editor's: CRLF, CR, LF, NEL, LS, PS.
        physical_lines = len(LINE_BREAK.findall(data.decode("utf-8", "replace"))) + 1
        for problem in error.problems:
            assert isinstance(problem, ConfigProblem) and problem.path and problem.message
            assert problem.line is None or 1 <= problem.line <= physical_lines, problem
        assert str(path) in str(error)
    else:
        assert isinstance(result, Config)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(YAML_FILES)
def test_any_config_file_gives_a_config_or_a_config_error(config_dir: Path, data: bytes) -> None:
    assert_config_or_config_error(config_dir / "config.yaml", data)


@pytest.mark.parametrize("source", [s for s in SCALAR_SOURCES if s.startswith("!")])
def test_every_tagged_scalar_gives_a_config_or_a_config_error(config_dir: Path, source: str) -> None:
    # PyYAML's constructors for explicit tags fail with KeyError (`!!bool x`), IndexError (`!!int ''`) and
    # AttributeError (`!!timestamp x`): a hypothesis run can miss one, this cannot.
    for text in (f"province: {source}\n", f"control: {{resolvers: [{source}]}}\n", f"- {source}\n"):
        assert_config_or_config_error(config_dir / "tagged.yaml", text.encode())


# ---------------------------------------------------------------------------------------------------------
# List files: random rows, random bytes, BOM and line-ending mixes, UTF-16, Windows-1258
# ---------------------------------------------------------------------------------------------------------

BIG_CELL = "x" * 200_000  # over the csv module's 128 KiB field limit
CELLS = st.one_of(
    st.sampled_from(
        [
            "", "http://a.example/", "https://b.example:8443/x?y=1", "a.example", "cá-cược.vn.example",
            "http://Trẻem-Việt.vn/Đường", "https://[::1]:8080/", "ftp://x.example/", "http://", "not a url",
            '=HYPERLINK("http://evil.example","x")', "=1+2", "+1", "-1", "@SUM(A1)", "\t=1", "\r=1",
            '"', '""', '"a"', 'a"b', ",", ";", "\t", "\n", "\r\n", "\r", "#", "# comment", " #x", "url",
            "URL", "notes", "2024-01-01", "2024-02-30", "01/02/2024", "GMB", "\ufeff", "\ufffd", "\x85",
            "\u2028", "\x0c", "\x1b", "Vie\u0302\u0323t", BIG_CELL, "http://a.example/" + BIG_CELL,
        ]
    ),
    st.text(max_size=15),
)  # fmt: skip
HEADERS = st.sampled_from(
    [
        "url,category_code,category_description,date_added,source,notes",
        "url;category_code;notes",
        "url\tnotes",
        "notes,URL",
        "url",
        "",  # no header: plain text
        "# plain text list",
        "link,category_code",  # a header without a url column: a ListError
        '"url","notes"',
    ]
)
NEWLINES = st.sampled_from(["\n", "\r\n", "\r"])


@st.composite
def list_texts(draw: st.DrawFn) -> str:
    """A list file's text: a header, then rows of random cells joined by a delimiter, mixed line endings."""
    header = draw(HEADERS)
    delimiter = draw(st.sampled_from([",", ";", "\t", " "]))
    rows = draw(st.lists(st.lists(CELLS, min_size=1, max_size=6), max_size=8))
    lines = [header] + [delimiter.join(cells) for cells in rows]
    return "".join(line + draw(NEWLINES) for line in lines)


def encodable_in_cp1258(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFD", text) if _cp1258_has(c))


def _cp1258_has(char: str) -> bool:
    try:
        char.encode("cp1258")
    except UnicodeEncodeError:
        return False
    return True


LIST_FILES = st.one_of(
    list_texts().map(lambda text: text.encode("utf-8", "surrogatepass")),
    list_texts().map(lambda text: b"\xef\xbb\xbf" + text.encode("utf-8", "surrogatepass")),
    list_texts().map(lambda text: text.encode("utf-16", "surrogatepass")),  # BOM, native order
    list_texts().map(lambda text: "\ufeff".encode("utf-16-be") + text.encode("utf-16-be", "surrogatepass")),
    list_texts().map(lambda text: encodable_in_cp1258(text).encode("cp1258")),
    st.binary(max_size=400),
    st.binary(max_size=400).map(lambda data: data.replace(b"\x00", b"")),  # no NUL: never "not a text file"
    st.tuples(list_texts(), st.binary(max_size=20), list_texts()).map(  # valid text with a damaged middle
        lambda parts: (
            parts[0].encode("utf-8", "surrogatepass") + parts[1] + parts[2].encode("utf-8", "surrogatepass")
        )
    ),
)


def line_bound(data: bytes) -> int:
    """No issue can be on a line after this: an upper bound on the file's physical lines in any encoding."""
    decoded = [data.decode(codec, "replace") for codec in ("utf-8", "utf-16", "utf-32")]
    return 1 + max(len(data.splitlines()), *(len(text.splitlines()) for text in decoded))


def assert_read_or_list_error(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    try:
        result = read_list(path)
    except ListError as error:
        assert str(error).startswith(f"cannot read list {path}: ")
        assert len(str(error)) < 500  # a 1 MB line is never quoted whole
        return
    assert isinstance(result, ListReadResult)
    bound = line_bound(data)
    for issue in result.issues:
        assert issue.file == str(path)
        assert 1 <= issue.line <= bound, issue
        assert len(issue.message) < 500, issue.line
    assert all(1 <= entry.line <= bound for entry in result.entries)
    assert result.rows == len(result.entries) + result.duplicates + result.skipped
    assert result.warnings == (1 if result.encoding == "Windows-1258" else 0)
    for entry in result.entries:
        assert entry.url.isascii() and entry.url.startswith(("http://", "https://"))
        assert "\ufffd" not in entry.url


@pytest.fixture(scope="module")
def list_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as directory:
        yield Path(directory)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(LIST_FILES)
def test_any_list_file_reads_or_is_a_list_error(list_dir: Path, data: bytes) -> None:
    assert_read_or_list_error(list_dir / "list.csv", data)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(["a.example", "b.example/x", "not a url", "", "# c", "Việt.example"]), max_size=8),
       st.lists(NEWLINES, min_size=8, max_size=8), st.booleans())  # fmt: skip
def test_bom_and_line_ending_mixes_keep_line_numbers(
    list_dir: Path, lines: list[str], newlines: list[str], bom: bool
) -> None:
    text = "".join(line + newline for line, newline in zip(lines, newlines, strict=False))
    path = list_dir / "mixed.txt"
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode())
    result = read_list(path)
    # An editor's lines: "\r" then an empty line ending in "\n" is one CRLF, not two line breaks.
    physical = re.split(r"\r\n|\r|\n", text)
    used = [(n, line) for n, line in enumerate(physical, 1) if line and not line.startswith("#")]
    firsts: dict[str, int] = {}
    for n, line in used:
        if line != "not a url":
            firsts.setdefault(line, n)
    assert [e.line for e in result.entries] == sorted(firsts.values())
    assert [i.line for i in result.issues] == [n for n, line in used if line == "not a url"]
    assert result.rows == len(used)
