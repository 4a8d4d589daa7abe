"""The run analysis: time to block, SLA breaches, must-block / must-allow, regressions, trends."""

from __future__ import annotations

import datetime as dt
import statistics
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from auditor.analysis import ProviderAnalysis, RunAnalysis, analyse, score_from_counts
from auditor.errors import UsageError
from auditor.models import ListEntry, MeasurementRecord, Method, RunInfo, Verdict
from auditor.scoring import score_run
from auditor.store import SqliteStore
from tests import fixed_store as fx
from tests.builders import make_entry, make_health, make_record, make_run

UTC = dt.UTC


@pytest.fixture(scope="module")
def store() -> Iterator[SqliteStore]:
    s = fx.fixed_store()
    yield s
    s.close()


def run_analysis(store: SqliteStore, run: RunInfo = fx.LAST, **kw: Any) -> RunAnalysis:
    kw.setdefault("must_block", fx.MUST_BLOCK)
    kw.setdefault("must_allow", fx.MUST_ALLOW)
    return analyse(store, run.run_id, grace_hours=fx.GRACE_HOURS, timezone=fx.TIMEZONE, **kw)


def provider_of(a: RunAnalysis, provider_id: str) -> ProviderAnalysis:
    p = a.provider(provider_id)
    assert p is not None, f"{provider_id} not in the analysis"
    return p


def test_counts_and_compliance_leave_must_allow_out(store: SqliteStore) -> None:
    a = run_analysis(store)
    vnpt = provider_of(a, "vnpt")
    # 8 entries, the must-allow portal left out; moi.example is in grace (added the run's local day)
    s = vnpt.score
    assert (s.urls_total, s.blocked, s.accessible, s.inconclusive, s.in_grace) == (7, 4, 2, 1, 1)
    assert s.compliance_pct == 80.0  # 4 blocked of 4 + casino accessible
    without = run_analysis(store, must_allow=())
    assert provider_of(without, "vnpt").score.urls_total == 8
    assert provider_of(without, "vnpt").score.compliance_pct == pytest.approx(100 * 4 / 6)  # portal counts against


def test_per_list_and_per_category(store: SqliteStore) -> None:
    viettel = provider_of(run_analysis(store), "viettel")
    cats = {g.key: g for g in viettel.by_category}
    assert cats["TT"].compliance_pct == 0.0 and cats["TT"].label == "Tin tức"
    assert cats["CB"].compliance_pct == 100.0 and cats["CB"].in_grace == 1 and cats["CB"].urls_total == 3
    lists = {g.key: g for g in viettel.by_list}
    assert set(lists) == {"bocongan", "treem", "must-block"}  # must-allow left out
    assert lists["bocongan"].compliance_pct == pytest.approx(200 / 3)
    assert provider_of(run_analysis(store), "mobifone").by_category[0].compliance_pct is None  # not measured


def test_violations_and_sla_breaches(store: SqliteStore) -> None:
    a = run_analysis(store)
    assert [(f.provider_id, f.url) for f in a.violations] == [
        ("vnpt", fx.CASINO.url),
        ("viettel", fx.NEWS.url),
        ("fpt", fx.NEWS.url),
        ("fpt", fx.SLOW.url),
        ("fpt", fx.EVIL.url),
        ("fpt", fx.FORUM.url),
        ("fpt", fx.CANARY.url),
    ]
    # forum and the canary have no date: violations, but no SLA to breach
    breaches = {(b.finding.provider_id, b.finding.url): b for b in a.sla_breaches}
    assert set(breaches) == {(p, u) for p, u in [(f.provider_id, f.url) for f in a.violations]} - {
        ("fpt", fx.FORUM.url),
        ("fpt", fx.CANARY.url),
    }
    # slow.example added 2026-11-24 = 2026-11-23T17:00Z; the run started 2026-11-27T18:30Z
    slow = breaches[("fpt", fx.SLOW.url)]
    assert (slow.hours_since_added, slow.hours_overdue) == (97.5, 73.5)
    assert provider_of(a, "fpt").sla_breaches == 3 and provider_of(a, "fpt").violations == 5


def test_time_to_block_is_the_first_blocked_run_against_the_date(store: SqliteStore) -> None:
    a = run_analysis(store)
    ttb = {(t.provider_id, t.url): t for t in a.time_to_block}
    slow = ttb[("vnpt", fx.SLOW.url)]  # accessible twice, blocked from the third night
    assert slow.run_id == fx.RUNS[2].run_id and slow.blocked_at == fx.RUNS[2].started_at
    assert slow.hours == 73.5
    assert ttb[("viettel", fx.NEW.url)].hours == 1.5  # blocked the first night it was listed
    assert ttb[("vnpt", fx.FORUM.url)].hours is None  # no date
    assert ("fpt", fx.SLOW.url) not in ttb  # never blocked
    assert ("vnpt", fx.CASINO.url) in ttb  # accessible now, but it was blocked once
    assert ("viettel", fx.PORTAL.url) not in ttb  # must-allow: not something to block
    hours = [ttb[("vnpt", e.url)].hours for e in (fx.CASINO, fx.NEWS, fx.SLOW, fx.EVIL)]
    assert hours == [577.5, 121.5, 73.5, 985.5]  # 24 d 1.5 h after 2026-11-01 local midnight, ...
    assert provider_of(a, "vnpt").median_hours_to_block == statistics.median([577.5, 121.5, 73.5, 985.5]) == 349.5
    assert provider_of(a, "vnpt").blocked_with_date == 4
    assert provider_of(a, "mobifone").median_hours_to_block is None


def test_an_entry_blocked_before_it_was_listed_took_no_time() -> None:
    with SqliteStore(":memory:") as s:
        r1 = _run(s, "r1", dt.datetime(2026, 11, 1, 18, 0, tzinfo=UTC), {"p": [(_e("x", dt.date(2026, 11, 20)), "B")]})
        a = analyse(s, r1.run_id, grace_hours=24, timezone=fx.TIMEZONE)
        assert a.time_to_block[0].hours == 0.0


def test_must_block_canary_let_through_flags_the_provider(store: SqliteStore) -> None:
    a = run_analysis(store)
    assert [(f.provider_id, f.url) for f in a.must_block_failed] == [("fpt", fx.CANARY.url)]
    assert provider_of(a, "fpt").flagged and provider_of(a, "fpt").must_block_failed == 1
    assert not provider_of(a, "vnpt").flagged and not provider_of(a, "viettel").flagged
    assert not provider_of(run_analysis(store, must_block=()), "fpt").flagged


def test_blocked_must_allow_is_overblocking_reported_apart(store: SqliteStore) -> None:
    a = run_analysis(store)
    assert [(f.provider_id, f.url, f.method) for f in a.overblocked] == [("viettel", fx.PORTAL.url, Method.DNS)]
    assert provider_of(a, "viettel").overblocked == 1
    assert fx.PORTAL.url not in {f.url for f in a.violations}
    assert [g.key for g in provider_of(a, "viettel").by_list] == ["bocongan", "must-block", "treem"]


def test_newly_accessible_is_blocked_in_the_previous_run(store: SqliteStore) -> None:
    a = run_analysis(store)
    assert [(n.finding.provider_id, n.finding.url, n.previous_run_id) for n in a.newly_accessible] == [
        ("vnpt", fx.CASINO.url, fx.RUNS[2].run_id),
        ("fpt", fx.CANARY.url, fx.RUNS[2].run_id),
    ]
    # the night before, casino was blocked everywhere: nothing newly accessible there
    earlier = run_analysis(store, run=fx.RUNS[2])
    assert [n.finding.url for n in earlier.newly_accessible] == []


def test_persistent_violations_count_runs_in_a_row(store: SqliteStore) -> None:
    a = run_analysis(store, persistent_after=3)
    got = {(p.finding.provider_id, p.finding.url): (p.runs_in_a_row, p.since_run_id) for p in a.persistent_violations}
    assert got == {
        ("viettel", fx.NEWS.url): (3, fx.RUNS[1].run_id),
        ("fpt", fx.NEWS.url): (4, fx.RUNS[0].run_id),
        ("fpt", fx.EVIL.url): (4, fx.RUNS[0].run_id),
        # fpt forum is AAIA: the inconclusive night breaks the streak
    }
    a4 = run_analysis(store, persistent_after=4)
    assert {(p.finding.provider_id, p.finding.url) for p in a4.persistent_violations} == {
        ("fpt", fx.NEWS.url),
        ("fpt", fx.EVIL.url),
    }
    # the window bounds the streak
    short = run_analysis(store, persistent_after=2, history_runs=2)
    assert {p.runs_in_a_row for p in short.persistent_violations} == {2}


def test_trend_is_the_score_of_each_run_in_the_window(store: SqliteStore) -> None:
    a = run_analysis(store, history_runs=3)
    assert [r.run_id for r in a.trend_runs] == [r.run_id for r in fx.RUNS[1:]]
    assert [p.provider_id for p in a.providers] == [pid for pid, _, _ in fx.PROVIDERS]
    for p in a.providers:
        assert [t.run_id for t in p.trend] == [r.run_id for r in fx.RUNS[1:]]
        assert p.trend[-1].compliance_pct == p.score.compliance_pct
    for run in fx.RUNS:
        providers = store.providers(run.run_id)
        streamed = score_run(run, providers, store.iter_measurements(run.run_id), grace_hours=fx.GRACE_HOURS,
                             timezone=fx.TIMEZONE, exclude_urls=fx.MUST_ALLOW)
        counted = score_from_counts(store, run, providers, grace_hours=fx.GRACE_HOURS, timezone=fx.TIMEZONE,
                                    exclude_urls=fx.MUST_ALLOW)
        assert streamed == counted, run.run_id
    mobifone = provider_of(run_analysis(store), "mobifone").trend
    assert [t.compliance_pct for t in mobifone] == [0.0, 0.0, 0.0, None]
    assert [t.measured for t in mobifone] == [True, True, True, False]


def test_later_runs_do_not_leak_into_an_earlier_runs_analysis(store: SqliteStore) -> None:
    a = run_analysis(store, run=fx.RUNS[1])
    assert [r.run_id for r in a.trend_runs] == [r.run_id for r in fx.RUNS[:2]]
    ttb = {(t.provider_id, t.url): t for t in a.time_to_block}
    assert ("vnpt", fx.SLOW.url) not in ttb  # blocked only from the third night


def test_previous_run_is_the_providers_previous_run() -> None:
    e = _e("x", dt.date(2026, 1, 1))
    with SqliteStore(":memory:") as s:
        t0 = dt.datetime(2026, 11, 1, 18, 0, tzinfo=UTC)
        _run(s, "r1", t0, {"a": [(e, "B")], "b": [(e, "B")]})
        _run(s, "r2", t0 + dt.timedelta(hours=1), {"b": [(e, "A")]})  # `run --provider b`
        _run(s, "r3", t0 + dt.timedelta(days=1), {"a": [(e, "A")], "b": [(e, "A")]})
        a = analyse(s, "r3", grace_hours=24, timezone=fx.TIMEZONE, persistent_after=2)
        assert [(n.finding.provider_id, n.previous_run_id) for n in a.newly_accessible] == [("a", "r1")]
        assert [(p.finding.provider_id, p.runs_in_a_row) for p in a.persistent_violations] == [("b", 2)]
        assert [t.run_id for t in provider_of(a, "a").trend] == ["r1", "r3"]
        assert [t.run_id for t in provider_of(a, "b").trend] == ["r1", "r2", "r3"]


@pytest.mark.parametrize(
    ("started_at", "breach"),
    [
        # added 2026-11-27 = 2026-11-26T17:00Z in Gia Lai; 24 h of grace end at 2026-11-27T17:00Z
        (dt.datetime(2026, 11, 27, 17, 0, tzinfo=UTC) - dt.timedelta(seconds=1), False),
        (dt.datetime(2026, 11, 27, 17, 0, tzinfo=UTC), True),
        (dt.datetime(2026, 11, 27, 17, 0, 1, tzinfo=UTC), True),
    ],
)
def test_sla_breach_boundary(started_at: dt.datetime, breach: bool) -> None:
    with SqliteStore(":memory:") as s:
        _run(s, "r1", started_at, {"p": [(_e("x", dt.date(2026, 11, 27)), "A")]})
        a = analyse(s, "r1", grace_hours=24, timezone=fx.TIMEZONE)
        assert provider_of(a, "p").sla_breaches == int(breach)
        assert provider_of(a, "p").violations == int(breach)
        if breach:
            (b,) = a.sla_breaches
            assert b.hours_overdue == (started_at - dt.datetime(2026, 11, 27, 17, 0, tzinfo=UTC)).total_seconds() / 3600
        else:
            assert a.sla_breaches == () and a.violations == ()  # still in grace: reported, not a violation


def test_findings_are_capped_but_counted() -> None:
    with SqliteStore(":memory:") as s:
        _run(s, "r1", dt.datetime(2026, 11, 1, tzinfo=UTC), {"p": [(_e(f"s{i}", None), "A") for i in range(7)]})
        a = analyse(s, "r1", grace_hours=24, timezone=fx.TIMEZONE, max_findings=3)
        assert len(a.violations) == 3 and provider_of(a, "p").violations == 7


def test_unknown_run_is_a_usage_error(store: SqliteStore) -> None:
    with pytest.raises(UsageError, match="no run"):
        analyse(store, "nope", grace_hours=24, timezone=fx.TIMEZONE)


# --- a small store, run by run -------------------------------------------------------------------------


def _e(name: str, added: dt.date | None) -> ListEntry:
    return make_entry(f"http://{name}.example/", date_added=added)


VERDICT_OF = {"B": Verdict.BLOCKED, "A": Verdict.ACCESSIBLE, "I": Verdict.INCONCLUSIVE}


def _run(store: SqliteStore, run_id: str, started: dt.datetime, rows: dict[str, list[tuple[ListEntry, str]]]) -> RunInfo:
    """One complete run: for each provider, (entry, verdict letter) pairs in list order."""
    run = make_run(run_id, started)
    store.begin_run(run)
    for pid, pairs in rows.items():
        store.record_provider(make_health(pid, run_id=run_id))
        for i, (entry, letter) in enumerate(pairs):
            rec = make_record(entry, provider_id=pid, run_id=run_id, verdict=VERDICT_OF[letter], measured_at=started)
            store.record_measurement(rec, ordinal=i)
    store.finish_run(run_id, started + dt.timedelta(minutes=5), "complete")
    return run


def test_redacted_findings_show_what_outputs_may_show(store: SqliteStore) -> None:
    def redact(rec: MeasurementRecord) -> MeasurementRecord:
        if rec.entry.list_name != "treem":
            return rec
        return replace(rec, entry=replace(rec.entry, url="hmac-sha256:" + rec.entry.host[:4]),
                       judgement=replace(rec.judgement, evidence="(hidden)"))

    a = run_analysis(store, redact=redact)
    evil = [f for f in a.violations if f.list_name == "treem"]
    assert {f.url for f in evil} == {"hmac-sha256:evil", "hmac-sha256:foru"}
    assert all(f.evidence == "(hidden)" for f in evil)
    assert {v.finding.url for v in a.persistent_violations} == {fx.NEWS.url, "hmac-sha256:evil"}
    ttb_urls = {t.url for t in a.time_to_block}
    assert "hmac-sha256:evil" in ttb_urls and fx.EVIL.url not in ttb_urls
    assert provider_of(a, "fpt").persistent_violations == 2  # the history still follows the real URL
