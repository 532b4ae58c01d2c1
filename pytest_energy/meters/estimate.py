"""The estimate: used only where no energy counter can be read.

It is process CPU time (user + system, all threads and reaped children) times a configured power
per busy core. It is a model, not a measurement; every figure it produces is labelled "estimate".
The default of 10 W per busy core is a round figure for a server core's share of package power
(TDP 150-250 W over 16-32 cores); set your own with `--energy-cpu-watts-per-core`.
"""

from __future__ import annotations

import os
import time

from ..config import DEFAULT_WATTS_PER_CORE
from ..errors import UsageError
from ..machine import cpu_model
from ..records import Method
from .base import DeviceInfo, Meter, Reading


def _process_cpu_s() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


class EstimateMeter(Meter):
    name = "estimate"
    min_window_s = 0.01  # os.times() resolution is one clock tick

    def __init__(self, watts_per_core: float = DEFAULT_WATTS_PER_CORE, cpu_time=_process_cpu_s):
        if not watts_per_core > 0:
            raise UsageError(f"watts per core must be > 0, got {watts_per_core!r}")
        self.watts_per_core = float(watts_per_core)
        self._cpu_time = cpu_time

    def devices(self) -> list[DeviceInfo]:
        return [DeviceInfo("cpu-estimate", cpu_model(), Method.ESTIMATE)]

    def read(self) -> Reading:
        return Reading(time.perf_counter(), {"cpu-estimate": self._cpu_time() * self.watts_per_core})

    def fingerprint(self) -> dict[str, object]:
        return {"estimate_watts_per_core": self.watts_per_core}
