"""Per-example inference cost: HULK (Zhou et al. 2021) averages time and cost over 1000 single examples.

Energy: the whole loop is ONE metering window. A batch-1 forward pass of a small model takes a few
milliseconds, far below the update period of the sensors (NVML power ~100 ms, RAPL ~1 ms but noisy,
the CPU-time estimate one scheduler tick), so per-batch energy windows would read 0 J or quantisation noise.
Replicates are whole passes of the loop (`rounds`; docs/statistics.md explains why chunks of one loop are
not): every measured metric gets one sample per pass, the warmup calls run once before the first pass.
Latency: every batch is timed with perf_counter (after a GPU synchronisation) to get the distribution;
that costs nanoseconds and needs no sensor.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from ..errors import UsageError
from ..measure import Measurer, sync_cuda
# The result type is data of the run model (records); imported here too, where it is produced.
from ..records import MIN_TAIL_BATCHES, PASS_FIGURES, InferenceResult, Window, score_metric_key  # noqa: F401


class PredictOutput(NamedTuple):
    """What `predict` may return instead of bare predictions, to report the tokens it processed."""

    predictions: Any  # list / numpy array / torch tensor, one entry per example of the batch
    tokens: int  # tokens fed to the model for this batch, padding included


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) with linear interpolation between order statistics (numpy's default)."""
    if not values:
        return math.nan
    xs = sorted(values)
    pos = (len(xs) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def _as_list(predictions: Any) -> list:
    # Tensors and arrays both have tolist(); converting after the timer stops keeps it out of the latency.
    if hasattr(predictions, "tolist"):
        return predictions.tolist()
    return list(predictions)


def _check_arguments(examples: Sequence[Any], labels: Sequence[Any] | None, batch_size: int, warmup: int,
                     n: int, rounds: int = 1) -> int:
    """Validate the arguments; returns how many examples are used."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise UsageError(f"batch_size must be an int >= 1, got {batch_size!r}")
    if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
        raise UsageError(f"warmup must be an int >= 0, got {warmup!r}")
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
        raise UsageError(f"rounds must be an int >= 1, got {rounds!r}")
    if not isinstance(n, int) or n < 1:
        raise UsageError(f"n must be an int >= 1, got {n!r}")
    count = min(n, len(examples))
    if count == 0:
        raise UsageError("inference() needs at least one example")
    if labels is not None and len(labels) < count:
        raise UsageError(f"labels has {len(labels)} entries for {count} examples")
    return count


def _metered_pass(measurer: Measurer, predict: Callable[[list], Any],
                  batches: list[list]) -> tuple[Window, list[float], list[Any]]:
    """One metered pass over the batches: the window, ms per example of each batch, raw outputs."""
    latencies_ms_per_example: list[float] = []
    outputs: list[Any] = []
    with measurer.measure("inference") as window:
        for batch in batches:
            t0 = time.perf_counter()
            out = predict(batch)
            sync_cuda()
            latencies_ms_per_example.append((time.perf_counter() - t0) * 1e3 / len(batch))
            outputs.append(out)  # converted after the window: list conversion is not the model's cost
    return window, latencies_ms_per_example, outputs


def _predictions_and_tokens(batches: list[list], outputs: list[Any]) -> tuple[list[Any], int | None]:
    """Flatten the outputs into one prediction per example; tokens when every batch reported them."""
    tokens: int | None = 0
    predictions: list[Any] = []
    for batch, out in zip(batches, outputs):
        if isinstance(out, PredictOutput):
            tokens = None if tokens is None else tokens + int(out.tokens)
            out = out.predictions
        else:
            tokens = None
        preds = _as_list(out)
        if len(preds) != len(batch):
            raise UsageError(f"predict() returned {len(preds)} predictions for a batch of {len(batch)}")
        predictions += preds
    return predictions, tokens


def _pass_figures(window: Window, latencies: list[float], count: int, correct: int | None,
                  tokens: int | None) -> dict[str, float]:
    """One pass's measured figures (PASS_FIGURES, and the per-correct / per-token energies when known)."""
    figures = {
        "duration_s": window.duration_s,
        "energy_j": window.energy_j,
        "j_per_example": window.energy_j / count,
        "ms_per_example_mean": sum(latencies) / len(latencies),
        "ms_per_example_p50": percentile(latencies, 50),
        "ms_per_example_p90": percentile(latencies, 90),
        "ms_per_example_p99": percentile(latencies, 99),
        "examples_per_s": count / window.duration_s if window.duration_s > 0 else math.nan,
    }
    if window.peak_memory_bytes is not None:
        figures["peak_memory_bytes"] = float(window.peak_memory_bytes)
    if correct:
        figures["j_per_correct"] = window.energy_j / correct
    if tokens:
        figures["j_per_token"] = window.energy_j / tokens
    return figures


def inference(measurer: Measurer, predict: Callable[[list], Any], examples: Sequence[Any], *,
              batch_size: int = 1, warmup: int = 10, labels: Sequence[Any] | None = None,
              n: int = 1000, score: Callable[[list, list], float] | None = None,
              score_name: str = "accuracy", rounds: int = 1, gate_tails: bool = False,
              between: Callable[[], Any] | None = None) -> InferenceResult:
    """Run `predict` over the first min(n, len(examples)) examples in batches of `batch_size`, `rounds` times.

    Examples are not cycled when there are fewer than `n`: repeating them would count the same predictions
    twice in the accuracy and let caches flatter the latency. `warmup` unmetered calls on the first batch
    come first, once (allocator, kernel selection, lazy init). Each of the `rounds` passes is one metering
    window and one sample of every measured metric; `between()` runs before each pass and after the last,
    outside the windows (the fixture's calibration probe). `predict(batch)` returns one prediction per
    example, or a `PredictOutput(predictions, tokens)`. With `labels` (aligned with `examples`), accuracy
    and J per correct prediction are reported (from the last pass: a fixed model predicts the same in every
    pass); a prediction is correct when it equals its label. `score(predictions, labels) -> float` computes
    the task's own figure instead of accuracy for the reports (e.g. entity-level F1 for NER), recorded as
    `inference.<score_name>`; it needs `labels`. p90 and p99 latencies are always reported; with
    `gate_tails=True` they are also metrics (baselines, gate) where enough batches lie beyond them
    (InferenceResult.gated_tails).
    """
    count = _check_arguments(examples, labels, batch_size, warmup, n, rounds)
    if not isinstance(score_name, str) or not score_name.strip():
        raise UsageError(f"score_name must be a non-empty string, got {score_name!r}")
    if score is not None and labels is None:
        raise UsageError("inference(score=...) needs labels to score the predictions against")
    chosen = list(examples[:count])
    batches = [chosen[i:i + batch_size] for i in range(0, count, batch_size)]
    for _ in range(warmup):
        predict(batches[0])
    passes: list[dict[str, float]] = []
    windows: list[Window] = []
    correct: int | None = None
    tokens: int | None = None
    for _ in range(rounds):
        if between is not None:
            between()
        window, latencies, outputs = _metered_pass(measurer, predict, batches)
        predictions, tokens = _predictions_and_tokens(batches, outputs)
        if labels is not None:
            correct = sum(1 for p, y in zip(predictions, labels[:count]) if p == y)
        windows.append(window)
        passes.append(_pass_figures(window, latencies, count, correct, tokens))
    if between is not None:
        between()
    samples = {name: [p[name] for p in passes] for name in passes[0] if all(name in p for p in passes)}
    mean = {name: math.fsum(values) / len(values) for name, values in samples.items()}
    peaks = [w.peak_memory_bytes for w in windows if w.peak_memory_bytes is not None]
    result = InferenceResult(
        examples=count,
        batch_size=batch_size,
        batches=len(batches),
        warmup=warmup,
        duration_s=mean["duration_s"],
        energy_j=mean["energy_j"],
        net_energy_j=(math.fsum(w.net_energy_j for w in windows) / rounds  # type: ignore[misc]
                      if all(w.net_energy_j is not None for w in windows) else None),
        method=windows[-1].method,
        j_per_example=mean["j_per_example"],
        ms_per_example_mean=mean["ms_per_example_mean"],
        ms_per_example_p50=mean["ms_per_example_p50"],
        ms_per_example_p90=mean["ms_per_example_p90"],
        ms_per_example_p99=mean["ms_per_example_p99"],
        examples_per_s=mean["examples_per_s"],
        peak_memory_bytes=max(peaks) if peaks else None,
        peak_memory_source=windows[-1].peak_memory_source,
        tokens=tokens,
        j_per_token=mean.get("j_per_token"),
        warnings=sorted({m for w in windows for m in w.warnings}),
        rounds=rounds,
        samples=samples,
        gate_tails=bool(gate_tails),
    )
    if labels is not None:
        result.correct = correct
        result.accuracy = correct / count  # type: ignore[operator]
        result.j_per_correct = mean.get("j_per_correct")
        result.score, result.score_name = result.accuracy, "accuracy"
        if score is not None:
            value = score(predictions, list(labels[:count]))
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise UsageError(f"score() must return a finite number, got {value!r}")
            result.score, result.score_name = float(value), score_name
    return result
