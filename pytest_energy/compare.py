"""Compare a test's metrics with its stored baseline and decide PASS / IMPROVED / REGRESSION / INCONCLUSIVE.

The rule for `kind="measured"` metrics (see docs/statistics.md for the derivation and the measured rates):

    change = (mean(current) - mean(baseline)) / |mean(baseline)|, made "bad-positive" by the metric's direction
    REGRESSION    bad change  >  tolerance  AND one-sided Welch p (worse) < alpha
    IMPROVED      good change >  tolerance  AND one-sided Welch p (better) < alpha
    INCONCLUSIVE  |change| > tolerance but not significant (or no variance estimate: a single round),
                  or the (1 - alpha) bound of the bad change exceeds 2 x tolerance (the runs are too noisy
                  to rule out a large regression)
    PASS          otherwise

Defaults: tolerance 8 %, alpha 0.05. With 5 rounds a side and 5 % multiplicative noise this keeps the
A/A false-alarm rate near 0.7 % (< 1 %) and detects a 15 % regression about 97 % of the time (>= 95 %);
`benchmarks/gate_statistics.py` measures both. Requiring significance as well as the tolerance is asv's
rule; the significance leg is what keeps a single stray round from failing CI (it inflates the variance).

Deterministic metrics (steps, tokens, FLOPs) are compared on their value with their own tolerance, no test.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from .errors import UsageError
from .results import Metric
from .stats import t_isf, t_sf, welch

__all__ = [
    "DEFAULT_ALPHA", "DEFAULT_TOLERANCE", "INCONCLUSIVE_FACTOR", "VERDICTS",
    "Verdict", "parse_tolerance", "compare_metric", "compare_record",
]

DEFAULT_TOLERANCE = 0.08  # fraction; see module docstring and docs/statistics.md for why 8 %
DEFAULT_ALPHA = 0.05  # one-sided significance level of the Welch test
INCONCLUSIVE_FACTOR = 2.0  # "cannot rule out a regression of this many tolerances" => INCONCLUSIVE

VERDICTS = ("PASS", "IMPROVED", "REGRESSION", "INCONCLUSIVE", "NO_BASELINE")

HINT_MORE_ROUNDS = ("spread too large to decide: run more rounds (--energy-rounds, or call a protocol "
                    "several times)")
HINT_ONE_ROUND = ("a single sample on one side gives no spread estimate: run more rounds (--energy-rounds, "
                  "or call a protocol several times)")

_TOLERANCE_RE = re.compile(r"\A(?:\d+(?:\.\d*)?|\.\d+)%?\Z")
_TOLERANCE_SYNTAX = "a percentage like '10%' or '7.5%', or a fraction like '0.1' (non-negative)"


def parse_tolerance(text: str) -> float:
    """'10%' -> 0.10, '7.5%' -> 0.075, '0.1' -> 0.1 (a bare number is a fraction). Returns a fraction.

    Anything else (negative, NaN, 'abc', '10 %', '10%%') raises UsageError naming the value and the syntax.
    """
    s = str(text).strip()
    if not _TOLERANCE_RE.match(s):
        raise UsageError(f"bad tolerance {text!r}: expected {_TOLERANCE_SYNTAX}")
    if s.endswith("%"):
        return float(s[:-1]) / 100.0
    return float(s)


@dataclass
class Verdict:
    """The outcome of comparing one metric with its baseline."""

    metric: str
    unit: str
    kind: str
    better: str
    verdict: str  # one of VERDICTS
    baseline_value: float | None  # the statistic compared: mean of the samples; None for NO_BASELINE
    current_value: float
    change_pct: float | None  # signed, (current - baseline) / |baseline| * 100; None for NO_BASELINE
    p_value: float | None  # one-sided p for the direction of the change; None for deterministic metrics
    tolerance: float  # fraction
    n_baseline: int
    n_current: int
    hint: str = ""

    def message(self) -> str:
        """One human line, e.g. 'energy_j: 10.0 J -> 11.9 J (+19.0 %, p=0.0012, tolerance 8 %) REGRESSION'."""
        cur = _fmt(self.current_value, self.unit)
        if self.verdict == "NO_BASELINE" or self.baseline_value is None:
            text = f"{self.metric}: {cur} (no baseline) {self.verdict}"
        else:
            parts = [_fmt_pct(self.change_pct)]
            if self.p_value is not None:
                parts.append(f"p={_fmt_p(self.p_value)}")
            parts.append(f"tolerance {self.tolerance * 100:g} %")
            if self.kind != "deterministic":
                parts.append(f"n={self.n_baseline}/{self.n_current}")
            text = (f"{self.metric}: {_fmt(self.baseline_value, self.unit)} -> {cur} "
                    f"({', '.join(parts)}) {self.verdict}")
        return f"{text}: {self.hint}" if self.hint else text


def _fmt(value: float | None, unit: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.4g} {unit}".rstrip()


def _fmt_pct(change_pct: float | None) -> str:
    if change_pct is None or math.isnan(change_pct):
        return "change n/a"
    return f"{change_pct:+.1f} %"


def _fmt_p(p: float) -> str:
    if math.isnan(p):
        return "n/a"
    return f"{p:.2g}" if p < 0.001 else f"{p:.3f}"


def _mean(samples: list[float]) -> float:
    return math.fsum(samples) / len(samples)


def _relative(diff: float, base: float) -> float:
    """diff / |base|, with the sign of diff kept; 0/0 -> 0, x/0 -> +-inf."""
    if base == 0.0:
        return 0.0 if diff == 0.0 else math.copysign(math.inf, diff)
    return diff / abs(base)


def _verdict(baseline: Metric, current: Metric, verdict: str, base_value: float | None, cur_value: float,
             p_value: float | None, tolerance: float, hint: str = "") -> Verdict:
    change_pct = None if base_value is None else _relative(cur_value - base_value, base_value) * 100.0
    return Verdict(
        metric=current.name, unit=current.unit, kind=current.kind, better=current.better, verdict=verdict,
        baseline_value=base_value, current_value=cur_value, change_pct=change_pct, p_value=p_value,
        tolerance=tolerance, n_baseline=len(baseline.samples), n_current=len(current.samples), hint=hint,
    )


def compare_metric(baseline: Metric, current: Metric, tolerance: float = DEFAULT_TOLERANCE,
                   alpha: float = DEFAULT_ALPHA) -> Verdict:
    """Compare one metric with its baseline (see the module docstring for the rule). Direction-aware."""
    if not (tolerance >= 0.0 and math.isfinite(tolerance)):
        raise UsageError(f"tolerance must be a finite fraction >= 0, got {tolerance!r}")
    if not 0.0 < alpha <= 0.5:  # a one-sided level above 0.5 would call a change in the wrong direction significant
        raise UsageError(f"alpha must be in (0, 0.5], got {alpha!r}")
    if current.better not in ("lower", "higher"):
        raise UsageError(f"metric {current.name!r}: better must be 'lower' or 'higher', got {current.better!r}")
    cur_value = _mean(current.samples) if current.samples else math.nan

    # A baseline recorded with another unit, direction or kind cannot be compared number for number.
    for field_name in ("unit", "better", "kind"):
        old, new = getattr(baseline, field_name), getattr(current, field_name)
        if old != new:
            return _verdict(baseline, current, "INCONCLUSIVE", None, cur_value, None, tolerance,
                            f"{field_name} changed: {old!r} (baseline) != {new!r} (now): re-record the baseline")
    if not baseline.samples or not current.samples:
        side = "baseline" if not baseline.samples else "current run"
        return _verdict(baseline, current, "INCONCLUSIVE", None, cur_value, None, tolerance,
                        f"the {side} has no samples")

    base_value = _mean(baseline.samples)
    # sign = +1 when an increase is worse; "bad" quantities below are positive when things got worse.
    sign = 1.0 if current.better == "lower" else -1.0
    bad_change = sign * _relative(cur_value - base_value, base_value)

    if current.kind == "deterministic":
        if bad_change > tolerance:
            verdict = "REGRESSION"
        elif -bad_change > tolerance:
            verdict = "IMPROVED"
        else:
            verdict = "PASS"
        return _verdict(baseline, current, verdict, base_value, cur_value, None, tolerance)

    diff, se, df = welch(baseline.samples, current.samples)
    bad_diff = sign * diff
    if math.isnan(se):  # a single round on a side: no spread, no test
        if abs(bad_change) > tolerance:
            return _verdict(baseline, current, "INCONCLUSIVE", base_value, cur_value, math.nan, tolerance,
                            HINT_ONE_ROUND)
        return _verdict(baseline, current, "PASS", base_value, cur_value, math.nan, tolerance, HINT_ONE_ROUND)

    if se == 0.0:  # both sides constant: the difference is exact
        p_worse = math.nan if bad_diff == 0 else (0.0 if bad_diff > 0 else 1.0)
    else:
        p_worse = t_sf(bad_diff / se, df)
    p_better = math.nan if math.isnan(p_worse) else 1.0 - p_worse

    if bad_change > tolerance:
        if p_worse < alpha:
            return _verdict(baseline, current, "REGRESSION", base_value, cur_value, p_worse, tolerance)
        return _verdict(baseline, current, "INCONCLUSIVE", base_value, cur_value, p_worse, tolerance,
                        HINT_MORE_ROUNDS)
    if -bad_change > tolerance:
        if p_better < alpha:
            return _verdict(baseline, current, "IMPROVED", base_value, cur_value, p_better, tolerance)
        return _verdict(baseline, current, "INCONCLUSIVE", base_value, cur_value, p_better, tolerance,
                        HINT_MORE_ROUNDS)
    # Within tolerance; report the p-value for the direction the estimate moved.
    p_reported = p_worse if bad_change >= 0 else p_better
    if se > 0.0:
        # Is the (1 - alpha) upper confidence bound of the bad change above INCONCLUSIVE_FACTOR x tolerance?
        # Asked as "is t_sf at that bound's t above alpha" to need one t_sf, not a quantile. The baseline
        # mean in the denominator is treated as exact: a first-order approximation, fine at the coefficients
        # of variation where any decision is possible.
        limit = INCONCLUSIVE_FACTOR * tolerance * abs(base_value)
        if t_sf((limit - bad_diff) / se, df) > alpha:
            bad_upper = _relative(bad_diff + t_isf(alpha, df) * se, base_value)
            return _verdict(baseline, current, "INCONCLUSIVE", base_value, cur_value, p_reported, tolerance,
                            f"{HINT_MORE_ROUNDS} (a regression of up to {bad_upper * 100:.0f} % "
                            "cannot be ruled out)")
    return _verdict(baseline, current, "PASS", base_value, cur_value, p_reported, tolerance)


def compare_record(baseline_metrics: dict[str, Metric], current_metrics: dict[str, Metric],
                   tolerances: dict[str, float], default_tolerance: float = DEFAULT_TOLERANCE,
                   deterministic_tolerance: float = 0.0, alpha: float = DEFAULT_ALPHA) -> list[Verdict]:
    """Verdicts for every metric of the current run, sorted by metric name.

    `tolerances` overrides per metric name; otherwise measured metrics use `default_tolerance` and
    deterministic ones `deterministic_tolerance`. A metric missing from the baseline gets NO_BASELINE; a
    metric only in the baseline is ignored (a test may legitimately stop reporting it).
    """
    verdicts = []
    for name in sorted(current_metrics):
        current = current_metrics[name]
        if name in tolerances:
            tolerance = tolerances[name]
        elif current.kind == "deterministic":
            tolerance = deterministic_tolerance
        else:
            tolerance = default_tolerance
        baseline = baseline_metrics.get(name)
        if baseline is None:
            verdicts.append(Verdict(
                metric=name, unit=current.unit, kind=current.kind, better=current.better, verdict="NO_BASELINE",
                baseline_value=None, current_value=_mean(current.samples) if current.samples else math.nan,
                change_pct=None, p_value=None, tolerance=tolerance, n_baseline=0,
                n_current=len(current.samples), hint="no baseline stored: run with --energy-save-baseline"))
            continue
        verdicts.append(compare_metric(baseline, current, tolerance, alpha))
    return verdicts
