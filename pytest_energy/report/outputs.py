"""The report files and what the reports say about the run's end. No pytest import.

Each output is a small reporter object that receives a `RunResult` (pytest_energy.session) and writes its
own file (`write(run)`): `JsonReport`, `HtmlReport`, `MarkdownReport` and `StepSummary` (appended to
GitHub's $GITHUB_STEP_SUMMARY). report/reporters.py registers them as pytest plugins at configure time,
as pytest does with its junitxml `LogXML`. Each file is written on its own: one that fails is named in the
run's errors (the run then exits 1) and the others are still written.

`check_targets` finds an output that cannot be written at start-up, so a run never ends by losing it;
`complete_run` words what the session recorded as data (the JSON `energy` block, the baseline-history notes).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import EnergyError, ReportError
from ..files import folder_problem, write_atomic

if TYPE_CHECKING:
    from ..config import SessionConfig
    from ..gate.store import SavedRun
    from ..records import RunResult

# $GITHUB_STEP_SUMMARY is shared by every step of the job: appended to, never replaced.
STEP_SUMMARY_ENV = "GITHUB_STEP_SUMMARY"
# What a reporter can fail with when writing: the file system, or a value that cannot be written.
WRITE_ERRORS = (OSError, EnergyError, TypeError, ValueError)


def _file_problem(path: str, what: str, create_folder: bool) -> str | None:
    target = Path(path)
    if target.is_dir():
        return f"{what} {path} is a folder; give a file name"
    if target.exists() and not os.access(target, os.W_OK):
        return f"{what} {path}: the file is not writable"
    return folder_problem(target.parent, f"{what} {path}", create_folder)


def check_targets(config: SessionConfig) -> list[str]:
    """Every report file that cannot be written, found at start-up so that a run never ends by losing it.
    (The baseline folder is the gate's: gate.store.baseline_folder_problem.)"""
    targets = [(config.json_path, "--energy-json", True), (config.markdown_path, "--energy-markdown", True),
               (config.html_path, "--energy-html", True),
               # The step summary is GitHub's file: we append to it and never create its folder.
               (os.environ.get(STEP_SUMMARY_ENV) or None, f"${STEP_SUMMARY_ENV}", False)]
    if config.bmf_path or config.github_benchmark_path:
        from .bmf import export_targets

        targets += [(path, flag, True) for path, flag in export_targets(config)]
    problems = [_file_problem(path, what, create) for path, what, create in targets if path]
    return [p for p in problems if p]


def _write(path: str, text: str, what: str) -> str:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, text, error=ReportError, what=what)
    return path


def _append(path: str, text: str) -> str:
    with open(path, "a", encoding="utf-8") as f:
        f.write(text)
    return path


# --- the reporters ------------------------------------------------------------------------------------------

class FileReport:
    """One report file: `render(run)` gives its text, `write(run)` writes it and records the outcome in the
    run (`run.written`, or `run.errors` naming the file and why). A run without results writes no file."""

    what = "report"

    def __init__(self, path: str) -> None:
        self.path = path

    def render(self, run: RunResult) -> str:
        raise NotImplementedError

    def _store(self, text: str) -> str:
        return _write(self.path, text, self.what)

    def write(self, run: RunResult) -> None:
        if not run.benchmarks:
            return
        try:
            run.written.append(self._store(self.render(run)))
        except WRITE_ERRORS as exc:
            run.errors.append(f"cannot write {self.what} {self.path}: {exc}")


class JsonReport(FileReport):
    """--energy-json: pytest-benchmark's layout with an `energy` block (report/json.py)."""

    what = "JSON report"

    def render(self, run: RunResult) -> str:
        from .json import build_report, json_text

        return json_text(build_report(run))


class HtmlReport(FileReport):
    """--energy-html: one self-contained page (report/html.py)."""

    what = "HTML report"

    def render(self, run: RunResult) -> str:
        from .html import render_html_report
        from .tables import hulk_blocks
        from .terminal import header_lines

        return render_html_report(run, about={"meter": " ".join(header_lines(run.meter))},
                                  sections=hulk_blocks(run, tablefmt="html"))


class MarkdownReport(FileReport):
    """--energy-markdown: the pull-request view (report/markdown.py)."""

    what = "markdown report"

    def render(self, run: RunResult) -> str:
        from .markdown import run_markdown

        return run_markdown(run)


class StepSummary(MarkdownReport):
    """$GITHUB_STEP_SUMMARY: the markdown view, appended (every step of a GitHub job shares the file)."""

    what = f"${STEP_SUMMARY_ENV}"

    def _store(self, text: str) -> str:
        return _append(self.path, text)


class DashboardExports(FileReport):
    """--energy-bmf and --energy-github-benchmark: every benchmark's metrics for Bencher and
    github-action-benchmark (report/bmf.py, report/github_benchmark.py), each file written on its own; what an
    export leaves out (a NaN, a higher-is-better metric for customSmallerIsBetter) is said in the terminal."""

    what = "dashboard export"

    def __init__(self, config: SessionConfig) -> None:
        super().__init__(config.bmf_path or config.github_benchmark_path)
        self.config = config

    def write(self, run: RunResult) -> None:
        if not run.benchmarks:
            return
        from .bmf import write_exports

        outcomes = {b.record.nodeid: b.outcome for b in run.benchmarks if b.outcome is not None}
        written, errors, notes = write_exports(run.records, self.config, outcomes)
        run.written += written
        run.errors += errors
        run.report_notes += notes


def file_reports(config: SessionConfig, step_summary: str | None = None) -> list[FileReport]:
    """The file reporters `config` asks for, and the GitHub step summary when its path is given."""
    reports: list[FileReport] = []
    if config.json_path:
        reports.append(JsonReport(config.json_path))
    if config.html_path:
        reports.append(HtmlReport(config.html_path))
    if config.markdown_path:
        reports.append(MarkdownReport(config.markdown_path))
    if step_summary:
        reports.append(StepSummary(step_summary))
    if config.bmf_path or config.github_benchmark_path:
        reports.append(DashboardExports(config))
    return reports


# --- what the reports say about the end of the run --------------------------------------------------------

def session_block(run: RunResult) -> dict[str, Any]:
    """The session-wide `energy` block of the JSON report: the meter snapshot, the carbon settings, the device
    state at the first benchmark and at the end, pytest's exit status so far, and where the run ran."""
    meter = run.meter
    block: dict[str, Any] = {
        "meter": meter.name,
        "devices": [dataclasses.asdict(d) for d in meter.devices],
        "fallback_reasons": list(meter.fallback_reasons),
        "idle_power_w": meter.idle_power_w,
        "idle_measured_s": meter.idle_measured_s,
        "carbon": run.config.carbon.to_dict(),
        "device_state_start": run.device_state_start,
        "device_state_end": run.device_state_end,
        "exitstatus": run.exitstatus,
        "tests_failed": run.tests_failed,
        "save_baseline": run.config.save_baseline,
    }
    if run.placement is not None:
        block["placement"] = run.placement
    if run.ab_base is not None:
        block["ab_base"] = run.ab_base  # --energy-against was armed, against this revision
    return block


def saved_notes(saved: SavedRun | None) -> list[str]:
    """How a save changed the run histories, for the terminal: the summary first (only when every entry was
    saved), then each test whose history restarted."""
    if saved is None:
        return []
    notes = [f"{nodeid}: new history for {', '.join(metrics)} (its REGRESSION or IMPROVED is accepted by this save)"
             for nodeid, metrics in saved.restarted.items()]
    lengths = saved.history_lengths
    if lengths and saved.error is None:
        span = str(min(lengths)) if min(lengths) == max(lengths) else f"{min(lengths)} to {max(lengths)}"
        how = "started afresh (--energy-reset-baseline)" if saved.reset else f"appended (keeping the last {saved.keep})"
        notes.insert(0, f"baseline history: run {saved.run_id} {how} for {saved.tests} test(s); the histories now "
                        f"hold {span} run(s) (the gate judges by history from 3)")
    return notes


def unsaved_shared_error(nodeids: list[str]) -> str | None:
    """Why some results were not saved as baselines (they were measured on shared devices), or None."""
    if not nodeids:
        return None
    return (f"--energy-save-baseline: {len(nodeids)} result(s) measured while other workers used the same "
            f"devices were not saved ({', '.join(nodeids[:3])}{', ...' if len(nodeids) > 3 else ''}); run "
            "with fewer workers (see the warning about shared devices) to record them")


def complete_run(run: RunResult) -> RunResult:
    """Word what the session recorded as data, before any reporter reads the run: the JSON `energy` block
    (`session_info`), the baseline-history notes, and the results left unsaved (an error: exit status 1)."""
    if not run.benchmarks:
        return run
    if not run.session_info:
        run.session_info = session_block(run)
    if not run.baseline_notes:
        run.baseline_notes = saved_notes(run.saved)
    unsaved = unsaved_shared_error(run.unsaved_shared)
    if unsaved and unsaved not in run.errors:
        run.errors.append(unsaved)
    return run

