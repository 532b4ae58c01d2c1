"""GitHub-flavoured markdown summary of baseline verdicts, for $GITHUB_STEP_SUMMARY or a PR comment.

A pure function of the verdicts: no I/O, no pytest.
"""

from __future__ import annotations

import math
from typing import Any
from collections.abc import Mapping, Sequence

from .compare import Verdict
from .results import METHOD_ESTIMATE

__all__ = ["comparison_markdown"]

# Worst first, so the counts line reads from what needs attention to what does not.
_COUNT_ORDER = ("REGRESSION", "INCONCLUSIVE", "NO_BASELINE", "IMPROVED", "PASS")


def _cell(text: str) -> str:
    """Make text safe inside a table cell: a '|' would split the cell, a newline would end the row."""
    return text.replace("|", "\\|").replace("\n", " ")


def _value(value: float | None, unit: str) -> str:
    if value is None or math.isnan(value):
        return "n/a"
    return f"{value:.4g} {unit}".rstrip()


def _change(v: Verdict) -> str:
    if v.change_pct is None or math.isnan(v.change_pct):
        return "n/a"
    return f"{v.change_pct:+.1f} %"


def _p(p: float | None) -> str:
    if p is None:
        return "-"  # deterministic metric: no test
    if math.isnan(p):
        return "n/a"
    return f"{p:.2g}" if p < 0.001 else f"{p:.3f}"


def _verdict_cell(verdict: str) -> str:
    return f"**{verdict}**" if verdict in ("REGRESSION", "INCONCLUSIVE") else verdict


def comparison_markdown(results: Mapping[str, Sequence[Verdict | dict[str, Any]]],
                        method_by_test: Mapping[str, str]) -> str:
    """Markdown table test | metric | method | baseline | current | change | tolerance | p | verdict.

    `results` maps node ids to their verdicts (Verdict objects, or their dataclasses.asdict() form as they
    travel between xdist workers); `method_by_test` maps node ids to how energy was obtained ("nvml-counter",
    "estimate", ...). Tests are listed in node id order; hints follow the table.
    """
    verdicts_by_test = {nodeid: [v if isinstance(v, Verdict) else Verdict(**v) for v in vs]
                        for nodeid, vs in sorted(results.items())}
    lines = ["### pytest-energy: comparison with baselines", ""]
    all_verdicts = [v for vs in verdicts_by_test.values() for v in vs]
    if not all_verdicts:
        lines.append("No energy benchmark was compared with a baseline.")
        return "\n".join(lines) + "\n"

    counts = {name: sum(1 for v in all_verdicts if v.verdict == name) for name in _COUNT_ORDER}
    summary = ", ".join(f"{n} {name}" for name, n in counts.items() if n)
    n_tests = sum(1 for vs in verdicts_by_test.values() if vs)
    lines += [f"{len(all_verdicts)} metric(s) in {n_tests} test(s): {summary}", ""]

    lines += ["| Test | Metric | Method | Baseline | Current | Change | Tolerance | p | Verdict |",
              "|---|---|---|---:|---:|---:|---:|---:|---|"]
    hints = []
    for nodeid, verdicts in verdicts_by_test.items():
        method = method_by_test.get(nodeid, "unknown")
        for v in verdicts:
            lines.append("| " + " | ".join(_cell(c) for c in (
                f"`{nodeid}`", v.metric, method, _value(v.baseline_value, v.unit), _value(v.current_value, v.unit),
                _change(v), f"{v.tolerance * 100:g} %", _p(v.p_value))) + f" | {_verdict_cell(v.verdict)} |")
            if v.hint:
                hints.append(f"- `{_cell(nodeid)}` {_cell(v.metric)}: {v.hint}")
    if hints:
        lines += ["", *hints]
    if any(METHOD_ESTIMATE in method_by_test.get(n, "").split("+") for n in verdicts_by_test):
        lines += ["", f"Method `{METHOD_ESTIMATE}`: energy modelled from CPU time x watts per core, not measured."]
    return "\n".join(lines) + "\n"
