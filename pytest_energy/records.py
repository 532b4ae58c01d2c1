"""The data model every layer shares: how a figure was obtained, windows, metrics, a test's record.

Nothing here imports pytest or any heavy library. Every numeric field carries its unit in its name.
Enums are `str` subclasses so they compare equal to, and serialise as, their values; `to_dict()` turns
them into plain `str` because pytest-xdist's channel (execnet) sends builtin types only.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any


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
    """A finite int or float, not a bool: the one check every layer uses on numbers read from files or users."""
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


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


@dataclass(frozen=True)
class DeviceEnergy:
    """Energy of one metered device over one window."""

    device: str  # e.g. "gpu0", "cpu-package-0", "cpu-dram-0", "cpu-estimate"
    energy_j: float
    method: str  # a Method value
    name: str = ""  # human name, e.g. "NVIDIA H100 80GB HBM3"


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
        d["devices"] = tuple(DeviceEnergy(**dev) for dev in d.get("devices", ()))
        return cls(**d)


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
    # Protocol results (finetune/inference) as plain dicts, for the JSON and HTML reports.
    protocols: list[dict[str, Any]] = field(default_factory=list)
    # Wall seconds of the calibration probe (pytest_energy.measure.probe) taken around this test's rounds: the gate
    # divides wall-clock metrics by their geometric mean. Empty when the session does not probe.
    probe_s: list[float] = field(default_factory=list)

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
            "extra_info": plain(self.extra_info), "protocols": plain(self.protocols),
            "probe_s": list(self.probe_s),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TestRecord:
        return cls(
            nodeid=d["nodeid"], name=d["name"], group=d.get("group"), params=d.get("params"),
            metrics={k: Metric.from_dict(m) for k, m in d.get("metrics", {}).items()},
            windows=[Window.from_dict(w) for w in d.get("windows", [])],
            extra_info=d.get("extra_info", {}), protocols=d.get("protocols", []),
            probe_s=[float(x) for x in d.get("probe_s", [])],
        )
