from __future__ import annotations

import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pytest_energy.meters.fake import constant_power_meter
from pytest_energy.meters.fake import manual_measurer as fake_measurer

from pytest_energy.errors import UsageError
from pytest_energy.measure import Measurer
from pytest_energy.protocols import FinetuneResult, finetune_to_cutoff, make_trainer_callback


TRAIN_S, TRAIN_J = 1.0, 10.0  # per training step
EVAL_S, EVAL_J = 0.5, 3.0  # per evaluation


def scripted(scores, tokens_per_step=100):
    """train_step/evaluate that move the fake clock by fixed amounts and return scripted scores."""
    measurer, clock = fake_measurer()
    calls = {"steps": [], "evals": 0}
    it = iter(scores)

    def train_step(step):
        calls["steps"].append(step)
        clock.advance(TRAIN_S, TRAIN_J)
        return tokens_per_step

    def evaluate():
        calls["evals"] += 1
        clock.advance(EVAL_S, EVAL_J)
        return next(it)

    return measurer, clock, train_step, evaluate, calls


def test_stops_at_first_evaluation_reaching_cutoff_and_excludes_eval_exactly():
    measurer, _, train_step, evaluate, calls = scripted([0.5, 0.7, 0.91, 0.95])
    r = finetune_to_cutoff(measurer, train_step, evaluate, cutoff=0.9, eval_every=3, max_steps=100,
                           flops_per_step=1000)
    assert r.reached and r.steps == 9 and r.score == 0.91 and r.evaluations == 3
    assert calls["steps"] == list(range(9)) and calls["evals"] == 3
    assert r.duration_s == pytest.approx(9 * TRAIN_S) and r.energy_j == pytest.approx(9 * TRAIN_J)
    assert r.eval_duration_s == pytest.approx(3 * EVAL_S) and r.eval_energy_j == pytest.approx(3 * EVAL_J)
    assert r.wall_duration_s == pytest.approx(9 * TRAIN_S + 3 * EVAL_S)
    assert r.wall_energy_j == pytest.approx(9 * TRAIN_J + 3 * EVAL_J)
    assert r.eval_share == pytest.approx(1.5 / 10.5)
    assert r.tokens == 900 and r.flops == 9000 and r.method == "rapl"
    assert [(p.step, p.train_duration_s, p.train_energy_j, p.wall_s, p.score) for p in r.curve] == [
        (3, 3.0, 30.0, 3.5, 0.5), (6, 6.0, 60.0, 7.0, 0.7), (9, 9.0, 90.0, 10.5, 0.91)]
    assert r.curve[-1].wall_energy_j == pytest.approx(r.wall_energy_j)
    assert r.net_energy_j is None and r.peak_memory_bytes and r.peak_memory_bytes > 0


def test_metrics_when_reached():
    measurer, _, train_step, evaluate, _ = scripted([0.95])
    r = finetune_to_cutoff(measurer, train_step, evaluate, cutoff=0.9, eval_every=2, max_steps=10)
    m = {x.name: x for x in r.metrics()}
    assert m["finetune.reached"].samples == [1.0]
    assert m["finetune.duration_s"].samples == [pytest.approx(2.0)]
    assert m["finetune.energy_j"].samples == [pytest.approx(20.0)]
    assert m["finetune.energy_j"].method == "rapl" and m["finetune.energy_j"].kind == "measured"
    assert m["finetune.eval_energy_j"].samples == [pytest.approx(3.0)]
    assert m["finetune.wall_duration_s"].samples == [pytest.approx(2.5)]
    assert m["finetune.steps_to_cutoff"].kind == "deterministic" and m["finetune.steps_to_cutoff"].samples == [2.0]
    assert m["finetune.tokens"].samples == [200.0] and m["finetune.tokens"].unit == "tokens"
    assert m["finetune.score"].better == "higher"
    assert "finetune.flops" not in m  # unknown, so absent rather than 0
    assert all(name.startswith("finetune.") for name in m)
    d = r.to_dict()
    assert d["protocol"] == "finetune" and d["curve"][0]["step"] == 2 and "after 2 steps" in d["summary"]


def test_not_reached_is_a_result_without_time_to_cutoff_metrics():
    measurer, _, train_step, evaluate, calls = scripted([0.5, 0.6, 0.55])
    r = finetune_to_cutoff(measurer, train_step, evaluate, cutoff=0.9, eval_every=4, max_steps=10)
    assert not r.reached and r.steps == 10 and r.evaluations == 3
    assert [p.step for p in r.curve] == [4, 8, 10]  # the last partial segment is evaluated too
    assert r.score == 0.55 and r.best_score == 0.6
    assert r.duration_s == pytest.approx(10.0)  # what ran is still reported in the result itself
    assert {m.name for m in r.metrics()} == {"finetune.reached", "finetune.score"}
    assert next(m for m in r.metrics() if m.name == "finetune.reached").samples == [0.0]
    assert r.summary().startswith("n/a")
    assert r.to_dict()["reached"] is False


def test_lower_is_better_cutoff_and_nan_score():
    measurer, _, train_step, evaluate, _ = scripted([float("nan"), 0.4, 0.2])
    r = finetune_to_cutoff(measurer, train_step, evaluate, cutoff=0.3, eval_every=1, max_steps=5,
                           higher_is_better=False)
    assert r.reached and r.steps == 3 and r.best_score == 0.2
    assert next(m for m in r.metrics() if m.name == "finetune.score").better == "lower"


def test_tokens_none_when_a_step_does_not_report():
    measurer, _, train_step, evaluate, _ = scripted([1.0], tokens_per_step=None)
    r = finetune_to_cutoff(measurer, train_step, evaluate, cutoff=0.9, eval_every=2, max_steps=4)
    assert r.tokens is None and "finetune.tokens" not in {m.name for m in r.metrics()}


def test_net_energy_with_idle_power():
    measurer, clock = fake_measurer(idle_power_w={"fake0": 2.0})
    r = finetune_to_cutoff(measurer, lambda s: clock.advance(1.0, 10.0), lambda: (clock.advance(0.5, 3.0), 1.0)[1],
                           cutoff=0.5, eval_every=3, max_steps=9)
    assert r.net_energy_j == pytest.approx(30.0 - 2.0 * 3.0)


@pytest.mark.parametrize("kwargs", [dict(eval_every=0), dict(max_steps=0), dict(cutoff=float("nan")),
                                    dict(cutoff="high"), dict(flops_per_step=-1), dict(eval_every=1.5)])
def test_bad_arguments(kwargs):
    measurer, _ = fake_measurer()
    args = dict(cutoff=0.9, eval_every=2, max_steps=4) | kwargs
    with pytest.raises(UsageError):
        finetune_to_cutoff(measurer, lambda s: 1, lambda: 1.0, **args)


def test_non_numeric_score_and_train_errors_propagate():
    measurer, _ = fake_measurer()
    with pytest.raises(UsageError, match="dev score"):
        finetune_to_cutoff(measurer, lambda s: 1, lambda: "good", cutoff=0.9, eval_every=1, max_steps=2)

    def boom(step):
        raise RuntimeError("CUDA out of memory")

    with pytest.raises(RuntimeError, match="out of memory"):
        finetune_to_cutoff(measurer, boom, lambda: 1.0, cutoff=0.9, eval_every=1, max_steps=2)


def test_importing_protocols_does_not_import_heavy_libraries():
    code = ("import sys, pytest_energy.protocols, pytest_energy.protocols.finetune, pytest_energy.reference.tasks, "
            "pytest_energy.reference.models, pytest_energy.analysis.carbon, pytest_energy.reference.flops; "
            "print([m for m in ('torch', 'transformers', 'datasets', 'pytest') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# ---- Hugging Face Trainer callback ------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_trainer_parts():
    pytest.importorskip("accelerate", reason="transformers.Trainer needs accelerate")
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from pytest_energy.reference.models import embedded_model_path
    from pytest_energy.reference.tasks import synthetic_task

    tok = AutoTokenizer.from_pretrained(embedded_model_path())
    data = synthetic_task(seed=1, n_train=64, n_dev=32)

    def encode(examples):
        enc = tok([e.text for e in examples], padding="max_length", truncation=True, max_length=16)
        return [{"input_ids": enc["input_ids"][i], "attention_mask": enc["attention_mask"][i],
                 "labels": e.label} for i, e in enumerate(examples)]

    def model():
        torch.manual_seed(0)
        cfg = BertConfig(vocab_size=tok.vocab_size, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=32, max_position_embeddings=32, num_labels=2)
        return BertForSequenceClassification(cfg)

    return model, encode(data.train), encode(data.dev["dev"])


def run_trainer(tmp_path, parts, cutoff, eval_sleep_s=0.0):
    from transformers import Trainer, TrainingArguments

    make_model, train, dev = parts

    def accuracy(pred):
        time.sleep(eval_sleep_s)  # makes evaluation visibly long, to check it is not counted as training
        return {"accuracy": float((pred.predictions.argmax(-1) == pred.label_ids).mean())}

    args = TrainingArguments(output_dir=str(tmp_path), max_steps=6, eval_strategy="steps", eval_steps=2,
                             per_device_train_batch_size=8, per_device_eval_batch_size=32, report_to=[],
                             save_strategy="no", logging_strategy="no", use_cpu=True, disable_tqdm=True,
                             include_num_input_tokens_seen="all")
    callback = make_trainer_callback(Measurer(constant_power_meter(10.0), sync=lambda: None), cutoff)
    trainer = Trainer(model=make_model(), args=args, train_dataset=train, eval_dataset=dev,
                      compute_metrics=accuracy, callbacks=[callback])
    trainer.train()
    return trainer, callback


@pytest.mark.slow  # transformers.Trainer and accelerate
def test_trainer_callback_stops_at_cutoff(tmp_path, tiny_trainer_parts):
    trainer, callback = run_trainer(tmp_path, tiny_trainer_parts, cutoff=0.0)
    r = callback.result
    assert isinstance(r, FinetuneResult)
    assert r.reached and r.steps == 2 and r.evaluations == 1 and trainer.state.global_step == 2
    assert r.tokens == 2 * 8 * 16  # include_num_input_tokens_seen="all": padding counted
    assert r.duration_s > 0 and r.eval_duration_s > 0
    assert r.duration_s + r.eval_duration_s <= r.wall_duration_s + 1e-9


@pytest.mark.slow
def test_trainer_callback_not_reached_and_eval_excluded(tmp_path, tiny_trainer_parts):
    from transformers import TrainerCallback

    from pytest_energy.protocols.finetune import EnergyTrainerCallback

    trainer, callback = run_trainer(tmp_path, tiny_trainer_parts, cutoff=1.01, eval_sleep_s=0.2)
    assert isinstance(callback, EnergyTrainerCallback) and isinstance(callback, TrainerCallback)
    r = callback.result
    assert not r.reached and trainer.state.global_step == 6 and r.steps == 6
    assert [p.step for p in r.curve] == [2, 4, 6]
    assert r.eval_duration_s >= 3 * 0.2  # the sleeps landed in evaluation windows...
    assert r.duration_s < r.wall_duration_s - 0.6  # ...and not in training
    assert r.energy_j == pytest.approx(10.0 * r.duration_s, rel=1e-6)
    assert {m.name for m in r.metrics()} == {"finetune.reached", "finetune.score"}


@pytest.mark.slow
def test_trainer_callback_result_before_training_is_an_error(tiny_trainer_parts):
    callback = make_trainer_callback(Measurer(constant_power_meter(10.0), sync=lambda: None), 0.9)
    with pytest.raises(UsageError, match="no result yet"):
        _ = callback.result


# ---- real data ----------------------------------------------------------------------------------------

# $PYTEST_ENERGY_DATA_DIR/SST-2, else the shared folder beside the checkout (../shared/data/glue).
_GLUE_DIR = Path(os.environ.get("PYTEST_ENERGY_DATA_DIR")
                 or Path(__file__).resolve().parents[3] / "shared" / "data" / "glue")
SST2_DIR = _GLUE_DIR / "SST-2"


@pytest.mark.slow  # fine-tunes MiniLM on real SST-2
@pytest.mark.real_data
def test_real_data_sst2_minilm_short():
    """REAL DATA: SST-2 with the packaged MiniLM on CPU, a short cut-off run (0.70) on a 256-example dev sample."""
    if not (SST2_DIR / "dev.tsv").is_file():
        # CI sets PYTEST_ENERGY_REQUIRE_REAL_DATA so this path can never be skipped there by accident.
        if os.environ.get("PYTEST_ENERGY_REQUIRE_REAL_DATA"):
            pytest.fail(f"real SST-2 not found at {SST2_DIR} (PYTEST_ENERGY_REQUIRE_REAL_DATA is set)")
        pytest.skip(f"real SST-2 not found at {SST2_DIR}")
    from pytest_energy.meters.estimate import EstimateMeter
    from pytest_energy.reference.models import load_model, make_evaluate, make_train_step
    from pytest_energy.reference.tasks import load_task

    data = load_task("sst2", SST2_DIR, max_dev=256)
    assert len(data.train) == 67349 and len(data.dev["dev"]) == 256
    model, tok = load_model("embedded", data, seed=0)
    # lr 1e-4: MiniLM leaves the majority-class plateau (0.52) after ~15 steps instead of ~25 at 5e-5.
    train_step = make_train_step(model, tok, data.train, batch_size=32, max_length=64, lr=1e-4, seed=0)
    evaluate = make_evaluate(model, tok, data, batch_size=128, max_length=64)
    r = finetune_to_cutoff(Measurer(EstimateMeter()), train_step, evaluate, cutoff=0.70, eval_every=5,
                           max_steps=40)
    print(r.summary())
    assert r.reached, r.summary()
    assert r.curve[-1].score >= 0.70 and all(p.score < 0.70 for p in r.curve[:-1])
    assert r.steps == r.curve[-1].step and r.steps % 5 == 0
    assert r.method == "estimate" and r.energy_j > 0 and 0 < r.eval_share < 1
    assert r.tokens is not None and r.tokens >= r.steps * 32 * 2
    assert math.isclose(r.wall_duration_s, r.duration_s + r.eval_duration_s, rel_tol=0.05)
