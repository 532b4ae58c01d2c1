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
