"""GitHub-flavoured markdown for $GITHUB_STEP_SUMMARY or a pull-request comment. Pure functions, no I/O."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

from ..records import Method, VerdictKind, is_estimate
from . import format as fmt
from .series import energy_table, primary_series
from .tables import hulk_blocks

__all__ = ["comparison_markdown", "run_markdown"]

# Worst first, so the counts line reads from what needs attention to what does not.
_COUNT_ORDER = (VerdictKind.REGRESSION, VerdictKind.INCONCLUSIVE, VerdictKind.NO_BASELINE, VerdictKind.IMPROVED,
                VerdictKind.PASS)


def cell(text: Any) -> str:
    """Text made safe inside a table cell: HTML escaped (not every renderer sanitises it as GitHub does),
    '|' would split the cell, a newline would end the row."""
    return html.escape(str(text), quote=False).replace("|", "\\|").replace("\n", " ")


def _verdict_cell(verdict: VerdictKind) -> str:
    return f"**{verdict}**" if verdict in (VerdictKind.REGRESSION, VerdictKind.INCONCLUSIVE) else str(verdict)


def comparison_markdown(results: Mapping[str, Sequence[Any]], method_by_test: Mapping[str, str]) -> str:
    """Markdown table test | metric | method | baseline | current | change | tolerance | p | rule | verdict.

    `results` maps node ids to their Verdicts; `method_by_test` maps node ids to how energy was obtained
    ("nvml-counter", "estimate", ...). Tests are listed in node id order; hints follow the table.
    """
    verdicts_by_test = dict(sorted(results.items()))
    lines = ["### pytest-energy: comparison with baselines", ""]
    all_verdicts = [v for vs in verdicts_by_test.values() for v in vs]
    if not all_verdicts:
        lines.append("No energy benchmark was compared with a baseline.")
        return "\n".join(lines) + "\n"

    counts = {name: sum(1 for v in all_verdicts if v.verdict == name) for name in _COUNT_ORDER}
    summary = ", ".join(f"{n} {name}" for name, n in counts.items() if n)
    n_tests = sum(1 for vs in verdicts_by_test.values() if vs)
    lines += [f"{len(all_verdicts)} metric(s) in {n_tests} test(s): {summary}", ""]

    lines += ["| Test | Metric | Method | Baseline | Current | Change | Tolerance | p | Rule | Verdict |",
              "|---|---|---|---:|---:|---:|---:|---:|---|---|"]
    hints = []
    for nodeid, verdicts in verdicts_by_test.items():
        method = method_by_test.get(nodeid, "unknown")
        for v in verdicts:
            p = "-" if v.p_value is None else fmt.p_value(v.p_value)  # "-": deterministic, no test
            lines.append("| " + " | ".join(cell(c) for c in (
                f"`{nodeid}`", v.metric, method, fmt.value(v.baseline_value, v.unit),
                fmt.value(v.current_value, v.unit), fmt.change(v.change_pct), f"{v.tolerance * 100:g} %", p,
                v.rule)) + f" | {_verdict_cell(v.verdict)} |")
            if v.hint:
                hints.append(f"- `{cell(nodeid)}` {cell(v.metric)}: {cell(v.hint)}")
    if hints:
        lines += ["", *hints]
    if any(is_estimate(method_by_test.get(n, "")) for n in verdicts_by_test):
        lines += ["", f"Method `{Method.ESTIMATE}`: energy modelled from CPU time x watts per core, not measured."]
    return "\n".join(lines) + "\n"


def run_markdown(run: Any) -> str:
    """The pull-request / job-summary view: what ran, how it was metered, and the verdicts."""
    meter = run.meter
    lines = ["## pytest-energy", "",
             f"Meter `{meter.name}`: " + ", ".join(f"{d.device} {cell(d.name)} ({d.method})" for d in meter.devices),
             ""]
    table = energy_table(run.records, tablefmt="github")
    if table:
        lines += [html.escape(table, quote=False), ""]  # test names are user text
    results = {b.record.nodeid: b.outcome.verdicts for b in run.benchmarks if b.outcome is not None}
    methods = {}
    for r in run.records:
        series = primary_series(r)
        methods[r.nodeid] = (series.energy.method if series else None) or "unknown"
    decisive = {nodeid: [v for v in vs if v.decisive] for nodeid, vs in results.items()}
    lines.append(comparison_markdown(decisive, methods))
    if sum(map(len, results.values())) > sum(map(len, decisive.values())):
        lines += ["<details><summary>every metric's verdict</summary>", "",
                  comparison_markdown(results, methods), "</details>", ""]
    for title, table in hulk_blocks(run, tablefmt="github"):
        lines += [f"#### {cell(title)}", "", html.escape(table, quote=False), ""]
    notes = [f"- `{cell(b.record.nodeid)}`: {cell(note)}" for b in run.benchmarks if b.outcome
             for note in b.outcome.notes]
    if notes:
        lines += ["", *notes, ""]
    return "\n".join(lines)
