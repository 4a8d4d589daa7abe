"""Reading reference lists: the URLs an audit checks, with their categories.

Two formats, told apart by content (see blocklists/FORMAT.md for the user's view):

- CSV whose header has a `url` column, such as the Citizen Lab test lists
  (`url,category_code,category_description,date_added,source,notes`); the other known columns are
  optional and unknown ones are ignored. Comma, semicolon (Excel in locales with a decimal comma) and
  tab delimiters are recognised from the header.
- Plain text: one URL or bare domain per line; blank lines and `#` comments are ignored.

Encodings: UTF-8 (with or without a BOM); UTF-16 or UTF-32 when the file starts with their BOM (Excel's
"Unicode Text"); otherwise a file that is not UTF-8 is read as Windows-1258, the Vietnamese Windows code page
of Excel's plain "CSV", and says so in one issue at line 1. Text is put in NFC, because Windows-1258 writes
most Vietnamese letters as a base letter plus a combining tone mark.

A row that cannot be used becomes a `ListIssue` (file and line) and is skipped; the rest of the file is still
read. Bytes that no encoding above can decode make their row an issue too. A `ListError` is only for a file
that cannot be read as a list at all: it cannot be opened, it holds a NUL byte (not a text file: an .xlsx
workbook, or UTF-16 without a BOM), or its first line is a broken CSV header (no `url` column, a quote never
closed, a field too long to parse), or a CSV row without any header.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from auditor.errors import ListError
from auditor.models import ListEntry, ListIssue
from auditor.urls import UrlError, normalise_url

CITIZEN_LAB_COLUMNS = ("url", "category_code", "category_description", "date_added", "source", "notes")

_DELIMITERS = (",", ";", "\t")
_HEADER_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_ ]*")
# The first line of a Citizen Lab file whose header was lost: "http://x/,NEWS,..."
_HEADERLESS_ROW = re.compile(r"[^,\s]+,[A-Z]{2,6}(?:,|$)")
# Inside a quoted field, a line that starts like a list row ("http://...,") means an opening quote was
# never closed and the field has swallowed the rows after it: the csv module reads on to the next quote,
# or to the end of the file, without complaint.
_SWALLOWED_ROW = re.compile(r"[\r\n]\s*https?://[^\s,;\t]+[,;\t]")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_INLINE_COMMENT = re.compile(r"\s+#")
# Header detection looks at this much of the first line: column names are short, and the csv module refuses
# a field longer than csv.field_size_limit() (128 KiB), which a damaged first line can have.
_HEADER_SCAN = 4096
WINDOWS_1258 = "Windows-1258"


@dataclass(frozen=True)
class ListReadResult:
    """One list file as read: its usable entries, and every row that was skipped, with why."""

    entries: tuple[ListEntry, ...]
    issues: tuple[ListIssue, ...]  # one per skipped row
    path: Path
    rows: int  # data rows seen: not the header, blank lines or comments
    duplicates: int = 0  # rows whose normalised URL an earlier row of the same file already gave
    encoding: str = "UTF-8"  # what the file was read as: UTF-8, UTF-16, UTF-32 or Windows-1258
    warnings: int = 0  # issues that skipped no row (read as Windows-1258); they come first in `issues`

    @property
    def skipped(self) -> int:
        return len(self.issues) - self.warnings


@dataclass(frozen=True)
class ListSet:
    """Several lists read together; an URL in two lists is kept once, from the first list that has it."""

    entries: tuple[ListEntry, ...]
    issues: tuple[ListIssue, ...]
    results: tuple[ListReadResult, ...]

    @property
    def duplicates_across_lists(self) -> int:
        return sum(len(r.entries) for r in self.results) - len(self.entries)


def read_list(path: Path) -> ListReadResult:
    text, encoding, first_bad_line = _read_text(path)
    builder = _ListBuilder(path, encoding)
    if encoding == WINDOWS_1258:
        builder.warn(
            1,
            f"read as {WINDOWS_1258}, the Vietnamese Windows code page, because the file is not UTF-8 (first"
            f" non-UTF-8 byte on line {first_bad_line}); save it as UTF-8 (in Excel: 'CSV UTF-8') so that"
            " no host name can be misread",
        )
    header_line, header_text = _first_content_line(text)
    if header_text is None:
        return builder.result()
    columns = _csv_columns(header_text, path, header_line)
    if columns is None:
        _read_plain_text(text, builder)
    else:
        delimiter, names = columns
        _read_csv(text, delimiter, names, header_line, builder)
    return builder.result()


def read_lists(paths: Iterable[Path]) -> ListSet:
    results = tuple(read_list(path) for path in paths)
    entries: dict[str, ListEntry] = {}
    for result in results:
        for entry in result.entries:
            entries.setdefault(entry.url, entry)
    return ListSet(
        entries=tuple(entries.values()),
        issues=tuple(issue for result in results for issue in result.issues),
        results=results,
    )


def format_validation_report(results: Iterable[ListReadResult]) -> str:
    """What `auditor lists validate FILE...` prints: each skipped row, then one summary line per file."""
    lines: list[str] = []
    for result in results:
        lines.extend(str(issue) for issue in result.issues)
        lines.append(
            f"{result.path}: {result.rows} rows, {len(result.entries)} entries, "
            f"{result.duplicates} duplicates merged, {result.skipped} rows skipped"
        )
    return "\n".join(lines)


class _ListBuilder:
    """Collects the rows of one file: normalises, de-duplicates, and records why rows are skipped."""

    def __init__(self, path: Path, encoding: str = "UTF-8") -> None:
        self.path = path
        self.list_name = path.stem
        self.encoding = encoding
        self.entries: dict[str, ListEntry] = {}
        self.issues: list[ListIssue] = []
        self.rows = 0
        self.duplicates = 0
        self.warnings = 0

    def skip(self, line: int, message: str) -> None:
        self.issues.append(ListIssue(file=str(self.path), line=line, message=message))

    def warn(self, line: int, message: str) -> None:
        self.skip(line, message)
        self.warnings += 1

    def add(self, line: int, raw_url: str, fields: dict[str, str]) -> None:
        if not raw_url:
            self.skip(line, "no URL")
            return
        if "\ufffd" in raw_url:
            # Decoding put U+FFFD where bytes were not valid: the URL's real text is unknown. (In other
            # columns it is left alone: they are only text, and the Citizen Lab lists have it in notes.)
            self.skip(
                line,
                f"the URL contains \ufffd (U+FFFD) where bytes were not valid {self.encoding}, in this file or"
                f" in an earlier conversion: {_show(raw_url)}",
            )
            return
        try:
            url = normalise_url(raw_url)
        except UrlError as exc:
            self.skip(line, f"bad URL {_show(raw_url)}: {exc}")
            return
        date_text = fields.get("date_added", "")
        date_added = None
        if date_text:
            try:
                if not _DATE.fullmatch(date_text):
                    raise ValueError
                date_added = dt.date.fromisoformat(date_text)
            except ValueError:
                self.skip(line, f"bad date_added {_show(date_text)}: expected YYYY-MM-DD, e.g. 2024-03-31")
                return
        if url.url in self.entries:
            self.duplicates += 1  # the first row's metadata is kept
            return
        self.entries[url.url] = ListEntry(
            url=url.url,
            host=url.host,
            list_name=self.list_name,
            line=line,
            category_code=fields.get("category_code", ""),
            category_description=fields.get("category_description", ""),
            date_added=date_added,
            source=fields.get("source", ""),
            notes=fields.get("notes", ""),
        )

    def result(self) -> ListReadResult:
        return ListReadResult(
            entries=tuple(self.entries.values()),
            issues=tuple(self.issues),
            path=self.path,
            rows=self.rows,
            duplicates=self.duplicates,
            encoding=self.encoding,
            warnings=self.warnings,
        )


def _read_text(path: Path) -> tuple[str, str, int]:
    """The file's text, the encoding it was read as, and (for Windows-1258) the first line that is not UTF-8."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ListError(f"cannot read list {path}: {exc.strerror or exc}") from None
    text, encoding, first_bad_line = _decode(data)
    nul = text.find("\0")
    if nul >= 0:
        raise _unreadable(
            path,
            f"line {_line_of(text, nul)} has a NUL byte: this is not a text file",
            "an Excel workbook (.xlsx) or UTF-16 without a byte-order mark? In Excel, save as 'CSV UTF-8'",
        )
    return text, encoding, first_bad_line


def _decode(data: bytes) -> tuple[str, str, int]:
    # errors="replace" everywhere: undecodable bytes become U+FFFD, which makes their row an issue.
    # UTF-32 first: its little-endian BOM starts with UTF-16's.
    if data.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        return data.decode("utf-32", "replace"), "UTF-32", 0
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):  # Excel's "Unicode Text"
        return data.decode("utf-16", "replace"), "UTF-16", 0
    try:
        return data.decode("utf-8-sig"), "UTF-8", 0  # the BOM that Excel's "CSV UTF-8" writes is dropped
    except UnicodeDecodeError as exc:
        first_bad_line = len((data[: exc.start] + b"x").splitlines())
    if data.startswith(codecs.BOM_UTF8) or _damaged_utf8(data):
        return data.decode("utf-8-sig", "replace"), "UTF-8", 0
    # Windows-1258 has no precomposed form for most Vietnamese letters: "ệ" is "ê" plus a combining dot
    # below. NFC makes the text what a UTF-8 editor would have written; host names get NFC anyway (UTS 46).
    return unicodedata.normalize("NFC", data.decode("cp1258", "replace")), WINDOWS_1258, first_bad_line


def _damaged_utf8(data: bytes) -> bool:
    """Whether bytes that are not valid UTF-8 are still UTF-8 with a little damage, not Windows-1258.

    Counted by character: at least as many valid non-ASCII UTF-8 characters as invalid bytes. Vietnamese in
    Windows-1258 almost never forms a valid UTF-8 sequence (its letters are bytes that start a sequence in
    UTF-8, followed by ASCII or another letter, not by the continuation byte UTF-8 needs), while reading a
    UTF-8 file with one bad byte as Windows-1258 would garble every Vietnamese host name in it.
    """
    text = data.decode("utf-8", "replace")
    bad = text.count("\ufffd")
    non_ascii = len(text) - len(text.encode("ascii", "ignore"))
    return non_ascii - bad >= bad


def _unreadable(path: Path, reason: str, hint: str) -> ListError:
    error = ListError(f"cannot read list {path}: {reason}")
    error.hint = hint
    return error


def _line_of(text: str, position: int) -> int:
    """The 1-based physical line of `text` that holds the character at `position`."""
    return sum(1 for _ in _physical_lines(text[:position] + "x"))


def _clip(text: str, limit: int = 80) -> str:
    """Text shortened for a message: a 1 MB cell must not make a 1 MB message."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _show(text: str) -> str:
    return repr(_clip(text))


def _physical_lines(text: str) -> Iterator[str]:
    # newline="" splits on \n, \r\n and \r without translating them, as the csv module expects; unlike
    # str.splitlines it does not also split on \x0c, \u2028 and the like, so line numbers match editors.
    return iter(io.StringIO(text, newline=""))


def _first_content_line(text: str) -> tuple[int, str | None]:
    for number, line in enumerate(_physical_lines(text), start=1):
        if line.strip():
            return number, line.strip()
    return 0, None


def _csv_columns(line: str, path: Path, line_number: int) -> tuple[str, list[str]] | None:
    """The delimiter and the lower-cased column names, when `line` is a CSV header; None for plain text."""
    if line.startswith("#"):
        return None
    head = line[:_HEADER_SCAN]
    for delimiter in _DELIMITERS:
        names = [name.strip().lower() for name in next(csv.reader([head], delimiter=delimiter), [])]
        if "url" in names:
            return delimiter, names
    names = [name.strip() for name in head.split(",")]
    if len(names) > 1 and all(_HEADER_NAME.fullmatch(name) for name in names):
        raise ListError(
            f"cannot read list {path}: line {line_number} looks like a CSV header but has no 'url' column"
            f" (columns: {_clip(', '.join(names))})"
        )
    if _HEADERLESS_ROW.match(head):
        raise ListError(
            f"cannot read list {path}: line {line_number} looks like a CSV row but the file has no header;"
            f" add the line '{','.join(CITIZEN_LAB_COLUMNS)}' at the top"
        )
    return None


def _read_csv(text: str, delimiter: str, names: list[str], header_line: int, builder: _ListBuilder) -> None:
    # First occurrence wins when a column name repeats; unknown columns are never looked at.
    index = {name: names.index(name) for name in CITIZEN_LAB_COLUMNS if name in names}
    url_index = index.pop("url")
    reader = csv.reader(_physical_lines(text), delimiter=delimiter)
    end_of_previous_row = 0
    while True:
        start = end_of_previous_row + 1  # blank lines come back as empty rows, so this is exact
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            if start <= header_line:
                raise ListError(
                    f"cannot read list {builder.path}: line {header_line}: cannot parse the CSV header: {exc}"
                ) from None
            builder.rows += 1
            builder.skip(start, f"cannot parse CSV row: {exc}")
            end_of_previous_row = reader.line_num
            continue
        end_of_previous_row = reader.line_num
        if start < header_line:
            continue  # blank lines before the header
        if start == header_line:
            if reader.line_num != header_line:
                # An unclosed quote in the header swallows the rows after it, and the file reads as empty.
                raise ListError(
                    f'cannot read list {builder.path}: line {header_line}: a quote (") in the CSV header is'
                    f" not closed on that line, so the header runs on to line {reader.line_num}"
                )
            continue
        if not any(field.strip() for field in row):
            continue
        builder.rows += 1
        if any("\n" in field or "\r" in field for field in row):
            if any(_SWALLOWED_ROW.search(field) for field in row):
                builder.skip(
                    start,
                    f"a quoted field runs from line {start} to line {reader.line_num} and seems to contain"
                    ' further rows: is a closing quote (") missing?',
                )
                continue
            row = [field.replace("\r\n", "\n").replace("\r", "\n") for field in row]
        fields = {name: row[i].strip() for name, i in index.items() if i < len(row)}
        raw_url = row[url_index].strip() if url_index < len(row) else ""
        builder.add(start, raw_url, fields)


def _read_plain_text(text: str, builder: _ListBuilder) -> None:
    for number, line in enumerate(_physical_lines(text), start=1):
        content = _INLINE_COMMENT.split(line.strip(), maxsplit=1)[0]
        if not content or content.startswith("#"):
            continue
        builder.rows += 1
        if len(content.split()) > 1:
            builder.skip(
                number,
                f"more than one word in {_show(content)}: write one URL per line (a space in a path is %20)",
            )
            continue
        builder.add(number, content, {})
