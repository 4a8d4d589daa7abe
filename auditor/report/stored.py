"""`auditor report`: a stored run, read back, analysed and written in one format.

The CLI turns its options into a ReportOptions, calls `report_stored_run` and hands the result to
`write_report`; everything between is here and in the formats (auditor.report.formats).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TextIO

from auditor.audit import analyse_run
from auditor.config import Config
from auditor.errors import UsageError
from auditor.report.formats import render
from auditor.report.interface import AnalysedRun, ReportFormat, ReportOptions
from auditor.sensitive import hidden
from auditor.store import Store, open_store


def load_analysed_run(
    store: Store, config: Config, run_id: str = "latest", *, history_runs: int = 10
) -> AnalysedRun:
    """The run `run_id` ("latest": the newest) of `store`, analysed as `config` says; its records come with
    the sensitive URLs hashed when the config asks for it. A UsageError when there is no such run."""
    rid = store.latest_run_id() if run_id == "latest" else run_id
    run = store.get_run(rid) if rid else None
    if run is None:
        raise UsageError(
            f"no run {run_id!r} in the store {config.store}" if rid else f"the store {config.store} holds no run yet"
        )
    found = run.run_id
    providers = tuple(store.providers(found))
    analysis = analyse_run(store, found, config, history_runs=history_runs)
    return AnalysedRun(analysis, providers, lambda: hidden(store.iter_measurements(found), config))


def report_stored_run(
    config: Config, fmt: ReportFormat, options: ReportOptions, *, run_id: str = "latest", history_runs: int = 10
) -> str | bytes:
    """The report of a run of the config's store, in `fmt`."""
    with open_store(config.store) as store:
        return render(load_analysed_run(store, config, run_id, history_runs=history_runs), fmt, options)


def write_report(report: str | bytes, output: Path | None, stdout: TextIO | None = None) -> None:
    """Into `output` (its directory created if needed), or onto stdout when it is None. Text is UTF-8,
    its line ends as the format wrote them (the CSV's CRLF stays CRLF)."""
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(report, bytes):
            output.write_bytes(report)
        else:
            output.write_text(report, encoding="utf-8", newline="")
        return
    out = stdout if stdout is not None else sys.stdout
    if isinstance(report, bytes):
        out.flush()
        out.buffer.write(report)
    elif report:
        out.write(report)
