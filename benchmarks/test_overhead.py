"""Measurement overhead: metering must not change what it measures.

A CPU-bound loop of about 2 s is timed bare and inside `energy.measure()` (with whatever meter the
session chose, peak-memory tracking and CUDA synchronisation included), alternating, several times.
The minimum of each is compared: CPU-bound work only ever gets slower through interference, so the
minimum is its least noisy estimate. Target: less than 1 % added wall time.
"""

from __future__ import annotations

import time

import pytest

TARGET_LOOP_S = 2.0
PAIRS = 3
MAX_OVERHEAD = 0.01


def _spin(n: int) -> int:
    acc = 0
    for i in range(n):
        acc = (acc + i * i) % 1_000_003
    return acc


def _calibrate() -> int:
    n = 200_000
    while True:
        t0 = time.perf_counter()
        _spin(n)
        dt = time.perf_counter() - t0
        if dt > 0.2:
            return int(n * TARGET_LOOP_S / dt)
        n *= 2


@pytest.mark.energy(rounds=1, warmup=0)
def test_metering_overhead_under_1_percent(energy):
    n = _calibrate()
    bare, metered = [], []
    for _ in range(PAIRS):
        t0 = time.perf_counter()
        _spin(n)
        bare.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        with energy.measure("metered-loop"):
            _spin(n)
        metered.append(time.perf_counter() - t0)
    overhead = min(metered) / min(bare) - 1.0
    energy.extra_info.update({
        "loop_iterations": n, "bare_min_s": min(bare), "metered_min_s": min(metered),
        "overhead_fraction": overhead, "meter": energy.measurer.meter.name,
    })
    print(f"\nmetering overhead on a {min(bare):.2f} s CPU-bound loop: {overhead * 100:+.2f} % "
          f"(meter {energy.measurer.meter.name}; bare {min(bare):.4f} s, metered {min(metered):.4f} s, "
          f"min of {PAIRS})")
    assert overhead < MAX_OVERHEAD, f"metering added {overhead * 100:.2f} % to a {min(bare):.2f} s loop"
