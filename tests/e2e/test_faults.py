"""The fault matrix (docs/faults.md), end to end as users meet it: every case names what is tried, what the
user must see and what must be kept. Meter faults against drivers are in tests/meters/."""

from __future__ import annotations

import json

import pytest

from pytest_energy.meters.fake import FakeGpu

USAGE = pytest.ExitCode.USAGE_ERROR

ONE_BENCHMARK = """
import time
def test_work(energy):
    energy(time.sleep, 0.05)
"""


def _estimate(pytester, *args, subprocess=False):
    run = pytester.runpytest_subprocess if subprocess else pytester.runpytest
    return run("--energy", "--energy-meter", "estimate", "--energy-rounds", "2", "-p", "no:cacheprovider", *args)


# -- values that JSON or pytest-xdist cannot carry ------------------------------------------------------

EXTRA_INFO = """
import math
import time
import numpy as np

def test_numpy(energy):
    energy(time.sleep, 0.02)
    energy.extra_info.update(steps=np.int64(5), score=np.float32(0.5), shape=np.array([2, 3]),
                             tags={"b", "a"}, bad=float("nan"), blob=object())

def test_plain(energy):
    energy(time.sleep, 0.02)
"""


@pytest.mark.slow  # a pytest -n 2 run
def test_xdist_numpy_extra_info_is_converted_and_nothing_vanishes(pytester, no_nvml):
    """A numpy scalar in extra_info made the worker's report fail (execnet DumpError): the test vanished,
    exit 0. Now values are converted, conversions are named, and both tests reach results and baselines."""
    pytest.importorskip("xdist")
    pytest.importorskip("numpy")
    pytester.makepyfile(test_extra=EXTRA_INFO)
    result = _estimate(pytester, "-n", "2", "--energy-save-baseline", "--energy-json", "out.json",
                       subprocess=True)
    result.assert_outcomes(passed=2)
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    [entries] = [json.loads(p.read_text())["entries"] for p in (pytester.path / "baselines").glob("*.json")]
    assert len(entries) == 2
    extra = entries["test_extra.py::test_numpy"]["extra_info"]
    assert extra["steps"] == 5 and extra["score"] == 0.5 and extra["shape"] == [2, 3]
    assert extra["tags"] == ["a", "b"] and extra["bad"] is None and extra["blob"].startswith("<object")
    report = json.loads((pytester.path / "out.json").read_text())
    assert len(report["benchmarks"]) == 2
    out = result.stdout.str()
    assert "extra_info['bad'] is nan: stored as null" in out
    assert "extra_info['blob'] is a object, which JSON cannot store" in out


# -- report paths: checked before anything runs ---------------------------------------------------------

@pytest.mark.parametrize("args, message", [
    (["--energy-json", "."], "*--energy-json . is a folder; give a file name*"),
    (["--energy-html", "afile/report.html"], "*--energy-html afile/report.html: afile is a file, not a folder*"),
    (["--energy-baseline-dir", "afile"], "*--energy-baseline-dir*afile is a file, not a folder*"),
])
def test_unwritable_report_path_is_a_usage_error_at_start_up(pytester, no_nvml, args, message):
    pytester.makepyfile(ONE_BENCHMARK)
    (pytester.path / "afile").write_text("not a folder")
    result = _estimate(pytester, *args)
    assert result.ret == USAGE
    result.stderr.fnmatch_lines([message])
    result.stdout.no_fnmatch_line("*test_work*")  # nothing ran


def test_step_summary_in_a_missing_folder_is_a_usage_error(pytester, no_nvml, monkeypatch):
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(pytester.path / "gone" / "summary.md"))
    pytester.makepyfile(ONE_BENCHMARK)
    result = _estimate(pytester)
    assert result.ret == USAGE
    result.stderr.fnmatch_lines(["*$GITHUB_STEP_SUMMARY*the folder*gone does not exist*"])


def test_new_report_folders_are_created(pytester, no_nvml):
    pytester.makepyfile(ONE_BENCHMARK)
    _estimate(pytester, "--energy-markdown", "nodir/x.md").assert_outcomes(passed=1)
    assert "test_work" in (pytester.path / "nodir" / "x.md").read_text()


def test_one_report_that_cannot_be_written_does_not_lose_the_others(pytester, no_nvml, monkeypatch):
    """The JSON target becomes a folder after start-up (a race we cannot rule out): the run says so,
    fails, and still writes the markdown."""
    pytester.makepyfile(ONE_BENCHMARK.replace("def test_work(energy):", """def test_work(energy):
    import os
    os.makedirs("late.json")"""))
    result = _estimate(pytester, "--energy-json", "late.json", "--energy-markdown", "ok.md")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*pytest-energy ERROR: cannot write JSON report late.json*"])
    assert "test_work" in (pytester.path / "ok.md").read_text()


# -- bad option values: exit 4 at start-up, the option named ---------------------------------------------

@pytest.mark.parametrize("args, message", [
    (["--energy-idle-s", "inf"], "*--energy-idle-s: must be a finite number >= 0 and <= 3600, got 'inf'*"),
    (["--energy-idle-s", "1e20"], "*--energy-idle-s: must be a finite number*got '1e20'*"),
    (["--energy-cpu-watts-per-core", "inf"], "*--energy-cpu-watts-per-core: must be a finite number*"),
    (["--energy-idle-s", ""], "*--energy-idle-s: empty value*"),
    (["--energy-pue", ""], "*--energy-pue: empty value*"),
    (["--energy-json", ""], "*--energy-json: empty value*"),
    (["--energy-baseline-dir", ""], "*--energy-baseline-dir: empty value*"),
    (["--energy-pue", "0.5"], "*--energy-pue: must be a finite number >= 1*"),
    (["--energy-tolerance=-5%"], "*bad tolerance '-5%'*"),
])
def test_bad_option_values_are_usage_errors(pytester, no_nvml, args, message):
    pytester.makepyfile(ONE_BENCHMARK)
    result = _estimate(pytester, *args)
    assert result.ret == USAGE
    result.stderr.fnmatch_lines([message])
    assert "Traceback" not in result.stderr.str()


@pytest.mark.parametrize("key", ["energy_idle_s", "energy_pue", "energy_json", "energy_baseline_dir"])
def test_empty_ini_values_are_usage_errors(pytester, no_nvml, key):
    pytester.makeini(f"[pytest]\n{key} =\n")
    pytester.makepyfile(ONE_BENCHMARK)
    result = _estimate(pytester)
    assert result.ret == USAGE
    result.stderr.fnmatch_lines([f"*ini key {key}: empty value*"])


def test_a_tolerance_of_10_warns_that_it_means_1000_percent(pytester, no_nvml):
    pytester.makepyfile(ONE_BENCHMARK)
    result = _estimate(pytester, "--energy-tolerance", "10", "-W", "default::pytest_energy.errors.EnergyWarning")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*--energy-tolerance 1000% lets a metric grow 11-fold*write '10%'*"])


def test_marker_tolerance_for_an_unknown_metric_fails_the_test(pytester, no_nvml):
    pytester.makepyfile("""
import time, pytest
@pytest.mark.energy(tolerance={"energy_jj": "5%"})
def test_typo(energy):
    energy(time.sleep, 0.02)
""")
    result = _estimate(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*tolerance for unknown metric(s) 'energy_jj'; this test's metrics are*energy_j*"])


# -- pytest-xdist: a start-up failure is one clean usage error, not a traceback per worker --------------

@pytest.mark.parametrize("setup, args, message", [
    ("damaged", [], "*baseline file*not valid JSON*"),
    ("nvml", ["--energy-meter", "nvml"], "*pytest-energy: NVML: no NVIDIA driver answered*"),
])
def test_xdist_start_up_failure_exits_4_once(pytester, no_nvml, setup, args, message):
    pytest.importorskip("xdist")
    pytester.makepyfile(test_one=ONE_BENCHMARK)
    if setup == "damaged":
        (pytester.path / "baselines").mkdir()
        (pytester.path / "baselines" / "test_one.json").write_text('{"schema_version": 1, "entr')
    run_args = ["-n", "2", "--energy", "-p", "no:cacheprovider", *(args or ["--energy-meter", "estimate"])]
    result = pytester.runpytest_subprocess(*run_args)
    assert result.ret == USAGE
    result.stderr.fnmatch_lines([message])
    output = result.stdout.str() + result.stderr.str()
    assert "Traceback" not in output and output.count(message.strip("*").split("*")[0]) == 1


# -- a protocol and a window of the same name ----------------------------------------------------------

def test_measure_label_of_a_protocol_is_refused_instead_of_merging_samples(pytester, no_nvml):
    pytester.makepyfile("""
import time
def test_both(energy):
    with energy.measure("inference"):
        time.sleep(0.02)
""")
    result = _estimate(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*energy.measure('inference'): the label is reserved*"])


# -- reports that other renderers show: no raw HTML from test names or extra_info ------------------------

def test_markdown_escapes_html_from_test_names_and_notes(pytester, no_nvml):
    pytester.makepyfile("""
import time, pytest
@pytest.mark.parametrize("x", ["<img src=x onerror=alert(1)>"])
def test_inject(energy, x):
    energy(time.sleep, 0.02)
""")
    _estimate(pytester, "--energy-save-baseline").assert_outcomes(passed=1)
    _estimate(pytester, "--energy-markdown", "out.md").assert_outcomes(passed=1)
    text = (pytester.path / "out.md").read_text()
    assert "<img" not in text and "&lt;img src=x onerror=alert(1)&gt;" in text


# -- GPUs that cannot be metered ------------------------------------------------------------------------

def test_gpu_without_counter_or_power_is_passed_over_by_auto(pytester, fake_nvml):
    fake_nvml(FakeGpu(energy_counter=False, power_reading=False))
    pytester.makepyfile(ONE_BENCHMARK)
    result = pytester.runpytest("--energy", "--energy-rounds", "2", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*energy meter: estimate*",
                                 "*passed over: NVML: GPU 0*supports neither the energy counter nor power*"])
    explicit = pytester.runpytest("--energy", "--energy-meter", "nvml", "-p", "no:cacheprovider")
    assert explicit.ret == USAGE
    explicit.stderr.fnmatch_lines(["*supports neither the energy counter nor power readings*"])


@pytest.mark.parametrize("gpu", [FakeGpu(counter_frozen=True), FakeGpu(power_w=0.0)], ids=["frozen", "zero-mw"])
def test_frozen_counter_or_zero_power_fails_the_test_and_saves_nothing(pytester, fake_nvml, gpu):
    fake_nvml(gpu)
    pytester.makepyfile("""
import time
def test_busy(energy):
    with energy.measure("work"):
        time.sleep(0.3)
""")
    result = pytester.runpytest("--energy", "--energy-meter", "nvml", "--energy-save-baseline",
                                "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*read exactly 0 J from gpu0*frozen energy counter or a power reading stuck*"])
    assert not list((pytester.path / "baselines").glob("*.json")) if (pytester.path / "baselines").exists() else True


# -- baseline files ---------------------------------------------------------------------------------------

def test_long_module_path_keeps_every_baseline_and_the_report(pytester, no_nvml):
    """A module path over 255 characters once flattened made the save fail with [Errno 36] and lost the
    baselines of every module and the JSON report."""
    deep = pytester.path.joinpath(*(f"folder_{i:02d}_with_a_long_name" for i in range(10)))
    deep.mkdir(parents=True)
    (deep / "test_deep.py").write_text(ONE_BENCHMARK)
    pytester.makepyfile(test_top=ONE_BENCHMARK)
    result = _estimate(pytester, "--energy-save-baseline", "--energy-json", "out.json")
    result.assert_outcomes(passed=2)
    names = sorted(p.name for p in (pytester.path / "baselines").glob("*.json"))
    assert len(names) == 2 and all(len(n) < 255 for n in names)
    assert len(json.loads((pytester.path / "out.json").read_text())["benchmarks"]) == 2


@pytest.mark.skipif(hasattr(__import__("os"), "geteuid") and __import__("os").geteuid() == 0,
                    reason="root writes whatever the folder's mode")
def test_read_only_baseline_folder_is_a_usage_error_before_the_run(pytester, no_nvml):
    pytester.makepyfile(ONE_BENCHMARK)
    folder = pytester.path / "baselines"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        result = _estimate(pytester, "--energy-save-baseline")
    finally:
        folder.chmod(0o755)
    assert result.ret == USAGE
    result.stderr.fnmatch_lines(["*--energy-baseline-dir*no permission to write*"])
