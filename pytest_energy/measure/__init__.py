"""Metering windows: the engine behind `energy.measure()` and `energy(fn)`. Does not import pytest."""

from __future__ import annotations

import contextlib
import math
import resource
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

from ..errors import MeasurementError, ShortWindowWarning, UsageError
from ..meters.base import Meter, Reading
from ..records import DeviceEnergy, Method, Window, combine_methods

_SENSOR_METHODS = (Method.NVML_COUNTER, Method.NVML_POLLING, Method.RAPL)


def sync_cuda() -> None:
    """Wait for queued GPU work so a window edge is where the user thinks it is.

    Only when torch is already imported and CUDA already initialised: initialising CUDA just to
    synchronise would cost seconds and hundreds of MB, and change what is being measured.
    """
    torch = sys.modules.get("torch")
    if torch is None:
        return
    cuda = getattr(torch, "cuda", None)
    if cuda is None or not cuda.is_initialized():
        return
    for i in range(cuda.device_count()):
        cuda.synchronize(i)


class _PeakMemory:
    """Peak memory per window, correct when windows nest.

    GPU: torch's allocator peak when CUDA is in use. Otherwise the process's RSS high-water mark,
    reset per window through /proc/self/clear_refs (Linux >= 4.0); where that is not allowed we fall
    back to the lifetime peak (getrusage) and label it so.
    """

    def __init__(self) -> None:
        self._open: list[list[int]] = []  # running peak of each open window, innermost last
        self._rss_reset_ok: bool | None = None

    @staticmethod
    def _cuda():
        torch = sys.modules.get("torch")
        if torch is not None and torch.cuda.is_initialized():
            return torch.cuda
        return None

    def _current_peak(self) -> tuple[int, str]:
        cuda = self._cuda()
        if cuda is not None:
            n = cuda.device_count()
            return sum(cuda.max_memory_allocated(i) for i in range(n)), "torch.cuda.max_memory_allocated"
        hwm = _read_vm_hwm_bytes()
        if hwm is not None and self._rss_reset_ok:
            return hwm, "rss-hwm"
        # ru_maxrss is KiB on Linux
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "rss-lifetime"

    def _reset(self) -> None:
        # Fold the peak so far into every open window before wiping the high-water mark.
        peak, _ = self._current_peak()
        for slot in self._open:
            slot[0] = max(slot[0], peak)
        cuda = self._cuda()
        if cuda is not None:
            for i in range(cuda.device_count()):
                cuda.reset_peak_memory_stats(i)
            return
        if self._rss_reset_ok is False:
            return
        try:
            with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
                f.write("5")
            self._rss_reset_ok = True
        except OSError:
            self._rss_reset_ok = False

    def start(self) -> list[int]:
        self._reset()
        slot = [0]
        self._open.append(slot)
        return slot

    def stop(self, slot: list[int]) -> tuple[int, str]:
        peak, source = self._current_peak()
        self._open.remove(slot)
        return max(slot[0], peak), source


def _read_vm_hwm_bytes() -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return None


# `energy(fn)` makes each round last at least this many of the meter's update periods (pytest-benchmark
# calibrates timing the same way): a round of NVML's ~100 ms counter is then >= 1 s, and its quantisation
# at most ~10 % of one round; the per-call figures are the round's divided by its calls.
CALIBRATION_FACTOR = 10
MAX_CALLS_PER_ROUND = 10_000_000


def calibrate(fn: Callable[..., Any], args: tuple = (), kwargs: dict | None = None, *,
              min_round_s: float, max_calls: int = MAX_CALLS_PER_ROUND) -> int:
    """Calls per round so that one round of `fn` lasts at least `min_round_s` of wall time.

    Times 1 call, then as many as that timing says are needed (+10 %), until one timed batch reaches the
    target: usually two batches, at most ~2 x `min_round_s` of unmetered calls. 1 when min_round_s <= 0
    (then `fn` is not called at all).
    """
    kwargs = kwargs or {}
    calls = 1
    if not min_round_s > 0:
        return calls
    while True:
        t0 = time.perf_counter()
        for _ in range(calls):
            fn(*args, **kwargs)
        elapsed_s = time.perf_counter() - t0
        if elapsed_s >= min_round_s or calls >= max_calls:
            return calls
        needed = math.ceil(calls * 1.1 * min_round_s / elapsed_s) if elapsed_s > 0 else calls * 10
        calls = min(max_calls, max(needed, calls + 1))


def per_call(window: Window, calls: int) -> Window:
    """A round of `calls` calls as per-call figures: time and energy divided by the calls (peak memory is
    the round's). The window says how many calls it averages (`calls`)."""
    if calls == 1:
        return window
    devices = tuple(replace(d, energy_j=d.energy_j / calls) for d in window.devices)
    net = None if window.net_energy_j is None else window.net_energy_j / calls
    return replace(window, duration_s=window.duration_s / calls, energy_j=window.energy_j / calls,
                   devices=devices, net_energy_j=net, calls=calls)


class Measurer:
    """Turns meter readings into windows. One per session; shared by every test.

    `idle_power_w` maps device id to its idle power (W) measured before the session; when given,
    each window reports net-of-idle energy beside the gross figure. `probe` (pytest_energy.measure.probe.probe, or
    None: no probe) is what `take_probe` runs between rounds.
    """

    def __init__(self, meter: Meter, idle_power_w: dict[str, float] | None = None,
                 sync: Callable[[], None] = sync_cuda, probe: Callable[[], Any] | None = None) -> None:
        self.meter = meter
        self.idle_power_w = idle_power_w
        self._sync = sync
        self._probe = probe
        self._memory = _PeakMemory()
        self._names = {d.device: d for d in meter.devices()}

    @property
    def probing(self) -> bool:
        return self._probe is not None

    def take_probe(self) -> float | None:
        """Run the calibration probe (pytest_energy.measure.probe); its wall seconds, or None when there is no
        probe or this one is unusable (the process's own threads were busy during it)."""
        if self._probe is None:
            return None
        result = self._probe()
        return result.wall_s if result.usable else None

    def min_round_s(self) -> float:
        """How long a calibrated round must last with this meter: CALIBRATION_FACTOR update periods."""
        return CALIBRATION_FACTOR * self.meter.min_window_s

    def _read(self) -> Reading:
        self._sync()
        return self.meter.read()

    def read(self) -> Reading:
        """A meter reading taken after queued GPU work is done (for code that brackets work itself)."""
        return self._read()

    @contextlib.contextmanager
    def measure(self, label: str = "default") -> Iterator[Window]:
        """Meter the block. The yielded Window is filled in when the block exits normally."""
        window = Window(label=label)
        slot = self._memory.start()
        start = self._read()
        ok = False
        try:
            yield window
            ok = True
        finally:
            if ok:
                end = self._read()
                peak, source = self._memory.stop(slot)
                self._fill(window, start, end, peak, source)
            else:
                # The block raised: its exception matters more than the window. Don't mask it.
                with contextlib.suppress(Exception):
                    self._memory.stop(slot)

    def _fill(self, window: Window, start: Reading, end: Reading, peak: int, source: str) -> None:
        deltas = self.meter.delta_j(start, end)
        devices = []
        for dev, joules in deltas.items():
            if not math.isfinite(joules) or joules < 0:
                raise MeasurementError(
                    f"meter {self.meter.name!r} returned an invalid energy for {dev} in window "
                    f"{window.label!r}: {joules!r} J (counter reset or driver restart?)")
            info = self._names[dev]
            devices.append(DeviceEnergy(dev, joules, str(info.method), info.name))
        window.duration_s = end.t_s - start.t_s
        self._check_not_frozen(window, devices)
        window.devices = tuple(devices)
        window.energy_j = sum(d.energy_j for d in devices)
        window.method = combine_methods([d.method for d in devices])
        window.peak_memory_bytes = peak
        window.peak_memory_source = source
        if self.idle_power_w is not None:
            idle_w = sum(self.idle_power_w.get(d.device, 0.0) for d in devices)
            window.idle_power_w = idle_w
            window.net_energy_j = window.energy_j - idle_w * window.duration_s
        if window.duration_s < self.meter.min_window_s:
            msg = (f"energy window {window.label!r} lasted {window.duration_s * 1e3:.1f} ms, shorter than "
                   f"the {self.meter.name} sensor's update period (~{self.meter.min_window_s * 1e3:.0f} ms): "
                   f"its energy ({window.energy_j:.3g} J) may be 0 or quantised; measure longer work")
            window.warnings.append(msg)
            warnings.warn(msg, ShortWindowWarning, stacklevel=4)
        window.closed = True

    def _check_not_frozen(self, window: Window, devices: list[DeviceEnergy]) -> None:
        """A powered GPU or CPU package never draws 0 W: exactly 0 J over two sensor update periods or more
        is a frozen counter or a power reading stuck at 0, never a result to save. (The estimate may read
        0 J for a process that slept: its figures are CPU time, not a sensor.)"""
        period_s = self.meter.min_window_s
        if period_s <= 0 or window.duration_s < 2 * period_s:
            return  # too short to tell (or a meter that declares no update period)
        frozen = [d.device for d in devices if d.energy_j == 0.0 and d.method in _SENSOR_METHODS]
        if frozen:
            raise MeasurementError(
                f"meter {self.meter.name!r} read exactly 0 J from {', '.join(frozen)} over "
                f"{window.duration_s * 1e3:.0f} ms in window {window.label!r} (>= 2 sensor update periods of "
                f"{self.meter.min_window_s * 1e3:.0f} ms): a frozen energy counter or a power reading stuck "
                "at 0 mW; the energy of this window is unknown")

    def run(self, fn: Callable[..., Any], args: tuple = (), kwargs: dict | None = None, *,
            rounds: int, warmup: int, label: str = "round", calls: int = 1,
            between: Callable[[], Any] | None = None) -> tuple[Any, list[Window]]:
        """`warmup` unmetered rounds, then `rounds` metered ones, each of `calls` calls; returns the last
        result and every round as per-call figures (`per_call`). `between` runs before every metered round
        and after the last (the probe), outside the windows."""
        if rounds < 1:
            raise UsageError(f"rounds must be >= 1, got {rounds}")
        if warmup < 0:
            raise UsageError(f"warmup must be >= 0, got {warmup}")
        if calls < 1:
            raise UsageError(f"calls per round must be >= 1, got {calls}")
        kwargs = kwargs or {}
        result = None
        for _ in range(warmup * calls):
            result = fn(*args, **kwargs)
        windows = []
        for _ in range(rounds):
            if between is not None:
                between()
            with self.measure(label) as w:
                for _ in range(calls):
                    result = fn(*args, **kwargs)
            windows.append(per_call(w, calls))
        if between is not None:
            between()
        return result, windows


def measure_idle_power(meter: Meter, duration_s: float) -> dict[str, float]:
    """Average power per device (W) while this process sleeps for `duration_s`.

    Gross energy is what the devices drew; net-of-idle subtracts this. Other processes on the
    machine count as 'idle' here, which is why gross stays the headline figure.
    """
    if duration_s <= 0:
        raise UsageError(f"idle measurement needs a positive duration, got {duration_s}")
    start = meter.read()
    time.sleep(duration_s)
    end = meter.read()
    dt = end.t_s - start.t_s
    return {dev: j / dt for dev, j in meter.delta_j(start, end).items()}


class UnmeteredMeter(Meter):
    """--energy-disable: no sensor at all. Energy is unknown (NaN), never 0 J; time is still the clock's."""

    name = "unmetered"

    def devices(self) -> list:
        return []

    def read(self) -> Reading:
        return Reading(time.perf_counter(), {})

    def delta_j(self, start: Reading, end: Reading) -> dict[str, float]:
        return {"unmetered": math.nan}


class UnmeteredMeasurer(Measurer):
    """The measurer of a --energy-disable smoke run: windows get their duration, energy stays NaN.

    Nothing measured this way is recorded, compared or reported; it only lets test bodies and protocols run.
    """

    def __init__(self) -> None:
        super().__init__(UnmeteredMeter(), None, sync=lambda: None)

    def _fill(self, window: Window, start: Reading, end: Reading, peak: int, source: str) -> None:
        window.duration_s = end.t_s - start.t_s
        window.method = "unmetered"
        window.peak_memory_bytes, window.peak_memory_source = peak, source
        window.closed = True
