"""The generic checks every config section is built from: shapes (mapping, list, text, number, path) and
the wording of their problems. A check returns the converted value, or None after recording a problem,
so that one pass over the document reports every problem at once.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from auditor.config.lines import join, parent
from auditor.config.storeurl import absolute_path
from auditor.errors import ConfigError, ConfigProblem

EXAMPLE_FILE = "config.example.yaml"
HINT = f"{EXAMPLE_FILE} shows every key, with comments"
MISSING: Final = object()  # what Checker.required returns for an absent or null key

_URL_CREDENTIALS = re.compile(r"(?i)([a-z][a-z0-9+.-]*://)[^/?#@\s]*@")


class Checker:
    """Collects problems while converting the document; each check returns None for a bad value."""

    def __init__(self, base_dir: Path, lines: Mapping[str, int]) -> None:
        self.base_dir = base_dir
        self.lines = lines
        self.problems: list[ConfigProblem] = []

    def add(self, path: str, message: str) -> None:
        self.problems.append(ConfigProblem(path or "(top level)", message, self._line(path)))

    def _line(self, path: str) -> int | None:
        while path:
            if path in self.lines:
                return self.lines[path]
            path = parent(path)
        return None

    def error(self, source: str) -> ConfigError:
        # Problems in file order make them easy to fix top to bottom; those without a line come first.
        problems = sorted(self.problems, key=lambda p: (p.line is not None, p.line or 0))
        error = ConfigError(source, problems)
        error.hint = HINT
        return error

    def mapping(
        self, value: object, path: str, allowed: tuple[str, ...], example: str
    ) -> dict[Any, Any] | None:
        if not isinstance(value, dict):
            self.add(path, f"must be a mapping, e.g. {example}; got {kind(value)}")
            return None
        for key in value:
            if not (isinstance(key, str) and key in allowed):
                self.add(join(path, key), unknown_key(key, allowed))
        return value

    def required(self, mapping: dict[Any, Any], path: str, key: str, what: str) -> object:
        """The value at `key`, or MISSING (reported) when it is absent or null."""
        value = mapping.get(key)
        if value is None:
            state = "is empty" if key in mapping else "is required"
            self.add(join(path, key), f"{state}: {what}")
            return MISSING
        return value

    def sequence(self, value: object, path: str, example: str) -> list[Any] | None:
        if isinstance(value, str):
            self.add(
                path,
                f"must be a list, not a single string; write [{value.strip()}]"
                if len(value) < 200
                else "must be a list, not a single string",
            )
            return None
        if not isinstance(value, (list, tuple)):
            self.add(path, f"must be a list, e.g. {example}; got {kind(value)}")
            return None
        return list(value)

    def text(self, value: object, path: str, example: str) -> str | None:
        if not isinstance(value, str):
            self.add(path, f"must be text, e.g. {example}; got {kind(value)}{quote_hint(value)}")
            return None
        if not value.strip():
            self.add(path, f"must not be empty, e.g. {example}")
            return None
        return value.strip()

    def number(self, value: object, path: str, low: float, high: float, what: str) -> float | None:
        if (
            isinstance(value, (int, float))
            and not isinstance(value, bool)
            and math.isfinite(value)
            and low <= value <= high
        ):
            return float(value)
        got = f"; got {kind(value)}" if not is_number(value) else ""
        self.add(path, f"{what}{got}")
        return None

    def integer(self, value: object, path: str, low: int, high: int, what: str) -> int | None:
        if isinstance(value, int) and not isinstance(value, bool) and low <= value <= high:
            return value
        got = "" if isinstance(value, int) and not isinstance(value, bool) else f"; got {kind(value)}"
        self.add(path, f"{what}{got}")
        return None

    def boolean(self, value: object, path: str) -> bool | None:
        if isinstance(value, bool):
            return value
        self.add(path, f"must be true or false (without quotes); got {kind(value)}")
        return None

    def path(self, raw: str, where: str) -> Path | None:
        """A path from the config, made absolute: relative ones are read from the config file's directory."""
        try:
            return absolute_path(raw, self.base_dir)
        except (RuntimeError, ValueError, OSError) as exc:  # e.g. ~nobody-known
            self.add(where, bad_path(exc))
            return None

    def existing_file(self, value: object, where: str, what: str, example: str) -> Path | None:
        raw = self.text(value, where, example)
        if raw is None:
            return None
        found = self.path(raw, where)
        if found is None:
            return None
        try:
            is_file, is_dir = found.is_file(), found.is_dir()
        except (OSError, ValueError) as exc:
            self.add(where, f"cannot be checked ({exc}); write the path of an existing {what}")
            return None
        if is_file:
            return found
        relative = (
            "" if Path(raw).expanduser().is_absolute() else f" ({show(raw)} is read from {self.base_dir})"
        )
        if is_dir:
            self.add(where, f"{found} is a directory; write the path of a {what}, e.g. {example}")
        else:
            self.add(where, f"{what} not found: {found}{relative}; check the path or create the file")
        return None

    def items(self, mapping: dict[Any, Any], path: str, key: str, example: str) -> list[tuple[str, Any]]:
        """(path, item) for each item of an optional list; [] if absent or not a list (reported)."""
        value = mapping.get(key)
        if value is None:
            return []
        where = join(path, key)
        items = self.sequence(value, where, example)
        return [(f"{where}[{i}]", item) for i, item in enumerate(items or ())]


def kind(value: object) -> str:
    """What a value is, for "got ...": the text itself (shortened, passwords masked), or its type."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the text {show(value)}"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"a {type(value).__name__}"  # e.g. a date YAML read from 2024-01-01


def show(text: str, limit: int = 60) -> str:
    """A value quoted for a message: shortened, and with any URL password masked wherever it was put."""
    text = _URL_CREDENTIALS.sub(r"\1***@", text)
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")


def is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def quote_hint(value: object) -> str:
    if value is None or isinstance(value, (str, list, tuple, dict)):
        return ""
    return "; put it in quotes if it is meant as text"


def bad_path(exc: BaseException | str) -> str:
    return f"is not a usable path ({exc}); write a path like reports or /var/lib/auditor"


def unknown_key(key: object, allowed: tuple[str, ...]) -> str:
    name = str(key)
    close = difflib.get_close_matches(name, allowed, n=1) if isinstance(key, str) else []
    if close:
        return f"unknown key {show(name)}; did you mean {close[0]!r}?"
    return f"unknown key {show(name)}; expected one of: {', '.join(allowed)}"
