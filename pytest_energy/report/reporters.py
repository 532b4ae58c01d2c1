"""The reporters as pytest plugins, registered at configure time as pytest registers its junitxml `LogXML`
(`config.pluginmanager.register(...)`). Imported by pytest_energy.plugin only with --energy.

Each reporter implements the plugin's own hooks (declared in pytest_energy.plugin.EnergyHookspecs):

- `pytest_energy_test_result(item, result)`: one test's result is final (judged) on the process that
  measured it: `JUnitProperties` adds its figures and verdicts to the test's JUnit XML properties;
- `pytest_energy_run_result(config, run)`: the run is finished (on the process that reports: the xdist
  controller, torchrun's rank 0): each `FileReporter` writes its file (report/outputs.py; a failure goes
  into `run.errors`, and the run exits 1), `TerminalSummary` keeps the run for pytest's terminal summary.

A plugin of your own can implement the same hooks to write another output.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from .outputs import STEP_SUMMARY_ENV, FileReport, file_reports

if TYPE_CHECKING:
    import pytest

    from ..config import SessionConfig
    from ..records import BenchmarkResult, RunResult


class FileReporter:
    """One report file (report/outputs.FileReport) as a plugin: written when the run is finished."""

    def __init__(self, report: FileReport) -> None:
        self.report = report

    def pytest_energy_run_result(self, run: RunResult) -> None:
        self.report.write(run)


class TerminalSummary:
    """The `energy` section of pytest's terminal summary (report/terminal.py), and the run's errors."""

    def __init__(self) -> None:
        self.run: RunResult | None = None

    def pytest_energy_run_result(self, run: RunResult) -> None:
        self.run = run

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        from .terminal import terminal_lines

        terminalreporter.section("energy")
        run = self.run
        if run is None:
            return
        for line in terminal_lines(run):
            terminalreporter.write_line(line)
        for error in run.errors:
            terminalreporter.write_line(f"pytest-energy ERROR: {error}", red=True, bold=True)


class JUnitProperties:
    """Each metered test's figures and verdicts as JUnit XML properties (`--junitxml`): pytest's junitxml writes
    `item.user_properties` with the test's teardown report."""

    def pytest_energy_test_result(self, item: pytest.Item, result: BenchmarkResult) -> None:
        for name, metric in result.record.metrics.items():
            if metric.samples:
                item.user_properties.append((f"energy:{name}[{metric.unit}]", f"{metric.mean:.6g}"))
        for verdict in (result.outcome.verdicts if result.outcome is not None else []):
            item.user_properties.append((f"energy-verdict:{verdict.metric}", str(verdict.verdict)))


def register(config: pytest.Config, session_config: SessionConfig, *, reports: bool) -> None:
    """Register the reporters of one pytest process. `reports`: this process writes the run's reports (not an
    xdist worker, nor a torchrun rank other than 0); every process that measures adds JUnit properties."""
    manager = config.pluginmanager
    manager.register(JUnitProperties(), "energy-junit-properties")
    if not reports:
        return
    manager.register(TerminalSummary(), "energy-terminal")
    for report in file_reports(session_config, os.environ.get(STEP_SUMMARY_ENV) or None):
        manager.register(FileReporter(report), f"energy-{type(report).__name__}")
