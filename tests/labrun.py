"""The suite's shared lab run (tests/conftest.py's session fixture `lab_run`) and copies of its config.

The lab run's store is read by many tests (its records, its reports, `history`, evidence exports), so no test
may write into it: a test that runs the audit again takes `lab_config(lab_run, tmp_path)`, the same lab with
a store and an output directory of its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from auditor.audit import AuditResult
from auditor.config import Config
from auditor.lab import Lab
from auditor.models import MeasurementRecord
from auditor.store import Store


@dataclass
class LabRun:
    lab: Lab
    config: Config
    store: Store
    result: AuditResult
    records: list[MeasurementRecord]
    out_dir: Path


def lab_config(lab_run: LabRun, tmp_path: Path, *, first_lists: Sequence[Path] = (), append: str = "",
               **overrides: str) -> Path:
    """The running lab's config with a store (`tmp_path/audit.db`) and outputs (`tmp_path/reports`) of the
    test's own. `first_lists` are audited before the lab's list; `append` is YAML added at the end, then one
    `key: value` line per override."""
    text = lab_run.lab.config_path.read_text(encoding="utf-8")
    lines = []
    replaced = set()
    for line in text.splitlines():
        if line.startswith("store:"):
            line = f"store: sqlite:///{tmp_path / 'audit.db'}"
            replaced.add("store")
        elif line.startswith("output_dir:"):
            line = f"output_dir: {tmp_path / 'reports'}"
            replaced.add("output_dir")
        elif line == "lists:":
            lines.append(line)
            lines.extend(f"- {path}" for path in first_lists)
            replaced.add("lists")
            continue
        lines.append(line)
    # a config whose store line was not found would write into the shared store: never let that pass
    assert replaced == {"store", "output_dir", "lists"}, f"the lab config changed shape: {sorted(replaced)} found"
    lines.extend(append.splitlines())
    lines.extend(f"{key}: {value}" for key, value in overrides.items())
    path = tmp_path / "config.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
