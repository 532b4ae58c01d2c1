"""Fakes to test energy code without a GPU: a fake NVIDIA driver, and a meter driven by a hand-moved clock.

**The fake driver** behaves like NVIDIA's `pynvml` bindings: integer millijoules and milliwatts, NVMLError
subclasses carrying a return code, NotSupported for the energy counter before Volta, an energy counter
that advances in steps (the real one updates every 20-100 ms), GpuIsLost once a GPU falls off the bus,
and every call failing with Uninitialized before nvmlInit. Install it, then use pytest-energy (or your own
NVML code) as on a GPU machine::

    from pytest_energy.meters.fake import FakeGpu, installed

    with installed(FakeGpu(power_w=250.0), FakeGpu(power_w=100.0)) as driver:
        ...  # `import pynvml` now gives the fake; driver.gpus[0].power_w = 400.0 changes the load

In a pytest test, `monkeypatch.setitem(sys.modules, "pynvml", FakeDriver([...]).module())` does the same.

**Fake meters** (`manual_meter`, `scripted_meter`, `constant_power_meter`, `stepping_meter`) implement the
Meter contract with readings the test controls, so measurement and protocol code can be checked to the
joule: e.g. a manual meter moves only when the test calls `clock.advance(seconds, joules)`.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
import types
from collections.abc import Callable, Iterable, Iterator
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
    energy_counter: bool = True  # False: the counter is NotSupported (as on some virtual GPUs)
    power_reading: bool = True  # False: nvmlDeviceGetPowerUsage is NotSupported
    counter_frozen: bool = False  # True: the counter answers but never moves (a firmware fault)
    _energy_mj: float = 0.0
    _counter_mj: int = 0  # the last counter value reported: the hardware counter never goes back
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
        if gpu.architecture < NVML_DEVICE_ARCH_VOLTA or not gpu.energy_counter:
            raise NVMLError_NotSupported()
        if gpu.counter_frozen:
            return 123456
        # Report the energy as of the last counter update, as the hardware does.
        step = gpu.counter_update_s
        # The energy was advanced to gpu._last_t: the step is measured from the same instant, else the
        # reading would creep between updates by the power times the time between two clock reads.
        stale_s = (gpu._last_t - self.t0) % step if step > 0 else 0.0
        # Two reads within one update period must agree exactly, as on the hardware: float rounding of the
        # expression above may differ by a hair, and int() can turn that into a 1 mJ step backwards.
        gpu._counter_mj = max(gpu._counter_mj, int(gpu._energy_mj - gpu.power_w * stale_s * 1000.0))
        return gpu._counter_mj

    def nvmlDeviceGetPowerUsage(self, handle: FakeGpu) -> int:  # noqa: N802
        self._check("nvmlDeviceGetPowerUsage")
        gpu = self._gpu(handle)
        if not gpu.power_reading:
            raise NVMLError_NotSupported()
        return int(round(gpu.power_w * 1000.0))

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


@contextlib.contextmanager
def installed(*gpus: FakeGpu, loaded: bool = True) -> Iterator[FakeDriver]:
    """Install a fake driver as `pynvml` for the duration of the block (every GPU a FakeGpu; none: one H100).

    `loaded=False` is a machine without the NVIDIA library, as on CI runners without a GPU.
    """
    driver = FakeDriver(list(gpus) or [FakeGpu()], loaded=loaded)
    saved = sys.modules.get("pynvml")
    sys.modules["pynvml"] = driver.module()
    try:
        yield driver
    finally:
        if saved is None:
            sys.modules.pop("pynvml", None)
        else:
            sys.modules["pynvml"] = saved


# --- a meter moved by hand ------------------------------------------------------------------------------

class ManualClock:
    """Time and cumulative energy that only move when `advance` is called."""

    def __init__(self, t_s: float = 100.0, energy_j: float = 5000.0) -> None:
        self.t_s = t_s
        self.energy_j = energy_j

    def advance(self, seconds: float, joules: float) -> None:
        self.t_s += seconds
        self.energy_j += joules

    def perf_counter(self) -> float:
        """Stands in for time.perf_counter where code times itself (e.g. per-batch latency)."""
        return self.t_s


def fake_meter(read: Callable[[], tuple[float, dict[str, float]]],
               devices: dict[str, str] | None = None, name: str = "fake"):
    """A Meter whose readings come from `read() -> (t_s, {device: cumulative J})`.

    `devices` maps each device id to its method ("rapl", "nvml-counter", "estimate", ...); default one
    device "fake0" measured by "rapl". Factories below cover the usual cases.
    """
    from ..records import Method
    from .base import DeviceInfo, Meter, Reading

    devices = devices or {"fake0": "rapl"}

    class FakeMeter(Meter):
        min_window_s = 0.0

        def devices(self) -> list[DeviceInfo]:
            return [DeviceInfo(dev, f"fake {dev}", Method(method)) for dev, method in devices.items()]

        def read(self) -> Reading:
            t_s, energy_j = read()
            return Reading(t_s, dict(energy_j))

    FakeMeter.name = name
    return FakeMeter()


def manual_meter(clock: ManualClock | None = None, method: str = "rapl"):
    """A meter (one device, "fake0") reading a hand-moved clock; returns (meter, clock)."""
    clock = clock or ManualClock()
    return fake_meter(lambda: (clock.t_s, {"fake0": clock.energy_j}), {"fake0": method}, "manual"), clock


def scripted_meter(readings: Iterable[tuple[float, dict[str, float]]], devices: dict[str, str]):
    """A meter returning `readings` in order, one per read."""
    it = iter(readings)
    return fake_meter(lambda: next(it), devices, "scripted")


def constant_power_meter(watts: float, method: str = "estimate"):
    """`watts` on the real clock (time.perf_counter): energy tracks time, for code that really runs."""
    def read() -> tuple[float, dict[str, float]]:
        t = time.perf_counter()
        return t, {"fake0": watts * t}
    return fake_meter(read, {"fake0": method}, "constant")


def stepping_meter(seconds_per_read: float = 1.0, joules_per_read: float = 2.0, method: str = "estimate"):
    """Every read advances the clock and the counter by fixed steps: windows are deterministic."""
    count = [0]

    def read() -> tuple[float, dict[str, float]]:
        count[0] += 1
        return count[0] * seconds_per_read, {"fake0": count[0] * joules_per_read}
    return fake_meter(read, {"fake0": method}, "stepping")


def manual_measurer(idle_power_w: dict[str, float] | None = None):
    """A Measurer over a manual meter, with no CUDA synchronisation; returns (measurer, clock)."""
    from ..measure import Measurer

    meter, clock = manual_meter()
    return Measurer(meter, idle_power_w, sync=lambda: None), clock
