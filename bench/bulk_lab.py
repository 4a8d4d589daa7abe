"""A bulk variant of the simulated province: thousands of sites, six providers, on loopback.

Built from the lab's own pieces (`auditor.lab.servers`): one `WebServer` for every site over http and
https (one wildcard certificate from a trustme CA), one `LabResolver` per vantage, one SOCKS `Middlebox`
per vantage. Site i is `s000042.bulk.example` at a public-looking address in 45.77.0.0/16 that is never
dialed: every connection enters a middlebox on 127.0.0.1, which maps it to a loopback listener.

Providers, by role (the first `providers` of these; more are clean):
  blackhole  drops a share of the sites at TCP (its proxy never answers the CONNECT)  -> blocked, tcp
  nxdomain   its resolver answers NXDOMAIN for a share of the names                   -> blocked, dns
  snireset   resets a share of the https sites after the ClientHello                  -> blocked, tls
  clean1..   filter nothing                                                           -> accessible
Which sites a provider blocks is a fixed function of the site's index (`BulkPlan`), so the runner can check
every verdict.

For the benchmark it runs in a process of its own (`python -m bench.bulk_lab ...`, see `main`), so the
engine's CPU figures hold only the engine; in tests, in a thread like `auditor.lab.Lab`.
"""

from __future__ import annotations

import argparse
import csv
import ssl
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import trustme
import yaml

from auditor.lab import Lab
from auditor.lab.servers import LOOPBACK, DnsPolicy, LabResolver, Middlebox, MiddleboxPolicy, Site, WebServer

DOMAIN = "bulk.example"
CANARY_NAME = f"canary.{DOMAIN}"
CANARY_IP = "45.77.255.1"
CANARY = f"https://{CANARY_NAME}/"
CONTROL_RESOLVER = "45.78.9.1"
SITES_PER_SUBNET = 250  # 45.77.N.1 .. 45.77.N.250
MAX_SITES = 255 * SITES_PER_SUBNET  # 45.77.255.x is the canary's
ROLES = ("blackhole", "nxdomain", "snireset")  # then clean providers

_HASH = 2654435761  # Knuth's multiplicative hash: a fixed, evenly spread choice of sites per role
_SALT = {"blackhole": 1_000_003, "nxdomain": 2_000_003, "snireset": 3_000_017}


def site_name(i: int) -> str:
    return f"s{i:06d}.{DOMAIN}"


def site_ip(i: int) -> str:
    return f"45.77.{i // SITES_PER_SUBNET}.{i % SITES_PER_SUBNET + 1}"


def is_https(i: int) -> bool:
    return i % 2 == 0


def site_url(i: int) -> str:
    return f"{'https' if is_https(i) else 'http'}://{site_name(i)}/"


def index_of(url_or_host: str) -> int | None:
    """The site index of a URL or host of the bulk lab, or None."""
    host = url_or_host.split("://", 1)[-1].split("/", 1)[0]
    label, _, rest = host.partition(".")
    if rest != DOMAIN or not label.startswith("s") or not label[1:].isdigit():
        return None
    return int(label[1:])


@dataclass(frozen=True)
class Expected:
    verdict: str
    method: str = ""
    rule: str = ""


ACCESSIBLE = Expected("accessible")


@dataclass(frozen=True)
class BulkPlan:
    sites: int
    providers: int = 6
    blackhole_share: float = 0.05  # of all sites, at the blackhole provider
    nxdomain_share: float = 0.10  # of all sites, at the nxdomain provider
    snireset_share: float = 0.10  # of the https sites, at the snireset provider

    def __post_init__(self) -> None:
        if not 1 <= self.sites <= MAX_SITES:
            raise ValueError(f"sites must be 1..{MAX_SITES}")
        if self.providers < 1:
            raise ValueError("at least one provider")

    def provider_roles(self) -> tuple[tuple[str, str], ...]:
        """(provider id, role) for each provider; the id is the role, clean ones are numbered."""
        out = []
        for k in range(self.providers):
            role = ROLES[k] if k < len(ROLES) else "clean"
            out.append((role if role != "clean" else f"clean{k - len(ROLES) + 1}", role))
        return tuple(out)

    def blocks(self, role: str, i: int) -> bool:
        if role == "blackhole":
            return _picked(i, self.blackhole_share, role)
        if role == "nxdomain":
            return _picked(i, self.nxdomain_share, role)
        if role == "snireset":
            return is_https(i) and _picked(i, self.snireset_share, role)
        return False

    def expected(self, role: str, i: int) -> Expected:
        if not self.blocks(role, i):
            return ACCESSIBLE
        return {
            "blackhole": Expected("blocked", "tcp", "tcp.timeout"),
            "nxdomain": Expected("blocked", "dns", "dns.nxdomain"),
            "snireset": Expected("blocked", "tls", "tls.reset"),
        }[role]

    def blocked_sites(self, role: str) -> Iterator[int]:
        return (i for i in range(self.sites) if self.blocks(role, i))


def _picked(i: int, share: float, role: str) -> bool:
    return ((i + _SALT[role]) * _HASH) % 2**32 < share * 2**32


class BulkLab(Lab):
    """The bulk province; same lifecycle as `Lab` (its own thread and event loop), another province."""

    def __init__(
        self,
        workdir: Path,
        plan: BulkPlan,
        *,
        timeouts: dict[str, float] | None = None,
        concurrency: int = 200,
        politeness: bool = False,
    ) -> None:
        super().__init__(workdir, timeouts=timeouts or {"dns": 2.0, "connect": 2.0, "tls": 2.0, "http": 2.0})
        self.plan = plan
        self.concurrency = concurrency
        self.politeness = politeness  # keep the config's default politeness limits (what a real run has)
        self.config_path = self.workdir / "bulk-config.yaml"
        self.list_path = self.workdir / "bulk-list.csv"
        self.ca_path = self.workdir / "bulk-ca.pem"

    async def _start(self) -> None:
        plan = self.plan
        ca = trustme.CA(organization_name="Bulk Lab Internet CA")
        ca.cert_pem.write_to_path(str(self.ca_path))
        tls_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        # one wildcard certificate: a certificate naming 50,000 sites would be megabytes per handshake
        ca.issue_cert(f"*.{DOMAIN}").configure_cert(tls_ctx)
        sites = {site_name(i): Site(site_name(i), "static", f"Trang {i}") for i in range(plan.sites)}
        sites[CANARY_NAME] = Site(CANARY_NAME, "static", "Canary")
        web = WebServer(sites, {}, tls_ctx)
        await web.start()
        self._servers.append(web)

        ips = [site_ip(i) for i in range(plan.sites)] + [CANARY_IP]
        routes: dict[tuple[str, int], tuple[str, int]] = {}
        for ip in ips:
            routes[(ip, 80)] = (LOOPBACK, web.http_port)
            routes[(ip, 443)] = (LOOPBACK, web.https_port)
        zone = {site_name(i): (site_ip(i),) for i in range(plan.sites)}
        zone[CANARY_NAME] = (CANARY_IP,)

        async def resolver(ip: str, policies: dict[str, DnsPolicy]) -> None:
            r = LabResolver(zone, policies)
            await r.start()
            self._servers.append(r)
            routes[(ip, 53)] = (LOOPBACK, r.port)

        await resolver(CONTROL_RESOLVER, {})
        boxes: dict[str, Middlebox] = {}
        for k, (pid, role) in enumerate(plan.provider_roles()):
            dns = (
                {site_name(i): DnsPolicy("nxdomain") for i in plan.blocked_sites(role)}
                if role == "nxdomain"
                else {}
            )
            await resolver(_provider_resolver(k), dns)
            policy = MiddleboxPolicy(
                tcp={site_ip(i): "blackhole" for i in plan.blocked_sites(role)}
                if role == "blackhole"
                else {},
                sni={site_name(i): "reset" for i in plan.blocked_sites(role)} if role == "snireset" else {},
            )
            boxes[pid] = Middlebox(routes, policy)
        control_box = Middlebox(routes)
        for box in (control_box, *boxes.values()):
            await box.start()
            self._servers.append(box)
        self.middleboxes = boxes
        self._write_bulk_files(control_box.port, {pid: b.port for pid, b in boxes.items()})

    def _write_bulk_files(self, control_port: int, proxies: dict[str, int]) -> None:
        write_list(self.list_path, self.plan.sites)
        config = {
            "province": "Bulk lab (simulated)",
            "store": f"sqlite:///{self.workdir / 'bulk.db'}",
            "output_dir": str(self.workdir / "reports"),
            "lists": [str(self.list_path)],
            "canaries": [CANARY],
            "control": {
                "resolvers": [CONTROL_RESOLVER],
                "vantage": {"proxy": f"socks5://{LOOPBACK}:{control_port}"},
            },
            "providers": [
                {
                    "id": pid,
                    "name": f"{pid} (bulk lab)",
                    "resolvers": [_provider_resolver(k)],
                    "vantage": {"proxy": f"socks5://{LOOPBACK}:{proxies[pid]}"},
                }
                for k, (pid, _role) in enumerate(self.plan.provider_roles())
            ],
            "timeouts": self.timeouts,
            "concurrency": self.concurrency,
            "tls": {"extra_ca_file": str(self.ca_path)},
            "network": {"loopback_only": True, "simulated_internet": ["45.77.0.0/16", "45.78.0.0/16"]},
        }
        if not self.politeness:
            # the bench measures the engine: politeness limits (100 queries/s per resolver by default) are a
            # setting for real providers, and would make the bench measure the limit instead
            config["limits"] = {"resolver_qps": 0, "per_destination": 0}
        header = (
            "# Written by bench.bulk_lab: every address below that is not 127.0.0.1 is reached only\n"
            "# through the bulk lab's SOCKS middleboxes on 127.0.0.1.\n"
        )
        self.config_path.write_text(header + yaml.safe_dump(config, sort_keys=False), encoding="utf-8")


def _provider_resolver(k: int) -> str:
    return f"45.78.9.{k + 2}"


def write_list(path: Path, sites: int) -> None:
    """A Citizen Lab style CSV of the first `sites` bulk sites."""
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["url", "category_code", "category_description", "date_added", "source", "notes"])
        for i in range(sites):
            w.writerow([site_url(i), "GMB", "Gambling", "2026-01-15", "bench", f"bulk site {i}"])


def main(argv: list[str] | None = None) -> int:
    """Serve the bulk lab until standard input closes; print `READY <config path>` once it listens."""
    ap = argparse.ArgumentParser(prog="python -m bench.bulk_lab", description=main.__doc__)
    ap.add_argument("--workdir", type=Path, required=True)
    ap.add_argument("--sites", type=int, required=True)
    ap.add_argument("--providers", type=int, default=6)
    ap.add_argument("--concurrency", type=int, default=200)
    ap.add_argument(
        "--timeout", type=float, default=2.0, help="seconds, every probe step (dns, connect, tls, http)"
    )
    ap.add_argument("--blackhole-share", type=float, default=0.05)
    ap.add_argument("--nxdomain-share", type=float, default=0.10)
    ap.add_argument("--snireset-share", type=float, default=0.10)
    ap.add_argument("--politeness", action="store_true", help="keep the default politeness limits")
    args = ap.parse_args(argv)
    plan = BulkPlan(
        args.sites, args.providers, args.blackhole_share, args.nxdomain_share, args.snireset_share
    )
    t = args.timeout
    lab = BulkLab(
        args.workdir,
        plan,
        timeouts={"dns": t, "connect": t, "tls": t, "http": t},
        concurrency=args.concurrency,
        politeness=args.politeness,
    )
    lab.start()
    try:
        print(f"READY {lab.config_path}", flush=True)
        sys.stdin.read()  # the runner closes our stdin when it is done (or dies)
    finally:
        lab.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
