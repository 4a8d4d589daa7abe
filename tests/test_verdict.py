"""Verdict rules on hand-built observations: each rule, and the traps where a careless rule guesses."""

from __future__ import annotations

import re
from pathlib import Path

from auditor.models import Confidence, Method, Verdict
from auditor.observations import DnsLookup, EndpointObservation, HopObservation, UrlObservation
from auditor.verdict import judge, same_page
from probes import base
from probes.base import CertificateInfo, DnsObservation, HttpObservation, TcpObservation, TlsObservation

SITE = "93.184.216.34"
OTHER = "151.101.1.1"
REPO = Path(__file__).resolve().parent.parent


def dns(name: str = "site.example", addresses=(SITE,), failure=None, rcode="NOERROR", attempts=1) -> DnsLookup:
    q = DnsObservation("1.2.3.4:53", "A", "udp", failure, rcode, tuple(addresses))
    return DnsLookup(name, (q,), tuple(addresses), failure, attempts)


def endpoint(ip=SITE, port=80, tcp_failure=None, tls=None, attempts=1) -> EndpointObservation:
    return EndpointObservation(ip, port, TcpObservation(ip, port, tcp_failure), tls, attempts)


def valid_tls(name="site.example") -> TlsObservation:
    return TlsObservation(name, None, version="TLSv1.3", certificate=CertificateInfo(issuer="CN=Real CA"))


def page(status=200, title="Trang chủ", length=5000, sha="a" * 64, location="", fingerprints=()) -> HttpObservation:
    return HttpObservation(None, status, "OK", location=location, title=title, body_length=length,
                           body_sha256=sha, fingerprints=fingerprints)


def hop(url="http://site.example/", lookup=None, endpoints=None, http=None, tls_check=None) -> HopObservation:
    scheme = url.split(":")[0]
    port = 443 if scheme == "https" else 80
    lookup = lookup if lookup is not None else dns()
    if endpoints is None:
        endpoints = (endpoint(port=port, tls=valid_tls() if scheme == "https" else None),)
    return HopObservation(url, scheme, "site.example", port, lookup, tuple(endpoints), http, 1, "", tls_check)


def obs(*hops: HopObservation, vantage_id="p", vantage_failure="", depth=None) -> UrlObservation:
    return UrlObservation(hops[0].url, vantage_id, "socks5 127.0.0.1:1", hops, "t", 1.0, vantage_failure, depth)


CONTROL = obs(hop(http=page()), vantage_id="control")
CONTROL_TLS = obs(hop("https://site.example/", http=page()), vantage_id="control")


def test_no_control_no_verdict() -> None:
    j = judge(obs(hop(http=page())), None)
    assert j.verdict is Verdict.INCONCLUSIVE and j.rule == "control.missing"


def test_dead_vantage_is_never_blocked() -> None:
    p = obs(hop(endpoints=(endpoint(tcp_failure=base.Failure.VANTAGE_UNAVAILABLE),)), vantage_failure="proxy down")
    j = judge(p, CONTROL)
    assert j.verdict is Verdict.INCONCLUSIVE and j.rule == "vantage.down"


def test_nxdomain_is_confirmed_dns_blocking() -> None:
    p = obs(hop(lookup=dns(addresses=(), failure=base.Failure.DNS_NXDOMAIN, rcode="NXDOMAIN"), endpoints=()))
    j = judge(p, CONTROL)
    assert (j.verdict, j.method, j.confidence, j.rule) == (Verdict.BLOCKED, Method.DNS, Confidence.CONFIRMED, "dns.nxdomain")
    assert "NXDOMAIN" in j.evidence and SITE in j.evidence


def test_resolver_timeout_is_only_likely() -> None:
    p = obs(hop(lookup=dns(addresses=(), failure=base.Failure.GENERIC_TIMEOUT, rcode="", attempts=2), endpoints=()))
    j = judge(p, CONTROL)
    assert (j.method, j.confidence, j.rule) == (Method.DNS, Confidence.LIKELY, "dns.timeout")
    assert "2 attempts" in j.evidence


def test_resolver_connection_refused_is_not_blocking() -> None:
    p = obs(hop(lookup=dns(addresses=(), failure=base.Failure.CONNECTION_REFUSED, rcode=""), endpoints=()))
    assert judge(p, CONTROL).verdict is Verdict.INCONCLUSIVE


def test_gone_everywhere_is_inconclusive() -> None:
    gone = dns(addresses=(), failure=base.Failure.DNS_NXDOMAIN, rcode="NXDOMAIN")
    c = obs(hop(lookup=gone, endpoints=()), vantage_id="control")
    j = judge(obs(hop(lookup=gone, endpoints=())), c)
    assert j.verdict is Verdict.INCONCLUSIVE and j.rule == "control.dns_failed"


def test_ghost_with_a_block_page_is_blocked() -> None:
    gone = dns(addresses=(), failure=base.Failure.DNS_NXDOMAIN, rcode="NXDOMAIN")
    c = obs(hop(lookup=gone, endpoints=()), vantage_id="control")
    p = obs(hop(lookup=dns(addresses=(OTHER,)), endpoints=(endpoint(OTHER),),
                http=page(title="404 Page", fingerprints=("ooni.vn_http_1",))))
    j = judge(p, c)
    assert (j.verdict, j.method, j.confidence, j.rule) == (
        Verdict.BLOCKED, Method.DNS, Confidence.CONFIRMED, "dns.blockpage_fingerprint")


def test_sinkhole_address_fingerprint() -> None:
    p = obs(hop(lookup=dns(addresses=("125.212.224.108",)), endpoints=()))
    j = judge(p, CONTROL, lambda ip: "ooni.vn_dns_1" if ip == "125.212.224.108" else None)
    assert (j.rule, j.confidence) == ("dns.blockpage_address", Confidence.CONFIRMED)
    assert "ooni.vn_dns_1" in j.evidence


def test_bogon_answer_is_blocking_only_against_public_control() -> None:
    p = obs(hop(lookup=dns(addresses=("127.0.0.1",)), endpoints=()))
    assert judge(p, CONTROL).rule == "dns.bogon"
    c = obs(hop(lookup=dns(addresses=("10.0.0.5",)), endpoints=()), vantage_id="control")
    assert judge(p, c).verdict is Verdict.INCONCLUSIVE  # bogons everywhere: a misconfigured site


def test_cdn_address_with_valid_certificate_is_accessible() -> None:
    p = obs(hop("https://site.example/", lookup=dns(addresses=(OTHER,)),
                endpoints=(endpoint(OTHER, 443, tls=valid_tls()),), http=page(sha="b" * 64)))
    j = judge(p, CONTROL_TLS)
    assert j.verdict is Verdict.ACCESSIBLE and j.rule == "tls.valid_session"


def test_differing_address_without_valid_certificate_is_likely_dns_blocking() -> None:
    bad = TlsObservation("site.example", base.Failure.SSL_INVALID_HOSTNAME, certificate=CertificateInfo(issuer="CN=Filter"))
    p = obs(hop(lookup=dns(addresses=(OTHER,)), endpoints=(endpoint(OTHER),),
                http=page(title="Thông báo", length=300, sha="e" * 64), tls_check=endpoint(OTHER, 443, tls=bad)))
    j = judge(p, CONTROL)
    assert (j.verdict, j.method, j.confidence, j.rule) == (Verdict.BLOCKED, Method.DNS, Confidence.LIKELY, "dns.inconsistent")


def test_tcp_reset_confirmed_timeout_likely_socks_close_likely() -> None:
    for failure, rule, conf in (
        (base.Failure.CONNECTION_RESET, "tcp.reset", Confidence.CONFIRMED),
        (base.Failure.CONNECTION_REFUSED, "tcp.refused", Confidence.CONFIRMED),
        (base.Failure.GENERIC_TIMEOUT, "tcp.timeout", Confidence.LIKELY),
        (base.Failure.EOF, "tcp.closed", Confidence.LIKELY),
    ):
        j = judge(obs(hop(endpoints=(endpoint(tcp_failure=failure, attempts=2),))), CONTROL)
        assert (j.method, j.confidence, j.rule) == (Method.TCP, conf, rule)


def test_site_down_everywhere_is_inconclusive() -> None:
    down = (endpoint(tcp_failure=base.Failure.CONNECTION_REFUSED),)
    j = judge(obs(hop(endpoints=down)), obs(hop(endpoints=down), vantage_id="control"))
    assert j.verdict is Verdict.INCONCLUSIVE and j.rule == "control.unreachable"


def test_interception_names_the_issuer() -> None:
    forged = TlsObservation("site.example", base.Failure.SSL_UNKNOWN_AUTHORITY, error="unable to get local issuer certificate",
                            verify_code=20, certificate=CertificateInfo(issuer="O=Filter Interception CA"))
    p = obs(hop("https://site.example/", endpoints=(endpoint(port=443, tls=forged),)))
    j = judge(p, CONTROL_TLS)
    assert (j.method, j.confidence, j.rule) == (Method.TLS, Confidence.CONFIRMED, "tls.untrusted_certificate")
    assert "Filter Interception CA" in j.evidence


def test_bad_certificate_everywhere_is_inconclusive() -> None:
    bad = TlsObservation("site.example", base.Failure.SSL_UNKNOWN_AUTHORITY)
    p = obs(hop("https://site.example/", endpoints=(endpoint(port=443, tls=bad),)))
    c = obs(hop("https://site.example/", endpoints=(endpoint(port=443, tls=bad),)), vantage_id="control")
    assert judge(p, c).rule == "control.tls_invalid"


def test_sni_reset_and_silence() -> None:
    for failure, rule, conf in ((base.Failure.CONNECTION_RESET, "tls.reset", Confidence.CONFIRMED),
                                (base.Failure.GENERIC_TIMEOUT, "tls.timeout", Confidence.LIKELY)):
        tls = TlsObservation("site.example", failure)
        j = judge(obs(hop("https://site.example/", endpoints=(endpoint(port=443, tls=tls),))), CONTROL_TLS)
        assert (j.method, j.confidence, j.rule) == (Method.TLS, conf, rule)


def test_http_reset_after_request() -> None:
    p = obs(hop(http=HttpObservation(base.Failure.CONNECTION_RESET, interrupted_after_request=True)))
    j = judge(p, CONTROL)
    assert (j.method, j.confidence, j.rule) == (Method.HTTP, Confidence.CONFIRMED, "http.reset")


def test_an_unclassified_failure_is_never_blocked() -> None:
    # unknown_failure, and what versions before it stored (an errno, a SOCKS reply code), at each step where
    # control succeeded: the vantage's own machine may be at fault, so no verdict either way
    for failure in (base.Failure.UNKNOWN, "errno_13", "socks_reply_1"):
        error = "[Errno 13] Permission denied"
        tls = TlsObservation("site.example", failure, error=error)
        for p, c in (
            (obs(hop(endpoints=(EndpointObservation(SITE, 80, TcpObservation(SITE, 80, failure, error=error)),))),
             CONTROL),
            (obs(hop("https://site.example/", endpoints=(endpoint(port=443, tls=tls),))), CONTROL_TLS),
            (obs(hop(http=HttpObservation(failure, error=error, interrupted_after_request=True))), CONTROL),
        ):
            j = judge(p, c)
            assert (j.verdict, j.rule) == (Verdict.INCONCLUSIVE, "measure.unknown_failure"), j
            assert failure in j.evidence and "Permission denied" in j.evidence


def test_a_named_failure_without_a_rule_of_its_own_stays_likely() -> None:
    tls = TlsObservation("site.example", base.Failure.HOST_UNREACHABLE)  # an ICMP error mid-handshake
    j = judge(obs(hop("https://site.example/", endpoints=(endpoint(port=443, tls=tls),))), CONTROL_TLS)
    assert (j.verdict, j.method, j.confidence, j.rule) == (Verdict.BLOCKED, Method.TLS, Confidence.LIKELY, "tls.failed")


def test_block_page_with_status_200_and_similar_size_does_not_slip_through() -> None:
    p = obs(hop(http=page(title="Trang web bị chặn", length=4900, sha="c" * 64)))
    j = judge(p, CONTROL)
    assert (j.verdict, j.method, j.confidence, j.rule) == (Verdict.BLOCKED, Method.HTTP, Confidence.LIKELY, "http.differs")


def test_dynamic_content_is_accessible() -> None:
    p = obs(hop(http=page(length=5100, sha="d" * 64)))
    assert judge(p, CONTROL).rule == "http.matches_control"


def test_titles_compare_as_characters_not_bytes() -> None:
    import unicodedata

    composed = unicodedata.normalize("NFC", "Tin tức")
    a, b = page(title=composed, sha="1" * 64), page(title=composed.upper(), sha="2" * 64)
    assert same_page(a, b)  # case-folded, already NFC from the probe


def test_redirect_into_a_blocked_host() -> None:
    first_p = hop(http=page(status=301, location="https://target.example/", title="", length=0))
    first_c = hop(http=page(status=301, location="https://target.example/", title="", length=0))
    target_c = HopObservation("https://target.example/", "https", "target.example", 443,
                              dns("target.example"), (endpoint(port=443, tls=valid_tls("target.example")),), page())
    target_p = HopObservation("https://target.example/", "https", "target.example", 443,
                              dns("target.example", addresses=(), failure=base.Failure.DNS_NXDOMAIN, rcode="NXDOMAIN"))
    j = judge(obs(first_p, target_p), obs(first_c, target_c, vantage_id="control"))
    assert (j.method, j.rule) == (Method.DNS, "dns.nxdomain")
    assert j.evidence.startswith("redirect hop 1 (https://target.example/)")


def test_redirect_to_a_warning_host_fingerprint() -> None:
    p = obs(hop(http=page(status=302, location="http://warning.isp.example/", fingerprints=("config.redirect_host.1",))))
    j = judge(p, CONTROL)
    assert (j.method, j.confidence, j.rule) == (Method.HTTP, Confidence.CONFIRMED, "http.blockpage_fingerprint")


def test_unknown_redirect_is_likely() -> None:
    p = obs(hop(http=page(status=302, location="http://notice.isp.example/", title="", length=0)))
    j = judge(p, CONTROL)
    assert (j.method, j.confidence, j.rule) == (Method.HTTP, Confidence.LIKELY, "http.unknown_redirect")


def test_every_rule_is_documented() -> None:
    source = "".join((REPO / "auditor" / f"{m}.py").read_text() for m in (
        "verdict", "health", "scheduler", "analyst", "confirm"))
    rules = set(re.findall(r'"((?:dns|tcp|tls|http|control|vantage|provider|redirect|measure|internal)\.[a-z_]+)"', source))
    # the search finds the rules (a broken pattern or a moved module would find none and pass)
    assert {"dns.nxdomain", "tcp.refused", "tls.valid_session", "control.flapped", "vantage.unhealthy",
            "provider.not_measured", "internal.error"} <= rules
    doc = (REPO / "docs" / "verdicts.md").read_text()
    missing = sorted(r for r in rules if f"`{r}`" not in doc)
    assert not missing, f"rules not in docs/verdicts.md: {missing}"
