"""Issue 9, as a department runs it: a provider's vantage is a real OpenSSH `ssh -N -D` tunnel (sshd on
loopback with its own config and keys), and the ssh client is killed in the middle of the real `auditor run`.
Every name is reachable: any "blocked" verdict at that provider would be the tunnel's death, not a block."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import sqlite3
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme
import yaml

from auditor.errors import ExitStatus
from auditor.lab.servers import LabResolver, Site, WebServer
from tests import sshd
from tests.loopback_servers import closed_port

pytestmark = pytest.mark.skipif(bool(sshd.available()), reason=sshd.available() or "")

NAMES = 240


class SlowWebServer(WebServer):
    """Answers every request after 40 ms, so the run is still going when the tunnel dies."""

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(0.04)
        await super()._serve(reader, writer)


class Servers:
    """The web server and two resolvers in an event loop of their own, on a thread (the audit runs in a
    subprocess: the real `auditor run`, with its real exit code)."""

    def __init__(self, names: list[str], ca: trustme.CA) -> None:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ca.issue_cert(*names).configure_cert(ctx)
        zone: dict[str, tuple[str, ...]] = {n: ("127.0.0.1",) for n in names}
        self.web = SlowWebServer({n: Site(n, title=n) for n in names}, {}, ctx)
        self.control_dns, self.provider_dns = LabResolver(zone), LabResolver(zone)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> Servers:
        self.thread.start()
        for server in (self.web, self.control_dns, self.provider_dns):
            asyncio.run_coroutine_threadsafe(server.start(), self.loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        for server in (self.web, self.control_dns, self.provider_dns):
            asyncio.run_coroutine_threadsafe(server.close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


def stored_at(db: Path, provider_id: str) -> int:
    if not db.exists():
        return 0
    with contextlib.closing(sqlite3.connect(db, timeout=5)) as con:
        try:
            return int(con.execute("SELECT COUNT(*) FROM measurements WHERE provider_id = ?", (provider_id,)).fetchone()[0])
        except sqlite3.OperationalError:  # the table is not there yet
            return 0


@pytest.fixture
def tunnel_site(tmp_path: Path) -> Iterator[tuple[Path, Servers, int, Path]]:
    ca = trustme.CA()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    names = ["canary.example"] + [f"site{i}.example" for i in range(NAMES)]
    with Servers(names, ca) as servers, sshd.sshd(tmp_path / "ssh") as (ssh_port, key):
        yield ca_file, servers, ssh_port, key


def test_killing_the_ssh_tunnel_mid_run_gives_no_blocked_verdict_and_exit_3(
    tmp_path: Path, tunnel_site: tuple[Path, Servers, int, Path]
) -> None:
    ca_file, servers, ssh_port, key = tunnel_site
    web = servers.web
    socks_port = closed_port()
    tunnel = sshd.start_tunnel(ssh_port, key, socks_port)
    lines = [f"https://site{i}.example:{web.https_port}/" if i % 2 else f"http://site{i}.example:{web.http_port}/"
             for i in range(NAMES)]
    (tmp_path / "list.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    db = tmp_path / "audit.db"
    config = {
        "province": "Test", "store": f"sqlite:///{db}", "output_dir": str(tmp_path / "out"),
        "lists": [str(tmp_path / "list.txt")], "canaries": [f"https://canary.example:{web.https_port}/"],
        "control": {"resolvers": [f"127.0.0.1:{servers.control_dns.udp_port}"], "vantage": {}},
        "providers": [{"id": "tunnel", "name": "Through ssh -D",
                       "resolvers": [f"127.0.0.1:{servers.provider_dns.port}"],  # DNS over TCP through the tunnel
                       "vantage": {"proxy": f"socks5://127.0.0.1:{socks_port}"}}],
        "timeouts": {"dns": 2, "connect": 2, "tls": 2, "http": 3}, "concurrency": 20,
        "tls": {"extra_ca_file": str(ca_file)},
        "network": {"loopback_only": True, "allow_private_destinations": True},
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    run = subprocess.Popen([sys.executable, "-m", "auditor.cli", "run", "-c", str(tmp_path / "config.yaml"), "--quiet"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while stored_at(db, "tunnel") < 40 and run.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert run.poll() is None, "the run ended before the tunnel could be killed: make it longer"
        tunnel.kill()  # the ssh client dies: every connection through it closes at once
        tunnel.wait()
        _out, err = run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            run.kill()
        if tunnel.poll() is None:
            tunnel.kill()
            tunnel.wait()
        if tunnel.stderr is not None:
            tunnel.stderr.close()
    assert run.returncode == ExitStatus.NOT_MEASURED, err.decode()
    with contextlib.closing(sqlite3.connect(db)) as con:
        verdicts = con.execute("SELECT verdict, rule, COUNT(*) FROM measurements WHERE provider_id = 'tunnel' "
                               "GROUP BY verdict, rule").fetchall()
    by_verdict: dict[str, int] = {}
    for verdict, _rule, n in verdicts:
        by_verdict[verdict] = by_verdict.get(verdict, 0) + n
    assert sum(by_verdict.values()) == NAMES
    assert "blocked" not in by_verdict, verdicts  # a dead tunnel is never a provider blocking
    assert by_verdict.get("accessible", 0) >= 40 - 20, verdicts  # what was measured before the kill counts
    lost = sum(n for _v, rule, n in verdicts if rule in ("vantage.unhealthy", "vantage.down"))
    assert lost == by_verdict.get("inconclusive", 0) and lost > 0, verdicts
    summary = next((tmp_path / "out").glob("summary-*.csv"))
    with summary.open(encoding="utf-8", newline="") as fh:
        row = next(csv.DictReader(fh))
    assert (row["provider_id"], row["measured"], row["vantage_lost"]) == ("tunnel", "yes", str(lost))


def test_a_tunnel_whose_sshd_forbids_the_canary_is_reported_with_permitopen(tmp_path: Path) -> None:
    """The vantage box's sshd allows forwarding to one port only (PermitOpen): the canary is refused by the
    tunnel itself, and the health check says where to look instead of calling the provider a blocker."""
    ca = trustme.CA()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    with Servers(["canary.example", "site.example"], ca) as servers, \
            sshd.sshd(tmp_path / "ssh", permit_open=f"127.0.0.1:{servers.provider_dns.port}") as (ssh_port, key):
        socks_port = closed_port()
        tunnel = sshd.start_tunnel(ssh_port, key, socks_port)
        try:
            (tmp_path / "list.txt").write_text(f"http://site.example:{servers.web.http_port}/\n", encoding="utf-8")
            config = {
                "province": "Test", "store": f"sqlite:///{tmp_path / 'audit.db'}", "output_dir": str(tmp_path / "out"),
                "lists": [str(tmp_path / "list.txt")], "canaries": [f"http://canary.example:{servers.web.http_port}/"],
                "control": {"resolvers": [f"127.0.0.1:{servers.control_dns.udp_port}"], "vantage": {}},
                "providers": [{"id": "tunnel", "name": "Through ssh -D",
                               "resolvers": [f"127.0.0.1:{servers.provider_dns.port}"],
                               "vantage": {"proxy": f"socks5://127.0.0.1:{socks_port}"}}],
                "timeouts": {"dns": 2, "connect": 2, "tls": 2, "http": 3},
                "tls": {"extra_ca_file": str(ca_file)},
                "network": {"loopback_only": True, "allow_private_destinations": True},
            }
            (tmp_path / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
            doctor = subprocess.run([sys.executable, "-m", "auditor.cli", "doctor", "-c", str(tmp_path / "config.yaml")],
                                    capture_output=True, timeout=60)
        finally:
            tunnel.kill()
            tunnel.wait()
            if tunnel.stderr is not None:
                tunnel.stderr.close()
    output = doctor.stdout.decode() + doctor.stderr.decode()
    assert doctor.returncode == ExitStatus.NOT_MEASURED, output
    assert "PermitOpen" in output and "canary" in output, output
