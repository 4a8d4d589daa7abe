"""Hostile servers through the real engine: config file, SOCKS vantages, resolvers, measure, judge, SQLite.

One `HostileWorld` is audited once for the module (every case in one run, as cron would meet them in one
night); each test then checks one case. Control and the provider see the same hostile Internet, so every
case must end `accessible` or `inconclusive` with its evidence: never `blocked` for a site's own
misbehaviour, never a crash, never a hang past the deadlines, and every byte read bounded.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from auditor.lab.servers import read_request_head
from auditor.measure import Vantage, measure_url
from auditor.models import Confidence, Judgement, Verdict
from auditor.observations import UrlObservation, is_public_address
from auditor.verdict import judge
from probes import base
from probes.dialers import SocketDialer
from tests import hostile_servers as hs
from tests.hostile_servers import MB, HostileResolver, HostileRun, HostileWorld, name
from tests.loopback_servers import LOOPBACK, TcpServer, dns_on_one_port

LIMIT = 64 * 1024  # the probe's body limit (base.ProbeContext.body_limit)
TIMEOUTS = {"dns": 1.5, "connect": 2.0, "tls": 2.0, "http": 2.5}
VIET = "Thời sự Việt Nam"
TONES = "\u0300\u0301\u0303\u0309\u0323"  # grave, acute, tilde, hook above, dot below


def cp1258(text: str) -> bytes:
    """windows-1258 has ơ, ư, â... precomposed but writes the five tones as combining marks after them."""
    out = []
    for ch in text:
        parts = unicodedata.normalize("NFD", ch)
        out.append(unicodedata.normalize("NFC", "".join(c for c in parts if c not in TONES)))
        out.extend(c for c in parts if c in TONES)
    return "".join(out).encode("windows-1258")


SITES: dict[str, hs.Response] = {
    name("plain"): hs.page(f"<html><head><title>{VIET}</title></head><body>tin</body></html>".encode()),
    # bodies
    name("endless"): hs.endless("Endless"),
    name("huge"): hs.huge("Huge", 200 * MB),
    name("chunked"): hs.chunked_huge("Chunked", 200 * MB),
    name("gzip-bomb"): hs.gzip_bomb("Bomb", 1000 * MB),
    name("brotli"): hs.brotli_labelled(50 * MB),
    name("slow-head"): hs.slow_head(),
    name("slow-body"): hs.slow_body("Slow"),
    name("header-flood"): hs.header_flood(MB),
    # redirects
    name("loop-a"): hs.redirect(f"http://{name('loop-b')}/"),
    name("loop-b"): hs.redirect(f"http://{name('loop-a')}/"),
    name("self-loop"): hs.redirect("/"),
    name("chain"): hs.chain(f"http://{name('chain')}", 15),
    name("to-ftp"): hs.redirect("ftp://files.example/x.zip"),
    name("to-javascript"): hs.redirect("javascript:alert(document.cookie)"),
    name("to-data"): hs.redirect("data:text/html;base64,PHRpdGxlPng8L3RpdGxlPg=="),
    name("to-loopback"): hs.redirect("http://127.0.0.1/admin"),
    name("to-private"): hs.redirect("http://10.0.0.1/"),
    name("to-private-https"): hs.redirect("https://10.0.0.1:8443/", "301 Moved Permanently"),
    name("to-private-name"): hs.redirect(f"http://{name('lan')}/"),
    name("to-ipv6-loopback"): hs.redirect("http://[::1]:8080/"),
    name("to-mapped"): hs.redirect("http://[::ffff:10.0.0.1]/"),
    name("to-decimal"): hs.redirect("http://2130706433/"),
    name("to-broken"): hs.redirect("http://[::1"),
    # titles
    name("bad-utf8"): hs.page(b"<html><head><title>caf\xc3 \xff\xfe \xe1\xba</title></head><body>x</body></html>"),
    name("cp1258-declared"): hs.page(
        f"<html><head><title>{VIET}</title></head><body>x</body></html>".encode()
        .replace(VIET.encode(), cp1258(VIET)),
        "text/html; charset=windows-1258",
    ),
    name("cp1258-meta"): hs.page(
        f'<html><head><meta charset="windows-1258"><title>{VIET}</title></head><body>x</body></html>'.encode()
        .replace(VIET.encode(), cp1258(VIET)),
        "text/html",
    ),
    name("cp1258-undeclared"): hs.page(
        f"<html><head><title>{VIET}</title></head><body>x</body></html>".encode().replace(VIET.encode(), cp1258(VIET)),
        "text/html",
    ),
    name("charset-undefined"): hs.page(b"<title>Undefined</title>", "text/html; charset=undefined"),
    name("charset-idna"): hs.page(b"<title>Idna \xff</title>", "text/html; charset=idna"),
    # 64 KiB of "<title>" and no closing tag: a title regex that backtracks froze the loop for seconds
    name("title-flood"): hs.page(b"<title>" * 9300),
    # DNS (the names' pages are plain; their resolvers misbehave, see DNS_* below)
    **{name(n): hs.page(b"<html><head><title>dns case</title></head></html>") for n in (
        "dns-garbage", "dns-wrong-id", "dns-wrong-id-then-answer", "dns-tc-empty", "dns-cut", "dns-many",
        "dns-control-garbage")},
}
PROVIDER_DNS = {
    name("dns-garbage"): "garbage",
    name("dns-wrong-id"): "wrong_id",
    name("dns-wrong-id-then-answer"): "wrong_id_then_answer",
    name("dns-tc-empty"): "tc_empty",
    name("dns-cut"): "cut",
    name("dns-many"): "many",
}
CONTROL_DNS = {name("dns-control-garbage"): "garbage"}
ZONE: dict[str, tuple[str, ...]] = {name("lan"): ("192.168.1.1",)}


def url(label: str, scheme: str = "http") -> str:
    return f"{scheme}://{name(label)}/"


URLS = [url(n.removesuffix("." + hs.DOMAIN)) for n in SITES if not n.startswith("loop-b")] + [
    url("endless", "https"),
    url("huge", "https"),
    url("gzip-bomb", "https"),
    url("slow-body", "https"),
    url("stall", "https"),
]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostileWorld]:
    with HostileWorld(tmp_path_factory.mktemp("hostile"), SITES, zone=ZONE, provider_dns=PROVIDER_DNS,
                      control_dns=CONTROL_DNS, timeouts=TIMEOUTS) as w:
        yield w


@pytest.fixture(scope="module")
def run(world: HostileWorld) -> HostileRun:
    return world.audit(URLS)


def http_of(obs: dict[str, Any], hop: int = 0) -> dict[str, Any]:
    h: dict[str, Any] | None = obs["hops"][hop]["http"]
    assert h is not None
    return h


def provider(run: HostileRun, u: str) -> dict[str, Any]:
    return run.provider(u)


# --- the run as a whole ---------------------------------------------------------------------------


def test_every_case_gets_a_verdict_and_none_blames_the_provider(run: HostileRun) -> None:
    assert run.result.all_measured, run.result.health
    assert set(run.records) == set(URLS)
    blocked = {u: r.judgement for u, r in run.records.items() if r.judgement.verdict is Verdict.BLOCKED}
    # the provider's own resolver misbehaving for one name is the provider's doing (see test_dns_*)
    assert set(blocked) <= {url("dns-wrong-id")}, blocked
    assert all(r.judgement.evidence for r in run.records.values())
    assert run.result.run.status == "complete"


def test_the_baseline_page_is_accessible(run: HostileRun) -> None:
    j = run.records[url("plain")].judgement
    assert (j.verdict, j.rule) == (Verdict.ACCESSIBLE, "http.matches_control")
    assert http_of(provider(run, url("plain")))["title"] == VIET


def test_nothing_non_public_was_ever_dialed(run: HostileRun, world: HostileWorld) -> None:
    assert (hs.SITE_IP, 80) in world.dialed and (hs.SITE_IP, 443) in world.dialed  # the recording works
    assert all(is_public_address(ip) for ip, _port in world.dialed), sorted(set(world.dialed))


# --- bodies -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("label", "scheme", "title"),
    [
        ("endless", "http", "Endless"),
        ("endless", "https", "Endless"),
        ("huge", "http", "Huge"),
        ("huge", "https", "Huge"),
        ("chunked", "http", "Chunked"),
        ("gzip-bomb", "http", "Bomb"),
        ("gzip-bomb", "https", "Bomb"),
    ],
)
def test_big_bodies_are_read_up_to_the_limit(run: HostileRun, world: HostileWorld, label: str, scheme: str,
                                             title: str) -> None:
    u = url(label, scheme)
    j = run.records[u].judgement
    assert j.verdict is Verdict.ACCESSIBLE, j
    assert j.rule == ("tls.valid_session" if scheme == "https" else "http.matches_control")
    assert f"'{title}', {LIMIT}+ B" in j.evidence
    for obs in (provider(run, u), run.controls[u]):
        h = http_of(obs)
        assert (h["status"], h["title"], h["truncated"]) == (200, title, True)
        assert h["body_length"] == LIMIT  # decoded bytes: a bomb's output is bounded too
        assert len(h["body_sha256"]) == 64


def test_the_huge_body_was_declared_and_mostly_not_sent(run: HostileRun, world: HostileWorld) -> None:
    h = http_of(provider(run, url("huge")))
    assert h["declared_length"] == 200 * MB
    assert world.web is not None
    # what the server managed to write before both vantages (http and https) hung up: socket buffers' worth
    assert world.web.sent[name("huge")] < 200 * MB / 2


def test_brotli_is_not_decoded_and_reading_is_bounded(run: HostileRun) -> None:
    """The probe advertises gzip and deflate only; a server that sends br anyway is recorded as such and
    its bytes, opaque, are read up to the limit (no brotli dependency: nothing to decode, nothing to bomb)."""
    j = run.records[url("brotli")].judgement
    assert j.verdict is Verdict.ACCESSIBLE, j
    h = http_of(provider(run, url("brotli")))
    assert h["error"] == "content-encoding 'br' not decoded"
    assert ("content-encoding", "br") in [tuple(x) for x in h["headers"]]
    assert h["body_length"] == LIMIT and h["truncated"]


def test_slow_headers_time_out_at_both_vantages(run: HostileRun) -> None:
    j = run.records[url("slow-head")].judgement
    assert (j.verdict, j.rule) == (Verdict.INCONCLUSIVE, "control.http_failed"), j
    hop = provider(run, url("slow-head"))["hops"][0]
    assert hop["http"]["failure"] == base.Failure.GENERIC_TIMEOUT
    assert hop["http"]["error"] == f"no response within {TIMEOUTS['http']:g}s"
    assert hop["http_attempts"] == 2  # a timeout is retried once, then recorded


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_a_slow_body_is_cut_at_the_deadline(run: HostileRun, scheme: str) -> None:
    u = url("slow-body", scheme)
    j = run.records[u].judgement
    assert j.verdict is Verdict.ACCESSIBLE, j
    h = http_of(provider(run, u))
    # one byte a second for 10 000 s unless the deadline over the whole exchange cuts it: a few bytes came
    assert h["status"] == 200 and h["truncated"]
    assert h["declared_length"] > 10000 and h["body_length"] < 20


def test_a_megabyte_of_headers_is_an_invalid_response(run: HostileRun, world: HostileWorld) -> None:
    j = run.records[url("header-flood")].judgement
    assert (j.verdict, j.rule) == (Verdict.INCONCLUSIVE, "control.http_failed"), j
    assert "http_protocol_error" in j.evidence
    h = http_of(provider(run, url("header-flood")))
    assert h["failure"] == base.Failure.HTTP_PROTOCOL_ERROR and h["status"] is None
    assert world.web is not None and world.web.sent[name("header-flood")] > 64 * 1024  # past h11's limit


def test_a_tls_server_stalling_mid_handshake(run: HostileRun) -> None:
    j = run.records[url("stall", "https")].judgement
    assert (j.verdict, j.rule) == (Verdict.INCONCLUSIVE, "control.unreachable"), j
    endpoint = provider(run, url("stall", "https"))["hops"][0]["endpoints"][0]
    assert endpoint["tcp"]["failure"] is None
    assert endpoint["tls"]["failure"] == base.Failure.GENERIC_TIMEOUT
    assert endpoint["attempts"] == 2


# --- redirects -------------------------------------------------------------------------------------------


def test_redirect_loops_are_recorded_and_stopped(run: HostileRun) -> None:
    for label, hops in (("loop-a", 3), ("self-loop", 2)):
        j = run.records[url(label)].judgement
        assert (j.verdict, j.rule) == (Verdict.ACCESSIBLE, "http.same_redirect_end"), j
        obs = provider(run, url(label))
        assert len(obs["hops"]) == hops
        assert obs["hops"][-1]["not_followed"] == "redirect loop"


def test_a_long_redirect_chain_is_bounded(run: HostileRun, world: HostileWorld) -> None:
    j = run.records[url("chain")].judgement
    assert (j.verdict, j.rule) == (Verdict.ACCESSIBLE, "http.same_redirect_end"), j
    obs = provider(run, url("chain"))
    assert len(obs["hops"]) == 12  # the URL, 10 redirects followed, the 11th recorded
    assert obs["hops"][-1]["not_followed"] == "more than 10 redirects"
    assert world.web is not None
    fetched = [p for h, p in world.web.requests if h == name("chain")]
    assert "/11" not in fetched and "/10" in fetched


@pytest.mark.parametrize(
    ("label", "target", "reason"),
    [
        ("to-ftp", "ftp://files.example/x.zip", "not http(s)"),
        ("to-javascript", "javascript:alert(document.cookie)", "not http(s)"),
        ("to-data", "data:text/html;base64,PHRpdGxlPng8L3RpdGxlPg==", "not http(s)"),
        ("to-loopback", "http://127.0.0.1/admin", "only non-public addresses: not dialed"),
        ("to-private", "http://10.0.0.1/", "only non-public addresses: not dialed"),
        ("to-private-https", "https://10.0.0.1:8443/", "only non-public addresses: not dialed"),
        ("to-private-name", f"http://{name('lan')}/", "only non-public addresses: not dialed"),
        ("to-ipv6-loopback", "http://[::1]:8080/", "only non-public addresses: not dialed"),
        ("to-mapped", "http://[::ffff:a00:1]/", "only non-public addresses: not dialed"),
        ("to-decimal", "http://2130706433/", "invalid URL: bad IPv4 address '2130706433'"),
        ("to-broken", "http://[::1", "invalid redirect URL: Invalid IPv6 URL"),
    ],
)
def test_redirects_elsewhere_are_recorded_not_followed(run: HostileRun, label: str, target: str, reason: str) -> None:
    j = run.records[url(label)].judgement
    if label == "to-private-name":  # the name resolves to a private address at control too
        assert (j.verdict, j.rule) == (Verdict.INCONCLUSIVE, "control.not_dialed"), j
        assert "192.168.1.1 at control too" in j.evidence
    else:
        assert (j.verdict, j.rule) == (Verdict.ACCESSIBLE, "http.same_redirect_end"), j
        assert reason in j.evidence
    for obs in (provider(run, url(label)), run.controls[url(label)]):
        last = obs["hops"][-1]
        assert len(obs["hops"]) == 2
        assert (last["url"], last["not_followed"]) == (target, reason)
        assert last["endpoints"] == [] and last["http"] is None
    if label == "to-private-name":  # resolved through the vantage, then not dialed
        assert provider(run, url(label))["hops"][-1]["dns"]["addresses"] == ["192.168.1.1"]


# --- titles --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("label", "title"),
    [
        ("bad-utf8", "caf\ufffd \ufffd\ufffd \ufffd"),
        ("cp1258-declared", VIET),
        ("cp1258-meta", VIET),
        ("charset-undefined", "Undefined"),  # an unusable codec: UTF-8 with replacement, not a crash
        ("charset-idna", "Idna \ufffd"),
    ],
)
def test_titles_in_broken_and_legacy_encodings(run: HostileRun, label: str, title: str) -> None:
    j = run.records[url(label)].judgement
    assert (j.verdict, j.rule) == (Verdict.ACCESSIBLE, "http.matches_control"), j
    assert http_of(provider(run, url(label)))["title"] == title


def test_an_undeclared_legacy_title_is_kept_with_replacements(run: HostileRun) -> None:
    j = run.records[url("cp1258-undeclared")].judgement
    assert j.verdict is Verdict.ACCESSIBLE, j
    title = http_of(provider(run, url("cp1258-undeclared")))["title"]
    assert "\ufffd" in title and title.startswith("Th") and title != VIET
    assert title == http_of(run.controls[url("cp1258-undeclared")])["title"]


def test_a_page_of_unclosed_title_tags_costs_nothing(run: HostileRun) -> None:
    """The page itself is judged, and (see test_every_case_gets_a_verdict...) every other probe in flight
    still got its answer: a quadratic title search used to freeze the event loop past every deadline."""
    j = run.records[url("title-flood")].judgement
    assert (j.verdict, j.rule) == (Verdict.ACCESSIBLE, "http.matches_control"), j
    h = http_of(provider(run, url("title-flood")))
    assert h["title"] == "" and h["body_length"] == 9300 * 7


# --- DNS through the engine (TCP through the SOCKS vantages) -------------------------------------------


def lookup(run: HostileRun, label: str) -> dict[str, Any]:
    dns: dict[str, Any] = provider(run, url(label))["hops"][0]["dns"]
    return dns


def test_dns_garbage_from_the_providers_resolver(run: HostileRun) -> None:
    j = run.records[url("dns-garbage")].judgement
    assert (j.verdict, j.rule) == (Verdict.INCONCLUSIVE, "vantage.resolver_failed"), j
    assert lookup(run, "dns-garbage")["failure"] == base.Failure.DNS_BAD_REPLY
    assert lookup(run, "dns-garbage")["queries"][0]["error"].startswith("malformed reply")


def test_dns_garbage_from_the_control_resolver(run: HostileRun) -> None:
    j = run.records[url("dns-control-garbage")].judgement
    assert (j.verdict, j.rule) == (Verdict.INCONCLUSIVE, "control.dns_failed"), j


def test_dns_mismatched_id_then_the_answer(run: HostileRun) -> None:
    j = run.records[url("dns-wrong-id-then-answer")].judgement
    assert (j.verdict, j.rule) == (Verdict.ACCESSIBLE, "http.matches_control"), j
    assert lookup(run, "dns-wrong-id-then-answer")["addresses"] == [hs.SITE_IP]


def test_dns_only_mismatched_ids_is_silence(run: HostileRun) -> None:
    """Every stub resolver ignores a reply whose ID does not match: for this name the provider's resolver
    is silent while it answers others, which is the dns.timeout rule (likely, after a retry)."""
    j = run.records[url("dns-wrong-id")].judgement
    assert (j.verdict, j.rule, j.confidence) == (Verdict.BLOCKED, "dns.timeout", Confidence.LIKELY), j
    assert "2 attempts" in j.evidence
    assert lookup(run, "dns-wrong-id")["failure"] == base.Failure.GENERIC_TIMEOUT


@pytest.mark.parametrize("label", ["dns-tc-empty", "dns-cut"])
def test_dns_truncated_over_tcp_is_a_bad_reply_not_a_block(run: HostileRun, label: str) -> None:
    j = run.records[url(label)].judgement
    assert (j.verdict, j.rule) == (Verdict.INCONCLUSIVE, "vantage.resolver_failed"), j
    q = lookup(run, label)["queries"][0]
    assert (q["transport"], q["failure"]) == ("tcp", base.Failure.DNS_BAD_REPLY)


def test_dns_hundreds_of_records(run: HostileRun) -> None:
    j = run.records[url("dns-many")].judgement
    assert (j.verdict, j.rule) == (Verdict.ACCESSIBLE, "http.matches_control"), j
    d = lookup(run, "dns-many")
    assert len(d["addresses"]) == 64 and d["addresses"][0] == hs.SITE_IP  # recorded, capped
    assert len(provider(run, url("dns-many"))["hops"][0]["endpoints"]) == 1


# --- DNS over UDP (a direct vantage), through measure_url and judge -------------------------------------


@pytest.mark.parametrize(
    ("how", "transport", "failure", "rule"),
    [
        # TC over UDP is retried over TCP: answered whole there, or TC again (a bad reply, not "no address")
        ("tc_udp", "tcp", None, "control.not_dialed"),
        ("cut_udp", "tcp", None, "control.not_dialed"),
        ("tc_empty", "tcp", base.Failure.DNS_BAD_REPLY, "vantage.resolver_failed"),
        ("cut", "tcp", base.Failure.DNS_BAD_REPLY, "vantage.resolver_failed"),
        ("wrong_id_then_answer", "udp", None, "control.not_dialed"),
        ("many", "udp", None, "control.not_dialed"),
        # garbage on our port is skipped, as a stub resolver would, even when its flags byte has the TC bit
        # (this garbage does: it used to end the query as a bad reply, other garbage did not)
        ("garbage", "udp", base.Failure.GENERIC_TIMEOUT, "dns.timeout"),
    ],
)
def test_dns_over_udp(how: str, transport: str, failure: str | None, rule: str) -> None:
    """A direct vantage asks over UDP; loopback answers are dialed here (`dial_non_public`), and the
    verdict, which counts loopback as non-public, says so (`control.not_dialed`) when DNS worked."""
    host = name("udp")
    page = hs.page(b"<html><head><title>udp</title></head></html>")

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request_head(reader)
        await page(writer, "/")

    async def main() -> tuple[UrlObservation, UrlObservation, Judgement]:
        zone: dict[str, tuple[str, ...]] = {host: (LOOPBACK,)}
        good, bad = HostileResolver(zone), HostileResolver(zone, {host: how})
        async with TcpServer(serve) as web, dns_on_one_port(good.udp, good.tcp) as (cu, _), \
                dns_on_one_port(bad.udp, bad.tcp) as (pu, _):
            timeouts = base.Timeouts(dns=1.0, connect=1.0, tls=1.0, http=1.0)

            def vantage(vid: str, port: int) -> Vantage:
                probe = base.ProbeContext(SocketDialer(loopback_only=True), timeouts)
                return Vantage(vid, probe, ((LOOPBACK, port),), retries=0, dial_non_public=True)

            target = f"http://{host}:{web.port}/"
            control = await measure_url(vantage("control", cu.port), target)
            obs = await measure_url(vantage("isp", pu.port), target, control)
            return control, obs, judge(obs, control)

    control, obs, j = asyncio.run(main())
    assert control.hops[0].dns is not None and control.hops[0].dns.addresses == (LOOPBACK,)
    d = obs.hops[0].dns
    assert d is not None
    q = d.queries[0]
    assert (q.qtype, q.transport, q.failure) == ("A", transport, failure)
    assert j.rule == rule, j
    if failure is None:
        assert obs.hops[0].http is not None and obs.hops[0].http.title == "udp"
        assert d.addresses[0] == LOOPBACK and len(d.addresses) == (64 if how == "many" else 1)
    else:  # no address: nothing was dialed, no page fetched
        assert d.addresses == () and obs.hops[0].endpoints == () and obs.hops[0].http is None


# --- memory ---------------------------------------------------------------------------------------------

CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from auditor.config import load_config
    from auditor.engine import run_audit
    from auditor.store import open_store

    config = load_config(Path(sys.argv[1]))
    store = open_store(config.store)
    try:
        result = asyncio.run(run_audit(config, store))
        print(sum(1 for r in store.iter_measurements(result.run.run_id) if r.judgement.verdict == "accessible"))
    finally:
        store.close()
    """
)
SCALED = ["huge", "chunked", "gzip-bomb", "brotli"]


def child_peak_rss_kib(world: HostileWorld, size: int, workdir: Path) -> tuple[int, int]:
    """Audit the scaled cases at `size` bytes in a child process; (its peak RSS in KiB, accessible count)."""
    urls = [f"http://{name(label)}/?bytes={size}" for label in SCALED] + [
        f"https://{name(label)}/?bytes={size}" for label in ("huge", "gzip-bomb")
    ] + [url("endless")]
    own = workdir / f"child-{size}"
    own.mkdir()
    config = world.write_config(urls, into=own)  # not the store the module's run is read from
    out, err = own / "stdout", own / "stderr"
    with out.open("wb") as fo, err.open("wb") as fe:
        proc = subprocess.Popen([sys.executable, "-c", CHILD, str(config)], stdout=fo, stderr=fe,
                                cwd=Path(__file__).resolve().parents[1])
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage, not the max over all children
        proc.returncode = os.waitstatus_to_exitcode(status)
    assert proc.returncode == 0, err.read_text()
    return usage.ru_maxrss, int(out.read_text().strip())


def test_peak_memory_does_not_grow_with_what_servers_send(world: HostileWorld, tmp_path: Path) -> None:
    small, accessible_small = child_peak_rss_kib(world, 20 * MB, tmp_path)
    large, accessible_large = child_peak_rss_kib(world, 400 * MB, tmp_path)
    print(f"peak RSS: 20 MB bodies {small / 1024:.1f} MiB, 400 MB bodies {large / 1024:.1f} MiB")
    assert accessible_small == accessible_large == 7  # the run really fetched every case both times
    assert large - small < 15 * 1024, (small, large)
