"""`auditor doctor`: check everything a nightly run depends on, and say what is wrong and how to fix it."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from auditor.config import Config, VantageConfig
from auditor.errors import AuditorError
from auditor.health import HealthCheck, check_control, check_provider, resolver_probe_name
from auditor.lists import read_lists
from auditor.runlock import RunLock, RunLocked, lock_path_for
from auditor.toolkit import build_toolkit


@dataclass(frozen=True)
class Finding:
    area: str  # "lists", "store", "output", "control", "provider viettel"
    ok: bool
    message: str
    hint: str = ""
    fatal: bool = False  # a run could not measure (or not start) because of it


def vantage_hint(v: VantageConfig) -> str:
    if v.kind == "proxy":
        return (f"is the SOCKS tunnel up? start it with e.g. `ssh -N -D {v.describe().split()[-1]} probe@<box on the "
                "provider's line>` and check that the port listens (ss -ltn)")
    if v.kind == "source_address":
        return f"is {v.value} configured on this host (ip -brief addr) and routed through the provider?"
    if v.kind == "interface":
        return (f"does interface {v.value} exist and is it up (ip -brief link)? binding to it needs CAP_NET_RAW "
                "(run as root or setcap cap_net_raw+ep on the Python binary)")
    return "the host's own connection is used: is it online?"


async def diagnose(config: Config) -> list[Finding]:
    findings: list[Finding] = []

    lists = read_lists(config.lists)
    for r in lists.results:
        if r.issues:
            findings.append(Finding("lists", False, f"{r.path}: {len(r.issues)} rows would be skipped ({len(r.entries)} "
                                    f"entries)", f"see them with `auditor lists validate {r.path}`"))
        else:
            findings.append(Finding("lists", True, f"{r.path}: {len(r.entries)} entries"))
    if not lists.entries:
        findings.append(Finding("lists", False, "no valid URL in the lists: nothing to audit",
                                "check `lists:` in the config", fatal=True))

    findings.append(_store_finding(config))
    findings.append(_output_finding(config.output_dir))

    kit = build_toolkit(config)
    try:
        control = await check_control(kit)
        findings.append(Finding(
            "control", control.ok, _joined(control.checks) or "no canaries",
            "" if control.ok else f"control must reach every canary: {vantage_hint(config.control.vantage)}; and check "
            "control.resolvers", fatal=not control.ok,
        ))
        if not control.ok:
            return findings
        probe_name = resolver_probe_name(config.canaries, (e.host for e in lists.entries))
        for p in config.providers:
            health = await check_provider(kit, p.id, control, probe_name)
            reason, checks = health.reason, _joined(health.checks)
            if health.measured:
                findings.append(Finding(f"provider {p.id}", True, checks))
                continue
            if reason.startswith("vantage"):
                hint = vantage_hint(p.vantage)
            elif reason.startswith("no resolver"):
                hint = (f"check providers[{p.id}].resolvers: from the vantage, `dig @{p.resolvers[0].ip} -p "
                        f"{p.resolvers[0].port} {probe_name} +tcp` should answer")
            else:
                hint = f"the provider blocks or breaks a canary; look at it step by step: `auditor check {p.id} {config.canaries[0] if config.canaries else ''}`"
            findings.append(Finding(f"provider {p.id}", False, f"{reason} ({checks})", hint, fatal=True))
        return findings
    finally:
        await kit.close()


def _joined(checks: tuple[HealthCheck, ...]) -> str:
    return "; ".join(str(c) for c in checks)


def _store_finding(config: Config) -> Finding:
    from auditor.store import open_store

    try:
        store = open_store(config.store)
        try:
            runs = store.list_runs(limit=1)
        finally:
            store.close()
    except AuditorError as exc:
        return Finding("store", False, f"{config.store}: {exc}", "fix `store:` or move the bad file away", fatal=True)
    last = f"last run {runs[0].run_id} ({runs[0].status})" if runs else "no run yet"
    lock_path = lock_path_for(config.store)
    if lock_path is not None:
        try:
            RunLock(lock_path).acquire({"note": "auditor doctor"}).release()
        except RunLocked as exc:
            return Finding("store", False, f"{config.store}: {exc}", "wait for that run to finish", fatal=False)
    return Finding("store", True, f"{config.store}: usable, {last}")


def _output_finding(out: Path) -> Finding:
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".doctor-{secrets.token_hex(4)}"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        return Finding("output", False, f"{out}: not writable ({exc})",
                       f"create it and give the auditor user write access (chown, chmod u+w {out})", fatal=True)
    free = os.statvfs(out)
    mb = free.f_bavail * free.f_frsize // 2**20
    return Finding("output", mb > 50, f"{out}: writable, {mb} MiB free", "" if mb > 50 else "free some space")
