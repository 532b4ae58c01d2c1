"""Windows, rounds, idle power, peak memory and CUDA synchronisation, on a scripted meter."""

from __future__ import annotations

import sys
import time
import types

import pytest

from pytest_energy.errors import MeasurementError, ShortWindowWarning, UsageError
from pytest_energy.measure import Measurer, measure_idle_power, sync_cuda
from pytest_energy.meters.fake import scripted_meter


def _scripted(readings):
    """GPU measured by its counter and a CPU package by RAPL, read from a script."""
    return scripted_meter(readings, {"gpu0": "nvml-counter", "cpu-package-0": "rapl"})


def test_window_is_the_difference_of_two_readings_per_device():
    m = Measurer(_scripted([(10.0, {"gpu0": 100.0, "cpu-package-0": 5.0}),
                                (12.0, {"gpu0": 700.0, "cpu-package-0": 65.0})]), sync=lambda: None)
    with m.measure("x") as w:
        assert not w.closed
    assert w.closed and w.duration_s == 2.0
    assert w.energy_j == 660.0 and w.power_w == 330.0
    assert {d.device: d.energy_j for d in w.devices} == {"gpu0": 600.0, "cpu-package-0": 60.0}
    assert w.method == "nvml-counter+rapl"
    assert w.net_energy_j is None


def test_nested_windows_overlap_freely():
    m = Measurer(_scripted([(0.0, {"gpu0": 0.0, "cpu-package-0": 0.0}),
                                (1.0, {"gpu0": 10.0, "cpu-package-0": 0.0}),
                                (2.0, {"gpu0": 30.0, "cpu-package-0": 0.0}),
                                (3.0, {"gpu0": 60.0, "cpu-package-0": 0.0})]), sync=lambda: None)
    with m.measure("outer") as outer:
        with m.measure("inner") as inner:
            pass
    assert (inner.duration_s, inner.energy_j) == (1.0, 20.0)
    assert (outer.duration_s, outer.energy_j) == (3.0, 60.0)


def test_net_of_idle_beside_gross():
    m = Measurer(_scripted([(0.0, {"gpu0": 0.0, "cpu-package-0": 0.0}),
                                (2.0, {"gpu0": 200.0, "cpu-package-0": 20.0})]),
                 idle_power_w={"gpu0": 50.0, "cpu-package-0": 5.0}, sync=lambda: None)
    with m.measure() as w:
        pass
    assert w.energy_j == 220.0 and w.idle_power_w == 55.0 and w.net_energy_j == 110.0


def test_idle_power_is_measured_per_device():
    meter = _scripted([(0.0, {"gpu0": 0.0, "cpu-package-0": 0.0}),
                           (0.5, {"gpu0": 30.0, "cpu-package-0": 4.0})])
    meter.read = (lambda orig: lambda: orig())(meter.read)
    idle = measure_idle_power(meter, 0.01)
    assert idle == {"gpu0": 60.0, "cpu-package-0": 8.0}
    with pytest.raises(UsageError):
        measure_idle_power(meter, 0)


def test_counter_going_backwards_is_an_error_not_a_negative_number():
    m = Measurer(_scripted([(0.0, {"gpu0": 100.0, "cpu-package-0": 0.0}),
                                (1.0, {"gpu0": 50.0, "cpu-package-0": 1.0})]), sync=lambda: None)
    with pytest.raises(MeasurementError, match="invalid energy for gpu0"):
        with m.measure("x"):
            pass


def test_an_exception_in_the_block_propagates_and_leaves_the_window_open():
    m = Measurer(_scripted([(0.0, {"gpu0": 0.0, "cpu-package-0": 0.0})]), sync=lambda: None)
    with pytest.raises(ZeroDivisionError):
        with m.measure("x") as w:
            1 / 0  # noqa: B018
    assert not w.closed


def test_run_does_warmup_then_rounds_and_keeps_every_round():
    readings = [(float(i), {"gpu0": 10.0 * i, "cpu-package-0": 0.0}) for i in range(10)]
    m = Measurer(_scripted(readings), sync=lambda: None)
    calls = []
    result, windows = m.run(lambda x: calls.append(x) or len(calls), (7,), rounds=3, warmup=2)
    assert calls == [7] * 5 and result == 5
    assert [w.energy_j for w in windows] == [10.0, 10.0, 10.0]
    with pytest.raises(UsageError):
        m.run(print, rounds=0, warmup=0)


def test_peak_memory_of_a_window_sees_an_allocation_inside_it():
    from pytest_energy.meters.estimate import EstimateMeter

    m = Measurer(EstimateMeter(), sync=lambda: None)
    with m.measure("outer") as outer:
        with m.measure("alloc") as inner:
            block = bytearray(200 * 1024 * 1024)
            block[::4096] = b"x" * len(block[::4096])  # touch the pages so they count in RSS
            del block
        with pytest.warns(ShortWindowWarning), m.measure("after") as after:
            pass  # an empty window: shorter than the sensor period, and it says so
    assert inner.peak_memory_bytes >= 200 * 1024 * 1024
    assert outer.peak_memory_bytes >= inner.peak_memory_bytes  # nested reset must not lose the peak
    if after.peak_memory_source == "rss-hwm":
        assert after.peak_memory_bytes < inner.peak_memory_bytes


def test_sync_cuda_only_when_cuda_is_already_initialised(monkeypatch):
    synced = []
    cuda = types.SimpleNamespace(is_initialized=lambda: False, device_count=lambda: 2,
                                 synchronize=synced.append)
    monkeypatch.setitem(sys.modules, "torch", types.SimpleNamespace(cuda=cuda))
    sync_cuda()
    assert synced == []
    cuda.is_initialized = lambda: True
    sync_cuda()
    assert synced == [0, 1]
    monkeypatch.delitem(sys.modules, "torch")
    sync_cuda()  # torch not imported: nothing to do, and torch is not imported by us
    assert "torch" not in sys.modules


# --- calibration: enough calls per round that a round outlasts the meter's update period ------------------

def test_calibrate_reaches_the_target_and_asks_nothing_without_one():
    from pytest_energy.measure import calibrate

    calls = []
    assert calibrate(calls.append, (1,), min_round_s=0.0) == 1 and calls == []  # no target: not even called

    def work():
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < 1e-4:
            pass

    n = calibrate(work, min_round_s=0.02)
    assert 150 <= n <= 300  # ~0.02 s / 1e-4 s, plus the 10 % margin
    assert calibrate(work, min_round_s=1.0, max_calls=50) == 50
    assert calibrate(lambda: time.sleep(0.03), min_round_s=0.02) == 1  # already long enough


def test_rounds_of_several_calls_report_per_call_figures_and_probe_between_rounds():
    readings = [(float(i), {"gpu0": 10.0 * i, "cpu-package-0": 4.0 * i}) for i in range(10)]
    m = Measurer(_scripted(readings), sync=lambda: None)
    calls, between = [], []
    result, windows = m.run(calls.append, (7,), rounds=3, warmup=1, calls=4, between=lambda: between.append(1))
    assert len(calls) == 4 * (1 + 3) and len(between) == 3 + 1  # warmup rounds are rounds of 4 calls too
    assert [w.calls for w in windows] == [4, 4, 4]
    assert [w.duration_s for w in windows] == [0.25] * 3 and [w.energy_j for w in windows] == [3.5] * 3
    assert {d.device: d.energy_j for d in windows[0].devices} == {"gpu0": 2.5, "cpu-package-0": 1.0}
    with pytest.raises(UsageError):
        m.run(print, rounds=1, warmup=0, calls=0)
