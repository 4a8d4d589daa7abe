"""Shared fixtures: the simulated province, started once per session and audited once.

Many tests read the lab run's store; none writes into it (tests/labrun.py's `lab_config` gives a test that
runs the audit again a store of its own).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from auditor.config import load_config
from auditor.engine import run_audit
from auditor.lab import Lab
from auditor.store import open_store
from tests.labrun import LabRun


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
