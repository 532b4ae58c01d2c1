"""--energy-only, --energy-skip and --energy-disable, as users run them (pytester)."""

from __future__ import annotations

import json

import pytest

TESTS = """
import math
import pytest

CALLS = []

def work():
    CALLS.append(1)
    return len(CALLS)

def test_plain():
    assert True

def test_fixture(energy):
    # pedantic: one call per round (energy(fn) would calibrate); a smoke run calls fn once: no warmup, one round
    assert energy.pedantic(work) == 1

def test_window(energy):
    with energy.measure("block") as w:
        sum(range(1000))
    assert w.duration_s >= 0
    print(f"ENERGY {w.energy_j!r} METHOD {w.method}")

def test_protocol(energy):
    result = energy.inference(lambda batch: [x % 2 for x in batch], list(range(6)), warmup=1,
                              labels=[x % 2 for x in range(6)])
    assert result.accuracy == 1.0 and math.isnan(result.j_per_example)

@pytest.mark.energy(rounds=4, warmup=2)
def test_marker_only():
    CALLS.append("marker")

def test_zz_counts():
    print("MARKER RUNS", CALLS.count("marker"))
"""


def test_energy_only_runs_energy_benchmarks_alone(pytester, no_nvml):
    pytester.makepyfile(TESTS)
    result = pytester.runpytest("--energy-only", "-rs", "--energy-rounds", "1", "--energy-warmup", "0",
                                "-k", "not window and not protocol and not zz",
                                "-W", "ignore::pytest_energy.errors.ShortWindowWarning")
    result.assert_outcomes(passed=2, skipped=1, deselected=3)
    result.stdout.fnmatch_lines(["*= energy =*", "test_fixture *", "test_marker_only *"])
    result.stdout.fnmatch_lines(["SKIPPED*not an energy benchmark (--energy-only)"])


def test_energy_skip_overrides_energy_given_in_addopts(pytester, no_nvml):
    pytester.makeini("[pytest]\naddopts = --energy\n")
    pytester.makepyfile(TESTS)
    result = pytester.runpytest("--energy-skip", "-rs")
    result.assert_outcomes(passed=2, skipped=4)
    result.stdout.fnmatch_lines(["*energy benchmark skipped (--energy-skip)*"])
    result.stdout.no_fnmatch_line("*= energy =*")


@pytest.mark.parametrize("other", ["--energy-only", "--energy-disable"])
def test_energy_skip_with_a_contradicting_option_is_a_usage_error(pytester, other):
    pytester.makepyfile(TESTS)
    result = pytester.runpytest("--energy-skip", other)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*--energy-skip and {other} contradict each other*"])


def test_energy_disable_runs_each_benchmark_once_unmetered(pytester, no_nvml):
    pytester.makepyfile(TESTS)
    result = pytester.runpytest("--energy", "--energy-disable", "-s", "--energy-save-baseline",
                                "--energy-json", "e.json", "--energy-markdown", "e.md")
    result.assert_outcomes(passed=6)
    # Windows are not metered: their energy is unknown (NaN), never a made-up 0 J.
    result.stdout.fnmatch_lines(["*ENERGY nan METHOD unmetered*"])
    result.stdout.fnmatch_lines(["*MARKER RUNS 1*"])  # the marker's rounds and warmup are not run
    result.stdout.no_fnmatch_line("*= energy =*")
    assert not (pytester.path / "baselines").exists()
    assert not (pytester.path / "e.json").exists() and not (pytester.path / "e.md").exists()


def test_energy_disable_still_checks_marker_arguments(pytester):
    pytester.makepyfile("""
import pytest

@pytest.mark.energy(roundz=3)
def test_typo():
    pass
""")
    result = pytester.runpytest("--energy-disable")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*unknown argument(s) roundz*"])


def test_energy_only_keeps_pytest_benchmark_tests(pytester, no_nvml):
    pytest.importorskip("pytest_benchmark")
    pytester.makepyfile("""
def test_plain():
    pass

def test_bench(benchmark):
    benchmark(sum, range(10))
""")
    result = pytester.runpytest("--energy-only", "--benchmark-json", "b.json", "--benchmark-max-time", "0.2")
    result.assert_outcomes(passed=1, skipped=1)
    assert json.loads((pytester.path / "b.json").read_text())["benchmarks"][0]["extra_info"]["energy_calls"] > 0
