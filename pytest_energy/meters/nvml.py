"""NVIDIA GPUs through NVML (NVIDIA's official `nvidia-ml-py` bindings, module `pynvml`).

Volta and newer expose a total-energy counter (mJ since the driver loaded): we read it at both edges
of a window. Where it is NotSupported (older GPUs, some virtual GPUs), a background thread polls
power (mW) and integrates it with the trapezoid rule into a counter of our own, so both paths look
the same to the measurement code. Only the GPUs this process may use are metered.
"""

from __future__ import annotations

import os
import threading
import time
import warnings
from dataclasses import dataclass
from typing import Any

from ..errors import DeviceOrderWarning, MeasurementError, MeterUnavailable
from ..records import Method
from .base import DeviceInfo, Meter, Reading
from .gpus import ENV, Gpu, index_order_warning, resolve_visible, text, visible_gpu_selectors

__all__ = ["COUNTER_UPDATE_S", "DEFAULT_POLL_INTERVAL_S", "NvmlMeter", "visible_gpu_selectors"]

# The counter updates about every 100 ms (20-100 ms seen); shorter windows can read 0 J.
COUNTER_UPDATE_S = 0.1
DEFAULT_POLL_INTERVAL_S = 0.05
_FROM_ENV: Any = object()  # sentinel: read CUDA_VISIBLE_DEVICES from the environment


@dataclass
class _Gpu:
    index: int  # NVML index (PCI bus order)
    handle: Any
    name: str
    uuid: str
    counter: bool  # True: energy counter; False: power polling
    device: str = ""


class NvmlMeter(Meter):
    name = "nvml"

    def __init__(self, poll_interval_s: float = DEFAULT_POLL_INTERVAL_S,
                 visible_devices: str | None = _FROM_ENV,  # type: ignore[assignment]
                 polling: bool = False) -> None:
        """`visible_devices`: a CUDA_VISIBLE_DEVICES value (default: this process's). `polling=True`
        integrates power readings even where the energy counter exists (the doctor compares the two)."""
        try:
            import pynvml  # lazy: a plain pytest run never loads the driver library
        except ImportError as exc:  # pragma: no cover - nvidia-ml-py is a dependency
            raise MeterUnavailable("NVML: the nvidia-ml-py package is not installed") from exc
        self._nv = pynvml
        try:
            pynvml.nvmlInit()
        except pynvml.NVMLError as exc:
            raise MeterUnavailable(f"NVML: no NVIDIA driver answered (nvmlInit: {exc})") from exc
        self._initialised = True
        try:
            env = os.environ.get(ENV) if visible_devices is _FROM_ENV else visible_devices
            self.gpus = self._open_visible(env, polling)
        except pynvml.NVMLError as exc:
            self.close()
            raise MeterUnavailable(f"NVML: the driver answered but a GPU could not be opened: {exc}") from exc
        except BaseException:
            self.close()
            raise
        self.poll_interval_s = poll_interval_s
        self.min_window_s = COUNTER_UPDATE_S if all(g.counter for g in self.gpus) else max(
            COUNTER_UPDATE_S, 2 * poll_interval_s)
        self._lock = threading.Lock()
        self._polled = [g for g in self.gpus if not g.counter]
        self._poll_state: dict[str, tuple[float, float, float]] = {}  # device -> (t_s, power_w, energy_j)
        self._poll_error: BaseException | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if self._polled:
            with self._lock:
                for g in self._polled:
                    self._poll_state[g.device] = (time.perf_counter(), self._power_w(g), 0.0)
            self._thread = threading.Thread(target=self._poll_loop, name="pytest-energy-nvml-poll",
                                            daemon=True)
            self._thread.start()

    # -- discovery ---------------------------------------------------------------------------
    def _open_visible(self, env: str | None, polling: bool) -> list[_Gpu]:
        nv = self._nv
        count = nv.nvmlDeviceGetCount()
        if count == 0:
            raise MeterUnavailable("NVML: the driver answered but reports no GPU")
        handles = [nv.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
        listed = [Gpu(i, text(nv.nvmlDeviceGetUUID(h)), text(nv.nvmlDeviceGetName(h))) for i, h in enumerate(handles)]
        # MIG instances (index None) are not metered: their counter would be the whole GPU's.
        chosen = [v for v in resolve_visible(env, listed)[0] if v.index is not None]
        if not chosen:
            raise MeterUnavailable(
                f"NVML: {ENV}={env!r} leaves this process no GPU it can meter "
                f"(NVML sees {count}: {', '.join(f'{g.index}={g.uuid}' for g in listed)})")
        warning = index_order_warning(visible_gpu_selectors(env), listed)
        if warning is not None:
            warnings.warn(warning, DeviceOrderWarning, stacklevel=4)
        gpus = []
        for v in chosen:
            handle = handles[v.index]
            counter = not polling and self._has_counter(handle)
            if not counter:
                self._check_power_readable(v.index, handle, v.name)
            gpus.append(_Gpu(v.index, handle, v.name, v.uuid or "", counter, device=f"gpu{v.index}"))
        return gpus

    def _check_power_readable(self, index: int, handle: Any, name: str) -> None:
        """Polling needs nvmlDeviceGetPowerUsage; a GPU that offers neither it nor the counter cannot be metered."""
        nv = self._nv
        try:
            nv.nvmlDeviceGetPowerUsage(handle)
        except nv.NVMLError_NotSupported as exc:
            raise MeterUnavailable(
                f"NVML: GPU {index} ({name}) supports neither the energy counter nor power readings "
                f"({exc}); its energy cannot be measured") from exc

    def _has_counter(self, handle: Any) -> bool:
        nv = self._nv
        try:
            nv.nvmlDeviceGetTotalEnergyConsumption(handle)
        except nv.NVMLError_NotSupported:
            return False
        volta = getattr(nv, "NVML_DEVICE_ARCH_VOLTA", None)
        if volta is not None:
            try:
                if nv.nvmlDeviceGetArchitecture(handle) < volta:
                    return False  # pre-Volta counters are not trustworthy even where they answer
            except nv.NVMLError:
                pass
        return True

    # -- reading -----------------------------------------------------------------------------
    def _power_w(self, g: _Gpu) -> float:
        return self._nv.nvmlDeviceGetPowerUsage(g.handle) / 1000.0  # mW -> W

    def _sample_polled(self, now: float) -> None:
        """Integrate each polled GPU up to `now` (trapezoid rule). Caller holds the lock."""
        for g in self._polled:
            t0, p0, e0 = self._poll_state[g.device]
            p1 = self._power_w(g)
            self._poll_state[g.device] = (now, p1, e0 + (p0 + p1) / 2.0 * (now - t0))

    def _poll_loop(self) -> None:
        while not self._stop.wait(self.poll_interval_s):
            try:
                with self._lock:
                    self._sample_polled(time.perf_counter())
            except BaseException as exc:  # reported at the next read, never swallowed
                self._poll_error = exc
                return

    def read(self) -> Reading:
        nv = self._nv
        energy: dict[str, float] = {}
        current: _Gpu | None = None
        try:
            with self._lock:
                if self._poll_error is not None:
                    raise self._poll_error
                now = time.perf_counter()
                if self._polled:
                    self._sample_polled(now)
                    for g in self._polled:
                        energy[g.device] = self._poll_state[g.device][2]
                for g in self.gpus:
                    if g.counter:
                        current = g
                        energy[g.device] = nv.nvmlDeviceGetTotalEnergyConsumption(g.handle) / 1000.0
        except nv.NVMLError as exc:
            which = f"GPU {current.index} ({current.name})" if current else "a polled GPU"
            raise MeasurementError(
                f"NVML could not read {which}: {exc}; the energy of this window is unknown") from exc
        return Reading(now, energy)

    def devices(self) -> list[DeviceInfo]:
        return [DeviceInfo(g.device, g.name, Method.NVML_COUNTER if g.counter else Method.NVML_POLLING)
                for g in self.gpus]

    def fingerprint(self) -> dict[str, object]:
        nv = self._nv
        limits = []
        for g in self.gpus:
            try:
                limits.append(nv.nvmlDeviceGetPowerManagementLimit(g.handle) / 1000.0)
            except nv.NVMLError:
                limits.append(None)
        try:
            driver = text(nv.nvmlSystemGetDriverVersion())
        except nv.NVMLError:
            driver = None
        return {"gpus": [g.name for g in self.gpus], "gpu_driver": driver, "gpu_power_limit_w": limits,
                "gpu_uuids": [g.uuid for g in self.gpus]}

    def volatile_state(self) -> dict[str, object]:
        """Temperature and clocks: recorded beside results, never used for machine matching."""
        nv = self._nv
        out = {}
        for g in self.gpus:
            state = {}
            for key, fn, arg in (("temperature_c", "nvmlDeviceGetTemperature", "NVML_TEMPERATURE_GPU"),
                                 ("sm_clock_mhz", "nvmlDeviceGetClockInfo", "NVML_CLOCK_SM")):
                try:
                    state[key] = getattr(nv, fn)(g.handle, getattr(nv, arg))
                except (nv.NVMLError, AttributeError):
                    state[key] = None
            out[g.device] = state
        return out

    def close(self) -> None:
        thread = getattr(self, "_thread", None)
        if thread is not None:
            self._stop.set()
            thread.join()
            self._thread = None
        if getattr(self, "_initialised", False):
            self._initialised = False
            try:
                self._nv.nvmlShutdown()
            except self._nv.NVMLError as exc:
                warnings.warn(f"nvmlShutdown failed: {exc}", RuntimeWarning, stacklevel=2)
