"""The benchmark: start the bulk lab in a process of its own, run the real engine on it, print the figures.

    python -m bench.run --urls 1000 --providers 6 --concurrency 200 [--timeout 2] [--profile out.prof]
    python -m bench.run --urls 1000 --providers 6 --workers 2     # measured by 2 worker processes
    python -m bench.run --load-list 100000        # only: write a 100k-URL list, time reading + validating it

Figures: measurements/s, engine CPU per measurement (getrusage of this process, which runs only the engine,
plus its worker processes with --workers: the simulated network is another child process, whose CPU is shown
apart), peak RSS, timed-out probes and the
wall / lower-bound ratio, wall time per probe step (from the stored observations), and every verdict
checked against the bulk lab's plan. The lab and the engine share the machine's cores.

A "measurement" is one (provider, URL) pair, as in the issue's 10,000 URLs x 6 providers = 60,000; the
control measurement of each URL is part of the cost of those pairs.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import math
import os
import platform
import pstats
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections import Counter, defaultdict
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from auditor.audit import audit
from auditor.config import load_config
from auditor.lists import read_list, read_lists
from auditor.models import Judgement, MeasurementRecord, ProviderHealth, ProviderScore, RunInfo
from auditor.observations import UrlObservation
from auditor.store import open_store
from auditor.store.interface import Store
from bench.bulk_lab import BulkPlan, index_of, write_list
from bench.sampler import Sampler
from probes import base

REPO = Path(__file__).resolve().parent.parent
TIMEOUT_FAILURE = "generic_timeout_error"  # probes.base.Failure.GENERIC_TIMEOUT, as stored
STEPS = ("dns", "tcp", "tls", "http", "measurement")
T = TypeVar("T")
# one probe step's observation: each has a failure (None when it worked) and its elapsed_ms
ProbeObservation = base.DnsObservation | base.TcpObservation | base.TlsObservation | base.HttpObservation
# pstats.Stats.stats (undocumented, so typeshed leaves it out): function -> (primitive calls, calls, own
# time, cumulative time, callers: function -> the same four figures for the calls from it)
_Func = tuple[str, int, str]  # file, first line, name
_RawStats = dict[_Func, tuple[int, int, float, float, dict[_Func, tuple[int, int, float, float]]]]


@dataclass
class Figures:
    urls: int
    providers: int
    concurrency: int
    timeout_s: float
    workers: int = 1
    worker_cpu_s: float = 0.0  # of engine_cpu_s: the worker processes' (--workers 2 and more)
    worker_peak_rss_mb: float = 0.0
    measurements: int = 0  # (provider, URL) pairs stored
    vantage_measurements: int = 0  # the same plus control's one per URL
    wall_s: float = 0.0
    engine_cpu_s: float = 0.0
    engine_user_s: float = 0.0
    engine_sys_s: float = 0.0
    lab_cpu_s: float | None = None
    rss_before_mb: float = 0.0
    peak_rss_mb: float = 0.0
    list_load_s: float = 0.0
    timed_out_probes: int = 0
    timed_out_by_step: dict[str, int] = field(default_factory=dict)
    lower_bound_s: float = 0.0
    verdicts: dict[str, int] = field(default_factory=dict)  # "provider verdict/method" -> count
    wrong: list[str] = field(default_factory=list)  # the first 1,000
    wrong_count: int = 0
    internal_errors: dict[str, int] = field(default_factory=dict)  # full traceback -> how many
    steps: dict[str, dict[str, float]] = field(
        default_factory=dict
    )  # step -> n, mean, p50, p95, p99, max (ms)
    timeline: dict[str, float] = field(default_factory=dict)  # seconds from the start of run_audit
    cpu_by_area: dict[str, float] = field(
        default_factory=dict
    )  # --sample: share of engine CPU, innermost frame
    cpu_by_step: dict[str, float] = field(default_factory=dict)  # --sample: share of engine CPU under a step
    cpu_top: list[tuple[str, float]] = field(default_factory=list)  # --sample: innermost frames, share
    samples: int = 0
    loop: str = "asyncio"
    politeness: bool = False
    machine: dict[str, str] = field(default_factory=dict)

    @property
    def per_second(self) -> float:
        return self.measurements / self.wall_s if self.wall_s else 0.0

    @property
    def cpu_ms_per_measurement(self) -> float:
        return 1000 * self.engine_cpu_s / self.measurements if self.measurements else 0.0

    @property
    def ratio(self) -> float | None:
        return self.wall_s / self.lower_bound_s if self.lower_bound_s else None


# --- the lab process ---------------------------------------------------------------------------------


class LabProcess:
    """`python -m bench.bulk_lab` as a child: started, waited for, stopped by closing its stdin."""

    def __init__(self, workdir: Path, args: argparse.Namespace) -> None:
        cmd = [
            sys.executable, "-m", "bench.bulk_lab", "--workdir", str(workdir), "--sites", str(args.urls),
            "--providers", str(args.providers), "--concurrency", str(args.concurrency),
            "--timeout", str(args.timeout), "--blackhole-share", str(args.blackhole_share),
            "--nxdomain-share", str(args.nxdomain_share), "--snireset-share", str(args.snireset_share),
        ] + (["--politeness"] if args.politeness else [])  # fmt: skip
        self.proc = subprocess.Popen(cmd, cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("READY "):
            self.stop()
            raise RuntimeError(f"the bulk lab did not start (said {line!r}, exit {self.proc.returncode})")
        self.config_path = Path(line.split(" ", 1)[1].strip())

    def cpu_seconds(self) -> float | None:
        """user + system CPU of the lab process so far (Linux /proc), or None."""
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


# --- the run ------------------------------------------------------------------------------------------


class Timeline:
    """An engine observer that notes when the health checks end and when each share of the pairs is done."""

    def __init__(self, total: int, *, memory: bool = False) -> None:
        self.t0 = time.perf_counter()
        self.total = total
        self.done = 0
        self.marks: dict[str, float] = {}
        self.memory = memory  # tracemalloc is on: snapshot what the run holds just before it returns
        self.snapshot: tracemalloc.Snapshot | None = None

    def _mark(self, name: str) -> None:
        self.marks.setdefault(name, round(time.perf_counter() - self.t0, 2))

    def run_started(self, run: RunInfo, entries: int, providers: Sequence[str]) -> None:
        self._mark("run started")

    def provider_checked(self, health: ProviderHealth) -> None:
        self._mark("health checks done")  # the engine reports them together, after all are done

    def measured(self, record: MeasurementRecord) -> None:
        self.done += 1
        if self.done == 1:
            self._mark("first pair stored")
        for share in (0.5, 0.9, 0.99):
            if self.done == math.ceil(share * self.total):
                self._mark(f"{share:.0%} of pairs stored")
        if self.done == self.total:
            self._mark("all pairs stored")

    def run_finished(self, run: RunInfo, scores: Sequence[ProviderScore]) -> None:
        self._mark("run finished (scored)")
        if self.memory:
            self.snapshot = tracemalloc.take_snapshot()


def _catch_internal_errors(fig: Figures) -> None:
    """The engine records a bug met on one URL as inconclusive `internal.error` with its last frame only;
    keep the whole traceback here (by wrapping the engine's recorder) so the benchmark can show it."""
    import traceback

    from auditor import scheduler

    original: Callable[[Exception, str], Judgement] | None = getattr(scheduler, "internal_error", None)
    if original is None:  # the engine changed: nothing to wrap
        return

    def keep(exc: Exception, where: str) -> Judgement:
        tb = "".join(traceback.format_exception(exc)).rstrip()
        key = next((k for k in fig.internal_errors if k.splitlines()[-1] == tb.splitlines()[-1]), tb)
        fig.internal_errors[key] = fig.internal_errors.get(key, 0) + 1
        return original(exc, where)

    scheduler.internal_error = keep


def run_bench(args: argparse.Namespace, workdir: Path) -> Figures:
    _raise_file_limit()
    fig = Figures(
        args.urls,
        args.providers,
        args.concurrency,
        args.timeout,
        args.workers,
        machine=machine_info(),
        loop=args.loop,
        politeness=args.politeness,
    )
    plan = BulkPlan(args.urls, args.providers, args.blackhole_share, args.nxdomain_share, args.snireset_share)
    _catch_internal_errors(fig)
    lab = LabProcess(workdir, args)
    try:
        config = load_config(lab.config_path)
        t = time.perf_counter()
        lists = read_lists(config.lists)
        fig.list_load_s = time.perf_counter() - t
        fig.rss_before_mb = _maxrss_mb()
        store = open_store(config.store)
        profiler = (
            cProfile.Profile(time.process_time) if args.profile else None
        )  # CPU, not wall: the machine is shared
        lab_cpu0 = lab.cpu_seconds()
        ru0 = resource.getrusage(resource.RUSAGE_SELF)
        # the workers, once joined (the lab is a child too, but still running here: it is not counted)
        kids0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        timeline = Timeline(len(lists.entries) * len(config.providers), memory=args.memory)
        if args.memory:
            tracemalloc.start()
        t0 = timeline.t0 = time.perf_counter()
        sampler = Sampler() if args.sample else None
        if profiler is not None:
            profiler.enable()
        if sampler is not None:
            sampler.start()
        result = _run(audit(config, store, timeline, lists=lists, workers=args.workers), args.loop)
        if sampler is not None:
            sampler.stop()
            fig.samples = sampler.samples
            total = max(1, sampler.samples)
            fig.cpu_by_area = {k: n / total for k, n in sampler.share_own(_area).most_common()}
            within = sampler.share_within(STEP_MARKERS)
            fig.cpu_by_step = {k: within[k] / total for k in STEP_MARKERS}
            fig.cpu_top = [(_where(*key), n / total) for key, n in sampler.own.most_common(25)]
        if profiler is not None:
            profiler.disable()
        if timeline.snapshot is not None:
            tracemalloc.stop()
            print_memory(timeline.snapshot)
        fig.wall_s = time.perf_counter() - t0
        ru1 = resource.getrusage(resource.RUSAGE_SELF)
        kids1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        lab_cpu1 = lab.cpu_seconds()
        fig.peak_rss_mb = _maxrss_mb()
        fig.timeline = timeline.marks
        fig.machine["load_average_1m_at_end"] = f"{os.getloadavg()[0]:.2f}"
        fig.worker_cpu_s = (kids1.ru_utime - kids0.ru_utime) + (kids1.ru_stime - kids0.ru_stime)
        fig.worker_peak_rss_mb = kids1.ru_maxrss / 1024 if args.workers > 1 else 0.0
        fig.engine_user_s = ru1.ru_utime - ru0.ru_utime + kids1.ru_utime - kids0.ru_utime
        fig.engine_sys_s = ru1.ru_stime - ru0.ru_stime + kids1.ru_stime - kids0.ru_stime
        fig.engine_cpu_s = fig.engine_user_s + fig.engine_sys_s
        if lab_cpu0 is not None and lab_cpu1 is not None:
            fig.lab_cpu_s = lab_cpu1 - lab_cpu0
    finally:
        lab.stop()
    try:
        unmeasured = [f"{h.provider_id}: {h.reason}" for h in result.health if not h.measured]
        fig.wrong += [f"provider not measured: {u}" for u in unmeasured]
        analyse(fig, plan, store, result.run.run_id, config.concurrency)
    finally:
        store.close()
    if profiler is not None:
        profiler.dump_stats(args.profile)
        print_profile(pstats.Stats(profiler), args.profile)
    return fig


def analyse(fig: Figures, plan: BulkPlan, store: Store, run_id: str, concurrency: int) -> None:
    """Verdicts against the plan; probe-step wall times and timed-out probes from the stored observations."""
    roles = dict(plan.provider_roles())
    samples: dict[str, list[float]] = defaultdict(list)
    timed_out: Counter[str] = Counter()
    verdicts: Counter[str] = Counter()
    urls: set[str] = set()
    for rec in store.iter_measurements(run_id):
        fig.measurements += 1
        urls.add(rec.entry.url)
        j = rec.judgement
        verdicts[f"{rec.provider_id:<10} {j.verdict}{'/' + str(j.method) if j.method else ''}"] += 1
        i = index_of(rec.entry.url)
        want = plan.expected(roles.get(rec.provider_id, "clean"), i if i is not None else -1)
        got = (str(j.verdict), str(j.method) if j.method else "", j.rule if want.rule else "")
        if got != (want.verdict, want.method, want.rule):
            fig.wrong_count += 1
            if len(fig.wrong) < 1000:
                fig.wrong.append(f"{rec.provider_id} {rec.entry.url}: {j.verdict} {j.rule} ({j.evidence})")
        if rec.observation is not None:
            _walk(rec.observation, samples, timed_out)
    for url in urls:
        control = store.control_observation(run_id, url)
        if control is not None:
            fig.vantage_measurements += 1
            _walk(control, samples, timed_out)
    fig.vantage_measurements += fig.measurements
    fig.verdicts = dict(sorted(verdicts.items()))
    fig.timed_out_by_step = dict(timed_out)
    fig.timed_out_probes = sum(timed_out.values())
    # every step has the same timeout here, so the bound is exact: the timed-out probes must each hold one
    # of `concurrency` slots for the whole timeout
    fig.lower_bound_s = math.ceil(fig.timed_out_probes / concurrency) * fig.timeout_s
    fig.steps = {s: _summary(samples[s]) for s in STEPS if samples[s]}


def _walk(obs: UrlObservation, samples: dict[str, list[float]], timed_out: Counter[str]) -> None:
    samples["measurement"].append(obs.elapsed_ms)

    def probe(step: str, o: ProbeObservation | None) -> None:
        if o is None:
            return
        if o.failure == TIMEOUT_FAILURE:
            timed_out[step] += 1
        else:
            samples[step].append(o.elapsed_ms)

    hops = list(obs.hops) + ([obs.depth] if obs.depth else [])
    for hop in hops:
        if hop.dns:
            for q in hop.dns.queries:
                probe("dns", q)
        endpoints = list(hop.endpoints) + ([hop.tls_check] if hop.tls_check else [])
        for e in endpoints:
            # a timeout (at connect, TLS or HTTP) is retried: every attempt before the recorded one timed out
            timed_out["retried"] += e.attempts - 1
            probe("tcp", e.tcp)
            probe("tls", e.tls)
        probe("http", hop.http)


def _summary(values: list[float]) -> dict[str, float]:
    values = sorted(values)

    def pct(p: float) -> float:
        return values[min(len(values) - 1, int(p * len(values)))]

    return {"n": len(values), "mean": statistics.fmean(values), "p50": pct(0.5), "p95": pct(0.95),
            "p99": pct(0.99), "max": values[-1]}  # fmt: skip


# --- the profile --------------------------------------------------------------------------------------

# --sample: the engine's CPU under each of these functions (a function and the probes it calls)
STEP_MARKERS: dict[str, tuple[tuple[str, str], ...]] = {
    "DNS query (with its SOCKS dial)": (("probes/dns.py", "query"),),
    "TCP connect (SOCKS dial)": (("probes/tcp.py", "connect"),),
    "TLS handshake": (("probes/tls.py", "handshake"), ("probes/tls.py", "fetch_unverified_certificate")),
    "HTTP GET (request, 64 KiB prefix)": (("probes/http.py", "get"),),
    "  of these: SOCKS dials (python-socks)": (("probes/dialers.py", "connect"),),
    "verdict (judge)": (("auditor/verdict.py", "judge"),),
    "store (record_*, JSON)": (("auditor/store/sqlite.py", "record_measurement"),
                               ("auditor/store/sqlite.py", "record_control")),
    "  of these: observations to JSON (auditor.codec)": (("auditor/codec.py", "encode"),),
    "scoring and analysis (end of run)": (("auditor/audit.py", "analyse_run"),),
}  # fmt: skip

# where a function's own time goes; the first matching rule wins (builtins have no file: match their name)
_AREAS = (
    ("ssl (OpenSSL via _ssl)", ("/ssl.py", "_ssl.", "sslproto.py")),
    ("sqlite3", ("sqlite3",)),
    ("python-socks", ("python_socks",)),
    ("dnspython", ("/dns/",)),
    ("h11", ("/h11/",)),
    ("json", ("/json/", "_json")),
    ("msgspec (observations to JSON)", ("msgspec",)),
    ("dataclasses (asdict, replace)", ("dataclasses.py",)),
    ("idna", ("/idna/",)),
    ("asyncio + selectors + sockets", ("/asyncio/", "selectors.py", "select.epoll", "_socket.", "socket.py")),
)


def _area(filename: str, func: str) -> str:
    text = f"{filename} {func}"
    if filename.startswith((str(REPO / "auditor"), str(REPO / "probes"))):
        return "our code (auditor/, probes/)"
    for name, needles in _AREAS:
        if any(n in text for n in needles):
            return name
    return "other (stdlib, builtins)"


def print_profile(stats: pstats.Stats, path: str) -> None:
    raw: _RawStats = vars(stats)["stats"]
    total = sum(v[2] for v in raw.values())
    by_area: dict[str, float] = defaultdict(float)  # seconds: a Counter counts ints
    for (filename, _line, func), (_cc, _nc, tt, _ct, _callers) in raw.items():
        by_area[_area(filename, func)] += tt
    print(
        f"\nprofile ({path}): {total:.2f} s of CPU in the engine process (profiled), by where its own time is spent"
    )
    for area, tt in sorted(by_area.items(), key=lambda kv: kv[1], reverse=True):  # as Counter.most_common
        print(f"  {area:<34} {tt:8.2f} s  {100 * tt / total:5.1f} %")
    ours = [(k, v) for k, v in raw.items() if _area(k[0], k[2]).startswith("our code")]
    ours.sort(key=lambda kv: kv[1][3], reverse=True)
    print("\ntop 25 of our functions by cumulative time (s):")
    print(f"  {'calls':>9} {'own':>8} {'cumul':>8}  function")
    for (filename, line, func), (_cc, nc, tt, ct, _callers) in ours[:25]:
        rel = os.path.relpath(filename, REPO)
        print(f"  {nc:>9} {tt:8.2f} {ct:8.2f}  {rel}:{line} {func}")
    print("\ntop 15 functions anywhere by own time (s):")
    for (filename, line, func), (_cc, nc, tt, _ct, _callers) in sorted(raw.items(), key=lambda kv: -kv[1][2])[
        :15
    ]:
        print(f"  {nc:>9} {tt:8.2f}  {_where(filename, line, func)}")


def _where(filename: str, line: int, func: str) -> str:
    if filename.startswith(str(REPO)):
        where = os.path.relpath(filename, REPO)
    else:  # site-packages/dns/message.py -> dns/message.py; a stdlib module by its last two parts
        parts = Path(filename).parts
        where = "/".join(
            parts[parts.index("site-packages") + 1 :] if "site-packages" in parts else parts[-2:]
        )
    return f"{where}:{line} {func}"


def print_memory(snapshot: tracemalloc.Snapshot) -> None:
    stats = snapshot.statistics("lineno")
    total = sum(st.size for st in stats)
    print(
        f"\nmemory held by Python objects as the run ends: {total / 2**20:.1f} MiB; the largest allocation sites:"
    )
    for st in stats[:12]:
        frame = st.traceback[0]
        print(
            f"  {st.size / 2**20:8.1f} MiB {st.count:>9} blocks  {_where(frame.filename, frame.lineno, '')}"
        )


# --- list loading -------------------------------------------------------------------------------------


def bench_list_load(n: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="auditor-bench-list-") as tmp:
        path = Path(tmp) / "big-list.csv"
        write_list(path, n)
        ru0 = resource.getrusage(resource.RUSAGE_SELF)
        t = time.perf_counter()
        result = read_list(path)
        wall = time.perf_counter() - t
        ru1 = resource.getrusage(resource.RUSAGE_SELF)
        assert len(result.entries) == n and not result.issues, (len(result.entries), result.issues[:3])
        return {"urls": n, "wall_s": wall, "cpu_s": ru1.ru_utime + ru1.ru_stime - ru0.ru_utime - ru0.ru_stime,
                "peak_rss_mb": _maxrss_mb(), "bytes": path.stat().st_size}  # fmt: skip


# --- output -------------------------------------------------------------------------------------------


def print_figures(fig: Figures) -> None:
    lab = f"{fig.lab_cpu_s:.1f} s" if fig.lab_cpu_s is not None else "n/a"
    ratio = f"{fig.ratio:.2f}" if fig.ratio is not None else "n/a (no timeouts)"
    m = fig.machine
    rows = [
        ("machine", (f"{m['cpus']} CPUs, Python {m['python']}, commit {m['commit']}, {m['date']}, load average "
                    f"{m['load_average_1m_at_start']} at start, {m.get('load_average_1m_at_end', '?')} at end")),
        ("URLs x providers", f"{fig.urls} x {fig.providers} (+ control)"),
        ("measurements", f"{fig.measurements} pairs ({fig.vantage_measurements} with control's)"),
        ("concurrency / timeout", f"{fig.concurrency} / {fig.timeout_s:g} s every step"),
        ("event loop, politeness", f"{fig.loop}, {'default limits' if fig.politeness else 'limits off'}"),
        ("wall", f"{fig.wall_s:.1f} s"),
        ("measurements/s", f"{fig.per_second:.1f}"),
        ("workers", f"{fig.workers}" + ("" if fig.workers < 2 else " processes (+ the run's own: health, store)")),
        ("engine CPU", f"{fig.engine_cpu_s:.1f} s (user {fig.engine_user_s:.1f}, sys {fig.engine_sys_s:.1f})"
                       + ("" if fig.workers < 2 else f"; of it the workers {fig.worker_cpu_s:.1f} s")),
        ("engine CPU per measurement", f"{fig.cpu_ms_per_measurement:.2f} ms"),
        ("lab CPU (other process)", lab),
        ("peak RSS (engine process)", f"{fig.peak_rss_mb:.0f} MB (before the run: {fig.rss_before_mb:.0f} MB)"
                                      + ("" if fig.workers < 2 else f"; a worker's at most {fig.worker_peak_rss_mb:.0f} MB")),
        ("list load + validate", f"{fig.list_load_s:.2f} s"),
        ("timed-out probes", f"{fig.timed_out_probes} {dict(sorted(fig.timed_out_by_step.items()))}"),
        ("lower bound", f"{fig.lower_bound_s:.1f} s = ceil({fig.timed_out_probes}/{fig.concurrency}) x {fig.timeout_s:g}"),
        ("wall / lower bound", ratio),
        ("engine busy", f"{100 * fig.engine_cpu_s / fig.wall_s:.0f} % of the wall time (CPU / wall; 100 % = one core)"),
    ]  # fmt: skip
    for k, v in rows:
        print(f"{k:<28} {v}")
    print("\ntimeline (s): " + ", ".join(f"{k} {v:g}" for k, v in fig.timeline.items()))
    print("\nwall time per probe step, ms (timed-out probes excluded; includes waiting for the event loop)")
    print(f"  {'step':<12} {'n':>8} {'mean':>8} {'p50':>8} {'p95':>8} {'p99':>8} {'max':>8}")
    for step, s in fig.steps.items():
        print(
            f"  {step:<12} {s['n']:>8} {s['mean']:8.1f} {s['p50']:8.1f} {s['p95']:8.1f} {s['p99']:8.1f} {s['max']:8.1f}"
        )
    if fig.samples:
        per = 1000 * fig.engine_cpu_s / fig.measurements if fig.measurements else 0.0
        print(f"\nengine CPU by area ({fig.samples} samples, one per ms of CPU; the innermost Python frame)")
        for k, share in fig.cpu_by_area.items():
            print(f"  {k:<36} {100 * share:5.1f} %  {share * per:6.3f} ms per measurement")
        print(
            "engine CPU run from each step's own coroutine (what it awaits directly; transport callbacks, such as\n"
            "OpenSSL processing the records of a handshake, run from the event loop and count only in the areas)"
        )
        for k, share in fig.cpu_by_step.items():
            print(f"  {k:<36} {100 * share:5.1f} %  {share * per:6.3f} ms per measurement")
        print("innermost frames with the most samples")
        for where, share in fig.cpu_top:
            print(f"  {100 * share:5.1f} %  {where}")
    print("\nverdicts")
    for k, n in fig.verdicts.items():
        print(f"  {k:<28} {n}")
    print(f"  as planned: {fig.measurements - fig.wrong_count}/{fig.measurements}"
          + ("" if not fig.wrong_count else f"; WRONG: {fig.wrong_count}"))  # fmt: skip
    for w in fig.wrong[:10]:
        print(f"    {w}")
    for tb, n in fig.internal_errors.items():
        print(f"\ninternal error, {n} times; traceback of the first:\n{tb}")


def machine_info() -> dict[str, str]:
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, check=False
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO, capture_output=True, text=True,
        check=False,
    ).stdout.strip()  # fmt: skip
    return {
        "cpus": str(os.cpu_count()),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "commit": commit + ("+dirty" if dirty else ""),
        "date": time.strftime("%Y-%m-%d"),
        "load_average_1m_at_start": f"{os.getloadavg()[0]:.2f}",  # the machine is shared: was it busy?
    }


def _run(coro: Coroutine[Any, Any, T], loop: str) -> T:
    if loop == "uvloop":  # an experiment: uvloop is not a dependency (pip install uvloop to try it)
        import uvloop

        return uvloop.run(coro)
    return asyncio.run(coro)


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _raise_file_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    ap.add_argument("--urls", type=int, default=1000)
    ap.add_argument("--providers", type=int, default=6)
    ap.add_argument("--concurrency", type=int, default=200)
    ap.add_argument("--timeout", type=float, default=2.0, help="seconds, every probe step (default 2)")
    ap.add_argument("--workers", type=int, default=1,
                    help="worker processes that measure (auditor run --workers); --sample and --profile see only "
                    "the run's own process when this is 2 or more")  # fmt: skip
    ap.add_argument("--blackhole-share", type=float, default=0.05)
    ap.add_argument("--nxdomain-share", type=float, default=0.10)
    ap.add_argument("--snireset-share", type=float, default=0.10, help="of the https sites")
    ap.add_argument(
        "--politeness", action="store_true",
        help="keep the config's default politeness limits (100 DNS queries/s per resolver, 8 connections per "
        "address); off by default, to measure the engine rather than the limit",
    )  # fmt: skip
    ap.add_argument(
        "--loop", choices=("asyncio", "uvloop"), default="asyncio", help="the engine's event loop"
    )
    ap.add_argument(
        "--sample", action="store_true", help="sample the engine's CPU (about 1%% overhead) by area and step"
    )
    ap.add_argument("--memory", action="store_true", help="tracemalloc: what the run holds as it ends (slow)")
    ap.add_argument("--profile", metavar="FILE", help="cProfile the engine into FILE and print its top costs")
    ap.add_argument("--workdir", type=Path, help="keep the lab's config, list and store here")
    ap.add_argument("--json", type=Path, help="also write the figures as JSON")
    ap.add_argument(
        "--load-list", type=int, metavar="N", help="only time reading and validating an N-URL list"
    )
    args = ap.parse_args(argv)
    if args.load_list:
        out = bench_list_load(args.load_list)
        print(
            f"list of {out['urls']} URLs ({out['bytes'] / 1e6:.1f} MB): read + validated in {out['wall_s']:.2f} s "
            f"wall, {out['cpu_s']:.2f} s CPU, peak RSS {out['peak_rss_mb']:.0f} MB"
        )
        return 0
    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
        fig = run_bench(args, args.workdir)
    else:
        with tempfile.TemporaryDirectory(prefix="auditor-bench-") as tmp:
            fig = run_bench(args, Path(tmp))
    print()
    print_figures(fig)
    if args.json:
        data = asdict(fig) | {"per_second": fig.per_second, "cpu_ms_per_measurement": fig.cpu_ms_per_measurement,
                              "ratio": fig.ratio}  # fmt: skip
        args.json.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return 1 if fig.wrong_count else 0


if __name__ == "__main__":
    sys.exit(main())
