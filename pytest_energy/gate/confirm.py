"""Confirm on suspicion: re-run a test the history rule suspects, in the same session (issue 16, point 1).

On a shared runner drift comes in bursts (a noisy neighbour for a few minutes), and a history of 3-10 runs
cannot predict a burst: one slow run is convicted although the code did not change. So the history rule is a
screen: a measured metric it convicts (REGRESSION, p < HISTORY_ALPHA = 0.001) or suspects (INCONCLUSIVE beyond
the tolerance with p < CONFIRM_ALPHA = 0.01) makes the caller measure the test again N times at the end of the
session, and `confirm` judges every run of the session with the same history rule (gate/history.py: same
history, pool, probe treatment; the threshold is not re-derived here) by one of two rules:

- "all" (the default): confirmed when every re-run repeats it -- beyond the tolerance with a one-sided p below
  CONFIRM_ALPHA. A transient must hit the first run *and* all N re-runs to fail CI; the caller may stop at the
  first re-run that does not (`decided_after`).
- "median": confirmed when the median of the session's runs (first and re-runs, their means) is one. With
  N = 2 that is "at least one of the two re-runs": more power, less protection against a burst that is still
  going on at the first re-run.

*When* the re-runs happen matters more than N: a burst lasts several measurements, so re-runs right after the
first run often fall into the same burst. In the bursty simulation (tools/gate_statistics.py --confirm-ab, 300
suite runs of 17 tests) unchanged suite runs failed 28 % of the time with the history rule alone, 22 % with 2
re-runs right after the first run, and 3.7 % with 2 re-runs at the end of the session (DEFAULT_WHEN). Hence
rule "all", re-runs after the session's last test (under xdist: after the worker's last test, on the same
worker).

Why p < 0.01 and 3 re-runs (seventh session): after 3 saves the run effect shared by the suite has 2 df,
t(0.999, 2) = 22.3, and a history whose saves differ by a few percent puts the 0.001 limit near +76 %. On a
2-core VM a planted 2x slowdown was convicted at +97 % and its re-runs, +105 % and +71 %, fell under that limit
("a transient"), and in other runs it measured +70 % at p = 0.0014 and was never suspected. t(0.99, 2) = 6.96
puts the limit near +20 % on the same history; no single run at 0.01 fails CI, only all N + 1 together. The
bursty simulation (1000 suite runs; docs/statistics.md, "The re-runs' level") prices each step: re-runs at
0.01 fail more unchanged suite runs (2 re-runs: 6.9 % against 5.8 % before), a third re-run brings that back
(5.8 %), and suspecting at 0.01 as well costs 2 points more (7.8 %; 4.7 % against 2.1 % on a noisy VM) for
detection of 2x in 72 % of tests instead of 60 % (52 % instead of 29 %) and of 1.3x in 35 % instead of 23 %.
The third re-run costs time only where the suspicion persists: a transient stops at the first re-run that
clears it. DEFAULT_RERUNS = 3.

Wording (issue 16): "confirmed by 3 re-runs: +31 %, +28 %, +33 %, +30 %" (the first run's change, then the
re-runs'), and "not confirmed: a transient (+31 %, then +2 %, +4 % in 2 re-runs)". Pure Python; no pytest.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..records import Outcome, Rerun, RuleKind, Verdict, VerdictKind
from . import history as _history
from .history import HISTORY_ALPHA, HistoryVerdict, Pooled, RunSummary

__all__ = ["CONFIRM_ALPHA", "DEFAULT_RERUNS", "DEFAULT_RULE", "DEFAULT_WHEN", "PROMOTED", "RULES", "STILL_BEYOND",
           "STILL_BEYOND_HINT", "TRANSIENT", "Confirmation", "confirm", "confirm_outcome", "confirmation_summary",
           "decide_confirmation", "judge_run", "repeats", "still_convicted", "suspected"]

# The history rule's entry point.
_judge = _history.judge_against_history

from . import DEFAULT_RERUNS  # noqa: E402,F401  (--energy-confirm default, defined where config reads it)
DEFAULT_RULE = "all"
# The one-sided level at which a run raises a suspicion and a re-run repeats it (the history rule alone, with
# --energy-confirm 0, convicts at HISTORY_ALPHA): see above.
CONFIRM_ALPHA = 0.01
# How an unconfirmed suspicion is labelled: the re-runs came back (within the tolerance, or lost most of the
# change): it passes; or they kept it without repeating it at p < CONFIRM_ALPHA: INCONCLUSIVE, which passes
# unless --energy-fail-on-inconclusive. Not "not a transient": the re-runs stop at the first that does not
# repeat the suspicion, so that label would often rest on one run (eighth session: +21 %, then +11 %).
TRANSIENT = "not confirmed: a transient"
# How a REGRESSION that the first run only suspected (INCONCLUSIVE at p < CONFIRM_ALPHA) is marked once confirmed.
PROMOTED = f"every run beyond the tolerance at p < {CONFIRM_ALPHA:g}"
STILL_BEYOND = f"not confirmed, inconclusive: the re-runs stayed beyond the tolerance, not at p < {CONFIRM_ALPHA:g}"
# The hint of a metric left INCONCLUSIVE by its re-runs: what would decide it.
STILL_BEYOND_HINT = ("the re-runs kept the change but the history is too spread to tell it from drift: "
                     "--energy-against REV measures the base revision beside this one, or save more runs")
# Where the caller should put the re-runs: "end" = after the session's last test (a burst has moved on by
# then), "next" = right after the first run. Not used here; the plugin that schedules re-runs reads it.
DEFAULT_WHEN = "end"
RULES = ("all", "median")


@dataclass(frozen=True)
class Confirmation:
    """The outcome of confirming one metric's REGRESSION.

    first: the history verdict of the run that raised the suspicion; reruns: the verdicts of the re-runs
    (None where the history rule could not judge a re-run); decided_after: how many re-runs the decision
    needed (with "all", the first re-run that is not a REGRESSION settles it).
    """

    confirmed: bool
    first: HistoryVerdict
    reruns: tuple[HistoryVerdict, ...]
    rule: str
    decided_after: int
    median_change: float = math.nan

    @property
    def verdict(self) -> VerdictKind:
        """REGRESSION when confirmed; PASS otherwise (a transient passes, visibly: see `text`)."""
        return VerdictKind.REGRESSION if self.confirmed else VerdictKind.PASS

    @property
    def changes(self) -> list[float]:
        """Relative changes against the expected value: the first run, then each re-run."""
        return [self.first.change] + [v.change for v in self.reruns]

    def text(self) -> str:
        n = len(self.reruns)
        if not n:
            return "not re-run (--energy-confirm 0)"
        median = f" (median {_pct(self.median_change)})" if self.rule == "median" else ""
        if self.confirmed:
            return f"confirmed by {_reruns(n)}{median}: " + ", ".join(_pct(c) for c in self.changes)
        rest = ", ".join(_pct(v.change) for v in self.reruns)
        return f"{TRANSIENT} ({_pct(self.first.change)}, then {rest} in {_reruns(n)}{median})"


def _pct(x: float) -> str:
    return "n/a" if not math.isfinite(x) else f"{x * 100:+.0f} %"


def _samples(run: float | Sequence[float], what: str) -> list[float]:
    xs = [run] if isinstance(run, (int, float)) and not isinstance(run, bool) else list(run)  # type: ignore[arg-type]
    if not xs or not all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in xs):
        raise ValueError(f"{what} needs at least one finite value, got {run!r}")
    return [float(x) for x in xs]


def judge_run(run: float | Sequence[float], history: Sequence[RunSummary], *, better: str, tolerance: float,
              pooled: Pooled | Mapping[bool, Pooled] | None = None, probe: float | None = None,
              exponent: float = 0.0, alpha: float = HISTORY_ALPHA) -> HistoryVerdict | None:
    """One run of the session (a value or its round samples) judged by the history rule, as the first run was."""
    return _judge(_samples(run, "a run"), history, better=better, tolerance=tolerance, alpha=alpha, pooled=pooled,
                  current_probe=probe, exponent=exponent)


def confirm(history: Sequence[RunSummary], first: float | Sequence[float], reruns: Sequence[float | Sequence[float]],
            *, better: str = "lower", tolerance: float, pooled: Pooled | Mapping[bool, Pooled] | None = None,
            current_probe: float | None = None, rerun_probes: Sequence[float | None] | None = None,
            exponent: float = 0.0, alpha: float = CONFIRM_ALPHA, rule: str = DEFAULT_RULE) -> Confirmation:
    """Decide whether the suspicion the history rule raised on `first` is confirmed by the session's `reruns`.

    history, pooled, current_probe, exponent: what judged the first run (the arguments of
    history.judge_against_history); every run of the session is judged at `alpha` (the suspicion: a REGRESSION
    at CONFIRM_ALPHA; HISTORY_ALPHA asks the first run for a conviction, as before the seventh session). first
    and each re-run: a value or a run's round samples. rerun_probes: each
    re-run's own probe seconds (default: the first run's). Raises ValueError when the first run is not a history
    REGRESSION (nothing to confirm), for an unknown rule, mismatched probes, or a value that is not finite.
    """
    if rule not in RULES:
        raise ValueError(f"rule must be one of {', '.join(RULES)}, got {rule!r}")
    runs = [_samples(r, f"re-run {i + 1}") for i, r in enumerate(reruns)]
    probes = list(rerun_probes) if rerun_probes is not None else [current_probe] * len(runs)
    if len(probes) != len(runs):
        raise ValueError(f"{len(probes)} re-run probes for {len(runs)} re-runs")
    kw = dict(better=better, tolerance=tolerance, pooled=pooled, exponent=exponent, alpha=alpha)
    head = judge_run(first, history, probe=current_probe, **kw)  # type: ignore[arg-type]
    if head is None or head.verdict != VerdictKind.REGRESSION:
        got = "no history verdict" if head is None else head.verdict
        raise ValueError(f"confirm() needs a history REGRESSION (at alpha {alpha:g}) of the first run, got {got}")
    verdicts = []
    for run, probe in zip(runs, probes):
        v = judge_run(run, history, probe=probe, **kw)  # type: ignore[arg-type]
        if v is None:  # the same history judged the first run: only a broken re-run gets here
            raise ValueError("the history rule could not judge a re-run")
        verdicts.append(v)
    median = None
    if rule == "median":
        # one value per run (its mean), judged like a one-round run; the probe is the median run's
        means = [statistics.fmean(_samples(first, "the first run"))] + [statistics.fmean(r) for r in runs]
        all_probes = [current_probe] + probes
        order = sorted(range(len(means)), key=means.__getitem__)
        mid = order[len(order) // 2] if len(order) % 2 else None
        value = means[mid] if mid is not None else statistics.median(means)
        median = judge_run(value, history, probe=all_probes[mid] if mid is not None else current_probe,
                           **kw)  # type: ignore[arg-type]
    return decide_confirmation(head, verdicts, rule=rule, median=median)


def decide_confirmation(first: HistoryVerdict, reruns: Sequence[HistoryVerdict], *, rule: str = DEFAULT_RULE,
                        median: HistoryVerdict | None = None) -> Confirmation:
    """The rule on verdicts already taken by the history rule (`confirm` judges, then calls this; the
    simulation calls it directly with cached verdicts). median: the verdict of the session's median value,
    needed by rule "median" when there are re-runs."""
    if rule not in RULES:
        raise ValueError(f"rule must be one of {', '.join(RULES)}, got {rule!r}")
    if first.verdict != VerdictKind.REGRESSION:
        raise ValueError(f"nothing to confirm: the first run is {first.verdict}, not a REGRESSION")
    reruns = tuple(reruns)
    if rule == "all":
        bad = [i for i, v in enumerate(reruns) if v.verdict != VerdictKind.REGRESSION]
        return Confirmation(not bad, first, reruns, rule, bad[0] + 1 if bad else len(reruns))
    if not reruns:
        return Confirmation(True, first, reruns, rule, 0, median_change=first.change)
    if median is None:
        raise ValueError("rule 'median' needs the verdict of the session's median value")
    return Confirmation(median.verdict == VerdictKind.REGRESSION, first, reruns, rule, len(reruns),
                        median_change=median.change)


# --- the rule on a session's judged outcomes (what the plugin calls) ---------------------------------------

def suspected(outcome: Outcome) -> list[str]:
    """The metrics of a judged test that the re-runs must confirm or clear, while the gate is gating: measured
    metrics a statistical rule convicted, and -- the history rule's INCONCLUSIVE -- those beyond the tolerance at
    p < CONFIRM_ALPHA (`repeats`): after 3 saves a planted 2x slowdown measured +70 % at p = 0.0014 against a
    limit of +76 % and passed unseen. Exact values (deterministic metrics) are not re-run: they do not drift."""
    if not outcome.gating:
        return []
    return [v.metric for v in outcome.verdicts
            if v.rule_kind in (RuleKind.HISTORY, RuleKind.WITHIN_RUN) and repeats(v)]


def repeats(rerun: Verdict | None) -> bool:
    """A run's verdict raises or repeats the suspicion (rule "all"): a REGRESSION, or -- by the history rule --
    beyond the tolerance in the worse direction with a one-sided p below CONFIRM_ALPHA (the records hold the
    verdict at HISTORY_ALPHA and its p, so this is the history rule's REGRESSION at CONFIRM_ALPHA)."""
    if rerun is None:
        return False
    if rerun.verdict == VerdictKind.REGRESSION:
        return True
    return (rerun.rule_kind == RuleKind.HISTORY and rerun.worse_beyond_tolerance and rerun.p_value is not None
            and rerun.p_value < CONFIRM_ALPHA)


def still_convicted(first: Outcome, reruns: Sequence[Outcome]) -> list[str]:
    """The suspected metrics every re-run so far convicted too (rule "all"): re-running stops when none is left."""
    metrics = suspected(first)
    for outcome in reruns:
        bad = {v.metric for v in outcome.verdicts if repeats(v)}
        metrics = [m for m in metrics if m in bad]
    return metrics


def confirm_outcome(first: Outcome, reruns: Sequence[Outcome], *, planned: int) -> list[Verdict]:
    """The verdicts of a suspected test after its re-runs (rule "all"): a suspicion every re-run repeated is a
    REGRESSION, with how it was confirmed (an INCONCLUSIVE first run is promoted, without the first run's limit,
    which is the screen's, and says so); a suspicion the re-runs did not repeat is marked as a transient (a
    REGRESSION becomes PASS, an INCONCLUSIVE stays one), or, where every re-run kept most of the change without
    repeating it, becomes INCONCLUSIVE (STILL_BEYOND). Each verdict keeps its re-runs' figures (`reruns`).

    first: the outcome of the run that raised the suspicion; reruns: the outcomes of the re-runs made, judged
    against the same baseline (the caller stops early once nothing is left to confirm); planned: how many
    re-runs --energy-confirm asked for (the text says when fewer were needed)."""
    suspects = set(suspected(first))
    out = []
    for v in first.verdicts:
        if v.metric not in suspects:
            out.append(v)
            continue
        again = [next((r for r in o.verdicts if r.metric == v.metric), None) for o in reruns]
        figures = tuple(Rerun.of(r) for r in again)
        changes = [v.change_pct] + [f.change_pct for f in figures]
        confirmed = bool(again) and all(repeats(r) for r in again)
        n = len(again)
        if confirmed:
            text = f"confirmed by {_reruns(n)}: " + ", ".join(_pct_of(c) for c in changes)
            if v.verdict == VerdictKind.REGRESSION:
                out.append(dataclasses.replace(v, confirmation=text, reruns=figures))
            else:  # the first run was only a suspicion: its limit and hint were the screen's
                text += f" ({PROMOTED})"
                out.append(dataclasses.replace(v, verdict=VerdictKind.REGRESSION, limit=None, hint="",
                                               confirmation=text, reruns=figures))
        else:
            rest = ", ".join(_pct_of(c) for c in changes[1:])
            early = f" (stopped early: {planned} planned)" if n < planned else ""
            # Re-runs that kept most of the change (beyond the tolerance and at least half the first run's change,
            # log scale) did not show a transient, only no significance (p >= 0.01) against a history too spread
            # to tell: INCONCLUSIVE, not PASS. (+81 %, then +13 % is a transient: seventh session.)
            lingering = bool(again) and all(r is not None and r.worse_beyond_tolerance and _kept(v, r) for r in again)
            lead = STILL_BEYOND if lingering else TRANSIENT
            text = f"{lead} ({_pct_of(changes[0])}, then {rest} in {_reruns(n)}{early})"
            if lingering:
                after = dict(verdict=VerdictKind.INCONCLUSIVE, limit=None, hint=STILL_BEYOND_HINT)
            else:
                after = dict(verdict=VerdictKind.PASS if v.verdict == VerdictKind.REGRESSION else v.verdict)
            out.append(dataclasses.replace(v, confirmation=text, reruns=figures, **after))
    return out


def confirmation_summary(verdicts: Sequence[Verdict], reruns: int) -> str:
    """The test's line after confirm_outcome: confirmed if any suspicion survived its re-runs; otherwise a
    transient, unless a metric's re-runs all kept most of its change (STILL_BEYOND: inconclusive)."""
    if any(v.confirmation and v.verdict == VerdictKind.REGRESSION for v in verdicts):
        return f"confirmed by {_reruns(reruns)}"
    if any(v.confirmation.startswith(STILL_BEYOND) for v in verdicts):
        return f"not confirmed, inconclusive ({_reruns(reruns)})"
    return f"{TRANSIENT} ({_reruns(reruns)})"


def _kept(first: Verdict, rerun: Verdict) -> bool:
    """The re-run kept at least half of the first run's change (log scale: +100 % keeps with +41 %)."""
    if first.change_pct is None or rerun.change_pct is None or min(first.change_pct, rerun.change_pct) <= -100.0:
        return False
    return abs(math.log1p(rerun.change_pct / 100.0)) >= 0.5 * abs(math.log1p(first.change_pct / 100.0))


def _reruns(n: int) -> str:
    return f"{n} re-run" if n == 1 else f"{n} re-runs"


def _pct_of(change_pct: float | None) -> str:
    return _pct(change_pct / 100.0) if change_pct is not None else "n/a"
