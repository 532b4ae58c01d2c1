"""Energy for pytest-benchmark's `benchmark` fixture: with --energy, its tests are metered unchanged.

Imported by the plugin only when pytest-benchmark is installed and --energy is given. pytest-benchmark itself
is never imported: its fixture object is recognised by duck typing, so any version from 4.0 to 5.3 works
and an unrelated `benchmark` fixture (pytest-codspeed, a project's own) is left alone with a note.

How a benchmark is metered
--------------------------
pytest-benchmark calibrates, runs warmup rounds, then measured rounds, each one `runner(loops_range)`
followed by `Metadata.update(duration)`. We replace two *instance* attributes of the fixture object (never
the class, so nothing leaks into other tests):

- `_make_runner`: the runner it returns is wrapped. Before `_make_stats` ran (calibration) it is not
  touched. Afterwards each call is bracketed by `perf_counter()` and meter readings, outside
  pytest-benchmark's own timer calls, so its timings do not include ours.
- `_make_stats`: the `Metadata` it returns gets an instance `update` wrapper. A runner call counts as a
  measured round exactly when its duration reaches `update`; warmup calls never do, and the cProfile pass
  and pedantic's extra result call do not use the runner at all.

Consecutive measured rounds are grouped into *samples* that each span at least `SAMPLE_PERIODS` x the
sensor's update period (an NVML counter moves every ~100 ms: a 5 µs call is invisible to it, one second of
them is not). Per sample: power = energy between the readings around the sample / their time, and energy
per call = power x time spent inside measured calls / calls (harness time and pedantic setup/teardown
between rounds are not charged to the function). A round long enough on its own is its own sample. Each
sample gives one value of `per_call.energy_j` (J per call) and `per_call.duration_s` (s per call) in the
test's record, so tables, baselines and the gate treat them like any other metric; one sample (a short
benchmark) still compares, with the gate saying INCONCLUSIVE.

Guard: at the end we check our count of measured rounds against `len(stats.data)` and of calls against
rounds x iterations. If pytest-benchmark's internals changed so that they disagree, the figures are dropped
with an IntegrationWarning and `energy_warning` in its JSON, never published wrong.
"""

from __future__ import annotations

import contextlib
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

from ..errors import EnergyError, IntegrationWarning, MeasurementError
from ..records import combine_methods

if TYPE_CHECKING:
    from ..measure import Measurer
    from ..meters.base import Reading
    from ..records import TestRecord

# A sample spans at least this many sensor update periods: the counter's quantisation error is then <= ~10 %.
SAMPLE_PERIODS = 10
# The series our metrics form: `per_call.energy_j` and `per_call.duration_s` (see report/series.py).
SERIES = "per_call"
# Keys written into pytest-benchmark's `extra_info` (and so into --benchmark-json); all start with "energy".
KEY_PREFIX = "energy"
DISABLED_NOTE = ("pytest-benchmark is disabled (--benchmark-disable, or pytest-xdist is active): tests using "
                 "`benchmark` run once and are not metered; run them with -n 0 to meter them")
INTERNALS_CHANGED = "pytest-benchmark internals changed; not metered"


def is_benchmark_fixture(obj: Any) -> bool:
    """pytest-benchmark's BenchmarkFixture (4.0 ... 5.3), by the attributes we use."""
    return all(hasattr(obj, name) for name in ("_make_runner", "_make_stats", "extra_info", "disabled", "stats"))


@dataclass
class _Sample:
    """Consecutive measured rounds: the readings around them and the time inside the measured calls."""

    start: Reading
    end: Reading | None = None
    rounds: int = 0
    calls: int = 0
    busy_s: float = 0.0

    @property
    def window_s(self) -> float:
        return self.end.t_s - self.start.t_s if self.end is not None else 0.0

    def merge(self, later: _Sample) -> None:
        self.end = later.end
        self.rounds += later.rounds
        self.calls += later.calls
        self.busy_s += later.busy_s


class BenchmarkEnergy:
    """The energy of one pytest-benchmark fixture's measured rounds."""

    def __init__(self, fixture: Any, measurer: Measurer) -> None:
        self.fixture = fixture
        self.measurer = measurer
        self.sample_min_s = SAMPLE_PERIODS * measurer.meter.min_window_s
        self.samples: list[_Sample] = []
        self.open: _Sample | None = None
        self.pending: tuple[float, float, Reading, int] | None = None  # the latest metered runner call
        self.rounds = 0
        self.calls = 0
        self.meta: Any = None  # pytest-benchmark's Metadata, once _make_stats ran
        self.problem: str | None = None  # set when pytest-benchmark did something we do not understand
        self.figures: dict[str, Any] | None = None

    # -- instrumentation -----------------------------------------------------------------------
    def install(self) -> None:
        fixture = self.fixture
        make_runner, make_stats = fixture._make_runner, fixture._make_stats  # bound: this object only

        def metered_make_runner(function_to_benchmark: Any, args: Any, kwargs: Any) -> Callable[..., Any]:
            runner = make_runner(function_to_benchmark, args, kwargs)

            def metered_runner(loops_range: Any, *a: Any, **kw: Any) -> Any:
                if fixture.stats is None:  # calibration: before _make_stats, never metered
                    return runner(loops_range, *a, **kw)
                return self._round(runner, loops_range, a, kw)

            return metered_runner

        def metered_make_stats(iterations: int) -> Any:
            meta = make_stats(iterations)
            update = meta.update

            def metered_update(duration: float) -> Any:
                self._measured()
                return update(duration)

            meta.update = metered_update
            self.meta = meta
            return meta

        fixture._make_runner = metered_make_runner
        fixture._make_stats = metered_make_stats
        fixture._pytest_energy = self

    def _round(self, runner: Callable[..., Any], loops_range: Any, args: tuple, kwargs: dict) -> Any:
        if self.open is None or self.open.rounds == 0:
            # Reset until a round is actually measured: warmup calls go through here too.
            self.open = _Sample(self.measurer.read())
        t0 = time.perf_counter()
        try:
            return runner(loops_range, *args, **kwargs)
        finally:
            t1 = time.perf_counter()
            self.pending = (t0, t1, self.measurer.read(), len(loops_range) if loops_range else 1)

    def _measured(self) -> None:
        """pytest-benchmark recorded a round: the latest runner call was a measured one."""
        pending, self.pending = self.pending, None
        if pending is None or self.open is None:
            self.problem = "a round was recorded without a metered runner call"
            return
        t0, t1, after, calls = pending
        sample = self.open
        sample.end = after
        sample.rounds += 1
        sample.calls += calls
        sample.busy_s += t1 - t0
        self.rounds += 1
        self.calls += calls
        if sample.window_s >= self.sample_min_s:
            self.samples.append(sample)
            self.open = None

    # -- figures -------------------------------------------------------------------------------
    def _check(self) -> str | None:
        """Why our count disagrees with pytest-benchmark's, or None when it agrees."""
        if self.problem:
            return self.problem
        try:
            rounds = len(self.meta.stats.data)
            iterations = int(self.meta.iterations)
        except (AttributeError, TypeError, ValueError) as exc:
            return f"cannot read its round count ({exc})"
        if rounds != self.rounds or rounds * iterations != self.calls:
            return (f"it recorded {rounds} rounds x {iterations} iterations, pytest-energy metered "
                    f"{self.rounds} rounds and {self.calls} calls")
        return None

    def _energy_j(self, sample: _Sample) -> float:
        deltas = self.measurer.meter.delta_j(sample.start, sample.end)
        for device, joules in deltas.items():
            if not math.isfinite(joules) or joules < 0:
                raise MeasurementError(f"meter {self.measurer.meter.name!r} returned an invalid energy for "
                                       f"{device}: {joules!r} J (counter reset or driver restart?)")
        return math.fsum(deltas.values())

    def finish(self, record: TestRecord | None) -> dict[str, Any] | None:
        """Close the last sample, check the counts, publish the figures (pytest-benchmark's extra_info and
        `record`'s metrics). Returns the figures, or None when nothing was measured or they were dropped."""
        if self.meta is None or self.figures is not None:
            return self.figures
        if self.open is not None and self.open.rounds:
            # The last rounds, shorter than a sample: part of the previous sample, or the only one.
            if self.samples:
                self.samples[-1].merge(self.open)
            else:
                self.samples.append(self.open)
            self.open = None
        extra = self.meta.extra_info
        problem = self._check() if self.rounds else None
        if problem is not None:
            for key in [k for k in extra if k.startswith(KEY_PREFIX)]:
                del extra[key]
            extra["energy_warning"] = f"{INTERNALS_CHANGED}: {problem}"
            warnings.warn(f"{getattr(self.fixture, 'fullname', '')}: {INTERNALS_CHANGED} ({problem}); the energy "
                          "figures of this benchmark were dropped", IntegrationWarning, stacklevel=2)
            return None
        if not self.samples:
            return None
        per_call_j, per_call_s = [], []
        total_j = busy_s = window_j = window_s = 0.0
        for sample in self.samples:
            j = self._energy_j(sample)
            power_w = j / sample.window_s if sample.window_s > 0 else 0.0
            sample_j = power_w * sample.busy_s  # only the time inside measured calls is charged
            per_call_j.append(sample_j / sample.calls)
            per_call_s.append(sample.busy_s / sample.calls)
            total_j += sample_j
            busy_s += sample.busy_s
            window_j += j
            window_s += sample.window_s
        method = combine_methods(str(d.method) for d in self.measurer.meter.devices())
        figures: dict[str, Any] = {
            "energy_j_per_call": total_j / self.calls,
            "energy_power_w": total_j / busy_s if busy_s > 0 else None,
            "energy_method": method,
            "energy_calls": self.calls,
            "energy_rounds": self.rounds,
            "energy_samples": len(self.samples),
            "energy_window_j": window_j,
            "energy_window_s": window_s,
        }
        idle = self.measurer.idle_power_w
        if idle is not None:
            idle_w = math.fsum(idle.values())
            figures["energy_net_j_per_call"] = (total_j - idle_w * busy_s) / self.calls
        if window_s < self.sample_min_s:
            figures["energy_warning"] = (
                f"metered for {window_s:.3g} s, less than {SAMPLE_PERIODS}x the {self.measurer.meter.name} "
                f"sensor's update period ({self.sample_min_s:.3g} s): the energy is coarse; raise "
                "--benchmark-max-time (or pedantic rounds)")
        extra.pop("energy_warning", None)
        extra.update(figures)
        self.figures = figures
        if record is not None:
            record.metric(f"{SERIES}.duration_s", "s").samples.extend(per_call_s)
            record.metric(f"{SERIES}.energy_j", "J", method=method).samples.extend(per_call_j)
            record.extra_info.update({k: v for k, v in figures.items() if k != "energy_j_per_call"})
        return figures


class BenchmarkMetering:
    """The pytest hooks: find each test's `benchmark` fixture, meter it, publish when the test body ends.

    `measurer_for(item)` gives the session's Measurer (opening the meter), `record_for(item)` the test's
    TestRecord (shared with the `energy` fixture when a test uses both). Notes (why a test was not metered)
    ride on the test report, so under pytest-xdist the controller prints what the workers saw.
    """

    def __init__(self, measurer_for: Callable[[Any], Measurer], record_for: Callable[[Any], TestRecord]) -> None:
        self.measurer_for = measurer_for
        self.record_for = record_for
        self.notes: list[str] = []  # for the terminal summary, each once
        self.item_notes: dict[str, str] = {}  # nodeid -> note, until its report is made
        self.metered: dict[str, BenchmarkEnergy] = {}

    @pytest.hookimpl(wrapper=True)
    def pytest_fixture_setup(self, fixturedef: Any, request: Any) -> Any:
        value = yield
        if fixturedef.argname == "benchmark":
            self._attach(value, request.node)
        return value

    def _attach(self, value: Any, item: Any) -> None:
        if not is_benchmark_fixture(value):
            self.item_notes[item.nodeid] = f"{item.nodeid}: `benchmark` is not pytest-benchmark's fixture; not metered"
            return
        if value.disabled:
            self.item_notes[item.nodeid] = DISABLED_NOTE
            return
        if getattr(value, "_pytest_energy", None) is not None:
            return  # a conftest fixture that wraps `benchmark` fires this hook twice for one object
        try:
            measurer = self.measurer_for(item)
        except EnergyError as exc:
            pytest.fail(f"pytest-energy: {exc}", pytrace=False)
        meter = BenchmarkEnergy(value, measurer)
        meter.install()
        self.metered[item.nodeid] = meter

    @pytest.hookimpl(wrapper=True)
    def pytest_pyfunc_call(self, pyfuncitem: Any) -> Any:
        try:
            result = yield
        except BaseException:
            meter = self.metered.pop(pyfuncitem.nodeid, None)
            if meter is not None:
                with contextlib.suppress(EnergyError):  # the test's own error matters more
                    meter.finish(None)
            raise
        meter = self.metered.pop(pyfuncitem.nodeid, None)
        if meter is not None:
            try:
                meter.finish(self.record_for(pyfuncitem))
            except EnergyError as exc:
                pytest.fail(f"pytest-energy: {exc}", pytrace=False)
        return result

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: Any, call: Any) -> Any:
        report = yield
        if call.when == "teardown":
            self.metered.pop(item.nodeid, None)  # the body never ran (a setup error): nothing to publish
            note = self.item_notes.pop(item.nodeid, None)
            if note is not None:
                report.energy_note = note
        return report

    def pytest_runtest_logreport(self, report: Any) -> None:
        note = getattr(report, "energy_note", None)
        if note and note not in self.notes:
            self.notes.append(note)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        for note in self.notes:
            terminalreporter.write_line(f"pytest-energy: {note}")
