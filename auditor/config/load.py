"""Reading a config: the file, its YAML (with the line of every key), then the checks of auditor.config.document.

Every problem is reported at once, with its key path and YAML line, in one ConfigError.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import yaml

from auditor.config.checks import EXAMPLE_FILE, HINT, Checker
from auditor.config.document import config
from auditor.config.lines import key_lines
from auditor.config.model import Config
from auditor.errors import ConfigError, ConfigProblem


def load_config(path: Path) -> Config:
    """Read and validate a YAML config file; raise ConfigError listing every problem, with line numbers."""
    path = Path(path)
    source = str(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise _file_error(
            source,
            "no such file",
            f"copy {EXAMPLE_FILE} to {source} and edit it, or pass -c/--config PATH",
        ) from None
    except IsADirectoryError:
        raise _file_error(
            source, "is a directory, not a YAML file", "pass -c/--config PATH/TO/config.yaml"
        ) from None
    except OSError as exc:
        raise _file_error(
            source, f"cannot be read: {exc.strerror or exc}", "check the path and permissions"
        ) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _file_error(
            source, f"is not UTF-8 text (bad byte at offset {exc.start})", "save it as UTF-8"
        ) from None

    loader: yaml.SafeLoader | None = None
    try:
        loader = yaml.SafeLoader(text)  # the reader already rejects control characters here
        node = loader.get_single_node()
        lines, duplicates = key_lines(node)
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        raise _yaml_error(source, exc) from None
    except yaml.YAMLError as exc:
        raise _file_error(source, f"is not valid YAML: {exc}", "check the YAML syntax") from None
    except RecursionError:
        raise _file_error(source, "is nested too deeply to be a config", HINT) from None
    # The constructor raises plain errors too, e.g. ValueError for a date like 2024-02-30.
    except (ValueError, TypeError, OverflowError) as exc:
        raise _file_error(source, f"has a value YAML cannot read: {exc}", "quote the value") from None
    # PyYAML's constructors for explicit tags fail on a value not of their type with bare errors:
    # KeyError for `!!bool x`, IndexError for `!!int ''`, AttributeError for `!!timestamp x`.
    except (LookupError, AttributeError):
        raise _file_error(
            source,
            "has a value with a tag (!!bool, !!int, !!float, !!timestamp) that it does not match",
            "remove the tag or fix the value",
        ) from None
    finally:
        if loader is not None:
            loader.dispose()
    found = _parse(data, path.parent, source, lines, duplicates)
    return replace(found, source=path)


def parse_config(
    data: object, base_dir: Path, source: str = "<config>", *, lines: Mapping[str, int] | None = None
) -> Config:
    """Validate an already-parsed document; relative paths are read from `base_dir`.

    `lines` maps key paths (as in ConfigProblem.path) to 1-based YAML lines; problems at a path without
    a line of its own take the line of the nearest enclosing key.
    """
    return _parse(data, base_dir, source, lines or {}, [])


def _parse(
    data: object, base_dir: Path, source: str, lines: Mapping[str, int], early: list[ConfigProblem]
) -> Config:
    check = Checker(Path(os.path.abspath(base_dir)), lines)
    check.problems.extend(early)
    if data is None:
        check.add("", f"the file is empty; copy {EXAMPLE_FILE} and edit it")
        raise check.error(source)
    found = config(check, data)
    if check.problems or found is None:
        raise check.error(source)
    return found


def _file_error(source: str, message: str, hint: str) -> ConfigError:
    error = ConfigError(source, [ConfigProblem("(file)", f"{message}; {hint}")])
    error.hint = hint
    return error


def _yaml_error(source: str, exc: yaml.MarkedYAMLError) -> ConfigError:
    mark = exc.problem_mark or exc.context_mark
    what = " ".join(part for part in (exc.context, exc.problem) if part) or "invalid YAML"
    where = f" (column {mark.column + 1})" if mark is not None else ""
    hint = "fix the YAML syntax near that line (indentation, a missing ':' or an unclosed quote or bracket)"
    error = ConfigError(
        source,
        [ConfigProblem("(yaml)", f"{what}{where}; {hint}", mark.line + 1 if mark is not None else None)],
    )
    error.hint = hint
    return error
