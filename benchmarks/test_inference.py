"""HULK's inference benchmark: cost per example, averaged over (up to) 1000 single examples.

    pytest benchmarks/test_inference.py --energy         # embedded default: fine-tuned MiniLM, synthetic task

Batch size 1 is HULK's (and AI Energy Score's) setting; batch 32 shows what batching buys per example.
The model is the one test_finetune.py fine-tuned to the cut-off in this session (HULK measures the models
fine-tuned in the fine-tuning phase), else one fine-tuned to the cut-off first, unmetered.
"""

from __future__ import annotations

import pytest

from pytest_energy.reference.plugin import about_run


# Three passes over the examples per run: each pass is a sample, and with three the history gate finds a 1.5x
# slowdown of this test where one pass finds it only about half the time (docs/statistics.md).
@pytest.mark.energy(rounds=3)
@pytest.mark.parametrize("batch_size", [1, 32])
def test_inference(energy, bench, full_task_data, finetuned, torch_threads, batch_size):
    from pytest_energy.reference.models import make_predict
    from pytest_energy.reference.tasks import entity_f1

    model, tokenizer, trained = finetuned
    split, examples = next(iter(full_task_data.dev.items()))
    labels = [e.tags if full_task_data.spec.kind == "token" else e.label for e in examples]
    energy.extra_info.update(about_run(bench, full_task_data))
    energy.extra_info["hulk_task"] = bench.task  # its column in HULK's tables (stored reference)
    energy.extra_info.update(trained)
    energy.extra_info["inference_split"] = split
    energy.extra_info["torch_threads"] = torch_threads
    score = {}
    if full_task_data.spec.kind == "token":
        # HULK's CoNLL-2003 figure is entity-level F1; "accuracy" would be whole sentences tagged right.
        score = dict(score=lambda predicted, gold: entity_f1(gold, predicted), score_name="entity F1")
        energy.extra_info["accuracy_means"] = "inference.accuracy: whole-sentence tag match; entity F1 is the score"

    result = energy.inference(make_predict(model, tokenizer, max_length=bench.max_length), examples,
                              batch_size=batch_size, warmup=10, labels=labels, n=bench.inference_n, **score)

    energy.extra_info["inference"] = result.summary()
    energy.extra_info["wh_per_1000_examples"] = round(result.j_per_example * 1000 / 3600, 6)
    print(f"\n[{bench.task} / {bench.model}] {result.summary()}")
    assert result.examples == min(bench.inference_n, len(examples))
