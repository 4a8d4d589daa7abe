"""Where audit results are kept: `open_store(url)` picks the implementation from the URL's scheme.

    sqlite:///relative/path.db     relative to the current directory
    sqlite:////absolute/path.db    absolute (four slashes), as in SQLAlchemy
    sqlite:///~/audit.db           the user's home directory
    sqlite:///:memory:             in memory, gone on close (tests)

Adding a server database means one module next to `sqlite.py` and one line in `_OPENERS`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from auditor.errors import StoreError
from auditor.store.interface import Store
from auditor.store.sqlite import SqliteStore

__all__ = ["SqliteStore", "Store", "open_store"]


def _open_sqlite(url: str, rest: str) -> Store:
    host, slash, path = rest.partition("/")
    if host or not slash:
        raise StoreError(
            f"bad store URL {url!r}: a SQLite URL has no host; write sqlite:///relative/path.db "
            "or sqlite:////absolute/path.db"
        )
    if not path:
        raise StoreError(f"bad store URL {url!r}: no file name after sqlite:///")
    if path == ":memory:":
        return SqliteStore(path)
    path = os.path.expanduser(path)
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create the directory of store {path}: {exc}") from exc
    return SqliteStore(path)


# scheme -> opener(full url, text after "scheme://")
_OPENERS: dict[str, Callable[[str, str], Store]] = {
    "sqlite": _open_sqlite,
}


def open_store(url: str) -> Store:
    """Open (creating if needed) the store named by `url`; a StoreError says what is wrong with it."""
    scheme, sep, rest = url.partition("://")
    opener = _OPENERS.get(scheme.lower()) if sep else None
    if opener is None:
        supported = ", ".join(f"{s}://" for s in _OPENERS)
        shown = f"scheme {scheme!r}" if sep else "no scheme"
        raise StoreError(
            f"unsupported store URL {url!r} ({shown}): supported schemes are {supported} "
            "(e.g. sqlite:///audit.db); a server database would be a future store module"
        )
    return opener(url, rest)
