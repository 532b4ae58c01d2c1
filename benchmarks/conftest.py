"""The reference suite's task and model choice (benchmarks/test_finetune.py, benchmarks/test_inference.py).

    pytest benchmarks/ --energy                                   # embedded default: MiniLM + synthetic, offline
    pytest benchmarks/ --energy --energy-task sst2 --energy-data-dir /data/glue
    pytest benchmarks/ --energy --energy-task conll2003 --energy-model bert-base-cased

Options (each also read from an environment variable):
  --energy-task       PYTEST_ENERGY_TASK      synthetic (default) | sst2 | mnli | conll2003
  --energy-model      PYTEST_ENERGY_MODEL     embedded (default, packaged all-MiniLM-L6-v2) | a HF name | a folder
  --energy-data-dir   PYTEST_ENERGY_DATA_DIR  folder holding SST-2/, MNLI/, CoNLL-2003/ (else the datasets cache)
Protocol overrides (environment only): PYTEST_ENERGY_CUTOFF, PYTEST_ENERGY_EVAL_EVERY, PYTEST_ENERGY_MAX_STEPS,
PYTEST_ENERGY_MAX_DEV, PYTEST_ENERGY_LR, PYTEST_ENERGY_INFERENCE_N.

Cut-offs are HULK's (SST-2 0.90, MNLI 0.85, CoNLL-2003 F1 0.91, synthetic 0.90); a real task gets HULK's
limit of five epochs before it is "N/A". Real tasks on a CPU take hours: run them on a GPU.
"""

from __future__ import annotations

import os
import sys

import pytest

# benchmarks/ is not a package; make the sibling helper module importable under any --import-mode.
sys.path.insert(0, os.path.dirname(__file__))

from _reference import Bench, choose, fresh_model, load_or_fail, max_steps  # noqa: E402


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("energy-reference", "pytest-energy reference benchmarks (benchmarks/)")
    group.addoption("--energy-task", default=None, help="task: synthetic (default), sst2, mnli, conll2003 "
                                                         "[env PYTEST_ENERGY_TASK]")
    group.addoption("--energy-model", default=None, help="model: embedded (default), a Hugging Face name or a "
                                                          "local folder [env PYTEST_ENERGY_MODEL]")
    group.addoption("--energy-data-dir", default=None, help="folder holding SST-2/, MNLI/, CoNLL-2003/ "
                                                             "[env PYTEST_ENERGY_DATA_DIR]")


def pytest_report_header(config: pytest.Config) -> str:
    b = choose(config)
    return f"pytest-energy reference benchmarks: task={b.task} model={b.model} data_dir={b.data_dir or '-'}"


@pytest.fixture(scope="session")
def bench(pytestconfig: pytest.Config) -> Bench:
    return choose(pytestconfig)


@pytest.fixture(scope="session")
def full_task_data(bench: Bench):
    """The task with its whole dev set (inference draws up to 1000 examples from it)."""
    from pytest_energy.tasks import load_task

    return load_or_fail(load_task, bench.task, bench.data_dir, seed=bench.seed)


@pytest.fixture(scope="session")
def task_data(bench: Bench, full_task_data):
    """The task with the dev sample evaluated during fine-tuning."""
    from pytest_energy.tasks import subsample

    return subsample(full_task_data, max_dev=bench.max_dev, seed=bench.seed)


@pytest.fixture(scope="session")
def finetuned(bench: Bench, task_data):
    """A model fine-tuned to the cut-off as unmetered setup, for the inference benchmarks (HULK measures
    inference on the models fine-tuned in the fine-tuning phase)."""
    from pytest_energy.models import make_evaluate, make_train_step

    model, tokenizer = fresh_model(bench, task_data)
    train_step = make_train_step(model, tokenizer, task_data.train, batch_size=bench.batch_size,
                                 max_length=bench.max_length, lr=bench.lr, seed=bench.seed)
    evaluate = make_evaluate(model, tokenizer, task_data, max_length=bench.max_length)
    score, step = None, 0
    limit = max_steps(bench, task_data)
    while step < limit:
        for _ in range(min(bench.eval_every, limit - step)):
            train_step(step)
            step += 1
        score = evaluate()
        if score >= bench.cutoff:
            break
    model.eval()
    return model, tokenizer, {"finetuned_steps": step, "finetuned_dev_score": score}
