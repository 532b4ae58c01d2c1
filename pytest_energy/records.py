"""The run model every layer shares, from a meter's window to the run the reports lay out.

How a figure was obtained (`Method`), windows, metrics, a test's record with its typed protocol results
(`FinetuneResult`, `InferenceResult`; `SweepPoint`), the gate's `Verdict` and `Outcome`, one finished
benchmark (`BenchmarkResult`) and the whole run (`RunResult`, with `MeterInfo` and the HULK reference it
was scored against).

Pure data: nothing here imports pytest, a heavy library or another pytest_energy module (settings and config
are typed Any, never imported: they live in the layer above). Every numeric field carries its unit in its
name. Enums are `str` subclasses so they compare equal to, and serialise as, their values.

One serialiser: every type has `to_dict()` (builtin types only: what JSON and pytest-xdist's execnet
channel carry) and `from_dict()`, under one `SCHEMA_VERSION`. `from_dict` also reads the shapes older
versions wrote (a field that did not exist yet gets its default or None; a verdict without a rule kind
gets the kind its display text names), and refuses a schema newer than this one.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Union

# The version of every to_dict() shape below (the xdist transport, RunResult.to_dict). 1: the shapes before
# it was numbered (JSON reports without a schema field load as 1); 2: typed protocol results, rule kinds.
SCHEMA_VERSION = 2


class _StrEnum(str, enum.Enum):
    def __str__(self) -> str:  # "rapl", not "Method.RAPL", in messages and tables
        return self.value


class Method(_StrEnum):
    """How an energy figure was obtained. Every energy number in a report carries one of these."""

    NVML_COUNTER = "nvml-counter"  # nvmlDeviceGetTotalEnergyConsumption (mJ), Volta and newer
    NVML_POLLING = "nvml-polling"  # nvmlDeviceGetPowerUsage (mW) polled, trapezoid-integrated
    RAPL = "rapl"  # /sys/class/powercap energy_uj counters
    ESTIMATE = "estimate"  # process CPU time x configured watts per core: NOT a measurement


class VerdictKind(_StrEnum):
    """What the gate says of one metric against its baseline."""

    PASS = "PASS"
    IMPROVED = "IMPROVED"
    REGRESSION = "REGRESSION"
    INCONCLUSIVE = "INCONCLUSIVE"
    NO_BASELINE = "NO_BASELINE"


class Better(_StrEnum):
    LOWER = "lower"
    HIGHER = "higher"


class Kind(_StrEnum):
    """`measured` figures are noisy and compared with statistics; `deterministic` ones with a tolerance."""

    MEASURED = "measured"
    DETERMINISTIC = "deterministic"


def combine_methods(methods: Iterable[str]) -> str:
    """One label for a set of per-device methods: 'rapl', or 'nvml-counter+rapl' when mixed."""
    uniq = sorted({str(m) for m in methods if m})
    return "+".join(uniq) if uniq else "none"


def is_estimate(method: str | None) -> bool:
    """True when any part of a (possibly combined) method label is the estimate."""
    return Method.ESTIMATE.value in str(method or "").split("+")


def is_finite_number(x: Any) -> bool:
    """A finite int or float, not a bool: the one check every layer uses on numbers read from files or users.
    An int too large for a float is not one (math.isfinite would raise OverflowError on it)."""
    if isinstance(x, float):
        return math.isfinite(x)
    return isinstance(x, int) and not isinstance(x, bool) and -sys.float_info.max < x < sys.float_info.max


def plain(value: Any) -> Any:
    """`value` with enums as their str values and tuples as lists: what JSON and execnet both carry."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict):
        return {plain(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def jsonable(value: Any, where: str, notes: list[str]) -> Any:
    """`value` as JSON and pytest-xdist can carry it. numpy scalars and arrays become numbers and lists,
    tuples and sets lists, enums their values; NaN/inf become None and anything else its repr(), each with
    a note naming `where` so nothing is changed silently."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        notes.append(f"{where} is {value!r}: stored as null (JSON has no NaN or infinity)")
        return None
    if hasattr(value, "dtype") and hasattr(value, "tolist"):  # numpy scalar or array, torch tensor
        return jsonable(value.tolist(), where, notes)
    if isinstance(value, dict):
        return {str(k): jsonable(v, f"{where}[{k!r}]", notes) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v, f"{where}[{i}]", notes) for i, v in enumerate(value)]
    if isinstance(value, (set, frozenset)):
        return [jsonable(v, f"{where}[{i}]", notes) for i, v in enumerate(sorted(value, key=repr))]
    notes.append(f"{where} is a {type(value).__name__}, which JSON cannot store: stored as its repr()")
    return repr(value)


def check_schema(d: Mapping[str, Any], what: str) -> int:
    """The schema number of a serialised object (1 when absent: written before it was numbered); ValueError
    when it is newer than this version reads, or not a number."""
    schema = d.get("schema", 1)
    if isinstance(schema, bool) or not isinstance(schema, int) or schema < 1:
        raise ValueError(f"{what}: schema {schema!r} is not a schema number")
    if schema > SCHEMA_VERSION:
        raise ValueError(f"{what}: written with schema {schema}, newer than this pytest-energy reads "
                         f"({SCHEMA_VERSION}): upgrade pytest-energy")
    return schema


def _field_names(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls) if f.init]


def _build(cls: type, d: Mapping[str, Any], **overrides: Any) -> Any:
    """`cls` from the dict `d`: every init field from `overrides`, else from `d`, else its default, else None
    (a field an older version did not write). Keys `cls` does not know (from a newer minor shape) are ignored."""
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        if f.name in overrides:
            kwargs[f.name] = overrides[f.name]
        elif f.name in d:
            kwargs[f.name] = d[f.name]
        elif f.default is not dataclasses.MISSING:
            kwargs[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            kwargs[f.name] = f.default_factory()
        else:
            kwargs[f.name] = None
    return cls(**kwargs)


def _method(value: Any) -> Any:
    """A Method when the text names one, else the text (a combined label such as 'nvml-counter+rapl')."""
    try:
        return Method(value)
    except ValueError:
        return value


@dataclass(frozen=True)
class DeviceInfo:
    """One device a meter reads (re-exported by meters.base, where meters build it)."""

    device: str  # stable id used in results, e.g. "gpu0", "cpu-package-0"
    name: str  # human name
    method: Method

    def to_dict(self) -> dict[str, Any]:
        return plain(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DeviceInfo:
        return cls(str(d["device"]), str(d.get("name", "")), _method(d.get("method", "")))


@dataclass(frozen=True)
class DeviceEnergy:
    """Energy of one metered device over one window."""

    device: str  # e.g. "gpu0", "cpu-package-0", "cpu-dram-0", "cpu-estimate"
    energy_j: float
    method: str  # a Method value
    name: str = ""  # human name, e.g. "NVIDIA H100 80GB HBM3"

    def to_dict(self) -> dict[str, Any]:
        return plain(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DeviceEnergy:
        return _build(cls, d)


@dataclass
class Window:
    """One metered interval. Filled in when the `with` block exits.

    `energy_j` is gross energy (everything the metered devices drew). `net_energy_j` subtracts the
    idle power measured before the session, when that was measured; otherwise it is None.
    """

    label: str
    duration_s: float = math.nan
    energy_j: float = math.nan
    devices: tuple[DeviceEnergy, ...] = ()
    method: str = "none"  # combine_methods() of the devices' methods
    idle_power_w: float | None = None
    net_energy_j: float | None = None
    peak_memory_bytes: int | None = None
    peak_memory_source: str | None = None  # "torch.cuda.max_memory_allocated" | "rss-hwm" | "rss-lifetime"
    warnings: list[str] = field(default_factory=list)
    closed: bool = False
    # energy(fn) rounds of several calls: duration_s, energy_j, devices and net_energy_j are per call (the
    # round's divided by `calls`); peak memory is the round's.
    calls: int = 1
    # Under torchrun, a window combined over ranks keeps each rank's part:
    # [{"rank", "host", "energy_j", "duration_s", "devices": [device ids]}]; None for one process.
    per_rank: list[dict[str, Any]] | None = None

    @property
    def power_w(self) -> float:
        """Average power over the window, watts."""
        if not self.closed or self.duration_s <= 0:
            return math.nan
        return self.energy_j / self.duration_s

    def to_dict(self) -> dict[str, Any]:
        return plain(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Window:
        d = dict(d)
        d.pop("power_w", None)
        d["devices"] = tuple(DeviceEnergy.from_dict(dev) for dev in d.get("devices", ()))
        return _build(cls, d)


@dataclass
class Metric:
    """A named quantity a benchmark produced, with every sample kept.

    `kind="measured"` metrics (time, energy) are noisy and compared with statistics; `kind="deterministic"`
    metrics (steps to cut-off with fixed seeds, tokens, FLOPs) are compared with a plain tolerance.
    """

    name: str  # e.g. "energy_j", "finetune.energy_j", "inference.j_per_example"
    unit: str  # "J", "s", "steps", "tokens", "FLOP", "J/example", "" (dimensionless) ...
    better: str = Better.LOWER
    kind: str = Kind.MEASURED
    samples: list[float] = field(default_factory=list)
    method: str | None = None  # for energy metrics: how the energy was obtained

    def add(self, value: float) -> None:
        self.samples.append(float(value))

    @property
    def mean(self) -> float:
        return math.fsum(self.samples) / len(self.samples) if self.samples else math.nan

    def to_dict(self) -> dict[str, Any]:
        return plain(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Metric:
        return cls(
            name=d["name"],
            unit=d["unit"],
            better=Better(d.get("better", "lower")),
            kind=Kind(d.get("kind", "measured")),
            samples=[float(x) for x in d.get("samples", [])],
            method=d.get("method"),
        )


def _protocol_dict(result: Any) -> dict[str, Any]:
    """A protocol result's to_dict: its fields, which protocol it is, and its one-line summary."""
    d = plain(dataclasses.asdict(result))
    d["protocol"] = result.protocol
    d["summary"] = _summary(result)
    return d


def _summary(result: Any) -> str:
    """A protocol result's summary line; "" for one read back from an older, partial shape (a field it
    prints is None)."""
    try:
        return result.summary()
    except (TypeError, ValueError):
        return ""


# --- protocol results: the data the protocols (pytest_energy.protocols) produce -----------------------------

FINETUNE_PREFIX = "finetune."
INFERENCE_PREFIX = "inference."


@dataclass(frozen=True)
class CurvePoint:
    """One dev evaluation: what HULK's Figure 2 plots (score against time), plus energy."""

    step: int  # optimisation steps done before this evaluation
    train_duration_s: float  # training-only time so far
    train_energy_j: float  # training-only energy so far
    wall_s: float  # wall-clock time since the run started, evaluations included, up to this score
    wall_energy_j: float  # energy since the run started, evaluations included
    score: float


@dataclass
class FinetuneResult:
    """Outcome of one fine-tune-to-cut-off run. Energies are gross; `net_energy_j` when idle was measured."""

    reached: bool
    steps: int  # steps to the cut-off when reached, otherwise steps run
    score: float | None  # last dev score (None when no evaluation ran)
    best_score: float | None
    cutoff: float
    higher_is_better: bool
    evaluations: int
    duration_s: float  # training only
    energy_j: float  # training only
    net_energy_j: float | None  # training only, net of idle power
    eval_duration_s: float
    eval_energy_j: float
    wall_duration_s: float
    wall_energy_j: float
    eval_share: float  # evaluation time / wall time
    tokens: int | None  # tokens processed in training, padding included (None unless every step reported)
    flops: int | None  # flops_per_step x steps, when flops_per_step was given
    method: str
    peak_memory_bytes: int | None
    peak_memory_source: str | None
    curve: list[CurvePoint] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line for a terminal or extra_info; "N/A" when the cut-off was not reached (as HULK prints)."""
        op = ">=" if self.higher_is_better else "<="
        if not self.reached:
            best = "none" if self.best_score is None else f"{self.best_score:.4g}"
            return (f"n/a: dev score never {op} {self.cutoff:g} within {self.steps} steps "
                    f"(best {best}, {self.evaluations} evaluations)")
        return (f"score {self.score:.4g} {op} {self.cutoff:g} after {self.steps} steps: "
                f"training {self.duration_s:.3g} s / {self.energy_j:.4g} J, wall {self.wall_duration_s:.3g} s / "
                f"{self.wall_energy_j:.4g} J, evaluation {self.eval_share:.1%} of wall time [{self.method}]")

    protocol: ClassVar[str] = "finetune"

    def to_dict(self) -> dict[str, Any]:
        return _protocol_dict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FinetuneResult:
        """The inverse of to_dict; a result written before a field existed gets None for it."""
        curve = [CurvePoint(**{k: p.get(k) for k in _field_names(CurvePoint)}) for p in d.get("curve") or ()]
        return _build(cls, d, curve=curve, warnings=list(d.get("warnings") or ()))

    def metrics(self) -> list[Metric]:
        """Metrics for baselines and CI gates, named "finetune.<name>".

        Time, energy, steps, tokens and FLOPs are all "to the cut-off". When it was not reached they are
        omitted, not filled with the figures of a truncated run: a run that stopped at max_steps would
        otherwise look like a (faster or slower) time-to-cut-off. `finetune.reached` (1/0, higher is better)
        is always present, so a baseline that reached and a run that did not are compared and flagged.

        `finetune.score` is "deterministic": with fixed seeds it depends on data and code, not on timing
        noise, and differences from non-deterministic kernels are small, so a plain tolerance fits it.
        """
        out = [Metric(FINETUNE_PREFIX + "reached", "1", "higher", "deterministic", [1.0 if self.reached else 0.0])]
        if self.score is not None:
            out.append(Metric(FINETUNE_PREFIX + "score", "1", "higher" if self.higher_is_better else "lower",
                              "deterministic", [self.score]))
        if not self.reached:
            return out
        m = self.method
        out += [
            Metric(FINETUNE_PREFIX + "duration_s", "s", "lower", "measured", [self.duration_s]),
            Metric(FINETUNE_PREFIX + "energy_j", "J", "lower", "measured", [self.energy_j], m),
            Metric(FINETUNE_PREFIX + "eval_duration_s", "s", "lower", "measured", [self.eval_duration_s]),
            Metric(FINETUNE_PREFIX + "eval_energy_j", "J", "lower", "measured", [self.eval_energy_j], m),
            Metric(FINETUNE_PREFIX + "wall_duration_s", "s", "lower", "measured", [self.wall_duration_s]),
            Metric(FINETUNE_PREFIX + "wall_energy_j", "J", "lower", "measured", [self.wall_energy_j], m),
            Metric(FINETUNE_PREFIX + "steps_to_cutoff", "steps", "lower", "deterministic", [float(self.steps)]),
        ]
        if self.net_energy_j is not None:
            out.append(Metric(FINETUNE_PREFIX + "net_energy_j", "J", "lower", "measured", [self.net_energy_j], m))
        if self.tokens is not None:
            out.append(Metric(FINETUNE_PREFIX + "tokens", "tokens", "lower", "deterministic", [float(self.tokens)]))
        if self.flops is not None:
            out.append(Metric(FINETUNE_PREFIX + "flops", "FLOP", "lower", "deterministic", [float(self.flops)]))
        if self.peak_memory_bytes is not None:
            out.append(Metric(FINETUNE_PREFIX + "peak_memory_bytes", "B", "lower", "measured",
                              [float(self.peak_memory_bytes)]))
        return out



# The measured figures of one pass, as InferenceResult fields; each pass contributes one sample of each.
# With gate_tails, a latency quantile becomes a metric only with this many batch latencies beyond it per
# pass (p90: 100 batches, p99: 1,000): see InferenceResult.gated_tails.
MIN_TAIL_BATCHES = 10

PASS_FIGURES = ("duration_s", "energy_j", "j_per_example", "ms_per_example_mean", "ms_per_example_p50",
                "ms_per_example_p90", "ms_per_example_p99", "examples_per_s")


@dataclass
class InferenceResult:
    """Figures of the inference protocol. With several passes (`rounds`), every figure is the mean over the
    passes and `samples` keeps each pass's value of the measured ones."""

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
    accuracy: float | None = None  # when labels were given: share of predictions equal to their label
    correct: int | None = None
    # The task's quality figure and its name: accuracy, or what `score=` computed (e.g. entity F1 for NER,
    # where "equal to the label" would mean a whole sentence tagged right).
    score: float | None = None
    score_name: str | None = None
    j_per_correct: float | None = None  # None also when nothing was correct (the figure would be infinite)
    tokens: int | None = None  # when every batch reported tokens through PredictOutput
    j_per_token: float | None = None
    warnings: list[str] = field(default_factory=list)
    rounds: int = 1
    gate_tails: bool = False  # p90/p99 as metrics (baselines, gate): opt-in, see gated_tails
    samples: dict[str, list[float]] = field(default_factory=dict)  # per pass: PASS_FIGURES and the J/ ratios

    def summary(self) -> str:
        acc = "" if self.score is None else f", {self.score_name} {self.score:.4g}"
        return (f"{self.examples} examples at batch {self.batch_size}: {self.j_per_example:.4g} J/example, "
                f"{self.ms_per_example_mean:.3g} ms/example (p50 {self.ms_per_example_p50:.3g}, "
                f"p99 {self.ms_per_example_p99:.3g}){acc} [{self.method}]")

    protocol: ClassVar[str] = "inference"

    def to_dict(self) -> dict[str, Any]:
        return _protocol_dict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> InferenceResult:
        """The inverse of to_dict; a result written before a field existed gets its default (or None)."""
        samples = {str(k): [float(x) for x in v] for k, v in (d.get("samples") or {}).items()}
        return _build(cls, d, samples=samples, warnings=list(d.get("warnings") or ()))

    def gated_tails(self) -> list[str]:
        """The latency quantiles (p90, p99) that are metrics: none unless `gate_tails`, and then those with at
        least MIN_TAIL_BATCHES latencies beyond them in each pass.

        Opt-in because a tail measures the runner as much as the code: on the shared 2-core VM, unchanged
        code moved the p99 of 200 batches +92.7 % (one descheduled batch; it is the second-largest
        latency) and the p90 of 200 batches +25.5 % (a burst of interference), each failing the history
        gate at p < 0.001, while mean latency, time and energy passed. A dedicated runner serving a latency
        target opts in. Fewer than MIN_TAIL_BATCHES beyond it, a quantile is one or two order statistics
        and is never gated (MLPerf sizes its runs by the same logic). Every quantile stays in the tables
        and the JSON."""
        if not self.gate_tails:
            return []
        return [f"ms_per_example_p{q}" for q in (90, 99) if self.batches * (100 - q) / 100 >= MIN_TAIL_BATCHES]

    def _samples(self, name: str) -> list[float]:
        values = self.samples.get(name)
        return list(values) if values else [float(getattr(self, name))]

    def metrics(self) -> list[Metric]:
        """Metrics named "inference.<name>", one sample per pass; accuracy and tokens are deterministic
        (fixed model and data), the rest measured."""
        PREFIX = INFERENCE_PREFIX
        m = self.method
        out = [
            # The whole metered loop, so reports list inference tests beside every other benchmark.
            Metric(PREFIX + "duration_s", "s", "lower", "measured", self._samples("duration_s")),
            Metric(PREFIX + "energy_j", "J", "lower", "measured", self._samples("energy_j"), m),
            Metric(PREFIX + "j_per_example", "J/example", "lower", "measured", self._samples("j_per_example"), m),
            Metric(PREFIX + "ms_per_example", "ms", "lower", "measured", self._samples("ms_per_example_mean")),
            Metric(PREFIX + "ms_per_example_p50", "ms", "lower", "measured", self._samples("ms_per_example_p50")),
            *(Metric(PREFIX + name, "ms", "lower", "measured", self._samples(name)) for name in self.gated_tails()),
            Metric(PREFIX + "examples_per_s", "example/s", "higher", "measured", self._samples("examples_per_s")),
        ]
        if self.peak_memory_bytes is not None:
            out.append(Metric(PREFIX + "peak_memory_bytes", "B", "lower", "measured",
                              self._samples("peak_memory_bytes")))
        if self.accuracy is not None:
            out.append(Metric(PREFIX + "accuracy", "1", "higher", "deterministic", [self.accuracy]))
        if self.score is not None and self.score_name != "accuracy":
            out.append(Metric(PREFIX + score_metric_key(self.score_name or "score"), "1", "higher", "deterministic",
                              [self.score]))
        if self.j_per_correct is not None:
            out.append(Metric(PREFIX + "j_per_correct", "J/correct", "lower", "measured",
                              self._samples("j_per_correct"), m))
        if self.tokens is not None:
            out.append(Metric(PREFIX + "tokens", "tokens", "lower", "deterministic", [float(self.tokens)]))
        if self.j_per_token is not None:
            out.append(Metric(PREFIX + "j_per_token", "J/token", "lower", "measured", self._samples("j_per_token"), m))
        return out






def score_metric_key(name: str) -> str:
    """'entity F1' -> 'entity_f1': the metric name of a score."""
    import re  # only here: the rest of the module needs no regular expressions

    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") or "score"


# A test's protocol calls, in call order.
ProtocolResult = Union[FinetuneResult, InferenceResult]
PROTOCOL_TYPES: dict[str, type] = {"finetune": FinetuneResult, "inference": InferenceResult}


def protocol_from_dict(d: Mapping[str, Any] | ProtocolResult) -> ProtocolResult:
    """A protocol result from its dict (the `protocol` key says which); a typed one is returned as it is."""
    if isinstance(d, (FinetuneResult, InferenceResult)):
        return d
    if not isinstance(d, Mapping):
        raise ValueError(f"a protocol result must be an object, got {type(d).__name__}")
    kind = PROTOCOL_TYPES.get(str(d.get("protocol")))
    if kind is None:
        raise ValueError(f"unknown protocol {d.get('protocol')!r}: known are {', '.join(PROTOCOL_TYPES)}")
    return kind.from_dict(d)

# Benchmarks store their SweepPoint dict under this extra_info key; the HTML report collects them.
SWEEP_POINT_KEY = "sweep_point"
SWEEP_BASE_KEY = "sweep_base"  # extra_info key of the base configuration every axis passes through


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
        return plain(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SweepPoint:
        """The inverse of to_dict; unknown keys (from a newer version) are ignored, missing ones get their
        default (settings: none recorded)."""
        return _build(cls, d, settings=dict(d.get("settings") or {}))




@dataclass
class TestRecord:
    """Everything one energy benchmark produced. Serialisable, so it can ride on an xdist report."""

    __test__ = False  # not a pytest test class, despite the name

    nodeid: str  # pytest node id, e.g. "benchmarks/test_infer.py::test_sst2[fp16]"
    name: str  # test name with params, e.g. "test_sst2[fp16]"
    group: str | None = None
    params: dict[str, Any] | None = None
    metrics: dict[str, Metric] = field(default_factory=dict)
    windows: list[Window] = field(default_factory=list)
    extra_info: dict[str, Any] = field(default_factory=dict)
    # Protocol results (FinetuneResult, InferenceResult), in call order.
    protocols: list[ProtocolResult] = field(default_factory=list)
    # Wall seconds of the calibration probe (pytest_energy.measure.probe) taken around this test's rounds: the gate
    # divides wall-clock metrics by their geometric mean. Empty when the session does not probe.
    probe_s: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        # Results given as dicts (the shape TestRecord held before they were typed) become typed here.
        self.protocols = [protocol_from_dict(p) for p in self.protocols]

    def metric(self, name: str, unit: str, *, better: str = Better.LOWER, kind: str = Kind.MEASURED,
               method: str | None = None) -> Metric:
        """Get or create the metric `name`; samples from repeated calls accumulate."""
        m = self.metrics.get(name)
        if m is None:
            m = self.metrics[name] = Metric(name, unit, Better(better), Kind(kind), [], method)
        return m

    def make_jsonable(self) -> list[str]:
        """Convert extra_info in place to what JSON and pytest-xdist carry; returns a note per conversion."""
        notes: list[str] = []
        self.extra_info = jsonable(self.extra_info, "extra_info", notes)
        return notes

    def to_dict(self) -> dict[str, Any]:
        return {
            "nodeid": self.nodeid, "name": self.name, "group": self.group, "params": plain(self.params),
            "metrics": {k: m.to_dict() for k, m in self.metrics.items()},
            "windows": [w.to_dict() for w in self.windows],
            "extra_info": plain(self.extra_info), "protocols": [p.to_dict() for p in self.protocols],
            "probe_s": list(self.probe_s),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TestRecord:
        return cls(
            nodeid=d["nodeid"], name=d["name"], group=d.get("group"), params=d.get("params"),
            metrics={k: Metric.from_dict(m) for k, m in d.get("metrics", {}).items()},
            windows=[Window.from_dict(w) for w in d.get("windows", [])],
            extra_info=d.get("extra_info") or {},
            protocols=[protocol_from_dict(p) for p in d.get("protocols") or ()],
            probe_s=[float(x) for x in d.get("probe_s", [])],
        )


# --- the gate's decision (built by pytest_energy.gate) -------------------------------------------------------

class RuleKind(_StrEnum):
    """Which rule decided a verdict: what code decides on. `Verdict.rule` is the text reports show."""

    WITHIN_RUN = "within-run"  # this run's rounds against the latest saved run's (Welch)
    HISTORY = "history"  # this run against the spread of the saved runs' means (gate/history.py)
    DETERMINISTIC = "deterministic"  # exact value with a plain tolerance
    NONE = "none"  # not compared (no baseline, no samples, another unit)
    AB = "a/b"  # head against a base revision measured alternately in this job (gate/sequential.py)

    @classmethod
    def from_text(cls, rule: str) -> RuleKind:
        """The kind a display text names: for verdicts written before the kind was stored."""
        rule = str(rule or "")
        if rule.startswith(cls.HISTORY.value):  # "history: 5 runs, probe-normalised, pooled"
            return cls.HISTORY
        if rule.startswith(RULE_TEXT[cls.AB]):  # "A/B against 1a2b3c4 in this job, 6 pairs: ratio 1.31 [...]"
            return cls.AB
        return {RULE_TEXT[k]: k for k in (cls.DETERMINISTIC, cls.NONE)}.get(rule, cls.WITHIN_RUN)


# The display text of each kind (the history rule's text also says how many runs: gate/history.py).
RULE_TEXT = {RuleKind.WITHIN_RUN: "within-run Welch", RuleKind.DETERMINISTIC: "exact value",
             RuleKind.NONE: "not compared", RuleKind.HISTORY: "history", RuleKind.AB: "A/B"}


def is_decisive(verdict: str, metric: str) -> bool:
    """What every report shows first: what fails or improves, and each test's time and energy.
    A protocol test has a dozen metrics that move together; the rest is folded away."""
    return verdict in (VerdictKind.REGRESSION, VerdictKind.IMPROVED) or \
        str(metric).rsplit(".", 1)[-1] in ("energy_j", "duration_s")


@dataclass(frozen=True)
class Rerun:
    """One re-run of a suspected metric (issue 16), judged by the same rule against the same history as the run
    that raised the suspicion: its value (metric units), change against the same expected value (signed percent)
    and one-sided p. None where the re-run could not be judged (the metric was missing from it)."""

    current_value: float | None
    change_pct: float | None
    p_value: float | None

    @classmethod
    def of(cls, v: Verdict | None) -> Rerun:
        return cls(None, None, None) if v is None else cls(v.current_value, v.change_pct, v.p_value)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Rerun:
        return _build(cls, d)


@dataclass(frozen=True)
class Verdict:
    """The outcome of comparing one metric with its baseline."""

    metric: str
    unit: str
    kind: Kind
    better: Better
    verdict: VerdictKind
    baseline_value: float | None  # the statistic compared: mean of the samples; None when not compared
    current_value: float
    change_pct: float | None  # signed, (current - baseline) / |baseline| * 100; None when not compared
    p_value: float | None  # one-sided p for the direction of the change; None for deterministic metrics
    tolerance: float  # fraction
    n_baseline: int
    n_current: int
    hint: str = ""
    rule: str = RULE_TEXT[RuleKind.WITHIN_RUN]  # display text, e.g. "history: 5 runs, pooled"
    # History rule: the current value beyond which this metric is a REGRESSION (metric units); None otherwise.
    limit: float | None = None
    rule_kind: RuleKind = RuleKind.WITHIN_RUN  # which rule decided: what code decides on, never `rule`
    # A second look in the same job (issue 16). confirmation: how the history rule's REGRESSION was re-checked
    # by re-running the test ("confirmed by 2 re-runs: +31 %, +28 %, +33 %" / "not confirmed: a transient ..." /
    # "not confirmed, inconclusive: ..." when every re-run kept most of the change without being significant).
    confirmation: str = ""
    # The re-runs behind `confirmation`, in order: what dashboards read instead of parsing the text.
    reruns: tuple[Rerun, ...] = ()
    # screen: what the history screen said before an A/B decided ("history: INCONCLUSIVE +12 %").
    screen: str = ""
    # A/B: the (base, head) value of each pair in measurement order, and the ratio's interval at the look that
    # decided (head/base; None before a decision could be taken).
    pairs: tuple[tuple[float, float], ...] = ()
    ratio_interval: tuple[float, float] | None = None

    @property
    def decisive(self) -> bool:
        return is_decisive(self.verdict, self.metric)

    @property
    def worse_beyond_tolerance(self) -> bool:
        """The change is beyond the tolerance in the worse direction, significant or not, on the scale the rule
        judged it: the history rule compares positive values on a log scale (gate/history.py), so there a
        higher-better metric is beyond an 8 % tolerance once it drops by 7.4 % (1/1.08); the within-run rule, and
        the history rule on values that are not all positive, compare the linear change."""
        if self.change_pct is None:
            return False
        sign = 1.0 if self.better == Better.LOWER else -1.0
        positive = (self.baseline_value is not None and self.baseline_value > 0 and self.current_value > 0
                    and self.change_pct > -100.0)
        if self.rule_kind == RuleKind.HISTORY and positive:
            return sign * math.log1p(self.change_pct / 100.0) > math.log1p(self.tolerance)
        return sign * self.change_pct > self.tolerance * 100.0

    @property
    def by_history(self) -> bool:
        return self.rule_kind == RuleKind.HISTORY

    @property
    def by_ab(self) -> bool:
        return self.rule_kind == RuleKind.AB

    def to_dict(self) -> dict[str, Any]:
        d = plain(dataclasses.asdict(self))
        # Only what a second look added: a verdict without one keeps the shape older readers know.
        for key in ("confirmation", "screen", "pairs", "reruns"):
            if not d[key]:
                del d[key]
        if d["ratio_interval"] is None:
            del d["ratio_interval"]
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Verdict:
        kind = d.get("rule_kind")
        interval = d.get("ratio_interval")
        return _build(cls, d, kind=Kind(d["kind"]), better=Better(d["better"]), verdict=VerdictKind(d["verdict"]),
                      hint=d.get("hint") or "", rule=str(d.get("rule", RULE_TEXT[RuleKind.WITHIN_RUN])),
                      rule_kind=RuleKind(kind) if kind is not None else RuleKind.from_text(d.get("rule", "")),
                      confirmation=str(d.get("confirmation") or ""), screen=str(d.get("screen") or ""),
                      pairs=tuple((float(b), float(h)) for b, h in d.get("pairs") or ()),
                      reruns=tuple(Rerun.from_dict(r) for r in d.get("reruns") or ()),
                      ratio_interval=(float(interval[0]), float(interval[1])) if interval else None)


@dataclass(frozen=True)
class Recheck:
    """A second look at a suspected test in the same job (issue 16): re-runs of the test (`how` "confirm",
    --energy-confirm) or an A/B against a base revision (`how` "a/b", --energy-against).

    text: one line for every report ("confirmed by 2 re-runs", "A/B against 1a2b3c4: 6 pairs, SAME", "no base
    to compare: ..."); cost_s: the wall seconds this test's share of the second look took; runs: re-runs, or
    pairs measured; base_ref: the base's short sha; orders: per A/B pair, "AB" (base first) or "BA"; no_base:
    why no base could be measured ("" when one was). A test with no_base is neither passed nor failed by A/B.
    """

    how: str
    text: str
    cost_s: float = 0.0
    runs: int = 0
    base_ref: str = ""
    orders: tuple[str, ...] = ()
    no_base: str = ""

    def to_dict(self) -> dict[str, Any]:
        return plain(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Recheck:
        return _build(cls, d, orders=tuple(str(o) for o in d.get("orders") or ()))


@dataclass
class Outcome:
    """What the gate decided for one test."""

    verdicts: list[Verdict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # no baseline, machine mismatch, ...
    baseline_file: str = ""  # where the baseline lives (as the user would type the path)
    failure: str | None = None  # why the test fails when it is not a regression (e.g. a missing baseline)
    gating: bool = True  # False while saving a baseline: regressions are shown, not failed
    strict: bool = False  # --energy-fail-on-inconclusive: INCONCLUSIVE fails too
    recheck: Recheck | None = None  # the second look in this job, when the test was suspected (issue 16)

    @property
    def regressions(self) -> list[Verdict]:
        return [v for v in self.verdicts if v.verdict == VerdictKind.REGRESSION]

    @property
    def inconclusive(self) -> list[Verdict]:
        return [v for v in self.verdicts if v.verdict == VerdictKind.INCONCLUSIVE]

    @property
    def failing(self) -> list[Verdict]:
        """The verdicts that fail the test: regressions, and INCONCLUSIVE ones under a strict gate."""
        if not self.gating:
            return []
        return [v for v in self.verdicts if v.verdict == VerdictKind.REGRESSION
                or (self.strict and v.verdict == VerdictKind.INCONCLUSIVE)]

    @property
    def failed(self) -> bool:
        return self.failure is not None or bool(self.failing)

    def to_dict(self) -> dict[str, Any]:
        d = {"verdicts": [v.to_dict() for v in self.verdicts], "notes": list(self.notes),
             "baseline_file": self.baseline_file, "failure": self.failure, "gating": self.gating,
             "strict": self.strict}
        if self.recheck is not None:
            d["recheck"] = self.recheck.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Outcome:
        recheck = d.get("recheck")
        return cls(verdicts=[Verdict.from_dict(v) for v in d.get("verdicts") or ()], notes=list(d.get("notes") or ()),
                   baseline_file=d.get("baseline_file") or "", failure=d.get("failure"),
                   gating=d.get("gating", True), strict=d.get("strict", False),
                   recheck=Recheck.from_dict(recheck) if recheck else None)


# --- a finished benchmark and a finished run ------------------------------------------------------------------

@dataclass(frozen=True)
class StoredSettings:
    """A benchmark's settings as they were serialised (TestSettings.to_dict(), or a JSON report's `options`),
    read back without importing config: fields read as attributes (`rounds`, `warmup`, `reference`, ...)."""

    values: dict[str, Any] = field(default_factory=dict)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name == "values":  # copy and pickle probe dunders before __init__ ran
            raise AttributeError(name)
        try:
            return self.values[name]
        except KeyError:
            raise AttributeError(f"these settings have no {name!r}") from None

    def to_dict(self) -> dict[str, Any]:
        return plain(dict(self.values))


@dataclass(frozen=True)
class BaselineSamples:
    """The samples of the baseline a benchmark was compared with, for its primary series (what the charts
    draw): as a JSON report keeps them (`energy.baseline`); None where that quantity had none."""

    datetime: str
    duration_s: list[float] | None = None
    energy_j: list[float] | None = None

    def to_dict(self) -> dict[str, Any]:
        return plain(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> BaselineSamples:
        return _build(cls, d)


@dataclass
class BenchmarkResult:
    """One finished energy benchmark as the controller holds it."""

    record: TestRecord
    # config.TestSettings in the process that measured it, StoredSettings once serialised. Typed as Any: the run
    # model sits below config and never imports it (tests/test_layers.py).
    settings: Any
    outcome: Outcome | None = None  # None: not judged (the test body failed)
    # Wall time of the test call as pytest timed it: the JSON report's `stats` for a test that has no time
    # series of its own (only record_metric figures), so no benchmark is written without stats.
    call_duration_s: float | None = None
    # The fingerprint of the process that measured it (an xdist worker sees only its own GPUs): what it
    # was judged with and what its baseline is saved with. None: the session's own.
    machine: dict[str, Any] | None = None
    # Where it ran: xdist worker and GPUs, or the torchrun ranks; None for a plain run.
    placement: dict[str, Any] | None = None
    # Read back from a JSON report (RunResult.from_report): the benchmark's entry as written, so a report
    # built from it (merge) writes it back unchanged. Never serialised.
    reported: dict[str, Any] | None = field(default=None, repr=False, compare=False)
    # Read back from a JSON report: the samples of the baseline it was compared with (a session's run has the
    # baseline entries themselves, RunResult.baselines). Never serialised.
    baseline: BaselineSamples | None = field(default=None, compare=False)

    @property
    def shared(self) -> list[str]:
        """Metered devices other workers were using at the same time (their load is in the figures)."""
        return list((self.placement or {}).get("shared", []))

    def to_dict(self) -> dict[str, Any]:
        return {"schema": SCHEMA_VERSION, "record": self.record.to_dict(), "settings": self.settings.to_dict(),
                "outcome": self.outcome.to_dict() if self.outcome is not None else None,
                "call_duration_s": self.call_duration_s, "machine": plain(self.machine),
                "placement": plain(self.placement)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], settings_type: Any = None) -> BenchmarkResult:
        """`settings_type` (e.g. config.TestSettings) rebuilds the settings with its `from_dict`; without it
        they come back as StoredSettings, which is all a report reads."""
        check_schema(d, "benchmark result")
        settings = d.get("settings") or {}
        outcome = d.get("outcome")
        return cls(TestRecord.from_dict(d["record"]),
                   settings_type.from_dict(settings) if settings_type is not None else StoredSettings(dict(settings)),
                   Outcome.from_dict(outcome) if outcome is not None else None, d.get("call_duration_s"),
                   d.get("machine"), d.get("placement"))


@dataclass(frozen=True)
class MeterInfo:
    """What the reports say about the meter: a snapshot, so no report ever reads the meter."""

    name: str
    devices: tuple[DeviceInfo, ...]
    fallback_reasons: tuple[str, ...] = ()
    idle_power_w: dict[str, float] | None = None
    idle_measured_s: float | None = None

    @property
    def estimated(self) -> bool:
        return any(is_estimate(d.method) for d in self.devices)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "devices": [d.to_dict() for d in self.devices],
                "fallback_reasons": list(self.fallback_reasons), "idle_power_w": plain(self.idle_power_w),
                "idle_measured_s": self.idle_measured_s}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> MeterInfo:
        return cls(str(d["name"]), tuple(DeviceInfo.from_dict(x) for x in d.get("devices") or ()),
                   tuple(d.get("fallback_reasons") or ()), d.get("idle_power_w"), d.get("idle_measured_s"))


@dataclass
class HulkReference:
    """The stored HULK reference a run was scored against (analysis/hulk_store.py), as the reports show it."""

    path: str  # the reference file, as the user would type it
    note: str = ""  # why there is no entry for this machine class
    entry: dict[str, Any] | None = None  # the matching MachineReference.to_dict(); None: none matched
    saved: list[str] | None = None  # with --energy-save-reference: what was not stored, and why; None: not saving

    def to_dict(self) -> dict[str, Any]:
        d = {"path": self.path, "note": self.note, "entry": plain(self.entry)}
        if self.saved is not None:  # the JSON report has `saved` only when the run stored the reference
            d["saved"] = list(self.saved)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> HulkReference:
        saved = d.get("saved")
        return cls(str(d.get("path") or ""), str(d.get("note") or ""), d.get("entry"),
                   list(saved) if saved is not None else None)


@dataclass
class RunResult:
    """Everything the reports need about a finished run."""

    meter: MeterInfo
    # config.SessionConfig (the layer above, never imported here); None when read back from a JSON report
    # (RunResult.from_report).
    config: Any
    benchmarks: list[BenchmarkResult]
    machine_info: dict[str, Any] = field(default_factory=dict)
    commit_info: dict[str, Any] = field(default_factory=dict)
    datetime: str = ""
    session_info: dict[str, Any] = field(default_factory=dict)  # the JSON report's `energy` block
    # nodeid -> the gate.baselines.BaselineEntry each benchmark was compared with (as it was before this run
    # saved any). Not serialised: the JSON report keeps each one's samples under `energy.baseline`.
    baselines: dict[str, Any] = field(default_factory=dict)
    written: list[str] = field(default_factory=list)  # files written at the end
    errors: list[str] = field(default_factory=list)  # what could not be written, and why
    baseline_notes: list[str] = field(default_factory=list)  # how a save changed the run histories
    # What the reporters say of their own output (e.g. the metrics a dashboard export left out, and why); in one
    # process only.
    report_notes: list[str] = field(default_factory=list)
    # The stored HULK reference this run was scored against; None when the run did not look for one.
    hulk_reference: HulkReference | None = None
    # What the report layer builds `session_info` and `baseline_notes` from (report.outputs.complete_run); in
    # one process only, not serialised (the JSON report carries them inside `session_info`).
    device_state_start: dict[str, Any] | None = None  # temperatures and clocks at the first benchmark
    device_state_end: dict[str, Any] | None = None  # ... and at the end
    exitstatus: int | None = None  # pytest's, so far: `merge` reads whether a shard failed
    tests_failed: int | None = None
    placement: dict[str, Any] | None = None  # where this process ran (the xdist split, the torchrun ranks)
    saved: Any = None  # gate.store.SavedRun: how --energy-save-baseline changed the run histories
    unsaved_shared: list[str] = field(default_factory=list)  # results measured on shared devices, not saved
    # The base revision (short sha) an armed --energy-against A/B would measure against; None when no A/B was
    # armed (not asked, a save, torchrun, an A/B child). Lets the reports say an unflagged run measured nothing.
    ab_base: str | None = None

    @property
    def records(self) -> list[TestRecord]:
        return [b.record for b in self.benchmarks]

    @property
    def commit_id(self) -> str | None:
        return self.commit_info.get("id")

    @property
    def exit_status(self) -> int | None:
        """pytest's exit status of the run (as far as it was known when the reports were written)."""
        return self.session_info.get("exitstatus")

    @property
    def saved_baseline(self) -> bool:
        """Whether the run saved baselines (--energy-save-baseline): its verdicts were shown, not gated."""
        return bool(self.session_info.get("save_baseline", False))

    def to_dict(self) -> dict[str, Any]:
        """The run as data, without the session's config and the baseline entries (see their fields)."""
        return {"schema": SCHEMA_VERSION, "meter": self.meter.to_dict(),
                "benchmarks": [b.to_dict() for b in self.benchmarks], "machine_info": plain(self.machine_info),
                "commit_info": plain(self.commit_info), "datetime": self.datetime,
                "session_info": plain(self.session_info), "written": list(self.written),
                "errors": list(self.errors), "baseline_notes": list(self.baseline_notes),
                "hulk_reference": self.hulk_reference.to_dict() if self.hulk_reference is not None else None}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RunResult:
        check_schema(d, "run result")
        reference = d.get("hulk_reference")
        return cls(MeterInfo.from_dict(d["meter"]), None, [BenchmarkResult.from_dict(b) for b in d["benchmarks"]],
                   dict(d.get("machine_info") or {}), dict(d.get("commit_info") or {}), str(d.get("datetime") or ""),
                   dict(d.get("session_info") or {}), written=list(d.get("written") or ()),
                   errors=list(d.get("errors") or ()), baseline_notes=list(d.get("baseline_notes") or ()),
                   hulk_reference=HulkReference.from_dict(reference) if reference is not None else None)

    @classmethod
    def from_report(cls, doc: Mapping[str, Any]) -> RunResult:
        """A run read back from its --energy-json report (pytest-benchmark's layout with `energy` blocks),
        of this version or an earlier one. ValueError (with what is wrong) when it is not one.

        What the report does not keep is absent: windows (their figures are in each entry's `energy`
        block, kept whole in `BenchmarkResult.reported`), outcome notes, the session's config."""
        if not isinstance(doc, Mapping) or not isinstance(doc.get("benchmarks"), list):
            raise ValueError("not a pytest-energy JSON report (no 'benchmarks' list); write it with --energy-json")
        session = doc.get("energy")
        if not isinstance(session, Mapping):
            raise ValueError("has no 'energy' block: a pytest-benchmark report, not pytest-energy's")
        check_schema(session, "JSON report")
        gating = not session.get("save_baseline", False)
        benchmarks = [_benchmark_from_report(i, bench, gating) for i, bench in enumerate(doc["benchmarks"])]
        meter = MeterInfo(str(session.get("meter") or "unknown"),
                          tuple(DeviceInfo.from_dict(x) for x in session.get("devices") or ()),
                          tuple(session.get("fallback_reasons") or ()), session.get("idle_power_w"),
                          session.get("idle_measured_s"))
        hulk = doc.get("hulk") if isinstance(doc.get("hulk"), Mapping) else {}
        reference = hulk.get("reference")
        return cls(meter, None, benchmarks, dict(doc.get("machine_info") or {}), dict(doc.get("commit_info") or {}),
                   str(doc.get("datetime") or ""), dict(session),
                   hulk_reference=HulkReference.from_dict(reference) if isinstance(reference, Mapping) else None,
                   ab_base=session.get("ab_base") if isinstance(session.get("ab_base"), str) else None)


def _benchmark_from_report(i: int, bench: Any, gating: bool) -> BenchmarkResult:
    """One entry of a JSON report's `benchmarks` as a BenchmarkResult (RunResult.from_report)."""
    if not (isinstance(bench, Mapping) and isinstance(bench.get("fullname"), str)
            and isinstance(bench.get("energy"), Mapping) and isinstance(bench["energy"].get("metrics"), Mapping)):
        raise ValueError(f"benchmark {i} lacks 'fullname' or its 'energy' metrics")
    energy = bench["energy"]
    name = bench["fullname"]
    try:
        record = TestRecord(
            nodeid=name, name=str(bench.get("name") or name), group=bench.get("group"), params=bench.get("params"),
            metrics={k: Metric.from_dict(m) for k, m in energy["metrics"].items()},
            extra_info=dict(bench.get("extra_info") or {}),
            protocols=[protocol_from_dict(p) for p in energy.get("protocols") or ()])
        comparison = energy.get("comparison")
        recheck = energy.get("recheck")
        outcome = (Outcome([Verdict.from_dict(v) for v in comparison], gating=gating,
                           recheck=Recheck.from_dict(recheck) if isinstance(recheck, Mapping) else None)
                   if comparison is not None else None)
        stats = bench.get("stats") if isinstance(bench.get("stats"), Mapping) else {}
        # A test without a time series of its own: its `stats` are the test call's wall time (report/json.py).
        call_s = (stats.get("data") or [None])[0] if energy.get("series") == "test call" else None
        block = energy.get("baseline")
        baseline = (BaselineSamples(str(block.get("datetime") or ""),
                                    *((block.get(k) or {}).get("samples") for k in ("duration_s", "energy_j")))
                    if isinstance(block, Mapping) else None)
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{name}: cannot be read back: {exc!r}") from None
    return BenchmarkResult(record, StoredSettings(dict(bench.get("options") or {})), outcome, call_s,
                           machine=energy.get("machine"), placement=energy.get("placement"), reported=dict(bench),
                           baseline=baseline)
