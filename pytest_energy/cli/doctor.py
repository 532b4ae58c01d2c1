"""`python -m pytest_energy doctor`: does metering work on this machine, and how well?

For every meter: does it answer, and if not, why. For every GPU this process may use: energy counter or
power polling, how often the sensor updates, idle power, and under a torch matmul load the energy from the
counter against the integral of the power readings, plus whether CUDA synchronisation at window edges
makes a window cover the GPU work it contains. On a machine without a GPU it says so and checks what is
measured instead (RAPL, the estimate) under a CPU load. Its figures, with the command, are what
docs/measurement.md reports for real hardware (`--markdown` writes them as a table).

No pytest here. torch is optional: without it there is no GPU load, and the CPU load is a Python loop.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import socket
import statistics
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from .. import __version__
from ..errors import EnergyError, MeasurementError, ShortWindowWarning
from ..measure import Measurer
from ..meters import METER_CHOICES, Meter, open_meter
from ..report import format as fmt

DEFAULT_LOAD_S = 15.0
DEFAULT_IDLE_S = 2.0
PERIOD_S = 1.5  # how long the sensor is watched to measure its update period
CPU_LOAD_MAX_S = 5.0
AGREEMENT_WARN_PCT = 5.0  # counter vs polled power integral; the readings average differently, so a warning
SYNC_COVERAGE = 0.95  # a synchronised window must last at least this share of the GPU work inside it


@dataclass
class MeterStatus:
    name: str
    usable: bool
    detail: str  # the devices, or why it is unusable


@dataclass
class LoadCheck:
    what: str  # e.g. "torch matmul 8192x8192 float16 on cuda:0"
    seconds: float
    iterations: int
    energy_j: dict[str, float] = field(default_factory=dict)  # by path: "nvml-counter", "nvml-polling", "rapl", ...
    power_w: dict[str, float] = field(default_factory=dict)
    agreement_pct: float | None = None  # polled integral vs counter, (polled - counter) / counter
    note: str = ""
    errors: dict[str, str] = field(default_factory=dict)  # meters whose window failed, and why


@dataclass
class SyncCheck:
    works: bool | None  # None: not checked
    window_s: float | None = None  # a synchronised window around the queued work
    gpu_s: float | None = None  # the GPU time of that work (CUDA events)
    unsynced_window_s: float | None = None  # the same window without synchronisation
    note: str = ""


@dataclass
class GpuReport:
    index: int
    uuid: str
    name: str
    method: str
    power_limit_w: float | None = None
    counter_period_s: float | None = None
    power_period_s: float | None = None
    idle_power_w: float | None = None
    load: LoadCheck | None = None
    sync: SyncCheck | None = None
    problems: list[str] = field(default_factory=list)


@dataclass
class CpuReport:
    load: LoadCheck | None = None
    rapl_period_s: float | None = None
    note: str = ""


@dataclass
class Report:
    command: str
    environment: dict[str, Any]
    meters: list[MeterStatus]
    auto_choice: str
    asked: str
    gpus: list[GpuReport]
    no_gpu_reason: str | None
    cpu: CpuReport | None
    problems: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return 1 if self.problems else 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"exit_code": self.exit_code}


# --- measuring ------------------------------------------------------------------------------------------------

def update_period_s(read: Callable[[], float], duration_s: float = PERIOD_S,
                    interval_s: float = 0.0005) -> tuple[float | None, int]:
    """Median time between changes of a sensor reading, watched for `duration_s`; (None, changes) with
    fewer than 3 changes (a reading that does not move, e.g. constant power)."""
    changes = []
    last = read()
    end = time.perf_counter() + duration_s
    while time.perf_counter() < end:
        time.sleep(interval_s)
        value = read()
        if value != last:
            changes.append(time.perf_counter())
            last = value
    gaps = [b - a for a, b in zip(changes, changes[1:])]
    return (statistics.median(gaps) if len(gaps) >= 2 else None), len(changes)


def _torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


def _cuda_index(torch: Any, uuid: str) -> int | None:
    """torch's index of the GPU with this NVML UUID (CUDA may number GPUs differently from NVML)."""
    if torch is None or not torch.cuda.is_available():
        return None
    for i in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(i)
        if f"GPU-{getattr(props, 'uuid', '')}".lower() == uuid.lower():
            return i
    return 0 if torch.cuda.device_count() == 1 else None


class _MatmulLoad:
    """Back-to-back matmuls on one device; synchronised every few iterations so it stops on time."""

    def __init__(self, torch: Any, device: str, size: int, dtype: Any) -> None:
        self.torch, self.device = torch, device
        self.a = torch.randn(size, size, device=device, dtype=dtype)
        self.b = torch.randn(size, size, device=device, dtype=dtype)
        self.what = f"torch matmul {size}x{size} {str(dtype).replace('torch.', '')} on {device}"
        self._sync()

    def _sync(self) -> None:
        if self.device.startswith("cuda"):
            self.torch.cuda.synchronize(self.device)

    def queue(self, n: int) -> None:
        for _ in range(n):
            self.a @ self.b  # noqa: B018 - the work is the point

    def run(self, seconds: float) -> int:
        done = 0
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            self.queue(4)
            self._sync()
            done += 4
        return done


def _python_load(seconds: float) -> int:
    done = 0
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        sum(i * i for i in range(10_000))
        done += 1
    return done


def _window(measurers: dict[str, Measurer], work: Callable[[], int]) -> tuple[dict[str, Any], dict[str, str], int]:
    """Run `work` inside one window of each measurer, all over the same interval. Returns (windows, errors,
    work's result): a meter whose window fails (a frozen counter, a lost GPU) is an error by name, and the
    other meters' windows still count."""
    opened = []
    try:
        for name, measurer in measurers.items():
            context = measurer.measure("doctor")
            opened.append((name, context, context.__enter__()))
        result = work()
    except BaseException as exc:
        for _, context, _ in reversed(opened):
            context.__exit__(type(exc), exc, exc.__traceback__)
        raise
    windows, errors = {}, {}
    for name, context, window in reversed(opened):
        try:
            context.__exit__(None, None, None)
            windows[name] = window
        except MeasurementError as exc:
            errors[name] = str(exc)
    return windows, errors, result


def _no_sync() -> None:
    pass


def check_gpu(gpu: Any, load_s: float, idle_s: float, torch: Any) -> GpuReport:
    """Every check of one GPU (`gpu`: an NvmlMeter GPU: index, uuid, name, counter)."""
    from ..meters.nvml import NvmlMeter

    method = "nvml-counter" if gpu.counter else "nvml-polling"
    report = GpuReport(gpu.index, gpu.uuid, gpu.name, method)
    with contextlib.ExitStack() as stack:
        meter = stack.enter_context(NvmlMeter(visible_devices=gpu.uuid))
        report.power_limit_w = (meter.fingerprint().get("gpu_power_limit_w") or [None])[0]
        nv, handle = meter._nv, meter.gpus[0].handle
        sensors = {"power_period_s": lambda: nv.nvmlDeviceGetPowerUsage(handle)}
        if gpu.counter:
            sensors["counter_period_s"] = lambda: nv.nvmlDeviceGetTotalEnergyConsumption(handle)
        measurers = {method: Measurer(meter, sync=_no_sync)}
        if gpu.counter:  # the same GPU through the polling path, to compare the two
            polled = stack.enter_context(NvmlMeter(visible_devices=gpu.uuid, polling=True))
            measurers["nvml-polling"] = Measurer(polled, sync=_no_sync)
        windows, errors, _ = _window(measurers, lambda: time.sleep(idle_s) or 0)
        report.idle_power_w = windows[method].power_w if method in windows else None
        report.problems += [f"GPU {gpu.index}, idle, {name}: {text}" for name, text in errors.items()]
        cuda = _cuda_index(torch, gpu.uuid)
        if cuda is None:
            why = ("torch is not installed" if torch is None else
                   "torch cannot use CUDA here" if not torch.cuda.is_available() else
                   "no CUDA device has this GPU's UUID")
            load, note = None, f"no load ({why}): the GPU draws what it draws; the meters are compared all the same"
        else:
            load = _MatmulLoad(torch, f"cuda:{cuda}", 8192, torch.float16)
            note = ""
        # The sensors are watched during the load, where their readings change at every update.
        watchers = [threading.Thread(target=lambda k=k, read=read: setattr(report, k, update_period_s(read)[0]),
                                     daemon=True) for k, read in sensors.items()]
        for t in watchers:
            t.start()
        windows, errors, iterations = _window(measurers, (lambda: load.run(load_s)) if load else
                                              (lambda: time.sleep(load_s) or 0))
        for t in watchers:
            t.join()
        check = _load_check(load.what if load else "no load", windows, errors, iterations, note)
        report.problems += [f"GPU {gpu.index}, under load, {name}: {text}" for name, text in errors.items()]
        if gpu.counter and "nvml-counter" in windows and "nvml-polling" in windows:
            counter_j = check.energy_j["nvml-counter"]
            if counter_j > 0:
                check.agreement_pct = (check.energy_j["nvml-polling"] - counter_j) / counter_j * 100.0
            else:
                report.problems.append(f"GPU {gpu.index}: the energy counter did not advance in {load_s:g} s")
        report.load = check
        report.sync = check_sync(torch, load, meter) if load else SyncCheck(None, note="not checked: no CUDA load")
    if report.sync and report.sync.works is False:
        report.problems.append(f"GPU {gpu.index}: a synchronised window did not cover the GPU work in it")
    return report


def check_sync(torch: Any, load: _MatmulLoad, meter: Meter) -> SyncCheck:
    """Queue about a second of GPU work inside a window: with pytest-energy's synchronisation at the
    edges the window must last as long as the work (CUDA events time it); without, it closes at once."""
    per_s = max(1, load.run(0.5) * 2)  # matmuls per second on this GPU
    n = int(min(per_s, 512))  # CUDA's launch queue is finite: more would block the CPU and hide the effect
    events = [torch.cuda.Event(enable_timing=True) for _ in range(2)]
    with warnings.catch_warnings():
        # A window that closes at once is what this check looks for, and reports; not a warning here.
        warnings.simplefilter("ignore", ShortWindowWarning)
        with Measurer(meter).measure("sync") as synced:
            events[0].record()
            load.queue(n)
            events[1].record()
        load._sync()
        gpu_s = events[0].elapsed_time(events[1]) / 1000.0
        with Measurer(meter, sync=_no_sync).measure("unsynced") as unsynced:
            load.queue(n)
        load._sync()
    works = synced.duration_s >= SYNC_COVERAGE * gpu_s
    return SyncCheck(works, synced.duration_s, gpu_s, unsynced.duration_s)


def check_cpu(load_s: float, torch: Any, cpu_watts_per_core: float, powercap_root: str | None) -> CpuReport:
    """A CPU load metered by the estimate and, where readable, RAPL."""
    from ..meters.estimate import EstimateMeter

    report = CpuReport()
    measurers = {"estimate": Measurer(EstimateMeter(cpu_watts_per_core), sync=_no_sync)}
    rapl = None
    try:
        rapl = open_meter("rapl", powercap_root=powercap_root)
    except EnergyError as exc:
        report.note = str(exc)
    try:
        if rapl is not None:
            measurers["rapl"] = Measurer(rapl, sync=_no_sync)
            report.rapl_period_s, _ = update_period_s(lambda: sum(rapl.read().energy_j.values()))
        if torch is not None:
            load = _MatmulLoad(torch, "cpu", 512, torch.float32)
            what, work = load.what, (lambda: load.run(load_s))
        else:
            what, work = "a Python loop (torch is not installed)", (lambda: _python_load(load_s))
        windows, errors, iterations = _window(measurers, work)
    finally:
        if rapl is not None:
            rapl.close()
    report.load = _load_check(what, windows, errors, iterations)
    return report


def _load_check(what: str, windows: dict[str, Any], errors: dict[str, str], iterations: int,
                note: str = "") -> LoadCheck:
    seconds = max((w.duration_s for w in windows.values()), default=math.nan)
    check = LoadCheck(what, seconds, iterations, note=note, errors=dict(errors))
    for name, w in windows.items():
        check.energy_j[name], check.power_w[name] = w.energy_j, w.power_w
    return check


def meter_statuses(cpu_watts_per_core: float, powercap_root: str | None) -> tuple[list[MeterStatus], str]:
    """Whether each meter answers (and why not), and what `auto` would choose."""
    statuses = []
    for name in METER_CHOICES[1:]:
        try:
            with open_meter(name, cpu_watts_per_core=cpu_watts_per_core, powercap_root=powercap_root) as meter:
                devices = ", ".join(f"{d.device} ({d.name}, {d.method})" for d in meter.devices())
                statuses.append(MeterStatus(name, True, devices))
        except EnergyError as exc:
            statuses.append(MeterStatus(name, False, str(exc)))
    auto = next(s.name for s in statuses if s.usable)  # the estimate always answers
    return statuses, auto


def run_doctor(asked: str = "auto", load_s: float = DEFAULT_LOAD_S, idle_s: float = DEFAULT_IDLE_S,
               cpu_watts_per_core: float = 10.0, powercap_root: str | None = None,
               command: str = "python -m pytest_energy doctor") -> Report:
    torch = _torch()
    meters, auto = meter_statuses(cpu_watts_per_core, powercap_root)
    env = {"pytest_energy": __version__, "python": platform.python_version(), "host": socket.gethostname(),
           "platform": platform.platform(), "torch": getattr(torch, "__version__", None),
           "cuda_available": bool(torch is not None and torch.cuda.is_available()),
           "CUDA_VISIBLE_DEVICES": os.environ.get("CUDA_VISIBLE_DEVICES"),
           "CUDA_DEVICE_ORDER": os.environ.get("CUDA_DEVICE_ORDER"), "cpu_watts_per_core": cpu_watts_per_core}
    report = Report(command, env, meters, auto, asked, [], None, None)
    status = {m.name: m for m in meters}
    if asked != "auto" and not status[asked].usable:
        report.problems.append(f"the meter asked for ({asked}) is unusable: {status[asked].detail}")
    if status["nvml"].usable:
        from ..meters.nvml import NvmlMeter

        with NvmlMeter() as meter:
            gpus = list(meter.gpus)
        for gpu in gpus:
            gpu_report = check_gpu(gpu, load_s, idle_s, torch)
            report.gpus.append(gpu_report)
            report.problems += gpu_report.problems
    else:
        report.no_gpu_reason = status["nvml"].detail
    report.cpu = check_cpu(min(load_s, CPU_LOAD_MAX_S), torch, cpu_watts_per_core, powercap_root)
    if asked == "rapl" or (asked == "auto" and auto == "rapl"):  # RAPL is what will meter: its faults count
        report.problems += [f"CPU load, {name}: {text}" for name, text in report.cpu.load.errors.items()]
    return report


# --- output ---------------------------------------------------------------------------------------------------

def _ms(seconds: float | None) -> str:
    return fmt.value(seconds * 1000.0 if seconds is not None else None, "ms", 3)


def _load_lines(check: LoadCheck) -> list[str]:
    lines = [f"  load: {check.what} for {fmt.value(check.seconds, 's', 3)}"
             + (f" ({check.iterations} iterations)" if check.iterations else "")]
    if check.note:
        lines.append(f"    {check.note}")
    for name, joules in check.energy_j.items():
        lines.append(f"    {name}: {fmt.value(joules, 'J')} ({fmt.value(check.power_w[name], 'W')} average)")
    for name, text in check.errors.items():
        lines.append(f"    {name}: FAILED: {text}")
    if check.agreement_pct is not None:
        flag = "" if abs(check.agreement_pct) <= AGREEMENT_WARN_PCT else \
            f"  WARNING: beyond ±{AGREEMENT_WARN_PCT:g} % (power readings are averages; prefer the counter)"
        lines.append(f"    polled power integral vs counter: {fmt.change(check.agreement_pct)}{flag}")
    return lines


def text_lines(report: Report) -> list[str]:
    env = report.environment
    lines = [f"pytest-energy doctor {env['pytest_energy']} on {env['host']} (Python {env['python']}, torch "
             f"{env['torch'] or 'not installed'}, CUDA available to torch: {'yes' if env['cuda_available'] else 'no'})",
             "", "meters"]
    for m in report.meters:
        lines.append(f"  {m.name:<9} {'answers' if m.usable else 'unusable'}: {m.detail}")
    lines.append(f"  --energy-meter auto would choose: {report.auto_choice}")
    lines.append("")
    if not report.gpus:
        lines += [f"no GPU: {report.no_gpu_reason}", "  measured instead: the CPU load below", ""]
    for g in report.gpus:
        lines.append(f"GPU {g.index}: {g.name} ({g.uuid}), power limit {fmt.value(g.power_limit_w, 'W')}")
        lines.append(f"  method: {g.method} ({'energy counter' if g.method == 'nvml-counter' else 'power polling'})")
        lines.append(f"  sensor update period: energy counter {_ms(g.counter_period_s)}, power reading "
                     f"{_ms(g.power_period_s)} (median time between changes, watched {PERIOD_S:g} s under the "
                     "load; n/a: the reading did not change)")
        lines.append(f"  idle power: {fmt.value(g.idle_power_w, 'W')}")
        if g.load:
            lines += _load_lines(g.load)
        if g.sync:
            if g.sync.works is None:
                lines.append(f"  CUDA synchronisation at window edges: {g.sync.note}")
            else:
                lines.append(f"  CUDA synchronisation at window edges: {'works' if g.sync.works else 'FAILS'}: "
                             f"window {fmt.value(g.sync.window_s, 's')} around {fmt.value(g.sync.gpu_s, 's')} of "
                             f"queued GPU work (CUDA events); without synchronisation "
                             f"{fmt.value(g.sync.unsynced_window_s, 's')}")
        lines.append("")
    if report.cpu:
        lines.append("CPU")
        if report.cpu.note:
            lines.append(f"  rapl: {report.cpu.note}")
        if report.cpu.rapl_period_s is not None:
            lines.append(f"  rapl update period: {_ms(report.cpu.rapl_period_s)}")
        if report.cpu.load:
            lines += _load_lines(report.cpu.load)
            if "estimate" in report.cpu.load.energy_j:
                watts = report.environment["cpu_watts_per_core"]
                cpu_s = report.cpu.load.energy_j["estimate"] / watts
                lines.append(f"    (estimate = {fmt.value(cpu_s, 'CPU s')} x {watts:g} W per busy core: a model, not "
                             "a measurement; it sees no GPU and no idle draw)")
        lines.append("")
    if report.problems:
        lines += ["result: PROBLEMS"] + [f"  {p}" for p in report.problems]
    else:
        lines.append(f"result: OK (meter asked for: {report.asked})")
    return lines


def markdown(report: Report) -> str:
    """The figures docs/measurement.md reports for a machine, with the command that produced them."""
    env = report.environment
    out = [f"Measured with `{report.command}` on {env['host']} (pytest-energy {env['pytest_energy']}, "
           f"torch {env['torch'] or 'not installed'}).", ""]
    if report.gpus:
        out += ["| GPU | method | counter update | power update | idle | load | counter energy | polled energy | "
                "agreement | CUDA sync |", "|---|---|---|---|---|---|---|---|---|---|"]
        for g in report.gpus:
            load = g.load or LoadCheck("", math.nan, 0)
            sync = g.sync or SyncCheck(None)
            sync_text = ("not checked" if sync.works is None else
                         f"{'works' if sync.works else 'FAILS'} ({fmt.value(sync.window_s, 's')} window, "
                         f"{fmt.value(sync.gpu_s, 's')} GPU work)")
            out.append(
                f"| {g.index}: {g.name} | {g.method} | {_ms(g.counter_period_s)} | {_ms(g.power_period_s)} | "
                f"{fmt.value(g.idle_power_w, 'W')} | {load.what}, {fmt.value(load.seconds, 's', 3)} | "
                f"{fmt.value(load.energy_j.get('nvml-counter'), 'J')} | "
                f"{fmt.value(load.energy_j.get('nvml-polling'), 'J')} | {fmt.change(load.agreement_pct)} | "
                f"{sync_text} |")
    else:
        out.append(f"No GPU: {report.no_gpu_reason}")
    if report.cpu and report.cpu.load:
        c = report.cpu.load
        out += ["", f"CPU load ({c.what}, {fmt.value(c.seconds, 's', 3)}): "
                + "; ".join(f"{k} {fmt.value(v, 'J')} ({fmt.value(c.power_w[k], 'W')})" for k, v in c.energy_j.items())
                + (f"; {report.cpu.note}" if report.cpu.note else "")]
    return "\n".join(out) + "\n"


def main(args: Any, command: str) -> int:
    """The `doctor` subcommand (`args` from add_arguments); returns the exit code."""
    from ..files import write_atomic

    report = run_doctor(args.meter, args.load_s, args.idle_s, args.cpu_watts_per_core, args.powercap_root, command)
    print("\n".join(text_lines(report)))
    for path, text in ((args.json, json.dumps(report.to_dict(), indent=2, sort_keys=True, default=str) + "\n"),
                       (args.markdown, markdown(report))):
        if path:
            write_atomic(path, text, what="doctor report")
            print(f"wrote {path}")
    return report.exit_code


def add_arguments(parser: Any) -> None:
    parser.add_argument("--meter", choices=METER_CHOICES, default="auto",
                        help="the meter you intend to use: exit 1 when it is unusable (default: auto)")
    parser.add_argument("--load-s", type=_positive, default=DEFAULT_LOAD_S, metavar="SECONDS",
                        help=f"length of the matmul load per GPU (default {DEFAULT_LOAD_S:g}; the CPU load is at "
                             f"most {CPU_LOAD_MAX_S:g})")
    parser.add_argument("--idle-s", type=_positive, default=DEFAULT_IDLE_S, metavar="SECONDS",
                        help=f"length of the idle-power window (default {DEFAULT_IDLE_S:g})")
    parser.add_argument("--cpu-watts-per-core", type=_positive, default=10.0, metavar="WATTS",
                        help="the estimate's model (default 10)")
    parser.add_argument("--powercap-root", default=None, help=argparse.SUPPRESS)  # tests: a fake powercap tree
    parser.add_argument("--json", metavar="PATH", help="also write every figure as JSON")
    parser.add_argument("--markdown", metavar="PATH",
                        help="also write the figures as the table docs/measurement.md uses")


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value

