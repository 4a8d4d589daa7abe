"""The real CLI in-process: every exit code, against the lab and against bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from auditor.cli import app
from auditor.errors import ExitStatus

runner = CliRunner()
REPO = Path(__file__).resolve().parent.parent


def invoke(*args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, list(args), catch_exceptions=False)


def test_help_lists_the_commands() -> None:
    result = invoke("--help")
    assert result.exit_code == ExitStatus.OK
    for command in ("run", "check", "report", "lists", "lab"):
        assert command in result.output


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


def test_unknown_provider_is_a_usage_error(lab_run) -> None:
    result = invoke("run", "-c", str(lab_run.lab.config_path), "--provider", "nosuch")
    assert result.exit_code == ExitStatus.USAGE
    assert "nosuch" in result.output


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


def test_run_one_healthy_provider_completes(lab_run, tmp_path: Path) -> None:
    result = invoke("run", "-c", str(lab_run.lab.config_path), "--provider", "viettel", "--out", str(tmp_path), "--quiet")
    assert result.exit_code == ExitStatus.OK, result.output
    assert len(list(tmp_path.glob("measurements-*.csv"))) == 1
    assert len(list(tmp_path.glob("summary-*.csv"))) == 1


def test_run_with_an_unmeasurable_provider_says_so(lab_run, tmp_path: Path) -> None:
    result = invoke("run", "-c", str(lab_run.lab.config_path), "--provider", "deadvantage", "--out", str(tmp_path))
    assert result.exit_code == ExitStatus.NOT_MEASURED
    assert "deadvantage: not measured" in result.output


def test_check_explains_every_step(lab_run) -> None:
    result = invoke("check", "viettel", "http://nxdomain-case.example/", "-c", str(lab_run.lab.config_path))
    assert result.exit_code == ExitStatus.OK, result.output
    out = result.output
    assert "NXDOMAIN" in out and "dns.nxdomain" in out and "BLOCKED" in out
    assert "45.76.0.10" in out  # control's answer is shown beside the provider's


def test_check_bad_url_is_a_usage_error(lab_run) -> None:
    result = invoke("check", "viettel", "ftp://x.example/", "-c", str(lab_run.lab.config_path))
    assert result.exit_code == ExitStatus.USAGE


@pytest.mark.parametrize("fmt", ["table", "csv", "json", "html"])
def test_report_formats(lab_run, fmt: str, tmp_path: Path) -> None:
    out = tmp_path / f"report.{fmt}"
    run_id = lab_run.result.run.run_id  # other tests add runs to the same store: name this one
    result = invoke("report", "-c", str(lab_run.lab.config_path), "--run", run_id, "--format", fmt, "-o", str(out))
    assert result.exit_code == ExitStatus.OK, result.output
    text = out.read_text(encoding="utf-8")
    if fmt == "json":
        doc = json.loads(text)
        assert doc["schema"] == "auditor.report/2"
        assert {p["provider_id"] for p in doc["providers"]} >= {"viettel", "deadvantage"}
    elif fmt == "csv":
        assert text.startswith("run_id,started_at,province,provider_id")
        assert text.splitlines()[0].endswith(",sla_breaches,median_hours_to_block,newly_accessible,"
                                             "must_block_failed,overblocked,vantage_lost")
    elif fmt == "html":
        assert text.startswith("<!DOCTYPE html>") and "viettel" in text.lower()
    else:
        assert "viettel" in text and "Violations" in text


def test_report_in_vietnamese(lab_run, tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    run_id = lab_run.result.run.run_id
    result = invoke("report", "-c", str(lab_run.lab.config_path), "--run", run_id, "--format", "html", "--lang", "vi",
                    "-o", str(out))
    assert result.exit_code == ExitStatus.OK
    assert "Tỷ lệ tuân thủ" in out.read_text(encoding="utf-8")
    table = invoke("report", "-c", str(lab_run.lab.config_path), "--run", run_id, "--lang", "vi")
    assert "Nhà mạng" in table.output


def test_history_in_the_terminal(lab_run) -> None:
    result = invoke("history", "-c", str(lab_run.lab.config_path), "--provider", "viettel")
    assert result.exit_code == ExitStatus.OK
    assert "viettel" in result.output.lower()
    assert invoke("history", "-c", str(lab_run.lab.config_path), "--provider", "nosuch").exit_code == ExitStatus.USAGE


def test_report_latest_run_to_stdout(lab_run) -> None:
    result = invoke("report", "-c", str(lab_run.lab.config_path), "--format", "csv", "--measurements")
    assert result.exit_code == ExitStatus.OK
    assert result.output.startswith("run_id,measured_at,province,provider_id,provider_name,list,url,")


def test_report_unknown_run_is_a_usage_error(lab_run) -> None:
    result = invoke("report", "-c", str(lab_run.lab.config_path), "--run", "19990101T000000Z-dead")
    assert result.exit_code == ExitStatus.USAGE


def test_internal_error_is_reported_as_a_bug(lab_run, monkeypatch: pytest.MonkeyPatch) -> None:
    import auditor.unattended

    async def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("boom")

    monkeypatch.setattr(auditor.unattended, "audit", broken)
    result = runner.invoke(app, ["run", "-c", str(lab_run.lab.config_path), "--quiet"])
    assert result.exit_code == ExitStatus.INTERNAL_ERROR
    assert "internal error" in result.output


def test_lab_command_audits_the_province(tmp_path: Path) -> None:
    result = invoke("lab", "--out", str(tmp_path / "out"), "--quiet")
    assert result.exit_code == ExitStatus.OK, result.output
    assert "cases judged as expected" in result.output


def test_every_exit_status_is_documented() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for status in ExitStatus:
        assert f"| {int(status)} " in readme, f"exit status {status.name} missing from README"
