"""Meters and the factory that picks one. Vendor modules are imported only when chosen."""

from __future__ import annotations

from ..errors import MeterUnavailable, UsageError
from .base import DeviceInfo, Meter, Reading

METER_CHOICES = ("auto", "nvml", "rapl", "estimate")

__all__ = ["METER_CHOICES", "DeviceInfo", "Meter", "Reading", "open_meter"]


def open_meter(choice: str = "auto", *, cpu_watts_per_core: float | None = None,
               powercap_root: str | None = None, poll_interval_s: float | None = None) -> Meter:
    """Open the meter `choice`.

    `auto` takes NVML when an NVIDIA driver answers, else RAPL when readable, else the estimate; the
    reasons the better meters were passed over are kept on `meter.fallback_reasons`. A meter named
    explicitly that cannot be used raises MeterUnavailable saying why. Whether torch sees CUDA plays
    no part: NVML is asked directly.
    """
    if choice not in METER_CHOICES:
        raise UsageError(f"unknown energy meter {choice!r}; choose one of {', '.join(METER_CHOICES)}")
    reasons: list[str] = []
    if choice in ("auto", "nvml"):
        from .nvml import DEFAULT_POLL_INTERVAL_S, NvmlMeter

        try:
            meter: Meter = NvmlMeter(poll_interval_s or DEFAULT_POLL_INTERVAL_S)
            meter.fallback_reasons = tuple(reasons)
            return meter
        except MeterUnavailable as exc:
            if choice == "nvml":
                raise
            reasons.append(str(exc))
    if choice in ("auto", "rapl"):
        from .rapl import DEFAULT_POWERCAP_ROOT, RaplMeter

        try:
            meter = RaplMeter(powercap_root or DEFAULT_POWERCAP_ROOT)
            meter.fallback_reasons = tuple(reasons)
            return meter
        except MeterUnavailable as exc:
            if choice == "rapl":
                raise
            reasons.append(str(exc))
    from .estimate import DEFAULT_WATTS_PER_CORE, EstimateMeter

    meter = EstimateMeter(cpu_watts_per_core or DEFAULT_WATTS_PER_CORE)
    meter.fallback_reasons = tuple(reasons)
    return meter
