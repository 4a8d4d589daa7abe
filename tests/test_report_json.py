"""The JSON report, version 2: golden output from the fixed store, and every document valid against the
published JSON Schema (docs/report.schema.json)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from auditor.analysis import analyse
from auditor.report.jsonformat import SCHEMA_V1, SCHEMA_V2, report_to_json, run_to_json
from tests import fixed_store as fx
from tests.test_report_html import check_golden

SCHEMA_FILE = Path(__file__).parent.parent / "docs" / "report.schema.json"


def validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def dumps(doc: dict[str, Any]) -> str:
    return json.dumps(doc, ensure_ascii=False, indent=2, allow_nan=False) + "\n"


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    with fx.fixed_store() as store:
        a = analyse(store, fx.LAST.run_id, grace_hours=fx.GRACE_HOURS, timezone=fx.TIMEZONE,
                    must_block=fx.MUST_BLOCK, must_allow=fx.MUST_ALLOW)
        return report_to_json(a, store.providers(fx.LAST.run_id), store.iter_measurements(fx.LAST.run_id))


def test_json_golden(doc: dict[str, Any]) -> None:
    check_golden("report.json", dumps(doc))


def test_json_is_valid_against_the_published_schema(doc: dict[str, Any]) -> None:
    validator().validate(doc)


def test_schema_rejects_what_it_should(doc: dict[str, Any]) -> None:
    v = validator()
    missing = json.loads(json.dumps(doc))
    del missing["analysis"]
    assert not v.is_valid(missing)  # version 2 without its analysis
    extra = json.loads(json.dumps(doc))
    extra["analysis"]["violations"][0]["surprise"] = 1
    assert not v.is_valid(extra)  # an undocumented key is a schema change: document it
    bad = json.loads(json.dumps(doc))
    bad["analysis"]["providers"][0]["trend"][0]["compliance_pct"] = 101
    assert not v.is_valid(bad)


def test_version_2_carries_version_1_and_the_analysis(doc: dict[str, Any]) -> None:
    assert doc["schema"] == SCHEMA_V2
    assert set(doc) == {"schema", "run", "providers", "scores", "measurements", "analysis"}
    fpt = next(p for p in doc["analysis"]["providers"] if p["provider_id"] == "fpt")
    assert fpt["flagged"] is True and fpt["must_block_failed"] == 1 and fpt["median_hours_to_block"] == 577.5
    assert [t["compliance_pct"] for t in fpt["trend"]] == [40.0, 40.0, 50.0, pytest.approx(100 / 6)]
    newly = doc["analysis"]["newly_accessible"]
    assert [(n["provider_id"], n["url"], n["previous_run_id"]) for n in newly] == [
        ("vnpt", fx.CASINO.url, fx.RUNS[2].run_id),
        ("fpt", fx.CANARY.url, fx.RUNS[2].run_id),
    ]
    assert doc["analysis"]["overblocked"][0]["method"] == "dns"
    # the scores are the analysis's: the must-allow URL is left out
    vnpt = next(s for s in doc["scores"] if s["provider_id"] == "vnpt")
    assert (vnpt["urls_total"], vnpt["compliance_pct"]) == (7, 80.0)
    assert len(doc["measurements"]) == 8 * 3 + 8  # every row, the must-allow ones included


def test_version_1_is_unchanged_without_an_analysis() -> None:
    with fx.fixed_store() as store:
        run = fx.LAST
        providers = store.providers(run.run_id)
        doc = run_to_json(run, providers, [], store.iter_measurements(run.run_id))
    assert doc["schema"] == SCHEMA_V1 and "analysis" not in doc
    validator().validate(doc)
