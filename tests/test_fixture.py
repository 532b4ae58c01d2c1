"""The `energy` fixture's public API as users call it: record_metric and the Hugging Face Trainer callback."""

from __future__ import annotations

import json

import pytest

from pytest_energy.config import TestSettings
from pytest_energy.errors import UsageError
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


def test_trainer_callback_result_is_recorded_like_finetune_to_cutoff(pytester, no_nvml, monkeypatch):
    """The documented Trainer path reaches the row, the JSON, the baseline and the gate."""
    pytest.importorskip("accelerate", reason="transformers.Trainer needs accelerate")
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
