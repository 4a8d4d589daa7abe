"""The benchmark's bulk lab is itself correct: the real engine, run against 20 of its sites, reaches exactly
the verdicts its plan says (so the benchmark's verdict check means something). No timing here."""

from __future__ import annotations

import asyncio
from collections import Counter

from auditor.config import load_config
from auditor.engine import run_audit
from auditor.store import open_store
from bench.bulk_lab import (
    CANARY_IP,
    MAX_SITES,
    BulkLab,
    BulkPlan,
    index_of,
    is_https,
    site_ip,
    site_url,
)
from bench.run import Figures, analyse


def test_plan_spreads_sites_and_shares_as_asked() -> None:
    plan = BulkPlan(20_000)
    assert len({site_ip(i) for i in range(MAX_SITES)} | {CANARY_IP}) == MAX_SITES + 1
    assert all(index_of(site_url(i)) == i for i in (0, 1, 19_999, MAX_SITES - 1))
    assert index_of("https://canary.bulk.example/") is None
    blocked = {
        role: sum(1 for _ in plan.blocked_sites(role)) for role in ("blackhole", "nxdomain", "snireset")
    }
    assert abs(blocked["blackhole"] - 1000) < 100
    assert abs(blocked["nxdomain"] - 2000) < 150
    assert abs(blocked["snireset"] - 1000) < 100  # 10% of the 10,000 https sites
    assert all(is_https(i) for i in plan.blocked_sites("snireset"))
    https_blackholed = sum(is_https(i) for i in plan.blocked_sites("blackhole"))
    assert 0 < https_blackholed < blocked["blackhole"]  # both schemes are blackholed
    assert [pid for pid, _ in plan.provider_roles()] == [
        "blackhole",
        "nxdomain",
        "snireset",
        "clean1",
        "clean2",
        "clean3",
    ]


def test_engine_reaches_the_planned_verdict_for_every_pair(tmp_path) -> None:
    plan = BulkPlan(20, blackhole_share=0.15, nxdomain_share=0.2, snireset_share=0.3)
    roles = dict(plan.provider_roles())
    for role in ("blackhole", "nxdomain", "snireset"):
        assert any(plan.blocks(role, i) for i in range(plan.sites)), role
    # a short connect timeout keeps the blackholed sites quick; the others stay roomy for a loaded machine
    with BulkLab(tmp_path, plan, timeouts={"dns": 4.0, "connect": 1.0, "tls": 4.0, "http": 6.0}) as lab:
        config = load_config(lab.config_path)
        assert config.loopback_only
        with open_store(config.store) as store:
            result = asyncio.run(run_audit(config, store))
            records = list(store.iter_measurements(result.run.run_id))
            # the benchmark's own accounting, on the same stored run
            fig = Figures(plan.sites, plan.providers, config.concurrency, timeout_s=1.0)
            analyse(fig, plan, store, result.run.run_id, config.concurrency)
    assert result.all_measured, [h.reason for h in result.health if not h.measured]
    assert Counter(r.provider_id for r in records) == {pid: plan.sites for pid in roles}
    wrong = []
    for r in records:
        i = index_of(r.entry.url)
        assert i is not None
        want = plan.expected(roles[r.provider_id], i)
        j = r.judgement
        got = (str(j.verdict), str(j.method) if j.method else "", j.rule if want.rule else "")
        if got != (want.verdict, want.method, want.rule):
            wrong.append(f"{r.provider_id} {r.entry.url}: {got} != {want} ({j.evidence})")
    assert not wrong, "\n".join(wrong)
    blocked = Counter(r.provider_id for r in records if r.judgement.verdict == "blocked")
    assert set(blocked) == {"blackhole", "nxdomain", "snireset"}

    assert fig.wrong == []
    assert (fig.measurements, fig.vantage_measurements) == (6 * plan.sites, 7 * plan.sites)
    blackholed = sum(1 for _ in plan.blocked_sites("blackhole"))
    # each blackholed connect is tried twice; a loaded machine may add a spurious timeout, never remove one
    assert fig.timed_out_by_step["tcp"] >= blackholed
    assert fig.timed_out_by_step["retried"] >= blackholed
    assert {"dns", "tcp", "tls", "http", "measurement"} <= set(fig.steps)
    assert sum(
        n for k, n in fig.verdicts.items() if k.startswith("snireset") and k.endswith("blocked/tls")
    ) == sum(1 for _ in plan.blocked_sites("snireset"))
