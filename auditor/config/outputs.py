"""Where results go: `store` (the database, a StoreUrl) and `output_dir` (the reports and CSVs)."""

from __future__ import annotations

from pathlib import Path

from auditor.config.checks import Checker, bad_path, kind, show
from auditor.config.storeurl import (
    MEMORY_STORE,
    StoreUrl,
    StoreUrlError,
    StoreUrlProblem,
    default_store_url,
    parse_store_url,
)

_STORE_FORMS = (
    "supported: sqlite:///PATH (a relative PATH is read from the config file's directory; "
    "sqlite:////var/lib/auditor/audit.db for an absolute one), sqlite:///:memory: (nothing kept), "
    "or an empty string for the default file in the user's data directory"
)


def store(check: Checker, value: object, path: str) -> StoreUrl:
    """The store URL; its default (absent, null or empty) is the file in the user's data directory."""
    if value is not None and not isinstance(value, str):
        check.add(path, f"must be a store URL; {_STORE_FORMS}; got {kind(value)}")
        return MEMORY_STORE
    url = (value or "").strip() or default_store_url()
    try:
        found = parse_store_url(url, check.base_dir)
    except StoreUrlError as exc:
        check.add(path, _store_problem(url, exc))
        return MEMORY_STORE
    if found.scheme == "sqlite" and not found.in_memory:
        try:
            is_dir = Path(found.location).is_dir()
        except (OSError, ValueError):
            is_dir = False
        if is_dir:
            check.add(
                path,
                f"{found.location} is a directory; write a database file path, "
                f"e.g. sqlite:///{found.location}/audit.db",
            )
    return found


def _store_problem(url: str, exc: StoreUrlError) -> str:
    problem = exc.problem
    if problem is StoreUrlProblem.NO_SCHEME:
        return f"{show(url)} is not a store URL; {_STORE_FORMS}"
    if problem is StoreUrlProblem.UNSUPPORTED_SCHEME:
        return f"unsupported store {show(exc.scheme)}; {_STORE_FORMS}"
    if problem is StoreUrlProblem.QUERY:
        return f"query parameters are not supported in the store URL; {_STORE_FORMS}"
    if problem is StoreUrlProblem.BAD_PATH:
        return bad_path(exc.detail)
    # HOST, NO_PATH
    return (
        "a SQLite URL is sqlite:/// (three slashes) then a file path, e.g. sqlite:///audit.db; "
        + _STORE_FORMS
    )


def output_dir(check: Checker, value: object, path: str) -> Path:
    if value is None:
        return check.base_dir / "reports"
    raw = check.text(value, path, "reports")
    found = check.path(raw, path) if raw is not None else None
    if found is None:
        return Path("reports")
    try:
        not_a_dir = found.exists() and not found.is_dir()
    except (OSError, ValueError):
        not_a_dir = False
    if not_a_dir:
        check.add(
            path,
            f"{found} exists and is not a directory; write a directory for the reports, e.g. reports",
        )
    return found
