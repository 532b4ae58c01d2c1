"""Plain data records shared by the core, the protocols, the baselines and the reports.

Nothing here imports pytest or any heavy library. Every numeric field carries its unit in its name.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Literal

# How a figure was obtained. Every energy number in a report carries one of these.
METHOD_NVML_COUNTER = "nvml-counter"  # nvmlDeviceGetTotalEnergyConsumption (mJ), Volta and newer
METHOD_NVML_POLLING = "nvml-polling"  # nvmlDeviceGetPowerUsage (mW) polled, trapezoid-integrated
METHOD_RAPL = "rapl"  # /sys/class/powercap energy_uj counters
METHOD_ESTIMATE = "estimate"  # process CPU time x configured watts per core: NOT a measurement
METHODS = (METHOD_NVML_COUNTER, METHOD_NVML_POLLING, METHOD_RAPL, METHOD_ESTIMATE)


def combine_methods(methods: list[str] | tuple[str, ...]) -> str:
    """One label for a set of per-device methods: 'rapl', or 'nvml-counter+rapl' when mixed."""
    uniq = sorted(set(methods))
    return "+".join(uniq) if uniq else "none"


@dataclass(frozen=True)
class DeviceEnergy:
    """Energy of one metered device over one window."""

    device: str  # e.g. "gpu0", "cpu-package-0", "cpu-dram-0", "cpu-estimate"
    energy_j: float
    method: str  # one of METHODS
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
    method: str = "none"
    idle_power_w: float | None = None
    net_energy_j: float | None = None
    peak_memory_bytes: int | None = None
    peak_memory_source: str | None = None  # "torch.cuda.max_memory_allocated" | "rss-hwm" | "rss-lifetime"
    warnings: list[str] = field(default_factory=list)
    closed: bool = False

    @property
    def power_w(self) -> float:
        """Average power over the window, watts."""
        if not self.closed or self.duration_s <= 0:
            return math.nan
        return self.energy_j / self.duration_s

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["power_w"] = self.power_w
        return d


Better = Literal["lower", "higher"]
Kind = Literal["measured", "deterministic"]


@dataclass
class Metric:
    """A named quantity a benchmark produced, with every sample kept.

    `kind="measured"` metrics (time, energy) are noisy and compared with statistics; `kind="deterministic"`
    metrics (steps to cut-off with fixed seeds, tokens, FLOPs) are compared with a plain tolerance.
    """

    name: str  # e.g. "energy_j", "finetune.energy_to_cutoff_j", "inference.j_per_example"
    unit: str  # "J", "s", "steps", "tokens", "FLOP", "J/example", "1" (dimensionless) ...
    better: Better = "lower"
    kind: Kind = "measured"
    samples: list[float] = field(default_factory=list)
    method: str | None = None  # for energy metrics: how the energy was obtained

    def add(self, value: float) -> None:
        self.samples.append(float(value))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Metric:
        return cls(
            name=d["name"],
            unit=d["unit"],
            better=d.get("better", "lower"),
            kind=d.get("kind", "measured"),
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

    def metric(self, name: str, unit: str, *, better: Better = "lower", kind: Kind = "measured",
               method: str | None = None) -> Metric:
        """Get or create the metric `name`; samples from repeated calls accumulate."""
        m = self.metrics.get(name)
        if m is None:
            m = self.metrics[name] = Metric(name, unit, better, kind, [], method)
        return m

    def to_dict(self) -> dict[str, Any]:
        return {
            "nodeid": self.nodeid, "name": self.name, "group": self.group, "params": self.params,
            "metrics": {k: m.to_dict() for k, m in self.metrics.items()},
            "windows": [dataclasses.asdict(w) for w in self.windows],
            "extra_info": self.extra_info, "protocols": self.protocols,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TestRecord:
        windows = []
        for w in d.get("windows", []):
            w = dict(w)
            w["devices"] = tuple(DeviceEnergy(**dev) for dev in w.get("devices", ()))
            windows.append(Window(**w))
        return cls(
            nodeid=d["nodeid"], name=d["name"], group=d.get("group"), params=d.get("params"),
            metrics={k: Metric.from_dict(m) for k, m in d.get("metrics", {}).items()},
            windows=windows, extra_info=d.get("extra_info", {}), protocols=d.get("protocols", []),
        )
