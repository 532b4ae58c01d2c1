"""The meter contract: every meter exposes cumulative per-device energy counters.

A window's energy is the difference of two readings, so windows may nest or overlap freely
(a fine-tuning run measures training and evaluation windows inside one wall-clock window).
Meters that only offer power (NVML polling) integrate it in a background thread and present the
integral as a counter, so the rest of the code never needs to know the difference.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass

from ..records import DeviceInfo, Method  # noqa: F401  (DeviceInfo: defined with the run model, used by meters)


@dataclass(frozen=True)
class Reading:
    """Cumulative energy per device (joules since an arbitrary origin) at monotonic time t_s."""

    t_s: float
    energy_j: dict[str, float]


class Meter(abc.ABC):
    #: "nvml" | "rapl" | "estimate"
    name: str = ""
    #: Shortest window the sensor can resolve, seconds; windows shorter than this get a warning.
    min_window_s: float = 0.0
    #: Why better meters were passed over when `auto` chose this one (shown in reports).
    fallback_reasons: tuple[str, ...] = ()

    @abc.abstractmethod
    def devices(self) -> list[DeviceInfo]:
        """The devices this meter reads."""

    @abc.abstractmethod
    def read(self) -> Reading:
        """Cumulative energy now. Raises MeasurementError when a device cannot be read."""

    def delta_j(self, start: Reading, end: Reading) -> dict[str, float]:
        """Per-device energy between two readings. Meters whose counters wrap override this."""
        return {dev: end.energy_j[dev] - start.energy_j[dev] for dev in start.energy_j}

    def fingerprint(self) -> dict[str, object]:
        """Stable facts about the metered hardware, for machine matching (no clocks or temperatures)."""
        return {}

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release threads and driver handles."""

    def __enter__(self) -> Meter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
