"""Every JSON file we write is read by the tools that read pytest-benchmark JSON: the real
`pytest-benchmark compare` (table, --histogram, --csv), and what github-action-benchmark's `pytest` reader and
Bencher's `python_pytest` adapter require."""

from __future__ import annotations

import json
import math

import pytest

from pytest_energy.meters.fake import FakeGpu

# One test of every kind of energy benchmark: rounds, a labelled window, a protocol only, a marker only, and
# one with nothing timed but its own figures (like benchmarks/test_overhead.py).
EVERY_KIND = """
import time
import pytest

def test_rounds(energy):
    energy(time.sleep, 0.11)

def test_window(energy):
    with energy.measure("block"):
        time.sleep(0.11)

def predict(batch):
    time.sleep(0.004)
    return [len(x) % 2 for x in batch]

def test_protocol_only(energy):
    result = energy.inference(predict, ["ab", "abc", "a"] * 40, warmup=0, labels=[0, 1, 1] * 40, batch_size=4)
    assert result.examples == 120

@pytest.mark.energy(rounds=2, warmup=0)
def test_marker_only():
    time.sleep(0.11)

@pytest.mark.energy(rounds=1, warmup=0)
def test_figures_only(energy):
    with energy.measure("calibration", record=False):
        time.sleep(0.11)
    energy.record_metric("overhead_fraction", "1", [0.01, 0.02, 0.015])
"""
NAMES = {"test_rounds", "test_window", "test_protocol_only", "test_marker_only", "test_figures_only"}


def _is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def assert_ci_readers_accept(data: dict) -> None:
    """What github-action-benchmark (tool: pytest) and Bencher (python_pytest) read, and how they fail.

    github-action-benchmark reads benchmarks[].fullname and stats.ops/stddev/mean/rounds, and throws on
    `stats: null`; Bencher requires machine_info and commit_info objects and, per benchmark, a 1..1024
    character fullname and numeric stats.mean/stddev/median/iqr, else it rejects the whole file.
    """
    assert isinstance(data["machine_info"], dict) and isinstance(data["commit_info"], dict)
    assert data["benchmarks"]
    for bench in data["benchmarks"]:
        assert "group" in bench and bench["name"]
        assert isinstance(bench["fullname"], str) and 0 < len(bench["fullname"]) <= 1024
        stats = bench["stats"]
        for key in ("min", "max", "mean", "stddev", "median", "iqr", "q1", "q3", "ld15iqr", "hd15iqr", "ops",
                    "rounds", "iterations"):
            assert _is_number(stats[key]), (bench["fullname"], key, stats.get(key))
        assert isinstance(stats["outliers"], str)


@pytest.mark.slow  # the real pytest-benchmark compare in a subprocess
def test_energy_json_loads_in_pytest_benchmark_compare_with_every_benchmark(pytester, fake_nvml, compare_loads):
    fake_nvml(FakeGpu(power_w=120.0))
    pytester.makepyfile(EVERY_KIND)
    result = pytester.runpytest("--energy", "--energy-meter", "nvml", "--energy-rounds", "2", "--energy-warmup",
                                "0", "--energy-json", "energy.json")
    result.assert_outcomes(passed=5)
    path = pytester.path / "energy.json"
    data = json.loads(path.read_text())
    assert {b["name"] for b in data["benchmarks"]} == NAMES  # nothing left out
    series = {b["name"]: b["energy"]["series"] for b in data["benchmarks"]}
    assert series == {"test_rounds": "rounds", "test_window": "block", "test_protocol_only": "inference",
                      "test_marker_only": "rounds", "test_figures_only": "test call"}
    figures_only = next(b for b in data["benchmarks"] if b["name"] == "test_figures_only")
    assert figures_only["stats"]["rounds"] == 1 and figures_only["stats"]["mean"] >= 0.11
    assert_ci_readers_accept(data)
    rows = compare_loads(path, pytester.path / "compare", expected=len(NAMES))
    assert {row[0].rsplit("::", 1)[-1] for row in rows} == NAMES


@pytest.mark.slow  # a pytest run, then the real pytest-benchmark compare in a subprocess
def test_energy_json_with_pytest_benchmark_tests_loads_too(pytester, fake_nvml, compare_loads):
    pytest.importorskip("pytest_benchmark")
    fake_nvml(FakeGpu(power_w=120.0))
    pytester.makepyfile(EVERY_KIND + """
def test_bench(benchmark):
    benchmark(sum, range(1000))
""")
    result = pytester.runpytest("--energy", "--energy-meter", "nvml", "--energy-rounds", "2", "--energy-warmup",
                                "0", "--energy-json", "energy.json", "--benchmark-json", "bench.json",
                                "--benchmark-max-time", "0.3")
    result.assert_outcomes(passed=6)
    data = json.loads((pytester.path / "energy.json").read_text())
    assert_ci_readers_accept(data)
    compare_loads(pytester.path / "energy.json", pytester.path / "compare-ours", expected=len(NAMES) + 1)
    bench = json.loads((pytester.path / "bench.json").read_text())
    assert_ci_readers_accept(bench)
    compare_loads(pytester.path / "bench.json", pytester.path / "compare-theirs", expected=1)


def test_a_record_without_any_time_is_listed_apart_not_written_with_null_stats():
    from pytest_energy.config import SessionConfig, TestSettings
    from pytest_energy.records import TestRecord
    from pytest_energy.report.json import build_report
    from pytest_energy.records import BenchmarkResult, MeterInfo, RunResult

    record = TestRecord("t.py::test_x", "test_x")
    record.metric("overhead_fraction", "1").add(0.01)
    run = RunResult(MeterInfo("estimate", ()), SessionConfig(), [BenchmarkResult(record, TestSettings())])
    data = build_report(run)
    assert data["benchmarks"] == []
    assert data["energy"]["not_in_benchmarks"][0]["fullname"] == "t.py::test_x"
    assert data["machine_info"] == {} and data["commit_info"] == {}
