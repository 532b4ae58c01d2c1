"""The plugin as users run it (pytester), on fake GPUs: skip, table, JSON, marker, meter errors, gate."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest
from pytest_energy.meters.fake import FakeGpu

PLAIN_AND_ENERGY = """
import time
import pytest

def test_plain():
    assert True

def test_fixture(energy):
    energy(time.sleep, 0.12)

@pytest.mark.energy(rounds=2, warmup=0)
def test_marker_only():
    time.sleep(0.12)
"""


def test_energy_tests_are_skipped_without_the_option(pytester):
    pytester.makepyfile(PLAIN_AND_ENERGY)
    result = pytester.runpytest("-rs")
    result.assert_outcomes(passed=1, skipped=2)
    result.stdout.fnmatch_lines(["*energy benchmark: run `pytest --energy` to measure it*"])
    result.stdout.no_fnmatch_line("*= energy =*")


def test_plain_run_imports_nothing_heavy(pytester):
    pytester.makepyfile(PLAIN_AND_ENERGY + """
import sys
def test_zz_no_heavy_imports():
    heavy = {"torch", "pynvml", "transformers", "datasets", "matplotlib", "numpy"} & set(sys.modules)
    assert not heavy, heavy
""")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, skipped=2)


def test_table_on_fake_gpu(pytester, fake_nvml):
    fake_nvml(FakeGpu(power_w=200.0))
    pytester.makepyfile(PLAIN_AND_ENERGY)
    result = pytester.runpytest("--energy", "--energy-meter", "nvml", "--energy-rounds", "3")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines([
        "*energy meter: nvml [[]nvml-counter] on gpu0 (NVIDIA H100 80GB HBM3)*",
        "*test*rounds*time s (mean ± sd)*energy J (mean ± sd)*avg power W*method*",
        "test_fixture*3*0.12*nvml-counter",
        "test_marker_only*2*0.12*nvml-counter",
    ])
    line = next(x for x in result.outlines if x.startswith("test_fixture "))
    power_w = float(line.split()[-2])
    assert power_w == pytest.approx(200.0, rel=0.2)  # 120 ms windows, 20 ms counter steps


def test_json_report_keeps_pytest_benchmark_layout(pytester, fake_nvml):
    fake_nvml(FakeGpu(power_w=100.0))
    pytester.makepyfile(PLAIN_AND_ENERGY)
    result = pytester.runpytest("--energy", "--energy-rounds", "3", "--energy-json", "out/report.json")
    result.assert_outcomes(passed=3)
    data = json.loads((pytester.path / "out" / "report.json").read_text())
    assert {"machine_info", "commit_info", "benchmarks", "datetime", "version"} <= set(data)
    assert {"id", "time", "author_time", "dirty", "project", "branch"} <= set(data["commit_info"])
    bench = next(b for b in data["benchmarks"] if b["name"] == "test_fixture")
    assert {"group", "name", "fullname", "params", "extra_info", "options", "stats", "energy"} <= set(bench)
    assert bench["fullname"] == "test_json_report_keeps_pytest_benchmark_layout.py::test_fixture"
    stats = bench["stats"]
    assert {"min", "max", "mean", "stddev", "median", "iqr", "q1", "q3", "rounds", "iterations", "ops"} <= set(stats)
    assert stats["rounds"] == 3 and stats["mean"] == pytest.approx(0.12, abs=0.02)
    energy = bench["energy"]
    assert energy["unit"] == "J" and energy["method"] == "nvml-counter"
    assert energy["stats"]["mean"] == pytest.approx(12.0, rel=0.2)
    assert energy["devices"]["gpu0"]["method"] == "nvml-counter"
    assert len(energy["data"]) == 3
    assert data["machine_info"]["gpus"] == ["NVIDIA H100 80GB HBM3"]


def test_unknown_marker_argument_is_a_clear_error(pytester, no_nvml):
    pytester.makepyfile("""
import pytest
@pytest.mark.energy(roundz=3)
def test_typo(energy):
    energy(sum, [1, 2])
""")
    result = pytester.runpytest("--energy", "--energy-meter", "estimate")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*energy marker: unknown argument(s) roundz; accepted: rounds, warmup,*"])


@pytest.mark.filterwarnings("default::pytest_energy.errors.ShortWindowWarning")  # windows of a list.append
def test_marker_overrides_command_line(pytester, no_nvml):
    pytester.makepyfile("""
import pytest
@pytest.mark.energy(rounds=2, warmup=3)
def test_it(energy):
    calls = []
    energy.pedantic(calls.append, args=(1,))  # one call per round: exactly warmup + rounds calls
    assert len(calls) == 5
""")
    result = pytester.runpytest("--energy", "--energy-meter", "estimate", "--energy-rounds", "7")
    result.assert_outcomes(passed=1)


@pytest.mark.parametrize("args, message", [
    (["--energy-meter", "nvml"], "*pytest-energy: NVML: no NVIDIA driver answered*"),
    (["--energy-meter", "gpu"], "*--energy-meter: unknown value 'gpu'; choose one of auto, nvml, rapl, estimate*"),
    (["--energy-tolerance", "ten"], "*bad tolerance 'ten'*"),
    (["--energy-rounds", "0"], "*--energy-rounds: must be >= 1, got 0*"),
])
def test_bad_options_stop_the_run(pytester, no_nvml, args, message):
    pytester.makepyfile(PLAIN_AND_ENERGY)
    result = pytester.runpytest("--energy", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_explicit_rapl_without_powercap_says_why(pytester, no_nvml, monkeypatch):
    monkeypatch.setattr("pytest_energy.meters.rapl.DEFAULT_POWERCAP_ROOT", str(pytester.path / "none"))
    pytester.makepyfile(PLAIN_AND_ENERGY)
    result = pytester.runpytest("--energy", "--energy-meter", "rapl")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*RAPL: * does not exist*"])


def test_nvml_is_used_although_torch_sees_no_cuda(pytester, fake_nvml, monkeypatch):
    fake_nvml(FakeGpu(power_w=50.0))
    torch = pytest.importorskip("torch")
    assert not torch.cuda.is_available()
    pytester.makepyfile(PLAIN_AND_ENERGY)
    result = pytester.runpytest("--energy", "--energy-meter", "nvml", "--energy-rounds", "1",
                                "--energy-min-round-s", "0")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["*energy meter: nvml [[]nvml-counter]*"])


def test_measure_windows_and_fixture_attributes(pytester, fake_nvml):
    fake_nvml(FakeGpu(power_w=300.0))
    pytester.makepyfile("""
import time
def test_windows(energy):
    for _ in range(2):
        with energy.measure("train") as w:
            time.sleep(0.15)
        assert w.method == "nvml-counter"
        assert w.duration_s >= 0.15
        assert abs(w.energy_j / w.duration_s - 300) < 60
        assert w.devices[0].device == "gpu0"
    energy.extra_info["model"] = "tiny"
""")
    result = pytester.runpytest("--energy", "--energy-json", "r.json")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["test_windows › train*2*nvml-counter"])
    bench = json.loads((pytester.path / "r.json").read_text())["benchmarks"][0]
    assert bench["extra_info"] == {"model": "tiny"}
    assert bench["stats"]["rounds"] == 2
    assert set(bench["energy"]["metrics"]) == {"train.duration_s", "train.energy_j"}


def test_measurement_failure_fails_the_test_not_zero(pytester, fake_nvml):
    fake_nvml(FakeGpu(lost_after_s=0.3))
    pytester.makepyfile("""
import time
def test_gpu_dies(energy):
    with energy.measure("x"):
        time.sleep(0.4)
""")
    result = pytester.runpytest("--energy", "--energy-meter", "nvml")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*MeasurementError: NVML could not read GPU 0*GPU is lost*"])


# -- the gate: save, rerun unchanged (PASS), rerun slower (the test fails), damaged baseline (exit 4) -----
GATE_TEST = """
import os, time

WORK_S = float(os.environ["WORK_S"])

def test_other(energy):
    energy(time.sleep, 0.1)

def test_work(energy):
    energy(time.sleep, WORK_S)
"""


def _gate_run(pytester, work_s, *args):
    pytester._monkeypatch.setenv("WORK_S", str(work_s))
    # One call per round: the rounds are the sleeps themselves (calibration would make each round ~1 s).
    return pytester.runpytest("--energy", "--energy-meter", "nvml", "--energy-rounds", "5",
                              "--energy-min-round-s", "0", *args)


def test_gate_passes_same_work_and_fails_slower_work(pytester, fake_nvml):
    fake_nvml(FakeGpu(power_w=250.0))
    pytester.makepyfile(test_gate=GATE_TEST)
    saved = _gate_run(pytester, 0.3, "--energy-save-baseline")
    saved.assert_outcomes(passed=2)
    baseline = pytester.path / "baselines" / "test_gate.json"
    doc = json.loads(baseline.read_text())
    assert doc["schema_version"] == 2
    entry = doc["entries"]["test_gate.py::test_work"]
    assert len(entry["metrics"]["energy_j"]["samples"]) == 5
    assert [run["n"] for run in entry["metrics"]["energy_j"]["history"]] == [5]  # one run of 5 rounds
    assert entry["machine"]["gpus"] == ["NVIDIA H100 80GB HBM3"]

    same = _gate_run(pytester, 0.3)
    same.assert_outcomes(passed=2)
    assert same.ret == 0
    same.stdout.fnmatch_lines(["*test_work*energy_j*PASS*"])

    slower = _gate_run(pytester, 0.4, "--junitxml", "junit.xml")
    slower.assert_outcomes(passed=1, failed=1)
    assert slower.ret == 1
    slower.stdout.fnmatch_lines([
        "*energy regression against baselines/test_gate.json*",
        "*energy_j: * J -> * J (+3*%, p=*REGRESSION*",
        "*test_work*energy_j*+3*REGRESSION*",
        "FAILED test_gate.py::test_work*",
    ])
    case = next(c for c in ET.parse(pytester.path / "junit.xml").iter("testcase") if c.get("name") == "test_work")
    assert "energy_j" in case.find("failure").get("message")
    properties = {p.get("name"): p.get("value") for p in case.iter("property")}
    assert properties["energy-verdict:energy_j"] == "REGRESSION"
    assert float(properties["energy:energy_j[J]"]) == pytest.approx(100.0, rel=0.1)


def test_damaged_baseline_stops_the_run_and_is_left_alone(pytester, fake_nvml):
    fake_nvml(FakeGpu(power_w=250.0))
    pytester.makepyfile(test_gate=GATE_TEST)
    baseline = pytester.path / "baselines" / "test_gate.json"
    baseline.parent.mkdir()
    damaged = b'{"schema_version": 1, "entries": {"test_gate.py::test_work": {"metr'
    baseline.write_bytes(damaged)
    for extra in ([], ["--energy-save-baseline"]):
        result = _gate_run(pytester, 0.3, *extra)
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines(["*pytest-energy: *baselines/test_gate.json*"])
        assert baseline.read_bytes() == damaged


def test_missing_baseline_passes_with_a_note_or_fails_when_required(pytester, fake_nvml):
    fake_nvml(FakeGpu())
    pytester.makepyfile(test_gate=GATE_TEST)
    lenient = _gate_run(pytester, 0.1)
    lenient.assert_outcomes(passed=2)
    lenient.stdout.fnmatch_lines(["*test_work: no baseline for this test in baselines/test_gate.json*"])
    strict = _gate_run(pytester, 0.1, "--energy-require-baseline")
    strict.assert_outcomes(failed=2)
    strict.stdout.fnmatch_lines(["*--energy-require-baseline: no baseline for this test*"])


def test_machine_mismatch_does_not_gate_unless_a_baseline_is_required(pytester, fake_nvml):
    fake_nvml(FakeGpu(name="NVIDIA A100-SXM4-40GB", power_w=100.0))
    pytester.makepyfile(test_gate=GATE_TEST)
    _gate_run(pytester, 0.1, "--energy-save-baseline").assert_outcomes(passed=2)
    fake_nvml(FakeGpu(name="NVIDIA H100 80GB HBM3", power_w=400.0))
    other = _gate_run(pytester, 0.3)
    other.assert_outcomes(passed=2)
    other.stdout.fnmatch_lines(["*different machine class, not compared: gpus: *A100* != *H100*"])
    # A strict gate must not pass silently because the comparison could not happen (e.g. NVML fell back
    # to the estimate: another machine class).
    strict = _gate_run(pytester, 0.3, "--energy-require-baseline")
    strict.assert_outcomes(failed=2)
    strict.stdout.fnmatch_lines(["*--energy-require-baseline: baseline was measured on a different machine class*"])


def test_inconclusive_passes_visibly_and_fails_with_the_strict_option(pytester, fake_nvml):
    """One round a side cannot show a spread: a 2x change is INCONCLUSIVE, and the terminal says it passes."""
    fake_nvml(FakeGpu(power_w=250.0))
    pytester.makepyfile(test_gate=GATE_TEST)
    # A wide tolerance: one 0.1 s round of test_other can move by a 20 ms counter step plus a late wake-up
    # on a loaded CI machine (+20 % was seen), which must not read as a change; test_work's 3x must.
    one = ["--energy-rounds", "1", "--energy-tolerance", "50%"]
    _gate_run(pytester, 0.1, *one, "--energy-save-baseline").assert_outcomes(passed=2)
    lenient = _gate_run(pytester, 0.3, *one)
    lenient.assert_outcomes(passed=2)
    lenient.stdout.fnmatch_lines([
        "*test_work*energy_j*+*within-run Welch*INCONCLUSIVE [[]1]*",
        "[[]1] a single sample on one side gives no spread estimate: save 3 baseline runs*",
        "*INCONCLUSIVE verdict(s) PASS: the change could not be told from the noise. More rounds*"
        "--energy-fail-on-inconclusive makes them fail.",
    ])
    strict = _gate_run(pytester, 0.3, *one, "--energy-fail-on-inconclusive")
    strict.assert_outcomes(passed=1, failed=1)
    strict.stdout.fnmatch_lines([
        "*INCONCLUSIVE against baselines/test_gate.json fails with --energy-fail-on-inconclusive:*",
        "*energy_j: * J -> * J (+*%, p=n/a, tolerance 50 %, n=1/1, within-run Welch) INCONCLUSIVE*",
        "*INCONCLUSIVE verdict(s) FAIL their tests (--energy-fail-on-inconclusive)*",
    ])


def test_markdown_summary_goes_to_github_step_summary(pytester, fake_nvml, monkeypatch):
    fake_nvml(FakeGpu())
    summary = pytester.path / "step_summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    pytester.makepyfile(test_gate=GATE_TEST)
    _gate_run(pytester, 0.1, "--energy-markdown", "energy.md").assert_outcomes(passed=2)
    text = summary.read_text()
    assert text.startswith("earlier step\n")  # appended, not truncated
    assert "test_work" in text and "nvml-counter" in text
    assert (pytester.path / "energy.md").read_text() == text[len("earlier step\n"):]


@pytest.mark.slow  # pytest -n 2 runs
def test_xdist_workers_keep_each_others_baselines(pytester, no_nvml):
    pytest.importorskip("xdist")
    pytester.makepyfile(**{f"test_m{i}": f"""
import time
def test_a{i}(energy):
    energy(sum, range(1000))
def test_b{i}(energy):
    energy(sum, range(1000))
""" for i in range(3)})
    result = pytester.runpytest_subprocess("-n", "2", "--energy", "--energy-meter", "estimate",
                                           "--energy-rounds", "2", "--energy-save-baseline")
    result.assert_outcomes(passed=6)
    stored = {}
    for path in (pytester.path / "baselines").glob("*.json"):
        stored.update(json.loads(path.read_text())["entries"])
    assert len(stored) == 6
    result.stdout.fnmatch_lines(["*test_a0*estimate*"])


@pytest.mark.filterwarnings("default::pytest_energy.errors.ShortWindowWarning")  # instant evaluate()
def test_hulk_reference_normalisation_table(pytester, fake_nvml):
    fake_nvml(FakeGpu(power_w=100.0))
    pytester.makepyfile(test_hulk_tables="""
import time
import pytest

def _run(energy, step_s, reach_at):
    energy.extra_info["model"] = f"model-{step_s}"
    state = {"step": 0}
    def train_step(step):
        state["step"] = step
        time.sleep(step_s)
    def evaluate():
        return 1.0 if state["step"] >= reach_at else 0.0
    return energy.finetune_to_cutoff(train_step, evaluate, cutoff=0.5, eval_every=2, max_steps=4)

@pytest.mark.energy(group="sst2")
def test_large_sst2(energy):
    assert _run(energy, 0.1, 2).reached

@pytest.mark.energy(group="mnli")
def test_large_mnli(energy):
    assert _run(energy, 0.1, 3).reached

@pytest.mark.energy(group="sst2", reference="test_hulk_tables.py::test_large_sst2")
def test_small_sst2(energy):
    assert _run(energy, 0.05, 2).reached

@pytest.mark.energy(group="mnli", reference="test_hulk_tables.py::test_large_mnli")
def test_small_mnli(energy):
    assert not _run(energy, 0.05, 99).reached
""")
    result = pytester.runpytest("--energy", "--energy-html", "r.html", "--energy-markdown", "r.md")
    result.assert_outcomes(passed=4)
    html_text = (pytester.path / "r.html").read_text()
    assert "<h2>HULK finetune score = model-0.1 time / model time (n/a: cut-off not reached)</h2>" in html_text
    assert "<td>model-0.05</td>" in html_text.replace(' style="text-align: left;"', "")
    assert "#### HULK finetune score = model-0.1 energy / model energy" in (pytester.path / "r.md").read_text()
    result.stdout.fnmatch_lines(["HULK finetune score = model-0.1 time / model time*",
                                 "*Model*sst2 Time (s)*sst2 Score*mnli Time (s)*mnli Score*Overall Score*"])
    large = next(x for x in result.outlines if x.startswith("model-0.1 "))
    small = next(x for x in result.outlines if x.startswith("model-0.05 "))
    assert large.split()[2] == "1.00" and large.split()[4] == "1.00" and large.split()[-1] == "2.00"
    # The score is the reference's training time over the model's, as both were measured (columns 1): about
    # 2 for half the sleep, less when a loaded machine oversleeps both by the same milliseconds. Never
    # reaching MNLI scores N/A, 0.
    measured_ratio = float(large.split()[1]) / float(small.split()[1])
    assert float(small.split()[2]) == pytest.approx(measured_ratio, rel=0.02)
    assert 1.5 < float(small.split()[2]) < 2.1 and small.split()[3:5] == ["n/a", "0.00"]
    assert small.split()[-1] == small.split()[2]


def test_json_records_gpu_temperature_and_clocks(pytester, fake_nvml):
    fake_nvml(FakeGpu())
    pytester.makepyfile(PLAIN_AND_ENERGY)
    pytester.runpytest("--energy", "--energy-rounds", "1", "--energy-min-round-s", "0",
                       "--energy-json", "r.json").assert_outcomes(passed=3)
    session = json.loads((pytester.path / "r.json").read_text())["energy"]
    assert session["device_state_start"] == {"gpu0": {"temperature_c": 45, "sm_clock_mhz": 1980}}
    assert session["device_state_end"] == session["device_state_start"]
    assert session["meter"] == "nvml"


def test_zero_watts_per_core_is_rejected_not_replaced_by_the_default(pytester, no_nvml):
    pytester.makepyfile(PLAIN_AND_ENERGY)
    result = pytester.runpytest("--energy", "--energy-meter", "estimate", "--energy-cpu-watts-per-core", "0")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--energy-cpu-watts-per-core: must be a finite number > 0*got '0'*"])


def test_rounds_repeat_the_inference_pass_from_the_marker_and_the_command_line(pytester, fake_nvml):
    fake_nvml(FakeGpu())
    pytester.makepyfile(test_inf="""
import time
import pytest

def predict(batch):
    time.sleep(0.01)  # a pass of 4 batches outlasts two steps of the fake GPU's 20 ms energy counter
    return [0] * len(batch)

@pytest.mark.energy(rounds=3)
def test_marker(energy):
    r = energy.inference(predict, list(range(4)), warmup=2, labels=[0] * 4)
    assert r.rounds == 3

def test_cli(energy):
    r = energy.inference(predict, list(range(4)), warmup=2, labels=[0] * 4)
    assert r.rounds == 2
""")
    result = pytester.runpytest("--energy", "--energy-rounds", "2", "--energy-json", "r.json", "-W",
                                "ignore::pytest_energy.errors.ShortWindowWarning")
    result.assert_outcomes(passed=2)
    benches = {b["name"]: b for b in json.loads((pytester.path / "r.json").read_text())["benchmarks"]}
    for name, passes in (("test_marker", 3), ("test_cli", 2)):
        metrics = benches[name]["energy"]["metrics"]
        assert len(metrics["inference.energy_j"]["samples"]) == passes  # one sample per pass
        assert len(metrics["inference.ms_per_example_p50"]["samples"]) == passes
        assert metrics["inference.accuracy"]["samples"] == [1.0]  # deterministic: one value
