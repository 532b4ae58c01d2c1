"""Helpers shared by the reference benchmarks and their conftest (not a conftest itself: a module named
`conftest` would clash with tests/conftest.py when both folders are collected in one session)."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any

import pytest

# Per task: how to fine-tune and how often to evaluate. max_steps None = five epochs (HULK's N/A limit).
# Synthetic: one evaluation of 200 dev examples costs about two training steps (forward only, but 6x the
# examples), so evaluating every 10 steps keeps evaluation near 15 % of the wall time (goal < 25 %) while
# resolving the 10-20 steps MiniLM needs at lr 1e-4.
PROTOCOL_DEFAULTS: dict[str, dict[str, Any]] = {
    "synthetic": dict(eval_every=10, max_steps=200, batch_size=32, max_length=32, lr=1e-4, max_dev=200),
    "sst2": dict(eval_every=50, max_steps=None, batch_size=32, max_length=64, lr=5e-5, max_dev=None),
    "mnli": dict(eval_every=500, max_steps=None, batch_size=32, max_length=128, lr=5e-5, max_dev=None),
    "conll2003": dict(eval_every=100, max_steps=None, batch_size=32, max_length=128, lr=5e-5, max_dev=None),
}


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


def choose(config: pytest.Config) -> Bench:
    from pytest_energy.errors import UsageError
    from pytest_energy.tasks import task_spec

    task = config.getoption("energy_task") or os.environ.get("PYTEST_ENERGY_TASK") or "synthetic"
    try:
        spec = task_spec(task)
    except UsageError as exc:
        raise pytest.UsageError(f"--energy-task: {exc}") from None
    d = PROTOCOL_DEFAULTS[spec.name]
    return Bench(
        task=spec.name,
        model=config.getoption("energy_model") or os.environ.get("PYTEST_ENERGY_MODEL") or "embedded",
        data_dir=config.getoption("energy_data_dir") or os.environ.get("PYTEST_ENERGY_DATA_DIR") or None,
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
    """Run a task/model loader; a DataError fails the test with its own message (what to download, where)."""
    from pytest_energy.errors import DataError

    try:
        return fn(*args, **kwargs)
    except DataError as exc:
        pytest.fail(str(exc), pytrace=False)


def fresh_model(bench: Bench, data) -> tuple[Any, Any]:
    from pytest_energy.models import load_model

    return load_or_fail(load_model, bench.model, data, seed=bench.seed)


def max_steps(bench: Bench, data) -> int:
    """The configured step limit, else HULK's: five epochs."""
    return bench.max_steps or 5 * max(1, len(data.train) // bench.batch_size)


def describe(bench: Bench, data) -> dict[str, Any]:
    from pytest_energy.models import EMBEDDED, EMBEDDED_NAME

    return {"task": f"{data.spec.title} ({data.spec.metric}, cut-off {bench.cutoff:g})",
            "task_source": data.source, "train_examples": len(data.train),
            "dev_examples": {k: len(v) for k, v in data.dev.items()},
            "model": EMBEDDED_NAME if bench.model == EMBEDDED else bench.model, **bench.about()}
