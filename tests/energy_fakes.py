"""A meter driven by a hand-moved clock, so protocol tests can check time and energy exactly."""

from __future__ import annotations

from pytest_energy.measure import Measurer
from pytest_energy.meters.base import DeviceInfo, Meter, Reading
from pytest_energy.records import Method


class FakeClock:
    def __init__(self) -> None:
        self.t_s = 100.0
        self.energy_j = 5000.0

    def advance(self, seconds: float, joules: float) -> None:
        self.t_s += seconds
        self.energy_j += joules

    def perf_counter(self) -> float:
        return self.t_s


class FakeMeter(Meter):
    name = "fake"
    min_window_s = 0.0

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock

    def devices(self) -> list[DeviceInfo]:
        return [DeviceInfo("fake0", "fake package", Method.RAPL)]

    def read(self) -> Reading:
        return Reading(self.clock.t_s, {"fake0": self.clock.energy_j})


def fake_measurer(idle_power_w: dict[str, float] | None = None) -> tuple[Measurer, FakeClock]:
    clock = FakeClock()
    return Measurer(FakeMeter(clock), idle_power_w, sync=lambda: None), clock
