"""Compare a test's metrics with its stored baseline: PASS / IMPROVED / REGRESSION / INCONCLUSIVE.

A measured metric whose baseline has a run history of at least 3 runs is judged by the history rule
(gate/history.py: this run against the spread of the earlier runs' means, which sees run-to-run drift).
With fewer runs the within-run rule below compares this run's rounds with the latest saved run's rounds
(see docs/statistics.md for the derivation and the measured rates of both):

    change = (mean(current) - mean(baseline)) / |mean(baseline)|, made "bad-positive" by the metric's direction
    REGRESSION    bad change  >  tolerance  AND one-sided Welch p (worse) < alpha
    IMPROVED      good change >  tolerance  AND one-sided Welch p (better) < alpha
    INCONCLUSIVE  |change| > tolerance but not significant (or no variance estimate: a single round),
                  or the (1 - alpha) bound of the bad change exceeds 2 x tolerance (the runs are too noisy
                  to rule out a large regression)
    PASS          otherwise

Requiring significance as well as the tolerance is asv's rule; the significance leg is what keeps a single
stray round from failing CI (it inflates the variance). Deterministic metrics (steps, tokens, FLOPs) are
compared on their value with their own tolerance, no test.
"""

from __future__ import annotations

import math
from typing import Any

from collections.abc import Callable, Mapping, Sequence

from ..errors import UsageError
# Verdict is data of the run model (records); imported here too, where the gate builds it.
from ..records import RULE_TEXT, Better, Kind, Metric, RuleKind, Verdict, VerdictKind, is_decisive
from . import DEFAULT_TOLERANCE
from . import history as hist
from .history import INCONCLUSIVE_FACTOR
from .stats import t_isf, t_sf, welch

__all__ = ["DEFAULT_ALPHA", "INCONCLUSIVE_FACTOR", "Rule", "Verdict", "compare_metric", "compare_record",
           "is_decisive"]

DEFAULT_ALPHA = 0.05  # one-sided significance level of the Welch test


class Rule:
    """The display text of each rule (records.RULE_TEXT); code decides on `Verdict.rule_kind`, never on these."""

    WITHIN_RUN = RULE_TEXT[RuleKind.WITHIN_RUN]
    DETERMINISTIC = RULE_TEXT[RuleKind.DETERMINISTIC]
    NONE = RULE_TEXT[RuleKind.NONE]
    HISTORY = hist.RULE_PREFIX  # "history: 5 runs, probe-normalised, pooled": gate/history.py


_KIND_OF_TEXT = {Rule.WITHIN_RUN: RuleKind.WITHIN_RUN, Rule.DETERMINISTIC: RuleKind.DETERMINISTIC,
                 Rule.NONE: RuleKind.NONE}


HINT_MORE_ROUNDS = ("spread too large to decide: run more rounds (--energy-rounds), or save 3 baseline runs "
                    "(--energy-save-baseline) to judge against the run history")
HINT_ONE_ROUND = ("a single sample on one side gives no spread estimate: save 3 baseline runs "
                  "(--energy-save-baseline) to judge against the run history, or run more rounds (--energy-rounds)")
HINT_NO_BASELINE = "no baseline stored: run with --energy-save-baseline"


def _relative(diff: float, base: float) -> float:
    """diff / |base|, with the sign of diff kept; 0/0 -> 0, x/0 -> +-inf."""
    if base == 0.0:
        return 0.0 if diff == 0.0 else math.copysign(math.inf, diff)
    return diff / abs(base)


class _Comparison:
    """One metric against its baseline; `verdict()` builds the Verdict with the shared fields."""

    def __init__(self, baseline: Metric, current: Metric, tolerance: float, alpha: float) -> None:
        if not (tolerance >= 0.0 and math.isfinite(tolerance)):
            raise UsageError(f"tolerance must be a finite fraction >= 0, got {tolerance!r}")
        # A one-sided level above 0.5 would call a change in the wrong direction significant.
        if not 0.0 < alpha <= 0.5:
            raise UsageError(f"alpha must be in (0, 0.5], got {alpha!r}")
        if current.better not in (Better.LOWER, Better.HIGHER):
            raise UsageError(f"metric {current.name!r}: better must be 'lower' or 'higher', got {current.better!r}")
        self.baseline, self.current, self.tolerance, self.alpha = baseline, current, tolerance, alpha
        self.current_value = current.mean
        self.base_value = baseline.mean if baseline.samples else None
        # +1 when an increase is worse; "bad" quantities are positive when things got worse.
        self.sign = 1.0 if current.better == Better.LOWER else -1.0

    @property
    def bad_change(self) -> float:
        return self.sign * _relative(self.current_value - self.base_value, self.base_value)

    def verdict(self, kind: VerdictKind, p_value: float | None = None, hint: str = "",
                rule: str = Rule.WITHIN_RUN, compared: bool = True) -> Verdict:
        base = self.base_value if compared else None
        change_pct = None if base is None else _relative(self.current_value - base, base) * 100.0
        return Verdict(
            metric=self.current.name, unit=self.current.unit, kind=Kind(self.current.kind),
            better=Better(self.current.better), verdict=kind, baseline_value=base,
            current_value=self.current_value, change_pct=change_pct, p_value=p_value, tolerance=self.tolerance,
            n_baseline=len(self.baseline.samples), n_current=len(self.current.samples), hint=hint, rule=rule,
            rule_kind=_KIND_OF_TEXT[rule])

    def incomparable(self) -> Verdict | None:
        """INCONCLUSIVE when the numbers cannot be compared at all (other unit, direction, kind; no samples)."""
        for field_name in ("unit", "better", "kind"):
            old, new = str(getattr(self.baseline, field_name)), str(getattr(self.current, field_name))
            if old != new:
                return self.verdict(VerdictKind.INCONCLUSIVE, None, f"{field_name} changed: {old!r} (baseline) "
                                    f"!= {new!r} (now): re-record the baseline", Rule.NONE, compared=False)
        if not self.baseline.samples or not self.current.samples:
            side = "baseline" if not self.baseline.samples else "current run"
            return self.verdict(VerdictKind.INCONCLUSIVE, None, f"the {side} has no samples", Rule.NONE,
                                compared=False)
        return None

    def deterministic(self) -> Verdict:
        bad = self.bad_change
        kind = (VerdictKind.REGRESSION if bad > self.tolerance else
                VerdictKind.IMPROVED if -bad > self.tolerance else VerdictKind.PASS)
        return self.verdict(kind, None, rule=Rule.DETERMINISTIC)

    def measured(self) -> Verdict:
        """The within-run rule: tolerance and one-sided Welch on the round samples."""
        bad_change = self.bad_change
        diff, se, df = welch(self.baseline.samples, self.current.samples)
        bad_diff = self.sign * diff
        if math.isnan(se):  # a single round on a side: no spread, no test
            kind = VerdictKind.INCONCLUSIVE if abs(bad_change) > self.tolerance else VerdictKind.PASS
            return self.verdict(kind, math.nan, HINT_ONE_ROUND)
        if se == 0.0:  # both sides constant: the difference is exact
            p_worse = math.nan if bad_diff == 0 else (0.0 if bad_diff > 0 else 1.0)
        else:
            p_worse = t_sf(bad_diff / se, df)
        p_better = math.nan if math.isnan(p_worse) else 1.0 - p_worse
        if bad_change > self.tolerance:
            if p_worse < self.alpha:
                return self.verdict(VerdictKind.REGRESSION, p_worse)
            return self.verdict(VerdictKind.INCONCLUSIVE, p_worse, HINT_MORE_ROUNDS)
        if -bad_change > self.tolerance:
            if p_better < self.alpha:
                return self.verdict(VerdictKind.IMPROVED, p_better)
            return self.verdict(VerdictKind.INCONCLUSIVE, p_better, HINT_MORE_ROUNDS)
        # Within tolerance; report the p-value for the direction the estimate moved.
        p_reported = p_worse if bad_change >= 0 else p_better
        if se > 0.0:
            hint = self._cannot_rule_out(bad_diff, se, df)
            if hint:
                return self.verdict(VerdictKind.INCONCLUSIVE, p_reported, hint)
        return self.verdict(VerdictKind.PASS, p_reported)

    def _cannot_rule_out(self, bad_diff: float, se: float, df: float) -> str:
        """A hint when the (1 - alpha) upper bound of the bad change exceeds INCONCLUSIVE_FACTOR x tolerance.

        Asked as "is t_sf at that bound's t above alpha" to need one t_sf, not a quantile. The baseline mean
        in the denominator is treated as exact: a first-order approximation, fine at the coefficients of
        variation where any decision is possible.
        """
        limit = INCONCLUSIVE_FACTOR * self.tolerance * abs(self.base_value)
        if t_sf((limit - bad_diff) / se, df) <= self.alpha:
            return ""
        bad_upper = _relative(bad_diff + t_isf(self.alpha, df) * se, self.base_value)
        return f"{HINT_MORE_ROUNDS} (a regression of up to {bad_upper * 100:.0f} % cannot be ruled out)"


    def from_history(self, hv: hist.HistoryVerdict) -> Verdict:
        """The history rule's verdict: `baseline_value` is the value this run was expected to have."""
        finite = [x if math.isfinite(x) else None for x in (hv.expected, hv.change, hv.limit)]
        expected, change, limit = finite
        return Verdict(
            metric=self.current.name, unit=self.current.unit, kind=Kind(self.current.kind),
            better=Better(self.current.better), verdict=hv.verdict, baseline_value=expected,
            current_value=self.current_value, change_pct=None if change is None else change * 100.0,
            p_value=hv.p_value, tolerance=self.tolerance, n_baseline=hv.k, n_current=len(self.current.samples),
            hint="; ".join(x for x in [hv.hint, *hv.notes] if x), rule=hv.rule, limit=limit,
            rule_kind=RuleKind.HISTORY)


def compare_metric(baseline: Metric, current: Metric, tolerance: float = DEFAULT_TOLERANCE,
                   alpha: float = DEFAULT_ALPHA, *, history: Sequence[hist.RunSummary] | None = None,
                   pooled: Mapping[bool, hist.Pooled] | None = None, current_probe: float | None = None,
                   exponent: float = 0.0, history_alpha: float = hist.HISTORY_ALPHA) -> Verdict:
    """Compare one metric with its baseline (see the module docstring for the rules). Direction-aware.

    `history`: the baseline's runs of this metric, oldest first (with probe seconds where usable); the
    history rule decides when at least MIN_HISTORY_RUNS of them are usable, with `pooled` (gate/history.pool
    of this metric's noise family), this test's `current_probe` and the metric's probe `exponent`.
    """
    comparison = _Comparison(baseline, current, tolerance, alpha)
    incomparable = comparison.incomparable()
    if incomparable is not None:
        return incomparable
    if current.kind == Kind.DETERMINISTIC:
        return comparison.deterministic()
    if history:
        hv = hist.judge_against_history(current.samples, history, better=str(current.better),
                                        tolerance=tolerance, alpha=history_alpha, pooled=pooled,
                                        current_probe=current_probe, exponent=exponent)
        if hv is not None:
            return comparison.from_history(hv)
    return comparison.measured()


def no_baseline(current: Metric, tolerance: float) -> Verdict:
    return Verdict(metric=current.name, unit=current.unit, kind=Kind(current.kind), better=Better(current.better),
                   verdict=VerdictKind.NO_BASELINE, baseline_value=None, current_value=current.mean,
                   change_pct=None, p_value=None, tolerance=tolerance, n_baseline=0,
                   n_current=len(current.samples), hint=HINT_NO_BASELINE, rule=Rule.NONE,
                   rule_kind=RuleKind.NONE)


def compare_record(baseline_metrics: dict[str, Metric], current_metrics: dict[str, Metric],
                   tolerance_for: Any, alpha: float = DEFAULT_ALPHA, *,
                   histories: Mapping[str, Sequence[hist.RunSummary]] | None = None,
                   pools: Callable[[str, str], Mapping[bool, hist.Pooled] | None] | None = None,
                   current_probe: float | None = None, probing: bool = False) -> list[Verdict]:
    """Verdicts for every metric of the current run, sorted by metric name.

    `tolerance_for(name, deterministic)` gives each metric's tolerance (TestSettings.tolerance_for). A metric
    missing from the baseline gets NO_BASELINE; a metric only in the baseline is ignored (a test may
    legitimately stop reporting it). `histories` (per metric), `pools(unit, name)` and `current_probe` feed the
    history rule (compare_metric); with `probing` False no metric is divided by the probe.
    """
    verdicts = []
    for name in sorted(current_metrics):
        current = current_metrics[name]
        tolerance = tolerance_for(name, current.kind == Kind.DETERMINISTIC)
        baseline = baseline_metrics.get(name)
        if baseline is None:
            verdicts.append(no_baseline(current, tolerance))
            continue
        exponent = hist.probe_exponent(current.unit) if probing else 0
        verdicts.append(compare_metric(
            baseline, current, tolerance, alpha, history=(histories or {}).get(name),
            pooled=pools(current.unit, name) if pools is not None else None,
            current_probe=current_probe if exponent else None, exponent=exponent))
    return verdicts
