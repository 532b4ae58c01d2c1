"""A fake `pynvml` that behaves like NVIDIA's driver bindings, for tests on machines without a GPU.

Like the real thing: integer millijoules and milliwatts, NVMLError subclasses carrying a return
code, NotSupported for the energy counter before Volta, an energy counter that advances in steps
(the real one updates every 20-100 ms), GpuIsLost once a GPU falls off the bus, and every call
failing with Uninitialized before nvmlInit.
"""

from __future__ import annotations

import threading
import time
import types
from dataclasses import dataclass, field

NVML_SUCCESS = 0
NVML_ERROR_UNINITIALIZED = 1
NVML_ERROR_INVALID_ARGUMENT = 2
NVML_ERROR_NOT_SUPPORTED = 3
NVML_ERROR_DRIVER_NOT_LOADED = 9
NVML_ERROR_GPU_IS_LOST = 15
NVML_ERROR_LIBRARY_NOT_FOUND = 12

NVML_DEVICE_ARCH_KEPLER = 2
NVML_DEVICE_ARCH_MAXWELL = 3
NVML_DEVICE_ARCH_PASCAL = 4
NVML_DEVICE_ARCH_VOLTA = 5
NVML_DEVICE_ARCH_AMPERE = 7
NVML_DEVICE_ARCH_HOPPER = 9
NVML_TEMPERATURE_GPU = 0
NVML_CLOCK_SM = 1


class NVMLError(Exception):
    _messages = {
        NVML_ERROR_UNINITIALIZED: "Uninitialized",
        NVML_ERROR_INVALID_ARGUMENT: "Invalid Argument",
        NVML_ERROR_NOT_SUPPORTED: "Not Supported",
        NVML_ERROR_DRIVER_NOT_LOADED: "Driver Not Loaded",
        NVML_ERROR_LIBRARY_NOT_FOUND: "NVML Shared Library Not Found",
        NVML_ERROR_GPU_IS_LOST: "GPU is lost",
    }

    def __init__(self, value: int) -> None:
        super().__init__(value)
        self.value = value

    def __str__(self) -> str:
        return self._messages.get(self.value, f"Unknown Error {self.value}")


class NVMLError_Uninitialized(NVMLError):  # noqa: N801 - the real names
    def __init__(self) -> None:
        super().__init__(NVML_ERROR_UNINITIALIZED)


class NVMLError_InvalidArgument(NVMLError):  # noqa: N801
    def __init__(self) -> None:
        super().__init__(NVML_ERROR_INVALID_ARGUMENT)


class NVMLError_NotSupported(NVMLError):  # noqa: N801
    def __init__(self) -> None:
        super().__init__(NVML_ERROR_NOT_SUPPORTED)


class NVMLError_DriverNotLoaded(NVMLError):  # noqa: N801
    def __init__(self) -> None:
        super().__init__(NVML_ERROR_DRIVER_NOT_LOADED)


class NVMLError_LibraryNotFound(NVMLError):  # noqa: N801
    def __init__(self) -> None:
        super().__init__(NVML_ERROR_LIBRARY_NOT_FOUND)


class NVMLError_GpuIsLost(NVMLError):  # noqa: N801
    def __init__(self) -> None:
        super().__init__(NVML_ERROR_GPU_IS_LOST)


@dataclass
class FakeGpu:
    name: str = "NVIDIA H100 80GB HBM3"
    power_w: float = 300.0
    architecture: int = NVML_DEVICE_ARCH_HOPPER
    uuid: str = "GPU-00000000-0000-0000-0000-000000000000"
    power_limit_w: float = 700.0
    counter_update_s: float = 0.02  # the counter advances in steps, as on real GPUs
    lost_after_s: float | None = None  # seconds after nvmlInit at which the GPU falls off the bus
    _energy_mj: float = 0.0
    _last_t: float = field(default_factory=time.monotonic)

    def advance(self, now: float) -> None:
        self._energy_mj += self.power_w * (now - self._last_t) * 1000.0
        self._last_t = now


class FakeDriver:
    """State behind the module functions; tests change power, lose GPUs, or remove the driver."""

    def __init__(self, gpus: list[FakeGpu], loaded: bool = True) -> None:
        self.gpus = gpus
        self.loaded = loaded
        self.initialised = 0
        self.t0 = time.monotonic()
        self.lock = threading.Lock()
        self.calls: dict[str, int] = {}

    def _check(self, fn: str) -> None:
        self.calls[fn] = self.calls.get(fn, 0) + 1
        if not self.initialised:
            raise NVMLError_Uninitialized()

    def _gpu(self, handle: FakeGpu) -> FakeGpu:
        if not isinstance(handle, FakeGpu) or handle not in self.gpus:
            raise NVMLError_InvalidArgument()
        now = time.monotonic()
        if handle.lost_after_s is not None and now - self.t0 >= handle.lost_after_s:
            raise NVMLError_GpuIsLost()
        with self.lock:
            handle.advance(now)
        return handle

    # -- the pynvml API ------------------------------------------------------------------
    def nvmlInit(self) -> None:  # noqa: N802
        if not self.loaded:
            raise NVMLError_LibraryNotFound()
        self.initialised += 1
        self.t0 = time.monotonic()
        for g in self.gpus:
            g._last_t = self.t0

    def nvmlShutdown(self) -> None:  # noqa: N802
        self._check("nvmlShutdown")
        self.initialised -= 1

    def nvmlDeviceGetCount(self) -> int:  # noqa: N802
        self._check("nvmlDeviceGetCount")
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> FakeGpu:  # noqa: N802
        self._check("nvmlDeviceGetHandleByIndex")
        if not 0 <= index < len(self.gpus):
            raise NVMLError_InvalidArgument()
        return self.gpus[index]

    def nvmlDeviceGetName(self, handle: FakeGpu) -> str:  # noqa: N802
        self._check("nvmlDeviceGetName")
        return self._gpu(handle).name

    def nvmlDeviceGetUUID(self, handle: FakeGpu) -> str:  # noqa: N802
        self._check("nvmlDeviceGetUUID")
        return self._gpu(handle).uuid

    def nvmlDeviceGetArchitecture(self, handle: FakeGpu) -> int:  # noqa: N802
        self._check("nvmlDeviceGetArchitecture")
        return self._gpu(handle).architecture

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: FakeGpu) -> int:  # noqa: N802
        self._check("nvmlDeviceGetTotalEnergyConsumption")
        gpu = self._gpu(handle)
        if gpu.architecture < NVML_DEVICE_ARCH_VOLTA:
            raise NVMLError_NotSupported()
        # Report the energy as of the last counter update, as the hardware does.
        step = gpu.counter_update_s
        now = time.monotonic()
        stale_s = (now - self.t0) % step if step > 0 else 0.0
        return int(gpu._energy_mj - gpu.power_w * stale_s * 1000.0)

    def nvmlDeviceGetPowerUsage(self, handle: FakeGpu) -> int:  # noqa: N802
        self._check("nvmlDeviceGetPowerUsage")
        return int(round(self._gpu(handle).power_w * 1000.0))

    def nvmlDeviceGetPowerManagementLimit(self, handle: FakeGpu) -> int:  # noqa: N802
        self._check("nvmlDeviceGetPowerManagementLimit")
        return int(self._gpu(handle).power_limit_w * 1000)

    def nvmlSystemGetDriverVersion(self) -> str:  # noqa: N802
        self._check("nvmlSystemGetDriverVersion")
        return "580.95.05"

    def nvmlDeviceGetTemperature(self, handle: FakeGpu, sensor: int) -> int:  # noqa: N802
        self._check("nvmlDeviceGetTemperature")
        self._gpu(handle)
        return 45

    def nvmlDeviceGetClockInfo(self, handle: FakeGpu, clock: int) -> int:  # noqa: N802
        self._check("nvmlDeviceGetClockInfo")
        self._gpu(handle)
        return 1980

    def module(self) -> types.ModuleType:
        """A module object to install as sys.modules['pynvml']."""
        mod = types.ModuleType("pynvml")
        for name, value in globals().items():
            if name.startswith(("NVML_", "NVMLError")):
                setattr(mod, name, value)
        for name in dir(self):
            if name.startswith("nvml"):
                setattr(mod, name, getattr(self, name))
        mod.__fake_driver__ = self
        return mod
