"""The simulated province: its sites, its providers' filters and, for every (provider, URL), the verdict
a correct auditor must reach. `auditor lab` and the tests audit it and compare.

Providers:
  viettel       blocks by DNS (NXDOMAIN, REFUSED, silence, sinkhole addresses, a bogon) and shows a ghost
  vnpt          blocks by TCP (refusal, blackhole) and TLS (reset or silence after the ClientHello);
                its resolver answers CDN alternates for two sites (the trap: those are accessible)
  fpt           intercepts TLS, injects block pages, warning redirects and resets into cleartext HTTP
  mobifone      blocks nothing: every reachable listed site is a violation
  deadvantage   its SOCKS vantage does not listen                   -> not measured
  deadresolver  its resolver never answers                          -> not measured
  canaryfail    its filter blocks the canary                        -> not measured

Night 2 (`Lab(workdir, night=2)`, `expected(..., night=2)`): the second nightly run, for trends and
regressions. vnpt stops blackholing tcpblackhole-case (newly accessible); mobifone starts blocking
open-case by DNS; the config gains a must-block test URL (blocked by viettel, vnpt and fpt, let through by
mobifone: flagged) and a must-allow portal (over-blocked by viettel's DNS). Night 1 is unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from auditor.lab.servers import DnsPolicy, Site
from auditor.models import MeasurementRecord

# Lab addresses look public so the tool judges them as it would real ones; every connection to them
# enters a middlebox on 127.0.0.1, which maps them to loopback listeners (see servers.Middlebox).
SITE_NET = "45.76.0."
ALT_NET = "45.76.1."
VIETTEL_SINKHOLE = "125.212.224.108"  # a real Viettel-area sinkhole, from OONI's fingerprints (ooni.vn_dns_1)
VIETTEL_BLOCKSERVER = "45.76.8.1"
UNKNOWN_SINK = "45.76.8.2"
FPT_WARNING = "45.76.8.3"
RESOLVER_NET = "45.76.9."

IDN_NAME = "trẻem-xấu.example"
IDN_ASCII = "xn--trem-xu-co4clh.example"  # IDNA 2008 / UTS 46 form of IDN_NAME (checked in tests)

CANARY = "https://canary.example/"
FPT_BLOCK_TEXT = "Trang web này đã bị chặn theo yêu cầu của cơ quan chức năng"
VIETTEL_404 = (
    "<html><header><title>404 Page</title></header>\n<body>\n<font size=\"6\"><b>We're sorry but the page "
    "you're looking for could not be found!!!!!</b></font></body></html>"
)  # the page OONI saw on AS7552 (fingerprint ooni.vn_http_1)


@dataclass(frozen=True)
class LabSite:
    name: str  # as written in the list (may be Unicode)
    ip: str
    kind: str = "static"
    title: str = ""
    location: str = ""
    https: bool = False
    listed: bool = True
    url: str = ""


SITES: tuple[LabSite, ...] = (
    LabSite("canary.example", SITE_NET + "1", title="Canary", https=True, listed=False),
    LabSite("open-case.example", SITE_NET + "2", title="Cờ bạc trực tuyến"),
    LabSite("open-tls-case.example", SITE_NET + "3", title="Sòng bạc", https=True),
    LabSite("nxdomain-case.example", SITE_NET + "10", title="NX"),
    LabSite("refused-case.example", SITE_NET + "11", title="Refused", https=True),
    LabSite("dnstimeout-case.example", SITE_NET + "12", title="Timeout"),
    LabSite("sinkhole-case.example", SITE_NET + "13", title="Sinkhole"),
    LabSite("unknownsink-case.example", SITE_NET + "14", title="Unknown sink"),
    LabSite("bogon-case.example", SITE_NET + "15", title="Bogon", https=True),
    LabSite(IDN_NAME, SITE_NET + "16", title="Trẻ em"),
    LabSite("tcpreset-case.example", SITE_NET + "20", title="TCP reset", https=True),
    LabSite("tcpblackhole-case.example", SITE_NET + "21", title="TCP blackhole"),
    LabSite("snireset-case.example", SITE_NET + "22", title="SNI reset", https=True),
    LabSite("sniblackhole-case.example", SITE_NET + "23", title="SNI blackhole", https=True),
    LabSite("intercept-case.example", SITE_NET + "24", title="Intercepted", https=True),
    LabSite("blockpage-case.example", SITE_NET + "30", title="Block page"),
    LabSite("warnredirect-case.example", SITE_NET + "31", title="Warning redirect"),
    LabSite("httpreset-case.example", SITE_NET + "32", title="HTTP reset"),
    LabSite("differs-case.example", SITE_NET + "33", title="Differs"),
    LabSite("redirector-case.example", SITE_NET + "40", kind="redirect", location="https://redirect-target.example/landing"),
    LabSite("redirect-target.example", SITE_NET + "41", title="Redirect target", https=True, listed=False),
    LabSite("cdn-case.example", SITE_NET + "50", title="CDN", https=True),
    LabSite("cdn-plain-case.example", SITE_NET + "51", title="CDN plain"),
    LabSite("dynamic-case.example", SITE_NET + "52", kind="dynamic", title="Tin tức"),
    LabSite("large-case.example", SITE_NET + "53", kind="large", title="Large"),
    LabSite("down-case.example", SITE_NET + "54", title="Down"),  # resolves; nothing listens
    LabSite("badcert-case.example", SITE_NET + "55", title="Bad cert", https=True),
    LabSite("warning.fpt.example", FPT_WARNING, title="Cảnh báo", listed=False),
)
# Night 2's must-block test URL and must-allow portal: in the lab's Internet every night, in the config
# (so measured) only on night 2.
MUST_BLOCK_SITE = "kiemtra-chan.example"
MUST_ALLOW_SITE = "dichvucong-portal.example"
SITES += (
    LabSite(MUST_BLOCK_SITE, SITE_NET + "60", title="Trang kiểm tra chặn lọc", https=True, listed=False),
    LabSite(MUST_ALLOW_SITE, SITE_NET + "61", title="Cổng dịch vụ công", https=True, listed=False),
)
MUST_BLOCK_URL = f"https://{MUST_BLOCK_SITE}/"
MUST_ALLOW_URL = f"https://{MUST_ALLOW_SITE}/"
GHOST_NAME = "ghost-case.example"  # in the list, gone from the Internet
DOWN_SITES = frozenset({"down-case.example"})
BADCERT_SITES = frozenset({"badcert-case.example"})


def site_url(s: LabSite) -> str:
    return f"{'https' if s.https else 'http'}://{s.name}/"


@dataclass(frozen=True)
class LabProvider:
    id: str
    name: str
    asn: int | None
    resolver_ip: str
    dns: dict[str, DnsPolicy]
    tcp: dict[str, str]
    sni: dict[str, str]
    http: dict[str, str]
    dead_vantage: bool = False
    dead_resolver: bool = False


PROVIDERS: tuple[LabProvider, ...] = (
    LabProvider(
        "viettel", "Viettel (lab)", 7552, RESOLVER_NET + "2",
        dns={
            "nxdomain-case.example": DnsPolicy("nxdomain"),
            "refused-case.example": DnsPolicy("refused"),
            "dnstimeout-case.example": DnsPolicy("drop"),
            "sinkhole-case.example": DnsPolicy("answer", (VIETTEL_SINKHOLE,)),
            "unknownsink-case.example": DnsPolicy("answer", (UNKNOWN_SINK,)),
            "bogon-case.example": DnsPolicy("answer", ("127.0.0.1",)),
            IDN_ASCII: DnsPolicy("nxdomain"),
            "redirect-target.example": DnsPolicy("nxdomain"),
            GHOST_NAME: DnsPolicy("answer", (VIETTEL_BLOCKSERVER,)),
        },
        tcp={}, sni={}, http={},
    ),
    LabProvider(
        "vnpt", "VNPT (lab)", 45899, RESOLVER_NET + "3",
        dns={
            "cdn-case.example": DnsPolicy("answer", (ALT_NET + "50",)),
            "cdn-plain-case.example": DnsPolicy("answer", (ALT_NET + "51",)),
        },
        tcp={SITE_NET + "20": "refuse", SITE_NET + "21": "blackhole"},
        sni={"snireset-case.example": "reset", "sniblackhole-case.example": "blackhole"},
        http={},
    ),
    LabProvider(
        "fpt", "FPT Telecom (lab)", 18403, RESOLVER_NET + "4",
        dns={},
        tcp={},
        sni={"intercept-case.example": "intercept"},
        http={
            "blockpage-case.example": "fpt_block",
            "warnredirect-case.example": "fpt_redirect",
            "httpreset-case.example": "reset",
            "differs-case.example": "fpt_notice",
        },
    ),
    LabProvider("mobifone", "MobiFone (lab)", 131429, RESOLVER_NET + "5", dns={}, tcp={}, sni={}, http={}),
    LabProvider("deadvantage", "Dead vantage (lab)", None, RESOLVER_NET + "6", dns={}, tcp={}, sni={}, http={},
                dead_vantage=True),
    LabProvider("deadresolver", "Dead resolver (lab)", None, RESOLVER_NET + "7", dns={}, tcp={}, sni={}, http={},
                dead_resolver=True),
    LabProvider("canaryfail", "Canary blocked (lab)", None, RESOLVER_NET + "8",
                dns={"canary.example": DnsPolicy("nxdomain")}, tcp={}, sni={}, http={}),
)
CONTROL_RESOLVER = RESOLVER_NET + "1"


@dataclass(frozen=True)
class Expected:
    verdict: str
    method: str = ""
    confidence: str = ""
    rule: str = ""


ACCESSIBLE = Expected("accessible")

# What each listed URL is at a provider that does nothing to it.
NATURAL: dict[str, Expected] = {
    GHOST_NAME: Expected("inconclusive", rule="control.dns_failed"),
    "down-case.example": Expected("inconclusive", rule="control.unreachable"),
    "badcert-case.example": Expected("inconclusive", rule="control.tls_invalid"),
}

# (provider, site name) -> expected, where the provider's filter acts.
BLOCKED: dict[tuple[str, str], Expected] = {
    ("viettel", "nxdomain-case.example"): Expected("blocked", "dns", "confirmed", "dns.nxdomain"),
    ("viettel", "refused-case.example"): Expected("blocked", "dns", "confirmed", "dns.refused"),
    ("viettel", "dnstimeout-case.example"): Expected("blocked", "dns", "likely", "dns.timeout"),
    ("viettel", "sinkhole-case.example"): Expected("blocked", "dns", "confirmed", "dns.blockpage_address"),
    ("viettel", "unknownsink-case.example"): Expected("blocked", "dns", "likely", "dns.inconsistent"),
    ("viettel", "bogon-case.example"): Expected("blocked", "dns", "confirmed", "dns.bogon"),
    ("viettel", IDN_NAME): Expected("blocked", "dns", "confirmed", "dns.nxdomain"),
    ("viettel", "redirector-case.example"): Expected("blocked", "dns", "confirmed", "dns.nxdomain"),
    ("viettel", GHOST_NAME): Expected("blocked", "dns", "confirmed", "dns.blockpage_fingerprint"),
    ("vnpt", "tcpreset-case.example"): Expected("blocked", "tcp", "confirmed", "tcp.refused"),
    ("vnpt", "tcpblackhole-case.example"): Expected("blocked", "tcp", "likely", "tcp.timeout"),
    ("vnpt", "snireset-case.example"): Expected("blocked", "tls", "confirmed", "tls.reset"),
    ("vnpt", "sniblackhole-case.example"): Expected("blocked", "tls", "likely", "tls.timeout"),
    ("vnpt", "cdn-case.example"): Expected("accessible", rule="tls.valid_session"),
    ("vnpt", "cdn-plain-case.example"): Expected("accessible", rule="http.matches_control"),
    ("fpt", "intercept-case.example"): Expected("blocked", "tls", "confirmed", "tls.untrusted_certificate"),
    ("fpt", "blockpage-case.example"): Expected("blocked", "http", "confirmed", "http.blockpage_fingerprint"),
    ("fpt", "warnredirect-case.example"): Expected("blocked", "http", "confirmed", "http.blockpage_fingerprint"),
    ("fpt", "httpreset-case.example"): Expected("blocked", "http", "confirmed", "http.reset"),
    ("fpt", "differs-case.example"): Expected("blocked", "http", "likely", "http.differs"),
}

NOT_MEASURED = Expected("inconclusive", rule="provider.not_measured")

NIGHTS = (1, 2)


def providers_for(night: int = 1) -> tuple[LabProvider, ...]:
    """The providers' filters on a given night (night 1 is PROVIDERS as they are)."""
    from dataclasses import replace

    if night not in NIGHTS:
        raise ValueError(f"the lab has nights {NIGHTS}, not {night!r}")
    if night == 1:
        return PROVIDERS
    changed = []
    for p in PROVIDERS:
        if p.id == "viettel":
            p = replace(p, dns={**p.dns, MUST_BLOCK_SITE: DnsPolicy("nxdomain"), MUST_ALLOW_SITE: DnsPolicy("nxdomain")})
        elif p.id == "vnpt":  # the blackhole is gone (a regression), the test URL is refused
            tcp = {ip: action for ip, action in p.tcp.items() if ip != SITE_NET + "21"}
            p = replace(p, tcp={**tcp, SITE_NET + "60": "refuse"})
        elif p.id == "fpt":
            p = replace(p, sni={**p.sni, MUST_BLOCK_SITE: "intercept"})
        elif p.id == "mobifone":  # starts blocking something
            p = replace(p, dns={**p.dns, "open-case.example": DnsPolicy("nxdomain")})
        changed.append(p)
    return tuple(changed)


BLOCKED_NIGHT2: dict[tuple[str, str], Expected] = {
    **{k: v for k, v in BLOCKED.items() if k != ("vnpt", "tcpblackhole-case.example")},
    ("mobifone", "open-case.example"): Expected("blocked", "dns", "confirmed", "dns.nxdomain"),
    ("viettel", MUST_BLOCK_SITE): Expected("blocked", "dns", "confirmed", "dns.nxdomain"),
    ("vnpt", MUST_BLOCK_SITE): Expected("blocked", "tcp", "confirmed", "tcp.refused"),
    ("fpt", MUST_BLOCK_SITE): Expected("blocked", "tls", "confirmed", "tls.untrusted_certificate"),
    ("viettel", MUST_ALLOW_SITE): Expected("blocked", "dns", "confirmed", "dns.nxdomain"),  # over-blocking
}


def audited_urls(night: int = 1) -> list[tuple[str, str]]:
    """(site name, URL) of everything measured on a night: the list, and on night 2 the must-* URLs."""
    extra = [(MUST_BLOCK_SITE, MUST_BLOCK_URL), (MUST_ALLOW_SITE, MUST_ALLOW_URL)] if night == 2 else []
    return listed_urls() + extra


def listed_sites() -> list[LabSite]:
    return [s for s in SITES if s.listed]


def listed_urls() -> list[tuple[str, str]]:
    """(site name, URL) of every listed entry, the ghost included."""
    urls = [(s.name, site_url(s)) for s in listed_sites()]
    urls.append((GHOST_NAME, f"http://{GHOST_NAME}/"))
    return urls


def expected(provider: LabProvider, site_name: str, night: int = 1) -> Expected:
    if provider.dead_vantage or provider.dead_resolver or provider.id == "canaryfail":
        return NOT_MEASURED
    blocked = BLOCKED_NIGHT2 if night == 2 else BLOCKED
    if (provider.id, site_name) in blocked:
        return blocked[(provider.id, site_name)]
    return NATURAL.get(site_name, ACCESSIBLE)


def lab_sites() -> dict[str, Site]:
    from auditor.urls import normalise_url

    out: dict[str, Site] = {}
    for s in SITES:
        host = normalise_url(f"http://{s.name}/").host
        out[host] = Site(host, s.kind, s.title, s.location)
    return out


@dataclass(frozen=True)
class CaseOutcome:
    provider_id: str
    site: str
    url: str
    expected: Expected
    verdict: str
    method: str
    confidence: str
    rule: str
    evidence: str

    @property
    def ok(self) -> bool:
        e = self.expected
        return (self.verdict, self.method, self.confidence) == (e.verdict, e.method, e.confidence) and (
            not e.rule or e.rule == self.rule
        )


def compare(records: Iterable[MeasurementRecord], night: int = 1) -> list[CaseOutcome]:
    """Every (provider, audited URL) of the lab on `night` against what a correct auditor concludes."""
    from auditor.urls import normalise_url

    by_key = {(r.provider_id, r.entry.url): r for r in records}
    outcomes: list[CaseOutcome] = []
    for p in providers_for(night):
        for name, url in audited_urls(night):
            rec = by_key.get((p.id, normalise_url(url).url))
            exp = expected(p, name, night)
            if rec is None:
                outcomes.append(CaseOutcome(p.id, name, url, exp, "missing", "", "", "", "no measurement stored"))
                continue
            j = rec.judgement
            outcomes.append(
                CaseOutcome(
                    p.id, name, url, exp, j.verdict.value, j.method.value if j.method else "",
                    j.confidence.value if j.confidence else "", j.rule, j.evidence,
                )
            )
    return outcomes
