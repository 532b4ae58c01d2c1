"""One energy session: the meter, the baselines, the verdicts and the reports. Does not import pytest.

The plugin creates one per pytest process. Under pytest-xdist every worker measures with its own
session; records and verdicts travel to the controller on the test reports, and only the controller
writes reports and baselines.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any

from .errors import UsageError
from .measure import Measurer, measure_idle_power
from .meters import Meter, open_meter
from .results import TestRecord
from .settings import TestSettings


@dataclass(frozen=True)
class SessionOptions:
    meter: str = "auto"
    rounds: int = 5
    warmup: int = 1
    tolerance: float = 0.08
    idle_s: float = 0.0
    cpu_watts_per_core: float | None = None
    baseline_dir: str = "baselines"
    save_baseline: bool = False
    require_baseline: bool = False
    json_path: str | None = None
    markdown_path: str | None = None
    html_path: str | None = None
    rootdir: str = "."
    carbon: Any = None  # carbon.CarbonConfig


@dataclass
class Outcome:
    """What the gate decided for one test."""

    verdicts: list[dict[str, Any]] = field(default_factory=list)  # Verdict dicts
    notes: list[str] = field(default_factory=list)  # no baseline, machine mismatch, ...
    failure: str | None = None  # the failure message when the test must fail


class EnergySession:
    def __init__(self, options: SessionOptions, meter: Meter | None = None) -> None:
        self.options = options
        self._meter = meter
        self._measurer: Measurer | None = None
        self._store = None
        self._baselines: dict[str, Any] | None = None
        self._fingerprint: dict[str, Any] | None = None
        self.records: list[TestRecord] = []
        self.outcomes: dict[str, Outcome] = {}
        self.settings_by_test: dict[str, dict[str, Any]] = {}
        self.written: list[str] = []  # files written at the end, listed in the terminal summary
        self.device_state_start: dict[str, Any] | None = None

    # -- metering ----------------------------------------------------------------------------
    @property
    def meter(self) -> Meter:
        if self._meter is None:
            self._meter = open_meter(self.options.meter, cpu_watts_per_core=self.options.cpu_watts_per_core)
        return self._meter

    @property
    def measurer(self) -> Measurer:
        """Opened at the first energy benchmark, after measuring idle power if asked to."""
        if self._measurer is None:
            idle = measure_idle_power(self.meter, self.options.idle_s) if self.options.idle_s > 0 else None
            self._measurer = Measurer(self.meter, idle)
            self.device_state_start = self._device_state()
        return self._measurer

    def _device_state(self) -> dict[str, Any] | None:
        """Temperatures and clocks (each run warms the GPU and raises the next run's energy): recorded
        at the first benchmark and at the end, never used to match machines."""
        state = getattr(self.meter, "volatile_state", None)
        return state() if state is not None else None

    def header(self) -> str:
        meter = self.meter
        methods = ", ".join(sorted({d.method for d in meter.devices()}))
        devices = ", ".join(f"{d.device} ({d.name})" for d in meter.devices())
        line = f"energy meter: {meter.name} [{methods}] on {devices}"
        if meter.fallback_reasons:
            line += "\n  passed over: " + "; ".join(meter.fallback_reasons)
        if any(d.method == "estimate" for d in meter.devices()):
            line += ("\n  NOTE: 'estimate' figures are modelled from CPU time x W/core, not measured")
        if self._measurer is not None and self._measurer.idle_power_w is not None:
            idle = ", ".join(f"{k} {v:.3g} W" for k, v in self._measurer.idle_power_w.items())
            line += f"\n  idle power (measured {self.options.idle_s:g} s before the first benchmark): {idle}"
        return line

    def session_info(self) -> dict[str, Any]:
        """The session-wide `energy` block of the JSON report."""
        meter = self.meter
        idle = self._measurer.idle_power_w if self._measurer is not None else None
        return {
            "meter": meter.name,
            "devices": [dataclasses.asdict(d) for d in meter.devices()],
            "fallback_reasons": list(meter.fallback_reasons),
            "idle_power_w": idle,
            "idle_measured_s": self.options.idle_s if idle is not None else None,
            "carbon": dataclasses.asdict(self.options.carbon) if self.options.carbon is not None else None,
            "device_state_start": self.device_state_start,
            "device_state_end": self._device_state(),
        }

    def close(self) -> None:
        if self._meter is not None:
            self._meter.close()

    # -- baselines ---------------------------------------------------------------------------
    @property
    def baseline_dir(self) -> str:
        return os.path.join(self.options.rootdir, self.options.baseline_dir)

    @property
    def store(self):
        if self._store is None:
            from .baseline import BaselineStore

            self._store = BaselineStore(self.baseline_dir)
        return self._store

    def display_path(self, path: Any) -> str:
        """Relative to rootdir when inside it (as users type it), else absolute."""
        path = os.path.abspath(path)
        root = os.path.abspath(self.options.rootdir)
        return os.path.relpath(path, root) if path.startswith(root + os.sep) else path

    def load_baselines(self) -> None:
        """Read every baseline file up front: a damaged one stops the run before anything is measured."""
        if self._baselines is None:
            self._baselines = self.store.load_all()

    def fingerprint(self) -> dict[str, Any]:
        """Stable facts about this machine: computed once (it asks the driver and the platform), then
        shared by every comparison and every saved baseline."""
        if self._fingerprint is None:
            from .machine import fingerprint

            self._fingerprint = fingerprint(self.meter)
        return self._fingerprint

    def judge(self, record: TestRecord, settings: TestSettings) -> Outcome:
        """Compare a finished test with its baseline and decide whether it fails."""
        from .baseline import machine_mismatch
        from .compare import compare_record

        self.load_baselines()
        outcome = Outcome()
        entry = self._baselines.get(record.nodeid) if self._baselines else None
        where = self.display_path(self.store.path_for(record.nodeid))
        if entry is None:
            if self.options.save_baseline:
                outcome.notes.append(f"no earlier baseline in {where}: this run's results become it")
                return outcome
            note = f"no baseline for this test in {where}; create one with --energy-save-baseline"
            outcome.notes.append(note)
            if self.options.require_baseline:
                outcome.failure = f"--energy-require-baseline: {note}"
            return outcome
        differences = machine_mismatch(entry.machine, self.fingerprint())
        if differences:
            outcome.notes.append("baseline was measured on a different machine class, not compared: "
                                 + "; ".join(differences))
            return outcome
        verdicts = compare_record(entry.metrics, record.metrics, settings.metric_tolerances,
                                  settings.tolerance, settings.deterministic_tolerance)
        outcome.verdicts = [dataclasses.asdict(v) for v in verdicts]
        regressions = [v for v in verdicts if v.verdict == "REGRESSION"]
        if regressions and not self.options.save_baseline:
            outcome.failure = "energy regression against " + where + ":\n" + "\n".join(
                "  " + v.message() for v in regressions)
        return outcome

    def save_baselines(self, commit: dict[str, Any], datetime_iso: str) -> list[str]:
        """Write the baselines of every recorded test; returns the files written."""
        from .baseline import BaselineEntry

        machine = self.fingerprint()
        entries = [BaselineEntry(nodeid=r.nodeid, machine=machine, commit=commit, datetime=datetime_iso,
                                 method=machine["method"], metrics=r.metrics, extra_info=r.extra_info)
                   for r in self.records]
        if not entries:
            return []
        return [str(p) for p in self.store.save(entries)]


def parse_session_options(get: dict[str, Any]) -> SessionOptions:
    """Validate raw option values (already merged command line > ini > default)."""
    from .compare import parse_tolerance
    from .meters import METER_CHOICES

    meter = str(get["meter"])
    if meter not in METER_CHOICES:
        raise UsageError(f"--energy-meter: unknown meter {meter!r}; choose one of {', '.join(METER_CHOICES)}")
    ints = {}
    for key, minimum in (("rounds", 1), ("warmup", 0)):
        try:
            ints[key] = int(get[key])
        except (TypeError, ValueError):
            raise UsageError(f"--energy-{key}: expected an integer, got {get[key]!r}") from None
        if ints[key] < minimum:
            raise UsageError(f"--energy-{key}: must be >= {minimum}, got {ints[key]}")
    floats = {}
    for key in ("idle_s", "cpu_watts_per_core"):
        raw = get.get(key)
        if raw in (None, ""):
            floats[key] = None
            continue
        try:
            floats[key] = float(raw)
        except ValueError:
            raise UsageError(f"--energy-{key.replace('_', '-')}: expected a number, got {raw!r}") from None
        if not floats[key] >= 0:
            raise UsageError(f"--energy-{key.replace('_', '-')}: must be >= 0, got {raw!r}")
    return SessionOptions(
        meter=meter, rounds=ints["rounds"], warmup=ints["warmup"],
        tolerance=parse_tolerance(get["tolerance"]), idle_s=floats["idle_s"] or 0.0,
        cpu_watts_per_core=floats["cpu_watts_per_core"], baseline_dir=str(get["baseline_dir"]),
        save_baseline=bool(get["save_baseline"]), require_baseline=bool(get["require_baseline"]),
        json_path=get.get("json_path"), markdown_path=get.get("markdown_path"),
        html_path=get.get("html_path"), rootdir=str(get["rootdir"]), carbon=get.get("carbon"))

