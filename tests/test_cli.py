"""The real CLI in-process: every exit code, against the lab and against bad input."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from auditor.audit import AuditResult
from auditor.cli import app
from auditor.errors import ExitStatus
from auditor.lab import scenario
from auditor.report.csvformat import MEASUREMENTS_HEADER, SUMMARY_HEADER
from auditor.report.formatting import fmt_pct, format_compliance_pct
from tests.labrun import LabRun, lab_config

runner = CliRunner()
REPO = Path(__file__).resolve().parent.parent
COMMANDS = ["run", "check", "report", "rejudge", "history", "doctor", "lab", "lists", "evidence"]


def invoke(*args: str) -> Result:
    return runner.invoke(app, list(args), catch_exceptions=False)


def listed_commands(help_text: str) -> list[str]:
    """The command names of a --help page's Commands section, in order."""
    section = help_text.split("\nCommands:\n", 1)[1]
    return [m.group(1) for m in re.finditer(r"^  (\S+)  ", section, flags=re.MULTILINE)]


def compliance(lab_run: LabRun, for_people: bool = False) -> dict[str, str]:
    """Each lab provider's compliance as the CSV writes it ("" for none), or as a page or table shows it."""
    return {s.provider_id: fmt_pct(s.compliance_pct, "en") if for_people else format_compliance_pct(s.compliance_pct)
            for s in lab_run.result.scores}


def test_help_lists_the_commands() -> None:
    result = invoke("--help")
    assert result.exit_code == ExitStatus.OK
    assert listed_commands(result.output) == COMMANDS
    lists = invoke("lists", "--help")
    assert lists.exit_code == ExitStatus.OK and listed_commands(lists.output) == ["validate"]
    evidence = invoke("evidence", "--help")
    assert evidence.exit_code == ExitStatus.OK
    assert listed_commands(evidence.output) == ["keygen", "pubkey", "export", "verify"]


def test_missing_config_is_a_usage_error(tmp_path: Path) -> None:
    result = invoke("run", "-c", str(tmp_path / "nope.yaml"))
    assert result.exit_code == ExitStatus.USAGE
    assert "nope.yaml" in result.output


def test_bad_config_names_the_key(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("province: x\ncontrol: {resolvers: ['1.1.1.1']}\nproviders: []\nlists: []\ntimeouts: {dns: -1}\n")
    result = invoke("run", "-c", str(cfg))
    assert result.exit_code == ExitStatus.USAGE
    assert "timeouts.dns" in result.output


def test_unknown_option_is_a_usage_error() -> None:
    assert invoke("run", "--no-such-option").exit_code == ExitStatus.USAGE


def test_unknown_provider_is_a_usage_error(lab_run: LabRun, tmp_path: Path) -> None:
    result = invoke("run", "-c", str(lab_config(lab_run, tmp_path)), "--provider", "nosuch")
    assert result.exit_code == ExitStatus.USAGE
    assert result.output == ("auditor: error: unknown provider nosuch; configured: viettel, vnpt, fpt, mobifone, "
                             "deadvantage, deadresolver, canaryfail\n")
    assert not (tmp_path / "audit.db").exists()  # refused before anything was stored


def test_lists_validate_clean_and_with_issues(tmp_path: Path) -> None:
    assert invoke("lists", "validate", str(REPO / "blocklists" / "example.csv")).exit_code == ExitStatus.OK
    bad = tmp_path / "bad.csv"
    bad.write_text("url,category_code,category_description,date_added,source,notes\n"
                   "http://ok.example/,PORN,x,2024-01-01,s,\n"
                   "ftp://nope.example/,PORN,x,2024-01-01,s,\n"
                   "http://bad-date.example/,PORN,x,2024-13-45,s,\n", encoding="utf-8")
    result = invoke("lists", "validate", str(bad))
    assert result.exit_code == ExitStatus.LIST_ISSUES
    assert f"{bad}:3:" in result.output and f"{bad}:4:" in result.output


def test_run_one_healthy_provider_completes(lab_run: LabRun, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = invoke("run", "-c", str(lab_config(lab_run, tmp_path)), "--provider", "viettel", "--out", str(out),
                    "--quiet")
    assert result.exit_code == ExitStatus.OK, result.output
    (measurements,) = out.glob("measurements-*.csv")
    (summary,) = out.glob("summary-*.csv")
    rows = list(csv.DictReader(io.StringIO(measurements.read_text(encoding="utf-8"), newline="")))
    assert {r["provider_id"] for r in rows} == {"viettel"}
    assert len(rows) == sum(r.provider_id == "viettel" for r in lab_run.records)
    (row,) = csv.DictReader(io.StringIO(summary.read_text(encoding="utf-8"), newline=""))
    assert (row["provider_id"], row["measured"], row["compliance_pct"]) == ("viettel", "yes", compliance(lab_run)["viettel"])


def test_run_with_an_unmeasurable_provider_says_so(lab_run: LabRun, tmp_path: Path) -> None:
    result = invoke("run", "-c", str(lab_config(lab_run, tmp_path)), "--provider", "deadvantage", "--out",
                    str(tmp_path / "out"))
    assert result.exit_code == ExitStatus.NOT_MEASURED
    assert "deadvantage: not measured: vantage unreachable" in result.output
    (summary,) = (tmp_path / "out").glob("summary-*.csv")
    (row,) = csv.DictReader(io.StringIO(summary.read_text(encoding="utf-8"), newline=""))
    assert (row["provider_id"], row["measured"], row["compliance_pct"]) == ("deadvantage", "no", "")


def test_check_explains_every_step(lab_run: LabRun) -> None:
    result = invoke("check", "viettel", "http://nxdomain-case.example/", "-c", str(lab_run.lab.config_path))
    assert result.exit_code == ExitStatus.OK, result.output
    out = result.output
    assert "NXDOMAIN" in out and "dns.nxdomain" in out and "BLOCKED" in out
    assert "45.76.0.10" in out  # control's answer is shown beside the provider's


def test_check_bad_url_is_a_usage_error(lab_run: LabRun) -> None:
    result = invoke("check", "viettel", "ftp://x.example/", "-c", str(lab_run.lab.config_path))
    assert result.exit_code == ExitStatus.USAGE
    assert result.output == ("auditor: error: 'ftp://x.example/' is not a URL to check: unsupported scheme 'ftp' "
                             "(only http and https)\n")


def report(lab_run: LabRun, fmt: str, out: Path) -> str:
    result = invoke("report", "-c", str(lab_run.lab.config_path), "--run", lab_run.result.run.run_id, "--format", fmt,
                    "-o", str(out))
    assert result.exit_code == ExitStatus.OK, result.output
    return out.read_text(encoding="utf-8")


def test_report_as_json(lab_run: LabRun, tmp_path: Path) -> None:
    doc = json.loads(report(lab_run, "json", tmp_path / "report.json"))
    assert doc["schema"] == "auditor.report/2"
    assert doc["run"]["run_id"] == lab_run.result.run.run_id
    assert [p["provider_id"] for p in doc["providers"]] == [p.id for p in lab_run.config.providers]
    shown = {s["provider_id"]: format_compliance_pct(s["compliance_pct"]) for s in doc["scores"]}
    assert shown == compliance(lab_run)
    assert len(doc["measurements"]) == len(lab_run.records)


def test_report_as_csv(lab_run: LabRun, tmp_path: Path) -> None:
    text = report(lab_run, "csv", tmp_path / "report.csv")
    assert text.splitlines()[0] == ",".join(SUMMARY_HEADER)
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert {r["run_id"] for r in rows} == {lab_run.result.run.run_id}
    assert {r["provider_id"]: r["compliance_pct"] for r in rows} == compliance(lab_run)
    assert [r["provider_id"] for r in rows] == [p.id for p in lab_run.config.providers]


def test_report_as_html(lab_run: LabRun, tmp_path: Path) -> None:
    text = report(lab_run, "html", tmp_path / "report.html")
    assert text.startswith("<!DOCTYPE html>\n") and '<html lang="en">' in text
    summary = re.search(r'<section id="summary">(.*?)</section>', text, re.DOTALL)
    assert summary is not None
    body = summary.group(1).split("<tbody>", 1)[1].split("</tbody>", 1)[0]  # the first table: compliance
    rows = [[re.sub(r"<[^>]+>", "", cell) for cell in re.findall(r"<td[^>]*>(.*?)</td>", row)]
            for row in re.findall(r"<tr>(.*?)</tr>", body)]
    assert [(row[0], row[-1]) for row in rows] == [(f"{p.name} ({p.id})", compliance(lab_run, True)[p.id])
                                                   for p in lab_run.config.providers]


def test_report_as_a_table(lab_run: LabRun, tmp_path: Path) -> None:
    text = report(lab_run, "table", tmp_path / "report.txt")
    assert f"Compliance, run {lab_run.result.run.run_id} (Gia Lai (simulated)" in text
    for p in lab_run.config.providers:
        row = next(line for line in text.splitlines() if line.startswith(f"│ {p.name} ({p.id})"))
        assert row.split("│")[-2].strip() == compliance(lab_run, True)[p.id], row
    accessible = sum(r.judgement.verdict.value == "accessible" for r in lab_run.records)
    assert f"Violations: listed URLs that were accessible ({accessible - 4})" in text  # less the 4 in grace


def test_report_in_vietnamese(lab_run: LabRun, tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    run_id = lab_run.result.run.run_id
    result = invoke("report", "-c", str(lab_run.lab.config_path), "--run", run_id, "--format", "html", "--lang", "vi",
                    "-o", str(out))
    assert result.exit_code == ExitStatus.OK
    page = out.read_text(encoding="utf-8")
    assert '<html lang="vi">' in page and "Tỷ lệ tuân thủ" in page and "Compliance per provider" not in page
    table = invoke("report", "-c", str(lab_run.lab.config_path), "--run", run_id, "--lang", "vi")
    assert table.exit_code == ExitStatus.OK
    assert "Nhà mạng" in table.output and "Provider" not in table.output


def test_history_in_the_terminal(lab_run: LabRun) -> None:
    result = invoke("history", "-c", str(lab_run.lab.config_path), "--provider", "viettel")
    assert result.exit_code == ExitStatus.OK
    row = next(line for line in result.output.splitlines() if "(viettel)" in line)
    pct = compliance(lab_run, True)["viettel"]
    # the lab's store holds its one run (no test writes into it): one run, lowest = latest, no change yet
    assert [c.strip() for c in row.split("│")[1:-1]] == ["Viettel (lab) (viettel)", "1", "▄", pct, pct, "—"]
    assert lab_run.result.run.run_id in result.output
    assert "vnpt" not in result.output
    unknown = invoke("history", "-c", str(lab_run.lab.config_path), "--provider", "nosuch")
    assert unknown.exit_code == ExitStatus.USAGE and "unknown provider 'nosuch'" in unknown.output


def test_report_latest_run_to_stdout(lab_run: LabRun) -> None:
    result = invoke("report", "-c", str(lab_run.lab.config_path), "--format", "csv", "--measurements")
    assert result.exit_code == ExitStatus.OK
    assert result.output.splitlines()[0] == ",".join(MEASUREMENTS_HEADER)
    rows = list(csv.DictReader(io.StringIO(result.output, newline="")))
    assert {r["run_id"] for r in rows} == {lab_run.result.run.run_id}  # the latest run is the lab's own
    assert [(r["provider_id"], r["url"]) for r in rows] == [(r.provider_id, r.entry.url) for r in lab_run.records]


def test_report_unknown_run_is_a_usage_error(lab_run: LabRun) -> None:
    result = invoke("report", "-c", str(lab_run.lab.config_path), "--run", "19990101T000000Z-dead")
    assert result.exit_code == ExitStatus.USAGE
    assert result.output.startswith("auditor: error: no run '19990101T000000Z-dead' in the store sqlite:///")


def test_internal_error_is_reported_as_a_bug(lab_run: LabRun, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import auditor.unattended

    async def broken(*args: object, **kwargs: object) -> AuditResult:
        raise RuntimeError("boom")

    monkeypatch.setattr(auditor.unattended, "audit", broken)
    result = runner.invoke(app, ["run", "-c", str(lab_config(lab_run, tmp_path)), "--quiet"])
    assert result.exit_code == ExitStatus.INTERNAL_ERROR
    assert "RuntimeError: boom" in result.output
    assert "auditor: internal error (a bug): please report it with the traceback above" in result.output


def test_lab_command_audits_the_province(tmp_path: Path) -> None:
    result = invoke("lab", "--out", str(tmp_path / "out"), "--quiet")
    assert result.exit_code == ExitStatus.OK, result.output
    cases = len(scenario.PROVIDERS) * len(scenario.listed_urls())
    assert result.output.splitlines()[-1] == f"lab check: {cases}/{cases} cases judged as expected"
    assert len(list((tmp_path / "out").glob("measurements-*.csv"))) == 1


def test_every_exit_status_is_documented() -> None:
    """README's exit-code table (| code | meaning |) has one row per ExitStatus, in order, and no other."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    table = readme.split("\n| code | meaning |\n", 1)[1].split("\n\n", 1)[0]
    rows = [line.split("|")[1:-1] for line in table.splitlines()[1:]]  # after the |---| line
    assert [int(code) for code, _ in rows] == [int(status) for status in ExitStatus]
    assert all(meaning.strip() for _, meaning in rows)
