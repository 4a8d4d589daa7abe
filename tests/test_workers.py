"""`--workers N`: the lab measured by two worker processes is judged as by one; a stop, --resume and a worker
that dies mid-run, against the lab (the cron-grade helpers of tests/test_unattended.py)."""

from __future__ import annotations

import asyncio
import csv
import multiprocessing
import os
import signal
import sqlite3
import time
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from auditor.audit import audit
from auditor.cli import app
from auditor.config import Config
from auditor.errors import ExitStatus
from auditor.models import MeasurementRecord
from auditor.progress import NullObserver
from auditor.store import open_store
from auditor.workers import default_workers, worker_config
from tests.test_unattended import EXPECTED_PAIRS, csv_pairs, lab_config, start_run, wait_for_rows

runner = CliRunner()


def judged(records: list[MeasurementRecord]) -> list[tuple[str, str, str, str]]:
    return [(r.provider_id, r.entry.url, str(r.judgement.verdict), r.judgement.rule) for r in records]


def csv_rows(path: Path) -> list[tuple[str, str, str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return [(r["provider_id"], r["list"], r["url"], r["verdict"]) for r in csv.DictReader(fh)]


def test_two_workers_judge_every_pair_as_one_process_does_and_write_the_rows_in_the_same_order(
    lab_run, tmp_path: Path
) -> None:
    config = replace(lab_run.config, store=f"sqlite:///{tmp_path / 'two.db'}")
    with open_store(config.store) as store:
        result = asyncio.run(audit(config, store, out_dir=tmp_path / "out", workers=2))
        records = list(store.iter_measurements(result.run.run_id))
    assert result.run.status == "complete"
    assert len(records) == len(lab_run.records) == EXPECTED_PAIRS
    assert judged(records) == judged(lab_run.records)  # the same pairs, verdicts and rules, in the same order
    one = csv_rows(lab_run.out_dir / f"measurements-{lab_run.result.run.run_id}.csv")
    two = csv_rows(tmp_path / "out" / f"measurements-{result.run.run_id}.csv")
    assert two == one
    assert [h.measured for h in result.health] == [h.measured for h in lab_run.result.health]


class KillWorkerOne(NullObserver):
    """Kills worker 1 when the first measured pair arrives: it has not measured most of its URLs yet."""

    def __init__(self) -> None:
        self.killed: int | None = None

    def measured(self, record: MeasurementRecord) -> None:
        if self.killed is None:
            worker = next(p for p in multiprocessing.active_children() if p.name == "auditor-worker-1")
            assert worker.pid is not None
            os.kill(worker.pid, signal.SIGKILL)
            self.killed = worker.pid


def test_a_worker_killed_mid_run_leaves_internal_errors_for_what_it_had_not_measured(lab_run, tmp_path: Path) -> None:
    config = replace(lab_run.config, store=f"sqlite:///{tmp_path / 'killed.db'}")
    observer = KillWorkerOne()
    with open_store(config.store) as store:
        result = asyncio.run(audit(config, store, observer, workers=2))
        records = list(store.iter_measurements(result.run.run_id))
    assert observer.killed is not None
    pairs = [(r.provider_id, r.entry.url) for r in records]
    assert len(pairs) == len(set(pairs)) == EXPECTED_PAIRS  # every pair once: none lost, none twice
    lost = [r for r in records if r.judgement.rule == "internal.error"]
    assert lost, "the killed worker's unmeasured pairs must be recorded"
    assert all("worker process 1 ended (killed by SIGKILL)" in r.judgement.evidence for r in lost)
    assert all(r.observation is None for r in lost)
    # worker 2's pairs (every second URL, starting with the second) are judged as by one process
    urls = list(dict.fromkeys(r.entry.url for r in lab_run.records))
    second = set(urls[1::2])
    expected = {k[:2]: k for k in judged(lab_run.records)}
    assert all(expected[k[:2]] == k for k in judged(records) if k[1] in second)
    assert result.run.status == "complete"


def test_sigterm_stops_a_two_worker_run_and_resume_completes_it_with_one_row_per_pair(lab_run, tmp_path: Path) -> None:
    config = lab_config(lab_run, tmp_path)
    text = config.read_text(encoding="utf-8")
    assert "\nconcurrency: 50\n" in text
    # few URLs in flight (one probe at a time per worker), so that the stop leaves most of the run unmeasured
    config.write_text(text.replace("\nconcurrency: 50\n", "\nconcurrency: 2\n"), encoding="utf-8")
    db = tmp_path / "audit.db"
    proc = start_run(config, "--workers", "2")
    wait_for_rows(db, 10, proc)
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    stopped_after = time.monotonic() - sent
    if proc.returncode != ExitStatus.INTERRUPTED:
        pytest.fail(f"exit {proc.returncode} after SIGTERM: {err}")
    assert stopped_after < 15, f"took {stopped_after:.1f}s to stop"
    with sqlite3.connect(db) as conn:
        (run_id, status), = conn.execute("select run_id, status from runs").fetchall()
        stored = conn.execute("select count(*) from measurements").fetchone()[0]
    assert status == "partial" and 0 < stored < EXPECTED_PAIRS
    assert not [p for p in multiprocessing.active_children() if p.name.startswith("auditor-worker")]

    result = runner.invoke(app, ["run", "-c", str(config), "--resume", "--quiet", "--workers", "2"])
    assert result.exit_code == ExitStatus.NOT_MEASURED, result.output
    with sqlite3.connect(db) as conn:
        assert conn.execute("select run_id, status from runs").fetchall() == [(run_id, "complete")]
    pairs = csv_pairs(tmp_path / "reports" / f"measurements-{run_id}.csv")
    assert len(pairs) == len(set(pairs)) == EXPECTED_PAIRS


def test_workers_share_the_politeness_limits_of_the_run(lab_run) -> None:
    def config(concurrency: int, qps: float, per_destination: int) -> Config:
        limits = replace(lab_run.config.limits, resolver_qps=qps, per_destination=per_destination)
        return replace(lab_run.config, concurrency=concurrency, limits=limits)

    share = worker_config(config(100, 100.0, 8), 3)
    assert (share.concurrency, share.limits.resolver_qps, share.limits.per_destination) == (33, 100 / 3, 2)
    tiny = worker_config(config(2, 1.0, 1), 4)
    assert (tiny.concurrency, tiny.limits.per_destination) == (1, 1)  # at least one each
    off = worker_config(config(10, 0.0, 0), 2)
    assert (off.limits.resolver_qps, off.limits.per_destination) == (0.0, 0)  # no limit stays no limit


def test_workers_default_to_the_cores_and_zero_is_refused(tmp_path: Path) -> None:
    assert default_workers() >= 1
    result = runner.invoke(app, ["run", "-c", str(tmp_path / "none.yaml"), "--workers", "0"])
    assert result.exit_code == ExitStatus.USAGE
