"""Compliance scores: the formula, the grace period (with its time zone), and when there is no score."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from zoneinfo import ZoneInfoNotFoundError

import pytest

from auditor.models import ListEntry, MeasurementRecord, ProviderHealth, ProviderScore, Verdict
from auditor.scoring import is_in_grace, score_groups, score_run
from tests.builders import make_entry, make_health, make_record, make_run

UTC = dt.UTC
HCM = "Asia/Ho_Chi_Minh"  # UTC+7, no DST
# 2026-11-28 05:30 in Gia Lai
RUN = make_run("r1", dt.datetime(2026, 11, 27, 22, 30, tzinfo=UTC))

_counter = iter(range(1, 1_000_000))


def entry(date_added: dt.date | None = None, list_name: str = "l", code: str = "") -> ListEntry:
    """A new URL each call."""
    n = next(_counter)
    return make_entry(f"https://s{n}.example/", line=n, date_added=date_added, list_name=list_name,
                      category_code=code, category_description=f"desc {code}" if code else "")


def rec(
    provider_id: str, verdict: Verdict, date_added: dt.date | None = None, run_id: str = "r1"
) -> MeasurementRecord:
    return make_record(entry(date_added), provider_id=provider_id, run_id=run_id, verdict=verdict,
                       measured_at=RUN.started_at)


def provider(provider_id: str, measured: bool = True, asn: int | None = 64500) -> ProviderHealth:
    return make_health(provider_id, asn=asn, measured=measured)


def score(
    providers: list[ProviderHealth],
    records: list[MeasurementRecord],
    grace_hours: float = 24.0,
    timezone: str = HCM,
) -> list[ProviderScore]:
    return score_run(RUN, providers, iter(records), grace_hours=grace_hours, timezone=timezone)


def test_formula_and_counts() -> None:
    old = dt.date(2026, 1, 1)
    records = (
        [rec("vnpt", Verdict.BLOCKED, old) for _ in range(7)]
        + [rec("vnpt", Verdict.ACCESSIBLE, old)]
        + [rec("vnpt", Verdict.INCONCLUSIVE, old) for _ in range(2)]
        + [rec("vnpt", Verdict.BLOCKED)]  # no date: never in grace
    )
    (s,) = score([provider("vnpt")], records)
    assert (s.urls_total, s.blocked, s.accessible, s.inconclusive, s.in_grace) == (11, 8, 1, 2, 0)
    assert s.compliance_pct == pytest.approx(100 * 8 / 9)
    assert (s.run_id, s.started_at, s.province, s.provider_id, s.provider_name, s.asn, s.measured) == (
        "r1",
        RUN.started_at,
        "Gia Lai",
        "vnpt",
        "VNPT",
        64500,
        True,
    )


def test_exact_ratio_is_the_nearest_float() -> None:
    records = [rec("p", Verdict.BLOCKED) for _ in range(573)] + [
        rec("p", Verdict.ACCESSIBLE) for _ in range(427)
    ]
    (s,) = score([provider("p")], records)
    assert s.compliance_pct == 57.3
    (s,) = score(
        [provider("p")], [rec("p", Verdict.BLOCKED) for _ in range(7)] + [rec("p", Verdict.ACCESSIBLE)]
    )
    assert s.compliance_pct == 87.5


def test_provider_order_kept_and_one_score_each() -> None:
    records = [
        rec("b", Verdict.BLOCKED),
        rec("a", Verdict.ACCESSIBLE),
        rec("zz", Verdict.BLOCKED),
        rec("b", Verdict.BLOCKED, run_id="other-run"),
    ]
    scores = score([provider("b"), provider("a"), provider("c")], records)
    assert [(s.provider_id, s.urls_total, s.compliance_pct) for s in scores] == [
        ("b", 1, 100.0),
        ("a", 1, 0.0),
        ("c", 0, None),  # measured but no rows: nothing measurable
    ]


def test_measurements_are_consumed_as_a_stream() -> None:
    def stream() -> Iterator[MeasurementRecord]:
        for _ in range(1000):
            yield rec("p", Verdict.BLOCKED)

    (s,) = score_run(RUN, [provider("p")], stream(), grace_hours=24, timezone=HCM)
    assert (s.urls_total, s.compliance_pct) == (1000, 100.0)


def test_unmeasured_provider_has_no_score() -> None:
    records = [rec("dead", Verdict.BLOCKED), rec("dead", Verdict.INCONCLUSIVE)]
    (s,) = score([provider("dead", measured=False)], records)
    assert s.compliance_pct is None
    assert (s.measured, s.urls_total, s.blocked, s.inconclusive) == (False, 2, 1, 1)


def test_nothing_measurable_has_no_score() -> None:
    (s,) = score([provider("p")], [rec("p", Verdict.INCONCLUSIVE) for _ in range(3)])
    assert s.compliance_pct is None and s.inconclusive == 3
    (s,) = score([provider("p")], [])
    assert s.compliance_pct is None and s.urls_total == 0


def test_in_grace_entries_counted_but_not_scored() -> None:
    today = dt.date(2026, 11, 28)  # local date of the run: 5.5 h ago at local midnight
    records = [
        rec("p", Verdict.BLOCKED, dt.date(2026, 1, 1)),
        rec("p", Verdict.ACCESSIBLE, today),  # in grace: not yet a violation
        rec("p", Verdict.INCONCLUSIVE, today),
        rec("p", Verdict.BLOCKED, today),
    ]
    (s,) = score([provider("p")], records)
    assert (s.urls_total, s.blocked, s.accessible, s.inconclusive, s.in_grace) == (4, 2, 1, 1, 3)
    assert s.compliance_pct == 100.0


def test_only_in_grace_entries_gives_no_score() -> None:
    (s,) = score([provider("p")], [rec("p", Verdict.ACCESSIBLE, dt.date(2026, 11, 28))])
    assert s.in_grace == 1 and s.compliance_pct is None


# Local midnight of 2026-11-27 in Ho Chi Minh City is 2026-11-26T17:00Z.
ADDED = dt.date(2026, 11, 27)
MIDNIGHT_UTC = dt.datetime(2026, 11, 26, 17, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "started_at, expected",
    [
        (MIDNIGHT_UTC + dt.timedelta(hours=24) - dt.timedelta(microseconds=1), True),  # just inside
        (MIDNIGHT_UTC + dt.timedelta(hours=24), False),  # exactly 24 h: no longer "less than"
        (MIDNIGHT_UTC + dt.timedelta(hours=24, seconds=1), False),  # just outside
        (MIDNIGHT_UTC, True),
        (MIDNIGHT_UTC - dt.timedelta(hours=3), True),  # dated after the run started
    ],
)
def test_grace_boundary(started_at: dt.datetime, expected: bool) -> None:
    assert is_in_grace(entry(ADDED), started_at, 24, HCM) is expected


def test_grace_boundary_in_another_zone_of_the_same_instant() -> None:
    started = MIDNIGHT_UTC + dt.timedelta(hours=23, minutes=59)
    given_in_ict = started.astimezone(dt.timezone(dt.timedelta(hours=7)))
    assert is_in_grace(entry(ADDED), given_in_ict, 24, HCM) is True


def test_time_zone_moves_the_boundary() -> None:
    # 2026-11-27T20:00Z: 27 h after midnight in Ho Chi Minh City, but only 20 h after midnight UTC.
    started = dt.datetime(2026, 11, 27, 20, 0, tzinfo=UTC)
    assert is_in_grace(entry(ADDED), started, 24, HCM) is False
    assert is_in_grace(entry(ADDED), started, 24, "UTC") is True
    run = make_run("r1", started)
    records = [rec("p", Verdict.ACCESSIBLE, ADDED), rec("p", Verdict.BLOCKED, dt.date(2020, 1, 1))]
    (hcm,) = score_run(run, [provider("p")], records, grace_hours=24, timezone=HCM)
    (utc,) = score_run(run, [provider("p")], records, grace_hours=24, timezone="UTC")
    assert (hcm.in_grace, hcm.compliance_pct) == (0, 50.0)
    assert (utc.in_grace, utc.compliance_pct) == (1, 100.0)


def test_no_date_is_never_in_grace() -> None:
    assert is_in_grace(entry(None), RUN.started_at, 10_000, HCM) is False


def test_zero_grace_hours() -> None:
    assert is_in_grace(entry(dt.date(2026, 11, 28)), RUN.started_at, 0, HCM) is False
    assert is_in_grace(entry(dt.date(2026, 11, 29)), RUN.started_at, 0, HCM) is True  # tomorrow's entry


def test_bad_time_zone_fails_before_reading() -> None:
    def stream() -> Iterator[MeasurementRecord]:
        raise AssertionError("must not be read")
        yield  # pragma: no cover

    with pytest.raises(ZoneInfoNotFoundError):
        score_run(RUN, [provider("p")], stream(), grace_hours=24, timezone="Asia/Nowhere")


def test_excluded_urls_are_left_out_entirely() -> None:
    records = [rec("p", Verdict.BLOCKED), rec("p", Verdict.ACCESSIBLE), rec("p", Verdict.BLOCKED)]
    allowed = frozenset({records[2].entry.url})  # a must-allow URL, blocked: over-blocking, not compliance
    (s,) = score_run(RUN, [provider("p")], records, grace_hours=24, timezone=HCM, exclude_urls=allowed)
    assert (s.urls_total, s.blocked, s.accessible, s.compliance_pct) == (2, 1, 1, 50.0)
    (s,) = score([provider("p")], records)
    assert (s.urls_total, s.blocked, s.compliance_pct) == (3, 2, pytest.approx(200 / 3))


def _grouped(list_name: str, code: str, verdict: Verdict, added: dt.date | None = None) -> MeasurementRecord:
    return make_record(entry(added, list_name, code), verdict=verdict, measured_at=RUN.started_at)


def test_score_groups_per_list_and_per_category() -> None:
    records = [
        _grouped("b", "CB", Verdict.BLOCKED),
        _grouped("b", "CB", Verdict.ACCESSIBLE),
        _grouped("a", "CB", Verdict.BLOCKED),
        _grouped("a", "TT", Verdict.INCONCLUSIVE),
        _grouped("a", "", Verdict.ACCESSIBLE, dt.date(2026, 11, 28)),  # in grace
    ]
    (b,) = score_groups(RUN, [provider("p")], records, grace_hours=24, timezone=HCM)
    assert [(g.key, g.urls_total, g.compliance_pct) for g in b.by_list] == [("a", 3, 100.0), ("b", 2, 50.0)]
    assert [(g.key, g.label, g.in_grace, g.compliance_pct) for g in b.by_category] == [
        ("", "", 1, None),
        ("CB", "desc CB", 0, pytest.approx(200 / 3)),
        ("TT", "desc TT", 0, None),
    ]
    (dead,) = score_groups(RUN, [provider("p", measured=False)], records, grace_hours=24, timezone=HCM)
    # not measured: every group is there, none has a score
    assert [(g.key, g.compliance_pct) for g in dead.by_list] == [("a", None), ("b", None)]
    assert [(g.key, g.compliance_pct) for g in dead.by_category] == [("", None), ("CB", None), ("TT", None)]
