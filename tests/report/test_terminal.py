"""The terminal summary (report/terminal.py) of a RunResult built by hand."""

from __future__ import annotations

from pytest_energy.config import SessionConfig, TestSettings
from pytest_energy.gate.compare import compare_metric, no_baseline
from pytest_energy.records import (BenchmarkResult, DeviceInfo, InferenceResult, MeterInfo, Method, Metric, Outcome,
                                   RunResult, TestRecord)
from pytest_energy.report.terminal import comparison_lines, header_lines, protocol_lines, terminal_lines


def _benchmark(name: str, energy_j: list[float], baseline_j: list[float] | None, **record) -> BenchmarkResult:
    r = TestRecord(f"benchmarks/test_t.py::{name}", name, **record)
    r.metrics["duration_s"] = Metric("duration_s", "s", samples=[0.5, 0.5, 0.5])
    r.metrics["energy_j"] = Metric("energy_j", "J", samples=energy_j, method="rapl")
    if baseline_j is None:
        verdicts = [no_baseline(m, 0.08) for m in r.metrics.values()]
    else:
        base = {"duration_s": [0.5, 0.5, 0.5], "energy_j": baseline_j}
        verdicts = [compare_metric(Metric(n, m.unit, samples=base[n]), m, 0.08) for n, m in r.metrics.items()]
    return BenchmarkResult(r, TestSettings(), Outcome(verdicts=verdicts, baseline_file="baselines/test_t.json"))


def _run(*benchmarks: BenchmarkResult, **config) -> RunResult:
    meter = MeterInfo("rapl", (DeviceInfo("cpu-package-0", "Xeon", Method.RAPL),), ("nvml: no NVIDIA driver",),
                      {"cpu-package-0": 12.5}, 2.0)
    return RunResult(meter, SessionConfig(rootdir="/r", baseline_dir="/r/baselines", **config), list(benchmarks))


def test_the_header_says_the_meter_what_was_passed_over_and_the_idle_power():
    lines = header_lines(_run().meter)
    assert lines == ["energy meter: rapl [rapl] on cpu-package-0 (Xeon)", "  passed over: nvml: no NVIDIA driver",
                     "  idle power (measured 2 s before the first benchmark): cpu-package-0 12.5 W"]
    estimate = MeterInfo("estimate", (DeviceInfo("cpu-estimate", "Xeon", Method.ESTIMATE),))
    assert "  NOTE: 'estimate' figures are modelled from CPU time x W/core, not measured" in header_lines(estimate)


def test_a_regression_is_a_row_with_its_rule_and_the_tally_counts_every_verdict():
    run = _run(_benchmark("test_ok", [10.0, 10.1, 9.9], [10.0, 10.1, 9.9]),
               _benchmark("test_slow", [13.0, 13.1, 12.9], [10.0, 10.1, 9.9]))
    lines = comparison_lines(run)
    assert lines[1] == ("comparison with baselines in baselines/ (all metrics: 3 PASS, 1 REGRESSION; shown: time, "
                        "energy and every REGRESSION/IMPROVED)")
    assert lines[2].split() == ["test", "metric", "baseline", "current", "change", "p", "rule", "verdict"]
    slow = next(line for line in lines if line.startswith("test_slow") and "energy_j" in line)
    assert slow.split()[-1] == "REGRESSION" and "+30.0 %" in slow and "within-run Welch" in slow


def test_many_missing_baselines_are_one_line():
    run = _run(*(_benchmark(f"test_{i}", [1.0, 1.0, 1.0], None) for i in range(5)))
    for b in run.benchmarks:
        b.outcome.notes.append("no baseline for this test in baselines/test_t.json; create one with ...")
    lines = comparison_lines(run)
    assert lines[-1] == "5 benchmarks: no baseline in baselines/ (create them with --energy-save-baseline)"
    assert not any(line.startswith("test_0:") for line in lines)


def test_inconclusive_says_whether_it_fails():
    noisy = _benchmark("test_noisy", [10.0, 14.0, 6.0], [10.0, 10.1, 9.9])
    assert noisy.outcome.verdicts[1].verdict == "INCONCLUSIVE"
    assert any(line.startswith("1 INCONCLUSIVE verdict(s) PASS") for line in comparison_lines(_run(noisy)))
    strict = comparison_lines(_run(noisy, fail_on_inconclusive=True))
    assert "1 INCONCLUSIVE verdict(s) FAIL their tests (--energy-fail-on-inconclusive)." in strict


def test_protocol_results_are_tables_and_the_run_ends_with_what_was_written():
    inference = InferenceResult.from_dict({"examples": 100, "batch_size": 4, "j_per_example": 0.25,
                                           "ms_per_example_mean": 3.0, "ms_per_example_p50": 2.9,
                                           "ms_per_example_p99": 4.5, "examples_per_s": 300.0, "score": 0.9,
                                           "score_name": "accuracy", "method": "rapl"})
    run = _run(_benchmark("test_inf", [25.0, 25.0, 25.0], None, protocols=[inference]))
    protocol = protocol_lines(run)
    assert protocol[1] == "inference (per example)"
    assert protocol[4].split() == ["test_inf", "100", "4", "0.25", "J", "3", "ms", "2.9", "ms", "4.5", "ms", "300",
                                   "/s", "0.9", "accuracy", "n/a", "rapl"]
    run.baseline_notes.append("baseline history: run abc appended")
    run.written.append("report.json")
    lines = terminal_lines(run)
    assert lines[-2:] == ["baseline history: run abc appended", "wrote report.json"]
    assert any(line.startswith("test_inf") and "0.5 ± 0" in line for line in lines)  # the energy table
