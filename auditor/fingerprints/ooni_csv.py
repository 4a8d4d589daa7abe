"""Reading OONI's blocking-fingerprints CSVs (github.com/ooni/blocking-fingerprints), the dns or the http one.

Only reading: rows become `Fingerprint`s exactly as written, bad rows become problem strings. Nothing here
compiles a matcher (that is fingerprint_set.py), so the reader can be tested and reused on its own.
"""

from __future__ import annotations

import csv
import functools
import io
import os
import re
from importlib import resources
from typing import IO

from auditor.fingerprints.model import PATTERN_TYPES, Fingerprint, regexp_problem, short

BUILTIN_FILES = ("ooni_fingerprints_dns_vn.csv", "ooni_fingerprints_http_vn.csv")
BUILTIN_ORIGIN = "ooni-builtin"

_REQUIRED_COLUMNS = ("name", "scope", "location_found", "pattern_type", "pattern")
_HEADER_LOCATION = re.compile(r"header\.[!#$%&'*+.^_`|~0-9a-z-]+")  # RFC 9110 token, lower-cased


def load_ooni_csv(path: str | os.PathLike[str]) -> tuple[list[Fingerprint], list[str]]:
    """Read an OONI blocking-fingerprints CSV (either the dns or the http one).

    Returns the fingerprints and the problems, one per skipped row ("PATH:LINE: skipped: ..."). A row is
    skipped when its location_found or pattern_type is unknown (OONI's file has had rows with shifted
    columns), its field count is wrong, its pattern is empty, or its regexp does not compile.
    Raises OSError / UnicodeDecodeError if the file cannot be read, and ValueError if it is not an OONI
    fingerprints CSV at all (no such header) or the CSV itself is broken.
    """
    with open(path, encoding="utf-8-sig", newline="") as fh:
        return parse_ooni_csv(fh, label=str(path), origin=f"file:{path}")


def parse_ooni_csv(fh: IO[str], *, label: str, origin: str) -> tuple[list[Fingerprint], list[str]]:
    """As load_ooni_csv, from an open text file (opened with newline=""); `label` starts each problem and
    each error message, `origin` goes into every fingerprint."""
    reader = csv.reader(fh)
    header = next(reader, None)
    if header is None:
        raise ValueError(f"{label}: empty file, expected an OONI fingerprints CSV header")
    columns = [h.strip().lower() for h in header]
    missing = [c for c in _REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise ValueError(f"{label}: not an OONI fingerprints CSV (no column {', '.join(missing)})")
    col = {name: columns.index(name) for name in columns}

    fingerprints: list[Fingerprint] = []
    problems: list[str] = []
    start = reader.line_num + 1  # the physical line a record starts on (records can span lines)
    rows = iter(reader)
    while True:
        try:
            row = next(rows)
        except StopIteration:
            break
        except csv.Error as exc:  # e.g. a field over csv.field_size_limit(): the rest cannot be trusted
            raise ValueError(f"{label}:{reader.line_num}: unreadable CSV: {exc}") from exc
        line, start = start, reader.line_num + 1
        if not any(field.strip() for field in row):
            continue
        problem = _row_problem(row, col, len(columns))
        if problem:
            problems.append(f"{label}:{line}: skipped: {problem}")
            continue
        fingerprints.append(
            Fingerprint(
                id=row[col["name"]].strip(),
                scope=row[col["scope"]].strip().lower(),
                location=row[col["location_found"]].strip().lower(),
                pattern_type=row[col["pattern_type"]].strip().lower(),
                pattern=row[col["pattern"]],
                origin=origin,
                notes=row[col["notes"]] if "notes" in col and col["notes"] < len(row) else "",
            )
        )
    return fingerprints, problems


def _row_problem(row: list[str], col: dict[str, int], width: int) -> str:
    def get(name: str) -> str:
        i = col[name]
        return row[i] if i < len(row) else ""

    location = get("location_found").strip().lower()
    pattern_type = get("pattern_type").strip().lower()
    if location not in ("dns", "body") and not _HEADER_LOCATION.fullmatch(location):
        return f"unknown location_found {short(get('location_found'))}"
    if pattern_type not in PATTERN_TYPES:
        return f"unknown pattern_type {short(get('pattern_type'))}"
    if len(row) < width or any(field.strip() for field in row[width:]):
        return f"{len(row)} fields, expected {width} (shifted columns?)"
    if not get("name").strip():
        return "no name"
    pattern = get("pattern")
    if pattern == "":
        return "empty pattern"
    if pattern_type == "regexp":
        return regexp_problem(pattern)
    return ""


@functools.cache
def builtin_fingerprints() -> tuple[tuple[Fingerprint, ...], tuple[str, ...]]:
    """The shipped Vietnam rows of OONI's fingerprints (auditor/data, see data/ATTRIBUTION.md), read once."""
    fingerprints: list[Fingerprint] = []
    problems: list[str] = []
    data = resources.files("auditor").joinpath("data")
    for name in BUILTIN_FILES:
        # Decoded whole and read with newline="": the rows' CRLF line ends inside quoted patterns are data
        # (Traversable.open takes no newline argument).
        text = data.joinpath(name).read_bytes().decode("utf-8-sig")
        with io.StringIO(text, newline="") as fh:
            fps, probs = parse_ooni_csv(fh, label=f"auditor/data/{name}", origin=BUILTIN_ORIGIN)
        fingerprints += fps
        problems += probs
    return tuple(fingerprints), tuple(problems)
