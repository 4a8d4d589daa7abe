"""The store URL, parsed once: the config reads `store:` into a StoreUrl, and the store and the run lock
take that value instead of parsing the text again.

    sqlite:///relative/path.db     relative to the config file's directory (to the current one from code)
    sqlite:////absolute/path.db    absolute (four slashes), as in SQLAlchemy
    sqlite:///~/audit.db           the user's home directory
    sqlite:///:memory:             in memory, gone on close (tests)

A server database (e.g. postgresql://user:pass@host:5432/audit) is one more parser in `_PARSERS` here and
one more opener in auditor.store. Its password stays in `StoreUrl.url`, which only the store's driver
reads: str(), repr() and redacted() never show it.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


class StoreUrlProblem(enum.Enum):
    """Why a text is not a store URL; the config and open_store each word it for their readers."""

    NO_SCHEME = "no scheme"
    UNSUPPORTED_SCHEME = "unsupported scheme"
    HOST = "a SQLite URL has a host"  # sqlite://host/audit.db: two slashes, or a host
    NO_PATH = "no file name"
    QUERY = "query parameters"
    BAD_PATH = "unusable path"  # e.g. ~nobody-known/audit.db


class StoreUrlError(ValueError):
    def __init__(self, problem: StoreUrlProblem, scheme: str = "", detail: str = "") -> None:
        super().__init__(f"{problem.value}: {detail}" if detail else problem.value)
        self.problem = problem
        self.scheme = scheme  # as written, for "unsupported scheme"
        self.detail = detail  # the path error, for BAD_PATH


@dataclass(frozen=True)
class StoreUrl:
    """Where results are kept. `location` says it without credentials; `url` is for the driver only."""

    scheme: str  # lower-case: "sqlite"
    location: str  # sqlite: the database file, absolute, or ":memory:"
    url: str = field(repr=False)  # canonical; a server's may hold a password (so not in repr)

    @property
    def in_memory(self) -> bool:
        return self.scheme == "sqlite" and self.location == ":memory:"

    def redacted(self) -> str:
        """The URL for logs, messages and reports: a password shows as ***."""
        return redact_url(self.url)

    def __str__(self) -> str:
        return self.redacted()


MEMORY_STORE = StoreUrl("sqlite", ":memory:", "sqlite:///:memory:")


def parse_store_url(text: str, base_dir: Path | None = None) -> StoreUrl:
    """The store URL in `text`; a relative file path is read from `base_dir` (the current directory when
    None). Raises StoreUrlError. Checks nothing on disk: whether the file can be used is the store's job."""
    scheme, sep, rest = text.partition("://")
    if not sep:
        raise StoreUrlError(StoreUrlProblem.NO_SCHEME)
    parser = _PARSERS.get(scheme.lower())
    if parser is None:
        raise StoreUrlError(StoreUrlProblem.UNSUPPORTED_SCHEME, scheme)
    return parser(rest, base_dir)


def absolute_path(raw: str, base_dir: Path | None) -> Path:
    """`raw` with ~ expanded, made absolute from `base_dir` (or the current directory).

    Raises RuntimeError, ValueError or OSError for a path that cannot be made (e.g. ~nobody-known)."""
    candidate = Path(raw).expanduser()
    if not candidate.is_absolute():
        candidate = (base_dir if base_dir is not None else Path.cwd()) / candidate
    return Path(os.path.abspath(candidate))


def redact_url(url: str) -> str:
    """`url` with the password of its user information (scheme://user:password@host) replaced by ***."""
    scheme, sep, rest = url.partition("://")
    cut = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    userinfo, at, host = rest[:cut].rpartition("@")
    if not (sep and at and ":" in userinfo):
        return url
    return f"{scheme}://{userinfo.split(':', 1)[0]}:***@{host}{rest[cut:]}"


def _parse_sqlite(rest: str, base_dir: Path | None) -> StoreUrl:
    host, slash, file = rest.partition("/")
    if host or not slash:
        raise StoreUrlError(StoreUrlProblem.HOST, "sqlite")
    if not file:
        raise StoreUrlError(StoreUrlProblem.NO_PATH, "sqlite")
    if file == ":memory:":
        return MEMORY_STORE
    if "?" in file or "#" in file:
        raise StoreUrlError(StoreUrlProblem.QUERY, "sqlite")
    try:
        path = absolute_path(file, base_dir)
    except (RuntimeError, ValueError, OSError) as exc:
        raise StoreUrlError(StoreUrlProblem.BAD_PATH, "sqlite", str(exc)) from None
    return StoreUrl("sqlite", str(path), f"sqlite:///{path}")


# lower-case scheme -> parser(text after "scheme://", base directory)
_PARSERS: dict[str, Callable[[str, Path | None], StoreUrl]] = {
    "sqlite": _parse_sqlite,
}
SCHEMES = tuple(_PARSERS)  # auditor.store has an opener for each (tests/test_store.py checks)


def default_store_url() -> str:
    """sqlite:/// + platformdirs.user_data_dir("auditor")/audit.db: absolute, so four slashes on POSIX."""
    import platformdirs

    return "sqlite:///" + str(Path(platformdirs.user_data_dir("auditor")) / "audit.db")
