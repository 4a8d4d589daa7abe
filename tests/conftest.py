"""Shared fixtures: the simulated province, started once per session and audited once."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from auditor.config import Config, load_config
from auditor.engine import AuditResult, run_audit
from auditor.lab import Lab
from auditor.models import MeasurementRecord
from auditor.store import Store, open_store


@dataclass
class LabRun:
    lab: Lab
    config: Config
    store: Store
    result: AuditResult
    records: list[MeasurementRecord]
    out_dir: Path


@pytest.fixture(scope="session")
def lab_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabRun]:
    workdir = tmp_path_factory.mktemp("lab")
    with Lab(workdir) as lab:
        config = load_config(lab.config_path)
        store = open_store(config.store)
        out_dir = workdir / "out"
        result = asyncio.run(run_audit(config, store, out_dir=out_dir))
        records = list(store.iter_measurements(result.run.run_id))
        try:
            yield LabRun(lab, config, store, result, records, out_dir)
        finally:
            store.close()
