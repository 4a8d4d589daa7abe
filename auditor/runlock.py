"""One run at a time per store: a lock file beside the database, held with flock(2).

The kernel releases an flock when its holder dies, so a lock left by a killed run (kill -9, power loss) is
free to take at once: we notice the previous holder's note in the file and say we took it over.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
from dataclasses import dataclass
from pathlib import Path

from auditor.config.storeurl import StoreUrl
from auditor.errors import AuditorError, ExitStatus


class RunLocked(AuditorError):
    exit_status = ExitStatus.LOCKED


@dataclass
class RunLock:
    path: Path
    taken_over: str = ""  # what a previous, dead holder left, when we took its lock over
    _fd: int | None = None

    def acquire(self, note: dict[str, str]) -> RunLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read(fd)
            os.close(fd)
            who = f"pid {holder.get('pid', '?')}, started {holder.get('started', '?')}" if holder else "unknown"
            raise RunLocked(
                f"another auditor run holds the lock {self.path} ({who}); this run did not start"
            ) from None
        previous = _read(fd)
        if previous:
            self.taken_over = f"pid {previous.get('pid', '?')} started {previous.get('started', '?')}"
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": str(os.getpid()), "started": _now(), **note}).encode(), 0)
        os.fsync(fd)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        os.ftruncate(self._fd, 0)  # an empty file means the last holder finished cleanly
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def lock_path_for(store: StoreUrl) -> Path | None:
    """`<database>.lock` for a SQLite file store; None for an in-memory store (nothing to share)."""
    if store.scheme != "sqlite" or store.in_memory:
        return None
    database = Path(store.location)
    return database.with_suffix(database.suffix + ".lock")


def _read(fd: int) -> dict[str, str]:
    try:
        data = os.pread(fd, 4096, 0)
        return json.loads(data) if data.strip() else {}
    except (OSError, ValueError):
        return {"pid": "?", "started": "? (unreadable lock note)"}


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
