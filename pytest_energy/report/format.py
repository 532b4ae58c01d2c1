"""One formatter for every report: numbers with units, changes, p-values, missing values, verdict lines.

Terminal, markdown, HTML and failure messages all print through these functions, so a figure reads the
same everywhere and a missing value is always `MISSING`.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

# The one finite-number check (records), under the name every report uses.
from ..records import is_finite_number as is_number

if TYPE_CHECKING:
    from ..records import Outcome, Verdict

MISSING = "n/a"
# A dimensionless metric is stored with unit "1" (SI's unit of a ratio); it prints with no unit.
DIMENSIONLESS = ("", "1")


def number(value: Any, digits: int = 4) -> str:
    """`value` with `digits` significant digits; MISSING for None, NaN, infinities and non-numbers."""
    if not is_number(value):
        return MISSING
    if isinstance(value, int):
        return str(value)
    if value == 0:
        return "0"
    return f"{value:.{digits}g}"


def value(value_: Any, unit: str = "", digits: int = 4) -> str:
    """'12.3 J', '0.92' (dimensionless), MISSING."""
    text = number(value_, digits)
    if text == MISSING or unit in DIMENSIONLESS:
        return text
    return f"{text} {unit}"


def change(change_pct: float | None) -> str:
    """'+12.3 %', '-4.0 %', '+0.0 %'; MISSING when there is no change to show."""
    if change_pct is None or math.isnan(change_pct):
        return MISSING
    if math.isinf(change_pct):
        return f"{'+' if change_pct > 0 else '-'}inf %"
    text = f"{change_pct:+.1f} %"
    return "+0.0 %" if text == "-0.0 %" else text  # equal values differ by float noise, not by "-0.0 %"


def p_value(p: float | None) -> str:
    if p is None or math.isnan(p):
        return MISSING
    return f"{p:.2g}" if p < 0.001 else f"{p:.3f}"


def percent(fraction: float | None, digits: int = 3) -> str:
    if not is_number(fraction):
        return MISSING
    return f"{fraction * 100:.{digits}g} %"


def mean_sd(samples: Sequence[float]) -> tuple[float, float]:
    if not samples:
        return math.nan, math.nan
    mean = statistics.fmean(samples)
    return mean, (statistics.stdev(samples) if len(samples) > 1 else 0.0)


def mean_pm_sd(samples: Sequence[float], digits: int = 3) -> str:
    """'1.23 ± 0.04' (sd of the samples; 0 for one sample)."""
    mean, sd = mean_sd(samples)
    if not is_number(mean):
        return MISSING
    return f"{number(mean, digits)} ± {number(sd, 2)}"


def verdict_line(v: Verdict) -> str:
    """One human line for a Verdict, e.g.
    'energy_j: 10 J -> 11.9 J (+19 %, p=0.0012, tolerance 8 %, n=5/5, within-run Welch) REGRESSION', or with the
    history rule 'energy_j: expected 10 J -> 19.8 J (+98 %, p=2.1e-06, tolerance 8 %, regression above 11.2 J,
    1 round, history: 3 runs, pooled) REGRESSION'."""
    current = value(v.current_value, v.unit)
    if v.baseline_value is None:
        text = f"{v.metric}: {current} (no baseline) {v.verdict}"
    else:
        parts = [change(v.change_pct)]
        if v.p_value is not None:
            parts.append(f"p={p_value(v.p_value)}")
        parts.append(f"tolerance {v.tolerance * 100:g} %")
        history = v.by_history
        limit = v.limit
        if history and is_number(limit):
            parts.append(f"{'regression above' if v.better == 'lower' else 'regression below'} "
                         f"{value(limit, v.unit)}")
        if history:
            parts.append(f"{v.n_current} round{'s' if v.n_current != 1 else ''}")
        elif v.kind != "deterministic":
            parts.append(f"n={v.n_baseline}/{v.n_current}")
        parts.append(v.rule)
        base = f"expected {value(v.baseline_value, v.unit)}" if history else value(v.baseline_value, v.unit)
        text = f"{v.metric}: {base} -> {current} ({', '.join(parts)}) {v.verdict}"
    return f"{text}: {v.hint}" if v.hint else text


def _regression_heading(verdicts: Sequence[Verdict]) -> str:
    """'energy regression' when energy regressed, else names what did ('time regression', ...)."""
    names = [v.metric.rsplit(".", 1)[-1] for v in verdicts]
    if any("energy" in n or n.startswith("j_per") for n in names):
        return "energy regression"
    if all("duration" in n or n.startswith("ms_per") or "per_s" in n for n in names):
        return "time regression"
    return "efficiency regression"


def failure_message(outcome: Outcome) -> str:
    """The text a failing benchmark shows: the gate's rule and numbers for every metric that fails it."""
    lines = []
    if outcome.failure:
        lines.append(outcome.failure)
    regressions = outcome.regressions
    if regressions and outcome.gating:
        lines.append(f"{_regression_heading(regressions)} against {outcome.baseline_file}:")
        lines += ["  " + verdict_line(v) for v in regressions]
    strict = [v for v in outcome.failing if v.verdict == "INCONCLUSIVE"]
    if strict:
        lines.append(f"INCONCLUSIVE against {outcome.baseline_file} fails with --energy-fail-on-inconclusive:")
        lines += ["  " + verdict_line(v) for v in strict]
    return "\n".join(lines)
