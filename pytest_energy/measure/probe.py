"""The calibration probe: fixed pure-Python work whose wall time says how much CPU this process got.

On a shared CI runner the wall time of the same code drifts by 20-30 % from run to run, and that drift is
common to everything running in the process (measured: docs/statistics.md). The probe runs a fixed,
stdlib-only workload before every round of a benchmark and after its last round; dividing the round's
wall-clock figures by the geometric mean of those probes removes most of the drift (to ~7 % on this
project's 2-core machine). It is pure Python on purpose: a torch or BLAS upgrade cannot speed it up or
slow it down, so it cannot cancel a real regression in the code under test.

Only wall-clock metrics are divided by it (gate/history.py `probe_exponent`): CPU time, the estimate
meter's energy (CPU time x W), RAPL and NVML energy and memory do not follow it. It is off by default
with a GPU meter (`--energy-probe auto`), whose time is GPU-bound. No pytest import.
"""

from __future__ import annotations

import math
import platform
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["PROBE_ID", "PROBE_ITERATIONS", "MAX_OWN_LOAD", "ProbeResult", "probe", "probe_value"]

PROBE_VERSION = 1
PROBE_ITERATIONS = 1 << 16  # ~30 ms of CPython 3.11 on a 2020s x86 core; 3 repeats ~0.1 s per probe
# Probe seconds compare only for the same probe code on the same interpreter line: every stored run carries
# PROBE_ID, and runs with another id count as unprobed.
PROBE_ID = f"v{PROBE_VERSION}-{platform.python_implementation()}-{sys.version_info[0]}.{sys.version_info[1]}"
# A benchmark's leftover busy threads (an OpenMP pool still spinning) slow the probe down and would cancel
# part of a real regression: a probe during which the process's other threads burnt more than this share of
# a core is not used.
MAX_OWN_LOAD = 0.05


@dataclass(frozen=True)
class ProbeResult:
    wall_s: float  # median wall seconds of one repeat
    cpu_s: float  # median thread CPU seconds of one repeat
    own_load: float  # CPU seconds of this process's other threads per wall second during the probe

    @property
    def usable(self) -> bool:
        return self.own_load <= MAX_OWN_LOAD and self.wall_s > 0 and math.isfinite(self.wall_s)


def _mix(x: int) -> int:
    return (x * 2654435761) & 0xFFFFFFFF


def _kernel(n: int) -> int:
    """Fixed interpreter work: xorshift integer arithmetic, calls, list indexing, dict stores, a sort."""
    x = 0x2545F491
    acc = 0
    table = [0] * 256
    d = {}
    for i in range(n):
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        table[x & 255] += 1
        if not i & 7:
            d[x & 1023] = i
        acc += _mix(x) >> 24
    return acc + sum(sorted(table)[::17]) + len(d)


def probe(repeats: int = 3, iterations: int = PROBE_ITERATIONS) -> ProbeResult:
    """Run the fixed workload `repeats` times; medians of wall and thread-CPU seconds, and own load."""
    walls, cpus, others = [], [], []
    for _ in range(repeats):
        w0, t0, p0 = time.perf_counter(), time.thread_time(), time.process_time()
        _kernel(iterations)
        p1, t1, w1 = time.process_time(), time.thread_time(), time.perf_counter()
        walls.append(w1 - w0)
        cpus.append(t1 - t0)
        others.append(max((p1 - p0) - (t1 - t0), 0.0) / max(w1 - w0, 1e-9))
    return ProbeResult(statistics.median(walls), statistics.median(cpus), statistics.median(others))


def probe_value(probe_seconds: Sequence[float]) -> float | None:
    """A benchmark's probe value: the geometric mean of its probes (None when there is none)."""
    values = [p for p in probe_seconds if isinstance(p, (int, float)) and math.isfinite(p) and p > 0]
    if not values:
        return None
    return math.exp(math.fsum(math.log(p) for p in values) / len(values))
