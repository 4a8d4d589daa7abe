"""`auditor rejudge`: a stored lab run judged again, with the same rules and with changed ones, and stored as
a new run linked to the original (which stays byte for byte as it was).

The lab's store is shared by the session: every test here works on a copy of it (`lab_copy`)."""

from __future__ import annotations

import ast
import dataclasses
import datetime as dt
import json
import sqlite3
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner, Result

from auditor import verdict
from auditor.cli import app
from auditor.config import Config, load_config
from auditor.errors import ExitStatus, UsageError
from auditor.lab.scenario import UNKNOWN_SINK
from auditor.models import Judgement, ListEntry, RunInfo, Verdict
from auditor.rejudge import (
    KEPT_RULES,
    NO_CONTROL,
    NO_OBSERVATION,
    Change,
    Example,
    Kept,
    RejudgeResult,
    rejudge_stored,
    rejudged,
    render_text,
    store_rejudged,
    to_json,
)
from auditor.store import SqliteStore
from auditor.verdict import inconclusive
from tests.conftest import LabRun

REPO = Path(__file__).resolve().parent.parent
UNKNOWN_SINK_URL = "http://unknownsink-case.example/"
runner = CliRunner()


@dataclass
class LabCopy:
    path: Path  # the SQLite file
    config: Config  # the lab's config, with the copy as its store
    config_file: Path
    run: RunInfo  # the lab's run (the copy holds it, and whatever other tests added to the shared store)

    def open(self) -> SqliteStore:
        return SqliteStore(str(self.path))

    def write_config(self, **changes: Any) -> Path:
        """The copy's config file with top-level keys changed (nested dicts merged one level)."""
        doc = yaml.safe_load(self.config_file.read_text(encoding="utf-8"))
        for key, value in changes.items():
            doc[key] = {**doc.get(key, {}), **value} if isinstance(value, dict) else value
        path = self.config_file.with_name(f"config-{len(list(self.config_file.parent.glob('config-*')))}.yaml")
        path.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True), encoding="utf-8")
        return path


@pytest.fixture
def lab_copy(lab_run: LabRun, tmp_path: Path) -> LabCopy:
    """The lab's store copied into tmp_path (SQLite's backup: the shared store stays open and untouched)."""
    path = tmp_path / "lab.db"
    source, target = sqlite3.connect(lab_run.config.store.location), sqlite3.connect(path)
    try:
        source.backup(target)
    finally:
        source.close()
        target.close()
    doc = yaml.safe_load(lab_run.lab.config_path.read_text(encoding="utf-8"))
    doc["store"] = f"sqlite:///{path}"
    config_file = tmp_path / "config.yaml"
    config_file.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return LabCopy(path, load_config(config_file), config_file, lab_run.result.run)


def invoke(*args: str) -> Result:
    return runner.invoke(app, list(args), catch_exceptions=False)


def with_dns_ip(config: Config, ip: str) -> Config:
    return replace(config, fingerprints=replace(config.fingerprints, dns_ips=(*config.fingerprints.dns_ips, ip)))


def judged_again(copy: LabCopy, config: Config | None = None) -> RejudgeResult:
    with copy.open() as store:
        return rejudge_stored(store, copy.run, config or copy.config)


def run_rows(path: Path, run_id: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the run in every table, as SQLite holds them."""
    conn = sqlite3.connect(path)
    try:
        return {
            table: conn.execute(f"SELECT * FROM {table} WHERE run_id = ? ORDER BY rowid", (run_id,)).fetchall()
            for table in ("runs", "providers", "measurements", "controls")
        }
    finally:
        conn.close()


# -- the same rules --------------------------------------------------------------------------------------


def test_the_same_rules_change_nothing(lab_copy: LabCopy) -> None:
    with lab_copy.open() as store:
        records = list(store.iter_measurements(lab_copy.run.run_id))
        outcomes = list(rejudged(records, lambda url: store.control_observation(lab_copy.run.run_id, url),
                                 lab_copy.config))
    assert len(outcomes) == 182
    assert [o.record.judgement for o in outcomes] == [r.judgement for r in records]  # every one of them
    assert not any(o.changed for o in outcomes)
    result = judged_again(lab_copy)
    not_measured = sum(r.judgement.rule == "provider.not_measured" for r in records)
    assert (result.judgements, result.changed, result.unchanged) == (182, 0, 182 - not_measured)
    assert result.kept == (Kept("provider.not_measured", KEPT_RULES["provider.not_measured"], not_measured),)
    assert (result.verdict_changes, result.rule_changes, result.unconfirmed_blocked) == ((), (), 0)
    assert "No judgement changed." in render_text(result)


# -- changed rules ---------------------------------------------------------------------------------------


def test_a_new_dns_fingerprint_changes_one_rule(lab_copy: LabCopy) -> None:
    result = judged_again(lab_copy, with_dns_ip(lab_copy.config, UNKNOWN_SINK))
    assert (result.changed, result.unchanged + result.changed) == (1, result.rejudged)
    assert result.verdict_changes == ()  # blocked it was, blocked it stays: now confirmed
    (change,) = result.rule_changes
    assert (change.before, change.after, change.count) == ("dns.inconsistent", "dns.blockpage_address", 1)
    (example,) = change.examples
    assert (example.provider_id, example.url) == ("viettel", UNKNOWN_SINK_URL)
    assert example.stored.confidence == "likely" and example.new.confidence == "confirmed"
    assert UNKNOWN_SINK in example.new.evidence and "known block-page address" in example.new.evidence
    text = render_text(result)
    assert "dns.inconsistent -> dns.blockpage_address: 1" in text
    assert f"viettel {UNKNOWN_SINK_URL}: resolver" in text


def test_a_new_redirect_fingerprint_applies_to_the_stored_location(lab_copy: LabCopy) -> None:
    """The lab's redirector sends every vantage to redirect-target.example: as a warning host, it is
    a fingerprint now for every provider that followed it (the Location is stored, the body is not)."""
    cfg = replace(lab_copy.config, fingerprints=replace(
        lab_copy.config.fingerprints, redirect_hosts=(*lab_copy.config.fingerprints.redirect_hosts,
                                                      "redirect-target.example")))
    result = judged_again(lab_copy, cfg)
    assert result.changed >= 1
    assert {c.after for c in result.rule_changes} == {"http.blockpage_fingerprint"}
    assert all(e.url == "http://redirector-case.example/" for c in result.rule_changes for e in c.examples)


def test_a_changed_verdict_rule_is_reported_with_counts_and_examples(
    lab_copy: LabCopy, monkeypatch: pytest.MonkeyPatch
) -> None:
    with lab_copy.open() as store:
        matched = [r for r in store.iter_measurements(lab_copy.run.run_id) if r.judgement.rule == "http.matches_control"]
    assert len(matched) > 3
    monkeypatch.setattr(verdict, "same_page", lambda a, b: False)  # a stricter rule: no page is the same
    result = judged_again(lab_copy)
    assert result.changed == len(matched)
    (change,) = result.verdict_changes
    assert (change.before, change.after, change.count) == ("accessible", "blocked", len(matched))
    assert len(change.examples) == 3  # a few, the first in the store's order
    assert [(e.provider_id, e.url) for e in change.examples] == [(r.provider_id, r.entry.url) for r in matched[:3]]
    assert {c.before for c in result.rule_changes} == {"http.matches_control"}
    assert sum(c.count for c in result.rule_changes) == len(matched)
    assert result.unconfirmed_blocked == len(matched)  # blocked now, without the re-checks of a run
    text = render_text(result)
    assert f"accessible -> blocked: {len(matched)}" in text
    assert f"{result.unconfirmed_blocked} judgement(s) blocked now were not blocked as stored" in text
    doc = to_json(result)
    assert doc["totals"]["changed"] == len(matched)
    assert doc["verdict_changes"][0]["examples"][0]["to"]["verdict"] == "blocked"


# -- what is kept as stored ------------------------------------------------------------------------------


def test_scheduler_judgements_are_kept_as_stored(lab_copy: LabCopy) -> None:
    """A blocked verdict that a failed vantage re-check or control's re-test dismissed stays dismissed:
    its observation alone would say blocked again."""
    with lab_copy.open() as store:
        records = list(store.iter_measurements(lab_copy.run.run_id, "vnpt"))
        run_id = lab_copy.run.run_id
        blocked = [r for r in records if r.judgement.verdict is Verdict.BLOCKED][:4]
        unhealthy, flapped, bare, alone = blocked
        made = [
            replace(unhealthy, judgement=inconclusive("vantage.unhealthy", "re-check failed")),
            replace(flapped, judgement=inconclusive("control.flapped", "control failed too")),
            replace(bare, observation=None),
            replace(alone, entry=replace(alone.entry, url="http://no-control.example/")),
        ]
        outcomes = list(rejudged(made, lambda url: store.control_observation(run_id, url), lab_copy.config))
    assert [o.kept for o in outcomes] == [KEPT_RULES["vantage.unhealthy"], KEPT_RULES["control.flapped"],
                                          NO_OBSERVATION, NO_CONTROL]
    assert [o.record.judgement for o in outcomes] == [m.judgement for m in made]


def test_every_rule_given_outside_the_verdict_rules_is_kept() -> None:
    """The rules the scheduler, the re-checks and the analyst give instead of `judge`: each one is in
    KEPT_RULES, or rejudging could undo it."""
    given: set[str] = set()
    for path in sorted((REPO / "auditor").rglob("*.py")):
        if path.name in ("verdict.py", "rejudge.py") or "lab" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id in ("inconclusive", "blocked", "accessible") and node.args
                    and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
                given.add(node.args[0].value)
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "Judgement"
                    and len(node.args) > 1 and isinstance(node.args[1], ast.Constant)):
                given.add(str(node.args[1].value))
    assert given >= {"provider.not_measured", "internal.error", "vantage.unhealthy", "control.flapped"}
    assert given <= set(KEPT_RULES), given - set(KEPT_RULES)


# -- stored as a new run ---------------------------------------------------------------------------------


def test_store_as_new_links_a_new_run_and_leaves_the_original_untouched(lab_copy: LabCopy) -> None:
    original = lab_copy.run.run_id
    before = run_rows(lab_copy.path, original)
    cfg = with_dns_ip(lab_copy.config, UNKNOWN_SINK)
    with lab_copy.open() as store:
        result = store_rejudged(store, lab_copy.run, cfg)
    assert run_rows(lab_copy.path, original) == before  # byte for byte, every table
    assert result.changed == 1 and result.stored_as and result.stored_as != original

    with lab_copy.open() as store:
        new = store.get_run(result.stored_as)
        assert new is not None
        assert (new.rejudged_from, new.status, new.province, new.started_at) == (
            original, "complete", lab_copy.run.province, lab_copy.run.started_at)
        assert [replace(h, run_id=original) for h in store.providers(new.run_id)] == store.providers(original)
        old_records = list(store.iter_measurements(original))
        new_records = list(store.iter_measurements(new.run_id))
        assert [(r.provider_id, r.entry) for r in new_records] == [(r.provider_id, r.entry) for r in old_records]
        assert [r.observation for r in new_records] == [r.observation for r in old_records]
        assert [r.measured_at for r in new_records] == [r.measured_at for r in old_records]
        changed = [(o, n) for o, n in zip(old_records, new_records, strict=True) if o.judgement != n.judgement]
        assert [(n.entry.url, n.judgement.rule) for _, n in changed] == [(UNKNOWN_SINK_URL, "dns.blockpage_address")]
        for url in {r.entry.url for r in old_records}:
            assert store.control_observation(new.run_id, url) == store.control_observation(original, url)
        # judged again with the same rules, the new run changes no more
        assert rejudge_stored(store, new, cfg).changed == 0


def test_the_report_of_a_rejudged_run_says_so(lab_copy: LabCopy) -> None:
    config = lab_copy.write_config(fingerprints={"dns_ips": [UNKNOWN_SINK]})
    result = invoke("rejudge", "-c", str(config), "--run", lab_copy.run.run_id, "--store-as-new", "--format", "json")
    assert result.exit_code == ExitStatus.OK, result.output
    new_id = json.loads(result.output)["stored_as"]
    table = invoke("report", "-c", str(config), "--run", new_id)
    assert table.exit_code == ExitStatus.OK
    assert table.output.splitlines()[0].startswith(f"Re-judged from run {lab_copy.run.run_id}")
    doc = json.loads(invoke("report", "-c", str(config), "--run", new_id, "--format", "json").output)
    assert doc["run"]["rejudged_from"] == lab_copy.run.run_id
    import jsonschema

    schema = json.loads((REPO / "docs" / "report.schema.json").read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator(schema).validate(doc)
    original = json.loads(invoke("report", "-c", str(config), "--run", lab_copy.run.run_id, "--format", "json").output)
    assert "rejudged_from" not in original["run"]  # a measured run's document is as before


def test_only_a_complete_run_is_stored_rejudged(tmp_path: Path, lab_copy: LabCopy) -> None:
    with SqliteStore(str(tmp_path / "s.db")) as store:
        for status in ("running", "partial"):
            run = RunInfo(f"r-{status}", dt.datetime(2026, 11, 27, tzinfo=dt.UTC), "Gia Lai", status=status)
            store.begin_run(run)
            with pytest.raises(UsageError, match=f"is {status}, not complete"):
                store_rejudged(store, run, lab_copy.config)
        assert [r.run_id for r in store.list_runs()] == ["r-partial", "r-running"]  # nothing added


def test_store_as_new_of_a_run_longer_than_a_read_batch(tmp_path: Path, lab_copy: LabCopy) -> None:
    """Rows are written while the original's rows stream (500 a batch, 64 rows a flush): the order and
    every row survive."""
    with lab_copy.open() as lab:
        sample = next(r for r in lab.iter_measurements(lab_copy.run.run_id, "vnpt") if r.observation is not None)
        control = lab.control_observation(lab_copy.run.run_id, sample.entry.url)
    assert control is not None
    run = replace(lab_copy.run, run_id="big")
    with SqliteStore(str(tmp_path / "big.db")) as store:
        store.begin_run(run)
        for i in range(1300):
            url = f"http://case-{i:04d}.example/"
            store.record_control(run.run_id, url, control)
            for pid in ("b-provider", "a-provider"):
                rec = replace(sample, run_id=run.run_id, provider_id=pid, entry=ListEntry(url, "x", "big", i + 2))
                store.record_measurement(rec, ordinal=1300 - i)  # list order is not the URLs' order
        store.finish_run(run.run_id, run.started_at, "complete")
        result = store_rejudged(store, run, lab_copy.config)
        assert (result.judgements, result.unchanged) == (2600, 2600)
        old = [(r.provider_id, r.entry.url) for r in store.iter_measurements(run.run_id)]
        assert [(r.provider_id, r.entry.url) for r in store.iter_measurements(result.stored_as)] == old


def test_a_store_without_the_link_column_gets_it(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    SqliteStore(str(path)).close()
    conn = sqlite3.connect(path)
    conn.execute("ALTER TABLE runs DROP COLUMN rejudged_from")  # as stores written before it are
    conn.execute("INSERT INTO runs (run_id, started_at, province, status) VALUES "
                 "('old', '2026-11-27T18:30:00.000000Z', 'Gia Lai', 'complete')")
    conn.commit()
    conn.close()
    with SqliteStore(str(path)) as store:
        old = store.get_run("old")
        assert old is not None and old.rejudged_from == ""
        store.begin_run(RunInfo("new", old.started_at, "Gia Lai", rejudged_from="old"))
        assert store.get_run("new") == RunInfo("new", old.started_at, "Gia Lai", rejudged_from="old")


# -- the command -----------------------------------------------------------------------------------------


def test_latest_and_an_unknown_run(lab_copy: LabCopy) -> None:
    config = str(lab_copy.config_file)
    with lab_copy.open() as store:
        latest = store.latest_run_id()
    result = invoke("rejudge", "-c", config, "--run", "latest", "--format", "json")
    assert result.exit_code == ExitStatus.OK, result.output
    doc = json.loads(result.output)
    assert doc["schema"] == "auditor.rejudge/1" and doc["run"]["run_id"] == latest and doc["stored_as"] is None
    unknown = invoke("rejudge", "-c", config, "--run", "20990101T000000Z-dead")
    assert unknown.exit_code == ExitStatus.USAGE
    assert "no run '20990101T000000Z-dead' in the store" in unknown.output
    empty = lab_copy.write_config(store=f"sqlite:///{lab_copy.path.with_name('empty.db')}")
    nothing = invoke("rejudge", "-c", str(empty), "--run", "latest")
    assert nothing.exit_code == ExitStatus.USAGE and "holds no run yet" in nothing.output


def test_the_table_output_of_the_command(lab_copy: LabCopy) -> None:
    config = lab_copy.write_config(fingerprints={"dns_ips": [UNKNOWN_SINK]})
    result = invoke("rejudge", "-c", str(config), "--run", lab_copy.run.run_id)
    assert result.exit_code == ExitStatus.OK
    lines = result.output.splitlines()
    assert lines[0].startswith(f"Run {lab_copy.run.run_id} (Gia Lai (simulated), started ")
    assert lines[1].startswith("182 judgements: ") and "(" in lines[1] and "1 changed)" in lines[1]
    assert "Rule changes" in lines and "Not re-judgeable (kept as stored)" in lines
    assert "Stored as run" not in result.output  # without --store-as-new nothing is stored
    with lab_copy.open() as store:
        assert not any(r.rejudged_from for r in store.list_runs(limit=1000))


def test_a_sensitive_entry_shows_no_url(lab_copy: LabCopy) -> None:
    """Every lab entry is in category GMB: made sensitive with hashing on, the example is its token."""
    config = lab_copy.write_config(fingerprints={"dns_ips": [UNKNOWN_SINK]},
                                   sensitive={"categories": ["GMB"], "hash_urls": True, "hash_key": "k" * 32})
    for fmt in ("table", "json"):
        result = invoke("rejudge", "-c", str(config), "--run", lab_copy.run.run_id, "--format", fmt)
        assert result.exit_code == ExitStatus.OK
        assert "hmac-sha256:" in result.output
        assert "unknownsink-case" not in result.output, result.output
    without_key = lab_copy.write_config(sensitive={"categories": ["GMB"], "hash_urls": True,
                                                   "hash_key_env": "AUDITOR_TEST_NO_SUCH_KEY"})
    refused = invoke("rejudge", "-c", str(without_key), "--run", lab_copy.run.run_id)
    assert refused.exit_code == ExitStatus.USAGE and "no key" in refused.output


# -- the formats, exactly --------------------------------------------------------------------------------

RUN = RunInfo("20261127T183000Z-1a2b", dt.datetime(2026, 11, 27, 18, 30, tzinfo=dt.UTC), "Gia Lai",
              status="complete", config_digest="5f0e2a1c9b7d3e40")
OPEN = Judgement(Verdict.ACCESSIBLE, "http.matches_control", "cleartext page matches control")
DIFFERS = verdict.blocked(verdict.Method.HTTP, verdict.Confidence.LIKELY, "http.differs", "page differs " + "x" * 300)
EXAMPLE = Example("fpt", "http://a.example/", OPEN, DIFFERS)
RESULT = RejudgeResult(
    run=RUN, judgements=10, unchanged=6, changed=1,
    verdict_changes=(Change("accessible", "blocked", 1, (EXAMPLE,)),),
    rule_changes=(Change("http.matches_control", "http.differs", 1, (EXAMPLE,)),),
    kept=(Kept("provider.not_measured", KEPT_RULES["provider.not_measured"], 3),),
    unconfirmed_blocked=1, same_config=True, stored_as="20261203T090000Z-77cd",
)


def test_the_text_format_exactly() -> None:
    assert render_text(RESULT) == (
        "Run 20261127T183000Z-1a2b (Gia Lai, started 2026-11-27T18:30:00Z) judged again with today's rules\n"
        "10 judgements: 7 re-judged (6 unchanged, 1 changed), 3 not re-judgeable (kept as stored)\n"
        "\n"
        "Verdict changes\n"
        "  accessible -> blocked: 1\n"
        "    fpt http://a.example/: http.matches_control -> http.differs\n"
        "\n"
        "Rule changes\n"
        "  http.matches_control -> http.differs: 1\n"
        f"    fpt http://a.example/: page differs {'x' * 186}…\n"
        "\n"
        "Not re-judgeable (kept as stored)\n"
        "  provider.not_measured: 3 (the provider failed its health check: nothing was measured)\n"
        "\n"
        "Note: 1 judgement(s) blocked now were not blocked as stored: the control re-test and the vantage "
        "re-check a run makes before a block counts need the network and were not made here; measure again "
        "to confirm.\n"
        "Stored as run 20261203T090000Z-77cd, re-judged from run 20261127T183000Z-1a2b.\n"
    )


def test_the_json_format_exactly() -> None:
    example = {"provider_id": "fpt", "url": "http://a.example/",
               "from": {"verdict": "accessible", "rule": "http.matches_control", "method": None,
                        "confidence": None, "evidence": OPEN.evidence},
               "to": {"verdict": "blocked", "rule": "http.differs", "method": "http", "confidence": "likely",
                      "evidence": DIFFERS.evidence}}
    assert to_json(RESULT) == {
        "schema": "auditor.rejudge/1",
        "run": {"run_id": RUN.run_id, "province": "Gia Lai", "status": "complete",
                "started_at": "2026-11-27T18:30:00Z", "config_digest": "5f0e2a1c9b7d3e40"},
        "same_config": True,
        "stored_as": "20261203T090000Z-77cd",
        "totals": {"judgements": 10, "rejudged": 7, "unchanged": 6, "changed": 1, "not_rejudgeable": 3,
                   "unconfirmed_blocked": 1},
        "verdict_changes": [{"from": "accessible", "to": "blocked", "count": 1, "examples": [example]}],
        "rule_changes": [{"from": "http.matches_control", "to": "http.differs", "count": 1, "examples": [example]}],
        "not_rejudgeable": [{"rule": "provider.not_measured", "reason": KEPT_RULES["provider.not_measured"],
                             "count": 3}],
    }
    json.dumps(to_json(RESULT))  # JSON-able as it is


def test_results_are_frozen_with_tuple_fields() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(RESULT, "changed", 2)  # noqa: B010 - the point is that it cannot be set
    assert all(isinstance(getattr(RESULT, f.name), (tuple, int, str, bool, RunInfo))
               for f in dataclasses.fields(RESULT))
