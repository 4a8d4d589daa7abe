"""The engine's guarantees that span a run: a vantage that dies after its health check never turns into
"blocked", and every judgement is stored as it completes."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from auditor.config import load_config
from auditor.engine import NullObserver, run_audit
from auditor.lab import Lab
from auditor.models import Confidence, Verdict
from auditor.store import open_store


class BreakAfterHealth(NullObserver):
    """Breaks a provider right after its health check passed: the worst moment."""

    def __init__(self, lab: Lab, provider: str, how: str) -> None:
        self.lab, self.provider, self.how = lab, provider, how

    def provider_checked(self, health) -> None:  # type: ignore[no-untyped-def]
        if health.provider_id == self.provider and health.measured:
            if self.how == "resolver":
                self.lab.resolvers[self.provider].silent = True
            else:
                self.lab.middleboxes[self.provider].hang = True


@pytest.mark.parametrize("how", ["resolver", "vantage"])
def test_vantage_dying_mid_run_is_never_blocked(tmp_path: Path, how: str) -> None:
    with Lab(tmp_path, timeouts={"dns": 0.5, "connect": 0.5, "tls": 0.5, "http": 1.0}) as lab:
        config = load_config(lab.config_path)
        store = open_store(config.store)
        try:
            result = asyncio.run(run_audit(config, store, BreakAfterHealth(lab, "viettel", how),
                                           provider_ids=["viettel"]))
            records = list(store.iter_measurements(result.run.run_id))
        finally:
            store.close()
    assert records
    wrongly_blocked = [r for r in records if r.judgement.verdict is Verdict.BLOCKED
                       and r.judgement.confidence is Confidence.LIKELY]
    assert not wrongly_blocked, [r.judgement for r in wrongly_blocked]
    unhealthy = [r for r in records if r.judgement.rule == "vantage.unhealthy"]
    assert unhealthy and all("re-check" in r.judgement.evidence for r in unhealthy)
    assert not any(r.judgement.verdict is Verdict.ACCESSIBLE for r in records)


def test_a_bug_on_one_url_is_recorded_and_the_run_goes_on(lab_run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from auditor import engine
    from auditor.verdict import judge as real_judge

    def judge_with_a_bug(obs, control, *args, **kwargs):  # type: ignore[no-untyped-def]
        if "open-case" in obs.url:
            raise KeyError("simulated bug")
        return real_judge(obs, control, *args, **kwargs)

    monkeypatch.setattr(engine, "judge", judge_with_a_bug)
    text = lab_run.lab.config_path.read_text(encoding="utf-8").replace(
        f"store: sqlite:///{lab_run.lab.workdir / 'lab.db'}", f"store: sqlite:///{tmp_path / 'a.db'}")
    path = tmp_path / "c.yaml"
    path.write_text(text, encoding="utf-8")
    config = load_config(path)
    store = open_store(config.store)
    try:
        result = asyncio.run(run_audit(config, store, provider_ids=["mobifone"]))
        records = list(store.iter_measurements(result.run.run_id))
    finally:
        store.close()
    assert result.run.status == "complete"
    broken = [r for r in records if "open-case" in r.entry.url]
    assert broken and all(r.judgement.rule == "internal.error" for r in broken)
    assert "KeyError" in broken[0].judgement.evidence
    assert sum(r.judgement.verdict is Verdict.ACCESSIBLE for r in records) > 10
