"""Reading reference lists: the URLs an audit checks, with their categories.

Two formats, told apart by content (see blocklists/FORMAT.md for the user's view):

- CSV whose header has a `url` column, such as the Citizen Lab test lists
  (`url,category_code,category_description,date_added,source,notes`); the other known columns are
  optional and unknown ones are ignored. Comma, semicolon (Excel in locales with a decimal comma) and
  tab delimiters are recognised from the header.
- Plain text: one URL or bare domain per line; blank lines and `#` comments are ignored.

A row that cannot be used becomes a `ListIssue` (file and line) and is skipped; the rest of the file is still
read. Only a file that cannot be read or decoded at all is a `ListError`.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import re
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


@dataclass(frozen=True)
class ListReadResult:
    """One list file as read: its usable entries, and every row that was skipped, with why."""

    entries: tuple[ListEntry, ...]
    issues: tuple[ListIssue, ...]  # one per skipped row
    path: Path
    rows: int  # data rows seen: not the header, blank lines or comments
    duplicates: int = 0  # rows whose normalised URL an earlier row of the same file already gave

    @property
    def skipped(self) -> int:
        return len(self.issues)


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
    text = _read_text(path)
    header_line, header_text = _first_content_line(text)
    if header_text is None:
        return ListReadResult(entries=(), issues=(), path=path, rows=0)
    columns = _csv_columns(header_text, path, header_line)
    builder = _ListBuilder(path)
    if columns is None:
        _read_plain_text(text, builder)
    else:
        delimiter, names = columns
        _read_csv(text, delimiter, names, builder)
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

    def __init__(self, path: Path) -> None:
        self.path = path
        self.list_name = path.stem
        self.entries: dict[str, ListEntry] = {}
        self.issues: list[ListIssue] = []
        self.rows = 0
        self.duplicates = 0

    def skip(self, line: int, message: str) -> None:
        self.issues.append(ListIssue(file=str(self.path), line=line, message=message))

    def add(self, line: int, raw_url: str, fields: dict[str, str]) -> None:
        if not raw_url:
            self.skip(line, "no URL")
            return
        try:
            url = normalise_url(raw_url)
        except UrlError as exc:
            self.skip(line, f"bad URL {raw_url!r}: {exc}")
            return
        date_text = fields.get("date_added", "")
        date_added = None
        if date_text:
            try:
                if not _DATE.fullmatch(date_text):
                    raise ValueError
                date_added = dt.date.fromisoformat(date_text)
            except ValueError:
                self.skip(line, f"bad date_added {date_text!r}: expected YYYY-MM-DD, e.g. 2024-03-31")
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
        )


def _read_text(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ListError(f"cannot read list {path}: {exc.strerror or exc}") from None
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise _not_utf8(path, "it is UTF-16")
    try:
        return data.decode("utf-8-sig")  # the BOM that Excel's "CSV UTF-8" writes is dropped
    except UnicodeDecodeError as exc:
        # Decoding leniently would turn a Windows-1258 list into wrong host names without a word.
        line = data.count(b"\n", 0, exc.start) + 1
        raise _not_utf8(path, f"byte 0x{data[exc.start]:02x} on line {line} is not UTF-8") from None


def _not_utf8(path: Path, reason: str) -> ListError:
    error = ListError(f"cannot read list {path}: {reason}")
    error.hint = "save the file as UTF-8 (in Excel: 'CSV UTF-8'); Windows-1258 and UTF-16 are not read"
    return error


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
    for delimiter in _DELIMITERS:
        names = [name.strip().lower() for name in next(csv.reader([line], delimiter=delimiter))]
        if "url" in names:
            return delimiter, names
    names = [name.strip() for name in line.split(",")]
    if len(names) > 1 and all(_HEADER_NAME.fullmatch(name) for name in names):
        raise ListError(
            f"cannot read list {path}: line {line_number} looks like a CSV header but has no 'url' column"
            f" (columns: {', '.join(names)})"
        )
    if _HEADERLESS_ROW.match(line):
        raise ListError(
            f"cannot read list {path}: line {line_number} looks like a CSV row but the file has no header;"
            f" add the line '{','.join(CITIZEN_LAB_COLUMNS)}' at the top"
        )
    return None


def _read_csv(text: str, delimiter: str, names: list[str], builder: _ListBuilder) -> None:
    # First occurrence wins when a column name repeats; unknown columns are never looked at.
    index = {name: names.index(name) for name in CITIZEN_LAB_COLUMNS if name in names}
    url_index = index.pop("url")
    reader = csv.reader(_physical_lines(text), delimiter=delimiter)
    header_seen = False
    end_of_previous_row = 0
    while True:
        start = end_of_previous_row + 1  # blank lines come back as empty rows, so this is exact
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            builder.rows += 1
            builder.skip(start, f"cannot parse CSV row: {exc}")
            end_of_previous_row = reader.line_num
            continue
        end_of_previous_row = reader.line_num
        if not any(field.strip() for field in row):
            continue
        if not header_seen:
            header_seen = True
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
                f"more than one word in {content!r}: write one URL per line (a space in a path is %20)",
            )
            continue
        builder.add(number, content, {})
