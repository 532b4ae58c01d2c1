"""The estimate: used only where no energy counter can be read.

It is process CPU time (user + system, all threads, plus reaped children) times a configured power
per busy core. It is a model, not a measurement; every figure it produces is labelled "estimate".
The default of 10 W per busy core is a round figure for a server core's share of package power
(TDP 150-250 W over 16-32 cores); set your own with `--energy-cpu-watts-per-core`.

CPU time is read at the kernel's resolution, not in clock ticks: `time.process_time()` is
clock_gettime(CLOCK_PROCESS_CPUTIME_ID), nanoseconds, and children come from getrusage(RUSAGE_CHILDREN),
microseconds. (`os.times()` counts 10 ms ticks: a 20 ms function then reads 0, 10 or 30 ms, and a +70 %
slowdown can read as no change at all.) What remains coarse is the accounting, not the clock:

- the calling thread's CPU time is exact to the read; the process's other threads that are running on
  another core at that moment are brought up to date at their next scheduler tick or context switch,
  so with worker threads (torch, BLAS) a window is uncertain by about one tick (1-4 ms);
- a child process counts only once it has been waited for (reaped), so work in a child that is still
  running at the end of a window lands in a later one.

Hence `min_window_s` = 4 ms, one tick at the common HZ=250: `energy(fn)` makes rounds at least ten times
that (measure.CALIBRATION_FACTOR), and shorter windows get a ShortWindowWarning.
"""

from __future__ import annotations

import resource
import time

from ..errors import UsageError
from ..machine import cpu_model
from ..records import Method
from . import DEFAULT_WATTS_PER_CORE
from .base import DeviceInfo, Meter, Reading


def _process_cpu_s() -> float:
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


class EstimateMeter(Meter):
    name = "estimate"
    min_window_s = 0.004  # one scheduler tick (HZ=250): other running threads' CPU time is accounted then

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
