"""The run's log: timestamped lines (or JSON lines) of run start, each provider's health, totals and
errors; nothing per URL. Every line passes through `redact`, so a proxy password never reaches a log."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping, Sequence
from typing import TextIO

# what a JSON line's extra fields may hold (json.dumps writes a sequence as an array)
JsonValue = str | int | float | bool | None | Sequence["JsonValue"] | Mapping[str, "JsonValue"]

_CREDENTIALS = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:/@\s]*):(?P<password>[^@/\s]*)@", re.IGNORECASE)


def redact(text: str) -> str:
    """socks5://user:secret@host -> socks5://user:***@host"""
    return _CREDENTIALS.sub(lambda m: f"{m['scheme']}{m['user']}:***@", text)


class EventLog:
    LEVELS = ("debug", "info", "warning", "error")

    def __init__(self, stream: TextIO, fmt: str = "text", quiet: bool = False) -> None:
        self.stream = stream
        self.fmt = fmt
        self.quiet = quiet  # only errors

    def info(self, event: str, message: str, **fields: JsonValue) -> None:
        self._emit("info", event, message, fields)

    def warning(self, event: str, message: str, **fields: JsonValue) -> None:
        self._emit("warning", event, message, fields)

    def error(self, event: str, message: str, **fields: JsonValue) -> None:
        self._emit("error", event, message, fields)

    def _emit(self, level: str, event: str, message: str, fields: dict[str, JsonValue]) -> None:
        if self.quiet and level != "error":
            return
        stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        if self.fmt == "json":
            doc: dict[str, JsonValue] = {"ts": stamp, "level": level, "event": event, "message": redact(message)}
            doc.update({k: redact(v) if isinstance(v, str) else v for k, v in fields.items()})
            line = json.dumps(doc, ensure_ascii=False)
        else:
            line = f"{stamp} {level.upper():7} {redact(message)}"
        self.stream.write(line + "\n")
        self.stream.flush()
