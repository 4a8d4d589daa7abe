"""Issue 9, item 6: a SOCKS tunnel that accepts TCP but never answers its greeting is reported as "the
tunnel is not answering" by the health check and by `auditor doctor`, not as "no resolver answers"."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from auditor.cli import app
from auditor.lab.servers import Middlebox
from probes.dialers import Socks5Dialer
from tests.loopback_servers import closed_port


@pytest.fixture
def silent_tunnel() -> Iterator[int]:
    """A listening port that accepts and never says a word: an `ssh -D` whose link froze."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        yield int(s.getsockname()[1])


def test_a_silent_proxy_is_a_tunnel_not_answering(silent_tunnel: int) -> None:
    problem = asyncio.run(Socks5Dialer(f"socks5://127.0.0.1:{silent_tunnel}").tunnel_problem(0.3))
    assert problem.startswith("the tunnel is not answering: socks5 127.0.0.1:")
    assert "does not answer the SOCKS greeting within 0.3s" in problem


def test_a_closed_proxy_port_is_a_tunnel_down() -> None:
    problem = asyncio.run(Socks5Dialer(f"socks5://127.0.0.1:{closed_port()}").tunnel_problem(0.3))
    assert problem.startswith("the tunnel is down: socks5 127.0.0.1:") and "unreachable" in problem


def test_a_working_socks_proxy_has_no_tunnel_problem() -> None:
    async def scenario() -> str:
        proxy = Middlebox({})
        await proxy.start()
        try:
            return await Socks5Dialer(f"socks5://127.0.0.1:{proxy.port}").tunnel_problem(1.0)
        finally:
            await proxy.close()

    assert asyncio.run(scenario()) == ""


def test_doctor_says_the_tunnel_is_not_answering(tmp_path: Path, silent_tunnel: int) -> None:
    (tmp_path / "list.txt").write_text("http://example.test/\n", encoding="utf-8")
    config = {
        "province": "Test", "store": f"sqlite:///{tmp_path / 'a.db'}", "output_dir": str(tmp_path / "out"),
        "lists": [str(tmp_path / "list.txt")], "canaries": [],
        "control": {"resolvers": [f"127.0.0.1:{closed_port(socket.SOCK_DGRAM)}"], "vantage": {}},
        "providers": [{"id": "frozen", "name": "Frozen tunnel", "resolvers": ["127.0.0.1:53"],
                       "vantage": {"proxy": f"socks5://127.0.0.1:{silent_tunnel}"}}],
        "timeouts": {"dns": 0.3, "connect": 0.3, "tls": 0.3, "http": 0.5},
        "network": {"loopback_only": True, "allow_private_destinations": True},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    result = CliRunner().invoke(app, ["doctor", "-c", str(path)], catch_exceptions=False)
    assert result.exit_code == 3, result.output
    assert "the tunnel is not answering" in result.output
    assert "no resolver" not in result.output
