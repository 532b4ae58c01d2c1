"""pytest-benchmark's `benchmark` fixture, metered by --energy with no change to the test (the real
pytest-benchmark, run with pytester as users run it)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import types

import pytest

from pytest_energy.meters.base import DeviceInfo, Meter, Reading
from pytest_energy.meters.fake import FakeGpu

pytest.importorskip("pytest_benchmark")

BENCHMARKS = """
import time
import pytest

def spin(seconds):
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass

def test_spin(benchmark):
    benchmark.extra_info["mine"] = "kept"
    benchmark(spin, 0.002)

def test_pedantic(benchmark):
    benchmark.pedantic(spin, args=(0.01,), rounds=4, warmup_rounds=2, iterations=3)

def test_ordinary():
    assert True
"""


def _benchmarks(path) -> dict:
    return {b["name"]: b for b in json.loads(path.read_text())["benchmarks"]}


def test_benchmark_tests_get_energy_beside_time(pytester, fake_nvml):
    fake_nvml(FakeGpu(power_w=200.0))
    pytester.makepyfile(BENCHMARKS)
    # At least 600 rounds of 2 ms: more than 10 NVML counter periods, however calibration went on a busy machine.
    result = pytester.runpytest("--energy", "--energy-meter", "nvml", "--benchmark-json", "bench.json",
                                "--energy-json", "energy.json", "--benchmark-max-time", "1.2",
                                "--benchmark-min-rounds", "600")
    result.assert_outcomes(passed=3)
    # Our table: one row per benchmark with energy per call and the average power, beside pytest-benchmark's.
    result.stdout.fnmatch_lines(["*test_spin › per_call*nvml-counter*", "*benchmark: 2 tests*"])
    row = next(x for x in result.outlines if x.startswith("test_spin › per_call"))
    assert float(row.split()[-2]) == pytest.approx(200.0, rel=0.1)

    spin = _benchmarks(pytester.path / "bench.json")["test_spin"]
    info = spin["extra_info"]
    assert info["mine"] == "kept"  # the user's own extra_info survives
    energy_keys = {k for k in info if k != "mine"}
    assert energy_keys and all(k.startswith("energy") for k in energy_keys)
    stats = spin["stats"]
    # Calls are pytest-benchmark's rounds x iterations: no calibration or warmup call is counted.
    assert info["energy_calls"] == stats["rounds"] * stats["iterations"] and info["energy_rounds"] == stats["rounds"]
    assert info["energy_method"] == "nvml-counter"
    # A fake GPU at a known 200 W: energy per call = power x pytest-benchmark's own time per call.
    assert info["energy_power_w"] == pytest.approx(200.0, rel=0.1)
    assert info["energy_j_per_call"] == pytest.approx(200.0 * stats["mean"], rel=0.15)
    assert info["energy_window_s"] >= 1.0 and "energy_warning" not in info

    pedantic_bench = _benchmarks(pytester.path / "bench.json")["test_pedantic"]
    pedantic = pedantic_bench["extra_info"]
    assert pedantic["energy_calls"] == 4 * 3 and pedantic["energy_rounds"] == 4
    # 4 rounds of 30 ms are shorter than 10 NVML counter periods: said, not hidden.
    assert "raise --benchmark-max-time" in pedantic["energy_warning"]
    # 200 W x the time per call pytest-benchmark measured (a 10 ms sleep, longer on a loaded machine).
    assert pedantic["energy_j_per_call"] == pytest.approx(200.0 * pedantic_bench["stats"]["mean"], rel=0.35)

    # The same figures in our own report, as a gated metric series.
    ours = _benchmarks(pytester.path / "energy.json")["test_spin"]
    assert ours["energy"]["series"] == "per_call"
    j_per_call = ours["energy"]["metrics"]["per_call.energy_j"]
    assert j_per_call["unit"] == "J" and j_per_call["method"] == "nvml-counter"
    assert sum(j_per_call["samples"]) / len(j_per_call["samples"]) == pytest.approx(info["energy_j_per_call"],
                                                                                    rel=0.2)


def test_without_energy_both_plugins_work_as_before(pytester):
    pytester.makepyfile(BENCHMARKS + """
def test_mine(energy):
    energy(spin, 0.001)
""")
    result = pytester.runpytest("--benchmark-json", "bench.json", "--benchmark-max-time", "0.2")
    result.assert_outcomes(passed=3, skipped=1)
    for bench in _benchmarks(pytester.path / "bench.json").values():
        assert not [k for k in bench["extra_info"] if k.startswith("energy")]
    result.stdout.no_fnmatch_line("*= energy =*")


def test_energy_fixture_and_benchmark_in_one_test_share_a_record(pytester, fake_nvml):
    fake_nvml(FakeGpu(power_w=100.0))
    pytester.makepyfile(BENCHMARKS + """
@pytest.mark.energy(rounds=2, warmup=0)
def test_both(energy, benchmark):
    energy(spin, 0.12)
    benchmark(spin, 0.001)
""")
    result = pytester.runpytest("-k", "both", "--energy", "--energy-meter", "nvml", "--energy-json", "e.json",
                                "--benchmark-max-time", "0.3")
    result.assert_outcomes(passed=1, deselected=3)
    metrics = _benchmarks(pytester.path / "e.json")["test_both"]["energy"]["metrics"]
    assert len(metrics["energy_j"]["samples"]) == 2 and metrics["per_call.energy_j"]["samples"]


def test_marker_on_a_benchmark_test_does_not_rerun_its_body(pytester, fake_nvml):
    """The marker alone re-runs a test body per round; pytest-benchmark's fixture allows one use per test."""
    fake_nvml()
    pytester.makepyfile(BENCHMARKS + """
@pytest.mark.energy(rounds=3, tolerance="20%")
def test_marked(benchmark):
    benchmark(spin, 0.001)
""")
    result = pytester.runpytest("-k", "marked", "--energy", "--energy-meter", "nvml", "--benchmark-max-time", "0.3")
    result.assert_outcomes(passed=1, deselected=3)
    result.stdout.no_fnmatch_line("*FixtureAlreadyUsed*")


def test_gate_catches_an_energy_regression_of_a_benchmark(pytester, fake_nvml):
    driver = fake_nvml(FakeGpu(power_w=100.0))
    pytester.makepyfile("""
import time

def spin(seconds):
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass

def test_spin(benchmark):
    # Fixed rounds, not pytest-benchmark's calibration: 3 s of work whatever the load, so ~3 samples of 1 s.
    benchmark.pedantic(spin, args=(0.05,), rounds=60)
""")
    args = ("--energy", "--energy-meter", "nvml")
    pytester.runpytest(*args, "--energy-save-baseline").assert_outcomes(passed=1)
    saved = json.loads((pytester.path / "baselines" / "test_gate_catches_an_energy_regression_of_a_benchmark.json")
                       .read_text())["entries"]
    metrics = next(iter(saved.values()))["metrics"]
    assert len(metrics["per_call.energy_j"]["samples"]) >= 2  # one sample per second of NVML-counter time

    driver.gpus[0].power_w = 300.0  # the same code now draws three times the power
    result = pytester.runpytest(*args)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*energy regression against baselines/*",
                                 "*per_call.energy_j: * J -> * J (+*%*REGRESSION*"])
    # Whatever the time per call did on this shared machine, energy per call / time per call is the power.
    row = next(x for x in result.outlines if x.startswith("test_spin › per_call"))
    assert float(row.split()[-2]) == pytest.approx(300.0, rel=0.1)


# --- what exactly is metered: a meter that counts calls of the benchmarked function ----------------------

class _CallMeter(Meter):
    """1 J per call of the function under test: any calibration or warmup call inside a window shows."""

    name = "calls"

    def __init__(self, counter: types.ModuleType) -> None:
        self.counter = counter

    def devices(self) -> list[DeviceInfo]:
        return [DeviceInfo("calls", "call counter", "rapl")]

    def read(self) -> Reading:
        return Reading(time.perf_counter(), {"calls": float(self.counter.calls)})


@pytest.fixture
def call_meter(monkeypatch):
    counter = types.ModuleType("energy_call_counter")
    counter.calls = 0
    monkeypatch.setitem(sys.modules, "energy_call_counter", counter)
    monkeypatch.setattr("pytest_energy.session.open_meter", lambda *a, **k: _CallMeter(counter))
    return counter


COUNTED = """
import pytest
import energy_call_counter

def work():
    energy_call_counter.calls += 1
    return sum(range(200))

def test_plain(benchmark):
    benchmark(work)

def test_pedantic(benchmark):
    benchmark.pedantic(work, rounds=5, warmup_rounds=3, iterations=4)

def test_pedantic_setup(benchmark):
    benchmark.pedantic(work, setup=lambda: None, rounds=6, warmup_rounds=1)
"""


@pytest.mark.parametrize("extra", [(), ("--benchmark-warmup=on", "--benchmark-warmup-iterations=50",
                                        "--benchmark-cprofile=cumtime")], ids=["defaults", "warmup-cprofile"])
def test_only_measured_rounds_are_metered(pytester, call_meter, extra):
    pytester.makepyfile(COUNTED)
    result = pytester.runpytest("--energy", "--benchmark-json", "bench.json", "--benchmark-max-time", "0.2", *extra)
    result.assert_outcomes(passed=3)
    for name, bench in _benchmarks(pytester.path / "bench.json").items():
        info, stats = bench["extra_info"], bench["stats"]
        # Window energy counts calls: equal to the measured calls means nothing else ran inside the windows.
        assert info["energy_window_j"] == info["energy_calls"] == stats["rounds"] * stats["iterations"], name
    assert call_meter.calls > sum(b["extra_info"]["energy_calls"]
                                  for b in _benchmarks(pytester.path / "bench.json").values())


def test_changed_internals_drop_the_figures_with_a_warning(pytester, call_meter):
    pytester.makepyfile(COUNTED + """
def test_odd(benchmark):
    benchmark.pedantic(work, rounds=2)
    benchmark.stats.update(0.5)  # a round pytest-energy never saw: our counts no longer agree
""")
    result = pytester.runpytest("-k", "odd", "--energy", "--benchmark-json", "bench.json",
                                "-W", "always::pytest_energy.errors.IntegrationWarning")
    result.assert_outcomes(passed=1, deselected=3)
    result.stdout.fnmatch_lines(["*IntegrationWarning*pytest-benchmark internals changed*dropped*"])
    info = _benchmarks(pytester.path / "bench.json")["test_odd"]["extra_info"]
    assert info["energy_warning"].startswith("pytest-benchmark internals changed; not metered")
    assert "energy_j_per_call" not in info


def test_benchmark_disable_runs_unmetered_with_a_note(pytester, call_meter):
    pytester.makepyfile(COUNTED)
    result = pytester.runpytest("--energy", "--benchmark-disable")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["*pytest-energy: pytest-benchmark is disabled (--benchmark-disable*not metered*"])


@pytest.mark.slow  # a pytest -n 2 run
def test_under_xdist_pytest_benchmark_disables_itself_and_we_say_so(pytester, no_nvml):
    pytest.importorskip("xdist")
    pytester.makepyfile(BENCHMARKS)
    result = pytester.runpytest_subprocess("--energy", "-n", "2", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["*pytest-energy: pytest-benchmark is disabled*xdist*run them with -n 0*"])


@pytest.mark.slow  # the real pytest-benchmark compare in a subprocess
def test_benchmark_json_with_energy_still_loads_in_pytest_benchmark_compare(pytester, fake_nvml, compare_loads):
    fake_nvml(FakeGpu(power_w=150.0))
    pytester.makepyfile(BENCHMARKS)
    pytester.runpytest("--energy", "--energy-meter", "nvml", "--benchmark-json", "bench.json",
                       "--benchmark-max-time", "0.3").assert_outcomes(passed=3)
    compare_loads(pytester.path / "bench.json", pytester.path / "compare", expected=2)


def test_help_lists_the_options_with_pytest_benchmark_installed(tmp_path):
    out = subprocess.run([sys.executable, "-m", "pytest", "--help"], cwd=tmp_path, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert "--benchmark-json" in out.stdout and "--energy-only" in out.stdout
