"""The `auditor` command: a thin layer that turns options into library calls and outcomes into exit codes.

Exit codes (auditor.errors.ExitStatus): 0 complete; 1 internal error; 2 bad usage, config, list or store;
3 some provider (or the control) could not be measured; 4 `lab` found a case judged otherwise than expected;
5 `lists validate` found rows that would be skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import functools
import sys
import tempfile
import traceback
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from auditor.config import Config, load_config
from auditor.errors import AuditorError, ExitStatus, UsageError
from auditor.lists import ListSet, format_validation_report, read_list, read_lists
from auditor.report.interface import ReportFormat

if TYPE_CHECKING:  # imported where used: the CLI's start-up stays light
    from auditor.console import LogObserver
    from auditor.logs import EventLog

app = typer.Typer(
    name="auditor",
    help="Content-filter compliance auditor: does every provider really block the listed URLs?",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
)
lists_app = typer.Typer(help="Reference lists.", no_args_is_help=True)
app.add_typer(lists_app, name="lists")
evidence_app = typer.Typer(help="Signed evidence records of a run, for a dispute.", no_args_is_help=True)
app.add_typer(evidence_app, name="evidence")

ConfigOption = Annotated[Path, typer.Option("-c", "--config", help="Config file (YAML).")]
DEFAULT_CONFIG = Path("config.yaml")


class Lang(str, enum.Enum):
    en = "en"
    vi = "vi"


class CsvHeaders(str, enum.Enum):
    contract = "contract"
    vi = "vi"


def _boundary(command: Callable[..., int | None]) -> Callable[..., None]:
    """The one place where exceptions become messages and exit codes (a command returns its ExitStatus)."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        try:
            status = command(*args, **kwargs)
        except typer.Exit:
            raise
        except AuditorError as exc:
            console = _err()
            console.print(f"auditor: error: {exc}", markup=False, highlight=False)
            if exc.hint:
                console.print(f"hint: {exc.hint}", markup=False, highlight=False)
            raise typer.Exit(int(exc.exit_status)) from None
        except KeyboardInterrupt:
            _err().print("auditor: interrupted", markup=False)
            raise typer.Exit(130) from None
        except Exception:  # noqa: BLE001 - a bug, reported as one
            traceback.print_exc()
            _err().print("auditor: internal error (a bug): please report it with the traceback above", markup=False)
            raise typer.Exit(int(ExitStatus.INTERNAL_ERROR)) from None
        raise typer.Exit(int(status or 0))

    return wrapper


def _out() -> Console:
    # a pipe or a log file gets wide tables rather than 80 columns of wrapped cells
    return Console(file=sys.stdout, width=None if sys.stdout.isatty() else 150)


def _err() -> Console:
    return Console(file=sys.stderr, soft_wrap=True)  # messages stay whole lines, for logs and grep


def _load_lists(config: Config, quiet: bool, log: EventLog | None = None) -> ListSet:
    lists = read_lists(config.lists)
    if lists.issues and not quiet:
        if log is None:
            from auditor.logs import EventLog

            log = EventLog(sys.stderr)
        skipped = sum(r.skipped for r in lists.results)
        log.warning("lists.skipped", f"{skipped} list rows skipped, {len(lists.issues) - skipped} warnings "
                    "(see `auditor lists validate`)", skipped=skipped)
        secret = {str(p) for p in config.sensitive.lists}
        for issue in lists.issues[:20]:
            # a sensitive list's rows never reach a log, not even as an error message quoting them
            text = f"{issue.file}:{issue.line}: row skipped (sensitive list: details withheld)" if issue.file in secret else str(issue)
            log.warning("lists.skipped_row", f"  {text}")
    if not lists.entries:
        raise UsageError("the reference lists hold no valid URL: nothing to audit")
    return lists


class LogFormat(str, enum.Enum):
    text = "text"
    json = "json"


def _event_log(log_format: LogFormat, log_file: Path | None, quiet: bool, stack: contextlib.ExitStack) -> EventLog:
    from auditor.logs import EventLog

    stream = sys.stderr
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        stream = stack.enter_context(log_file.open("a", encoding="utf-8"))
    return EventLog(stream, log_format.value, quiet=quiet)


def _observer(log: EventLog, quiet: bool, to_file: bool) -> LogObserver:
    from auditor.console import LogObserver, ProgressObserver

    err = _err()
    if err.is_terminal and not quiet and not to_file:
        return ProgressObserver(err, log)
    return LogObserver(log)


@app.command()
@_boundary
def run(
    config: ConfigOption = DEFAULT_CONFIG,
    provider: Annotated[list[str], typer.Option("--provider", help="Audit only this provider (repeatable).")] = [],  # noqa: B006
    out: Annotated[Path | None, typer.Option("--out", help="Directory for the CSVs (default: output_dir).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="Print only errors (for cron).")] = False,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the latest unfinished run (or start one).")] = False,
    log_format: Annotated[LogFormat, typer.Option("--log-format", help="text or json lines.")] = LogFormat.text,
    log_file: Annotated[Path | None, typer.Option("--log-file", help="Append the log here, not to stderr.")] = None,
    workers: Annotated[int | None, typer.Option(
        "--workers", min=1, help="Processes that share the measuring, and the politeness limits (default: the "
        "machine's cores).")] = None,
) -> int:
    """Audit every provider (the nightly job): measure, judge, store, write the ministry CSVs."""
    from auditor.report.table import render_summary_table
    from auditor.unattended import audit_unattended
    from auditor.workers import default_workers

    cfg = load_config(config)
    unknown = [p for p in provider if cfg.provider(p) is None]
    if unknown:
        raise UsageError(
            f"unknown provider {', '.join(unknown)}; configured: {', '.join(p.id for p in cfg.providers)}"
        )
    with contextlib.ExitStack() as stack:
        log = _event_log(log_format, log_file, quiet, stack)
        lists = _load_lists(cfg, quiet, log)
        observer = _observer(log, quiet, log_file is not None)
        result = audit_unattended(cfg, lists, observer, log, provider_ids=provider, out_dir=out, resume=resume,
                                  workers=workers or default_workers())
    if not quiet:
        _out().print(render_summary_table(result.scores, result.run))
    if result.run.status != "complete":
        return ExitStatus.INTERRUPTED
    return ExitStatus.OK if result.all_measured else ExitStatus.NOT_MEASURED


@app.command()
@_boundary
def check(
    provider: Annotated[str, typer.Argument(help="Provider id from the config.")],
    urls: Annotated[list[str], typer.Argument(help="URLs to check (default: every listed URL).")] = [],  # noqa: B006
    config: ConfigOption = DEFAULT_CONFIG,
) -> int:
    """For an analyst: every step of every probe at one provider beside control, and why the verdict."""
    from auditor.analyst import check_provider_urls
    from auditor.console import render_check
    from auditor.urls import UrlError, normalise_url

    cfg = load_config(config)
    if cfg.provider(provider) is None:
        raise UsageError(f"unknown provider {provider!r}; configured: {', '.join(p.id for p in cfg.providers)}")
    targets: list[str] = []
    for u in urls:
        try:
            targets.append(normalise_url(u).url)
        except UrlError as exc:
            raise UsageError(f"{u!r} is not a URL to check: {exc}") from exc
    from auditor.sensitive import is_sensitive

    entries = _load_lists(cfg, quiet=False).entries
    if not targets:
        targets = [e.url for e in entries]
    withheld = {e.url for e in entries if is_sensitive(cfg, e)}  # their content is never read, here neither
    result = asyncio.run(check_provider_urls(cfg, provider, targets, sensitive=withheld))
    _out().print(render_check(result))
    return ExitStatus.OK if result.measured else ExitStatus.NOT_MEASURED


@app.command()
@_boundary
def report(
    config: ConfigOption = DEFAULT_CONFIG,
    run_id: Annotated[str, typer.Option("--run", help="Run id, or 'latest'.")] = "latest",
    fmt: Annotated[ReportFormat, typer.Option("--format", help="table, csv (summary), json or html.")] = ReportFormat.table,
    lang: Annotated[Lang, typer.Option("--lang", help="Labels in table and html: en or vi.")] = Lang.en,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Write to this file instead of stdout.")] = None,
    measurements: Annotated[bool, typer.Option("--measurements", help="csv: the per-URL CSV, not the summary.")] = False,
    csv_headers: Annotated[CsvHeaders, typer.Option("--csv-headers", help="csv: the ministry contract's column "
                                                    "names, or Vietnamese ones (for people, not programs).")] = CsvHeaders.contract,
    runs: Annotated[int, typer.Option("--trend-runs", help="Runs shown in trends.", min=2, max=365)] = 10,
) -> int:
    """Report a stored run: scores, trends, SLA breaches, regressions, must-block and must-allow findings."""
    from auditor.report.i18n import check_lang
    from auditor.report.interface import ReportOptions, check_header_style
    from auditor.report.stored import report_stored_run, write_report

    options = ReportOptions(lang=check_lang(lang.value), measurements=measurements,
                            csv_headers=check_header_style(csv_headers.value))
    if output is None:  # the terminal's width and colours (a pipe gets 150 columns, plain)
        out = _out()
        options = replace(options, width=out.width, terminal=out.is_terminal)
    cfg = load_config(config)
    write_report(report_stored_run(cfg, fmt, options, run_id=run_id, history_runs=runs), output)
    return ExitStatus.OK


class RejudgeFormat(str, enum.Enum):
    table = "table"
    json = "json"


@app.command()
@_boundary
def rejudge(
    run_id: Annotated[str, typer.Option("--run", help="Run id, or 'latest'.")],
    config: ConfigOption = DEFAULT_CONFIG,
    store_as_new: Annotated[bool, typer.Option("--store-as-new", help="Store the outcome as a new run linked to "
                                               "this one (which is never modified).")] = False,
    fmt: Annotated[RejudgeFormat, typer.Option("--format", help="table (text) or json.")] = RejudgeFormat.table,
) -> int:
    """Judge a stored run again with today's rules and fingerprints, and show what changed."""
    import json

    from auditor.rejudge import rejudge_run, render_text, to_json

    result = rejudge_run(load_config(config), run_id, store_as_new=store_as_new)
    if fmt is RejudgeFormat.json:
        sys.stdout.write(json.dumps(to_json(result), ensure_ascii=False, indent=2) + "\n")
    else:
        sys.stdout.write(render_text(result))
    return ExitStatus.OK


@app.command()
@_boundary
def history(
    config: ConfigOption = DEFAULT_CONFIG,
    provider: Annotated[str | None, typer.Option("--provider", help="Only this provider.")] = None,
    days: Annotated[int, typer.Option("--days", help="How far back.", min=1, max=3650)] = 30,
    lang: Annotated[Lang, typer.Option("--lang", help="Labels: en or vi.")] = Lang.en,
) -> int:
    """Compliance over time, per provider, in the terminal."""
    from auditor.report.history import render_history
    from auditor.store import open_store

    cfg = load_config(config)
    if provider is not None and cfg.provider(provider) is None:
        raise UsageError(f"unknown provider {provider!r}; configured: {', '.join(p.id for p in cfg.providers)}")
    store = open_store(cfg.store)
    try:
        _out().print(render_history(store, provider, days, lang.value, grace_hours=cfg.grace_hours,
                                    timezone=cfg.timezone, must_allow=cfg.must_allow))
    finally:
        store.close()
    return ExitStatus.OK


@app.command()
@_boundary
def doctor(config: ConfigOption = DEFAULT_CONFIG) -> int:
    """Check the config, lists, store, output directory, and every vantage, resolver and canary."""
    from rich.text import Text

    from auditor.doctor import diagnose

    cfg = load_config(config)
    findings = asyncio.run(diagnose(cfg))
    out = _out()
    out.print(Text.assemble(("config ", "bold"), (f"{cfg.source}: valid", "green")))
    for f in findings:
        mark = ("ok  ", "green") if f.ok else ("FAIL", "bold red") if f.fatal else ("warn", "yellow")
        out.print(Text.assemble(mark, " ", (f.area, "bold"), ": ", f.message), soft_wrap=True)
        if f.hint and not f.ok:
            out.print(Text(f"      fix: {f.hint}", style="cyan"), soft_wrap=True)
    return ExitStatus.NOT_MEASURED if any(f.fatal for f in findings) else ExitStatus.OK


@lists_app.command("validate")
@_boundary
def lists_validate(files: Annotated[list[Path], typer.Argument(help="List files to check.")]) -> int:
    """Check reference lists: every row that would be skipped, with file and line, and a summary."""
    results = [read_list(f) for f in files]
    sys.stdout.write(format_validation_report(results) + "\n")
    return ExitStatus.LIST_ISSUES if any(r.issues for r in results) else ExitStatus.OK


KeyOption = Annotated[Path | None, typer.Option("--key", help="The private signing key (PEM, from "
                                                "`auditor evidence keygen`; default: evidence.signing_key).")]


def _configured_key(cfg: Config) -> Path:
    """The signing key the config names (evidence.signing_key), when no --key is given."""
    if cfg.evidence.signing_key is None:
        raise UsageError(f"no signing key: pass --key KEYFILE or set evidence.signing_key in {cfg.source}; "
                         "`auditor evidence keygen -o KEYFILE` makes one")
    return cfg.evidence.signing_key


class EvidenceVerdict(str, enum.Enum):
    blocked = "blocked"
    accessible = "accessible"
    all = "all"


@evidence_app.command("keygen")
@_boundary
def evidence_keygen(
    output: Annotated[Path, typer.Option("-o", "--output", help="The private key file to write (mode 0600); "
                                         "the public key goes to FILE.pub.")],
    force: Annotated[bool, typer.Option("--force", help="Replace an existing key.")] = False,
) -> int:
    """Make the Ed25519 key pair that signs evidence: the private key stays here, the .pub goes to the ministry."""
    from auditor.evidence import fingerprint, generate_key, public_key_path

    key = generate_key(output, force=force)
    sys.stdout.write(f"private key: {output} (mode 0600: keep it secret, on this host only)\n"
                     f"public key:  {public_key_path(output)} (give this one to the ministry)\n"
                     f"fingerprint: {fingerprint(key.public_key())}\n")
    return ExitStatus.OK


@evidence_app.command("pubkey")
@_boundary
def evidence_pubkey(config: ConfigOption = DEFAULT_CONFIG, key: KeyOption = None) -> int:
    """Print the public key (PEM) and its fingerprint, to give the ministry."""
    from auditor.evidence import fingerprint, load_private_key, public_pem

    public = load_private_key(key if key is not None else _configured_key(load_config(config))).public_key()
    # the fingerprint line first: PEM readers (openssl, cryptography) skip text before BEGIN
    sys.stdout.write(f"fingerprint: {fingerprint(public)}\n{public_pem(public)}")
    return ExitStatus.OK


@evidence_app.command("export")
@_boundary
def evidence_export(
    run_id: Annotated[str, typer.Option("--run", help="Run id, or 'latest'.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="New or empty directory for the records.")],
    config: ConfigOption = DEFAULT_CONFIG,
    provider: Annotated[list[str], typer.Option("--provider", help="Only this provider (repeatable).")] = [],  # noqa: B006
    verdict: Annotated[EvidenceVerdict, typer.Option("--verdict", help="Only these verdicts.")] = EvidenceVerdict.all,
    key: KeyOption = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an earlier export in the directory.")] = False,
) -> int:
    """Write a run's judgements as signed evidence records: one JSON file per (provider, URL), a signed manifest."""
    from auditor.evidence import export_evidence, load_private_key, resolve_run
    from auditor.sensitive import redactor
    from auditor.store import open_store

    cfg = load_config(config)
    signing_key = load_private_key(key if key is not None else _configured_key(cfg))
    redact = redactor(cfg)  # before anything is written: a missing URL-hash key stops here
    with open_store(cfg.store) as store:
        run_info = resolve_run(store, run_id, str(cfg.store))
        result = export_evidence(store, run_info, output, signing_key, provider_ids=provider,
                                 verdict=verdict.value, redact=redact, force=force)
    sys.stdout.write(f"{result.records} evidence records of run {result.run_id} in {result.directory}, "
                     f"signed by {result.key_fingerprint}, chain head {result.chain_head}\n")
    return ExitStatus.OK


@evidence_app.command("verify")
@_boundary
def evidence_verify(
    directory: Annotated[Path, typer.Argument(help="An evidence directory (from `evidence export`).")],
    public_key: Annotated[Path, typer.Option("--public-key", help="The auditor's public key (PEM).")],
) -> int:
    """Check an evidence directory: every file, the hash chain and the manifest's signature by this key."""
    from auditor.evidence import load_public_key, verify_evidence

    result = verify_evidence(directory, load_public_key(public_key))
    for problem in result.problems:
        sys.stdout.write(f"{problem}\n")
    sys.stdout.write(result.summary() + "\n")
    return ExitStatus.OK if result.ok else ExitStatus.EVIDENCE_INVALID


@app.command()
@_boundary
def lab(
    out: Annotated[Path, typer.Option("--out", help="Directory for the CSVs.")] = Path("reports/lab"),
    workdir: Annotated[Path | None, typer.Option("--workdir", help="Keep the lab's config, CA and store here.")] = None,
    nights: Annotated[int, typer.Option("--nights", min=1, max=2, help="1, or 2: a second night with changed "
                                        "policies, into the same store, to show trends and regressions.")] = 1,
    quiet: Annotated[bool, typer.Option("--quiet", help="Print only errors.")] = False,
) -> int:
    """Start the simulated province on loopback, audit it, and check every case's verdict."""
    from auditor.engine import analyse_run, run_audit
    from auditor.lab import Lab
    from auditor.lab.scenario import compare
    from auditor.logs import EventLog
    from auditor.report.lab import lab_check_line, render_lab_mismatches, render_lab_summary
    from auditor.store import open_store

    outcomes = []
    with tempfile.TemporaryDirectory(prefix="auditor-lab-") as tmp:
        where = workdir or Path(tmp)
        for night in range(1, nights + 1):
            with Lab(where, night=night) as province:
                cfg = load_config(province.config_path)
                observer = _observer(EventLog(sys.stderr, quiet=quiet), quiet, False)
                store = open_store(cfg.store)
                try:
                    result = asyncio.run(run_audit(cfg, store, observer, out_dir=out, lists=_load_lists(cfg, quiet)))
                    outcomes += compare(store.iter_measurements(result.run.run_id), night=night)
                    analysis = analyse_run(store, result.run.run_id, cfg) if nights > 1 else None
                finally:
                    store.close()
    wrong = [o for o in outcomes if not o.ok]
    console = _out()
    if not quiet:
        console.print(render_lab_summary(result, analysis, kept_in=workdir, config_path=province.config_path))
    if wrong:
        _err().print(render_lab_mismatches(wrong))
    console.print(lab_check_line(outcomes))
    return ExitStatus.LAB_MISMATCH if wrong else ExitStatus.OK


def main() -> None:
    app(prog_name="auditor")


if __name__ == "__main__":
    main()
