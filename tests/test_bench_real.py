"""The benchmark against real servers (`bench.real`) is itself correct: its plan is the issue's lab, and the
real `auditor run` (and the dig + curl baseline) on a 20-name lab of nginx and unbound reaches exactly the
verdicts the plan says, with ISP A's nftables drop when root. Skipped without nginx or unbound (Debian:
apt-get install nginx-light unbound nftables); the nftables part only without root. No timing here."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pytest
import yaml

from bench.real import Figures, analyse_shell, analyse_store, auditor_command, run_child
from bench.real_servers import (
    NFT_TABLE_PREFIX,
    PROVIDERS,
    SERVERS,
    LabNet,
    RealLab,
    RealPlan,
    index_of,
    nft_unavailable,
    url,
)

needs_servers = pytest.mark.skipif(
    shutil.which("nginx") is None or shutil.which("unbound") is None,
    reason="nginx and unbound are not installed (apt-get install nginx-light unbound)",
)


def _net() -> LabNet:
    # a /24 of its own, so this test never meets a benchmark (or another test run) on the same machine
    return LabNet(f"127.{200 + os.getpid() % 50}.{os.getpid() // 50 % 250}")


def test_the_plan_is_the_issues_lab() -> None:
    plan = RealPlan(2000)
    assert Counter(plan.server_index(i) for i in range(2000)) == {k: 400 for k in range(SERVERS)}
    silent = [i for i in range(2000) if plan.silent(i)]
    assert len(silent) == 400 and sum(plan.https(i) for i in silent) == 200  # both schemes time out
    assert sum(plan.https(i) for i in range(2000)) == 1000
    # RSA and ECDSA certificates at every address
    kinds = {(plan.server_index(i), plan.key_type(i)) for i in range(2000) if plan.https(i)}
    assert kinds == {(k, t) for k in range(SERVERS) for t in ("rsa", "ecdsa")}
    assert len(plan.nxdomain) == 600
    # NXDOMAIN spread over every address and both schemes, not a pattern of the index
    assert {plan.server_index(i) for i in plan.nxdomain} == set(range(SERVERS))
    assert 250 < sum(plan.https(i) for i in plan.nxdomain) < 350
    assert plan.counts(drop=True) == {"isp-a": 400, "isp-b": 600}
    assert plan.counts(drop=False) == {"isp-a": 0, "isp-b": 600}
    assert plan.expected("isp-a", 4, drop=True).rule == "tcp.timeout"
    assert index_of(url(1234, (8080, 8443))) == 1234 and index_of("https://canary.real.example/") is None
    assert url(2, (80, 443)) == "https://s00002.real.example/" and url(3, (8080, 8443)).endswith(":8080/")


def test_the_lab_stays_on_loopback() -> None:
    with pytest.raises(ValueError, match="loopback"):
        LabNet("10.0.0")
    net = LabNet("127.0.0")
    assert net.servers[-1] == net.silent == "127.0.0.105"
    assert (net.source("control"), net.source("isp-a"), net.source("isp-b")) == (
        "127.0.0.20",
        "127.0.0.21",
        "127.0.0.22",
    )


@needs_servers
def test_auditor_run_on_real_servers_reaches_the_planned_verdicts(tmp_path: Path) -> None:
    plan = RealPlan(20)
    drop_skipped = nft_unavailable()
    with RealLab(tmp_path / "lab", plan, _net()) as lab:
        assert lab.dropping == (drop_skipped is None)
        config = lab.config(limits="off", concurrency=50, timeout=0.5)
        # a short connect timeout keeps the dropped address quick; the other steps stay roomy for a loaded
        # machine (a spurious timeout would be a wrong verdict here)
        config["timeouts"] = {"dns": 5.0, "connect": 0.5, "tls": 5.0, "http": 5.0}
        assert config["network"] == {"loopback_only": True, "allow_private_destinations": True}
        path = tmp_path / "config.yaml"
        path.write_text(yaml.safe_dump(config), encoding="utf-8")
        fig = Figures(
            "test", plan.names, 50, 0.5, "off", None, drop="", planned=plan.counts(drop=lab.dropping)
        )
        run_child(auditor_command(path, None), fig, tmp_path / "run.out", tmp_path / "run.err")
        assert fig.exit_code == 0, fig.stderr_tail
        analyse_store(lab, path, fig)
        table = _nft_table(lab)

        if shutil.which("dig") and shutil.which("curl"):
            shell = Figures("dig + curl", plan.names, 50, 0.5, "off", None, drop="")
            out = tmp_path / "shell.out"
            cmd = [
                "bash",
                "bench/shell_baseline.sh",
                str(lab.workdir / "jobs.txt"),
                str(lab.ca_path),
                "50",
                "0.5",
            ]
            run_child(cmd, shell, out, tmp_path / "shell.err")
            assert shell.exit_code == 0, shell.stderr_tail
            analyse_shell(lab, out, shell)
            assert shell.wrong == [] and shell.pairs == 2 * plan.names
            assert len(out.read_text().splitlines()) == 3 * plan.names  # control's jobs too

    assert fig.wrong == [] and fig.mismatches == 0
    assert fig.pairs == len(PROVIDERS) * plan.names
    blocked = {p: sum(n for k, n in v.items() if k.startswith("blocked")) for p, v in fig.verdicts.items()}
    assert blocked == plan.counts(drop=lab.dropping)
    if lab.dropping:
        assert fig.verdicts["isp-a"]["blocked/tcp tcp.timeout"] == sum(
            plan.silent(i) for i in range(plan.names)
        )
        assert fig.timed_out_pairs == blocked["isp-a"] and fig.lower_bound_s == 0.5
        assert table is not None
        # the table is gone once the lab has stopped
        tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True, check=True).stdout
        assert table not in tables
    else:
        assert fig.timed_out_pairs == 0  # ISP A drops nothing without root or nft: said, not hidden


@needs_servers
@pytest.mark.skipif(nft_unavailable() is not None, reason=str(nft_unavailable()))
def test_the_nftables_table_is_deleted_when_the_run_fails(tmp_path: Path) -> None:
    plan = RealPlan(4)
    table = ""
    with pytest.raises(RuntimeError, match="the run failed"), RealLab(tmp_path, plan, _net()) as lab:
        table = _nft_table(lab) or ""
        assert table
        raise RuntimeError("the run failed")
    assert table
    tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True, check=True).stdout
    assert table not in tables
    assert all(d.proc is not None and d.proc.poll() is not None for d in lab.resolvers.values())


def _nft_table(lab: RealLab) -> str | None:
    if not lab.dropping:
        return None
    tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True, check=True).stdout
    ours = [line.split()[-1] for line in tables.splitlines() if f"{NFT_TABLE_PREFIX}{os.getpid()}_" in line]
    assert len(ours) == 1, tables
    return ours[0]
