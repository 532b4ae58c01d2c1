"""Inference sweeps over the axes of seed 004: max sequence length, precision, encoder depth, batch size.

A sweep runs the per-example inference protocol once per configuration and keeps, per point, the
accuracy and the costs (J/example, J/correct prediction, ms/example, peak memory) so that the
energy-accuracy Pareto frontier of each axis can be drawn. It is generic: the caller passes a
Measurer and a *predict builder*, a function from a configuration dict
({"max_length", "precision", "depth", "batch_size"}) to a predict function. `HFPredictBuilder`
is the builder for Hugging Face sequence classifiers. A configuration the machine cannot run
(e.g. bf16 on a CPU without support) raises `Unsupported` from the builder and is recorded as a
skipped point with its reason, never silently dropped.

torch and transformers are imported inside the functions that need them.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from .errors import EnergyError, UsageError
from .measure import Measurer

AXES = ("max_length", "precision", "depth", "batch_size")
# Benchmarks store their SweepPoint dict under this extra_info key; the HTML report collects them.
SWEEP_POINT_KEY = "sweep_point"
SWEEP_BASE_KEY = "sweep_base"  # extra_info key of the base configuration every axis passes through
PRECISION_DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}

PredictBuilder = Callable[[Mapping[str, Any]], Callable[[list], Any]]


class Unsupported(EnergyError):
    """This machine cannot run a sweep configuration; the message says why. The sweep records and skips it."""


@dataclass
class SweepPoint:
    """One configuration's outcome. `value` is the swept value ("fp16", 48, or "fp16/48" for a grid)."""

    axis: str  # "max_length", "precision", "depth", "batch_size", or "precision+max_length" for a grid
    value: Any
    settings: dict[str, Any]  # the full configuration, swept axis and fixed ones
    accuracy: float | None = None  # None when no labels were given
    j_per_example: float = math.nan
    j_per_correct: float | None = None  # None when nothing was predicted correctly or no labels
    ms_per_example: float = math.nan
    peak_memory_bytes: int | None = None
    method: str = "none"
    n_examples: int = 0
    tokens: int | None = None  # tokens fed to the model, padding included, when predict reported them
    skipped_reason: str | None = None

    @property
    def measured(self) -> bool:
        return self.skipped_reason is None and math.isfinite(self.j_per_example)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SweepPoint:
        """The inverse of to_dict; unknown keys (from a newer version) are ignored."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


def sweep_configs(axes: Mapping[str, Sequence[Any]], base: Mapping[str, Any]) -> list[tuple[str, Any, dict[str, Any]]]:
    """(axis name, value label, settings) for every configuration.

    One axis sweeps that axis with the others held at `base`; several axes sweep their product
    (a combined frontier, e.g. precision x max_length as in seed 004's Figure 4).
    """
    if not axes:
        raise UsageError("a sweep needs at least one axis, e.g. {'max_length': [16, 32, 64, 128]}")
    unknown = sorted(set(axes) - set(AXES))
    if unknown:
        raise UsageError(f"unknown sweep axis {', '.join(unknown)}; known: {', '.join(AXES)}")
    for name, values in axes.items():
        if isinstance(values, (str, bytes)) or not values:
            raise UsageError(f"sweep axis {name!r} needs a non-empty list of values, got {values!r}")
    names = list(axes)
    axis = "+".join(names)
    out = []
    for combo in itertools.product(*(axes[n] for n in names)):
        settings = {**base, **dict(zip(names, combo))}
        value = combo[0] if len(combo) == 1 else "/".join(str(v) for v in combo)
        out.append((axis, value, settings))
    return out


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


def run_sweep(measurer: Measurer, build_predict: PredictBuilder, examples: Sequence[Any],
              axes: Mapping[str, Sequence[Any]], *, base: Mapping[str, Any] | None = None,
              labels: Sequence[Any] | None = None, n: int = 200, warmup: int = 10,
              run_inference: Callable[..., Any] | None = None) -> list[SweepPoint]:
    """Run the inference protocol on every configuration of `axes`; returns one point per configuration.

    `base` holds the fixed settings (default: max_length 128, fp32, full depth, batch size 1).
    `run_inference` defaults to pytest_energy.protocols.inference.inference; the `energy` fixture's
    `energy.inference` has the same shape minus the measurer, so benchmarks can record each point.
    """
    if run_inference is None:
        from .protocols.inference import inference as run_inference
    base = {"max_length": 128, "precision": "fp32", "depth": None, "batch_size": 1, **(base or {})}
    points = []
    for axis, value, settings in sweep_configs(axes, base):
        try:
            predict = build_predict(settings)
        except Unsupported as exc:
            points.append(SweepPoint(axis, value, settings, skipped_reason=str(exc)))
            continue
        result = run_inference(measurer, predict, examples, batch_size=int(settings["batch_size"]),
                               warmup=warmup, labels=labels, n=n)
        points.append(point_from_result(axis, value, settings, result))
    return points


# --- model surgery -------------------------------------------------------------------------------

# (path from the base model to the layer list, config attribute holding the layer count)
_LAYER_LAYOUTS = (
    (("encoder", "layer"), "num_hidden_layers"),  # BERT, RoBERTa, XLM-R, ELECTRA, MiniLM, CamemBERT
    (("transformer", "layer"), "n_layers"),  # DistilBERT
)


def _layer_list(model: Any) -> tuple[Any, str, str]:
    """(module owning the layer list, its attribute name, config attribute) for a BERT-family model."""
    import torch

    base = getattr(model, "base_model", model)
    config = getattr(model, "config", None)
    for path, config_attr in _LAYER_LAYOUTS:
        owner = base
        for part in path[:-1]:
            owner = getattr(owner, part, None)
        layers = getattr(owner, path[-1], None) if owner is not None else None
        if isinstance(layers, torch.nn.ModuleList) and hasattr(config, config_attr):
            return owner, path[-1], config_attr
    kind = getattr(config, "model_type", "unknown")
    raise UsageError(
        f"encoder depth truncation does not know {type(model).__name__} (model_type {kind!r}): it needs a "
        f"BERT-family encoder with base_model.encoder.layer (BERT, RoBERTa, ELECTRA, MiniLM) or "
        f"base_model.transformer.layer (DistilBERT)")


def encoder_depth(model: Any) -> int:
    """Number of encoder layers of a BERT-family model."""
    owner, attr, _ = _layer_list(model)
    return len(getattr(owner, attr))


def truncate_encoder(model: Any, layers: int) -> Any:
    """A copy of `model` keeping its first `layers` encoder layers (seed 004's depth axis).

    The original is untouched. The config's layer count is updated so saving and reloading the copy
    gives the same architecture.
    """
    full = encoder_depth(model)
    if isinstance(layers, bool) or not isinstance(layers, int) or not 1 <= layers <= full:
        raise UsageError(f"encoder depth must be an int in 1..{full}, got {layers!r}")
    import torch

    clone = copy.deepcopy(model)
    owner, attr, config_attr = _layer_list(clone)
    setattr(owner, attr, torch.nn.ModuleList(list(getattr(owner, attr))[:layers]))
    setattr(clone.config, config_attr, layers)
    return clone


def to_precision(model: Any, precision: str) -> Any:
    """A copy of `model` in `precision` ("fp32", "fp16", "bf16"); the model itself when already there."""
    import torch

    if precision not in PRECISION_DTYPES:
        raise UsageError(f"unknown precision {precision!r}; known: {', '.join(PRECISION_DTYPES)}")
    dtype = getattr(torch, PRECISION_DTYPES[precision])
    if next(model.parameters()).dtype == dtype:
        return model
    return copy.deepcopy(model).to(dtype)


def precision_problem(model: Any, inputs: Mapping[str, Any]) -> str | None:
    """Why `model` (already cast) cannot run a forward pass on `inputs` here, or None when it can.

    Some CPUs or builds lack fp16/bf16 kernels (an error), or produce non-finite outputs; we try a
    real forward pass rather than trusting a capability flag.
    """
    import torch

    dtype = next(model.parameters()).dtype
    device = next(model.parameters()).device
    try:
        with torch.inference_mode():
            out = model(**{k: v.to(device) for k, v in inputs.items()})
    except (RuntimeError, TypeError, NotImplementedError) as exc:
        return f"{dtype} forward pass fails on {device}: {type(exc).__name__}: {str(exc).splitlines()[0]}"
    logits = out.logits if hasattr(out, "logits") else out[0]
    if not torch.isfinite(logits.float()).all():
        return f"{dtype} forward pass on {device} gives non-finite outputs"
    return None


# --- the Hugging Face predict builder ------------------------------------------------------------

@dataclass
class HFPredictBuilder:
    """Builds predict functions for a Hugging Face sequence classifier, one per sweep configuration.

    `predict(batch)` tokenizes the batch's texts (truncated to `max_length`; padded to `max_length`
    by default, so cost follows the configured length as in seed 004; `padding="longest"` pads to
    the longest text of the batch instead), runs the model and returns the predicted class ids with
    the number of tokens fed to the model, padding included (a `PredictOutput`; seed 001 finds
    energy linear in tokens processed).
    Tokenization is inside predict, hence metered: it is part of serving a request. The model runs
    on the device it is on; variants (truncated, cast) are copies, and the given model is only put
    in eval mode.
    Examples are strings or objects with `text` (and optionally `text_pair`), like
    pytest_energy.tasks.TextExample.
    """

    model: Any
    tokenizer: Any
    padding: str = "max_length"
    # Skip a reduced precision whose probe forward pass is this many times slower than fp32: on CPUs
    # without fp16 kernels torch emulates it (10x and more), which would dominate a sweep's run time.
    # None measures every precision that runs at all.
    max_slowdown: float | None = None
    _cache: dict[tuple[Any, str], Any] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.padding not in ("max_length", "longest"):
            raise UsageError(f"padding must be 'max_length' or 'longest', got {self.padding!r}")
        self.model.eval()

    def variant(self, depth: int | None, precision: str) -> Any:
        """The model at `depth` layers and `precision`, cached: seq-length and batch sweeps reuse it."""
        key = (depth, precision)
        if key not in self._cache:
            # Keep one variant alive at a time: a BERT-base copy per configuration adds up.
            self._cache.clear()
            model = self.model
            if depth is not None and depth != encoder_depth(model):
                model = truncate_encoder(model, depth)
            reference = model
            model = to_precision(model, precision)
            model.eval()
            probe = self._encode(["a short probe sentence"], 16)
            problem = precision_problem(model, probe)
            if problem is None and self.max_slowdown is not None and model is not reference:
                problem = self._slowdown_problem(reference, model, precision)
            if problem is not None:
                raise Unsupported(problem)
            self._cache[key] = model
        return self._cache[key]

    def _slowdown_problem(self, reference: Any, model: Any, precision: str) -> str | None:
        import torch

        enc = self.tokenizer(["probe " * 64], max_length=64, truncation=True, padding="max_length",
                             return_tensors="pt")
        device = next(model.parameters()).device
        inputs = {k: v.to(device) for k, v in enc.items()}

        def best_s(m: Any) -> float:
            times = []
            with torch.inference_mode():
                for _ in range(4):  # the first call warms up; the best of the rest is the probe time
                    t0 = time.perf_counter()
                    m(**inputs)
                    times.append(time.perf_counter() - t0)
            return min(times[1:])

        ratio = best_s(model) / best_s(reference)
        if ratio > self.max_slowdown:
            return (f"{precision} forward pass is {ratio:.1f}x slower than fp32 on {device} (no native kernels: "
                    f"emulated); skipped because max_slowdown={self.max_slowdown:g}")
        return None

    def _encode(self, batch: list, max_length: int) -> Any:
        texts = [ex if isinstance(ex, str) else ex.text for ex in batch]
        pairs = [None if isinstance(ex, str) else getattr(ex, "text_pair", None) for ex in batch]
        return self.tokenizer(texts, pairs if any(p is not None for p in pairs) else None,
                              max_length=max_length, truncation=True, padding=self.padding, return_tensors="pt")

    def __call__(self, settings: Mapping[str, Any]) -> Callable[[list], Any]:
        import torch

        from .protocols.inference import PredictOutput

        max_length = int(settings.get("max_length", 128))
        if max_length < 2:
            raise UsageError(f"max_length must be >= 2 (room for [CLS] and [SEP]), got {max_length}")
        positions = getattr(self.model.config, "max_position_embeddings", None)
        if positions is not None and max_length > positions:
            raise UsageError(f"max_length {max_length} exceeds the model's {positions} position embeddings")
        model = self.variant(settings.get("depth"), settings.get("precision", "fp32"))
        device = next(model.parameters()).device

        def predict(batch: list) -> PredictOutput:
            enc = self._encode(batch, max_length)
            with torch.inference_mode():
                logits = model(**{k: v.to(device) for k, v in enc.items()}).logits
            return PredictOutput(logits.argmax(dim=-1), int(enc["input_ids"].numel()))

        return predict
