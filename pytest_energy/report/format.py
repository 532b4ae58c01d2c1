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


# What an A/B verdict's decision is called (gate/sequential.py: DIFFERENT/SAME/UNKNOWN, as Pinpoint names them);
# the verdict beside it says what that means for the test.
AB_DECISIONS = {"REGRESSION": "REGRESSION", "IMPROVED": "IMPROVED", "PASS": "SAME", "INCONCLUSIVE": "UNKNOWN",
                "NO_BASELINE": "no base"}


def ratio(v: Verdict) -> str:
    """An A/B verdict's head/base ratio and its interval: 'ratio 1.31 [1.24, 1.39]' (change_pct is the ratio's)."""
    if v.change_pct is None or not is_number(v.change_pct):
        return f"ratio {MISSING}"
    interval = v.ratio_interval
    bounds = (f" [{interval[0]:.2f}, {interval[1]:.2f}]"
              if interval is not None and all(is_number(x) for x in interval) else "")
    return f"ratio {1 + v.change_pct / 100:.2f}{bounds}"


def ab_rule(v: Verdict) -> str:
    """The A/B rule without the figures it ends with ('A/B against 1a2b3c4 in this job, 6 pairs'): the line that
    shows it prints ratio() beside it."""
    return v.rule.split(": ratio", 1)[0]


def ab_line(v: Verdict) -> str:
    """What the A/B said of one metric: 'REGRESSION, ratio 1.31 [1.24, 1.39], base 10.2 s -> head 13.4 s',
    'SAME, ratio 1.01 [0.97, 1.05], ...', 'UNKNOWN, ..., passes', or the rule's 'no base to compare (...)'."""
    if v.baseline_value is None:
        return f"{AB_DECISIONS.get(str(v.verdict), str(v.verdict))}: {v.rule}"
    text = (f"{AB_DECISIONS.get(str(v.verdict), str(v.verdict))}, {ratio(v)}, base {value(v.baseline_value, v.unit)}"
            f" -> head {value(v.current_value, v.unit)}")
    return text + ", passes" if v.verdict == "INCONCLUSIVE" else text


def verdict_line(v: Verdict) -> str:
    """One human line for a Verdict, e.g.
    'energy_j: 10 J -> 11.9 J (+19 %, p=0.0012, tolerance 8 %, n=5/5, within-run Welch) REGRESSION', or with the
    history rule 'energy_j: expected 10 J -> 19.8 J (+98 %, p=2.1e-06, tolerance 8 %, regression above 11.2 J,
    1 round, history: 3 runs, pooled) REGRESSION', or with the A/B rule 'energy_j: base 10.2 J -> head 13.4 J
    (ratio 1.31 [1.24, 1.39], +31.0 %, tolerance 8 %, A/B against 1a2b3c4 in this job, 6 pairs) REGRESSION'."""
    current = value(v.current_value, v.unit)
    if v.baseline_value is None:
        # An A/B with no base names why ("A/B against 1a2b3c4: no base to compare (...)").
        why = v.rule if v.by_ab else "no baseline"
        text = f"{v.metric}: {current} ({why}) {v.verdict}"
    elif v.by_ab:
        text = (f"{v.metric}: base {value(v.baseline_value, v.unit)} -> head {current} ({ratio(v)}, "
                f"{change(v.change_pct)}, tolerance {v.tolerance * 100:g} %, {ab_rule(v)}) {v.verdict}")
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
    """The text a failing benchmark shows: the gate's rule and numbers for every metric that fails it, with how a
    second look in this job confirmed it (a re-run's confirmation, or the A/B against the base revision)."""
    lines = []
    if outcome.failure:
        lines.append(outcome.failure)
    regressions = outcome.regressions
    if regressions and outcome.gating:
        by_ab = [v for v in regressions if v.by_ab]
        stored = [v for v in regressions if not v.by_ab]
        if stored:
            lines.append(f"{_regression_heading(stored)} against {outcome.baseline_file}:")
            for v in stored:
                lines.append("  " + verdict_line(v))
                if v.confirmation:
                    lines.append("    " + v.confirmation)
        if by_ab:
            recheck = outcome.recheck
            base = recheck.base_ref if recheck is not None and recheck.base_ref else "the base revision"
            lines.append(f"{_regression_heading(by_ab)} against {base}, measured alternately in this job:")
            for v in by_ab:
                lines.append("  " + verdict_line(v))
                if v.screen:
                    lines.append(f"    the screen before it: {v.screen}")
    strict = [v for v in outcome.failing if v.verdict == "INCONCLUSIVE"]
    if strict:
        lines.append(f"INCONCLUSIVE against {outcome.baseline_file} fails with --energy-fail-on-inconclusive:")
        lines += ["  " + verdict_line(v) for v in strict]
    return "\n".join(lines)
