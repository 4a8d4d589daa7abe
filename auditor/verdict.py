"""Judge one (provider, URL): compare what the provider's vantage saw with what control saw, step by step.

Order of evidence (see docs/verdicts.md for every rule id):
1. Either vantage itself failed → inconclusive. No control → inconclusive.
2. Block-page fingerprints (a known sinkhole address, body, header or redirect) → blocked, confirmed. They
   stand even when control cannot reach the site: a provider that serves its block page for a dead name
   (a "ghost") is blocking it.
3. Hop by hop, like OONI's Web Connectivity but never guessing: DNS, then TCP/TLS, then HTTP. A step that
   fails at the provider while it succeeds at control is where the blocking is; a step that fails at control
   too means the site is down, gone or broken: inconclusive with the reason.
4. Accessible only on positive proof: a valid TLS session for the name, or consistent DNS and a cleartext
   page that matches control.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeGuard
from urllib.parse import urljoin

from auditor.models import Confidence, Judgement, Method, Verdict
from auditor.observations import EndpointObservation, HopObservation, UrlObservation, is_public_address
from probes import base
from probes.base import HttpObservation

DnsFingerprintLookup = Callable[[str], str | None]  # address -> fingerprint id

_DNS_RCODE_RULES: dict[str, tuple[str, str]] = {
    base.Failure.DNS_NXDOMAIN: ("dns.nxdomain", "NXDOMAIN"),
    base.Failure.DNS_REFUSED: ("dns.refused", "REFUSED"),
    base.Failure.DNS_SERVFAIL: ("dns.servfail", "SERVFAIL"),
    base.Failure.DNS_NO_ANSWER: ("dns.no_answer", "no address"),
    base.Failure.DNS_OTHER_RCODE: ("dns.error_rcode", "an error rcode"),
}


# Blocked rules that rest on what the far side said, not on the vantage's own transport: a DNS answer, a
# certificate, a fingerprint, an HTTP response. Every other blocked rule rests on a close, reset, refusal,
# timeout or proxy error, which a dying vantage produces too (auditor.confirm re-checks the vantage first).
ANSWER_RULES = frozenset({
    "dns.blockpage_address", "dns.blockpage_fingerprint", "dns.nxdomain", "dns.refused", "dns.servfail",
    "dns.no_answer", "dns.error_rcode", "dns.bogon", "dns.inconsistent", "tls.untrusted_certificate",
    "http.blockpage_fingerprint", "http.unknown_redirect", "http.differs",
})


def rests_on_transport(judgement: Judgement, provider: UrlObservation) -> bool:
    """A blocked verdict that a vantage dying under the measurement could also explain: a rule that rests on
    the transport, or a likely answer rule whose observation holds a transport failure (a differing DNS
    answer whose address could not be reached)."""
    if judgement.verdict is not Verdict.BLOCKED:
        return False
    if judgement.rule not in ANSWER_RULES:
        return True
    return judgement.confidence is Confidence.LIKELY and _transport_failed(provider)


def _transport_failed(provider: UrlObservation) -> bool:
    for hop in provider.hops:
        for e in (*hop.endpoints, *((hop.tls_check,) if hop.tls_check else ())):
            if e.failure and e.failure not in base.CERTIFICATE_FAILURES:
                return True
        if hop.http is not None and hop.http.failure:
            return True
        if hop.dns is not None and any(q.failure and q.failure not in _DNS_RCODE_RULES for q in hop.dns.queries):
            return True
    return False


def blocked(method: Method, confidence: Confidence, rule: str, evidence: str) -> Judgement:
    return Judgement(Verdict.BLOCKED, rule, evidence, method, confidence)


def accessible(rule: str, evidence: str) -> Judgement:
    return Judgement(Verdict.ACCESSIBLE, rule, evidence)


def inconclusive(rule: str, evidence: str) -> Judgement:
    return Judgement(Verdict.INCONCLUSIVE, rule, evidence)


def judge(
    provider: UrlObservation,
    control: UrlObservation | None,
    dns_fingerprint: DnsFingerprintLookup | None = None,
    *,
    private_ok: bool = False,
) -> Judgement:
    """`private_ok` (config network.allow_private_destinations): private and loopback answers are ordinary
    addresses, not bogons (an intranet, or a test bed)."""
    if control is None or not control.hops:
        return inconclusive("control.missing", "no control measurement: no verdict without control")
    if control.vantage_failure:
        return inconclusive("control.vantage_down", f"control vantage failed: {control.vantage_failure}")
    if provider.vantage_failure:
        return inconclusive("vantage.down", f"provider vantage failed: {provider.vantage_failure}")
    found = _fingerprint(provider, control, dns_fingerprint or (lambda _ip: None))
    if found is not None:
        return _with_depth(found, provider)
    for i, hop in enumerate(provider.hops):
        control_hop = control.hops[i] if i < len(control.hops) else None
        if control_hop is None or control_hop.url != hop.url:
            return _alone(hop, i)
        decided = _judge_hop(hop, control_hop, i, private_ok)
        if decided is not None:
            return _with_depth(decided, provider)
    return inconclusive("internal.no_decision", "measurement ended without a decisive step")


# --- fingerprints -------------------------------------------------------------------------------------


def _fingerprint(p: UrlObservation, c: UrlObservation, dns_fp: DnsFingerprintLookup) -> Judgement | None:
    for i, hop in enumerate(p.hops):
        where = _where(i, hop)
        if hop.dns is not None:
            for ip in hop.dns.addresses:
                fid = dns_fp(ip)
                if fid:
                    return blocked(
                        Method.DNS,
                        Confidence.CONFIRMED,
                        "dns.blockpage_address",
                        f"{where}resolver {hop.dns.answering_resolver} answered {ip}, a known block-page address "
                        f"({fid}); control: {_control_dns(c, i, hop.url)}",
                    )
        if hop.http is not None and hop.http.fingerprints:
            control_hop = c.hops[i] if i < len(c.hops) and c.hops[i].url == hop.url else None
            redirect = hop.http.location and hop.http.status in range(300, 400)
            what = f"redirect to {hop.http.location[:120]}" if redirect else f"page {_page(hop.http)}"
            via = hop.connected.ip if hop.connected else "?"
            if control_hop is not None and _dns_consistent(hop, control_hop) is False:
                return blocked(
                    Method.DNS,
                    Confidence.CONFIRMED,
                    "dns.blockpage_fingerprint",
                    f"{where}resolver {hop.dns.answering_resolver if hop.dns else '?'} answered "
                    f"{_addrs(hop.addresses)} (control: {_control_dns(c, i, hop.url)}), which served a known "
                    f"block page ({', '.join(hop.http.fingerprints)}): {what}",
                )
            return blocked(
                Method.HTTP,
                Confidence.CONFIRMED,
                "http.blockpage_fingerprint",
                f"{where}{what} via {via} matches block-page fingerprint {', '.join(hop.http.fingerprints)}",
            )
    return None


# --- hop by hop ---------------------------------------------------------------------------------------


def _judge_hop(p: HopObservation, c: HopObservation, i: int, private_ok: bool = False) -> Judgement | None:
    """A judgement, or None when this hop redirects the same way at both vantages (judge the next)."""
    where = _where(i, p)
    # DNS
    consistent = True
    if p.dns is not None and c.dns is not None:
        if not c.dns.resolved:
            return inconclusive(
                "control.dns_failed",
                f"{where}control could not resolve {p.host} ({_dns_failure(c)}): the name is gone; "
                f"provider: {_dns_result(p)}",
            )
        if not p.dns.resolved:
            return _dns_failure_judgement(p, c, where)
        if not private_ok and not any(is_public_address(a) for a in c.dns.addresses):
            return inconclusive(
                "control.not_dialed",
                f"{where}{p.host} resolves to non-public {_addrs(c.dns.addresses)} at control too: a misconfigured "
                f"site, not blocking (provider: {_addrs(p.dns.addresses)})",
            )
        if not private_ok and not any(is_public_address(a) for a in p.dns.addresses) and any(
            is_public_address(a) for a in c.dns.addresses
        ):
            return blocked(
                Method.DNS,
                Confidence.CONFIRMED,
                "dns.bogon",
                f"{where}resolver {p.dns.answering_resolver} answered non-public {_addrs(p.dns.addresses)} for "
                f"{p.host}; control resolved {_addrs(c.dns.addresses)}",
            )
        consistent = _dns_consistent(p, c) is not False
        if not consistent and not (p.http and c.http and not p.http.failure and not c.http.failure
                                   and same_page(p.http, c.http)):
            return blocked(
                Method.DNS,
                Confidence.LIKELY,
                "dns.inconsistent",
                f"{where}resolver {p.dns.answering_resolver} answered {_addrs(p.dns.addresses)} for {p.host}, "
                f"control {_addrs(c.dns.addresses)}; the provider's address {_what_address_did(p)}",
            )
    if p.not_followed or c.not_followed:
        if p.not_followed == c.not_followed:
            return accessible("http.same_redirect_end", f"{where}not followed at either vantage: {p.not_followed}")
        return inconclusive("redirect.not_followed", f"{where}provider: {p.not_followed or 'followed'}; control: "
                            f"{c.not_followed or 'followed'}")
    if p.addresses and not p.endpoints:
        if not c.endpoints:
            return inconclusive("control.not_dialed", f"{where}{p.host} resolves to non-public addresses everywhere")
        return inconclusive("measure.not_dialed", f"{where}{p.not_followed or 'no address dialed'}")

    # TCP and TLS
    p_conn, c_conn = p.connected, c.connected
    if p_conn is None and p.endpoints:
        if c_conn is None:
            return _control_unreachable(c, where, p)
        return _connect_failure_judgement(p.endpoints[0], c_conn, where, p.host)
    if c_conn is None and c.endpoints:
        return _control_unreachable(c, where, p)

    # HTTP
    if p.content_withheld and _valid_tls(p_conn):
        return accessible(
            "tls.valid_handshake",
            f"{where}valid TLS handshake for {p.host} at {p_conn.ip} (certificate issued by {_issuer(p_conn)}); "
            "no content requested (sensitive entry)",
        )
    ph, ch = p.http, c.http
    if ph is None or ph.failure:
        if ch is None or ch.failure:
            return inconclusive(
                "control.http_failed",
                f"{where}HTTP failed at both vantages: provider {_http_failure(ph)}, control {_http_failure(ch)}",
            )
        return _http_failure_judgement(ph, p, where)
    if ch is None or ch.failure:
        return inconclusive(
            "control.http_failed", f"{where}control HTTP {_http_failure(ch)}; provider got {_page(ph)}"
        )
    p_next, c_next = _redirect_target(p), _redirect_target(c)
    if p_next and p_next == c_next:
        return None  # same redirect at both: judge the next hop
    if _valid_tls(p_conn):
        if p_next:
            return None  # the real site redirects this vantage elsewhere: follow it alone
        return accessible(
            "tls.valid_session",
            f"{where}valid TLS session for {p.host} at {p_conn.ip} (certificate issued by "
            f"{_issuer(p_conn)}); {_page(ph)}",
        )
    if same_page(ph, ch):
        return accessible(
            "http.matches_control",
            f"{where}cleartext page via {p_conn.ip if p_conn else '?'} matches control: {_page(ph)}",
        )
    if p_next and p_next != c_next:
        return blocked(
            Method.HTTP,
            Confidence.LIKELY,
            "http.unknown_redirect",
            f"{where}redirected to {p_next[:120]} while control got {_page(ch)}",
        )
    return blocked(
        Method.HTTP,
        Confidence.LIKELY,
        "http.differs",
        f"{where}cleartext page differs from control: provider {_page(ph)}, control {_page(ch)}",
    )


def _alone(hop: HopObservation, i: int) -> Judgement:
    """A hop the control's chain does not have: the site sent this vantage elsewhere over a valid session."""
    where = _where(i, hop)
    if hop.http and not hop.http.failure:
        conn = hop.connected
        if conn and conn.tls and conn.tls.failure is None:
            return accessible("tls.valid_session", f"{where}valid TLS session for {hop.host}; {_page(hop.http)}")
    return inconclusive(
        "control.no_matching_hop",
        f"{where}the site redirected the provider's vantage to a URL control was not sent to; no control data",
    )


def _dns_failure_judgement(p: HopObservation, c: HopObservation, where: str) -> Judgement:
    assert p.dns is not None and c.dns is not None
    failure = p.dns.failure or base.Failure.DNS_NO_ANSWER
    control = f"control resolved {_addrs(c.dns.addresses)}"
    if failure in _DNS_RCODE_RULES:
        rule, said = _DNS_RCODE_RULES[failure]
        return blocked(
            Method.DNS,
            Confidence.CONFIRMED,
            rule,
            f"{where}resolver {p.dns.answering_resolver} answered {said} for {p.host}; {control}",
        )
    if failure == base.Failure.GENERIC_TIMEOUT:
        return blocked(
            Method.DNS,
            Confidence.LIKELY,
            "dns.timeout",
            f"{where}no reply from the provider's resolvers for {p.host} ({p.dns.attempts} attempts) while they "
            f"answer other names; {control}",
        )
    return inconclusive("vantage.resolver_failed", f"{where}provider's resolvers failed for {p.host}: {failure}")


_TCP_RULES: dict[str, tuple[str, Confidence, str]] = {
    base.Failure.CONNECTION_REFUSED: ("tcp.refused", Confidence.CONFIRMED, "refused"),
    base.Failure.CONNECTION_RESET: ("tcp.reset", Confidence.CONFIRMED, "reset"),
    base.Failure.GENERIC_TIMEOUT: ("tcp.timeout", Confidence.LIKELY, "timed out"),
    base.Failure.EOF: ("tcp.closed", Confidence.LIKELY, "closed by the vantage's proxy"),
    base.Failure.HOST_UNREACHABLE: ("tcp.unreachable", Confidence.LIKELY, "host unreachable"),
    base.Failure.NETWORK_UNREACHABLE: ("tcp.unreachable", Confidence.LIKELY, "network unreachable"),
    base.Failure.PROXY_REFUSED: ("tcp.proxy_refused", Confidence.LIKELY, "refused by the proxy's rules"),
}
_TLS_RULES: dict[str, tuple[str, Confidence, str]] = {
    base.Failure.CONNECTION_RESET: ("tls.reset", Confidence.CONFIRMED, "reset during the TLS handshake"),
    base.Failure.EOF: ("tls.closed", Confidence.LIKELY, "closed during the TLS handshake"),
    base.Failure.GENERIC_TIMEOUT: ("tls.timeout", Confidence.LIKELY, "TLS handshake timed out"),
    base.Failure.SSL_FAILED_HANDSHAKE: ("tls.handshake_failed", Confidence.LIKELY, "TLS handshake failed"),
}


def _connect_failure_judgement(e: EndpointObservation, c_ok: EndpointObservation, where: str, host: str) -> Judgement:
    tries = f" ({e.attempts} attempts)" if e.attempts > 1 else ""
    if e.silent_before:
        tries = (f" (not retried: {e.silent_before} earlier connects to {e.ip} were silent at this vantage this "
                 "run)")
    if e.step == "tcp":
        f = e.tcp.failure or ""
        if f in (base.Failure.NOT_DIALED, base.Failure.VANTAGE_UNAVAILABLE):
            return inconclusive("vantage.down", f"{where}{e.tcp.error}")
        if _unclassified(f):
            return _unknown_failure(f"{where}connect to {e.ip}:{e.port}", f, e.tcp.error, "control connected")
        rule, conf, said = _TCP_RULES.get(f, ("tcp.failed", Confidence.LIKELY, f))
        return blocked(
            Method.TCP,
            conf,
            rule,
            f"{where}connect to {e.ip}:{e.port} {said}{tries}; control connected to {c_ok.ip}:{c_ok.port} in "
            f"{c_ok.tcp.elapsed_ms:.0f} ms",
        )
    assert e.tls is not None
    f = e.tls.failure or ""
    if f in base.CERTIFICATE_FAILURES:
        cert = e.tls.certificate
        issuer = f"issued by {cert.issuer}" if cert and cert.issuer else "(certificate not retrieved)"
        return blocked(
            Method.TLS,
            Confidence.CONFIRMED,
            "tls.untrusted_certificate",
            f"{where}TLS to {e.ip} for {host} presented a certificate that fails validation ({f}: "
            f"{e.tls.error[:80]}) {issuer}: interception; control got a valid certificate issued by "
            f"{_issuer(c_ok)}",
        )
    if _unclassified(f):
        return _unknown_failure(f"{where}TLS with {e.ip} (SNI {host})", f, e.tls.error,
                                "control completed the handshake")
    rule, conf, said = _TLS_RULES.get(f, ("tls.failed", Confidence.LIKELY, f))
    return blocked(
        Method.TLS,
        conf,
        rule,
        f"{where}{said} with {e.ip} (SNI {host}){tries}; control completed the handshake with {c_ok.ip}",
    )


_HTTP_RULES: dict[str, tuple[str, Confidence, str]] = {
    base.Failure.CONNECTION_RESET: ("http.reset", Confidence.CONFIRMED, "connection reset after the request"),
    base.Failure.EOF: ("http.closed", Confidence.LIKELY, "connection closed after the request"),
    base.Failure.GENERIC_TIMEOUT: ("http.timeout", Confidence.LIKELY, "no response"),
    base.Failure.HTTP_PROTOCOL_ERROR: ("http.invalid_response", Confidence.LIKELY, "invalid HTTP response"),
}


def _http_failure_judgement(ph: HttpObservation | None, p: HopObservation, where: str) -> Judgement:
    if ph is not None and _unclassified(ph.failure or ""):
        return _unknown_failure(f"{where}HTTP for {p.url}", ph.failure or "", ph.error, "control got a response")
    f = ph.failure if ph else "no response"
    rule, conf, said = _HTTP_RULES.get(f or "", ("http.failed", Confidence.LIKELY, f or "failed"))
    tries = f" ({p.http_attempts} attempts)" if p.http_attempts > 1 else ""
    return blocked(Method.HTTP, conf, rule, f"{where}{said} for {p.url}{tries}; control got a response")


# Every failure the probes name, but `unknown_failure`: a name outside this set (`unknown_failure`, or what
# versions before the taxonomy stored for it: `errno_13`, `socks_reply_1`) says nothing about what failed.
_CLASSIFIED = frozenset(base.Failure) - {base.Failure.UNKNOWN}


def _unclassified(failure: str) -> bool:
    return failure not in _CLASSIFIED


def _unknown_failure(what: str, failure: str, error: str, control: str) -> Judgement:
    """A step that failed at the provider in a way the probe does not classify (a local error of the vantage's
    machine is as likely as the network): never "blocked", whatever control saw."""
    return inconclusive(
        "measure.unknown_failure",
        f"{what} failed with an unclassified error ({failure}: {error[:80]}); {control}: not judged",
    )


def _control_unreachable(c: HopObservation, where: str, p: HopObservation) -> Judgement:
    e = c.endpoints[0] if c.endpoints else None
    if e is not None and e.step == "tls" and e.tls is not None and e.tls.failure in base.CERTIFICATE_FAILURES:
        return inconclusive(
            "control.tls_invalid",
            f"{where}control cannot validate the certificate of {c.host} either ({e.tls.failure}): "
            f"bad certificate everywhere",
        )
    failure = e.failure if e else "no address"
    provider = "reached it" if p.connected else f"{p.endpoints[0].failure}" if p.endpoints else "no address"
    return inconclusive(
        "control.unreachable",
        f"{where}control cannot reach {c.host} ({e.step + ' ' if e else ''}{failure}): site down; provider: {provider}",
    )


# --- comparisons --------------------------------------------------------------------------------------


def _dns_consistent(p: HopObservation, c: HopObservation) -> bool | None:
    """True/False, or None when there is nothing to compare (address literals)."""
    if p.dns is None or c.dns is None:
        return None
    if set(p.dns.addresses) & set(c.dns.addresses):
        return True
    # the provider's address serves the name with a valid certificate: a CDN or GeoDNS answer, not a lie
    for e in (*p.endpoints, *((p.tls_check,) if p.tls_check else ())):
        if e.tls is not None and e.tls.failure is None:
            return True
    return False


def same_page(a: HttpObservation, b: HttpObservation) -> bool:
    """Cleartext pages are the same site's when their status matches and their titles match (or, without
    titles, their lengths are close). A differing title is a different page whatever the size: a block page
    with status 200 and a similar size does not slip through."""
    if a.status != b.status:
        return False
    if not (a.body_read and b.body_read):
        return _same_headers(a, b)
    if a.body_sha256 == b.body_sha256:
        return True
    ta, tb = a.title.casefold(), b.title.casefold()
    ratio = _length_ratio(a, b)
    if ta or tb:
        return ta == tb and ratio > 0.3
    return ratio > 0.7


def _same_headers(a: HttpObservation, b: HttpObservation) -> bool:
    """Without content (a sensitive entry): same status (checked), same kind of content, same server software,
    and declared lengths within 30 % when both are given."""
    ha, hb = dict(a.headers), dict(b.headers)

    def kind(h: dict[str, str]) -> str:
        return h.get("content-type", "").split(";")[0].strip().lower()

    if kind(ha) != kind(hb) or ha.get("server", "") != hb.get("server", ""):
        return False
    la, lb = a.declared_length, b.declared_length
    if la is not None and lb is not None and max(la, lb) > 0:
        return min(la, lb) / max(la, lb) > 0.7
    return True


def _length_ratio(a: HttpObservation, b: HttpObservation) -> float:
    la, lb = a.body_length, b.body_length
    if a.truncated and b.truncated:
        return 1.0
    if max(la, lb) == 0:
        return 1.0
    return min(la, lb) / max(la, lb)


def _redirect_target(h: HopObservation) -> str:
    if h.http and h.http.status in range(300, 400) and h.http.location:
        try:
            return urljoin(h.url, h.http.location)
        except ValueError:  # a malformed Location ("http://[::1"): compared as written
            return h.http.location
    return ""


# --- wording ------------------------------------------------------------------------------------------


def _where(i: int, hop: HopObservation) -> str:
    return "" if i == 0 else f"redirect hop {i} ({hop.url[:100]}): "


def _addrs(addresses: tuple[str, ...] | list[str]) -> str:
    shown = ", ".join(addresses[:3])
    return shown + (f" (+{len(addresses) - 3})" if len(addresses) > 3 else "") if addresses else "nothing"


def _dns_failure(h: HopObservation) -> str:
    return h.dns.rcode or h.dns.failure or "no answer" if h.dns else "no lookup"


def _dns_result(h: HopObservation) -> str:
    if h.dns is None:
        return "no lookup"
    return _addrs(h.dns.addresses) if h.dns.resolved else (h.dns.rcode or h.dns.failure or "no answer")


def _control_dns(c: UrlObservation, i: int, url: str) -> str:
    if i < len(c.hops) and c.hops[i].url == url and c.hops[i].dns is not None:
        return _dns_result(c.hops[i])
    return "no matching lookup"


def _what_address_did(p: HopObservation) -> str:
    checks = [*p.endpoints, *((p.tls_check,) if p.tls_check else ())]
    cert_failures = [e for e in checks if e.tls is not None and e.tls.failure in base.CERTIFICATE_FAILURES]
    if cert_failures:
        e = cert_failures[0]
        issuer = e.tls.certificate.issuer if e.tls and e.tls.certificate else "?"
        return f"holds no valid certificate for the name ({e.tls.failure if e.tls else ''}, issuer {issuer})"
    if p.http is not None and not p.http.failure:
        return f"serves a different page: {_page(p.http)}"
    failures = [e.failure for e in p.endpoints if e.failure]
    return f"cannot be reached ({', '.join(f for f in failures if f) or 'no connection'})"


def _valid_tls(conn: EndpointObservation | None) -> TypeGuard[EndpointObservation]:
    """A connection whose TLS handshake completed with a valid certificate (narrows `conn` for the caller)."""
    return conn is not None and conn.tls is not None and conn.tls.failure is None


def _issuer(e: EndpointObservation) -> str:
    return e.tls.certificate.issuer if e.tls and e.tls.certificate and e.tls.certificate.issuer else "?"


def _page(h: HttpObservation | None) -> str:
    if h is None:
        return "no response"
    if not h.body_read:
        size = f", {h.declared_length} B declared" if h.declared_length is not None else ""
        return f"HTTP {h.status}{size} (headers only: sensitive entry)"
    title = f" '{h.title[:60]}'" if h.title else ""
    size = f"{h.body_length}{'+' if h.truncated else ''} B"
    return f"HTTP {h.status}{title}, {size}"


def _http_failure(h: HttpObservation | None) -> str:
    if h is None:
        return "not reached"
    return h.failure or f"HTTP {h.status}"


def _with_depth(j: Judgement, p: UrlObservation) -> Judgement:
    """For DNS blocking, say whether the content is still reachable on the control's addresses: a provider
    that only lies in DNS is bypassed by any public resolver."""
    if j.method is not Method.DNS or p.depth is None:
        return j
    d = p.depth
    if d.http is not None and not d.http.failure and d.connected is not None:
        note = f"; DNS-only: the content is reachable through this provider on control's address {d.connected.ip}"
    else:
        fail = d.endpoints[0].failure if d.endpoints else (d.http.failure if d.http else "not reached")
        note = f"; also blocked beyond DNS: control's address fails through this provider ({fail})"
    return Judgement(j.verdict, j.rule, j.evidence + note, j.method, j.confidence)
