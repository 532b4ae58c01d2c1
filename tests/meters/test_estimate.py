"""The estimate meter: CPU time times watts per core, labelled as an estimate."""

from __future__ import annotations


import pytest

from pytest_energy.errors import UsageError
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


