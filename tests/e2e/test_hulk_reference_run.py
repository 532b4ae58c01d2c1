"""The stored HULK reference as users run it (pytester, fake GPU): save it once, then every run prints HULK's
tables against it, records scores that the gate compares, and fails when a score drops beyond tolerance."""

from __future__ import annotations

import json

import pytest

from pytest_energy.meters.fake import FakeGpu

# One protocol test, run by a "reference" model and by a smaller one through the same node id, as the reference
# suite does with --energy-model. Training costs are sleeps, so the fake GPU's energy follows them exactly.
SUITE = """
import os
import time
import pytest

STEP_S = float(os.environ["STEP_S"])

# Evaluation here is instant (its energy reads 0 or one counter step) and peak memory is the pytester process's,
# growing run after run: neither is what this suite is about.
UNSTUDIED = {name: "1000%" for name in ("finetune.eval_duration_s", "finetune.eval_energy_j",
                                        "finetune.peak_memory_bytes")}

@pytest.mark.energy(group="sst2", tolerance=UNSTUDIED)
def test_finetune_sst2(energy):
    energy.extra_info["model"] = os.environ["MODEL"]
    for _ in range(4):  # four runs of the protocol: four samples of each cost, a spread for the gate
        state = {"step": 0}

        def train_step(step):
            state["step"] = step + 1
            time.sleep(STEP_S)

        def evaluate():
            return 1.0 if state["step"] >= 2 else 0.0

        assert energy.finetune_to_cutoff(train_step, evaluate, cutoff=0.5, eval_every=2, max_steps=4).reached

def test_plain_timing(energy):
    energy(time.sleep, 0.01)  # no HULK task: never scored
"""
TEST = "test_suite.py::test_finetune_sst2"
REFERENCE = "baselines/hulk-reference.json"


@pytest.fixture
def suite(pytester, fake_nvml):
    # A fine-grained counter: energy follows time closely, so only the planted changes move the scores.
    fake_nvml(FakeGpu(power_w=100.0, counter_update_s=0.001))
    pytester.makepyfile(test_suite=SUITE)
    return pytester


def run(pytester, model, step_s, *args):
    pytester._monkeypatch.setenv("MODEL", model)
    pytester._monkeypatch.setenv("STEP_S", str(step_s))
    return pytester.runpytest("--energy", "--energy-meter", "nvml", "-W", "ignore::pytest_energy.errors."
                              "ShortWindowWarning", *args)


def score_line(result, model):
    return next(line for line in result.outlines if line.startswith(model + " ")).split()


@pytest.mark.slow  # seven pytest runs of a suite that sleeps
@pytest.mark.filterwarnings("default::pytest_energy.errors.ShortWindowWarning")
def test_stored_reference_scores_gates_and_reports(suite):
    reference = run(suite, "bert-large", 0.1, "--energy-save-reference")
    reference.assert_outcomes(passed=2)
    reference.stdout.fnmatch_lines([f"*stored this run's costs as the HULK reference of this machine class in "
                                    f"{REFERENCE}*", f"wrote *{REFERENCE}"])
    stored = json.loads((suite.path / REFERENCE).read_text())["references"][0]
    assert stored["model"] == "bert-large" and list(stored["slots"]) == ["finetune|sst2"]
    assert stored["slots"]["finetune|sst2"]["costs"]["time"]["mean"] == pytest.approx(0.2, rel=0.15)
    assert stored["machine"]["gpus"] == ["NVIDIA H100 80GB HBM3"]

    # A model twice as fast, the reference not in the session: scores ~2, stored in its baseline.
    saved = run(suite, "minilm", 0.05, "--energy-save-baseline")
    saved.assert_outcomes(passed=2)
    baseline = json.loads((suite.path / "baselines" / "test_suite.json").read_text())["entries"][TEST]
    samples = baseline["metrics"]["hulk.finetune.score_time"]["samples"]
    assert len(samples) == 4 and all(1.6 < s < 2.2 for s in samples)
    assert baseline["metrics"]["hulk.finetune.score_energy"]["better"] == "higher"
    assert "hulk.finetune.score_time" not in str(baseline) or "test_plain_timing" not in str(baseline)

    same = run(suite, "minilm", 0.05, "--energy-json", "r.json", "--energy-markdown", "r.md", "--energy-html",
               "r.html")
    same.assert_outcomes(passed=2)
    same.stdout.fnmatch_lines([
        f"HULK finetune score against the stored reference = bert-large time / model time ({REFERENCE}, *",
        "*Model*sst2 Time (s)*sst2 Score*Overall Score*",
        "bert-large (stored reference) *1.00*1.00",
        "minilm: overall time score * (baseline *, *; metric hulk.finetune.score_time per task, decided per task: "
        "PASS)",
    ])
    minilm = score_line(same, "minilm")
    assert 1.7 < float(minilm[2]) < 2.2 and minilm[-1] == minilm[2]
    report = json.loads((suite.path / "r.json").read_text())
    assert report["hulk"]["reference"]["entry"]["model"] == "bert-large"
    (time_table,) = [t for t in report["hulk"]["tables"] if t["kind"] == "stored" and t["cost"] == "time"]
    assert time_table["reference"] == "bert-large (stored reference)" and time_table["tasks"] == ["sst2"]
    assert [row["model"] for row in time_table["rows"]] == ["bert-large (stored reference)", "minilm"]
    assert 1.7 < time_table["rows"][1]["scores"]["sst2"] < 2.2
    assert "#### HULK finetune score against the stored reference = bert-large energy / model energy" in \
        (suite.path / "r.md").read_text()
    assert "<h2>HULK finetune score against the stored reference = bert-large time / model time" in \
        (suite.path / "r.html").read_text()

    # The model got slower: its cost and its score against the stored reference both regress.
    slower = run(suite, "minilm", 0.1)
    slower.assert_outcomes(passed=1, failed=1)
    slower.stdout.fnmatch_lines(["*hulk.finetune.score_time: * -> * (-*%, p=*) REGRESSION*"])

    # The reference was re-recorded cheaper: the model's costs are unchanged, but its score fell by half.
    run(suite, "bert-large", 0.05, "--energy-save-reference").assert_outcomes(passed=2)
    stored = json.loads((suite.path / REFERENCE).read_text())["references"]
    assert len(stored) == 1 and stored[0]["slots"]["finetune|sst2"]["costs"]["time"]["mean"] < 0.15
    dropped = run(suite, "minilm", 0.05)
    dropped.assert_outcomes(passed=1, failed=1)
    failure = "\n".join(dropped.outlines)
    assert "hulk.finetune.score_time" in failure and "hulk.finetune.score_energy" in failure
    assert "finetune.duration_s: " not in failure  # only the score moved
    assert dropped.ret == 1

    # A reference run measures the reference model under the same node ids as the model's baselines: it is
    # compared (here 2x slower than the baseline) but never failed on.
    reference_again = run(suite, "bert-large", 0.1, "--energy-save-reference")
    reference_again.assert_outcomes(passed=2)
    reference_again.stdout.fnmatch_lines(["*finetune.duration_s*+*REGRESSION*",
                                          "test_finetune_sst2: recording the HULK reference "
                                          "(--energy-save-reference): compared, not gated"])


@pytest.mark.slow  # two pytest runs of a suite that sleeps
@pytest.mark.filterwarnings("default::pytest_energy.errors.ShortWindowWarning")
def test_another_machine_class_is_not_scored_and_says_so(suite, fake_nvml):
    run(suite, "bert-large", 0.05, "--energy-save-reference").assert_outcomes(passed=2)
    fake_nvml(FakeGpu(name="NVIDIA A100-SXM4-40GB", power_w=100.0, counter_update_s=0.001))
    other = run(suite, "minilm", 0.05, "--energy-json", "r.json")
    other.assert_outcomes(passed=2)
    other.stdout.fnmatch_lines(["HULK scores against a stored reference",
                                f"the stored HULK reference in {REFERENCE} was measured on another machine class, "
                                "so no score is computed*gpus: *H100* (baseline) != *A100* (now)*"])
    record = json.loads((suite.path / "r.json").read_text())["benchmarks"][0]
    assert not [m for m in record["energy"]["metrics"] if m.startswith("hulk.")]


def test_a_damaged_reference_stops_the_run_naming_the_file(suite):
    path = suite.path / REFERENCE
    path.parent.mkdir()
    path.write_text('{"schema": "pytest-energy/hulk-reference", "schema_version": 1, "references": [{"mod')
    for extra in ([], ["--energy-save-reference"]):
        result = run(suite, "minilm", 0.01, *extra)
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines([f"*pytest-energy: HULK reference file *{REFERENCE}: not valid JSON*"])
    assert path.read_text().endswith('"mod')


def test_save_reference_without_a_hulk_task_is_an_error(pytester, fake_nvml):
    fake_nvml(FakeGpu())
    pytester.makepyfile("import time\ndef test_t(energy):\n    energy(time.sleep, 0.01)\n")
    result = pytester.runpytest("--energy", "--energy-save-reference", "--energy-rounds", "1",
                                "-W", "ignore::pytest_energy.errors.ShortWindowWarning")
    result.assert_outcomes(passed=1)
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*pytest-energy ERROR: --energy-save-reference: no test produced a HULK cost*"])
    assert not (pytester.path / REFERENCE).exists()
