"""The A/B loop (recheck/ab.py) with sides that are functions, not processes: pairs, orders, stopping, costs,
the verdicts it writes and the tests it cannot compare."""

from __future__ import annotations

import itertools
import random

import pytest

from pytest_energy.gate.sequential import pair_orders
from pytest_energy.recheck.ab import Subject, chosen_metrics, flagged, run_ab
from pytest_energy.recheck.children import SideResult
from pytest_energy.records import Metric, Outcome, TestRecord, Verdict


def _record(nodeid="t.py::test_a", **metrics):
    rec = TestRecord(nodeid=nodeid, name=nodeid.split("::")[-1])
    for name, (unit, kind) in (metrics or {"energy_j": ("J", "measured"), "duration_s": ("s", "measured")}).items():
        rec.metrics[name] = Metric(name, unit, kind=kind, samples=[1.0])
    return rec


def _verdict(metric, verdict, change, unit="J", kind="measured"):
    return Verdict.from_dict({"metric": metric, "unit": unit, "kind": kind, "better": "lower", "verdict": verdict,
                              "baseline_value": 1.0, "current_value": 1.0, "change_pct": change, "p_value": 0.01,
                              "tolerance": 0.08, "n_baseline": 3, "n_current": 3, "rule": "history: 3 runs",
                              "rule_kind": "history"})


class FakeSides:
    """head = base x factor x noise; every call logged; `missing` tests absent at the base, `broken` failing."""

    def __init__(self, factor=1.0, sd=0.01, seed=1, missing=(), broken=()):
        self.factor, self.sd, self.rng = factor, sd, random.Random(seed)
        self.missing, self.broken = set(missing), set(broken)
        self.calls = []

    def exists(self, nodeids):
        return {n for n in nodeids if n not in self.missing}, {n: "the test does not exist there"
                                                               for n in nodeids if n in self.missing}

    def measure(self, side, nodeids):
        self.calls.append((side, tuple(nodeids)))
        out = SideResult(seconds=1.0)
        for n in nodeids:
            if side == "base" and n in self.broken:
                out.missing[n] = "the test failed:\nE   AssertionError"
                continue
            scale = (self.factor if side == "head" else 1.0) * self.rng.lognormvariate(0.0, self.sd)
            out.values[n] = {"energy_j": 10.0 * scale, "duration_s": 2.0 * scale}
        return out


def _subject(nodeid="t.py::test_a", outcome=None):
    return Subject(nodeid, _record(nodeid), outcome or Outcome(), lambda metric: 0.08)


def _clock():
    ticks = itertools.count()
    return lambda: float(next(ticks))


def test_a_planted_slowdown_is_a_regression_named_by_its_ab_rule():
    sides = FakeSides(factor=1.3)
    ((verdicts, recheck),) = run_ab([_subject()], sides, base_ref="1a2b3c4", max_pairs=10, seed=7,
                                    clock=_clock()).values()
    regressions = [v for v in verdicts if v.verdict == "REGRESSION"]
    assert regressions and all(v.by_ab for v in regressions)
    v = regressions[0]
    assert v.rule.startswith(f"A/B against 1a2b3c4 in this job, {len(v.pairs)} pairs: ratio 1.")
    assert v.ratio_interval[0] < 1.3 < v.ratio_interval[1] and v.screen == "no baseline"
    assert recheck.how == "a/b" and recheck.runs == len(recheck.orders) >= 3
    # the orders are pair_orders' for the seed, and each side was measured once per pair
    assert list(recheck.orders) == ["AB" if o[0] == "base" else "BA" for o in pair_orders(7, recheck.runs)]
    assert len(sides.calls) == 2 * recheck.runs
    assert "REGRESSION" in recheck.text and recheck.cost_s > 0


def test_unchanged_code_is_the_same_and_stops_early():
    ((verdicts, recheck),) = run_ab([_subject()], FakeSides(factor=1.0, sd=0.005), base_ref="abc", max_pairs=10,
                                    seed=1).values()
    assert {v.verdict for v in verdicts} == {"PASS"} and recheck.runs < 10
    assert "SAME" in recheck.text


def test_noise_beyond_the_budget_is_unknown_and_passes():
    ((verdicts, recheck),) = run_ab([_subject()], FakeSides(factor=1.0, sd=0.5, seed=3), base_ref="abc",
                                    max_pairs=4, seed=1).values()
    assert recheck.runs == 4
    assert "REGRESSION" not in {v.verdict for v in verdicts}
    assert any(v.verdict == "INCONCLUSIVE" and "--energy-max-pairs" in v.hint for v in verdicts)


def test_tests_missing_or_failing_at_the_base_have_no_base_and_no_verdict():
    sides = FakeSides(missing={"t.py::new"}, broken={"t.py::broken"})
    out = run_ab([_subject("t.py::new"), _subject("t.py::broken"), _subject("t.py::fine")], sides,
                 base_ref="abc", max_pairs=5, seed=2)
    for nodeid in ("t.py::new", "t.py::broken"):
        verdicts, recheck = out[nodeid]
        assert recheck.no_base and recheck.text.startswith("A/B against abc: no base to compare")
        assert {v.verdict for v in verdicts if v.by_ab} == {"NO_BASELINE"}
    assert "failed" in out["t.py::broken"][1].no_base
    # the missing test was never measured; the others were, together, in the same processes
    assert all("t.py::new" not in nodeids for _, nodeids in sides.calls)
    assert out["t.py::fine"][1].no_base == ""


def test_the_screen_decides_what_is_tested_and_keeps_the_rest():
    rec = _record(**{"energy_j": ("J", "measured"), "duration_s": ("s", "measured"),
                     "p99_ms": ("ms", "measured"), "tokens": ("tokens", "deterministic"),
                     "throughput": ("1/s", "measured")})
    outcome = Outcome(verdicts=[_verdict("p99_ms", "REGRESSION", 40.0, "ms"),
                                _verdict("throughput", "INCONCLUSIVE", 3.0, "1/s"),
                                _verdict("tokens", "PASS", 0.0, "tokens", "deterministic")])
    subject = Subject("t.py::x", rec, outcome, lambda m: 0.08)
    assert chosen_metrics(subject) == ["energy_j", "duration_s", "p99_ms"]
    assert flagged(outcome) and not flagged(Outcome(verdicts=[_verdict("energy_j", "PASS", 1.0)]))
    assert flagged(Outcome(verdicts=[_verdict("energy_j", "INCONCLUSIVE", 12.0)]))
    assert not flagged(Outcome(verdicts=[_verdict("energy_j", "INCONCLUSIVE", 5.0)]))
    assert flagged(Outcome()) and not flagged(Outcome(gating=False))


@pytest.mark.parametrize("factor", [0.5, 2.0])
def test_the_costs_are_shared_among_the_tests_a_pair_measured(factor):
    out = run_ab([_subject("t.py::a"), _subject("t.py::b")], FakeSides(factor=factor), base_ref="abc",
                 max_pairs=6, seed=4, clock=_clock())
    costs = [recheck.cost_s for _, recheck in out.values()]
    # the clock ticks once per pair and once for the base's collection: every tick is someone's, none twice
    pairs = max(recheck.runs for _, recheck in out.values())
    assert sum(costs) == pytest.approx(1 + pairs) and all(c > 0 for c in costs)
