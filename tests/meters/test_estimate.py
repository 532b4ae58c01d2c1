"""The estimate meter: CPU time times watts per core, labelled as an estimate."""

from __future__ import annotations

import time

import pytest

from pytest_energy.errors import UsageError
from pytest_energy.measure import Measurer
from pytest_energy.meters.estimate import EstimateMeter


def test_estimate_is_cpu_time_times_watts_and_labelled():
    cpu_s = iter([1.0, 3.5])
    meter = EstimateMeter(watts_per_core=12.0, cpu_time=lambda: next(cpu_s))
    start, end = meter.read(), meter.read()
    assert meter.delta_j(start, end) == {"cpu-estimate": pytest.approx(30.0)}
    assert meter.devices()[0].method == "estimate"


def test_estimate_rejects_nonsense_power():
    with pytest.raises(UsageError):
        EstimateMeter(watts_per_core=0)


def _spin_s(seconds):
    """CPU-bound work of about `seconds` of this thread's CPU time."""
    t0 = time.thread_time()
    x = 0
    while time.thread_time() - t0 < seconds:
        x += 1
    return x


def _fixture(meter):
    from pytest_energy.config import TestSettings
    from pytest_energy.fixture import EnergyFixture
    from pytest_energy.records import TestRecord

    return EnergyFixture(Measurer(meter, sync=lambda: None), TestRecord("t.py::t", "t"), TestSettings(rounds=3))


def test_cpu_time_is_read_at_the_kernels_resolution_not_in_ticks():
    """os.times() counts 10 ms ticks; the meter's clock must resolve far below that."""
    meter = EstimateMeter(watts_per_core=1.0)
    steps = set()
    last = meter.read().energy_j["cpu-estimate"]
    for _ in range(2000):
        now = meter.read().energy_j["cpu-estimate"]
        if now != last:
            steps.add(now - last)
        last = now
    assert steps and min(steps) < 1e-4  # sub-100-microsecond steps (os.times() would give 0.01)


def test_a_21_microsecond_function_reads_its_energy_per_call_not_0_j():
    energy = _fixture(EstimateMeter(watts_per_core=10.0))
    energy(_spin_s, 21e-6)
    metrics = energy._record.metrics
    calls = energy.extra_info["calls_per_round"]
    assert calls >= 100  # a round lasts >= 10 x the meter's 4 ms update period
    per_call_j = metrics["energy_j"].samples
    assert all(j > 0 for j in per_call_j)
    # ~21 us of CPU x 10 W = ~0.21 mJ per call (loop overhead and the clock read included)
    assert all(1e-4 < j < 1e-3 for j in per_call_j), per_call_j
    assert all(1e-5 < s < 1e-3 for s in metrics["duration_s"].samples)


def test_a_70_percent_slower_20_ms_function_costs_70_percent_more_energy():
    """With os.times() this showed +0 %; compared within one run, so machine drift cancels."""
    base, slow = _fixture(EstimateMeter()), _fixture(EstimateMeter())
    base(_spin_s, 0.020)
    slow(_spin_s, 0.034)
    ratio = (sum(slow._record.metrics["energy_j"].samples) / sum(base._record.metrics["energy_j"].samples))
    assert 1.5 < ratio < 1.9, ratio
