"""The tool's exceptions and exit statuses.

    AuditorError                 anything the tool reports as a clear message (never a traceback)
    ├── UsageError               bad command line or config: exit 2
    │   ├── ConfigError          config file missing, unparsable, unknown key, bad value (carries key paths)
    │   └── ListError            a reference list cannot be read at all (bad rows are issues, not errors)
    ├── StoreError               the store URL or database is unusable: exit 2
    ├── RunLocked                another run holds the store's lock: exit 6 (auditor.runlock)
    └── LabError                 the simulated province could not start: exit 1

Measuring problems (a timeout, a reset, a dead vantage) are never exceptions: probes return them as data
and verdicts turn them into `inconclusive` or `blocked` with evidence.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class ExitStatus(IntEnum):
    OK = 0  # the audit completed; compliance findings are data, not an error
    INTERNAL_ERROR = 1  # a bug or an environment failure: report it
    USAGE = 2  # bad command line, config, list file or store URL; nothing was probed
    NOT_MEASURED = 3  # the run completed but some provider (or the control) could not be measured
    LAB_MISMATCH = 4  # `auditor lab`: some case got a verdict other than the expected one
    LIST_ISSUES = 5  # `auditor lists validate`: some rows would be skipped
    LOCKED = 6  # another run holds the store's lock: this one did not start
    INTERRUPTED = 7  # stopped by SIGTERM/SIGINT: what completed is stored, the summary is marked partial
    EVIDENCE_INVALID = 8  # `auditor evidence verify`: a file, the chain or the signature does not hold


class AuditorError(Exception):
    exit_status = ExitStatus.INTERNAL_ERROR
    hint: str = ""


class UsageError(AuditorError):
    exit_status = ExitStatus.USAGE


@dataclass(frozen=True)
class ConfigProblem:
    path: str  # key path, e.g. "providers[1].vantage.proxy"
    message: str  # what is wrong and what to write instead
    line: int | None = None  # 1-based line in the YAML file, where known

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line else ""
        return f"{where}{self.path}: {self.message}"


class ConfigError(UsageError):
    def __init__(self, source: str, problems: list[ConfigProblem]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  {p}" for p in problems)
        super().__init__(f"invalid config {source}:\n{lines}")


class ListError(UsageError):
    pass


class StoreError(UsageError):
    pass


class LabError(AuditorError):
    pass
