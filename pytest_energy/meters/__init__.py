"""Meters and the factory that picks one. Vendor modules are imported only when chosen."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import MeterUnavailable, UsageError

if TYPE_CHECKING:
    from .base import DeviceInfo, Meter, Reading

__all__ = ["DEFAULT_WATTS_PER_CORE", "METER_CHOICES", "DeviceInfo", "Meter", "Reading", "open_meter"]

# Defined here, not in config: meters know nothing of the layers above them (config reads these).
METER_CHOICES = ("auto", "nvml", "rapl", "estimate")
DEFAULT_WATTS_PER_CORE = 10.0  # the estimate meter's power per busy core (--energy-cpu-watts-per-core)


def __getattr__(name: str) -> Any:
    # The meter contract loads on first use: config reads the two constants above in every pytest run.
    if name in ("DeviceInfo", "Meter", "Reading"):
        from . import base

        return getattr(base, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def open_meter(choice: str = "auto", *, cpu_watts_per_core: float = DEFAULT_WATTS_PER_CORE,
               powercap_root: str | None = None, poll_interval_s: float | None = None,
               visible_devices: str | None = None) -> Meter:
    """Open the meter `choice`.

    `auto` takes NVML when an NVIDIA driver answers, else RAPL when readable, else the estimate; the
    reasons the better meters were passed over are kept on `meter.fallback_reasons`. A meter named
    explicitly that cannot be used raises MeterUnavailable saying why. Whether torch sees CUDA plays
    no part: NVML is asked directly. `visible_devices` narrows the GPUs NVML meters (a
    CUDA_VISIBLE_DEVICES value; default: this process's CUDA_VISIBLE_DEVICES).
    """
    if choice not in METER_CHOICES:
        raise UsageError(f"unknown energy meter {choice!r}; choose one of {', '.join(METER_CHOICES)}")
    reasons: list[str] = []
    for name, make in (("nvml", _nvml), ("rapl", _rapl)):
        if choice not in ("auto", name):
            continue
        try:
            meter = make(poll_interval_s=poll_interval_s, powercap_root=powercap_root,
                         visible_devices=visible_devices)
        except MeterUnavailable as exc:
            if choice == name:
                raise
            reasons.append(str(exc))
        else:
            meter.fallback_reasons = tuple(reasons)
            return meter
    from .estimate import EstimateMeter

    meter = EstimateMeter(cpu_watts_per_core)
    meter.fallback_reasons = tuple(reasons)
    return meter


def _nvml(poll_interval_s: float | None, visible_devices: str | None, **_: object) -> Meter:
    from .nvml import DEFAULT_POLL_INTERVAL_S, NvmlMeter

    interval = DEFAULT_POLL_INTERVAL_S if poll_interval_s is None else poll_interval_s
    if visible_devices is None:
        return NvmlMeter(interval)
    return NvmlMeter(interval, visible_devices=visible_devices)


def _rapl(powercap_root: str | None, **_: object) -> Meter:
    from .rapl import DEFAULT_POWERCAP_ROOT, RaplMeter

    return RaplMeter(powercap_root or DEFAULT_POWERCAP_ROOT)
