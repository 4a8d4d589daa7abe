"""The benchmark against real servers (issue 10): Debian's nginx and unbound on loopback, nftables as ISP A.

    python -m bench.real [--urls 2000] [--concurrency 50] [--timeout 2] [--limits default|off|qps-only|dest-only]
                         [--workers N] [--json FILE] [--profile FILE | --sample] [--shell]

The lab (`bench.real_servers`): 2,000 names over 5 addresses, half https (RSA-2048 and ECDSA P-256
certificates from a local CA), three unbound resolvers (control, ISP A, ISP B: NXDOMAIN for 30 %), ISP A
silently dropping one address (400 names time out there), source-address vantages .20/.21/.22.

By default the real `auditor run -c CFG --quiet` runs as a child process and its CPU is the whole
process's (interpreter start-up, imports, health checks, measuring, the end-of-run analysis and CSVs), from
`os.wait4`'s rusage of that child alone: nginx's and unbound's CPU is shown apart. `--profile FILE`
(cProfile) and `--sample` (the SIGPROF sampler of bench/sampler.py) run `auditor.audit.audit` in this
process instead, to show where the CPU goes (start-up is then not part of the figure). `--shell` runs the
dig + curl script `bench/shell_baseline.sh` on the same names, vantages, concurrency and timeouts instead.

Every verdict is checked against the lab's plan; the exit code is 1 when one is not as planned.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import math
import os
import pstats
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bench.real_servers import LIMITS, PROVIDERS, LabNet, RealLab, RealPlan, index_of, shutdown_on_signals
from bench.run import REPO, STEPS, _area, _RawStats, _summary, _walk, _where, machine_info, print_profile
from bench.sampler import Sampler

SHELL_BASELINE = REPO / "bench" / "shell_baseline.sh"


@dataclass
class Figures:
    mode: str  # "auditor run" (a child process) | "in-process (cProfile)" | ... | "dig + curl"
    urls: int
    concurrency: int
    timeout_s: float
    limits: str
    workers: int | None
    drop: str  # whether ISP A's nftables drop was in place
    ports: tuple[int, int] = (80, 443)
    exit_code: int | None = None
    pairs: int = 0  # (provider, URL) pairs judged
    wall_s: float = 0.0
    cpu_user_s: float = 0.0
    cpu_sys_s: float = 0.0
    peak_rss_mb: float = 0.0
    servers_cpu_s: float = 0.0  # nginx + the three unbound
    timed_out_pairs: int = 0
    timed_out_probes: int = 0  # attempts: a timed-out connect is tried twice
    timed_out_by_step: dict[str, int] = field(default_factory=dict)
    verdicts: dict[str, dict[str, int]] = field(
        default_factory=dict
    )  # provider -> "verdict/method rule" -> n
    planned: dict[str, int] = field(default_factory=dict)  # provider -> blocked pairs planned
    mismatches: int = 0
    wrong: list[str] = field(default_factory=list)  # the first 100
    steps: dict[str, dict[str, float]] = field(default_factory=dict)
    load: dict[str, float] = field(default_factory=dict)  # 1-minute load average: start, mean during, end
    machine: dict[str, str] = field(default_factory=dict)
    stderr_tail: str = ""
    samples: int = 0  # --sample: samples taken, shares of the CPU by area, by step, by innermost frame
    cpu_by_area: dict[str, float] = field(default_factory=dict)
    cpu_by_step: dict[str, float] = field(default_factory=dict)
    cpu_top: list[tuple[str, float]] = field(default_factory=list)

    @property
    def cpu_s(self) -> float:
        return self.cpu_user_s + self.cpu_sys_s

    @property
    def pairs_per_s(self) -> float:
        return self.pairs / self.wall_s if self.wall_s else 0.0

    @property
    def cpu_ms_per_pair(self) -> float:
        return 1000 * self.cpu_s / self.pairs if self.pairs else 0.0

    @property
    def lower_bound_s(self) -> float:
        """The issue's bound: every timed-out pair holds one of `concurrency` slots for one timeout."""
        return math.ceil(self.timed_out_pairs / self.concurrency) * self.timeout_s

    @property
    def attempts_bound_s(self) -> float:
        """The same with every timed-out attempt counted (the engine retries a timed-out connect once)."""
        return math.ceil(self.timed_out_probes / self.concurrency) * self.timeout_s

    @property
    def ratio(self) -> float | None:
        return self.wall_s / self.lower_bound_s if self.lower_bound_s else None


class LoadWatch:
    """The 1-minute load average every 5 s while a run goes on (the machine is shared)."""

    def __init__(self) -> None:
        self.values = [os.getloadavg()[0]]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self._stop.wait(5.0):
            self.values.append(os.getloadavg()[0])

    def __enter__(self) -> LoadWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.values.append(os.getloadavg()[0])

    def summary(self) -> dict[str, float]:
        v = self.values
        return {"start": round(v[0], 2), "mean": round(sum(v) / len(v), 2), "end": round(v[-1], 2)}


def run_child(cmd: list[str], fig: Figures, stdout: Path, stderr: Path) -> None:
    """Run `cmd`; wall, CPU and peak RSS of that child and its descendants alone (`os.wait4`)."""
    with stdout.open("wb") as out, stderr.open("wb") as err, LoadWatch() as load:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=REPO, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        try:
            _pid, status, usage = os.wait4(proc.pid, 0)
        except BaseException:  # SIGTERM or ^C while it runs: stop it before the lab goes away under it
            proc.terminate()
            proc.wait(timeout=30)
            raise
        fig.wall_s = time.perf_counter() - t0
        proc.returncode = fig.exit_code = os.waitstatus_to_exitcode(status)
    fig.load = load.summary()
    fig.cpu_user_s, fig.cpu_sys_s = usage.ru_utime, usage.ru_stime
    fig.peak_rss_mb = usage.ru_maxrss / 1024  # KiB on Linux
    fig.stderr_tail = stderr.read_text(errors="replace")[-3000:]


def auditor_command(config: Path, workers: int | None) -> list[str]:
    exe = Path(sys.executable).with_name("auditor")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "auditor.cli"]
    cmd += ["run", "-c", str(config), "--quiet"]
    if workers is not None:
        help_text = subprocess.run([*cmd[:-4], "run", "--help"], capture_output=True, text=True).stdout
        if "--workers" not in help_text:
            raise SystemExit("bench.real: `auditor run` has no --workers option yet (issue 10 item 3)")
        cmd += ["--workers", str(workers)]
    return cmd


def run_in_process(config_path: Path, fig: Figures, args: argparse.Namespace) -> None:
    """`auditor.audit.audit` in this process, under cProfile or the sampler: where the CPU goes."""
    from auditor.audit import audit
    from auditor.config import load_config
    from auditor.lists import read_lists
    from auditor.store import open_store

    profiler = cProfile.Profile(time.process_time) if args.profile else None  # CPU: the machine is shared
    sampler = Sampler() if args.sample else None
    with LoadWatch() as load:
        ru0 = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.perf_counter()
        if profiler is not None:
            profiler.enable()
        if sampler is not None:
            sampler.start()
        config = load_config(config_path)
        with open_store(config.store) as store:
            result = asyncio.run(
                audit(config, store, lists=read_lists(config.lists), out_dir=Path(config.output_dir))
            )
        if sampler is not None:
            sampler.stop()
        if profiler is not None:
            profiler.disable()
        fig.wall_s = time.perf_counter() - t0
        ru1 = resource.getrusage(resource.RUSAGE_SELF)
    fig.load = load.summary()
    fig.exit_code = 0 if result.all_measured else 3
    fig.cpu_user_s, fig.cpu_sys_s = ru1.ru_utime - ru0.ru_utime, ru1.ru_stime - ru0.ru_stime
    fig.peak_rss_mb = ru1.ru_maxrss / 1024
    if profiler is not None:
        profiler.dump_stats(args.profile)
        stats = pstats.Stats(profiler)
        print_profile(stats, args.profile)
        print_by_file(stats)
    if sampler is not None:
        keep_samples(sampler, fig)


def print_by_file(stats: pstats.Stats) -> None:
    raw: _RawStats = vars(stats)["stats"]  # pstats keeps its table untyped
    by_file: dict[str, float] = defaultdict(float)  # seconds: a Counter counts ints
    for (filename, _line, func), (_cc, _nc, tt, _ct, _callers) in raw.items():
        # a builtin has no file ("~"): C functions (OpenSSL's do_handshake, socket.send) by name instead
        by_file[func if filename == "~" else _where(filename, 0, "").rsplit(":", 1)[0]] += tt
    total = sum(by_file.values()) or 1.0
    print("\ntop 25 files (C functions by name) by own time (s):")
    for where, tt in sorted(by_file.items(), key=lambda kv: -kv[1])[:25]:
        print(f"  {tt:8.2f}  {100 * tt / total:5.1f} %  {where}")


# --sample: the CPU under each of these functions (and what they call); the lines may overlap (a blocked
# verdict's confirmation measures again, through the same probes)
STEP_MARKERS: dict[str, tuple[tuple[str, str], ...]] = {
    "DNS query (UDP from the source address)": (("probes/dns.py", "query"),),
    "TCP connect": (("probes/tcp.py", "connect"),),
    "TLS handshake": (("probes/tls.py", "handshake"), ("probes/tls.py", "fetch_unverified_certificate")),
    "HTTP GET (request, 64 KiB prefix)": (("probes/http.py", "get"),),
    "verdict (judge)": (("auditor/verdict.py", "judge"),),
    "store (record_*, JSON)": (("auditor/store/sqlite.py", "record_measurement"),
                               ("auditor/store/sqlite.py", "record_control")),
    "vantage checks (at the start, and every re-check)": (("auditor/health.py", "check_control"),
                                                          ("auditor/health.py", "check_provider")),
    "scoring and analysis (end of run)": (("auditor/audit.py", "analyse_run"),),
    "CSVs (end of run)": (("auditor/audit.py", "write_outputs"),),
    "blocked verdicts confirmed (control again, re-check)": (("auditor/confirm.py", "confirm_blocked"),),
}  # fmt: skip


def keep_samples(sampler: Sampler, fig: Figures) -> None:
    total = max(1, sampler.samples)
    fig.samples = sampler.samples
    fig.cpu_by_area = {k: n / total for k, n in sampler.share_own(_area).most_common()}
    within = sampler.share_within(STEP_MARKERS)
    fig.cpu_by_step = {k: within[k] / total for k in STEP_MARKERS}
    fig.cpu_top = [(_where(*key), n / total) for key, n in sampler.own.most_common(25)]


def print_samples(fig: Figures) -> None:
    per = fig.cpu_ms_per_pair
    # a SIGPROF per ms of CPU is asked for; here about one per 4 ms arrives (the kernel's tick): shares hold
    print(f"\nCPU by area ({fig.samples} samples of the process's CPU; the innermost Python frame)")
    for area, share in fig.cpu_by_area.items():
        print(f"  {area:<36} {100 * share:5.1f} %  {per * share:6.3f} ms per pair")
    print("CPU under each of these functions (what they call included; transport callbacks, such as OpenSSL\n"
          "processing a handshake's records, run from the event loop and count only in the areas)")  # fmt: skip
    for step, share in fig.cpu_by_step.items():
        print(f"  {step:<54} {100 * share:5.1f} %  {per * share:6.3f} ms per pair")
    print("innermost frames with the most samples")
    for where, share in fig.cpu_top:
        print(f"  {100 * share:5.1f} %  {where}")


# --- judging the run against the plan ----------------------------------------------------------------


def analyse_store(lab: RealLab, config_path: Path, fig: Figures) -> None:
    from auditor.config import load_config
    from auditor.store import open_store

    config = load_config(config_path)
    samples: dict[str, list[float]] = defaultdict(list)
    by_step: Counter[str] = Counter()
    verdicts: dict[str, Counter[str]] = {p: Counter() for p in PROVIDERS}
    with open_store(config.store) as store:
        run_id = store.latest_run_id()
        if run_id is None:
            fig.wrong.append("no run stored")
            fig.mismatches = 2 * lab.plan.names
            return
        seen: Counter[str] = Counter()
        urls: set[str] = set()
        for rec in store.iter_measurements(run_id):
            fig.pairs += 1
            seen[rec.provider_id] += 1
            urls.add(rec.entry.url)
            j = rec.judgement
            verdicts.setdefault(rec.provider_id, Counter())[
                f"{j.verdict}{'/' + j.method if j.method else ''} {j.rule}"
            ] += 1
            i = index_of(rec.entry.url)
            want = lab.plan.expected(rec.provider_id, i if i is not None else -1, drop=lab.dropping)
            got = (str(j.verdict), str(j.method or ""), j.rule if want.rule else "")
            if got != (want.verdict, want.method, want.rule):
                _wrong(fig, f"{rec.provider_id} {rec.entry.url}: {j.verdict} {j.rule} ({j.evidence})")
            if rec.observation is not None:
                pair: Counter[str] = Counter()
                _walk(rec.observation, samples, pair)
                by_step.update(pair)
                if sum(pair.values()):
                    fig.timed_out_pairs += 1
        for url in urls:
            control = store.control_observation(run_id, url)
            if control is not None:
                _walk(control, samples, by_step)
    for p in PROVIDERS:
        if seen[p] != lab.plan.names:  # a pair never judged is a mismatch too
            _wrong(fig, f"{p}: {seen[p]} pairs stored of {lab.plan.names}")
            fig.mismatches += abs(lab.plan.names - seen[p]) - 1
    fig.verdicts = {p: dict(sorted(c.items())) for p, c in verdicts.items()}
    fig.timed_out_by_step = {k: v for k, v in sorted(by_step.items()) if v}
    fig.timed_out_probes = sum(by_step.values())
    fig.steps = {s: _summary(samples[s]) for s in STEPS if samples[s]}


def _wrong(fig: Figures, text: str) -> None:
    fig.mismatches += 1
    if len(fig.wrong) < 100:
        fig.wrong.append(text)


def analyse_shell(lab: RealLab, output: Path, fig: Figures) -> None:
    """The baseline's lines: `role name dns=<rcode|timeout> http=<status|timeout|curl-N> attempts=N`."""
    outcome = {"accessible": "http=200", "tcp.timeout": "http=timeout", "dns.nxdomain": "dns=NXDOMAIN"}
    verdicts: dict[str, Counter[str]] = {p: Counter() for p in PROVIDERS}
    seen: set[tuple[str, str]] = set()
    for line in output.read_text(encoding="utf-8").splitlines():
        role, name, dns, http, attempts = (line.split() + ["", "", "", "", ""])[:5]
        if role not in PROVIDERS:
            continue
        seen.add((role, name))
        fig.pairs += 1
        got = dns if dns != "dns=NOERROR" else http
        verdicts[role][got] += 1
        timed_out = http == "http=timeout" or dns == "dns=timeout"
        fig.timed_out_pairs += timed_out
        fig.timed_out_probes += (
            int(attempts.removeprefix("attempts=") or 0) if http == "http=timeout" else timed_out
        )
        i = index_of(name)
        want = lab.plan.expected(role, i if i is not None else -1, drop=lab.dropping)
        if got != outcome[want.rule or want.verdict]:
            _wrong(fig, f"{role} {name}: {dns} {http}, planned {want.rule or want.verdict}")
    missing = len(PROVIDERS) * lab.plan.names - len(seen)
    if missing:  # a pair with no line is a mismatch too
        _wrong(fig, f"{missing} pairs with no line")
        fig.mismatches += missing - 1
    fig.verdicts = {p: dict(sorted(c.items())) for p, c in verdicts.items()}


# --- output ------------------------------------------------------------------------------------------


def print_figures(fig: Figures) -> None:
    m = fig.machine
    ratio = f"{fig.ratio:.2f}" if fig.ratio is not None else "n/a (no timeouts)"
    rows = [
        ("machine", f"{m['cpus']} CPUs, {m['platform']}, Python {m['python']}"),
        ("date, commit", f"{m['date']}, {m['commit']}"),
        ("load average (1 min)", f"{fig.load.get('start')} at start, {fig.load.get('mean')} mean, "
                                 f"{fig.load.get('end')} at end"),
        ("mode", fig.mode + (f", {fig.workers} workers" if fig.workers else "")),
        ("URLs x providers", f"{fig.urls} x {len(PROVIDERS)} (+ control); {fig.pairs} pairs judged"),
        ("concurrency / timeout", f"{fig.concurrency} / {fig.timeout_s:g} s every step"),
        ("limits", f"{fig.limits}: " + ("the key left out (config defaults)" if LIMITS[fig.limits] is None
                                        else json.dumps(LIMITS[fig.limits]))),
        ("ISP A's silent drop", fig.drop),
        ("exit code", str(fig.exit_code)),
        ("wall", f"{fig.wall_s:.1f} s"),
        ("pairs/s", f"{fig.pairs_per_s:.1f}"),
        ("CPU (whole process)", f"{fig.cpu_s:.2f} s (user {fig.cpu_user_s:.2f}, sys {fig.cpu_sys_s:.2f})"),
        ("CPU per pair", f"{fig.cpu_ms_per_pair:.2f} ms (control's share included)"),
        ("peak RSS", f"{fig.peak_rss_mb:.0f} MB"),
        ("nginx + unbound CPU", f"{fig.servers_cpu_s:.2f} s (other processes)"),
        ("timed-out pairs", f"{fig.timed_out_pairs} (timed-out attempts {fig.timed_out_probes}: "
                            f"{fig.timed_out_by_step or '-'})"),
        ("lower bound", f"{fig.lower_bound_s:.1f} s = ceil({fig.timed_out_pairs}/{fig.concurrency}) x "
                        f"{fig.timeout_s:g} s (attempts counted: {fig.attempts_bound_s:.1f} s)"),
        ("wall / lower bound", ratio),
    ]  # fmt: skip
    for k, v in rows:
        print(f"{k:<24} {v}")
    if fig.steps:
        print("\nwall time per probe step, ms (timed-out probes excluded)")
        print(f"  {'step':<12} {'n':>8} {'mean':>8} {'p50':>8} {'p95':>8} {'max':>8}")
        for step, s in fig.steps.items():
            print(
                f"  {step:<12} {s['n']:>8.0f} {s['mean']:8.1f} {s['p50']:8.1f} {s['p95']:8.1f} {s['max']:8.1f}"
            )
    print(
        "\nverdicts per provider (planned blocked: "
        + ", ".join(f"{p} {n}" for p, n in fig.planned.items())
        + ")"
    )
    for p, counts in fig.verdicts.items():
        for k, n in counts.items():
            print(f"  {p:<6} {k:<40} {n}")
    print(
        f"  as planned: {fig.pairs - fig.mismatches}/{fig.pairs}"
        + (f"; MISMATCHES: {fig.mismatches}" if fig.mismatches else "")
    )
    for w in fig.wrong[:10]:
        print(f"    {w}")
    if fig.samples:
        print_samples(fig)
    if fig.exit_code not in (0, None) and fig.stderr_tail:
        print(f"\nstderr of the run (tail):\n{fig.stderr_tail}")


# --- main --------------------------------------------------------------------------------------------


def run(args: argparse.Namespace, workdir: Path) -> Figures:
    plan = RealPlan(args.urls)
    in_process = bool(args.profile or args.sample)
    mode = "dig + curl (bench/shell_baseline.sh)" if args.shell else (
        "in-process audit() under " + ("cProfile" if args.profile else "the sampler") if in_process
        else "`auditor run --quiet`, a child process")  # fmt: skip
    config = workdir / "real-config.yaml"
    if args.workers is not None and (in_process or args.shell):
        raise SystemExit("bench.real: --workers goes with the `auditor run` child only")
    # before the lab starts: an engine without --workers fails here, not after a minute of set-up
    command = auditor_command(config, args.workers)
    with shutdown_on_signals(), RealLab(workdir, plan, LabNet(args.net), drop=not args.no_drop) as lab:
        fig = Figures(mode, args.urls, args.concurrency, args.timeout, args.limits, args.workers,
                      drop=f"on: nftables drops {lab.net.source('isp-a')} -> {lab.net.silent}" if lab.dropping
                      else f"SKIPPED: {lab.drop_skipped}", ports=lab.ports, machine=machine_info(),
                      planned=plan.counts(drop=lab.dropping))  # fmt: skip
        lab.write_config(config, limits=args.limits, concurrency=args.concurrency, timeout=args.timeout)
        cpu0 = lab.servers_cpu_seconds()
        if args.shell:
            out = workdir / "shell.out"
            cmd = ["bash", str(SHELL_BASELINE), str(workdir / "jobs.txt"), str(lab.ca_path),
                   str(args.concurrency), f"{args.timeout:g}"]  # fmt: skip
            run_child(cmd, fig, out, workdir / "shell.err")
            fig.servers_cpu_s = lab.servers_cpu_seconds() - cpu0
            analyse_shell(lab, out, fig)
        else:
            if in_process:
                run_in_process(config, fig, args)
            else:
                run_child(command, fig, workdir / "run.out", workdir / "run.err")
            fig.servers_cpu_s = lab.servers_cpu_seconds() - cpu0
            analyse_store(lab, config, fig)
    return fig


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.real", description=__doc__.split("\n\n")[0])
    ap.add_argument("--urls", type=int, default=2000, help="names in the lab and the list (default 2000)")
    ap.add_argument("--concurrency", type=int, default=50)
    ap.add_argument("--timeout", type=float, default=2.0, help="seconds, every probe step (default 2)")
    ap.add_argument("--limits", choices=tuple(LIMITS), default="default",
                    help="default: the `limits` key left out; off: both 0; qps-only: 100 queries/s, no "
                         "per-destination limit; dest-only: 8 per destination, no query rate limit")  # fmt: skip
    ap.add_argument("--workers", type=int, help="passed to `auditor run --workers` (when the engine has it)")
    how = ap.add_mutually_exclusive_group()
    how.add_argument(
        "--profile", metavar="FILE", help="cProfile an in-process run into FILE, print its top costs"
    )
    how.add_argument(
        "--sample", action="store_true", help="sample an in-process run's CPU (about 1%% overhead)"
    )
    how.add_argument(
        "--shell", action="store_true", help="run the dig + curl baseline instead of the auditor"
    )
    ap.add_argument("--net", default="127.0.0", help="the lab's /24 of 127.0.0.0/8 (default 127.0.0)")
    ap.add_argument("--no-drop", action="store_true", help="no nftables drop at ISP A")
    ap.add_argument("--workdir", type=Path, help="keep the lab's configs, logs and store here")
    ap.add_argument("--json", type=Path, help="also write the figures as JSON")
    args = ap.parse_args(argv)
    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
        fig = run(args, args.workdir.resolve())
    else:
        with tempfile.TemporaryDirectory(prefix="auditor-bench-real-") as tmp:
            fig = run(args, Path(tmp))
    print()
    print_figures(fig)
    if args.json:
        derived = {
            "cpu_s": fig.cpu_s,
            "pairs_per_s": fig.pairs_per_s,
            "cpu_ms_per_pair": fig.cpu_ms_per_pair,
            "lower_bound_s": fig.lower_bound_s,
            "attempts_bound_s": fig.attempts_bound_s,
            "ratio": fig.ratio,
        }
        args.json.write_text(json.dumps(asdict(fig) | derived, indent=2) + "\n", encoding="utf-8")
    return 1 if fig.mismatches or fig.exit_code not in (0, None) else 0


if __name__ == "__main__":
    sys.exit(main())
