"""The simulated province on loopback: start it, get a config that points `auditor` at it.

    with Lab(workdir) as lab:
        config = load_config(lab.config_path)

The lab runs in its own thread and event loop, like hosts of its own; it needs no root and listens only
on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import socket
import ssl
import threading
from pathlib import Path

import trustme
import yaml

from auditor.errors import LabError
from auditor.lab import scenario
from auditor.lab.servers import (
    LOOPBACK,
    FixedPageServer,
    LabResolver,
    LabServer,
    Middlebox,
    MiddleboxPolicy,
    WebServer,
    http_response,
)
from auditor.urls import normalise_url


def _ascii(name: str) -> str:
    return normalise_url(f"http://{name}/").host


def _page(title: str, text: str) -> bytes:
    return http_response(200, "OK", f"<html><head><title>{title}</title></head><body><p>{text}</p></body></html>".encode())


class Lab:
    def __init__(self, workdir: Path, *, timeouts: dict[str, float] | None = None, night: int = 1) -> None:
        self.workdir = Path(workdir)
        # night 2: the second nightly run, policies changed (scenario.providers_for); same workdir, same store
        self.night = night
        self.providers = scenario.providers_for(night)
        self.timeouts = timeouts or {"dns": 1.5, "connect": 2.0, "tls": 2.0, "http": 4.0}
        self.config_path = self.workdir / "lab-config.yaml"
        self.list_path = self.workdir / "lab-list.csv"
        self.ca_path = self.workdir / "lab-ca.pem"
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._servers: list[LabServer] = []
        # handles to break a provider mid-run in tests (set from any thread: plain attribute writes)
        self.resolvers: dict[str, LabResolver] = {}
        self.middleboxes: dict[str, Middlebox] = {}

    # --- lifecycle ---

    def __enter__(self) -> Lab:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name="auditor-lab", daemon=True)
        self._thread.start()
        try:
            asyncio.run_coroutine_threadsafe(self._start(), loop).result(timeout=30)
        except Exception as exc:
            self.stop()
            raise LabError(f"the lab could not start: {exc}") from exc

    def stop(self) -> None:
        loop = self._loop
        if loop is None:
            return
        if loop.is_running():
            fut = asyncio.run_coroutine_threadsafe(self._close(), loop)
            try:
                fut.result(timeout=10)
            except Exception:  # noqa: BLE001 - best effort on the way out
                pass
            loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=10)
        loop.close()
        self._loop = None

    def kill_vantage(self, provider_id: str) -> None:
        """Kill a provider's SOCKS middlebox mid-run, from any thread: its connections close at once and
        its port refuses new ones (tests: a vantage that dies under the run)."""
        assert self._loop is not None
        asyncio.run_coroutine_threadsafe(self.middleboxes[provider_id].kill(), self._loop).result(timeout=10)

    async def _close(self) -> None:
        for s in self._servers:
            await s.close()
        # abandon what is still open (held blackholes, slow clients)
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.wait(tasks, timeout=2) if tasks else None

    # --- building the province ---

    async def _start(self) -> None:
        internet_ca = trustme.CA(organization_name="Gia Lai Lab Internet CA")
        intercept_ca = trustme.CA(organization_name="Lab Filter Interception CA")
        rogue_ca = trustme.CA(organization_name="Lab Untrusted CA")
        internet_ca.cert_pem.write_to_path(str(self.ca_path))

        names = [_ascii(s.name) for s in scenario.SITES]
        default_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        internet_ca.issue_cert(*names).configure_cert(default_ctx)
        bad_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        rogue_ca.issue_cert(*scenario.BADCERT_SITES).configure_cert(bad_ctx)
        web = WebServer(scenario.lab_sites(), {n: bad_ctx for n in scenario.BADCERT_SITES}, default_ctx)
        await web.start()
        self.web = web
        self._servers.append(web)

        sinkhole_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        internet_ca.issue_cert("sinkhole.viettel.example").configure_cert(sinkhole_tls)
        intercept_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        intercept_ca.issue_cert(*[h for p in self.providers for h, r in p.sni.items() if r == "intercept"]
                                ).configure_cert(intercept_tls)
        viettel_page = http_response(200, "OK", scenario.VIETTEL_404.encode())
        pages = {
            "viettel_404": FixedPageServer(viettel_page),
            "viettel_404_tls": FixedPageServer(viettel_page, sinkhole_tls),
            "unknown_sink": FixedPageServer(_page("Thông báo", "Trang này tạm thời không truy cập được.")),
            "fpt_block": FixedPageServer(_page("FPT Telecom", scenario.FPT_BLOCK_TEXT)),
            "fpt_redirect": FixedPageServer(
                http_response(302, "Found", b"", {"Location": "http://warning.fpt.example/?reason=blocked"})
            ),
            "fpt_notice": FixedPageServer(_page("Thông báo từ nhà mạng", "Nội dung không phù hợp.")),
            "intercept": FixedPageServer(_page("Truy cập bị từ chối", "Bị chặn."), intercept_tls),
        }
        for server in pages.values():
            await server.start()
            self._servers.append(server)
        page_ends = {k: (LOOPBACK, s.port) for k, s in pages.items()}

        routes: dict[tuple[str, int], tuple[str, int]] = {}
        for s in scenario.SITES:
            if s.name in scenario.DOWN_SITES:
                continue
            for ip in (s.ip, s.ip.replace(scenario.SITE_NET, scenario.ALT_NET, 1)):
                routes[(ip, 80)] = (LOOPBACK, web.http_port)
                routes[(ip, 443)] = (LOOPBACK, web.https_port)
        routes[(scenario.VIETTEL_SINKHOLE, 80)] = page_ends["viettel_404"]
        routes[(scenario.VIETTEL_SINKHOLE, 443)] = page_ends["viettel_404_tls"]
        routes[(scenario.VIETTEL_BLOCKSERVER, 80)] = page_ends["viettel_404"]
        routes[(scenario.UNKNOWN_SINK, 80)] = page_ends["unknown_sink"]

        zone = {_ascii(s.name): (s.ip,) for s in scenario.SITES}
        control_resolver = LabResolver(zone)
        await control_resolver.start()
        self._servers.append(control_resolver)
        routes[(scenario.CONTROL_RESOLVER, 53)] = (LOOPBACK, control_resolver.port)
        for p in self.providers:
            r = LabResolver(zone, p.dns, silent=p.dead_resolver)
            await r.start()
            self._servers.append(r)
            self.resolvers[p.id] = r
            routes[(p.resolver_ip, 53)] = (LOOPBACK, r.port)

        control_box = Middlebox(routes)
        await control_box.start()
        self._servers.append(control_box)
        proxies: dict[str, int] = {}
        for p in self.providers:
            if p.dead_vantage:
                proxies[p.id] = _closed_port()
                continue
            box = Middlebox(routes, MiddleboxPolicy(tcp=p.tcp, sni=p.sni, http=p.http, pages=page_ends))
            await box.start()
            self._servers.append(box)
            self.middleboxes[p.id] = box
            proxies[p.id] = box.port
        self._write_files(control_box.port, proxies)

    def _write_files(self, control_port: int, proxies: dict[str, int]) -> None:
        from zoneinfo import ZoneInfo

        today = dt.datetime.now(ZoneInfo("Asia/Ho_Chi_Minh")).date()  # list dates are local dates
        with self.list_path.open("w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(["url", "category_code", "category_description", "date_added", "source", "notes"])
            for name, url in scenario.listed_urls():
                # one entry added today: reported, not scored (grace period)
                added = today if name == "open-tls-case.example" else dt.date(2026, 1, 15)
                w.writerow([url, "GMB", "Gambling", added.isoformat(), "lab", f"lab case {name}"])
        config = {
            "province": "Gia Lai (simulated)",
            "store": f"sqlite:///{self.workdir / 'lab.db'}",
            "output_dir": str(self.workdir / "reports"),
            "lists": [str(self.list_path)],
            "canaries": [scenario.CANARY],
            "control": {
                "resolvers": [scenario.CONTROL_RESOLVER],
                "vantage": {"proxy": f"socks5://{LOOPBACK}:{control_port}"},
            },
            "providers": [
                {
                    "id": p.id,
                    "name": p.name,
                    **({"asn": p.asn} if p.asn else {}),
                    "resolvers": [p.resolver_ip],
                    "vantage": {"proxy": f"socks5://{LOOPBACK}:{proxies[p.id]}"},
                }
                for p in scenario.PROVIDERS
            ],
            "fingerprints": {
                "body_patterns": [scenario.FPT_BLOCK_TEXT],
                "redirect_hosts": ["warning.fpt.example"],
            },
            "timeouts": self.timeouts,
            "concurrency": 50,
            "tls": {"extra_ca_file": str(self.ca_path)},
            "grace_hours": 24,
            **({"must_block": [scenario.MUST_BLOCK_URL], "must_allow": [scenario.MUST_ALLOW_URL]}
               if self.night == 2 else {}),
            "network": {"loopback_only": True, "simulated_internet": ["45.76.0.0/16", "125.212.224.108/32"]},
        }
        header = "# Written by `auditor lab`: the simulated province on loopback. Every address below that is\n" \
                 "# not 127.0.0.1 is reached only through the lab's SOCKS middleboxes on 127.0.0.1.\n"
        self.config_path.write_text(header + yaml.safe_dump(config, sort_keys=False, allow_unicode=True),
                                    encoding="utf-8")


def _closed_port() -> int:
    """A loopback port where nothing listens (a dead vantage): connections are refused."""
    s = socket.socket()
    s.bind((LOOPBACK, 0))
    port = s.getsockname()[1]
    s.close()
    return port
