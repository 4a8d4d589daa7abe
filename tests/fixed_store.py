"""A fixed store for report tests: four nightly runs of a small province, every value written out.

Deterministic (run ids, times, verdicts, evidence), so that the golden files under tests/golden/ can be
compared byte for byte. Verdict patterns below read one letter per run, oldest first: B blocked,
A accessible, I inconclusive, - not listed yet.
"""

from __future__ import annotations

import datetime as dt

from auditor.models import Confidence, Judgement, ListEntry, Method, Verdict
from auditor.store import SqliteStore
from tests.builders import make_entry, make_health, make_judgement, make_record, make_run

UTC = dt.UTC
GRACE_HOURS = 24.0
TIMEZONE = "Asia/Ho_Chi_Minh"
PROVINCE = "Gia Lai"

# 01:30 in Gia Lai, four nights in a row
RUNS = tuple(
    make_run(
        f"202611{day}T183000Z-00{i}",
        dt.datetime(2026, 11, day, 18, 30, tzinfo=UTC),
        province=PROVINCE,
        status="complete",
        finished_at=dt.datetime(2026, 11, day, 18, 52, 10, tzinfo=UTC),
        config_digest="5f0e2a1c9b7d3e40",
    )
    for i, day in enumerate((24, 25, 26, 27), start=1)
)
LAST = RUNS[-1]


def _entry(url: str, host: str, list_name: str, line: int, code: str = "", desc: str = "",
           added: dt.date | None = None) -> ListEntry:
    return make_entry(url, host=host, list_name=list_name, line=line, category_code=code,
                      category_description=desc, date_added=added)


CASINO = _entry("https://casino.example/", "casino.example", "bocongan", 2, "CB", "Cờ bạc", dt.date(2026, 11, 1))
NEWS = _entry("https://xn--tintc-yva.example/", "xn--tintc-yva.example", "bocongan", 3, "TT", "Tin tức",
              dt.date(2026, 11, 20))
SLOW = _entry("http://slow.example/", "slow.example", "bocongan", 4, "CB", "Cờ bạc", dt.date(2026, 11, 24))
NEW = _entry("http://moi.example/", "moi.example", "bocongan", 5, "CB", "Cờ bạc", dt.date(2026, 11, 28))
EVIL = _entry("http://evil.example/a?b=1&c=%3Cx%3E", "evil.example", "treem", 2, "TE", "Bảo vệ trẻ em",
              dt.date(2026, 10, 15))
FORUM = _entry("http://forum.example/", "forum.example", "treem", 3, "TE", "Bảo vệ trẻ em")
CANARY = _entry("https://canary.gialai.example/kiem-tra", "canary.gialai.example", "must-block", 1)
PORTAL = _entry("https://dichvucong.example/", "dichvucong.example", "must-allow", 1)
ENTRIES = (CASINO, NEWS, SLOW, NEW, EVIL, FORUM, CANARY, PORTAL)

MUST_BLOCK = frozenset({CANARY.url})
MUST_ALLOW = frozenset({PORTAL.url})

PROVIDERS = (
    ("vnpt", "VNPT Gia Lai", 45899),
    ("viettel", "Viettel – Chi nhánh Pleiku", 7552),
    ("fpt", "FPT Telecom", 18403),
    ("mobifone", "MobiFone", 131429),
)

PATTERNS: dict[str, dict[ListEntry, str]] = {
    "vnpt": {CASINO: "BBBA", NEWS: "BBBB", SLOW: "AABB", NEW: "---A", EVIL: "BBBB", FORUM: "BBBI",
             CANARY: "BBBB", PORTAL: "AAAA"},
    "viettel": {CASINO: "BBBB", NEWS: "BAAA", SLOW: "BBBB", NEW: "---B", EVIL: "BBBB", FORUM: "BBBB",
                CANARY: "BBBB", PORTAL: "AAAB"},
    "fpt": {CASINO: "BBBB", NEWS: "AAAA", SLOW: "IIIA", NEW: "---A", EVIL: "AAAA", FORUM: "AAIA",
            CANARY: "BBBA", PORTAL: "AAAA"},
    "mobifone": {e: ("---" if e is NEW else "AAA") + "I" for e in ENTRIES},
}
UNMEASURED = {("mobifone", 3): "vantage unreachable: connection refused by socks5 127.0.0.1:1084"}

_BLOCKED = {
    "vnpt": (Method.TCP, Confidence.CONFIRMED, "tcp.refused", "TCP connection to {ip}:443 refused; control connected"),
    "viettel": (Method.DNS, Confidence.CONFIRMED, "dns.nxdomain",
                "NXDOMAIN from 203.113.131.1; control resolves {ip} (DNS-only: reachable on control's address)"),
    "fpt": (Method.HTTP, Confidence.CONFIRMED, "http.blockpage_fingerprint",
            "block page: Trang web này đã bị chặn theo yêu cầu của cơ quan chức năng"),
    "mobifone": (Method.DNS, Confidence.LIKELY, "dns.timeout", "no DNS reply twice; control resolves {ip}"),
}


def judgement(provider_id: str, entry: ListEntry, letter: str, run_index: int) -> Judgement:
    ip = f"45.76.0.{ENTRIES.index(entry) + 2}"
    if letter == "B":
        method, confidence, rule, evidence = _BLOCKED[provider_id]
        return make_judgement(Verdict.BLOCKED, rule, evidence.format(ip=ip), method, confidence)
    if letter == "A":
        if entry is EVIL:  # a title from a hostile network: every format must show it as text
            return make_judgement(Verdict.ACCESSIBLE, "http.matches_control",
                                  'HTTP 200, title "</td><script>alert(1)</script>" & length as control')
        return make_judgement(Verdict.ACCESSIBLE, "tls.valid_session",
                              f"valid TLS session for {entry.host} at {ip}; HTTP 200 as control")
    reason = UNMEASURED.get((provider_id, run_index))
    if reason:
        return make_judgement(Verdict.INCONCLUSIVE, "provider.not_measured", f"provider not measured: {reason}")
    return make_judgement(Verdict.INCONCLUSIVE, "control.unreachable", f"control cannot connect to {ip}:80 either")


def fill(store: SqliteStore) -> None:
    for i, run in enumerate(RUNS):
        store.begin_run(make_run(run.run_id, run.started_at, province=run.province, config_digest=run.config_digest))
        for pid, name, asn in PROVIDERS:
            reason = UNMEASURED.get((pid, i), "")
            store.record_provider(make_health(pid, run_id=run.run_id, provider_name=name, asn=asn,
                                              measured=not reason, reason=reason))
        for pid, _, _ in PROVIDERS:
            for ordinal, entry in enumerate(ENTRIES):
                letter = PATTERNS[pid][entry][i]
                if letter == "-":
                    continue
                at = run.started_at + dt.timedelta(seconds=5 + ordinal)
                rec = make_record(entry, provider_id=pid, run_id=run.run_id,
                                  judgement=judgement(pid, entry, letter, i), measured_at=at)
                store.record_measurement(rec, ordinal=ordinal)
        assert run.finished_at is not None
        store.finish_run(run.run_id, run.finished_at, "complete")


def fixed_store() -> SqliteStore:
    store = SqliteStore(":memory:")
    fill(store)
    return store
