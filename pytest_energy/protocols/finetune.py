"""Fine-tune until the dev score reaches a cut-off, metering training and evaluation apart.

HULK (Zhou et al. 2021) fine-tunes, evaluates on the dev set every few steps and stops at the first
evaluation at or above the cut-off; a model that never gets there is "N/A". DAWNBench counts only
training time to the target, MLPerf counts wall-clock time including evaluation; we report both:

- `duration_s` / `energy_j`: training only (every training segment between evaluations),
- `eval_duration_s` / `eval_energy_j`: evaluation only,
- `wall_duration_s` / `wall_energy_j`: the whole run, evaluation and glue included.

Training between two evaluations is one metering window, not one per step: a per-step window would
cost two meter reads (and GPU synchronisations) per step and be shorter than many sensors' update period.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from typing import Any

from ..errors import UsageError
from ..measure import Measurer
from ..meters.base import Reading
# The result types are data of the run model (records); imported here too, where they are produced.
from ..records import CurvePoint, FinetuneResult, Window  # noqa: F401  (CurvePoint: re-exported)


def _check_cutoff(cutoff: float) -> float:
    try:
        cutoff = float(cutoff)
    except (TypeError, ValueError):
        raise UsageError(f"cutoff must be a number, got {cutoff!r}") from None
    if not math.isfinite(cutoff):
        raise UsageError(f"cutoff must be finite, got {cutoff!r}")
    return cutoff


class _Tracker:
    """Accumulates training and evaluation windows into a FinetuneResult.

    Shared by `finetune_to_cutoff` (which owns its loop) and the Trainer callback (which only sees hooks).
    """

    def __init__(self, measurer: Measurer, cutoff: float, higher_is_better: bool,
                 flops_per_step: int | None) -> None:
        if flops_per_step is not None and (not isinstance(flops_per_step, int) or flops_per_step < 0):
            raise UsageError(f"flops_per_step must be a non-negative int or None, got {flops_per_step!r}")
        self.measurer = measurer
        self.cutoff = _check_cutoff(cutoff)
        self.higher_is_better = bool(higher_is_better)
        self.flops_per_step = flops_per_step
        self.train_s = self.train_j = self.eval_s = self.eval_j = 0.0
        self.train_net_j: float | None = 0.0 if measurer.idle_power_w is not None else None
        self.tokens: int | None = 0
        self.curve: list[CurvePoint] = []
        self.best: float | None = None
        self.reached = False
        self.warnings: list[str] = []
        self._start: Reading | None = None

    def begin(self) -> None:
        # Read the meter directly (not a window) so each curve point can say "wall time and energy so far"
        # while the wall window is still open.
        self._start = self.measurer.meter.read()

    def add_train(self, window: Window, tokens: int | None) -> None:
        self.train_s += window.duration_s
        self.train_j += window.energy_j
        if self.train_net_j is not None:
            self.train_net_j += window.net_energy_j if window.net_energy_j is not None else math.nan
        self.warnings += window.warnings
        if tokens is None or self.tokens is None:
            self.tokens = None  # a partial sum would under-count: report nothing rather than a wrong number
        else:
            self.tokens += int(tokens)

    def add_eval_time(self, window: Window) -> None:
        self.eval_s += window.duration_s
        self.eval_j += window.energy_j
        self.warnings += window.warnings

    def add_eval(self, window: Window | None, step: int, score: float) -> bool:
        """Record one evaluation; True when it reaches the cut-off."""
        if window is not None:
            self.add_eval_time(window)
        now = self.measurer.meter.read()
        assert self._start is not None
        wall_j = sum(self.measurer.meter.delta_j(self._start, now).values())
        self.curve.append(CurvePoint(step, self.train_s, self.train_j, now.t_s - self._start.t_s, wall_j, score))
        if math.isfinite(score) and (self.best is None
                                     or (score > self.best if self.higher_is_better else score < self.best)):
            self.best = score
        # NaN never reaches the cut-off (comparisons with NaN are False): a diverged model is not "done".
        self.reached = score >= self.cutoff if self.higher_is_better else score <= self.cutoff
        return self.reached

    def finish(self, wall: Window, steps: int) -> FinetuneResult:
        return FinetuneResult(
            reached=self.reached,
            steps=steps,
            score=self.curve[-1].score if self.curve else None,
            best_score=self.best,
            cutoff=self.cutoff,
            higher_is_better=self.higher_is_better,
            evaluations=len(self.curve),
            duration_s=self.train_s,
            energy_j=self.train_j,
            net_energy_j=self.train_net_j,
            eval_duration_s=self.eval_s,
            eval_energy_j=self.eval_j,
            wall_duration_s=wall.duration_s,
            wall_energy_j=wall.energy_j,
            eval_share=self.eval_s / wall.duration_s if wall.duration_s > 0 else math.nan,
            tokens=self.tokens,
            flops=self.flops_per_step * steps if self.flops_per_step is not None else None,
            method=wall.method,
            peak_memory_bytes=wall.peak_memory_bytes,
            peak_memory_source=wall.peak_memory_source,
            curve=self.curve,
            warnings=list(dict.fromkeys(self.warnings + wall.warnings)),
        )


def _score(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise UsageError(f"evaluate() must return the dev score as a number, got {value!r}") from None


def _check_schedule(eval_every: int, max_steps: int) -> None:
    for name, value in (("eval_every", eval_every), ("max_steps", max_steps)):
        if not isinstance(value, int) or value < 1:
            raise UsageError(f"{name} must be an int >= 1, got {value!r}")


def _run(train_step: Callable[[int], int | None], evaluate: Callable[[], float], *, eval_every: int,
         max_steps: int, window: Callable[[str], Any], on_train: Callable[[Any, int | None], None],
         on_eval: Callable[[Any, int, float], bool]) -> int:
    """The protocol's loop, metered or not: segments of `eval_every` steps, each followed by an evaluation,
    until `on_eval` says the cut-off is reached or `max_steps` ran. Returns the steps run."""
    step = 0
    while step < max_steps:
        segment_end = min(step + eval_every, max_steps)
        tokens: int | None = 0
        with window("finetune.train") as train_window:
            for s in range(step, segment_end):
                n = train_step(s)
                tokens = None if n is None or tokens is None else tokens + int(n)
        on_train(train_window, tokens)
        step = segment_end
        with window("finetune.eval") as eval_window:
            score = _score(evaluate())
        if on_eval(eval_window, step, score):
            break
    return step


def finetune_to_cutoff(measurer: Measurer, train_step: Callable[[int], int | None],
                       evaluate: Callable[[], float], *, cutoff: float, eval_every: int, max_steps: int,
                       higher_is_better: bool = True, flops_per_step: int | None = None) -> FinetuneResult:
    """Train until an evaluation reaches `cutoff`, or `max_steps` steps.

    `train_step(step)` runs optimisation step `step` (0-based) and may return the tokens it processed,
    padding included (Wang et al. 2023: fine-tuning energy is linear in them), or None. `evaluate()` returns
    the dev score. Evaluations happen after every `eval_every` steps and after the last step, so the figures
    always end on a score. The run stops at the first evaluation with score >= cutoff (<= when
    `higher_is_better` is False). Not reaching it is a result (`reached=False`), not an error.
    """
    _check_schedule(eval_every, max_steps)
    tracker = _Tracker(measurer, cutoff, higher_is_better, flops_per_step)
    with measurer.measure("finetune.wall") as wall:
        tracker.begin()
        step = _run(train_step, evaluate, eval_every=eval_every, max_steps=max_steps, window=measurer.measure,
                    on_train=tracker.add_train, on_eval=tracker.add_eval)
    return tracker.finish(wall, step)


def train_to_cutoff(train_step: Callable[[int], int | None], evaluate: Callable[[], float], *, cutoff: float,
                    eval_every: int, max_steps: int, higher_is_better: bool = True) -> tuple[float | None, int]:
    """The same loop unmetered (e.g. preparing a fine-tuned model for inference benchmarks):
    returns (last dev score, steps run)."""
    _check_schedule(eval_every, max_steps)
    cutoff = _check_cutoff(cutoff)
    scores: list[float] = []

    def on_eval(_window: Any, _step: int, score: float) -> bool:
        scores.append(score)
        return score >= cutoff if higher_is_better else score <= cutoff

    steps = _run(train_step, evaluate, eval_every=eval_every, max_steps=max_steps,
                 window=lambda _label: contextlib.nullcontext(), on_train=lambda _w, _t: None, on_eval=on_eval)
    return (scores[-1] if scores else None), steps


class _CallbackState:
    """The Trainer callback's bookkeeping; the transformers subclass only forwards hooks to it."""

    def __init__(self, measurer: Measurer, cutoff: float, metric_name: str, higher_is_better: bool,
                 flops_per_step: int | None, on_result: Callable[[FinetuneResult], Any] | None = None) -> None:
        self.tracker = _Tracker(measurer, cutoff, higher_is_better, flops_per_step)
        self.metric_name = metric_name
        self.on_result = on_result
        self.result: FinetuneResult | None = None
        self._wall: Any = None  # open context managers (measure() generators), entered by hand
        self._train: Any = None
        self._eval: Any = None
        self._wall_window: Window | None = None
        self._train_window: Window | None = None
        self._eval_window: Window | None = None
        self._train_tokens_start = 0

    @property
    def running(self) -> bool:
        return self._wall is not None

    def train_begin(self) -> None:
        self.result = None
        self._wall = self.tracker.measurer.measure("finetune.wall")
        self._wall_window = self._wall.__enter__()
        self.tracker.begin()

    def step_begin(self, tokens_seen: int) -> None:
        if self.running and self._train is None:
            self._train = self.tracker.measurer.measure("finetune.train")
            self._train_window = self._train.__enter__()
            self._train_tokens_start = tokens_seen

    def _close_train(self, tokens_seen: int, count_tokens: bool) -> None:
        if self._train is not None:
            self._train.__exit__(None, None, None)
            self._train = None
            tokens = tokens_seen - self._train_tokens_start if count_tokens else None
            self.tracker.add_train(self._train_window, tokens)

    def eval_begin(self, tokens_seen: int, count_tokens: bool) -> None:
        if self.running and self._eval is None:
            self._close_train(tokens_seen, count_tokens)
            self._eval = self.tracker.measurer.measure("finetune.eval")
            self._eval_window = self._eval.__enter__()

    def evaluated(self, step: int, metrics: dict[str, float]) -> bool:
        """Close the evaluation window; True when training should stop."""
        if not self.running:
            return False
        window = None
        if self._eval is not None:
            self._eval.__exit__(None, None, None)
            self._eval = None
            window = self._eval_window
        if self.metric_name not in metrics:
            raise UsageError(f"the cut-off metric {self.metric_name!r} is not among the evaluation metrics "
                             f"{sorted(metrics)}; pass metric_name= or give the Trainer a compute_metrics")
        return self.tracker.add_eval(window, step, _score(metrics[self.metric_name]))

    def train_end(self, step: int, tokens_seen: int, count_tokens: bool) -> None:
        if not self.running:
            return
        if self._eval is not None:  # evaluation interrupted without on_evaluate: its time is still evaluation
            self._eval.__exit__(None, None, None)
            self._eval = None
            self.tracker.add_eval_time(self._eval_window)
        self._close_train(tokens_seen, count_tokens)
        self._wall.__exit__(None, None, None)
        self._wall = None
        steps = self.tracker.curve[-1].step if self.tracker.reached else step
        self.result = self.tracker.finish(self._wall_window, steps)
        if self.on_result is not None:
            self.on_result(self.result)


def make_trainer_callback(measurer: Measurer, cutoff: float, metric_name: str = "eval_accuracy",
                          higher_is_better: bool = True, flops_per_step: int | None = None,
                          on_result: Callable[[FinetuneResult], Any] | None = None) -> Any:
    """A `transformers.TrainerCallback` that meters a `Trainer` run like `finetune_to_cutoff`.

    Configure evaluation on the Trainer (e.g. `eval_strategy="steps", eval_steps=N`) and a `compute_metrics`
    producing `metric_name`. The callback keeps one training window open across steps and switches to an
    evaluation window when the Trainer is about to evaluate (`control.should_evaluate` at step/epoch end;
    the first `on_prediction_step` for evaluations started otherwise), closes it in `on_evaluate` and sets
    `control.should_training_stop` at the cut-off. Checkpoint saving after an evaluation counts in the wall
    figures only, as in DAWNBench. Tokens are reported when `include_num_input_tokens_seen` is enabled
    ("all" counts padding, as Wang et al. 2023 recommend). After `train()` returns, `.result` is the
    FinetuneResult, also handed to `on_result` (the `energy` fixture records it there).
    """
    return _callback_class()(measurer, cutoff, metric_name, higher_is_better, flops_per_step, on_result)


_CALLBACK_CLASS: type | None = None


def _callback_class() -> type:
    """Build the TrainerCallback subclass on first use, so importing this module does not import transformers."""
    global _CALLBACK_CLASS
    if _CALLBACK_CLASS is not None:
        return _CALLBACK_CLASS
    from transformers import TrainerCallback

    def counting(args: Any) -> bool:
        return getattr(args, "include_num_input_tokens_seen", "no") not in ("no", False, None)

    class EnergyTrainerCallback(TrainerCallback):
        """Meters training and evaluation apart and stops the Trainer at the cut-off. See make_trainer_callback."""

        def __init__(self, measurer: Measurer, cutoff: float, metric_name: str = "eval_accuracy",
                     higher_is_better: bool = True, flops_per_step: int | None = None,
                     on_result: Callable[[FinetuneResult], Any] | None = None) -> None:
            self._state = _CallbackState(measurer, cutoff, metric_name, higher_is_better, flops_per_step,
                                         on_result)

        @property
        def result(self) -> FinetuneResult:
            if self._state.result is None:
                raise UsageError("no result yet: the Trainer has not finished a train() run with this callback")
            return self._state.result

        def on_train_begin(self, args, state, control, **kwargs):
            self._state.train_begin()

        def on_step_begin(self, args, state, control, **kwargs):
            self._state.step_begin(state.num_input_tokens_seen)

        def on_step_end(self, args, state, control, **kwargs):
            # DefaultFlowCallback runs before user callbacks and has already decided whether to evaluate now.
            if control.should_evaluate:
                self._state.eval_begin(state.num_input_tokens_seen, counting(args))

        on_epoch_end = on_step_end

        def on_prediction_step(self, args, state, control, **kwargs):
            # Evaluations not announced by should_evaluate (a manual trainer.evaluate()): late by one batch.
            self._state.eval_begin(state.num_input_tokens_seen, counting(args))

        def on_evaluate(self, args, state, control, metrics=None, **kwargs):
            if self._state.evaluated(state.global_step, metrics or {}):
                control.should_training_stop = True

        def on_train_end(self, args, state, control, **kwargs):
            self._state.train_end(state.global_step, state.num_input_tokens_seen, counting(args))

    _CALLBACK_CLASS = EnergyTrainerCallback
    return EnergyTrainerCallback


def __getattr__(name: str) -> Any:
    # `from pytest_energy.protocols.finetune import EnergyTrainerCallback` builds the class lazily (PEP 562).
    if name == "EnergyTrainerCallback":
        return _callback_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
