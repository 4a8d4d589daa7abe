"""The engine's guarantees that need real probing: a vantage whose resolver goes silent or whose tunnel
hangs after its health check never turns into "blocked". The scheduling itself (control shared, resume,
stop, a bug on one URL, row order) is tested with fake probes in tests/test_scheduler.py."""

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


class KillAfter(NullObserver):
    """Kills a provider's SOCKS middlebox once `count` of its judgements are stored: mid-run, with
    connections through it in flight."""

    def __init__(self, lab: Lab, provider: str, count: int) -> None:
        self.lab, self.provider, self.count, self.seen = lab, provider, count, 0

    def measured(self, record) -> None:  # type: ignore[no-untyped-def]
        if record.provider_id == self.provider:
            self.seen += 1
            if self.seen == self.count:
                self.lab.kill_vantage(self.provider)


def test_a_socks_vantage_killed_mid_run_gives_no_blocked_verdict(tmp_path: Path) -> None:
    """The lab's Viettel middlebox killed after 5 judgements: the blocks measured before still count, none
    after (its connections close, its port refuses), the pairs lost are counted and the run exits 3."""
    with Lab(tmp_path, timeouts={"dns": 0.5, "connect": 0.5, "tls": 0.5, "http": 1.0}) as lab:
        config = load_config(lab.config_path)
        store = open_store(config.store)
        try:
            alive = asyncio.run(run_audit(config, store, provider_ids=["viettel"]))
            before = {r.entry.url: r.judgement for r in store.iter_measurements(alive.run.run_id)}
            result = asyncio.run(run_audit(config, store, KillAfter(lab, "viettel", 5), provider_ids=["viettel"]))
            records = list(store.iter_measurements(result.run.run_id))
        finally:
            store.close()
    assert len(records) == len(before)
    for r in records:
        if r.judgement.verdict is Verdict.BLOCKED:  # only blocks that hold whatever the tunnel did
            assert before[r.entry.url].verdict is Verdict.BLOCKED, (r.entry.url, r.judgement)
            assert r.judgement.rule == before[r.entry.url].rule, (r.entry.url, r.judgement)
    lost = [r for r in records if r.judgement.rule in ("vantage.down", "vantage.unhealthy")]
    assert len(lost) >= len(records) // 2
    assert not result.all_measured  # exit 3
    score = next(s for s in result.scores if s.provider_id == "viettel")
    assert score.measured and score.vantage_lost == len(lost)
