"""The SQLite store: round trips, buffering and durability, schema checks, store URLs."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from pathlib import Path
from typing import cast

import pytest

from auditor.errors import StoreError
from auditor.models import Confidence, ListEntry, MeasurementRecord, Method, ProviderHealth, RunInfo, Verdict
from auditor.observations import DnsLookup, EndpointObservation, HopObservation, UrlObservation
from auditor.store import Store, open_store
from auditor.store.sqlite import SqliteStore
from probes import base
from tests.builders import make_entry, make_health, make_judgement, make_record, make_run, observed

UTC = dt.UTC
ICT = dt.timezone(dt.timedelta(hours=7))
STARTED = dt.datetime(2026, 11, 27, 22, 30, 0, 123456, tzinfo=UTC)
NEVER = 3600.0  # a flush interval long enough that only flush()/close()/the row count write


def run_info(run_id: str = "r1", started: dt.datetime = STARTED) -> RunInfo:
    return make_run(run_id, started, config_digest="abc123")


def health(provider_id: str, *, provider_name: str | None = None, asn: int | None = 7552, measured: bool = True,
           reason: str = "", checks: tuple[str, ...] = ()) -> ProviderHealth:
    return make_health(provider_id, provider_name=provider_name or f"Provider {provider_id}", asn=asn,
                       measured=measured, reason=reason, checks=checks)


def entry(n: int, list_name: str = "bocongan") -> ListEntry:
    return make_entry(f"https://site{n}.example/path?q={n}", list_name=list_name, line=n + 1)


def observation(url: str = "https://site.example/", title: str = "", vantage_id: str = "vnpt") -> UrlObservation:
    """A small but complete observation: DNS, TCP, a TLS reset, and HTTP on a second endpoint."""
    host = url.split("/")[2]
    ip, other = "192.0.2.1", "192.0.2.2"
    dns = DnsLookup(
        host,
        (base.DnsObservation("203.162.4.191:53", "A", "udp", None, "NOERROR", (ip, other), elapsed_ms=3.25),),
        (ip, other),
        None,
    )
    reset = EndpointObservation(
        ip, 443, base.TcpObservation(ip, 443, None, 1.5), base.TlsObservation(host, base.Failure.CONNECTION_RESET, 2.0)
    )
    cert = base.CertificateInfo("CN=" + host, "CN=Test CA", "ab" * 32, "2027-01-01", (host,))
    ok = EndpointObservation(
        other, 443, base.TcpObservation(other, 443, None, 1.0), base.TlsObservation(host, None, certificate=cert)
    )
    http = base.HttpObservation(None, 200, "OK", (("content-type", "text/html"),), title=title, body_length=9)
    hop = HopObservation(url, "https", host, 443, dns, (reset, ok), http, http_attempts=1)
    return UrlObservation(url, vantage_id, "direct", (hop,), "2026-11-27T22:31:05Z", 12.5)


def record(
    n: int,
    provider_id: str = "vnpt",
    run_id: str = "r1",
    verdict: Verdict = Verdict.BLOCKED,
    list_name: str = "bocongan",
) -> MeasurementRecord:
    if verdict is Verdict.BLOCKED:
        judgement = make_judgement(verdict, "dns.nxdomain", "NXDOMAIN from 203.162.4.191")
    else:
        judgement = make_judgement(verdict, "http.same_as_control", "200, title matches control")
    return make_record(
        entry(n, list_name),
        provider_id=provider_id,
        run_id=run_id,
        judgement=judgement,
        measured_at=STARTED + dt.timedelta(seconds=n),
        observation=observation(f"https://site{n}.example/path?q={n}", title=str(n)),
    )


def count_rows(path: Path, table: str = "measurements") -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
    finally:
        conn.close()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "audit.db"


def test_sqlite_store_is_a_store(db: Path) -> None:
    with SqliteStore(str(db)) as store:
        assert isinstance(store, Store)


def test_round_trip_every_field(db: Path) -> None:
    started_ict = dt.datetime(2026, 11, 28, 5, 30, 0, 123456, tzinfo=ICT)  # = STARTED, given in +07:00
    run = make_run("r1", started_ict, config_digest="sha256:ff")
    rich_entry = make_entry(
        "https://xn--bo-dna.example/tin-tức?id=1",
        list_name="bocongan",
        line=17,
        category_code="CB",
        category_description="Cờ bạc trực tuyến",
        date_added=dt.date(2026, 11, 20),
        source="Công văn 123/BTTTT",
        notes="ghi chú, có dấu phẩy",
    )
    blocked = make_record(
        rich_entry,
        provider_id="vnpt",
        judgement=make_judgement(Verdict.BLOCKED, "tls.sni_reset", "RST after ClientHello", Method.TLS,
                                 Confidence.LIKELY),
        measured_at=dt.datetime(2026, 11, 28, 5, 31, 5, 42, tzinfo=ICT),
        observation=observation(rich_entry.url, title="Trang bị chặn"),
    )
    plain = make_record(
        entry(1),
        provider_id="fpt",
        judgement=make_judgement(Verdict.INCONCLUSIVE, "control.site_down", "control could not reach it"),
        measured_at=STARTED,
    )
    with SqliteStore(str(db)) as store:
        store.begin_run(run)
        store.record_provider(health("vnpt", checks=("resolver 203.162.4.191 ok", "canary blocked")))
        store.record_provider(health("fpt", asn=None, measured=False, reason="vantage down"))
        store.record_measurement(blocked)
        store.record_measurement(plain)
        store.record_control("r1", rich_entry.url, observation(rich_entry.url, vantage_id="control"))
        store.finish_run("r1", dt.datetime(2026, 11, 27, 23, 0, tzinfo=UTC), "partial")

    with SqliteStore(str(db)) as store:
        got_run = store.get_run("r1")
        assert got_run == make_run(
            "r1",
            STARTED,
            status="partial",
            finished_at=dt.datetime(2026, 11, 27, 23, 0, tzinfo=UTC),
            config_digest="sha256:ff",
        )
        assert got_run is not None and got_run.started_at.tzinfo is not None
        assert got_run.started_at.utcoffset() == dt.timedelta(0)
        assert got_run.started_at.microsecond == 123456

        assert store.providers("r1") == [
            health("vnpt", checks=("resolver 203.162.4.191 ok", "canary blocked")),
            health("fpt", asn=None, measured=False, reason="vantage down"),
        ]
        got = list(store.iter_measurements("r1"))
        assert got == [blocked, plain]  # provider insertion order: vnpt before fpt
        assert got[0].observation == blocked.observation  # not part of == on the dataclass
        assert got[1].observation is None
        assert got[0].measured_at.tzinfo is not None and got[0].measured_at.microsecond == 42
        assert got[0].measured_at == dt.datetime(2026, 11, 27, 22, 31, 5, 42, tzinfo=UTC)
        assert got[1].entry.date_added is None
        assert store.control_observation("r1", rich_entry.url) == observation(rich_entry.url, vantage_id="control")
        assert store.control_observation("r1", "https://other.example/") is None
        assert store.control_observation("r2", rich_entry.url) is None
        assert store.get_run("nope") is None


def test_observations_are_compact_json_text(db: Path) -> None:
    with SqliteStore(str(db)) as store:
        store.begin_run(run_info())
        obs = observation(title="Trang bị chặn")
        store.record_measurement(observed(record(1), obs))
        store.record_control("r1", obs.url, obs)
    conn = sqlite3.connect(db)
    (text,) = conn.execute("SELECT observations_json FROM measurements").fetchone()
    (control,) = conn.execute("SELECT observations_json FROM controls").fetchone()
    conn.close()
    # the text the store wrote before auditor.codec: compact, Vietnamese kept as it is
    old = json.dumps(base.to_dict(obs), separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    assert text == '{"provider":' + old + "}"
    assert control == old
    assert '"title":"Trang bị chặn"' in text


def test_not_json_able_observations_fail_in_the_caller(db: Path) -> None:
    bad = replace(observation(), vantage=cast(str, object()))  # a bug in a probe: not a string
    with SqliteStore(str(db)) as store:
        with pytest.raises(TypeError):
            store.record_measurement(observed(record(1), bad))
        with pytest.raises(TypeError):
            store.record_control("r1", "https://x.example/", bad)


def test_a_damaged_observation_is_a_store_error_that_says_which(db: Path) -> None:
    with SqliteStore(str(db)) as store:
        store.begin_run(run_info())
        store.record_measurement(record(1))
        store.record_control("r1", "https://x.example/", observation())
    conn = sqlite3.connect(db)
    conn.execute("""UPDATE measurements SET observations_json = '{"provider":{"url":1}}'""")
    conn.execute("""UPDATE controls SET observations_json = '{"url":'""")
    conn.commit()
    conn.close()
    with SqliteStore(str(db)) as store:
        with pytest.raises(StoreError, match=r"observation of https://site1\.example/path\?q=1 by vnpt in run r1 .*"
                           r"Expected `str`, got `int` - at `\$\.provider\.url`"):
            list(store.iter_measurements("r1"))
        with pytest.raises(StoreError, match=r"control observation of https://x\.example/ in run r1"):
            store.control_observation("r1", "https://x.example/")


def test_naive_datetimes_are_refused(db: Path) -> None:
    with SqliteStore(str(db)) as store, pytest.raises(ValueError, match="naive"):
        store.begin_run(run_info(started=dt.datetime(2026, 11, 27, 22, 30)))


def test_measurement_order_provider_then_list_order(db: Path) -> None:
    with SqliteStore(str(db)) as store:
        store.begin_run(run_info())
        store.record_provider(health("viettel"))
        store.record_provider(health("fpt"))
        store.record_provider(health("viettel", provider_name="Viettel (renamed)"))  # upsert keeps position
        # recorded out of order, as concurrent jobs finish
        for n, p in [(3, "fpt"), (2, "viettel"), (1, "fpt"), (3, "viettel"), (1, "viettel")]:
            store.record_measurement(record(n, provider_id=p))
        store.record_measurement(record(0, provider_id="fpt", list_name="a-list"))
        assert [p.provider_id for p in store.providers("r1")] == ["viettel", "fpt"]
        assert store.providers("r1")[0].provider_name == "Viettel (renamed)"
        got = [(m.provider_id, m.entry.list_name, m.entry.line) for m in store.iter_measurements("r1")]
        assert got == [
            ("viettel", "bocongan", 2),
            ("viettel", "bocongan", 3),
            ("viettel", "bocongan", 4),
            ("fpt", "a-list", 1),
            ("fpt", "bocongan", 2),
            ("fpt", "bocongan", 4),
        ]
        only_fpt = [m.entry.line for m in store.iter_measurements("r1", "fpt")]
        assert only_fpt == [1, 2, 4]


def test_explicit_ordinal_gives_the_list_order(db: Path) -> None:
    with SqliteStore(str(db)) as store:
        store.begin_run(run_info())
        store.record_provider(health("vnpt"))
        # list "z" was given first in the config, so the engine numbers its entries first
        store.record_measurement(record(1, list_name="a"), ordinal=1)
        store.record_measurement(record(2, list_name="z"), ordinal=0)
        assert [m.entry.list_name for m in store.iter_measurements("r1")] == ["z", "a"]


def test_primary_key_replace(db: Path) -> None:
    with SqliteStore(str(db)) as store:
        store.begin_run(run_info())
        store.record_measurement(record(1, verdict=Verdict.INCONCLUSIVE))
        store.record_measurement(record(2))
        store.flush()
        store.record_measurement(record(1, verdict=Verdict.BLOCKED))  # retried: replaces the old row
        got = list(store.iter_measurements("r1", "vnpt"))
        assert [(m.entry.line, m.judgement.verdict) for m in got] == [
            (2, Verdict.BLOCKED),
            (3, Verdict.BLOCKED),
        ]
        assert store.measured_urls("r1", "vnpt") == {record(1).entry.url, record(2).entry.url}
        assert store.measured_urls("r1", "fpt") == set()
        store.record_control("r1", "https://x.example/", observation(title="1"))
        store.record_control("r1", "https://x.example/", observation(title="2"))
        assert store.control_observation("r1", "https://x.example/") == observation(title="2")
    assert count_rows(db) == 2
    assert count_rows(db, "controls") == 1


def test_buffered_rows_visible_to_others_only_after_flush(db: Path) -> None:
    store = SqliteStore(str(db), flush_interval=NEVER)
    store.begin_run(run_info())
    store.record_measurement(record(1))
    store.record_control("r1", "https://a.example/", observation())
    assert count_rows(db) == 0  # still buffered
    assert count_rows(db, "controls") == 0
    store.flush()
    assert count_rows(db) == 1
    assert count_rows(db, "controls") == 1
    store.record_measurement(record(2))
    assert count_rows(db) == 1
    store.close()
    assert count_rows(db) == 2
    store.close()  # idempotent


def test_own_reads_see_buffered_rows(db: Path) -> None:
    with SqliteStore(str(db), flush_interval=NEVER) as store:
        store.begin_run(run_info())
        store.record_measurement(record(1))
        assert store.measured_urls("r1", "vnpt") == {record(1).entry.url}


def test_flush_after_64_rows(db: Path) -> None:
    with SqliteStore(str(db), flush_interval=NEVER) as store:
        store.begin_run(run_info())
        for n in range(63):
            store.record_measurement(record(n))
        assert count_rows(db) == 0
        store.record_measurement(record(63))
        assert count_rows(db) == 64
        store.record_measurement(record(64))
        assert count_rows(db) == 64


def test_flush_by_time_without_new_rows(db: Path) -> None:
    """A row must not wait in the buffer for the next one: the background flusher writes it."""
    with SqliteStore(str(db), flush_interval=0.2) as store:
        store.begin_run(run_info())
        store.record_measurement(record(1))
        deadline = time.monotonic() + 5
        while count_rows(db) == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert count_rows(db) == 1


def test_flush_by_time_on_the_next_write(db: Path) -> None:
    with SqliteStore(str(db), flush_interval=0.2) as store:
        store.begin_run(run_info())
        time.sleep(0.25)
        store.record_measurement(record(1))  # more than the interval since the last write: written now
        assert count_rows(db) == 1


def test_second_connection_sees_flushed_rows_of_an_unclosed_writer(db: Path) -> None:
    writer = SqliteStore(str(db), flush_interval=NEVER)
    try:
        writer.begin_run(run_info())
        writer.record_provider(health("vnpt"))
        for n in range(3):
            writer.record_measurement(record(n))
        writer.flush()
        writer.record_measurement(record(99))  # buffered when the writer "dies"
        # the writer is not closed: a new store on the same file, as the next cron run would open it
        with SqliteStore(str(db)) as reader:
            assert reader.latest_run_id() == "r1"
            assert [m.entry.line for m in reader.iter_measurements("r1")] == [1, 2, 3]
            assert reader.get_run("r1") == run_info()  # still "running": never finished
    finally:
        writer.close()


def test_killed_writer_keeps_what_it_measured(db: Path) -> None:
    """A real SIGKILL after the flush interval: rows that were only buffered are on disk."""
    script = textwrap.dedent(
        f"""
        import datetime as dt, os, signal, sys, time
        sys.path.insert(0, {str(Path(__file__).parent.parent)!r})
        from tests.test_store import record, run_info
        from auditor.store import open_store
        store = open_store("sqlite:///" + {str(db)!r})
        store.begin_run(run_info())
        for n in range(5):
            store.record_measurement(record(n))
        time.sleep(1.5)
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], check=False, capture_output=True, timeout=60)
    assert proc.returncode == -9, proc.stderr.decode()
    with open_store(f"sqlite:///{db}") as store:
        assert len(list(store.iter_measurements("r1"))) == 5


def test_list_runs_and_latest(db: Path) -> None:
    with SqliteStore(str(db)) as store:
        assert store.latest_run_id() is None
        assert store.list_runs() == []
        for i, run_id in enumerate(["b", "c", "a"]):
            store.begin_run(run_info(run_id, STARTED + dt.timedelta(days=i)))
        assert store.latest_run_id() == "a"
        assert [r.run_id for r in store.list_runs()] == ["a", "c", "b"]
        assert [r.run_id for r in store.list_runs(limit=2)] == ["a", "c"]
        store.finish_run("c", STARTED + dt.timedelta(days=1, hours=1), "complete")
        got = store.get_run("c")
        assert got is not None and got.status == "complete"


def test_begin_run_again_resumes_but_a_clashing_run_id_is_refused(db: Path) -> None:
    with SqliteStore(str(db)) as store:
        store.begin_run(run_info())
        store.finish_run("r1", STARTED + dt.timedelta(hours=1), "partial")
        store.begin_run(run_info())
        got = store.get_run("r1")
        assert got is not None and got.status == "running" and got.finished_at is None
        with pytest.raises(StoreError, match="already exists"):
            store.begin_run(run_info(started=STARTED + dt.timedelta(days=1)))


def test_finish_run_checks(db: Path) -> None:
    with SqliteStore(str(db)) as store:
        with pytest.raises(StoreError, match="no run"):
            store.finish_run("ghost", STARTED, "complete")
        store.begin_run(run_info())
        with pytest.raises(ValueError):
            store.finish_run("r1", STARTED, "running")


def test_finish_run_flushes(db: Path) -> None:
    store = SqliteStore(str(db), flush_interval=NEVER)
    try:
        store.begin_run(run_info())
        store.record_measurement(record(1))
        store.finish_run("r1", STARTED + dt.timedelta(hours=1), "complete")
        assert count_rows(db) == 1
    finally:
        store.close()


def test_closed_store_refuses_writes(db: Path) -> None:
    store = SqliteStore(str(db))
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.record_measurement(record(1))


def test_newer_schema_version_is_refused(db: Path) -> None:
    SqliteStore(str(db)).close()
    conn = sqlite3.connect(db)
    conn.execute("UPDATE schema_version SET version = 2")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="newer auditor"):
        SqliteStore(str(db))


def test_schema_version_is_1(db: Path) -> None:
    SqliteStore(str(db)).close()
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT version FROM schema_version").fetchall() == [(1,)]
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    conn.close()


def test_not_a_sqlite_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("this is a text file, not a database\n" * 20)
    with pytest.raises(StoreError, match="not a database"):
        SqliteStore(str(path))
    with pytest.raises(StoreError):
        open_store(f"sqlite:///{path}")


def test_another_sqlite_database_is_refused(db: Path) -> None:
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE invoices (id INTEGER)")
    conn.close()
    with pytest.raises(StoreError, match="not an auditor store"):
        SqliteStore(str(db))


def test_open_store_relative_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with open_store("sqlite:///data/nested/audit.db") as store:
        assert isinstance(store, SqliteStore)
        store.begin_run(run_info())
    assert (tmp_path / "data" / "nested" / "audit.db").is_file()


def test_open_store_absolute_path(tmp_path: Path) -> None:
    target = tmp_path / "abs" / "audit.db"
    assert str(target).startswith("/")
    with open_store(f"sqlite:///{target}") as store:  # sqlite:// + /abs/path: four slashes
        store.begin_run(run_info())
    assert target.is_file()
    with open_store("SQLITE:///" + str(target)) as store:
        assert store.latest_run_id() == "r1"


def test_open_store_memory() -> None:
    with open_store("sqlite:///:memory:") as store:
        store.begin_run(run_info())
        store.record_measurement(record(1))
        assert [m.entry.line for m in store.iter_measurements("r1")] == [2]


@pytest.mark.parametrize(
    "url, message",
    [
        ("postgresql://auditor@db.example/auditor", "scheme 'postgresql'.*sqlite://.*future"),
        ("mysql://x/y", "scheme 'mysql'"),
        ("audit.db", "no scheme"),
        ("", "no scheme"),
        ("sqlite:///", "no file name"),
        ("sqlite://host/audit.db", "no host"),
        ("sqlite:audit.db", "no scheme"),
    ],
)
def test_open_store_bad_urls(url: str, message: str) -> None:
    with pytest.raises(StoreError, match=message):
        open_store(url)


def test_background_flush_failure_reaches_the_caller_and_rows_stay_buffered(db: Path) -> None:
    store = SqliteStore(str(db), flush_interval=0.1)
    try:
        store.begin_run(run_info())
        other = sqlite3.connect(db)
        other.execute("ALTER TABLE measurements RENAME TO measurements_away")
        other.commit()
        store.record_measurement(record(1))
        deadline = time.monotonic() + 5
        while store._background_error is None and time.monotonic() < deadline:
            time.sleep(0.05)
        with pytest.raises(StoreError, match="no such table"):
            store.record_measurement(record(2))
        other.execute("ALTER TABLE measurements_away RENAME TO measurements")
        other.commit()
        other.close()
        store.flush()  # the row that failed in the background is written now
        # record(1) (line 2) was kept; record(2) was refused with the error, so the caller knows
        assert [m.entry.line for m in store.iter_measurements("r1")] == [2]
    finally:
        store.close()


def test_many_rows_with_a_busy_flusher(db: Path) -> None:
    with SqliteStore(str(db), flush_interval=0.001) as store:
        store.begin_run(run_info())
        for n in range(2000):
            store.record_measurement(record(n))
            if n % 500 == 0:
                time.sleep(0.01)
    assert count_rows(db) == 2000


def test_every_store_url_scheme_has_an_opener() -> None:
    from auditor.config.storeurl import SCHEMES
    from auditor.store import _OPENERS

    assert set(SCHEMES) == set(_OPENERS)


def test_open_store_takes_the_configs_store_url(tmp_path: Path) -> None:
    from auditor.config import parse_store_url

    url = parse_store_url("sqlite:///nested/audit.db", tmp_path)
    with open_store(url) as store:
        store.begin_run(run_info())
    assert (tmp_path / "nested" / "audit.db").is_file()
