"""Before a blocked verdict counts (auditor.confirm): a vantage re-check that started after the failure, and
control measured again. Fake probes at the seam (tests/test_scheduler.py's FakeNetwork); the real scheduler,
verdicts, store and scoring."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from auditor.audit import audit
from auditor.confirm import VantageMonitor
from auditor.lists import ListSet
from auditor.models import MeasurementRecord, Verdict
from auditor.progress import NullObserver
from auditor.store import Store, open_store
from tests.test_scheduler import FakeNetwork, config, entries, run


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = open_store(f"sqlite:///{tmp_path / 'audit.db'}")
    yield s
    s.close()


def judged(store: Store, run_id: str) -> dict[tuple[str, str], MeasurementRecord]:
    return {(r.provider_id, r.entry.url): r for r in store.iter_measurements(run_id)}


class DiesAfter(NullObserver):
    """Kills vantage `vid` (its connections close, its resolvers go silent) once `count` records are stored,
    and brings it back after `back` records when given: the `ssh -D` of the issue, killed mid-run."""

    def __init__(self, net: FakeNetwork, vid: str, count: int, back: int | None = None) -> None:
        self.net, self.vid, self.count, self.back, self.seen = net, vid, count, back, 0

    def measured(self, record: MeasurementRecord) -> None:
        self.seen += 1
        if self.seen == self.count:
            self.net.dead.add(self.vid)
        if self.back is not None and self.seen == self.back:
            self.net.dead.discard(self.vid)


def test_a_tunnel_that_dies_mid_run_gives_no_blocked_verdict_and_counts_the_lost_pairs(tmp_path: Path, store: Store) -> None:
    listed = entries(30)
    net = FakeNetwork()
    cfg = config(tmp_path, concurrency=4)
    result = asyncio.run(audit(cfg, store, DiesAfter(net, "a", 10), lists=ListSet(listed, (), ()), probes=net.probes))
    records = judged(store, result.run.run_id)
    at_a = [r for (pid, _), r in records.items() if pid == "a"]
    assert len(at_a) == 30
    assert not [r for r in at_a if r.judgement.verdict is Verdict.BLOCKED]  # every close was the tunnel's
    lost = [r for r in at_a if r.judgement.rule == "vantage.unhealthy"]
    assert lost and all(r.judgement.verdict is Verdict.INCONCLUSIVE for r in lost)
    assert {r.judgement.verdict for (pid, _), r in records.items() if pid == "b"} == {Verdict.ACCESSIBLE}
    scores = {s.provider_id: s for s in result.scores}
    assert scores["a"].vantage_lost == len(lost) and scores["b"].vantage_lost == 0
    assert scores["a"].measured  # part of the list was measured there
    assert not result.all_measured  # the run exits 3


def test_measuring_resumes_when_the_vantage_passes_a_recheck_again(
    tmp_path: Path, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(VantageMonitor, "retry_seconds", 0.1)
    listed = entries(40)
    net = FakeNetwork(delay={e.url: 0.05 for e in listed})
    observer = DiesAfter(net, "a", 6, back=14)
    measured = run(config(tmp_path, concurrency=2), store, net, listed, observer=observer)
    at_a = {url: r.judgement for (pid, url), r in judged(store, measured.run.run_id).items() if pid == "a"}
    assert not [j for j in at_a.values() if j.verdict is Verdict.BLOCKED]
    assert any(j.rule == "vantage.unhealthy" for j in at_a.values())
    # the last URLs, measured after the tunnel was back and a re-check passed, have verdicts again
    last = [at_a[e.url] for e in listed[-5:]]
    assert all(j.verdict is Verdict.ACCESSIBLE for j in last), last


def test_a_close_at_a_healthy_vantage_is_still_blocked(tmp_path: Path, store: Store) -> None:
    listed = entries(4)
    net = FakeNetwork(closed={("a", listed[1].url)})
    measured = run(config(tmp_path), store, net, listed)
    j = judged(store, measured.run.run_id)[("a", listed[1].url)].judgement
    assert (j.verdict, j.rule) == (Verdict.BLOCKED, "tcp.closed")  # the re-check after it passed


def test_an_nxdomain_needs_no_vantage_recheck(tmp_path: Path, store: Store) -> None:
    listed = entries(3)
    net = FakeNetwork(nxdomain={("a", listed[0].url)})
    measured = run(config(tmp_path), store, net, listed)
    j = judged(store, measured.run.run_id)[("a", listed[0].url)].judgement
    assert (j.verdict, j.rule) == (Verdict.BLOCKED, "dns.nxdomain")
    # control measured the URL again after the provider (control, test, control): twice for that URL only
    assert net.at("control").count(listed[0].url) == 2
    assert net.at("control").count(listed[1].url) == 1


def test_a_site_that_flaps_at_control_is_inconclusive(tmp_path: Path, store: Store) -> None:
    listed = entries(3)
    net = FakeNetwork(closed={("a", listed[0].url), ("a", listed[1].url)}, flapping={listed[0].url})
    measured = run(config(tmp_path), store, net, listed)
    records = judged(store, measured.run.run_id)
    j = records[("a", listed[0].url)].judgement
    assert (j.verdict, j.rule) == (Verdict.INCONCLUSIVE, "control.flapped")
    assert "control, measured again after the provider, no longer supports it: control cannot reach" in j.evidence
    # control still reaches the other closed site when it measures it again: that block counts
    assert records[("a", listed[1].url)].judgement.rule == "tcp.closed"
