"""Terminal output: progress observers for `run` and the step-by-step view of `check`. Only this module and
the CLI know about terminals."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from auditor.analyst import ProviderCheck, UrlCheck
from auditor.logs import EventLog
from auditor.models import MeasurementRecord, ProviderHealth, ProviderScore, RunInfo, Verdict
from auditor.observations import EndpointObservation, HopObservation

VERDICT_STYLE = {Verdict.BLOCKED: "green", Verdict.ACCESSIBLE: "bold red", Verdict.INCONCLUSIVE: "yellow"}


class LogObserver:
    """Log lines for cron and pipes: run start, each provider's health, totals. Nothing per URL."""

    def __init__(self, log: EventLog) -> None:
        self.log = log
        self.done = 0
        self.counts = {v: 0 for v in Verdict}

    def run_started(self, run: RunInfo, entries: int, providers: Sequence[str]) -> None:
        self.log.info("run.started", f"run {run.run_id} started: {entries} URLs x {len(providers)} providers",
                      run_id=run.run_id, urls=entries, providers=list(providers))

    def provider_checked(self, health: ProviderHealth) -> None:
        if health.measured:
            self.log.info("provider.healthy", f"provider {health.provider_id}: healthy",
                          run_id=health.run_id, provider_id=health.provider_id)
        else:
            # an unmeasured provider is an error an operator must see, even with --quiet
            self.log.error("provider.not_measured", f"provider {health.provider_id}: not measured: {health.reason}",
                           run_id=health.run_id, provider_id=health.provider_id, reason=health.reason)

    def measured(self, record: MeasurementRecord) -> None:
        self.done += 1
        self.counts[record.judgement.verdict] += 1

    def run_finished(self, run: RunInfo, scores: Sequence[ProviderScore]) -> None:
        c = self.counts
        self.log.info(
            "run.finished",
            f"run {run.run_id} {run.status}: {self.done} measurements, {c[Verdict.BLOCKED]} blocked, "
            f"{c[Verdict.ACCESSIBLE]} accessible, {c[Verdict.INCONCLUSIVE]} inconclusive",
            run_id=run.run_id, status=run.status, measurements=self.done,
            blocked=c[Verdict.BLOCKED], accessible=c[Verdict.ACCESSIBLE], inconclusive=c[Verdict.INCONCLUSIVE],
            compliance={s.provider_id: s.compliance_pct for s in scores},
        )


class ProgressObserver(LogObserver):
    """A progress bar on a terminal, beside the log."""

    def __init__(self, console: Console, log: EventLog) -> None:
        super().__init__(log)
        self.progress = Progress(
            TextColumn("[bold]auditing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            TextColumn("{task.fields[counts]}"), console=console, transient=True,
        )
        self.task: TaskID | None = None

    def run_started(self, run: RunInfo, entries: int, providers: Sequence[str]) -> None:
        super().run_started(run, entries, providers)
        self.progress.start()
        self.task = self.progress.add_task("audit", total=entries * len(providers), counts="")

    def measured(self, record: MeasurementRecord) -> None:
        super().measured(record)
        c = self.counts
        if self.task is None:  # not started
            return
        self.progress.update(
            self.task,
            advance=1,
            counts=f"[green]{c[Verdict.BLOCKED]} blocked[/] [red]{c[Verdict.ACCESSIBLE]} accessible[/] "
            f"[yellow]{c[Verdict.INCONCLUSIVE]} inconclusive[/]",
        )

    def run_finished(self, run: RunInfo, scores: Sequence[ProviderScore]) -> None:
        self.progress.stop()
        super().run_finished(run, scores)


# --- `auditor check` ----------------------------------------------------------------------------------


def render_check(result: ProviderCheck) -> Group:
    parts: list[RenderableType] = [
        Text.assemble(
            ("provider ", "bold"), (result.provider_id, "bold cyan"), f" via {result.vantage}: ",
            ("healthy" if result.measured else f"NOT MEASURABLE: {result.reason}",
             "green" if result.measured else "bold red"),
        )
    ]
    parts += [Text(f"  {check}", style="dim") for check in result.checks]
    for r in result.results:
        parts.append(render_url_check(r))
    return Group(*parts)


def render_url_check(r: UrlCheck) -> Panel:
    table = Table(show_header=True, header_style="bold", expand=True, box=None, pad_edge=False)
    table.add_column("step", style="bold", no_wrap=True)
    table.add_column(f"provider ({r.provider.vantage})", ratio=1)
    table.add_column(f"control ({r.control.vantage})", ratio=1)
    for i in range(max(len(r.provider.hops), len(r.control.hops))):
        ph = r.provider.hops[i] if i < len(r.provider.hops) else None
        ch = r.control.hops[i] if i < len(r.control.hops) else None
        table.add_row(Text(f"hop {i}", style="cyan"), Text(ph.url if ph else "—"), Text(ch.url if ch else "—"))
        for step, pv, cv in zip(("DNS", "connect", "HTTP"), _hop_lines(ph), _hop_lines(ch), strict=True):
            if pv or cv:
                table.add_row(step, pv or "—", cv or "—")
    if r.provider.depth is not None:
        table.add_row("depth", "\n".join(line for line in _hop_lines(r.provider.depth) if line), "(control's addresses)")
    j = r.judgement
    label = j.verdict.value.upper() + (f" ({j.method}, {j.confidence})" if j.method else "")
    verdict = Text.assemble(("verdict: ", "bold"), (label, VERDICT_STYLE[j.verdict]), f"  [{j.rule}]\n", j.evidence)
    return Panel(Group(table, verdict), title=r.url, title_align="left")


def _hop_lines(h: HopObservation | None) -> tuple[str, str, str]:
    if h is None:
        return "", "", ""
    dns_lines: list[str] = []
    if h.dns is not None:
        for q in h.dns.queries:
            answer = ", ".join(q.addresses) if q.addresses else (q.rcode or q.failure or "")
            if q.failure and q.rcode:
                answer = f"{q.rcode}" + (f" ({q.failure})" if q.failure != "dns_no_answer" else " (no address)")
            elif q.failure:
                answer = f"{q.failure}: {q.error}"
            dns_lines.append(f"{q.qtype} @{q.resolver}/{q.transport}: {answer} ({q.elapsed_ms:.0f} ms)")
        if h.dns.attempts > 1:
            dns_lines.append(f"({h.dns.attempts} attempts)")
    connect_lines = [_endpoint_line(e) for e in h.endpoints]
    if h.tls_check is not None:
        connect_lines.append("443 check: " + _endpoint_line(h.tls_check))
    if h.not_followed:
        connect_lines.append(f"not dialed: {h.not_followed}")
    http_line = ""
    if h.http is not None:
        x = h.http
        if x.failure:
            http_line = f"{x.failure}: {x.error} ({x.elapsed_ms:.0f} ms)"
        else:
            http_line = (
                f"{x.status} {x.reason}" + (f" → {x.location}" if x.location else "")
                + (f"\ntitle '{x.title}'" if x.title else "")
                + f"\n{x.body_length}{'+' if x.truncated else ''} B, sha256 {x.body_sha256[:12]}… ({x.elapsed_ms:.0f} ms)"
                + (f"\nfingerprints: {', '.join(x.fingerprints)}" if x.fingerprints else "")
            )
        if h.http_attempts > 1:
            http_line += f"\n({h.http_attempts} attempts)"
    return "\n".join(dns_lines), "\n".join(connect_lines), http_line


def _endpoint_line(e: EndpointObservation) -> str:
    tcp = f"TCP {e.ip}:{e.port} " + (f"{e.tcp.failure}" if e.tcp.failure else "ok") + f" ({e.tcp.elapsed_ms:.0f} ms)"
    if e.tls is None:
        return tcp + (f" x{e.attempts}" if e.attempts > 1 else "")
    t = e.tls
    if t.failure:
        tls = f"TLS {t.failure}: {t.error[:80]}"
        if t.certificate:
            tls += f"\n  cert {t.certificate.subject} issued by {t.certificate.issuer}"
    else:
        cert = t.certificate
        tls = f"TLS ok {t.version}" + (f", cert issued by {cert.issuer}" if cert else "")
    return f"{tcp}\n{tls} ({t.elapsed_ms:.0f} ms)" + (f" x{e.attempts}" if e.attempts > 1 else "")
