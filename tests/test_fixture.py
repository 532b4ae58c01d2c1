"""The `energy` fixture's public API as users call it: record_metric and the Hugging Face Trainer callback."""

from __future__ import annotations

import importlib.util
import json

import pytest

from pytest_energy.config import TestSettings
from pytest_energy.errors import ShortWindowWarning, UsageError
from pytest_energy.fixture import EnergyFixture
from pytest_energy.meters.fake import manual_measurer
from pytest_energy.records import TestRecord


def _fixture() -> EnergyFixture:
    measurer, _ = manual_measurer()
    return EnergyFixture(measurer, TestRecord("t.py::t", "t"), TestSettings())


def test_record_metric_adds_samples_and_keeps_direction_and_kind():
    energy = _fixture()
    energy.record_metric("overhead_fraction", "1", [0.01, 0.02])
    energy.record_metric("overhead_fraction", "1", 0.03)
    energy.record_metric("examples_per_s", "example/s", [120.0], better="higher")
    metrics = energy._record.metrics
    assert metrics["overhead_fraction"].samples == [0.01, 0.02, 0.03]
    assert metrics["examples_per_s"].better == "higher" and metrics["examples_per_s"].kind == "measured"


@pytest.mark.parametrize("kwargs, match", [
    ({"samples": []}, "finite numbers"),
    ({"samples": [float("nan")]}, "finite numbers"),
    ({"samples": ["1"]}, "finite numbers"),
    ({"samples": [1.0], "better": "smaller"}, "better must be"),
    ({"samples": [1.0], "kind": "noisy"}, "kind 'measured'"),
])
def test_record_metric_rejects_bad_input(kwargs, match):
    with pytest.raises(UsageError, match=match):
        _fixture().record_metric("m", "J", **kwargs)


def test_record_metric_refuses_a_second_unit_for_one_name():
    energy = _fixture()
    energy.record_metric("m", "J", 1.0)
    with pytest.raises(UsageError, match="already recorded with unit 'J'"):
        energy.record_metric("m", "Wh", 1.0)


def _probed_fixture(rounds: int = 3):
    """A fixture on a manual meter whose probe returns 0.03 s more every time it runs."""
    from pytest_energy.measure import Measurer
    from pytest_energy.meters.fake import manual_meter
    from pytest_energy.measure.probe import ProbeResult

    meter, clock = manual_meter()
    taken = []

    def probe():
        taken.append(0.03 * (len(taken) + 1))
        return ProbeResult(taken[-1], taken[-1], 0.0)

    measurer = Measurer(meter, sync=lambda: None, probe=probe)
    return EnergyFixture(measurer, TestRecord("t.py::t", "t"), TestSettings(rounds=rounds, warmup=0)), clock


def test_the_probe_brackets_every_round_of_energy_fn_and_each_inference_pass():
    energy, clock = _probed_fixture(rounds=3)
    energy(clock.advance, 0.5, 10.0)
    assert energy._record.probe_s == pytest.approx([0.03, 0.06, 0.09, 0.12])  # before each round, after the last
    energy.close()
    assert len(energy._record.probe_s) == 4  # nothing left to close

    energy, clock = _probed_fixture(rounds=2)
    energy.inference(lambda batch: clock.advance(0.01, 1.0) or [0] * len(batch), [1, 2, 3], warmup=1)
    assert len(energy._record.probe_s) == 3
    assert energy._record.metrics["inference.duration_s"].samples == pytest.approx([0.03, 0.03])  # 2 passes


def test_the_probe_brackets_a_finetune_run_and_measure_windows():
    energy, clock = _probed_fixture()

    def train_step(step):
        clock.advance(0.1, 1.0)

    energy.finetune_to_cutoff(train_step, lambda: 1.0, cutoff=0.5, eval_every=2, max_steps=4)
    assert len(energy._record.probe_s) == 2  # one run: before and after, however many windows it opened

    energy, clock = _probed_fixture()
    for _ in range(3):
        with energy.measure("step"):
            clock.advance(0.2, 2.0)
    assert len(energy._record.probe_s) == 1  # before the first window only ...
    energy.close()
    assert len(energy._record.probe_s) == 2  # ... and once after the last, when the test ends


def test_energy_fn_calibrates_and_pedantic_calls_exactly():
    from pytest_energy.measure import Measurer
    from pytest_energy.meters.fake import constant_power_meter

    meter = constant_power_meter(10.0)
    meter.min_window_s = 0.002  # a round must last 20 ms: many calls of a ~free function
    energy = EnergyFixture(Measurer(meter, sync=lambda: None), TestRecord("t.py::t", "t"),
                           TestSettings(rounds=2, warmup=0))
    calls = []
    energy(calls.append, 1)
    per_round = energy.extra_info["calls_per_round"]
    assert per_round > 100 and len(calls) >= 2 * per_round  # calibration calls come on top, unmetered
    assert all(w.calls == per_round for w in energy._record.windows)
    assert all(s < 0.02 / 100 for s in energy._record.metrics["duration_s"].samples)  # per call, not per round

    energy = EnergyFixture(Measurer(meter, sync=lambda: None), TestRecord("t.py::t", "t"),
                           TestSettings(rounds=2, warmup=1))
    calls = []
    with pytest.warns(ShortWindowWarning):  # pedantic: one call per round, as asked, however short
        energy.pedantic(calls.append, args=(1,))
    assert len(calls) == 3 and energy.extra_info["calls_per_round"] == 1
    with pytest.raises(UsageError, match="iterations"):
        _fixture().pedantic(print, iterations=0)


def test_unrecorded_window_leaves_no_metric():
    energy = _fixture()
    with energy.measure("calibration", record=False) as w:
        pass
    assert w.closed and energy._record.metrics == {}


TRAINER_TEST = """
import os
import pytest
import torch
from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification, Trainer, TrainingArguments

from pytest_energy.reference.models import embedded_model_path
from pytest_energy.reference.tasks import synthetic_task


def test_trainer(energy, tmp_path):
    tok = AutoTokenizer.from_pretrained(embedded_model_path())
    data = synthetic_task(seed=1, n_train=64, n_dev=32)

    def encode(examples):
        enc = tok([e.text for e in examples], padding="max_length", truncation=True, max_length=16)
        return [{"input_ids": enc["input_ids"][i], "attention_mask": enc["attention_mask"][i], "labels": e.label}
                for i, e in enumerate(examples)]

    torch.manual_seed(0)
    model = BertForSequenceClassification(BertConfig(
        vocab_size=tok.vocab_size, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32, max_position_embeddings=32, num_labels=2))
    args = TrainingArguments(output_dir=str(tmp_path), max_steps=8, eval_strategy="steps",
                             eval_steps=int(os.environ["EVAL_STEPS"]), per_device_train_batch_size=8,
                             report_to=[], save_strategy="no", logging_strategy="no", use_cpu=True,
                             disable_tqdm=True)

    def accuracy(pred):
        return {"accuracy": float((pred.predictions.argmax(-1) == pred.label_ids).mean())}

    callback = energy.trainer_callback(cutoff=0.0, metric_name="eval_accuracy")
    Trainer(model=model, args=args, train_dataset=encode(data.train), eval_dataset=encode(data.dev["dev"]),
            compute_metrics=accuracy, callbacks=[callback]).train()
    assert callback.result.reached
"""


@pytest.mark.slow  # transformers.Trainer in a pytest run
def test_trainer_callback_result_is_recorded_like_finetune_to_cutoff(pytester, no_nvml, monkeypatch):
    """The documented Trainer path reaches the row, the JSON, the baseline and the gate."""
    # find_spec, not importorskip: importing accelerate imports torch, which cannot be imported again in this
    # process after a pytester in-process run has unloaded it; the Trainer runs in a subprocess anyway.
    if importlib.util.find_spec("accelerate") is None:
        pytest.skip("transformers.Trainer needs accelerate")
    pytester.makepyfile(TRAINER_TEST)
    common = ["--energy", "--energy-meter", "estimate", "-p", "no:cacheprovider", "-W", "ignore"]
    monkeypatch.setenv("EVAL_STEPS", "2")
    saved = pytester.runpytest_subprocess(*common, "--energy-save-baseline", "--energy-json", "run.json")
    saved.assert_outcomes(passed=1)
    saved.stdout.fnmatch_lines(["*fine-tune to cut-off*", "test_trainer*0*yes*2*"])  # the protocol row
    report = json.loads((pytester.path / "run.json").read_text())
    [bench] = report["benchmarks"]
    assert [p["protocol"] for p in bench["energy"]["protocols"]] == ["finetune"]
    baseline = json.loads(next((pytester.path / "baselines").glob("*.json")).read_text())
    [entry] = baseline["entries"].values()
    assert entry["metrics"]["finetune.steps_to_cutoff"]["samples"] == [2.0]

    # Evaluating every 4 steps reaches the cut-off at step 4: a deterministic regression the gate fails.
    monkeypatch.setenv("EVAL_STEPS", "4")
    gated = pytester.runpytest_subprocess(*common)
    gated.assert_outcomes(failed=1)
    gated.stdout.fnmatch_lines(["*finetune.steps_to_cutoff: 2 steps -> 4 steps (+100.0 %*REGRESSION*"])
