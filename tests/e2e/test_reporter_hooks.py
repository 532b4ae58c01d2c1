"""pytest-energy's own hooks: a plugin of the user's receives each test's result and the finished run, as the
built-in reporters do; a report file that cannot be written fails the run and is named."""

from __future__ import annotations

CONFTEST = """
import json

RESULTS = []

def pytest_energy_test_result(item, result):
    RESULTS.append((item.nodeid, sorted(result.record.metrics)))

def pytest_energy_run_result(config, run):
    with open("mine.json", "w") as f:
        json.dump({"tests": RESULTS, "benchmarks": [b.record.nodeid for b in run.benchmarks],
                   "written": list(run.written)}, f)
"""

TEST = """
import time

def test_a(energy):
    energy(time.sleep, 0.01)
"""


def test_a_plugin_of_your_own_receives_the_results(pytester, no_nvml):
    import json

    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_m=TEST)
    result = pytester.runpytest("--energy", "--energy-rounds", "2", "--energy-min-round-s", "0",
                                "-W", "ignore::pytest_energy.errors.ShortWindowWarning")
    result.assert_outcomes(passed=1)
    mine = json.loads((pytester.path / "mine.json").read_text())
    assert mine["tests"] == [["test_m.py::test_a", ["duration_s", "energy_j"]]]
    assert mine["benchmarks"] == ["test_m.py::test_a"]


def test_without_energy_the_hooks_are_not_called(pytester):
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_m=TEST)
    pytester.runpytest().assert_outcomes(skipped=1)
    assert not (pytester.path / "mine.json").exists()


def test_a_report_that_cannot_be_written_fails_the_run_and_the_others_are_written(pytester, no_nvml):
    pytester.makepyfile(test_m=TEST)
    # A folder at start-up is refused (check_targets); one that appears during the run is a write failure.
    pytester.makeconftest("""
import os

def pytest_sessionstart(session):
    os.mkdir("taken.json")
""")
    result = pytester.runpytest("--energy", "--energy-rounds", "2", "--energy-min-round-s", "0",
                                "--energy-json", "taken.json", "--energy-markdown", "e.md",
                                "-W", "ignore::pytest_energy.errors.ShortWindowWarning")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*pytest-energy ERROR: cannot write JSON report *taken.json*"])
    assert (pytester.path / "e.md").exists()
