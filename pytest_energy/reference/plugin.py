"""The reference suite's fixtures as a pytest plugin: `pytest_plugins = ["pytest_energy.reference.plugin"]`.

    pytest benchmarks/ --energy                                   # embedded default: MiniLM + generated task, offline
    pytest benchmarks/ --energy --energy-task sst2 --energy-data-dir /data/glue
    pytest benchmarks/ --energy --energy-task conll2003 --energy-model bert-base-cased

Every setting is an `--energy-X` option with the ini key `energy_X` and the environment variable
`PYTEST_ENERGY_X` (dashes become underscores), declared once in `REFERENCE_OPTIONS` with the main config's
`Option` machinery. Precedence: command line > environment variable > ini key > default. The main config
(pytest_energy/config/) has no environment layer; here the variable sits just below the command line, so a
CI job can override a project's ini file without editing it, and an empty variable counts as unset. A bad
value from any source is a usage error naming where it came from (exit 4), raised when the session starts.

  task, model, data-dir                   what runs: the task, the model, the folder holding the task's data
  cutoff, eval-every, max-steps, lr,      the fine-tuning protocol; `auto` is the task's own (PROTOCOL_DEFAULTS,
  max-dev                                 HULK's cut-offs: SST-2 0.90, MNLI 0.85, CoNLL-2003 F1 0.91, generated 0.90)
  inference-n                             examples per inference pass (HULK: 1000)
  torch-threads                           torch's intra-op threads for the whole session (the `torch_threads`
                                          fixture; 0 keeps torch's default)
  sweep-n, report-dir                     dev examples per sweep point; the sweep report's folder

`pytest --help` lists them with their defaults. A real task gets HULK's limit of five epochs (max-steps auto,
or 0) before it is "n/a". Real tasks on a CPU take hours: run them on a GPU. A data folder with only the dev
files serves the inference benchmarks (with a model already fine-tuned on the task, e.g. roberta-large-mnli,
its own head is used); fine-tuning then fails, naming the missing training file.

test_finetune.py and test_inference.py declare their HULK task (`extra_info["hulk_task"]`, the task name): that
is how a stored reference (--energy-save-reference, pytest_energy.analysis.hulk_store) finds their costs.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pytest

from ..config import Option, _integer, _number, add_options, parse_option, parse_text
from ..errors import DataError, UsageError

# Per task: how to fine-tune and how often to evaluate. max_steps None = five epochs (HULK's n/a limit).
PROTOCOL_DEFAULTS: dict[str, dict[str, Any]] = {
    # Every 5 steps: MiniLM crosses 0.90 after 7-9 evaluations (35-45 steps), so time to cut-off has resolution.
    "synthetic": dict(eval_every=5, max_steps=200, batch_size=32, max_length=32, lr=1e-4, max_dev=200),
    "sst2": dict(eval_every=50, max_steps=None, batch_size=32, max_length=64, lr=5e-5, max_dev=None),
    "mnli": dict(eval_every=500, max_steps=None, batch_size=32, max_length=128, lr=5e-5, max_dev=None),
    "conll2003": dict(eval_every=100, max_steps=None, batch_size=32, max_length=128, lr=5e-5, max_dev=None),
}
ENV_PREFIX = "PYTEST_ENERGY_"
AUTO = "auto"  # a protocol setting's default: the task's own value


def _task(text: str) -> str:
    from .tasks import task_spec

    return task_spec(text).name  # canonical: "SST-2" and "sst_2" are "sst2"


def _auto(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """'auto' -> None (the task's own value, filled in by `reference_settings`), else `parse`."""
    def parse_or_auto(text: str) -> Any:
        if text == AUTO:
            return None
        try:
            return parse(text)
        except UsageError as exc:
            raise UsageError(f"{exc} (or '{AUTO}': the task's own)") from None
    return parse_or_auto


def _env_name(name: str) -> str:
    return ENV_PREFIX + name.replace("-", "_").upper()


def _option(name: str, metavar: str, help_text: str, default: str | None, parse: Callable[[str], Any] = str) -> Option:
    """An Option whose help also names its environment variable."""
    return Option(name, metavar, f"{help_text} [env {_env_name(name)}]", default, parse)


REFERENCE_OPTIONS: tuple[Option, ...] = (
    _option("task", "NAME", "reference task: synthetic (generated, offline), sst2, mnli or conll2003", "synthetic",
            _task),
    _option("model", "NAME", "reference model: embedded (the packaged all-MiniLM-L6-v2), a Hugging Face name or a "
            "local folder", "embedded"),
    _option("data-dir", "PATH", "folder holding SST-2/, MNLI/, CoNLL-2003/ (else the datasets cache)", None),
    _option("cutoff", "SCORE", "dev score fine-tuning must reach, in [0, 1] (auto: HULK's for the task)", AUTO,
            _auto(_number(0.0, 1.0))),
    _option("eval-every", "STEPS", "fine-tuning steps between dev evaluations (auto: the task's)", AUTO,
            _auto(_integer(1))),
    _option("max-steps", "N", "fine-tuning step limit before a run is 'n/a' (auto: the task's; 0: HULK's five "
            "epochs)", AUTO, _auto(_integer(0))),
    _option("lr", "RATE", "fine-tuning learning rate (auto: the task's)", AUTO,
            _auto(_number(0.0, 1.0, above_minimum=True))),
    _option("max-dev", "N", "dev examples per split evaluated during fine-tuning, a seeded sample (auto: the "
            "task's; the generated task 200, real tasks all)", AUTO, _auto(_integer(1))),
    _option("inference-n", "N", "examples per inference pass (HULK: 1000 single examples)", "1000", _integer(1)),
    _option("torch-threads", "N", "torch intra-op threads while the reference benchmarks run (0: torch's "
            "default); one keeps a shared CPU runner gateable (docs/statistics.md)", "1", _integer(0)),
    _option("sweep-n", "N", "dev examples per point of the energy-accuracy sweeps (benchmarks/test_sweeps.py)",
            "200", _integer(1)),
    _option("report-dir", "PATH", "folder of the sweep report (one sub-folder per task), relative to the rootdir",
            "energy-report"),
)


# Variables earlier versions read, and what replaced them: an error if set, rather than silently ignored.
RETIRED_ENV = {
    "PYTEST_ENERGY_SWEEP_THREADS": "--energy-torch-threads (PYTEST_ENERGY_TORCH_THREADS), one value for the whole "
                                   "suite, sweeps included",
}


def env_var(option: Option) -> str:
    """The option's environment variable: --energy-eval-every <-> PYTEST_ENERGY_EVAL_EVERY."""
    return _env_name(option.name)


def option_value(config: Any, option: Option) -> Any:
    """Command line > environment variable > ini key > default, parsed; UsageError naming the source."""
    var = env_var(option)
    from_env = os.environ.get(var, "").strip()
    if config.getoption(option.dest) is None and from_env:
        return parse_text(option, from_env, f"${var}")
    return parse_option(config, option)  # an empty option or ini key is an error there


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


@dataclass(frozen=True)
class ReferenceSettings:
    """Every setting of the reference suite, resolved once per session."""

    bench: Bench
    torch_threads: int  # 0: torch's default
    sweep_n: int
    report_dir: Path  # under the rootdir, unless given as an absolute path


_SETTINGS = pytest.StashKey[ReferenceSettings]()


def resolve(config: Any, rootdir: str | os.PathLike[str] = ".") -> ReferenceSettings:
    """The settings from `config` (anything with pytest's getoption/getini) and the environment; a bad value
    raises pytest_energy's UsageError (`reference_settings` turns it into pytest's)."""
    from .tasks import TASKS

    for var, replacement in RETIRED_ENV.items():
        if os.environ.get(var, "").strip():
            raise UsageError(f"${var} is no longer read: use {replacement}")
    v = {option.key: option_value(config, option) for option in REFERENCE_OPTIONS}
    spec = TASKS[v["task"]]
    d = PROTOCOL_DEFAULTS[spec.name]

    def own(key: str, default: Any) -> Any:
        return default if v[key] is None else v[key]

    bench = Bench(task=spec.name, model=v["model"], data_dir=v["data_dir"], cutoff=own("cutoff", spec.cutoff),
                  eval_every=own("eval_every", d["eval_every"]), max_steps=own("max_steps", d["max_steps"]),
                  batch_size=d["batch_size"], max_length=d["max_length"], lr=own("lr", d["lr"]),
                  max_dev=own("max_dev", d["max_dev"]), inference_n=v["inference_n"])
    return ReferenceSettings(bench=bench, torch_threads=v["torch_threads"], sweep_n=v["sweep_n"],
                             report_dir=Path(rootdir, v["report_dir"]))


def reference_settings(config: pytest.Config) -> ReferenceSettings:
    """The session's settings, resolved on first use (`pytest --help` must work whatever the environment)."""
    if _SETTINGS not in config.stash:
        try:
            config.stash[_SETTINGS] = resolve(config, config.rootpath)
        except UsageError as exc:
            raise pytest.UsageError(f"pytest-energy: {exc}") from None
    return config.stash[_SETTINGS]


def choose(config: pytest.Config) -> Bench:
    """The reference suite's configuration: task, model and protocol."""
    return reference_settings(config).bench


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


def pytest_sessionstart(session: pytest.Session) -> None:
    reference_settings(session.config)  # a bad value stops the run here (exit 4), not in the first fixture


def pytest_report_header(config: pytest.Config) -> str:
    b = choose(config)
    return f"pytest-energy reference benchmarks: task={b.task} model={b.model} data_dir={b.data_dir or '-'}"


@pytest.fixture(scope="session")
def bench(pytestconfig: pytest.Config) -> Bench:
    return choose(pytestconfig)


@pytest.fixture(scope="session")
def torch_threads(pytestconfig: pytest.Config) -> Iterator[int]:
    """torch's intra-op threads (--energy-torch-threads, default 1) from first use to the end of the session.

    On a shared CPU runner, all-core torch is ungateable: when one OpenMP thread is preempted the others spin
    at the barrier, and time and CPU time (the estimate's energy) drift 25-45 % from run to run, against
    3-7 % single-threaded (docs/statistics.md). 0 keeps torch's default, e.g. on a dedicated runner. Session
    scope, so that a session fixture asking for it (the sweeps' subject) runs its unmetered fine-tuning pinned
    too; restored when the session ends. GPU kernels are not affected. Yields the threads torch then uses.
    """
    threads = reference_settings(pytestconfig).torch_threads
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
    otherwise (run alone, under pytest-xdist on another worker, not reached) one is fine-tuned here, unmetered;
    in an A/B's child, once per side: its later processes load it from the side's folder (`finetuned_in`).
    Without training data (a folder with the dev files only) nothing is fine-tuned: a model that already has a
    head for the task's labels keeps it; any other gets an untrained head, and its time and energy per example
    are still HULK's inference costs, but its accuracy is chance (extra_info["head"] says which).
    """
    from ..protocols.finetune import train_to_cutoff
    from .models import LABEL_IDS_ATTR, load_model, load_weights, make_evaluate, make_train_step, save_weights

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
    # In a same-job A/B every pair starts fresh processes; the model fine-tuned by the first process of a side is
    # reused by its later ones (the side's own code trained it), so a pair pays for the inference it measures.
    cached = _side_cached_model(bench)
    if cached is not None and (about := load_weights(model, cached)) is not None:
        model.eval()
        return model, tokenizer, {**about, "finetuned_in": "an earlier process of this A/B side (its side cache)"}
    train_step = make_train_step(model, tokenizer, task_data.train, batch_size=bench.batch_size,
                                 max_length=bench.max_length, lr=bench.lr, seed=bench.seed)
    evaluate = make_evaluate(model, tokenizer, task_data, max_length=bench.max_length)
    score, steps = train_to_cutoff(train_step, evaluate, cutoff=bench.cutoff, eval_every=bench.eval_every,
                                   max_steps=max_steps(bench, task_data))
    model.eval()
    about = {"finetuned_steps": steps, "finetuned_dev_score": score}
    if cached is not None:
        save_weights(model, cached, about)
    return model, tokenizer, about


def _side_cached_model(bench: Bench) -> Path | None:
    """Where this A/B side keeps the model fine-tuned for `bench`; None outside an A/B child."""
    from ..recheck.children import side_cache

    folder = side_cache()
    if folder is None:
        return None
    key = hashlib.sha256(json.dumps(asdict(bench), sort_keys=True, default=str).encode()).hexdigest()[:16]
    return folder / f"finetuned-{key}"
