"""The reference suite's fixtures as a pytest plugin: `pytest_plugins = ["pytest_energy.reference.plugin"]`.

    pytest benchmarks/ --energy                                   # embedded default: MiniLM + generated task, offline
    pytest benchmarks/ --energy --energy-task sst2 --energy-data-dir /data/glue
    pytest benchmarks/ --energy --energy-task conll2003 --energy-model bert-base-cased

Options (command line > ini key > environment variable > default):
  --energy-task       energy_task      PYTEST_ENERGY_TASK      synthetic (default) | sst2 | mnli | conll2003
  --energy-model      energy_model     PYTEST_ENERGY_MODEL     embedded (default, packaged all-MiniLM-L6-v2) | a HF
                                                               name | a folder
  --energy-data-dir   energy_data_dir  PYTEST_ENERGY_DATA_DIR  folder holding SST-2/, MNLI/, CoNLL-2003/ (other
                                                               spellings and CoNLL-2003's original eng.train /
                                                               eng.testa too; see tasks.LAYOUTS); else the datasets
                                                               cache
Protocol overrides (environment only): PYTEST_ENERGY_CUTOFF, PYTEST_ENERGY_EVAL_EVERY, PYTEST_ENERGY_MAX_STEPS,
PYTEST_ENERGY_MAX_DEV, PYTEST_ENERGY_LR, PYTEST_ENERGY_INFERENCE_N, PYTEST_ENERGY_TORCH_THREADS (the `torch_threads`
fixture: intra-op threads of the metered benchmarks, default 1; 0 leaves torch's default).

Cut-offs are HULK's (SST-2 0.90, MNLI 0.85, CoNLL-2003 F1 0.91, generated task 0.90); a real task gets HULK's
limit of five epochs before it is "n/a". Real tasks on a CPU take hours: run them on a GPU. A data folder with
only the dev files serves the inference benchmarks (with a model already fine-tuned on the task, e.g.
roberta-large-mnli, its own head is used); fine-tuning then fails, naming the missing training file.

test_finetune.py and test_inference.py declare their HULK task (`extra_info["hulk_task"]`, the task name): that
is how a stored reference (--energy-save-reference, pytest_energy.analysis.hulk_store) finds their costs.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

import pytest

from ..config import Option, add_options, raw_value
from ..errors import DataError, UsageError

# Per task: how to fine-tune and how often to evaluate. max_steps None = five epochs (HULK's n/a limit).
PROTOCOL_DEFAULTS: dict[str, dict[str, Any]] = {
    # Every 5 steps: MiniLM crosses 0.90 after 7-9 evaluations (35-45 steps), so time to cut-off has resolution.
    "synthetic": dict(eval_every=5, max_steps=200, batch_size=32, max_length=32, lr=1e-4, max_dev=200),
    "sst2": dict(eval_every=50, max_steps=None, batch_size=32, max_length=64, lr=5e-5, max_dev=None),
    "mnli": dict(eval_every=500, max_steps=None, batch_size=32, max_length=128, lr=5e-5, max_dev=None),
    "conll2003": dict(eval_every=100, max_steps=None, batch_size=32, max_length=128, lr=5e-5, max_dev=None),
}

REFERENCE_OPTIONS = (
    Option("task", "NAME", "reference task: synthetic, sst2, mnli or conll2003 [env PYTEST_ENERGY_TASK]", None),
    Option("model", "NAME", "reference model: embedded (the packaged all-MiniLM-L6-v2), a Hugging Face name or a "
           "local folder [env PYTEST_ENERGY_MODEL]", None),
    Option("data-dir", "PATH", "folder holding SST-2/, MNLI/, CoNLL-2003/ (else the datasets cache) "
           "[env PYTEST_ENERGY_DATA_DIR]", None),
)
_ENV = {"task": "PYTEST_ENERGY_TASK", "model": "PYTEST_ENERGY_MODEL", "data-dir": "PYTEST_ENERGY_DATA_DIR"}
_DEFAULTS = {"task": "synthetic", "model": "embedded", "data-dir": None}


@dataclass(frozen=True)
class Bench:
    """What the reference benchmarks run: one task, one model, one protocol configuration."""

    task: str
    model: str
    data_dir: str | None
    cutoff: float
    eval_every: int
    max_steps: int | None
    batch_size: int
    max_length: int
    lr: float
    max_dev: int | None
    inference_n: int
    seed: int = 0

    def about(self) -> dict[str, Any]:
        return {f"bench.{k}": v for k, v in asdict(self).items()}


def _env_number(name: str, cast: type, default: Any) -> Any:
    raw = os.environ.get(name)
    if raw in (None, ""):
        return default
    try:
        return cast(raw)
    except ValueError:
        raise pytest.UsageError(f"${name}: expected a {cast.__name__}, got {raw!r}") from None


def _choice(config: pytest.Config, option: Option) -> str | None:
    try:
        value = raw_value(config, option)
    except UsageError as exc:
        raise pytest.UsageError(str(exc)) from None
    return value or os.environ.get(_ENV[option.name]) or _DEFAULTS[option.name]


def choose(config: pytest.Config) -> Bench:
    """The reference suite's configuration, from options, ini keys and the environment."""
    from .tasks import task_spec

    task, model, data_dir = (_choice(config, option) for option in REFERENCE_OPTIONS)
    try:
        spec = task_spec(task)
    except UsageError as exc:
        raise pytest.UsageError(f"--energy-task: {exc}") from None
    d = PROTOCOL_DEFAULTS[spec.name]
    return Bench(
        task=spec.name,
        model=model,
        data_dir=data_dir,
        cutoff=_env_number("PYTEST_ENERGY_CUTOFF", float, spec.cutoff),
        eval_every=_env_number("PYTEST_ENERGY_EVAL_EVERY", int, d["eval_every"]),
        max_steps=_env_number("PYTEST_ENERGY_MAX_STEPS", int, d["max_steps"]),
        batch_size=d["batch_size"],
        max_length=d["max_length"],
        lr=_env_number("PYTEST_ENERGY_LR", float, d["lr"]),
        max_dev=_env_number("PYTEST_ENERGY_MAX_DEV", int, d["max_dev"]),
        inference_n=_env_number("PYTEST_ENERGY_INFERENCE_N", int, 1000),  # HULK: 1000 single examples
    )


def load_or_fail(fn, *args, **kwargs):
    """Run a task/model loader; a DataError fails the test with its own message (what to download, where).

    Failed outside the `except` block: inside it, pytest would print the DataError as the context of the
    failure and then the failure, the same message twice.
    """
    try:
        return fn(*args, **kwargs)
    except DataError as exc:
        message = str(exc)
    pytest.fail(message, pytrace=False)


def require_training_data(data) -> None:
    """Fine-tuning needs training examples; a folder with only the dev files serves inference only."""
    if not data.train:
        missing = data.extra.get("train_missing", "the training split")
        pytest.fail(f"fine-tuning {data.spec.title} needs its training data, and {missing} is missing "
                    f"(loaded: {data.source}). The dev files alone serve the inference benchmarks "
                    "(benchmarks/test_inference.py) with a model already fine-tuned on the task.", pytrace=False)


def fresh_model(bench: Bench, data) -> tuple[Any, Any]:
    from .models import load_model

    return load_or_fail(load_model, bench.model, data, seed=bench.seed)


def max_steps(bench: Bench, data) -> int:
    """The configured step limit, else HULK's: five epochs."""
    return bench.max_steps or 5 * max(1, len(data.train) // bench.batch_size)


def about_run(bench: Bench, data) -> dict[str, Any]:
    """What a reference benchmark ran on, for its extra_info."""
    from .models import EMBEDDED, EMBEDDED_NAME

    return {"task": f"{data.spec.title} ({data.spec.metric}, cut-off {bench.cutoff:g})",
            "task_source": data.source, "train_examples": len(data.train),
            "dev_examples": {k: len(v) for k, v in data.dev.items()},
            "model": EMBEDDED_NAME if bench.model == EMBEDDED else bench.model, **bench.about()}


# --- hooks and fixtures ----------------------------------------------------------------------------------

def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser, "energy-reference", "pytest-energy reference benchmarks", REFERENCE_OPTIONS, ())


def pytest_report_header(config: pytest.Config) -> str:
    b = choose(config)
    return f"pytest-energy reference benchmarks: task={b.task} model={b.model} data_dir={b.data_dir or '-'}"


@pytest.fixture(scope="session")
def bench(pytestconfig: pytest.Config) -> Bench:
    return choose(pytestconfig)


@pytest.fixture
def torch_threads() -> Iterator[int]:
    """torch's intra-op threads while a metered reference benchmark runs: $PYTEST_ENERGY_TORCH_THREADS, default 1.

    On a shared CPU runner, all-core torch is ungateable: when one OpenMP thread is preempted the others spin
    at the barrier, and time and CPU time (the estimate's energy) drift 25-45 % from run to run, against
    3-7 % single-threaded (docs/statistics.md). 0 keeps torch's default, e.g. on a dedicated runner. Restored
    after the test; GPU kernels are not affected.
    """
    threads = _env_number("PYTEST_ENERGY_TORCH_THREADS", int, 1)
    if threads < 0:
        raise pytest.UsageError(f"$PYTEST_ENERGY_TORCH_THREADS: expected 0 or more, got {threads}")
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(before)


@pytest.fixture(scope="session")
def full_task_data(bench: Bench):
    """The task with its whole dev set (inference draws up to 1000 examples from it)."""
    from .tasks import load_task

    return load_or_fail(load_task, bench.task, bench.data_dir, seed=bench.seed)


@pytest.fixture(scope="session")
def task_data(bench: Bench, full_task_data):
    """The task with the dev sample evaluated during fine-tuning."""
    from .tasks import subsample

    return subsample(full_task_data, max_dev=bench.max_dev, seed=bench.seed)


@pytest.fixture(scope="session")
def finetuned_models() -> dict:
    """Models that reached the cut-off in this session's fine-tuning benchmark, by Bench: (model, tokenizer,
    about). test_finetune.py leaves its model here, so the inference benchmarks measure the model fine-tuned in
    the fine-tuning phase, as HULK does, instead of training a second one (half the suite's training time)."""
    return {}


@pytest.fixture(scope="session")
def finetuned(bench: Bench, task_data, finetuned_models):
    """A model fine-tuned to the cut-off as unmetered setup, for the inference benchmarks (HULK measures
    inference on the models fine-tuned in the fine-tuning phase).

    The fine-tuning benchmark's own model when it reached the cut-off in this session (`finetuned_models`);
    otherwise (run alone, under pytest-xdist on another worker, not reached) one is fine-tuned here, unmetered.
    Without training data (a folder with the dev files only) nothing is fine-tuned: a model that already has a
    head for the task's labels keeps it; any other gets an untrained head, and its time and energy per example
    are still HULK's inference costs, but its accuracy is chance (extra_info["head"] says which).
    """
    from ..protocols.finetune import train_to_cutoff
    from .models import LABEL_IDS_ATTR, load_model, make_evaluate, make_train_step

    if bench in finetuned_models:
        model, tokenizer, about = finetuned_models[bench]
        model.eval()
        return model, tokenizer, about

    if not task_data.train:
        model, tokenizer = load_or_fail(load_model, bench.model, task_data, seed=bench.seed, keep_head=True)
        head = ("the model's own head for these labels (no training data: not fine-tuned here)"
                if getattr(model, LABEL_IDS_ATTR, None) is not None else
                "UNTRAINED: no training data and the model has no head for these labels; time and energy per "
                "example are valid, accuracy is chance")
        model.eval()
        return model, tokenizer, {"finetuned_steps": 0, "finetuned_dev_score": None, "head": head}
    model, tokenizer = fresh_model(bench, task_data)
    train_step = make_train_step(model, tokenizer, task_data.train, batch_size=bench.batch_size,
                                 max_length=bench.max_length, lr=bench.lr, seed=bench.seed)
    evaluate = make_evaluate(model, tokenizer, task_data, max_length=bench.max_length)
    score, steps = train_to_cutoff(train_step, evaluate, cutoff=bench.cutoff, eval_every=bench.eval_every,
                                   max_steps=max_steps(bench, task_data))
    model.eval()
    return model, tokenizer, {"finetuned_steps": steps, "finetuned_dev_score": score}
