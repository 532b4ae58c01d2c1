"""Inference sweeps over the axes of the energy-accuracy trade-off study of BERT-base on SST-2 (the project's
background reading): max sequence length, precision, encoder depth, batch size.

A sweep runs the per-example inference protocol once per configuration and keeps, per point, the
accuracy and the costs (J/example, J/correct prediction, ms/example, peak memory) so that the
energy-accuracy Pareto frontier of each axis can be drawn. It is generic: `sweep_point` measures one
configuration with the caller's inference runner (`energy.inference`) and *predict builder*, a function from a
configuration dict ({"max_length", "precision", "depth", "batch_size"}) to a predict function. `HFPredictBuilder`
is the builder for Hugging Face sequence classifiers. A configuration the machine cannot run
(e.g. bf16 on a CPU without support) raises `Unsupported` from the builder and is recorded as a
skipped point with its reason, never silently dropped.

Nothing here imports torch or transformers.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..errors import Unsupported
# Data of the run model, imported here too, where it is produced.
from ..records import SWEEP_BASE_KEY, SWEEP_POINT_KEY, SweepPoint  # noqa: F401

AXES = ("max_length", "precision", "depth", "batch_size")
PRECISION_DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}

PredictBuilder = Callable[[Mapping[str, Any]], Callable[[list], Any]]




def point_from_result(axis: str, value: Any, settings: Mapping[str, Any], result: Any) -> SweepPoint:
    """A SweepPoint from an InferenceResult (pytest_energy.protocols.inference)."""
    return SweepPoint(
        axis=axis, value=value, settings=dict(settings),
        accuracy=result.accuracy,
        j_per_example=result.j_per_example,
        j_per_correct=result.j_per_correct,
        ms_per_example=result.ms_per_example_mean,
        peak_memory_bytes=result.peak_memory_bytes,
        method=result.method,
        n_examples=result.examples,
        tokens=result.tokens,
    )


def _value_order(axis: str, value: Any) -> tuple:
    if axis == "precision" and value in PRECISION_DTYPES:
        return (0, list(PRECISION_DTYPES).index(value))
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (0, value)
    return (1, str(value))


def complete_axes(points: Sequence[SweepPoint], base: Mapping[str, Any]) -> list[SweepPoint]:
    """Add the base configuration to every single-axis sweep that lacks it, copied from where it was measured.

    Every axis passes through the base configuration (fp32 at full depth, batch 1, 128 tokens), so a
    benchmark suite measures it once (e.g. on the max_length axis) and each axis's frontier still
    shows the reference point. Points come back grouped by axis (in order of first appearance) and,
    within a single axis, in value order (precisions as fp32, fp16, bf16).
    """
    reference = next((p for p in points if p.measured and p.settings == dict(base)), None)
    groups: dict[str, list[SweepPoint]] = {}
    for p in points:
        groups.setdefault(p.axis, []).append(p)
    out = []
    for axis, members in groups.items():
        if axis not in AXES:  # a grid: keep the order it was swept in
            out += members
            continue
        if reference is not None and not any(p.settings == reference.settings for p in members):
            members = [*members, dataclasses.replace(reference, axis=axis, value=base[axis], settings=dict(base))]
        out += sorted(members, key=lambda p: _value_order(axis, p.value))
    return out


def sweep_point(run_inference: Callable[..., Any], build_predict: PredictBuilder, axis: str, value: Any,
                settings: Mapping[str, Any], examples: Sequence[Any], *, labels: Sequence[Any] | None = None,
                n: int = 200, warmup: int = 10) -> SweepPoint:
    """One configuration of a sweep, measured: the step every sweep repeats per configuration.

    `run_inference(predict, examples, batch_size=, warmup=, labels=, n=)` is the `energy` fixture's
    `energy.inference` (benchmarks/test_sweeps.py: one benchmark per configuration), or
    `functools.partial(pytest_energy.protocols.inference.inference, measurer)` outside pytest. A configuration
    the builder refuses with `Unsupported` is a skipped point carrying the reason.
    """
    try:
        predict = build_predict(settings)
    except Unsupported as exc:
        return SweepPoint(axis, value, dict(settings), skipped_reason=str(exc))
    result = run_inference(predict, examples, batch_size=int(settings["batch_size"]), warmup=warmup,
                           labels=labels, n=n)
    return point_from_result(axis, value, settings, result)
