"""The same-job A/B of the suspected tests: pairs of (base, head) measurements until the sequential test decides.

`run_ab` drives it: per pair, one fresh process per side measures every test still undecided (base and head in
the pair's random order, `gate.sequential.pair_orders`); each chosen metric of each test feeds its own
`SequentialTest`; a test is done when all its metrics are decided or the budget (`max_pairs`) runs out. The
result per test is a list of verdicts (rule kind A/B) and a `Recheck`. The sides are handed in (`Sides`), so
the loop is tested without processes. No pytest import.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from ..gate.sequential import Decision, SequentialTest, Step, pair_orders
from ..records import Better, Kind, Metric, Outcome, Recheck, RuleKind, TestRecord, Verdict, VerdictKind, is_decisive
from .children import SideResult

__all__ = ["Sides", "Subject", "chosen_metrics", "flagged", "run_ab"]

# An A/B decision as the verdict every report already knows.
_VERDICT = {Decision.REGRESSION: VerdictKind.REGRESSION, Decision.SAME: VerdictKind.PASS,
            Decision.IMPROVED: VerdictKind.IMPROVED, Decision.UNKNOWN: VerdictKind.INCONCLUSIVE,
            Decision.CONTINUE: VerdictKind.INCONCLUSIVE}


class Sides(Protocol):
    """Measures node ids at one side; `exists` says which exist at the base (the others have no base)."""

    def exists(self, nodeids: Sequence[str]) -> tuple[set[str], dict[str, str]]: ...

    def measure(self, side: str, nodeids: Sequence[str]) -> SideResult: ...


@dataclass
class Subject:
    """One suspected test: its record and outcome from this session (the screen) and its tolerances."""

    nodeid: str
    record: TestRecord
    outcome: Outcome
    tolerance_for: Callable[[str], float]


def _suspect(v: Verdict) -> bool:
    """A REGRESSION, or an INCONCLUSIVE whose change is beyond the tolerance in the worse direction: worth a
    second look."""
    return v.verdict == VerdictKind.REGRESSION or (v.verdict == VerdictKind.INCONCLUSIVE and v.worse_beyond_tolerance)


def flagged(outcome: Outcome | None) -> bool:
    """Whether the screen suspects a test: a REGRESSION, an INCONCLUSIVE beyond the tolerance, or no verdict at all
    (no baseline, another machine class: nothing vouches for it). A saving run is not gated: never flagged."""
    if outcome is None or not outcome.gating:
        return False
    measured = [v for v in outcome.verdicts if v.kind == Kind.MEASURED]
    if not measured:
        return True
    return any(_suspect(v) for v in measured)


def chosen_metrics(subject: Subject) -> list[str]:
    """The metrics the A/B decides: each test's time and energy (`is_decisive`), and every measured metric the
    screen flagged. The other measured metrics move with these and keep their screen verdicts: testing a dozen
    metrics that move together would only multiply the false alarms and the pairs needed."""
    screen = {v.metric: v for v in subject.outcome.verdicts}
    out = []
    for name, metric in subject.record.metrics.items():
        if metric.kind != Kind.MEASURED or not metric.samples:
            continue
        v = screen.get(name)
        if is_decisive("", name) or (v is not None and _suspect(v)):
            out.append(name)
    return out


def _screen_text(v: Verdict | None) -> str:
    if v is None:
        return "no baseline"
    if v.change_pct is None:
        return f"{v.rule}: {v.verdict}"
    return f"{v.rule}: {v.verdict} {v.change_pct:+.0f} %"


def _ab_verdict(metric: Metric, test: SequentialTest, step: Step, screen: Verdict | None, tolerance: float,
                pairs: list[tuple[float, float]]) -> Verdict:
    base = math.fsum(b for b, _ in pairs) / len(pairs)
    head = math.fsum(h for _, h in pairs) / len(pairs)
    hint = ""
    if step.decision is Decision.UNKNOWN:
        hint = (f"undecided after {step.pairs} pairs (--energy-max-pairs): passes; the noise between pairs is too "
                "large" if step.pairs >= test.max_pairs else
                f"undecided after {step.pairs} pairs: the A/B stopped when another metric of the test was decided")
    interval = (step.low, step.high) if math.isfinite(step.low) and math.isfinite(step.high) else None
    return Verdict(metric=metric.name, unit=metric.unit, kind=Kind.MEASURED, better=Better(metric.better),
                   verdict=_VERDICT[step.decision], baseline_value=base, current_value=head,
                   change_pct=(step.ratio - 1.0) * 100.0, p_value=None, tolerance=tolerance, n_baseline=len(pairs),
                   n_current=len(pairs), hint=hint, rule=step.text(), rule_kind=RuleKind.AB,
                   screen=_screen_text(screen), pairs=tuple(pairs), ratio_interval=interval)


def _no_base(subject: Subject, ref: str, why: str, metrics: list[str], cost_s: float,
             orders: Sequence[str] = ()) -> tuple[list[Verdict], Recheck]:
    """A test with no base to compare: its chosen metrics NO_BASELINE (neither a pass nor a regression), and the
    Recheck that says why."""
    screen = {v.metric: v for v in subject.outcome.verdicts}
    out = [v for v in subject.outcome.verdicts if v.metric not in metrics]
    first_line = why.splitlines()[0] if why else "unknown"
    for name in metrics:
        m = subject.record.metrics[name]
        out.append(Verdict(metric=name, unit=m.unit, kind=Kind.MEASURED, better=Better(m.better),
                           verdict=VerdictKind.NO_BASELINE, baseline_value=None, current_value=m.mean,
                           change_pct=None, p_value=None, tolerance=subject.tolerance_for(name), n_baseline=0,
                           n_current=len(m.samples), rule=f"A/B against {ref}: no base to compare ({first_line})",
                           rule_kind=RuleKind.AB, screen=_screen_text(screen.get(name))))
    return out, Recheck("a/b", f"A/B against {ref}: no base to compare ({first_line})", cost_s, len(orders), ref,
                        tuple(orders), why)


def run_ab(subjects: Sequence[Subject], sides: Sides, *, base_ref: str, max_pairs: int, seed: int | str,
           clock: Callable[[], float] = time.perf_counter) -> dict[str, tuple[list[Verdict], Recheck]]:
    """A/B every subject; per node id its verdicts (the chosen metrics' A/B verdicts in place of the screen's) and
    its Recheck. Each pair's wall time is shared among the tests it measured (Recheck.cost_s)."""
    out: dict[str, tuple[list[Verdict], Recheck]] = {}
    chosen = {s.nodeid: chosen_metrics(s) for s in subjects}
    by_id = {s.nodeid: s for s in subjects}
    cost = dict.fromkeys(by_id, 0.0)
    start = clock()
    present, missing = sides.exists(list(by_id))
    share = (clock() - start) / max(len(by_id), 1)
    for nodeid in by_id:
        cost[nodeid] += share
    for nodeid, why in missing.items():
        verdicts, recheck = _no_base(by_id[nodeid], base_ref, f"the test is not at {base_ref}: {why}",
                                     chosen[nodeid], cost[nodeid])
        out[nodeid] = (verdicts, dataclasses.replace(recheck, no_base=why))
    tests = {n: {m: SequentialTest(better=str(by_id[n].record.metrics[m].better), tolerance=by_id[n].tolerance_for(m),
                                   max_pairs=max_pairs, base_ref=base_ref) for m in chosen[n]}
             for n in by_id if n in present}
    pairs: dict[str, dict[str, list[tuple[float, float]]]] = {n: {m: [] for m in chosen[n]} for n in tests}
    orders: dict[str, list[str]] = {n: [] for n in tests}
    failed: dict[str, tuple[str, str]] = {}  # node id -> (the side that could not be measured, why)
    for order in pair_orders(seed, max_pairs):
        pending = [n for n in tests if n not in failed and not _done(tests[n])]
        if not pending:
            break
        start = clock()
        measured = {side: sides.measure(side, pending) for side in order}
        share = (clock() - start) / len(pending)
        for nodeid in pending:
            cost[nodeid] += share
            orders[nodeid].append("AB" if order[0] == "base" else "BA")
            base, head = measured["base"], measured["head"]
            if nodeid not in base.values or nodeid not in head.values:
                side, res = ("base", base) if nodeid not in base.values else ("head", head)
                failed[nodeid] = (side, res.missing.get(nodeid, "not measured"))
                continue
            for metric, test in tests[nodeid].items():
                if test.step is not None and test.step.final:
                    continue
                b, h = base.values[nodeid].get(metric), head.values[nodeid].get(metric)
                if not (_positive(b) and _positive(h)):
                    continue  # a metric one side lacks (or 0): no pair; the budget ends it as UNKNOWN
                pairs[nodeid][metric].append((float(b), float(h)))
                test.add(float(b), float(h))
    for nodeid, metric_tests in tests.items():
        subject = by_id[nodeid]
        n_pairs = len(orders[nodeid])
        if nodeid in failed and (n_pairs <= 1 or failed[nodeid][0] == "base"):
            # The base could not be measured (its test fails there): no base to compare, never a verdict.
            why = "{}: {}".format(*failed[nodeid])
            out[nodeid] = _no_base(subject, base_ref, why, chosen[nodeid], cost[nodeid], orders[nodeid])
            continue
        screen = {v.metric: v for v in subject.outcome.verdicts}
        verdicts = [v for v in subject.outcome.verdicts if v.metric not in metric_tests]
        decided = []
        for metric, test in metric_tests.items():
            metric_pairs = pairs[nodeid][metric]
            if not metric_pairs or test.step is None:
                continue
            step = test.step
            if not step.final:  # stopped early (another metric regressed, a failed head run): undecided
                step = dataclasses.replace(step, decision=Decision.UNKNOWN)
            v = _ab_verdict(subject.record.metrics[metric], test, step, screen.get(metric),
                            subject.tolerance_for(metric), metric_pairs)
            verdicts.append(v)
            decided.append(v)
        text = _summary(base_ref, n_pairs, decided)
        if nodeid in failed:
            text += f"; stopped: {failed[nodeid][0]}: {failed[nodeid][1].splitlines()[0]}"
        out[nodeid] = (verdicts, Recheck("a/b", text, cost[nodeid], n_pairs, base_ref, tuple(orders[nodeid])))
    return out


def _done(tests: Mapping[str, SequentialTest]) -> bool:
    """Every metric decided, or one regressed: the test fails whatever the others say, so the pairs it would
    still cost buy nothing (the others are reported as undecided)."""
    steps = [t.step for t in tests.values()]
    return all(s is not None and s.final for s in steps) or any(
        s is not None and s.decision is Decision.REGRESSION for s in steps)


def _positive(x: object) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x > 0


def _summary(base_ref: str, n_pairs: int, verdicts: list[Verdict]) -> str:
    """'A/B against 1a2b3c4, 6 pairs: REGRESSION (energy_j ratio 1.31 [1.24, 1.39])' or '..., SAME'."""
    noun = "pair" if n_pairs == 1 else "pairs"
    bad = [v for v in verdicts if v.verdict == VerdictKind.REGRESSION]
    shown = bad or [v for v in verdicts if v.verdict != VerdictKind.PASS]
    if not verdicts:
        return f"A/B against {base_ref}, {n_pairs} {noun}: no metric could be paired"
    if not shown:
        return f"A/B against {base_ref}, {n_pairs} {noun}: SAME (every metric within the tolerance)"
    word = "REGRESSION" if bad else ("IMPROVED" if all(v.verdict == VerdictKind.IMPROVED for v in shown)
                                     else "undecided" if all(v.verdict == VerdictKind.INCONCLUSIVE for v in shown)
                                     else "mixed")
    parts = []
    for v in shown[:3]:
        interval = f" [{v.ratio_interval[0]:.2f}, {v.ratio_interval[1]:.2f}]" if v.ratio_interval else ""
        ratio = 1.0 + (v.change_pct or 0.0) / 100.0
        parts.append(f"{v.metric} ratio {ratio:.2f}{interval} {v.verdict}")
    more = f", +{len(shown) - 3} more" if len(shown) > 3 else ""
    return f"A/B against {base_ref}, {n_pairs} {noun}: {word} ({'; '.join(parts)}{more})"
