"""`SqliteStore`: the store in one SQLite file, with the standard library's sqlite3.

Why these settings:
- WAL journal + synchronous=NORMAL: readers (`auditor report` while a run is going) never block the writer,
  and a commit costs no fsync; a power cut can lose the last commits but never corrupts the file
  (https://www.sqlite.org/wal.html, https://www.sqlite.org/pragma.html#pragma_synchronous).
- Measurements and controls are buffered and written in batches (one transaction per batch): a commit per
  row would make a 100-job-wide run wait on the database. A batch is written when `flush_rows` rows are
  waiting, when `flush_interval` seconds have passed since the last write, and on flush()/finish_run()/
  close(). A small background thread enforces the interval even when no new row arrives (a run stuck on
  slow probes), so a killed run loses at most about `flush_interval` seconds of results.
- Every access to the connection happens under one lock, so the background flusher and the caller (the
  asyncio engine's thread, or a worker thread) can share it.
- Records become rows and back in `auditor.store.rows` (datetimes as fixed-width UTC text, observations as
  compact JSON text through `auditor.codec`, decoded back into the typed records when read).

All SQL of the tool lives in this module; a server database would be a sibling module, not a dialect flag.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from auditor.errors import StoreError
from auditor.models import MeasurementRecord, ProviderHealth, RunInfo, Verdict
from auditor.observations import UrlObservation
from auditor.store import rows
from auditor.store.interface import FINAL_RUN_STATUSES, FirstBlocked, PairVerdict, Store, VerdictCount

T = TypeVar("T")

SCHEMA_VERSION = 1

FLUSH_ROWS = 64
FLUSH_INTERVAL = 1.0  # seconds

_SCHEMA = (
    "CREATE TABLE schema_version (version INTEGER NOT NULL)",
    """CREATE TABLE runs (
        run_id TEXT PRIMARY KEY,
        started_at TEXT NOT NULL,
        province TEXT NOT NULL,
        status TEXT NOT NULL,
        finished_at TEXT,
        config_digest TEXT NOT NULL DEFAULT ''
    )""",
    "CREATE INDEX runs_started_at ON runs (started_at)",
    """CREATE TABLE providers (
        run_id TEXT NOT NULL,
        provider_id TEXT NOT NULL,
        ordinal INTEGER NOT NULL,
        provider_name TEXT NOT NULL,
        asn INTEGER,
        measured INTEGER NOT NULL,
        reason TEXT NOT NULL DEFAULT '',
        checks_json TEXT NOT NULL DEFAULT '[]',
        PRIMARY KEY (run_id, provider_id)
    )""",
    """CREATE TABLE measurements (
        run_id TEXT NOT NULL,
        provider_id TEXT NOT NULL,
        ordinal INTEGER NOT NULL,
        url TEXT NOT NULL,
        list_name TEXT NOT NULL,
        line INTEGER NOT NULL,
        category_code TEXT NOT NULL DEFAULT '',
        category_description TEXT NOT NULL DEFAULT '',
        date_added TEXT,
        source TEXT NOT NULL DEFAULT '',
        notes TEXT NOT NULL DEFAULT '',
        host TEXT NOT NULL,
        measured_at TEXT NOT NULL,
        verdict TEXT NOT NULL,
        method TEXT,
        confidence TEXT,
        rule TEXT NOT NULL,
        evidence TEXT NOT NULL,
        observations_json TEXT NOT NULL DEFAULT '{}',
        PRIMARY KEY (run_id, provider_id, url)
    )""",
    """CREATE TABLE controls (
        run_id TEXT NOT NULL,
        url TEXT NOT NULL,
        observations_json TEXT NOT NULL,
        PRIMARY KEY (run_id, url)
    )""",
)

# History queries (time to block, regressions) look a (provider, URL) up across every run: without this
# index each such lookup scans the table, and a year of nightly runs holds tens of millions of rows.
_INDEXES = ("CREATE INDEX IF NOT EXISTS measurements_pair ON measurements (provider_id, url, verdict)",)

# Columns added after schema 1, as (table, column, definition): every store gets them when opened, a store
# written before a column existed as well as a new one (the CREATE TABLEs above stay schema 1's). The one
# place of this kind: versioned migrations would take these over.
_ADDED_COLUMNS = (
    # the run a re-judged run was judged from (auditor.rejudge, issue 9); '' for a run that measured
    ("runs", "rejudged_from", "TEXT NOT NULL DEFAULT ''"),
)

_INSERT_MEASUREMENT = (
    f"INSERT OR REPLACE INTO measurements ({rows.MEASUREMENT_COLUMNS}) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_CONTROL = "INSERT OR REPLACE INTO controls (run_id, url, observations_json) VALUES (?, ?, ?)"


def _add_columns(conn: sqlite3.Connection) -> None:
    """`_ADDED_COLUMNS` that a table lacks, added (inside the caller's transaction)."""
    for table, column, definition in _ADDED_COLUMNS:
        have = {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}
        if column not in have:
            conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")


class SqliteStore(Store):
    """A `Store` in one SQLite file (or `:memory:`)."""

    def __init__(
        self,
        path: str,
        *,
        flush_rows: int = FLUSH_ROWS,
        flush_interval: float = FLUSH_INTERVAL,
        busy_timeout: float = 10.0,
    ) -> None:
        self.path = path
        self._flush_rows = flush_rows
        self._flush_interval = flush_interval
        self._lock = threading.RLock()
        self._wake = threading.Condition(self._lock)
        self._pending_measurements: list[tuple[Any, ...]] = []
        self._pending_controls: list[tuple[Any, ...]] = []
        self._last_flush = time.monotonic()
        self._flusher: threading.Thread | None = None
        self._background_error: BaseException | None = None
        self._closed = False
        try:
            # isolation_level=None: autocommit; this module opens its transactions explicitly.
            # check_same_thread=False: the background flusher shares the connection, under self._lock.
            self._conn = sqlite3.connect(
                path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open SQLite store {path}: {exc}") from exc
        try:
            self._setup()
        except BaseException:
            self._conn.close()
            raise

    # -- opening ---------------------------------------------------------------------------------------
    def _setup(self) -> None:
        conn = self._conn
        try:
            conn.execute("PRAGMA journal_mode=WAL").fetchone()
            conn.execute("PRAGMA synchronous=NORMAL")
            # BEGIN IMMEDIATE: two processes opening a new file at once must not both create the schema.
            conn.execute("BEGIN IMMEDIATE")
            try:
                tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
                if "schema_version" not in tables:
                    if tables:
                        raise StoreError(
                            f"{self.path} is a SQLite database but not an auditor store "
                            f"(it has tables {', '.join(sorted(tables))} and no schema_version)"
                        )
                    for statement in _SCHEMA:
                        conn.execute(statement)
                    conn.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))
                else:
                    row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
                    version = row[0] if row else None
                    if version is None:
                        raise StoreError(f"{self.path}: the auditor store has no schema version row")
                    if version > SCHEMA_VERSION:
                        raise StoreError(
                            f"{self.path} was written by a newer auditor (store schema {version}; this "
                            f"version reads schema {SCHEMA_VERSION}): upgrade auditor or use another store"
                        )
                    if version < SCHEMA_VERSION:  # no older schema exists yet; a migration would go here
                        raise StoreError(f"{self.path}: unknown old store schema {version}")
                for statement in _INDEXES:  # additive: stores written before an index existed get it here
                    conn.execute(statement)
                _add_columns(conn)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        except sqlite3.DatabaseError as exc:
            # "file is not a database" (sqlite3.DatabaseError) for anything that is not SQLite.
            raise StoreError(f"cannot use {self.path} as an auditor store: {exc}") from exc

    # -- plumbing --------------------------------------------------------------------------------------
    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(f"store {self.path} is closed")
        if self._background_error is not None:
            exc, self._background_error = self._background_error, None
            raise StoreError(f"writing to store {self.path} failed: {exc}") from exc

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    yield self._conn
                    self._conn.execute("COMMIT")
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise StoreError(f"writing to store {self.path} failed: {exc}") from exc

    def _read(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        with self._lock:
            self._check_open()
            self._flush_locked()  # read your own writes
            try:
                return self._conn.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise StoreError(f"reading store {self.path} failed: {exc}") from exc

    def _pending_count(self) -> int:
        return len(self._pending_measurements) + len(self._pending_controls)

    def _flush_locked(self) -> None:
        """Write the buffered rows in one transaction; on failure they stay buffered for the next try."""
        if self._pending_count():
            with self._transaction() as conn:
                conn.executemany(_INSERT_MEASUREMENT, self._pending_measurements)
                conn.executemany(_INSERT_CONTROL, self._pending_controls)
            self._pending_measurements.clear()
            self._pending_controls.clear()
        self._last_flush = time.monotonic()

    def _buffer(self, pending: list[tuple[Any, ...]], row: tuple[Any, ...]) -> None:
        with self._lock:
            self._check_open()
            pending.append(row)
            if (
                self._pending_count() >= self._flush_rows
                or time.monotonic() - self._last_flush >= self._flush_interval
            ):
                self._flush_locked()
            elif self._flusher is None:
                self._flusher = threading.Thread(
                    target=self._flush_loop, name=f"store-flush {self.path}", daemon=True
                )
                self._flusher.start()
            else:
                self._wake.notify()

    def _flush_loop(self) -> None:
        """Background thread: write buffered rows at most `flush_interval` after the last write."""
        with self._wake:
            while not self._closed:
                if not self._pending_count():
                    self._wake.wait()
                    continue
                delay = self._last_flush + self._flush_interval - time.monotonic()
                if delay > 0:
                    self._wake.wait(delay)
                    continue
                try:
                    self._flush_locked()
                except Exception as exc:  # noqa: BLE001 -- reported to the caller on its next call; rows stay buffered
                    self._background_error = exc
                    self._flusher = None
                    return

    # -- writing ---------------------------------------------------------------------------------------
    def begin_run(self, run: RunInfo) -> None:
        started = rows.dt_to_text(run.started_at)
        finished = rows.dt_to_text(run.finished_at) if run.finished_at else None
        with self._lock:
            self._check_open()
            with self._transaction() as conn:
                row = conn.execute("SELECT started_at FROM runs WHERE run_id = ?", (run.run_id,)).fetchone()
                if row is None:
                    conn.execute(
                        f"INSERT INTO runs ({rows.RUN_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (run.run_id, started, run.province, run.status, finished, run.config_digest,
                         run.rejudged_from),
                    )
                elif row[0] == started:  # the same run again: resume it
                    conn.execute(
                        "UPDATE runs SET status = ?, finished_at = ?, province = ?, config_digest = ? "
                        "WHERE run_id = ?",
                        (run.status, finished, run.province, run.config_digest, run.run_id),
                    )
                else:
                    raise StoreError(
                        f"run id {run.run_id} already exists in {self.path} for a run started at {row[0]}"
                    )

    def finish_run(self, run_id: str, finished_at: dt.datetime, status: str) -> None:
        if status not in FINAL_RUN_STATUSES:
            raise ValueError(f"run status must be one of {', '.join(FINAL_RUN_STATUSES)}, not {status!r}")
        finished = rows.dt_to_text(finished_at)
        with self._lock:
            self._check_open()
            self._flush_locked()
            with self._transaction() as conn:
                cur = conn.execute(
                    "UPDATE runs SET status = ?, finished_at = ? WHERE run_id = ?", (status, finished, run_id)
                )
                if cur.rowcount == 0:
                    raise StoreError(f"no run {run_id} in {self.path}")

    def record_provider(self, health: ProviderHealth) -> None:
        checks = rows.checks_text(health)
        with self._lock:
            self._check_open()
            with self._transaction() as conn:
                conn.execute(
                    "INSERT INTO providers "
                    "(run_id, provider_id, ordinal, provider_name, asn, measured, reason, checks_json) "
                    "VALUES (?, ?, (SELECT COALESCE(MAX(ordinal) + 1, 0) FROM providers WHERE run_id = ?), "
                    "?, ?, ?, ?, ?) "
                    "ON CONFLICT (run_id, provider_id) DO UPDATE SET provider_name = excluded.provider_name, "
                    "asn = excluded.asn, measured = excluded.measured, reason = excluded.reason, "
                    "checks_json = excluded.checks_json",
                    (
                        health.run_id,
                        health.provider_id,
                        health.run_id,
                        health.provider_name,
                        health.asn,
                        int(health.measured),
                        health.reason,
                        checks,
                    ),
                )

    def record_measurement(self, rec: MeasurementRecord, *, ordinal: int | None = None) -> None:
        # Serialise now, in the caller: a value that is not JSON-able is the caller's bug and must fail
        # there, not later in the flusher thread.
        self._buffer(self._pending_measurements, rows.measurement_row(rec, ordinal))

    def record_control(self, run_id: str, url: str, observation: UrlObservation) -> None:
        self._buffer(self._pending_controls, (run_id, url, rows.control_text(observation)))

    def flush(self) -> None:
        with self._lock:
            self._check_open()
            self._flush_locked()

    def close(self) -> None:
        flusher: threading.Thread | None = None
        try:
            with self._lock:
                if self._closed:
                    return
                try:
                    self._flush_locked()
                finally:
                    # Even when the last flush fails (disk full), stop the flusher and release the file;
                    # the error still reaches the caller. Closing under the lock is safe: the flusher
                    # checks _closed before it touches the connection.
                    self._closed = True
                    self._wake.notify_all()
                    flusher, self._flusher = self._flusher, None
                    self._conn.close()
        finally:
            if flusher is not None and flusher is not threading.current_thread():
                flusher.join()  # outside the lock, so that it can wake up and return

    # -- reading ---------------------------------------------------------------------------------------
    def list_runs(self, limit: int = 20) -> list[RunInfo]:
        found = self._read(
            f"SELECT {rows.RUN_COLUMNS} FROM runs ORDER BY started_at DESC, rowid DESC LIMIT ?", (max(limit, 0),)
        )
        return [rows.run_from_row(r) for r in found]

    def get_run(self, run_id: str) -> RunInfo | None:
        found = self._read(f"SELECT {rows.RUN_COLUMNS} FROM runs WHERE run_id = ?", (run_id,))
        return rows.run_from_row(found[0]) if found else None

    def latest_run_id(self) -> str | None:
        found = self._read("SELECT run_id FROM runs ORDER BY started_at DESC, rowid DESC LIMIT 1")
        return found[0][0] if found else None

    def providers(self, run_id: str) -> list[ProviderHealth]:
        found = self._read(
            f"SELECT {rows.PROVIDER_COLUMNS} FROM providers WHERE run_id = ? ORDER BY ordinal",
            (run_id,),
        )
        return [rows.provider_from_row(r) for r in found]

    def iter_measurements(self, run_id: str, provider_id: str | None = None) -> Iterator[MeasurementRecord]:
        columns = ", ".join(f"m.{c.strip()}" for c in rows.MEASUREMENT_COLUMNS.split(","))
        sql = (
            f"SELECT {columns} FROM measurements AS m LEFT JOIN providers AS p "
            "ON p.run_id = m.run_id AND p.provider_id = m.provider_id WHERE m.run_id = ?"
        )
        params: tuple[Any, ...] = (run_id,)
        if provider_id is not None:
            sql += " AND m.provider_id = ?"
            params += (provider_id,)
        # Providers never recorded with record_provider() come last, by id.
        sql += " ORDER BY p.ordinal IS NULL, p.ordinal, m.provider_id, m.ordinal, m.list_name, m.line, m.url"
        return self._iter_rows(sql, params)

    def _iter_rows(self, sql: str, params: tuple[Any, ...]) -> Iterator[MeasurementRecord]:
        # A generator: found are fetched in batches (streaming; a run can hold 100k measurements).
        return self._iter_query(sql, params, rows.measurement_from_row)

    def measured_urls(self, run_id: str, provider_id: str) -> set[str]:
        found = self._read(
            "SELECT url FROM measurements WHERE run_id = ? AND provider_id = ?", (run_id, provider_id)
        )
        return {r[0] for r in found}

    def control_observation(self, run_id: str, url: str) -> UrlObservation | None:
        found = self._read(
            "SELECT observations_json FROM controls WHERE run_id = ? AND url = ?", (run_id, url)
        )
        return rows.control_from_text(found[0][0], run_id, url) if found else None

    # -- reading across runs ---------------------------------------------------------------------------
    def runs_before(self, run_id: str, limit: int) -> list[RunInfo]:
        found = self._read(
            f"SELECT {rows.RUN_COLUMNS} FROM runs WHERE (started_at, rowid) < "
            "(SELECT started_at, rowid FROM runs WHERE run_id = ?) "
            "ORDER BY started_at DESC, rowid DESC LIMIT ?",
            (run_id, max(limit, 0)),
        )
        return [rows.run_from_row(r) for r in found]

    def runs_since(self, since: dt.datetime) -> list[RunInfo]:
        found = self._read(
            f"SELECT {rows.RUN_COLUMNS} FROM runs WHERE started_at >= ? ORDER BY started_at, rowid",
            (rows.dt_to_text(since),),
        )
        return [rows.run_from_row(r) for r in found]

    def verdict_counts(self, run_id: str, exclude_urls: frozenset[str] = frozenset()) -> list[VerdictCount]:
        excluded = sorted(exclude_urls)
        found = self._read(
            "SELECT provider_id, list_name, category_code, MAX(category_description), date_added, verdict, "
            f"COUNT(*) FROM measurements WHERE run_id = ? AND url NOT IN ({', '.join('?' * len(excluded))}) "
            "GROUP BY provider_id, list_name, category_code, date_added, verdict "
            "ORDER BY provider_id, list_name, category_code, date_added, verdict",
            (run_id, *excluded),
        )
        return [
            VerdictCount(p, ln, cc, cd, dt.date.fromisoformat(da) if da else None, Verdict(v), n)
            for p, ln, cc, cd, da, v, n in found
        ]

    def first_blocked(self, run_id: str) -> Iterator[FirstBlocked]:
        # SQLite returns the bare column m.run_id from the row that holds the MIN()
        # (https://www.sqlite.org/lang_select.html#bare_columns_in_an_aggregate_query).
        sql = (
            "SELECT cur.provider_id, cur.url, cur.date_added, m.run_id, MIN(r.started_at) "
            "FROM measurements AS cur "
            "JOIN measurements AS m ON m.provider_id = cur.provider_id AND m.url = cur.url "
            "JOIN runs AS r ON r.run_id = m.run_id "
            "WHERE cur.run_id = ? AND m.verdict = 'blocked' "
            "AND r.started_at <= (SELECT started_at FROM runs WHERE run_id = ?) "
            "GROUP BY cur.provider_id, cur.url ORDER BY cur.provider_id, cur.url"
        )
        return self._iter_query(
            sql, (run_id, run_id), lambda r: FirstBlocked(
                r[0], r[1], dt.date.fromisoformat(r[2]) if r[2] else None, r[3], rows.dt_from_text(r[4])
            ),
        )

    def earlier_verdicts(
        self, run_id: str, verdict: Verdict, earlier_run_ids: Sequence[str]
    ) -> Iterator[PairVerdict]:
        ids = list(dict.fromkeys(earlier_run_ids))
        sql = (
            "SELECT m.run_id, m.provider_id, m.url, m.verdict FROM measurements AS cur "
            "JOIN measurements AS m ON m.provider_id = cur.provider_id AND m.url = cur.url "
            f"WHERE cur.run_id = ? AND cur.verdict = ? AND m.run_id IN ({', '.join('?' * len(ids))}) "
            "ORDER BY m.provider_id, m.url, m.run_id"
        )
        return self._iter_query(
            sql, (run_id, Verdict(verdict).value, *ids), lambda r: PairVerdict(r[0], r[1], r[2], Verdict(r[3]))
        )

    def _iter_query(self, sql: str, params: tuple[Any, ...], convert: Callable[[Any], T]) -> Iterator[T]:
        # Streaming in batches, each under the lock so the flusher never interleaves with a half-read batch.
        with self._lock:
            self._check_open()
            self._flush_locked()
            try:
                cursor = self._conn.execute(sql, params)
            except sqlite3.Error as exc:
                raise StoreError(f"reading store {self.path} failed: {exc}") from exc
        try:
            while True:
                with self._lock:
                    try:
                        batch = cursor.fetchmany(500)
                    except sqlite3.Error as exc:
                        raise StoreError(f"reading store {self.path} failed: {exc}") from exc
                if not batch:
                    return
                for row in batch:
                    yield convert(row)
        finally:
            with self._lock:
                if not self._closed:
                    cursor.close()
