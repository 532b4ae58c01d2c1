"""Write the requested report files. Each file is written on its own: one that fails is named in the
run's errors and the others are still written."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..errors import EnergyError, ReportError
from ..files import write_atomic

# $GITHUB_STEP_SUMMARY is shared by every step of the job: appended to, never replaced.
STEP_SUMMARY_ENV = "GITHUB_STEP_SUMMARY"


def _folder_problem(folder: Path, what: str, create: bool) -> str | None:
    """Why files cannot be written into `folder` (created when `create`); None when they can."""
    existing = next((p for p in (folder, *folder.parents) if p.exists()), Path("."))
    if not existing.is_dir():
        return f"{what}: {existing} is a file, not a folder"
    if existing != folder and not create:
        return f"{what}: the folder {folder} does not exist"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"{what}: no permission to write in {existing}"
    return None


def _file_problem(path: str, what: str, create_folder: bool) -> str | None:
    target = Path(path)
    if target.is_dir():
        return f"{what} {path} is a folder; give a file name"
    if target.exists() and not os.access(target, os.W_OK):
        return f"{what} {path}: the file is not writable"
    return _folder_problem(target.parent, f"{what} {path}", create_folder)


def check_targets(config: Any) -> list[str]:
    """Every output that cannot be written, found at start-up so that a run never ends by losing it."""
    targets = [(config.json_path, "--energy-json", True), (config.markdown_path, "--energy-markdown", True),
               (config.html_path, "--energy-html", True),
               # The step summary is GitHub's file: we append to it and never create its folder.
               (os.environ.get(STEP_SUMMARY_ENV) or None, f"${STEP_SUMMARY_ENV}", False)]
    problems = [_file_problem(path, what, create) for path, what, create in targets if path]
    folder = Path(config.baseline_path)
    if config.save_baseline:
        problems.append(_folder_problem(folder, f"--energy-baseline-dir {folder}", True))
    elif folder.exists() and not folder.is_dir():
        problems.append(f"--energy-baseline-dir {folder} is a file, not a folder")
    return [p for p in problems if p]


def _write(path: str, text: str, what: str) -> str:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, text, error=ReportError, what=what)
    return path


def _append(path: str, text: str) -> str:
    with open(path, "a", encoding="utf-8") as f:
        f.write(text)
    return path


def write_reports(run: Any) -> None:
    """JSON, HTML, markdown and the GitHub step summary, as configured; fills run.written and run.errors."""
    config = run.config
    jobs = []
    data: dict[str, Any] | None = None
    if config.json_path or config.html_path:
        from .json import build_report, json_text

        data = build_report(run)
    if config.json_path:
        jobs.append(("JSON report", config.json_path, lambda: _write(config.json_path, json_text(data),
                                                                        "JSON report")))
    if config.html_path:
        jobs.append(("HTML report", config.html_path, lambda: _write(config.html_path, _html(run, data),
                                                                        "HTML report")))
    step_summary = os.environ.get(STEP_SUMMARY_ENV)
    if config.markdown_path or step_summary:
        from .markdown import run_markdown

        markdown = run_markdown(run)
        if config.markdown_path:
            jobs.append(("markdown report", config.markdown_path,
                         lambda: _write(config.markdown_path, markdown, "markdown report")))
        if step_summary:
            jobs.append((f"${STEP_SUMMARY_ENV}", step_summary, lambda: _append(step_summary, markdown)))
    for what, path, job in jobs:
        try:
            run.written.append(job())
        except (OSError, EnergyError, TypeError, ValueError) as exc:
            run.errors.append(f"cannot write {what} {path}: {exc}")


def _html(run: Any, data: dict[str, Any]) -> str:
    from .html import render_html_report
    from .tables import hulk_blocks
    from .terminal import header_lines

    return render_html_report(data, about={"meter": " ".join(header_lines(run.meter))},
                              sections=hulk_blocks(run, tablefmt="html"))
