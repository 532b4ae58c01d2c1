"""The reporters: each writes its own file from a RunResult, a failure is the run's error and the others are
still written; registered as plugins they are fed by pytest-energy's two hooks."""

from __future__ import annotations

import json

import pytest

from pytest_energy.config import SessionConfig, TestSettings
from pytest_energy.gate.judge import Outcome
from pytest_energy.meters.base import DeviceInfo
from pytest_energy.records import Metric, TestRecord
from pytest_energy.report.outputs import (HtmlReport, JsonReport, MarkdownReport, StepSummary, check_targets,
                                          complete_run, file_reports, session_block)
from pytest_energy.report.reporters import FileReporter, JUnitProperties, TerminalSummary
from pytest_energy.session import BenchmarkResult, MeterInfo, RunResult


def _run(tmp_path, **paths) -> RunResult:
    record = TestRecord("tests/test_m.py::test_a", "test_a")
    record.metrics["duration_s"] = Metric("duration_s", "s", "lower", "measured", [0.1, 0.11, 0.1])
    record.metrics["energy_j"] = Metric("energy_j", "J", "lower", "measured", [10.0, 11.0, 10.0], "nvml-counter")
    config = SessionConfig(rootdir=str(tmp_path), baseline_dir=str(tmp_path / "baselines"), **paths)
    run = RunResult(MeterInfo("nvml", (DeviceInfo("gpu0", "NVIDIA H100", "nvml-counter"),)), config,
                    [BenchmarkResult(record, TestSettings(), Outcome(), call_duration_s=0.4)],
                    datetime="2026-12-01T00:00:00+00:00", exitstatus=0, tests_failed=0)
    return complete_run(run)


def test_each_reporter_writes_its_own_file(tmp_path):
    run = _run(tmp_path, json_path=str(tmp_path / "r" / "e.json"), markdown_path=str(tmp_path / "e.md"))
    reports = file_reports(run.config)
    assert [type(r) for r in reports] == [JsonReport, MarkdownReport]
    for report in reports:
        report.write(run)
    assert run.written == [str(tmp_path / "r" / "e.json"), str(tmp_path / "e.md")] and run.errors == []
    doc = json.loads((tmp_path / "r" / "e.json").read_text())
    assert doc["benchmarks"][0]["fullname"] == "tests/test_m.py::test_a"
    assert doc["energy"]["meter"] == "nvml" and doc["energy"]["exitstatus"] == 0  # complete_run's session block
    assert "test_a" in (tmp_path / "e.md").read_text()


def test_a_file_that_cannot_be_written_is_an_error_and_the_others_are_written(tmp_path):
    (tmp_path / "taken").mkdir()
    run = _run(tmp_path, json_path=str(tmp_path / "taken"), markdown_path=str(tmp_path / "e.md"))
    for report in file_reports(run.config):
        report.write(run)
    assert run.written == [str(tmp_path / "e.md")]
    assert len(run.errors) == 1 and run.errors[0].startswith(f"cannot write JSON report {tmp_path / 'taken'}: ")


def test_the_step_summary_is_appended_to(tmp_path):
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    run = _run(tmp_path, markdown_path=str(tmp_path / "e.md"))
    for report in file_reports(run.config, str(summary)):
        report.write(run)
    assert summary.read_text() == "earlier step\n" + (tmp_path / "e.md").read_text()
    assert [type(r) for r in file_reports(run.config, str(summary))] == [MarkdownReport, StepSummary]


def test_a_run_without_results_writes_no_file(tmp_path):
    run = _run(tmp_path, json_path=str(tmp_path / "e.json"))
    run.benchmarks.clear()
    JsonReport(str(tmp_path / "e.json")).write(run)
    assert not (tmp_path / "e.json").exists() and run.written == []


def test_html_report(tmp_path):
    pytest.importorskip("matplotlib")
    run = _run(tmp_path)
    HtmlReport(str(tmp_path / "e.html")).write(run)
    assert run.errors == [] and "test_a" in (tmp_path / "e.html").read_text()


def test_the_json_energy_block_is_built_from_the_meter_snapshot_and_device_state(tmp_path):
    run = _run(tmp_path)
    run.device_state_start, run.device_state_end = {"gpu0": {"temp_c": 40}}, {"gpu0": {"temp_c": 60}}
    run.placement = {"worker": "gw0"}
    block = session_block(run)
    assert block["devices"] == [{"device": "gpu0", "name": "NVIDIA H100", "method": "nvml-counter"}]
    assert (block["device_state_start"], block["device_state_end"]) == ({"gpu0": {"temp_c": 40}},
                                                                        {"gpu0": {"temp_c": 60}})
    assert block["placement"] == {"worker": "gw0"} and block["carbon"] == run.config.carbon.to_dict()


def test_report_targets_are_checked_at_start_up_and_the_baseline_folder_is_not_theirs(tmp_path):
    (tmp_path / "file").write_text("")
    config = SessionConfig(rootdir=str(tmp_path), baseline_dir=str(tmp_path / "file"), save_baseline=True,
                           json_path=str(tmp_path / "file" / "e.json"))
    assert check_targets(config) == [f"--energy-json {tmp_path / 'file' / 'e.json'}: {tmp_path / 'file'} is a file, "
                                     "not a folder"]


def test_the_reporter_plugins(tmp_path):
    run = _run(tmp_path, markdown_path=str(tmp_path / "e.md"))
    FileReporter(MarkdownReport(str(tmp_path / "e.md"))).pytest_energy_run_result(run)
    assert run.written == [str(tmp_path / "e.md")]

    class Terminal:
        def __init__(self):
            self.lines = []

        def section(self, title):
            self.lines.append(f"== {title}")

        def write_line(self, line, **markup):
            self.lines.append(line)

    terminal, summary = Terminal(), TerminalSummary()
    summary.pytest_terminal_summary(terminal)
    assert terminal.lines == ["== energy"]  # the run did not finish: nothing to say
    run.errors.append("cannot write JSON report x: no space")
    summary.pytest_energy_run_result(run)
    summary.pytest_terminal_summary(terminal)
    assert f"wrote {tmp_path / 'e.md'}" in terminal.lines
    assert terminal.lines[-1] == "pytest-energy ERROR: cannot write JSON report x: no space"

    class Item:
        user_properties: list = []

    item = Item()
    JUnitProperties().pytest_energy_test_result(item, run.benchmarks[0])
    assert item.user_properties == [("energy:duration_s[s]", "0.103333"), ("energy:energy_j[J]", "10.3333")]
