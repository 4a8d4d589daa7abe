"""Where audit results are kept: `open_store(url)` picks the implementation from the store URL's scheme.

The URL is parsed once, by auditor.config.storeurl (its docstring lists the forms); the config hands over
that StoreUrl. A plain string (tests, tools) goes through the same parser, relative paths read from the
current directory.

Adding a server database means one module next to `sqlite.py`, one line in `_OPENERS` and one parser in
auditor.config.storeurl.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from auditor.config.storeurl import (
    SCHEMES,
    StoreUrl,
    StoreUrlError,
    StoreUrlProblem,
    parse_store_url,
    redact_url,
)
from auditor.errors import StoreError
from auditor.store.interface import Store
from auditor.store.sqlite import SqliteStore

__all__ = ["SqliteStore", "Store", "open_store"]


def _open_sqlite(url: StoreUrl) -> Store:
    if url.in_memory:
        return SqliteStore(":memory:")
    try:
        Path(url.location).parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create the directory of store {url.location}: {exc}") from exc
    return SqliteStore(url.location)


# scheme (as in auditor.config.storeurl.SCHEMES) -> opener
_OPENERS: dict[str, Callable[[StoreUrl], Store]] = {
    "sqlite": _open_sqlite,
}


def open_store(url: StoreUrl | str) -> Store:
    """Open (creating if needed) the store named by `url`; a StoreError says what is wrong with it."""
    store_url = url if isinstance(url, StoreUrl) else _parse(url)
    opener = _OPENERS.get(store_url.scheme)
    if opener is None:  # a parser without an opener: tests/test_store.py keeps the two in step
        raise StoreError(f"no store module opens {store_url.scheme}:// URLs")
    return opener(store_url)


def _parse(text: str) -> StoreUrl:
    try:
        return parse_store_url(text)
    except StoreUrlError as exc:
        raise StoreError(_problem(redact_url(text), exc)) from None


def _problem(url: str, exc: StoreUrlError) -> str:
    if exc.problem in (StoreUrlProblem.NO_SCHEME, StoreUrlProblem.UNSUPPORTED_SCHEME):
        supported = ", ".join(f"{s}://" for s in SCHEMES)
        shown = f"scheme {exc.scheme!r}" if exc.problem is StoreUrlProblem.UNSUPPORTED_SCHEME else "no scheme"
        return (
            f"unsupported store URL {url!r} ({shown}): supported schemes are {supported} "
            "(e.g. sqlite:///audit.db); a server database would be a future store module"
        )
    if exc.problem is StoreUrlProblem.HOST:
        return (
            f"bad store URL {url!r}: a SQLite URL has no host; write sqlite:///relative/path.db "
            "or sqlite:////absolute/path.db"
        )
    if exc.problem is StoreUrlProblem.NO_PATH:
        return f"bad store URL {url!r}: no file name after sqlite:///"
    if exc.problem is StoreUrlProblem.QUERY:
        return f"bad store URL {url!r}: query parameters are not supported"
    return f"bad store URL {url!r}: {exc.detail or exc}"
