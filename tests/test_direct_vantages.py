"""`auditor run` through the other vantage kinds: a bound source address and a bound interface, with DNS
over UDP from the vantage (the lab's providers are SOCKS proxies; here nothing is in between)."""

from __future__ import annotations

import asyncio
import errno
import socket
from pathlib import Path

import trustme
import yaml

from auditor.config import load_config
from auditor.engine import AuditResult, run_audit
from auditor.lab.servers import DnsPolicy, LabResolver, Site, WebServer
from auditor.models import MeasurementRecord, Verdict
from auditor.store import open_store


def can_bind_to_device(name: str) -> bool:
    s = socket.socket()
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, name.encode())
        return True
    except OSError as exc:
        if exc.errno in (errno.EPERM, errno.EACCES):
            return False
        raise
    finally:
        s.close()


def test_source_address_and_interface_vantages_end_to_end(tmp_path: Path) -> None:
    ca = trustme.CA()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    names = ["canary.example", "open.example", "tls.example", "blocked.example"]
    zone: dict[str, tuple[str, ...]] = {n: ("127.0.0.1",) for n in names}
    by_interface = can_bind_to_device("lo")

    async def scenario() -> tuple[AuditResult, dict[tuple[str, str], MeasurementRecord], int, int, LabResolver,
                                  LabResolver]:
        import ssl

        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ca.issue_cert(*names).configure_cert(ctx)
        web = WebServer({n: Site(n, title=n) for n in names}, {}, ctx)
        control_dns = LabResolver(zone)
        provider_dns = LabResolver(zone, {"blocked.example": DnsPolicy("nxdomain")})
        for server in (web, control_dns, provider_dns):
            await server.start()
        providers: list[dict[str, object]] = [
            {"id": "bysource", "name": "By source address", "resolvers": [f"127.0.0.1:{provider_dns.udp_port}"],
             "vantage": {"source_address": "127.0.0.2"}}]
        if by_interface:
            providers.append({"id": "byinterface", "name": "By interface", "resolvers": [f"127.0.0.1:{provider_dns.udp_port}"],
                              "vantage": {"interface": "lo"}})
        list_file = tmp_path / "list.txt"
        list_file.write_text(f"http://open.example:{web.http_port}/\nhttps://tls.example:{web.https_port}/\n"
                             f"http://blocked.example:{web.http_port}/\n", encoding="utf-8")
        config = {
            "province": "Test", "store": f"sqlite:///{tmp_path / 'a.db'}", "output_dir": str(tmp_path / "out"),
            "lists": [str(list_file)], "canaries": [f"http://canary.example:{web.http_port}/"],
            "control": {"resolvers": [f"127.0.0.1:{control_dns.udp_port}"], "vantage": {}},
            "providers": providers, "timeouts": {"dns": 2, "connect": 2, "tls": 2, "http": 4},
            "tls": {"extra_ca_file": str(ca_file)},
            "network": {"loopback_only": True, "allow_private_destinations": True},
        }
        path = tmp_path / "config.yaml"
        path.write_text(yaml.safe_dump(config), encoding="utf-8")
        cfg = load_config(path)
        store = open_store(cfg.store)
        try:
            result = await run_audit(cfg, store)
            records = {(r.provider_id, r.entry.url): r for r in store.iter_measurements(result.run.run_id)}
        finally:
            store.close()
            for server in (web, control_dns, provider_dns):
                await server.close()
        return result, records, web.http_port, web.https_port, control_dns, provider_dns

    result, records, http_port, https_port, control_dns, provider_dns = asyncio.run(scenario())
    assert result.all_measured, [h.reason for h in result.health]
    expected_providers = ["bysource", "byinterface"] if by_interface else ["bysource"]
    assert [h.provider_id for h in result.health] == expected_providers
    for pid in expected_providers:
        open_ = records[(pid, f"http://open.example:{http_port}/")].judgement
        tls_ = records[(pid, f"https://tls.example:{https_port}/")].judgement
        blocked = records[(pid, f"http://blocked.example:{http_port}/")].judgement
        assert (open_.verdict, open_.rule) == (Verdict.ACCESSIBLE, "http.matches_control"), open_.evidence
        assert (tls_.verdict, tls_.rule) == (Verdict.ACCESSIBLE, "tls.valid_session"), tls_.evidence
        assert (blocked.verdict, blocked.rule) == (Verdict.BLOCKED, "dns.nxdomain"), blocked.evidence
        observation = records[(pid, f"http://open.example:{http_port}/")].observation
        assert observation is not None and observation.hops[0].dns is not None
        assert {q.transport for q in observation.hops[0].dns.queries} == {"udp"}
    assert "127.0.0.2" in provider_dns.peers  # the source-address vantage really left from its address
    assert control_dns.peers == {"127.0.0.1"}
