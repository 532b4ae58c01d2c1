"""A run whose tests a second look re-measured in the same job (issue 16), built by hand: every case the
reports must show (confirmed, a transient, A/B REGRESSION, SAME, UNKNOWN, no base to compare)."""

from __future__ import annotations

import pytest

from pytest_energy.config import SessionConfig, TestSettings
from pytest_energy.records import (BenchmarkResult, Better, DeviceInfo, Kind, MeterInfo, Method, Metric, Outcome,
                                   Recheck, Rerun, RuleKind, RunResult, TestRecord, Verdict, VerdictKind)

BASE = "1a2b3c4"


def verdict(metric: str, unit: str, verdict_: VerdictKind, base: float | None, head: float, *,
            rule_kind: RuleKind = RuleKind.HISTORY, rule: str = "history: 3 runs, pooled", **fields) -> Verdict:
    change = None if base is None else (head - base) / base * 100
    return Verdict(metric, unit, Kind.MEASURED, Better.LOWER, verdict_, base, head, fields.pop("change_pct", change),
                   fields.pop("p_value", 0.001 if base is not None and rule_kind == RuleKind.HISTORY else None),
                   0.08, 3, 3, rule=rule, rule_kind=rule_kind, **fields)


def ab(metric: str, unit: str, verdict_: VerdictKind, pairs: list[tuple[float, float]], ratio: float,
       interval: tuple[float, float] | None, screen: str = "history: INCONCLUSIVE +12 %") -> Verdict:
    """An A/B verdict as gate/sequential.py words it: the rule names base, pairs, ratio and interval."""
    bounds = f" [{interval[0]:.2f}, {interval[1]:.2f}]" if interval else ""
    rule = f"A/B against {BASE} in this job, {len(pairs)} pairs: ratio {ratio:.2f}{bounds}"
    base = sum(b for b, _ in pairs) / len(pairs)
    head = sum(h for _, h in pairs) / len(pairs)
    return verdict(metric, unit, verdict_, base, head, rule_kind=RuleKind.AB, rule=rule,
                   change_pct=(ratio - 1) * 100, pairs=tuple(pairs), ratio_interval=interval, screen=screen)


def benchmark(name: str, verdicts: list[Verdict], recheck: Recheck | None) -> BenchmarkResult:
    record = TestRecord(f"benchmarks/test_t.py::{name}", name)
    # Every test has time and energy (the report's `stats`), whichever metrics the second look decided on.
    record.metrics["duration_s"] = Metric("duration_s", "s", samples=[1.0, 1.0, 1.0])
    record.metrics["energy_j"] = Metric("energy_j", "J", samples=[10.0, 10.0, 10.0], method="rapl")
    for v in verdicts:
        record.metrics[v.metric] = Metric(v.metric, v.unit, samples=[v.current_value] * 3, method="rapl")
    outcome = Outcome(verdicts=verdicts, baseline_file=f"baselines/{name}.json", recheck=recheck)
    return BenchmarkResult(record, TestSettings(), outcome)


SLOW_PAIRS = [(10.0, 13.1), (10.4, 13.5), (10.1, 13.2), (10.3, 13.6), (10.2, 13.4), (10.2, 13.4)]
SAME_PAIRS = [(10.0, 10.1), (10.4, 10.3), (10.1, 10.2)]
NOISY_PAIRS = [(10.0, 11.5), (10.4, 10.0), (10.1, 12.2), (10.3, 10.1)] * 2 + [(10.0, 11.0), (10.2, 10.9)]


def second_look_benchmarks() -> list[BenchmarkResult]:
    """One test per case, in this order: test_confirmed, test_transient, test_ab_slower, test_ab_same,
    test_ab_unknown, test_no_base."""
    confirmed = benchmark("test_confirmed", [
        verdict("duration_s", "s", VerdictKind.PASS, 1.0, 1.01),
        verdict("energy_j", "J", VerdictKind.REGRESSION, 10.0, 13.1,
                confirmation="confirmed by 2 re-runs: +31 %, +28 %, +33 %",
                reruns=(Rerun(12.8, 28.0, 0.004), Rerun(13.3, 33.0, 0.002)))],
        Recheck("confirm", "confirmed by 2 re-runs", cost_s=27.5, runs=2))
    transient = benchmark("test_transient", [
        verdict("duration_s", "s", VerdictKind.PASS, 1.0, 1.02),
        verdict("energy_j", "J", VerdictKind.PASS, 10.0, 13.1,
                confirmation="not confirmed: a transient (+31 %, then +2 %, +4 % in 2 re-runs)",
                reruns=(Rerun(10.2, 2.0, 0.41), Rerun(None, None, None)))],
        Recheck("confirm", "not confirmed: a transient", cost_s=13.8, runs=2))
    slower = benchmark("test_ab_slower", [
        ab("duration_s", "s", VerdictKind.REGRESSION, SLOW_PAIRS, 1.31, (1.24, 1.39)),
        ab("energy_j", "J", VerdictKind.REGRESSION, [(b * 10, h * 10) for b, h in SLOW_PAIRS], 1.31, (1.24, 1.39)),
        ab("inference.tokens_per_s", "1/s", VerdictKind.PASS, [(1 / b, 1 / b) for b, _ in SLOW_PAIRS], 1.0,
           (0.99, 1.01))],
        Recheck("a/b", f"A/B against {BASE}: 6 pairs, REGRESSION", cost_s=96.0, runs=6, base_ref=BASE,
                orders=("AB", "BA", "BA", "AB", "AB", "BA")))
    same = benchmark("test_ab_same", [
        ab("duration_s", "s", VerdictKind.PASS, SAME_PAIRS, 1.0, (0.97, 1.03), screen="no baseline")],
        Recheck("a/b", f"A/B against {BASE}: 3 pairs, SAME", cost_s=30.0, runs=3, base_ref=BASE,
                orders=("BA", "AB", "BA")))
    unknown = benchmark("test_ab_unknown", [
        ab("duration_s", "s", VerdictKind.INCONCLUSIVE, NOISY_PAIRS, 1.07, (0.98, 1.17))],
        Recheck("a/b", f"A/B against {BASE}: 10 pairs, UNKNOWN", cost_s=120.0, runs=10, base_ref=BASE,
                orders=("AB", "BA") * 5))
    why = "benchmarks/test_t.py::test_no_base does not exist at the base"
    no_base = benchmark("test_no_base", [
        verdict("duration_s", "s", VerdictKind.NO_BASELINE, None, 1.0, rule_kind=RuleKind.AB,
                rule=f"A/B against {BASE}: no base to compare ({why})")],
        Recheck("a/b", f"no base to compare: {why}", base_ref=BASE, no_base=why))
    return [confirmed, transient, slower, same, unknown, no_base]


def make_run(benchmarks: list[BenchmarkResult]) -> RunResult:
    meter = MeterInfo("rapl", (DeviceInfo("cpu-package-0", "Xeon", Method.RAPL),))
    return RunResult(meter, SessionConfig(rootdir="/r", baseline_dir="/r/baselines"), benchmarks)


@pytest.fixture
def second_look_run() -> RunResult:
    return make_run(second_look_benchmarks())


@pytest.fixture
def unflagged_run() -> RunResult:
    """As many tests, judged by the history rule alone: nothing suspected, no second look."""
    plain = [benchmark(f"test_plain_{i}", [verdict(v.metric, v.unit, VerdictKind.PASS, 10.0, 10.1)
                                           for v in b.outcome.verdicts], None)
             for i, b in enumerate(second_look_benchmarks())]
    return make_run(plain)
