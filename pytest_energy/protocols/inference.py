"""Per-example inference cost: HULK averages time and cost over 1000 single examples.

Energy: the whole loop is one metering window, split into a few consecutive chunks (default 5) that
are metered too. A batch-1 forward pass of a small model takes a few milliseconds, far below the
update period of the sensors (NVML ~100 ms, the CPU-time estimate one clock tick), so per-batch energy
windows would read 0 J or quantisation noise; chunks of a fifth of the loop are long enough, and give
the baseline gate several samples from one run instead of a single number it cannot judge.
Latency: every batch is timed with perf_counter (after a GPU synchronisation) to get the distribution;
that costs nanoseconds and needs no sensor.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, NamedTuple

from ..errors import UsageError
from ..measure import Measurer, sync_cuda
from ..results import Metric

PREFIX = "inference."


class PredictOutput(NamedTuple):
    """What `predict` may return instead of bare predictions, to report the tokens it processed."""

    predictions: Any  # list / numpy array / torch tensor, one entry per example of the batch
    tokens: int  # tokens fed to the model for this batch, padding included


@dataclass
class InferenceResult:
    examples: int
    batch_size: int
    batches: int
    warmup: int
    duration_s: float
    energy_j: float
    net_energy_j: float | None
    method: str
    j_per_example: float
    ms_per_example_mean: float  # mean over batches of (batch latency / batch length)
    ms_per_example_p50: float
    ms_per_example_p90: float
    ms_per_example_p99: float
    examples_per_s: float  # examples / metered wall time of the loop
    peak_memory_bytes: int | None
    peak_memory_source: str | None
    accuracy: float | None = None  # when labels were given
    correct: int | None = None
    j_per_correct: float | None = None  # None also when nothing was correct (the figure would be infinite)
    tokens: int | None = None  # when every batch reported tokens through PredictOutput
    j_per_token: float | None = None
    warnings: list[str] = field(default_factory=list)
    # Per chunk of consecutive batches: (examples, duration_s, energy_j, correct or None, tokens or None).
    chunks: list[tuple[int, float, float, int | None, int | None]] = field(default_factory=list)

    def summary(self) -> str:
        acc = "" if self.accuracy is None else f", accuracy {self.accuracy:.4g}"
        return (f"{self.examples} examples at batch {self.batch_size}: {self.j_per_example:.4g} J/example, "
                f"{self.ms_per_example_mean:.3g} ms/example (p50 {self.ms_per_example_p50:.3g}, "
                f"p99 {self.ms_per_example_p99:.3g}){acc} [{self.method}]")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["protocol"] = "inference"
        d["summary"] = self.summary()
        return d

    def _per_chunk(self, value: Callable[[int, float, float, int | None, int | None], float | None]) -> list[float]:
        out = [value(*c) for c in self.chunks]
        return [v for v in out if v is not None and math.isfinite(v)]

    def metrics(self) -> list[Metric]:
        """Metrics named "inference.<name>"; accuracy is deterministic (fixed model and data), the rest measured.

        Measured metrics carry one sample per chunk (see the module docstring). `duration_s` and `energy_j`
        samples are each chunk's cost scaled to the whole loop (examples / chunk examples), so their mean
        is the loop's total; the p50/p90/p99 latencies describe the whole loop and have one sample.
        """
        m = self.method
        n = self.examples
        out = [
            Metric(PREFIX + "duration_s", "s", "lower", "measured", self._per_chunk(lambda k, t, e, c, x: t * n / k)),
            Metric(PREFIX + "energy_j", "J", "lower", "measured", self._per_chunk(lambda k, t, e, c, x: e * n / k), m),
            Metric(PREFIX + "j_per_example", "J/example", "lower", "measured",
                   self._per_chunk(lambda k, t, e, c, x: e / k), m),
            Metric(PREFIX + "ms_per_example", "ms", "lower", "measured",
                   self._per_chunk(lambda k, t, e, c, x: t * 1e3 / k)),
            Metric(PREFIX + "ms_per_example_p50", "ms", "lower", "measured", [self.ms_per_example_p50]),
            Metric(PREFIX + "ms_per_example_p90", "ms", "lower", "measured", [self.ms_per_example_p90]),
            Metric(PREFIX + "ms_per_example_p99", "ms", "lower", "measured", [self.ms_per_example_p99]),
            Metric(PREFIX + "examples_per_s", "example/s", "higher", "measured",
                   self._per_chunk(lambda k, t, e, c, x: k / t if t > 0 else None)),
        ]
        if self.peak_memory_bytes is not None:
            out.append(Metric(PREFIX + "peak_memory_bytes", "B", "lower", "measured",
                              [float(self.peak_memory_bytes)]))
        if self.accuracy is not None:
            out.append(Metric(PREFIX + "accuracy", "1", "higher", "deterministic", [self.accuracy]))
        if self.j_per_correct is not None:
            out.append(Metric(PREFIX + "j_per_correct", "J/correct", "lower", "measured",
                              self._per_chunk(lambda k, t, e, c, x: e / c if c else None), m))
        if self.tokens is not None:
            out.append(Metric(PREFIX + "tokens", "tokens", "lower", "deterministic", [float(self.tokens)]))
        if self.j_per_token is not None:
            out.append(Metric(PREFIX + "j_per_token", "J/token", "lower", "measured",
                              self._per_chunk(lambda k, t, e, c, x: e / x if x else None), m))
        return out


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


def inference(measurer: Measurer, predict: Callable[[list], Any], examples: Sequence[Any], *,
              batch_size: int = 1, warmup: int = 10, labels: Sequence[Any] | None = None,
              n: int = 1000, chunks: int = 5) -> InferenceResult:
    """Run `predict` over the first min(n, len(examples)) examples in batches of `batch_size`.

    Examples are not cycled when there are fewer than `n`: repeating them would count the same predictions
    twice in the accuracy and let caches flatter the latency. `warmup` unmetered calls on the first batch
    come first (allocator, kernel selection, lazy init). `predict(batch)` returns one prediction per
    example, or a `PredictOutput(predictions, tokens)`. With `labels` (aligned with `examples`), accuracy
    and J per correct prediction are reported; a prediction is correct when it equals its label.
    The loop is also metered in `chunks` consecutive parts (fewer when there are fewer batches), which
    give the per-chunk samples of the measured metrics.
    """
    if not isinstance(batch_size, int) or batch_size < 1:
        raise UsageError(f"batch_size must be an int >= 1, got {batch_size!r}")
    if not isinstance(warmup, int) or warmup < 0:
        raise UsageError(f"warmup must be an int >= 0, got {warmup!r}")
    if not isinstance(n, int) or n < 1:
        raise UsageError(f"n must be an int >= 1, got {n!r}")
    if not isinstance(chunks, int) or chunks < 1:
        raise UsageError(f"chunks must be an int >= 1, got {chunks!r}")
    count = min(n, len(examples))
    if count == 0:
        raise UsageError("inference() needs at least one example")
    if labels is not None and len(labels) < count:
        raise UsageError(f"labels has {len(labels)} entries for {count} examples")
    chosen = list(examples[:count])
    batches = [chosen[i:i + batch_size] for i in range(0, count, batch_size)]

    for _ in range(warmup):
        predict(batches[0])

    k = min(chunks, len(batches))
    bounds = [round(i * len(batches) / k) for i in range(k + 1)]  # consecutive, sizes differ by <= 1 batch
    latencies_ms_per_example: list[float] = []
    outputs: list[Any] = []
    chunk_windows = []
    with measurer.measure("inference") as window:
        for lo, hi in zip(bounds, bounds[1:]):
            with measurer.measure("inference.chunk") as chunk:
                for batch in batches[lo:hi]:
                    t0 = time.perf_counter()
                    out = predict(batch)
                    sync_cuda()
                    latencies_ms_per_example.append((time.perf_counter() - t0) * 1e3 / len(batch))
                    outputs.append(out)  # converted after the window: list conversion is not the model's cost
            chunk_windows.append((lo, hi, chunk))

    tokens: int | None = 0
    predictions: list[Any] = []
    batch_tokens: list[int | None] = []
    for batch, out in zip(batches, outputs):
        if isinstance(out, PredictOutput):
            batch_tokens.append(int(out.tokens))
            tokens = None if tokens is None else tokens + int(out.tokens)
            out = out.predictions
        else:
            batch_tokens.append(None)
            tokens = None
        preds = _as_list(out)
        if len(preds) != len(batch):
            raise UsageError(f"predict() returned {len(preds)} predictions for a batch of {len(batch)}")
        predictions += preds
    gold = list(labels[:count]) if labels is not None else None
    starts = [0]
    for batch in batches:
        starts.append(starts[-1] + len(batch))
    chunk_rows = []
    for lo, hi, chunk in chunk_windows:
        a, b = starts[lo], starts[hi]
        correct_k = sum(1 for p, y in zip(predictions[a:b], gold[a:b]) if p == y) if gold is not None else None
        toks = batch_tokens[lo:hi]
        tokens_k = None if tokens is None else sum(t for t in toks if t is not None)
        chunk_rows.append((b - a, chunk.duration_s, chunk.energy_j, correct_k, tokens_k))

    energy_j = window.energy_j
    result = InferenceResult(
        examples=count,
        batch_size=batch_size,
        batches=len(batches),
        warmup=warmup,
        duration_s=window.duration_s,
        energy_j=energy_j,
        net_energy_j=window.net_energy_j,
        method=window.method,
        j_per_example=energy_j / count,
        ms_per_example_mean=sum(latencies_ms_per_example) / len(latencies_ms_per_example),
        ms_per_example_p50=percentile(latencies_ms_per_example, 50),
        ms_per_example_p90=percentile(latencies_ms_per_example, 90),
        ms_per_example_p99=percentile(latencies_ms_per_example, 99),
        examples_per_s=count / window.duration_s if window.duration_s > 0 else math.nan,
        peak_memory_bytes=window.peak_memory_bytes,
        peak_memory_source=window.peak_memory_source,
        tokens=tokens,
        j_per_token=energy_j / tokens if tokens else None,
        warnings=sorted(set(window.warnings + [w for _, _, c in chunk_windows for w in c.warnings])),
        chunks=chunk_rows,
    )
    if labels is not None:
        correct = sum(1 for p, y in zip(predictions, labels[:count]) if p == y)
        result.correct = correct
        result.accuracy = correct / count
        result.j_per_correct = energy_j / correct if correct else None
    return result
