"""Cron-grade runs against the lab: the lock, kill -9 and --resume, SIGTERM, logs."""

from __future__ import annotations

import csv
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from auditor.cli import app
from auditor.config import parse_store_url
from auditor.errors import ExitStatus
from auditor.lab import scenario
from auditor.runlock import RunLock, lock_path_for
from tests.labrun import LabRun, lab_config

runner = CliRunner()


def stored_rows(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=5) as conn:
            return conn.execute("select count(*) from measurements").fetchone()[0]
    except sqlite3.Error:
        return 0


def start_run(config: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "auditor.cli", "run", "-c", str(config), "--quiet", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def wait_for_rows(db: Path, at_least: int, proc: subprocess.Popen[str], timeout: float = 60) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        n = stored_rows(db)
        if n >= at_least or proc.poll() is not None:
            return n
        time.sleep(0.05)
    raise AssertionError("the run stored nothing in time")


def csv_pairs(path: Path) -> list[tuple[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return [(r["provider_id"], r["url"]) for r in csv.DictReader(fh)]


EXPECTED_PAIRS = len(scenario.PROVIDERS) * len(scenario.listed_urls())


def test_second_run_on_the_same_store_is_refused(lab_run: LabRun, tmp_path: Path) -> None:
    config = lab_config(lab_run, tmp_path)
    lock_path = lock_path_for(parse_store_url(f"sqlite:///{tmp_path / 'audit.db'}"))
    with RunLock(lock_path).acquire({"note": "a running audit"}):
        result = runner.invoke(app, ["run", "-c", str(config), "--quiet"])
    assert result.exit_code == ExitStatus.LOCKED
    assert "holds the lock" in result.output and f"pid {os.getpid()}" in result.output


def test_stale_lock_of_a_killed_run_is_taken_over(lab_run: LabRun, tmp_path: Path) -> None:
    config = lab_config(lab_run, tmp_path)
    lock_path = lock_path_for(parse_store_url(f"sqlite:///{tmp_path / 'audit.db'}"))
    lock_path.write_text(json.dumps({"pid": "999999", "started": "2026-11-26T01:30:00Z"}))
    log = tmp_path / "run.log"
    result = runner.invoke(app, ["run", "-c", str(config), "--provider", "viettel", "--log-file", str(log)])
    assert result.exit_code == ExitStatus.OK, result.output
    assert "took over the lock left by a run that died (pid 999999" in log.read_text()


def test_kill_9_then_resume_keeps_every_measurement_and_finishes_the_same_run(lab_run: LabRun, tmp_path: Path) -> None:
    config = lab_config(lab_run, tmp_path)
    db = tmp_path / "audit.db"
    proc = start_run(config)
    seen = wait_for_rows(db, 20, proc)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=10)
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    with sqlite3.connect(db) as conn:
        (run_id, status), = conn.execute("select run_id, status from runs").fetchall()
        before = dict(((p, u), t) for p, u, t in conn.execute("select provider_id, url, measured_at from measurements"))
    assert status == "running" and len(before) >= seen

    result = runner.invoke(app, ["run", "-c", str(config), "--resume", "--quiet"])
    assert result.exit_code == ExitStatus.NOT_MEASURED, result.output  # the lab has unmeasurable providers
    with sqlite3.connect(db) as conn:
        runs = conn.execute("select run_id, status from runs").fetchall()
        after = dict(((p, u), t) for p, u, t in conn.execute("select provider_id, url, measured_at from measurements"))
    assert runs == [(run_id, "complete")]
    assert all(after[k] == t for k, t in before.items()), "a stored measurement was measured again"
    pairs = csv_pairs(tmp_path / "reports" / f"measurements-{run_id}.csv")
    assert len(pairs) == len(set(pairs)) == EXPECTED_PAIRS


def test_sigterm_stops_quickly_stores_what_completed_and_marks_the_summary_partial(lab_run: LabRun, tmp_path: Path) -> None:
    config = lab_config(lab_run, tmp_path)
    db = tmp_path / "audit.db"
    proc = start_run(config)
    wait_for_rows(db, 10, proc)
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    stopped_after = time.monotonic() - sent
    if proc.returncode != ExitStatus.INTERRUPTED:
        pytest.fail(f"exit {proc.returncode} after SIGTERM: {err}")
    assert stopped_after < 15, f"took {stopped_after:.1f}s to stop"
    assert "received SIGTERM" in err
    reports = tmp_path / "reports"
    partial = sorted(p.name for p in reports.iterdir())
    assert len(partial) == 2 and all(name.endswith(".partial.csv") for name in partial)
    with sqlite3.connect(db) as conn:
        (run_id, status), = conn.execute("select run_id, status from runs").fetchall()
    assert status == "partial"
    rows = csv_pairs(reports / f"measurements-{run_id}.partial.csv")
    assert 0 < len(rows) <= EXPECTED_PAIRS

    result = runner.invoke(app, ["run", "-c", str(config), "--resume", "--quiet"])
    assert result.exit_code == ExitStatus.NOT_MEASURED
    names = sorted(p.name for p in reports.iterdir())
    assert names == [f"measurements-{run_id}.csv", f"summary-{run_id}.csv"]
    pairs = csv_pairs(reports / f"measurements-{run_id}.csv")
    assert len(pairs) == len(set(pairs)) == EXPECTED_PAIRS


def test_json_log_has_the_run_story_and_never_a_password(lab_run: LabRun, tmp_path: Path) -> None:
    config = lab_config(lab_run, tmp_path)
    text = config.read_text(encoding="utf-8")
    # the dead-vantage provider gets credentials in its proxy URL: its failure is logged
    lines = text.splitlines()
    idx = next(i for i, line in enumerate(lines) if "id: deadvantage" in line)
    j = next(j for j in range(idx, len(lines)) if "proxy: socks5://127.0.0.1:" in lines[j])
    lines[j] = lines[j].replace("socks5://", "socks5://probe:s3cr3t-pw@")
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert "socks5://probe:s3cr3t-pw@127.0.0.1:" in config.read_text(encoding="utf-8")  # the password is there to leak
    log = tmp_path / "run.jsonl"
    result = runner.invoke(app, ["run", "-c", str(config), "--log-format", "json", "--log-file", str(log), "--quiet"])
    assert result.exit_code == ExitStatus.NOT_MEASURED, result.output
    raw = log.read_text(encoding="utf-8")
    assert "s3cr3t-pw" not in raw and "s3cr3t-pw" not in result.output
    events = [json.loads(line) for line in raw.splitlines()]
    assert [e["event"] for e in events if e["level"] == "error"].count("provider.not_measured") == 3
    assert all(e["level"] == "error" for e in events)  # --quiet: errors only

    log2 = tmp_path / "run2.jsonl"
    runner.invoke(app, ["run", "-c", str(config), "--log-format", "json", "--log-file", str(log2), "--provider", "viettel"])
    kinds = [json.loads(line)["event"] for line in log2.read_text().splitlines()]
    assert kinds[0] == "run.started" and "provider.healthy" in kinds and "run.finished" in kinds
    assert len(kinds) < 10, "nothing per URL at the default level"


def test_doctor_names_what_is_wrong_and_how_to_fix_it(lab_run: LabRun, tmp_path: Path) -> None:
    config = lab_config(lab_run, tmp_path)
    result = runner.invoke(app, ["doctor", "-c", str(config)])
    assert result.exit_code == ExitStatus.NOT_MEASURED
    out = result.output
    assert "ok   provider viettel" in out
    assert "FAIL provider deadvantage: vantage unreachable" in out and "ssh -N -D" in out
    assert "FAIL provider deadresolver" in out and "dig @" in out
    assert "FAIL provider canaryfail" in out and "auditor check canaryfail" in out
    assert "ok   store" in out and "ok   output" in out
