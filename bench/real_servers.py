"""A lab of real servers on loopback for the benchmark (issue 10): Debian's nginx, unbound and nftables.

Everything listens on, and every packet stays in, one /24 of 127.0.0.0/8 (`LabNet`, 127.0.0.x by default):

  nginx      one master + one worker; `names` sites spread over 5 addresses (.101-.105), each address
             listening on :80 and :443 (8080/8443 when this user may not bind ports under 1024); site i is
             `s00042.real.example`, https when i is even; every https site has its own certificate from a
             local CA, RSA-2048 when i % 4 == 0, ECDSA P-256 otherwise (one key per type, shared: 1,000 RSA
             key generations would take a minute)
  unbound    three instances on .53, each with its own config file, pid file and port, no remote control:
             control (every name answered from local-data, authoritative-style), ISP A (the same answers),
             ISP B (NXDOMAIN for 30 % of the names: `local-zone: ... always_nxdomain`); every other name is
             refused, so unbound never recurses anywhere
  nftables   ISP A "silently drops one address": a table of its own drops every packet from A's source
             address (.21) to .105 at the input hook, so 400 of 2,000 names time out there (root only;
             without root or `nft` the lab says so and A filters nothing)

The vantages are source addresses: control .20, ISP A .21, ISP B .22 (`vantage: {source_address: ...}`).
`RealPlan` says what each (provider, name) pair must be judged, so the runner (`bench.real`) can check
every verdict; `RealLab` starts the servers, writes the list and the auditor config, and stops everything
(the nftables table included) even when the run fails.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import ipaddress
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from bench.bulk_lab import Expected

DOMAIN = "real.example"
CANARY_NAME = f"canary.{DOMAIN}"
SERVERS = 5  # web server addresses .101 .. .105
SILENT_SERVER = SERVERS - 1  # the one ISP A drops: .105
PROVIDERS = ("isp-a", "isp-b")
ROLES = ("control", *PROVIDERS)
LIMITS: dict[str, dict[str, int] | None] = {
    "default": None,  # the `limits` key left out: the config's defaults (100 queries/s, 8 per destination)
    "off": {"resolver_qps": 0, "per_destination": 0},
    "qps-only": {"resolver_qps": 100, "per_destination": 0},
    "dest-only": {"resolver_qps": 0, "per_destination": 8},
}
NFT_TABLE_PREFIX = "auditor_bench_"
_HASH = 2654435761  # Knuth's multiplicative hash: an evenly spread, fixed choice of NXDOMAIN names
PAGE_TEXT = "Nội dung của trang web. " * 30  # the size of the bulk lab's static page (~0.8 KB)


KeyType = Literal["rsa", "ecdsa"]


class LabError(RuntimeError):
    """A server of the lab did not start (its log is in the message)."""


# --- addresses, names and the plan -------------------------------------------------------------------


@dataclass(frozen=True)
class LabNet:
    """The lab's addresses: one /24 of 127.0.0.0/8, so two labs (a test beside a benchmark) never meet."""

    prefix: str = "127.0.0"

    def __post_init__(self) -> None:
        net = ipaddress.IPv4Network(f"{self.prefix}.0/24")
        if not net.subnet_of(ipaddress.IPv4Network("127.0.0.0/8")):
            raise ValueError(f"the lab lives on loopback only, not {net}")

    def server(self, k: int) -> str:
        return f"{self.prefix}.{101 + k}"

    @property
    def servers(self) -> tuple[str, ...]:
        return tuple(self.server(k) for k in range(SERVERS))

    @property
    def resolver_ip(self) -> str:
        return f"{self.prefix}.53"

    def source(self, role: str) -> str:
        """The vantage's source address: control .20, ISP A .21, ISP B .22."""
        return f"{self.prefix}.{20 + ROLES.index(role)}"

    @property
    def silent(self) -> str:
        return self.server(SILENT_SERVER)


@dataclass(frozen=True)
class RealPlan:
    """Which names exist, where they live and what each provider does to them."""

    names: int = 2000
    nxdomain_share: float = 0.30  # of all names, at ISP B

    def __post_init__(self) -> None:
        if not 1 <= self.names <= 99_999:
            raise ValueError("names must be 1..99999")

    @staticmethod
    def name(i: int) -> str:
        return f"s{i:05d}.{DOMAIN}"

    @staticmethod
    def server_index(i: int) -> int:
        return i % SERVERS

    @staticmethod
    def https(i: int) -> bool:
        return i % 2 == 0

    @staticmethod
    def key_type(i: int) -> KeyType:
        return "rsa" if i % 4 == 0 else "ecdsa"

    @cached_property
    def nxdomain(self) -> frozenset[int]:
        """Exactly round(share x names) names, spread by a hash (not by address or scheme)."""
        count = round(self.nxdomain_share * self.names)
        return frozenset(sorted(range(self.names), key=lambda i: ((i + 7_000_003) * _HASH) % 2**32)[:count])

    def silent(self, i: int) -> bool:
        return self.server_index(i) == SILENT_SERVER

    def expected(self, provider: str, i: int, *, drop: bool) -> Expected:
        """The verdict for (provider, name i); `drop`: ISP A's nftables drop is in place."""
        if provider == "isp-a" and drop and self.silent(i):
            return Expected("blocked", "tcp", "tcp.timeout")
        if provider == "isp-b" and i in self.nxdomain:
            return Expected("blocked", "dns", "dns.nxdomain")
        return Expected("accessible")

    def counts(self, *, drop: bool) -> dict[str, int]:
        """Blocked pairs per provider, as planned."""
        return {
            p: sum(self.expected(p, i, drop=drop).verdict == "blocked" for i in range(self.names))
            for p in PROVIDERS
        }


def index_of(url_or_host: str) -> int | None:
    host = url_or_host.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0]
    label, _, rest = host.partition(".")
    if rest != DOMAIN or not label.startswith("s") or not label[1:].isdigit():
        return None
    return int(label[1:])


def web_ports() -> tuple[int, int]:
    """(http, https): 80 and 443 when this user may bind them, else 8080 and 8443 (URLs then carry them)."""
    try:
        start = int(Path("/proc/sys/net/ipv4/ip_unprivileged_port_start").read_text())
    except (OSError, ValueError):
        start = 1024
    return (80, 443) if os.geteuid() == 0 or start <= 80 else (8080, 8443)


def url(i: int, ports: tuple[int, int]) -> str:
    scheme, port, default = ("https", ports[1], 443) if RealPlan.https(i) else ("http", ports[0], 80)
    return f"{scheme}://{RealPlan.name(i)}{'' if port == default else f':{port}'}/"


def free_port(ip: str) -> int:
    """A port free for both TCP and UDP on `ip` (unbound needs both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
            t.bind((ip, 0))
            port = int(t.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                try:
                    u.bind((ip, port))
                except OSError:
                    continue
            return port
    raise LabError(f"no port free for TCP and UDP on {ip}")


# --- certificates ------------------------------------------------------------------------------------


@dataclass
class Certificates:
    ca: Path
    keys: dict[str, Path]  # key type -> PEM
    certs: dict[str, Path]  # name -> PEM (the leaf only; the CA is what auditor trusts)


def make_certificates(directory: Path, names: list[tuple[str, KeyType]]) -> Certificates:
    """A local CA (ECDSA P-256, like trustme's) and one leaf certificate per name, by key type."""
    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Real Lab Internet CA")])
    ca_cert = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    ca_path = directory / "ca.pem"
    ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    leaf_keys: dict[str, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey] = {
        "rsa": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "ecdsa": ec.generate_private_key(ec.SECP256R1()),
    }
    keys = {}
    for kind, key in leaf_keys.items():
        keys[kind] = directory / f"{kind}.key"
        keys[kind].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                 serialization.NoEncryption()))  # fmt: skip
        keys[kind].chmod(0o600)
    aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key())
    certs = {}
    for name, kind in names:
        key = leaf_keys[kind]
        cert = (
            x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(aki, critical=False)
            .sign(ca_key, hashes.SHA256())
        )  # fmt: skip
        certs[name] = directory / f"{name}.pem"
        certs[name].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return Certificates(ca_path, keys, certs)


# --- the servers -------------------------------------------------------------------------------------


class Daemon:
    """A server run in the foreground as our child; stopped with SIGTERM (then SIGKILL) and reaped."""

    name = "daemon"

    def __init__(self, cmd: list[str], log: Path) -> None:
        self.cmd, self.log = cmd, log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as fh:
            self.proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL, stdout=fh, stderr=subprocess.STDOUT,
                                         start_new_session=True)  # fmt: skip

    def failed(self, why: str) -> LabError:
        tail = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
        return LabError(f"{self.name} {why}: {' '.join(self.cmd)}\n{tail}")

    def wait_until(self, ready: Any, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            if self.proc is None or self.proc.poll() is not None:
                raise self.failed(f"exited ({None if self.proc is None else self.proc.returncode})")
            if time.monotonic() > deadline:
                raise self.failed("did not answer in time")
            time.sleep(0.05)

    def cpu_seconds(self) -> float:
        """user + system CPU of the server and the children it reaped (nginx's worker), from /proc."""
        if self.proc is None:
            return 0.0
        total = 0.0
        for pid in [self.proc.pid, *_children(self.proc.pid)]:
            with contextlib.suppress(OSError, IndexError, ValueError):
                f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += sum(int(x) for x in f[11:15]) / os.sysconf("SC_CLK_TCK")  # utime stime cutime cstime
        return total

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)  # its own session: the master and its workers
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except (OSError, ValueError):
        return []


def _answers_tcp(ip: str, port: int) -> bool:
    try:
        with socket.create_connection((ip, port), timeout=0.5):
            return True
    except OSError:
        return False


def _answers_dns(ip: str, port: int, name: str) -> bool:
    """A UDP query for `name` gets a reply (any rcode): the resolver is up."""
    query = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
    query += b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\x00\x00\x01\x00\x01"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.3)
        try:
            s.sendto(query, (ip, port))
            return s.recv(512)[:2] == b"\x12\x34"
        except OSError:
            return False


class Unbound(Daemon):
    """One unbound: every lab name answered from local-data, some NXDOMAIN, everything else refused."""

    def __init__(
        self, directory: Path, role: str, ip: str, zone: dict[str, str], nxdomain: list[str]
    ) -> None:
        self.name, self.ip, self.port = f"unbound ({role})", ip, free_port(ip)
        self.conf = directory / f"unbound-{role}.conf"
        lines = [
            "server:",
            f'  interface: {ip}', f"  port: {self.port}", "  do-ip4: yes", "  do-ip6: no", "  do-udp: yes",
            "  do-tcp: yes", '  username: ""', '  chroot: ""', f'  directory: "{directory}"',
            f'  pidfile: "{directory / f"unbound-{role}.pid"}"', "  do-daemonize: no", "  use-syslog: no",
            '  logfile: ""', "  verbosity: 0", "  num-threads: 1", "  so-reuseport: no",
            '  module-config: "iterator"',  # no DNSSEC validation: nothing here is signed
            "  access-control: 0.0.0.0/0 refuse", "  access-control: 127.0.0.0/8 allow",
            "  incoming-num-tcp: 100", "  ip-ratelimit: 0", "  ratelimit: 0",
            # answer from here only: a name outside the lab is refused, never looked up on the Internet
            '  local-zone: "." refuse', f'  local-zone: "{DOMAIN}." static',
        ]  # fmt: skip
        lines += [f'  local-data: "{n}. 300 IN A {a}"' for n, a in zone.items()]
        lines += [f'  local-zone: "{n}." always_nxdomain' for n in nxdomain]
        lines += ["remote-control:", "  control-enable: no", ""]
        self.conf.write_text("\n".join(lines), encoding="utf-8")
        super().__init__([shutil.which("unbound") or "unbound", "-d", "-c", str(self.conf)],
                         directory / f"unbound-{role}.log")  # fmt: skip

    def start(self) -> None:
        check = shutil.which("unbound-checkconf")
        if check:
            out = subprocess.run([check, str(self.conf)], capture_output=True, text=True, check=False)
            if out.returncode:
                raise LabError(f"{self.name}: unbound-checkconf {self.conf}: {out.stdout}{out.stderr}")
        super().start()
        self.wait_until(lambda: _answers_dns(self.ip, self.port, CANARY_NAME))


class Nginx(Daemon):
    """Debian's nginx, one worker, every lab site on its address; an unknown name gets 404 (http) or a
    rejected handshake (https)."""

    name = "nginx"

    def __init__(self, directory: Path, net: LabNet, plan: RealPlan, certs: Certificates,
                 ports: tuple[int, int]) -> None:  # fmt: skip
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "temp").mkdir(exist_ok=True)
        self.net, self.ports = net, ports
        http, https = ports
        page = (
            'location / { default_type "text/html; charset=utf-8"; '
            f'return 200 "<html><head><title>$host</title></head><body><h1>$host</h1><p>{PAGE_TEXT}</p>'
            '</body></html>\\n"; }\n'
        )
        (directory / "page.conf").write_text(page, encoding="utf-8")
        temp = directory / "temp"
        out = [
            "daemon off;", "master_process on;", "worker_processes 1;", "worker_rlimit_nofile 16384;",
            f"pid {directory / 'nginx.pid'};", f"error_log {directory / 'error.log'} warn;",
            "events { worker_connections 8192; }",
            "http {",
            "  access_log off;", "  server_tokens off;", "  keepalive_timeout 5;",
            "  server_names_hash_max_size 16384;", "  server_names_hash_bucket_size 64;",
            f"  client_body_temp_path {temp}/body;", f"  proxy_temp_path {temp}/proxy;",
            f"  fastcgi_temp_path {temp}/fastcgi;", f"  uwsgi_temp_path {temp}/uwsgi;",
            f"  scgi_temp_path {temp}/scgi;", "  ssl_protocols TLSv1.2 TLSv1.3;",
        ]  # fmt: skip
        for ip in net.servers:
            out.append(f"  server {{ listen {ip}:{http} default_server; listen {ip}:{https} ssl default_server; "
                       "ssl_reject_handshake on; return 404; }")  # fmt: skip
        hosts = [(CANARY_NAME, net.server(0), True, "ecdsa")]
        hosts += [(plan.name(i), net.server(plan.server_index(i)), plan.https(i), plan.key_type(i))
                  for i in range(plan.names)]  # fmt: skip
        for name, ip, tls, kind in hosts:
            if tls:
                out.append(f"  server {{ listen {ip}:{https} ssl; server_name {name}; "
                           f"ssl_certificate {certs.certs[name]}; ssl_certificate_key {certs.keys[kind]}; "
                           f"include {directory / 'page.conf'}; }}")  # fmt: skip
            else:
                out.append(
                    f"  server {{ listen {ip}:{http}; server_name {name}; include {directory / 'page.conf'}; }}"
                )
        out += ["}", ""]
        self.conf = directory / "nginx.conf"
        self.conf.write_text("\n".join(out), encoding="utf-8")
        exe = shutil.which("nginx") or "/usr/sbin/nginx"
        # -e: the error log before the config is read (the compiled-in one may not be writable)
        super().__init__([exe, "-p", str(directory), "-c", str(self.conf), "-e", str(directory / "error.log")],
                         directory / "nginx.out")  # fmt: skip

    def start(self) -> None:
        test = subprocess.run([*self.cmd, "-t", "-q"], capture_output=True, text=True, check=False)
        if test.returncode:
            raise LabError(f"nginx -t: {test.stdout}{test.stderr}")
        super().start()
        self.wait_until(lambda: all(_answers_tcp(ip, p) for ip in self.net.servers for p in self.ports))


# --- ISP A's filter ----------------------------------------------------------------------------------


def nft_unavailable() -> str | None:
    """Why ISP A cannot drop anything here, or None."""
    if os.geteuid() != 0:
        return "not root: no nftables table, ISP A drops nothing"
    if shutil.which("nft") is None:
        return "nft not installed (apt-get install nftables): ISP A drops nothing"
    out = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True, check=False)
    if out.returncode:
        return f"nft does not work here ({out.stderr.strip()}): ISP A drops nothing"
    return None


class SilentDrop:
    """An nftables table of our own that drops every packet from `source` to `destination` at the input
    hook: a silent drop, as a provider's filter does on the way (no RST, no ICMP: connect() times out).
    Deleted on exit, even when the run fails."""

    def __init__(self, source: str, destination: str) -> None:
        self.source, self.destination = source, destination
        self.table = f"{NFT_TABLE_PREFIX}{os.getpid()}_{destination.replace('.', '_')}"

    def __enter__(self) -> Self:
        remove_stale_tables()
        script = (
            f"table ip {self.table} {{\n  chain input {{\n    type filter hook input priority filter; policy accept;\n"
            f"    ip saddr {self.source} ip daddr {self.destination} drop\n  }}\n}}\n"
        )
        out = subprocess.run(["nft", "-f", "-"], input=script, capture_output=True, text=True, check=False)
        if out.returncode:
            raise LabError(f"nft: {out.stderr.strip()}")
        return self

    def __exit__(self, *exc: object) -> None:
        subprocess.run(["nft", "delete", "table", "ip", self.table], capture_output=True, check=False)


def remove_stale_tables() -> None:
    """Tables left by a lab process that was killed (SIGKILL runs no cleanup): ours by name, owner dead."""
    out = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True, check=False)
    for line in out.stdout.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "table" and parts[2].startswith(NFT_TABLE_PREFIX):
            pid = parts[2][len(NFT_TABLE_PREFIX) :].split("_", 1)[0]
            if pid.isdigit() and not Path(f"/proc/{pid}").exists():
                subprocess.run(
                    ["nft", "delete", "table", parts[1], parts[2]], capture_output=True, check=False
                )


# --- the lab -----------------------------------------------------------------------------------------


@dataclass
class RealLab:
    """Start with `with RealLab(workdir, plan) as lab:`; then `lab.write_config(...)` for each run."""

    workdir: Path
    plan: RealPlan = field(default_factory=RealPlan)
    net: LabNet = field(default_factory=LabNet)
    drop: bool = True  # ISP A drops .105 (when root and nft allow it)

    def __post_init__(self) -> None:
        self.ports = web_ports()
        self.drop_skipped = nft_unavailable() if self.drop else "not asked for"
        self.list_path = self.workdir / "real-list.csv"
        self.resolvers: dict[str, Unbound] = {}
        self.nginx: Nginx | None = None
        self.ca_path = self.workdir / "certs" / "ca.pem"
        self._stack = contextlib.ExitStack()

    @property
    def dropping(self) -> bool:
        return self.drop and self.drop_skipped is None

    def __enter__(self) -> Self:
        try:
            self._start()
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stack.close()

    def _start(self) -> None:
        plan, net = self.plan, self.net
        self.workdir.mkdir(parents=True, exist_ok=True)
        hosts: list[tuple[str, KeyType]] = [(CANARY_NAME, "ecdsa")]
        hosts += [(plan.name(i), plan.key_type(i)) for i in range(plan.names) if plan.https(i)]
        certs = make_certificates(self.workdir / "certs", hosts)
        zone = {CANARY_NAME: net.server(0)} | {plan.name(i): net.server(plan.server_index(i))
                                              for i in range(plan.names)}  # fmt: skip
        nx = [plan.name(i) for i in sorted(plan.nxdomain)]
        for role, nxdomain in (("control", []), ("isp-a", []), ("isp-b", nx)):
            server = Unbound(self.workdir, role, net.resolver_ip, zone, nxdomain)
            self._stack.callback(server.stop)
            server.start()
            self.resolvers[role] = server
        self.nginx = Nginx(self.workdir / "nginx", net, plan, certs, self.ports)
        self._stack.callback(self.nginx.stop)
        self.nginx.start()
        if self.dropping:
            self._stack.enter_context(SilentDrop(net.source("isp-a"), net.silent))
        write_list(self.list_path, plan, self.ports)
        self.write_jobs(self.workdir / "jobs.txt")

    def servers_cpu_seconds(self) -> float:
        daemons: list[Daemon] = [*self.resolvers.values(), *([self.nginx] if self.nginx else [])]
        return sum(d.cpu_seconds() for d in daemons)

    def config(self, *, limits: str = "default", concurrency: int = 50, timeout: float = 2.0,
               store: Path | None = None) -> dict[str, Any]:  # fmt: skip
        net = self.net

        def resolver(role: str) -> str:
            return f"{self.resolvers[role].ip}:{self.resolvers[role].port}"

        http, https = self.ports
        canary = f"https://{CANARY_NAME}{'' if https == 443 else f':{https}'}/"
        config: dict[str, Any] = {
            "province": "Real servers lab (nginx, unbound, nftables on loopback)",
            "store": f"sqlite:///{store or self.workdir / 'real.db'}",
            "output_dir": str(self.workdir / "reports"),
            "lists": [str(self.list_path)],
            "canaries": [canary],
            "control": {"resolvers": [resolver("control")], "vantage": {"source_address": net.source("control")}},
            "providers": [
                {"id": "isp-a", "name": f"ISP A (drops {net.silent})", "resolvers": [resolver("isp-a")],
                 "vantage": {"source_address": net.source("isp-a")}},
                {"id": "isp-b", "name": "ISP B (NXDOMAIN for some)", "resolvers": [resolver("isp-b")],
                 "vantage": {"source_address": net.source("isp-b")}},
            ],
            "timeouts": {"dns": timeout, "connect": timeout, "tls": timeout, "http": timeout},
            "concurrency": concurrency,
            "tls": {"extra_ca_file": str(self.ca_path)},
            "network": {"loopback_only": True, "allow_private_destinations": True},
            "must_allow": [],
        }  # fmt: skip
        if LIMITS[limits] is not None:  # "default": the key left out, as a department's config leaves it
            config["limits"] = LIMITS[limits]
        return config

    def write_config(self, path: Path, **kwargs: Any) -> Path:
        header = "# Written by bench.real_servers: every address here is on loopback (the lab's /24).\n"
        path.write_text(header + yaml.safe_dump(self.config(**kwargs), sort_keys=False), encoding="utf-8")
        return path

    def write_jobs(self, path: Path) -> None:
        """The shell baseline's work: one line per (vantage, URL), control included, as the auditor does."""
        with path.open("w", encoding="utf-8") as fh:
            for i in range(self.plan.names):
                for role in ROLES:
                    r = self.resolvers[role]
                    scheme = "https" if self.plan.https(i) else "http"
                    port = self.ports[1] if scheme == "https" else self.ports[0]
                    fh.write(
                        f"{role} {self.net.source(role)} {r.ip} {r.port} {scheme} {self.plan.name(i)} {port}\n"
                    )


def write_list(path: Path, plan: RealPlan, ports: tuple[int, int]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["url", "category_code", "category_description", "date_added", "source", "notes"])
        for i in range(plan.names):
            w.writerow([url(i, ports), "GMB", "Gambling", "2026-01-15", "bench", f"real-lab site {i}"])


@contextlib.contextmanager
def shutdown_on_signals() -> Iterator[None]:
    """SIGTERM and SIGHUP raise SystemExit, so the lab's `finally` (the nftables table) runs."""

    def handler(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    old = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)
