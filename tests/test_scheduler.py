"""The run's scheduling without the lab: fake probe functions (auditor.toolkit.ProbeFunctions) stand in for
the network; the health checks, verdicts, store (a fresh SQLite file per test) and CSVs are the real ones.
What real probing does is tested against the lab (tests/test_lab.py, tests/test_engine.py)."""

from __future__ import annotations

import asyncio
import csv
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from auditor.audit import audit
from auditor.config import Config, ControlConfig, ProviderConfig, ResolverAddress, parse_store_url
from auditor.lists import ListSet
from auditor.measure import Vantage
from auditor.models import ListEntry, MeasurementRecord, ProviderHealth, Verdict
from auditor.observations import DnsLookup, EndpointObservation, HopObservation, UrlObservation
from auditor.progress import NullObserver
from auditor.scheduler import MeasuredRun, measure_run
from auditor.store import Store, open_store
from auditor.toolkit import ProbeFunctions
from probes import base

SITE = "127.0.0.80"  # what every name resolves to; never dialed: the probes are fakes
RESOLVERS = {"control": "127.0.0.10", "a": "127.0.0.11", "b": "127.0.0.12"}
CANARY = "http://canary.test/"


def entries(n: int) -> tuple[ListEntry, ...]:
    return tuple(ListEntry(f"http://site{i}.test/", f"site{i}.test", "test", i + 1) for i in range(n))


def config(tmp_path: Path, **overrides: Any) -> Config:
    providers = tuple(ProviderConfig(p, f"Provider {p.upper()}", (ResolverAddress(RESOLVERS[p]),)) for p in ("a", "b"))
    cfg = Config(province="Test", providers=providers, control=ControlConfig((ResolverAddress(RESOLVERS["control"]),)),
                 store=parse_store_url(f"sqlite:///{tmp_path / 'audit.db'}"), concurrency=4, loopback_only=True,
                 allow_private_destinations=True)
    return replace(cfg, **overrides)


def observation(vantage_id: str, url: str, how: str = "page") -> UrlObservation:
    """One hop: the page (accessible beside control's), NXDOMAIN (blocked), a TCP timeout (silence) or a
    close (what every connection through a `ssh -D` that dies does)."""
    host = url.split("/")[2]
    resolver = f"{RESOLVERS.get(vantage_id, '127.0.0.1')}:53"
    if how == "nxdomain":
        q = base.DnsObservation(resolver, "A", "tcp", base.Failure.DNS_NXDOMAIN, "NXDOMAIN")
        hop = HopObservation(url, "http", host, 80, DnsLookup(host, (q,), (), base.Failure.DNS_NXDOMAIN))
    else:
        q = base.DnsObservation(resolver, "A", "tcp", None, "NOERROR", (SITE,))
        failure = {"timeout": base.Failure.GENERIC_TIMEOUT, "closed": base.Failure.EOF}.get(how)
        tcp = base.TcpObservation(SITE, 80, failure)
        http = None if failure else base.HttpObservation(None, 200, "OK", title="Home", body_length=100,
                                                                   body_sha256="a" * 64)
        hop = HopObservation(url, "http", host, 80, DnsLookup(host, (q,), (SITE,), None),
                             (EndpointObservation(SITE, 80, tcp),), http, 1)
    return UrlObservation(url, vantage_id, "direct", (hop,), "2026-01-01T00:00:00Z", 1.0)


@dataclass
class FakeNetwork:
    """What each vantage sees of each URL, by plan; every call is recorded."""

    nxdomain: set[tuple[str, str]] = field(default_factory=set)  # (vantage id, url)
    timeout: set[tuple[str, str]] = field(default_factory=set)
    closed: set[tuple[str, str]] = field(default_factory=set)
    bug: set[tuple[str, str]] = field(default_factory=set)  # measuring raises, as a bug would
    hang: set[str] = field(default_factory=set)  # urls whose measurement never ends
    delay: dict[str, float] = field(default_factory=dict)  # url -> seconds
    silent_resolvers: set[str] = field(default_factory=set)  # resolver IPs that time out
    dead: set[str] = field(default_factory=set)  # vantage ids whose tunnel died: connections close, DNS silent
    flapping: set[str] = field(default_factory=set)  # urls that control reaches once, then not any more
    measured: list[tuple[str, str]] = field(default_factory=list)  # (vantage id, url), as called
    controls_given: list[tuple[str, str, UrlObservation | None]] = field(default_factory=list)
    completed: list[str] = field(default_factory=list)  # urls, in the order their measurements ended

    @property
    def probes(self) -> ProbeFunctions:
        return ProbeFunctions(measure_url=self.measure_url, query_resolver=self.query_resolver)

    async def measure_url(
        self, v: Vantage, url: str, control: UrlObservation | None = None, /, *, content: bool = True
    ) -> UrlObservation:
        self.measured.append((v.id, url))
        self.controls_given.append((v.id, url, control))
        if url in self.hang:
            await asyncio.Event().wait()
        await asyncio.sleep(self.delay.get(url, 0))
        if (v.id, url) in self.bug:
            raise KeyError("simulated bug")
        self.completed.append(url)
        if v.id in self.dead:
            return observation(v.id, url, "closed")
        if v.id == "control" and url in self.flapping and self.at("control").count(url) > 1:
            return observation(v.id, url, "timeout")
        plan = {"nxdomain": self.nxdomain, "timeout": self.timeout, "closed": self.closed}
        how = next((how for how, pairs in plan.items() if (v.id, url) in pairs), "page")
        return observation(v.id, url, how)

    async def query_resolver(
        self, ctx: base.ProbeContext, ip: str, port: int, name: str, qtype: str = "A", /
    ) -> base.DnsObservation:
        if ip in self.silent_resolvers or any(RESOLVERS.get(vid) == ip for vid in self.dead):
            return base.DnsObservation(f"{ip}:{port}", qtype, "tcp", base.Failure.GENERIC_TIMEOUT, error="timed out")
        return base.DnsObservation(f"{ip}:{port}", qtype, "tcp", None, "NOERROR", (SITE,))

    def at(self, vantage_id: str) -> list[str]:
        return [url for vid, url in self.measured if vid == vantage_id]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = open_store(f"sqlite:///{tmp_path / 'audit.db'}")
    yield s
    s.close()


def run(cfg: Config, store: Store, net: FakeNetwork, listed: tuple[ListEntry, ...], **options: Any) -> MeasuredRun:
    return asyncio.run(measure_run(cfg, store, listed, probes=net.probes, **options))


def pairs(store: Store, run_id: str) -> Counter[tuple[str, str]]:
    return Counter((r.provider_id, r.entry.url) for r in store.iter_measurements(run_id))


def test_control_is_measured_once_per_url_and_shared(tmp_path: Path, store: Store) -> None:
    net, listed = FakeNetwork(), entries(6)
    measured = run(config(tmp_path), store, net, listed)
    urls = [e.url for e in listed]
    assert sorted(net.at("control")) == sorted(urls)  # once each, not once per provider
    assert sorted(net.at("a")) == sorted(net.at("b")) == sorted(urls)
    control_of = {url: obs for vid, url, obs in net.controls_given if vid == "control"}
    assert all(obs is None for vid, _, obs in net.controls_given if vid == "control")
    for vid, url, given in net.controls_given:
        if vid != "control":  # the provider is measured beside control's own observation of that URL
            assert given is not None and given.vantage_id == "control" and given.url == url
    assert len(control_of) == len(urls)
    assert all(store.control_observation(measured.run.run_id, url) is not None for url in urls)
    assert pairs(store, measured.run.run_id) == Counter((p, u) for p in ("a", "b") for u in urls)
    assert measured.completed and measured.run.status == "complete"


def test_health_checks_are_stored_as_lines(tmp_path: Path, store: Store) -> None:
    measured = run(config(tmp_path, canaries=(CANARY,)), store, FakeNetwork(), entries(1))
    a = next(h for h in store.providers(measured.run.run_id) if h.provider_id == "a")
    assert a.measured and a.reason == ""
    assert a.checks == (
        "canary http://canary.test/: ok at control (HTTP 200)",
        "resolver 127.0.0.11:53: answers (NOERROR, 0 ms)",
        "canary http://canary.test/: ok (cleartext page via 127.0.0.80 matches control: HTTP 200 'Home', 100 B)",
    )


def test_unhealthy_provider_is_not_measured(tmp_path: Path, store: Store) -> None:
    net, listed = FakeNetwork(silent_resolvers={RESOLVERS["b"]}, nxdomain={("a", "http://site1.test/")}), entries(4)
    measured = run(config(tmp_path), store, net, listed)
    health = {h.provider_id: h for h in measured.health}
    assert health["a"].measured and not health["b"].measured
    assert health["b"].reason == "no resolver of the provider answers from its vantage"
    assert net.at("b") == []  # nothing is dialed through a provider that failed its health check
    records = list(store.iter_measurements(measured.run.run_id))
    at_b = [r for r in records if r.provider_id == "b"]
    assert len(at_b) == len(listed)
    assert {(r.judgement.verdict, r.judgement.rule) for r in at_b} == {(Verdict.INCONCLUSIVE, "provider.not_measured")}
    assert all("no resolver of the provider answers" in r.judgement.evidence for r in at_b)
    at_a = {r.entry.url: r.judgement for r in records if r.provider_id == "a"}
    assert at_a["http://site1.test/"].rule == "dns.nxdomain"
    assert at_a["http://site0.test/"].verdict is Verdict.ACCESSIBLE


def test_a_canary_blocked_at_a_provider_makes_it_unhealthy(tmp_path: Path, store: Store) -> None:
    net = FakeNetwork(nxdomain={("b", CANARY)})
    measured = run(config(tmp_path, canaries=(CANARY,)), store, net, entries(2))
    health = {h.provider_id: h for h in measured.health}
    assert health["a"].measured and not health["b"].measured
    assert health["b"].reason.startswith(f"canary {CANARY} not reachable: resolver 127.0.0.12:53 answered NXDOMAIN")
    assert net.at("b") == [CANARY]


def test_control_failing_a_canary_means_no_provider_is_measured(tmp_path: Path, store: Store) -> None:
    net = FakeNetwork(nxdomain={("control", CANARY)})
    measured = run(config(tmp_path, canaries=(CANARY,)), store, net, entries(3))
    assert [h.measured for h in measured.health] == [False, False]
    assert {h.reason for h in measured.health} == {"control vantage cannot reach the canaries: no verdict possible"}
    assert measured.health[0].checks == ("canary http://canary.test/: FAILED at control (DNS NXDOMAIN)",)
    assert net.measured == [("control", CANARY)]
    rules = {r.judgement.rule for r in store.iter_measurements(measured.run.run_id)}
    assert rules == {"provider.not_measured"}


def test_silence_after_a_failed_recheck_is_never_blocked(tmp_path: Path, store: Store) -> None:
    """A vantage that dies after its health check: its timeouts become `vantage.unhealthy`, not blocked."""
    listed = entries(3)
    net = FakeNetwork(timeout={("a", e.url) for e in listed} | {("b", e.url) for e in listed})

    class ResolverDiesAfterHealth(NullObserver):
        def provider_checked(self, health: ProviderHealth) -> None:
            if health.provider_id == "a":
                net.silent_resolvers.add(RESOLVERS["a"])

    measured = run(config(tmp_path), store, net, listed, observer=ResolverDiesAfterHealth())
    judged = {(r.provider_id, r.judgement.rule) for r in store.iter_measurements(measured.run.run_id)}
    assert judged == {("a", "vantage.unhealthy"), ("b", "tcp.timeout")}  # b passed its re-check: silence counts


def test_a_bug_on_one_url_is_recorded_and_the_run_goes_on(tmp_path: Path, store: Store) -> None:
    listed = entries(5)
    net = FakeNetwork(bug={("a", listed[1].url), ("control", listed[3].url)})
    measured = run(config(tmp_path), store, net, listed)
    assert measured.completed
    judged = {(r.provider_id, r.entry.url): r.judgement for r in store.iter_measurements(measured.run.run_id)}
    assert len(judged) == 2 * len(listed)
    bug_at_a = judged[("a", listed[1].url)]
    assert bug_at_a.rule == "internal.error" and bug_at_a.evidence.startswith("internal error measuring at a: KeyError at ")
    assert judged[("b", listed[1].url)].verdict is Verdict.ACCESSIBLE
    for pid in ("a", "b"):  # a bug at control leaves every provider without a verdict on that URL
        assert judged[(pid, listed[3].url)].evidence.startswith("internal error measuring at control: KeyError")
    assert sum(j.verdict is Verdict.ACCESSIBLE for j in judged.values()) == 2 * len(listed) - 3


def test_a_bug_at_control_still_gives_unmeasured_providers_their_row(tmp_path: Path, store: Store) -> None:
    listed = entries(3)
    net = FakeNetwork(bug={("control", listed[1].url)}, silent_resolvers={RESOLVERS["b"]})
    measured = run(config(tmp_path), store, net, listed)
    judged = {(r.provider_id, r.entry.url): r.judgement.rule for r in store.iter_measurements(measured.run.run_id)}
    assert judged[("a", listed[1].url)] == "internal.error"
    assert judged[("b", listed[1].url)] == "provider.not_measured"
    assert len(judged) == 2 * len(listed)


class StopAfter(NullObserver):
    """Sets `stop` once `count` judgements are stored, as SIGTERM would."""

    def __init__(self, stop: asyncio.Event, count: int) -> None:
        self.stop, self.count, self.seen = stop, count, 0

    def measured(self, record: MeasurementRecord) -> None:
        self.seen += 1
        if self.seen >= self.count:
            self.stop.set()


async def stopped_run(cfg: Config, store: Store, net: FakeNetwork, listed: tuple[ListEntry, ...],
                      count: int, drain_seconds: float = 5.0) -> MeasuredRun:
    stop = asyncio.Event()
    return await measure_run(cfg, store, listed, StopAfter(stop, count), stop=stop, drain_seconds=drain_seconds,
                             probes=net.probes)


def test_stop_drains_what_is_in_flight_and_returns_partial(tmp_path: Path, store: Store) -> None:
    listed = entries(30)
    hanging = listed[0].url
    net = FakeNetwork(hang={hanging}, delay={e.url: 0.05 for e in listed[1:]})
    cfg = config(tmp_path)  # concurrency 4: 8 URLs in flight at most
    measured = asyncio.run(stopped_run(cfg, store, net, listed, count=1, drain_seconds=1.0))
    assert not measured.completed and measured.run.status == "partial"
    stored_run = store.get_run(measured.run.run_id)
    assert stored_run is not None and stored_run.status == "partial"
    stored = pairs(store, measured.run.run_id)
    assert all(url != hanging for _, url in stored)  # abandoned after the drain, not stored
    started = {url for _, url in net.measured}
    assert len(started) <= 8 and listed[-1].url not in started  # no new URL after the stop
    in_flight_then_done = {url for _, url in stored}
    assert len(in_flight_then_done) >= 2  # what was in flight finished and was stored
    assert all(n == 1 for n in stored.values())


def test_resume_skips_stored_pairs(tmp_path: Path, store: Store) -> None:
    cfg, listed = config(tmp_path), entries(20)
    first_net = FakeNetwork(delay={e.url: 0.01 for e in listed})
    first = asyncio.run(stopped_run(cfg, store, first_net, listed, count=3))
    assert first.run.status == "partial"
    before = pairs(store, first.run.run_id)
    assert 0 < len(before) < 2 * len(listed)

    net = FakeNetwork()
    resumed = run(cfg, store, net, listed, resume=store.get_run(first.run.run_id))
    assert resumed.run.run_id == first.run.run_id and resumed.completed
    again = {(vid, url) for vid, url in net.measured if vid != "control"}
    assert not again & set(before)  # no stored pair measured twice
    after = pairs(store, first.run.run_id)
    assert after == Counter((p, e.url) for p in ("a", "b") for e in listed)  # every pair once
    fully_stored = {url for url in (e.url for e in listed) if ("a", url) in before and ("b", url) in before}
    assert not fully_stored & set(net.at("control"))  # control only for URLs some provider still needs


def test_resume_with_another_config_is_refused(tmp_path: Path, store: Store) -> None:
    from auditor.errors import UsageError

    first = asyncio.run(stopped_run(config(tmp_path), store, FakeNetwork(), entries(20), count=1))
    with pytest.raises(UsageError, match="started with another configuration"):
        run(config(tmp_path, concurrency=5), store, FakeNetwork(), entries(20), resume=first.run)


def test_csv_rows_follow_list_order_not_completion_order(tmp_path: Path, store: Store) -> None:
    # two lists interleaved, so that neither (list, line) nor the URL orders the rows as the lists do
    listed = tuple(ListEntry(f"http://{'zy'[i % 2]}{7 - i}.test/", f"{'zy'[i % 2]}{7 - i}.test", "zy"[i % 2], i // 2 + 1)
                   for i in range(8))
    net = FakeNetwork(delay={e.url: 0.02 * (len(listed) - i) for i, e in enumerate(listed)})  # last done first
    lists = ListSet(listed, (), ())
    result = asyncio.run(audit(config(tmp_path), store, lists=lists, out_dir=tmp_path / "out", probes=net.probes))
    assert [p.name for p in result.csv_paths] == [f"measurements-{result.run.run_id}.csv",
                                                  f"summary-{result.run.run_id}.csv"]
    urls = [e.url for e in listed]
    completed_order = list(dict.fromkeys(u for u in net.completed if u in urls))
    assert completed_order != urls  # the test can fail: measurements ended out of list order
    with result.csv_paths[0].open(encoding="utf-8", newline="") as fh:
        rows = [(r["provider_id"], r["url"]) for r in csv.DictReader(fh)]
    assert rows == [(p, u) for p in ("a", "b") for u in urls]


def test_the_engine_writes_no_file(tmp_path: Path, store: Store) -> None:
    """Only audit() with an out_dir writes outputs; the run itself touches nothing but the store."""
    work = tmp_path / "work"
    work.mkdir()
    cfg = config(tmp_path, output_dir=work / "reports")
    result = asyncio.run(audit(cfg, store, lists=ListSet(entries(2), (), ()), probes=FakeNetwork().probes))
    assert result.csv_paths == () and list(work.iterdir()) == []


def test_importing_the_audit_core_loads_neither_rich_nor_typer() -> None:
    code = ("import sys, auditor.audit, auditor.unattended, auditor.analyst, auditor.doctor; "
            "print(sorted(m for m in ('rich', 'typer') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
