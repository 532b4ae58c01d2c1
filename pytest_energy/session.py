"""One energy session: coordinates the meter, the gate and the store for one pytest process. No pytest import.

The plugin creates one per pytest process. Under pytest-xdist every worker measures with its own
session; records and outcomes travel to the controller on the test reports, with the fingerprint of the
worker that measured them, and only the controller saves baselines and hands the run to the reporters.
Under torchrun every rank meters its own devices (`ranks`), and rank 0 judges, saves and reports the
combined results.

The session does one job: it coordinates. Each part is its own collaborator, in its own layer:

- `Metering` (here): the meter (under torchrun the rank's share of the devices), the Measurer with idle
  power and probe, the machine fingerprint and the MeterInfo snapshot;
- `gate.store.RunBaselines`: the baseline store, the pooled run histories, saving this run;
- `analysis.hulk_store.StoredReference`: the stored HULK reference (load, match, score, save).

`finish()` returns a `RunResult`: data. It writes no report and words nothing: the reporters (report/,
registered as plugins by report/reporters.py) write the files and the terminal summary.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from .config import SessionConfig, TestSettings
from .gate.judge import Outcome
from .meters import open_meter
# The data reports receive is the run model's (records); imported here too, where the session builds it.
from .records import BenchmarkResult, MeterInfo, RunResult, TestRecord  # noqa: F401

if TYPE_CHECKING:
    from .gate.store import SavedRun
    from .measure import Measurer
    from .meters import Meter

# pytest's exit statuses of a run that did not fail: all passed (0), no tests collected (5).
PASSING_EXIT_STATUSES = (0, 5)
# The name the plugin registers the session under: how other plugins find it (`get_session`).
SESSION_PLUGIN = "pytest-energy-session"


def get_session(config: Any) -> EnergySession | None:
    """The energy session of a pytest run (pytest's Config), None when nothing is measured (no --energy, or
    --energy-disable). The public lookup for other plugins, as pytest-codspeed's `get_plugin(config)`."""
    return config.pluginmanager.get_plugin(SESSION_PLUGIN)


class Metering:
    """The meter of this process, opened on first use: under torchrun the rank's share of the devices
    (`ranks`, a collective call), else `meters.open_meter`. Also the Measurer (idle power, the probe), the
    device state at the first benchmark, the machine fingerprint and the MeterInfo snapshot for reports."""

    def __init__(self, config: SessionConfig, meter: Meter | None = None, ranks: Any = None) -> None:
        # ranks: distributed.ranks.RankContext under torchrun (the layer above hands it in; duck-typed here)
        self.config = config
        self.ranks = ranks
        self._meter = meter
        self._measurer: Measurer | None = None
        self._fingerprint: dict[str, Any] | None = None
        self.device_state_start: dict[str, Any] | None = None

    @property
    def meter(self) -> Meter:
        if self._meter is None:
            if self.ranks is not None:  # collective: every rank claims its devices here
                self._meter = self.ranks.open_meter(self.config.meter, self.config.cpu_watts_per_core)
            else:
                self._meter = open_meter(self.config.meter, cpu_watts_per_core=self.config.cpu_watts_per_core)
        return self._meter

    @property
    def probing(self) -> bool:
        """Whether rounds are bracketed by the calibration probe (pytest_energy.measure.probe): `--energy-probe`,
        where auto means on unless the meter is NVML (GPU-bound time does not follow a CPU probe)."""
        return self.config.probe == "on" or (self.config.probe == "auto" and self.meter.name != "nvml")

    @property
    def measurer(self) -> Measurer:
        """Opened at the first energy benchmark, after measuring idle power if asked to."""
        if self._measurer is None:
            from .measure import Measurer, measure_idle_power
            from .measure.probe import probe

            idle = measure_idle_power(self.meter, self.config.idle_s) if self.config.idle_s > 0 else None
            self._measurer = Measurer(self.meter, idle, probe=probe if self.probing else None)
            self.device_state_start = self.device_state()
        return self._measurer

    def device_state(self) -> dict[str, Any] | None:
        """Temperatures and clocks (each run warms the GPU and raises the next run's energy): recorded
        at the first benchmark and at the end, never used to match machines."""
        state = getattr(self.meter, "volatile_state", None)
        return state() if state is not None else None

    def fingerprint(self) -> dict[str, Any]:
        """Stable facts about this machine: computed once (it asks the driver and the platform), then
        shared by every comparison and every saved baseline."""
        if self._fingerprint is None:
            from .machine import fingerprint

            meter = self.meter
            self._fingerprint = self.ranks.fingerprint() if self.ranks is not None else fingerprint(meter)
        return self._fingerprint

    def rank_placement(self) -> dict[str, Any] | None:
        """Under torchrun, which rank meters what (after the meter is open); None otherwise."""
        if self.ranks is None:
            return None
        self.meter  # noqa: B018 (the ranks' placement is known once every rank claimed its devices)
        return self.ranks.placement()

    def meter_info(self) -> MeterInfo:
        meter = self.meter
        idle = self._measurer.idle_power_w if self._measurer is not None else None
        devices = self.ranks.devices() if self.ranks is not None else meter.devices()
        return MeterInfo(meter.name, tuple(devices), tuple(meter.fallback_reasons), idle,
                         self.config.idle_s if idle is not None else None)

    def close(self) -> None:
        if self._meter is not None:
            self._meter.close()


class EnergySession:
    """Coordinates the meter (`metering`), the gate with its baselines (`baselines`) and the stored HULK
    reference (`reference`) for one pytest process; collects the results this process reports."""

    def __init__(self, config: SessionConfig, meter: Meter | None = None, *, ranks: Any = None) -> None:
        from .analysis.hulk_store import StoredReference
        from .gate.store import RunBaselines

        self.config = config
        self.metering = Metering(config, meter, ranks)
        self.baselines = RunBaselines(config.baseline_path, config.display_path)
        self.reference = StoredReference(config.reference_path, config.display_path(config.reference_path))
        self.results: list[BenchmarkResult] = []
        # One id per pytest session, shared by every test it saves: the history rule estimates the drift
        # common to a run from it (gate/history.py).
        self.run_id = uuid.uuid4().hex[:12]
        # Where this process measures (see BenchmarkResult.placement): an xdist worker's GPUs or the torchrun
        # ranks, as the plugin learns it from pytest_energy.distributed.plugin.placement; None for a plain run.
        self.placement: dict[str, Any] | None = None
        # The base revision of an armed --energy-against (pytest_energy.plugin._start_second_look), else None.
        self.ab_base: str | None = None

    # -- the meter (Metering) ----------------------------------------------------------------------------
    @property
    def ranks(self) -> Any:
        return self.metering.ranks

    @property
    def reports(self) -> bool:
        """Whether this process judges, saves and reports: not the non-zero ranks of a torchrun job."""
        return self.ranks is None or self.ranks.is_main

    @property
    def meter(self) -> Meter:
        return self.metering.meter

    @property
    def measurer(self) -> Measurer:
        return self.metering.measurer

    @property
    def probing(self) -> bool:
        return self.metering.probing

    def fingerprint(self) -> dict[str, Any]:
        return self.metering.fingerprint()

    def meter_info(self) -> MeterInfo:
        return self.metering.meter_info()

    def close(self) -> None:
        self.metering.close()

    # -- start-up ------------------------------------------------------------------------------------------
    def load_baselines(self) -> None:
        """Read every baseline file, and the stored HULK reference beside them, up front: a damaged one stops
        the run before anything is measured."""
        self.baselines.load()
        self.reference.load()

    # -- one test --------------------------------------------------------------------------------------------
    def judge(self, record: TestRecord, settings: TestSettings) -> Outcome:
        """Compare a finished test with its baseline and decide whether it fails."""
        from .gate.judge import judge

        machine = self.fingerprint()
        self.reference.add_scores(record, machine)  # HULK scores become metrics of the test, then are judged
        baseline_file = self.baselines.file_for(record.nodeid)
        shared = (self.placement or {}).get("shared")
        if shared:
            return Outcome(notes=[f"measured on {'; '.join(shared)}: its figures include the other workers' "
                                  "load, so it is not compared with the baseline"],
                           baseline_file=baseline_file, gating=not self.config.save_baseline)
        entry = self.baselines.entry(record.nodeid)
        context = self.baselines.history_context(machine, self.probing) if entry is not None else None
        outcome = judge(record, entry, settings, machine=machine, baseline_file=baseline_file,
                        save_baseline=self.config.save_baseline, require_baseline=self.config.require_baseline,
                        fail_on_inconclusive=self.config.fail_on_inconclusive, context=context)
        if self.config.save_reference:
            # A reference run measures the reference model (BERT-large) under the node ids whose baselines
            # belong to the model under test: shown, never failed on.
            outcome.gating = False
            outcome.failure = None
            outcome.notes.append("recording the HULK reference (--energy-save-reference): compared, not gated")
        return outcome

    # -- the end -------------------------------------------------------------------------------------------
    def save_baselines(self, commit: dict[str, Any], datetime_iso: str) -> SavedRun:
        """Add this run to the baseline history of every result measured on devices of its own (results
        measured on shared devices are not saved), each with the fingerprint of the process that measured it
        (an xdist worker sees only its GPUs). A metric the history rule called REGRESSION or IMPROVED starts a
        new history, as does everything with --energy-reset-baseline (gate.baselines.restarted_metrics)."""
        from .gate.baselines import restarted_metrics, run_entry
        from .measure.probe import PROBE_ID, probe_value

        entries = []
        for b in self.results:
            if b.shared:
                continue
            probe_s = probe_value(b.record.probe_s) if self.probing else None
            entries.append(run_entry(b.record.nodeid, b.record.metrics, machine=b.machine or self.fingerprint(),
                                     commit=commit, datetime_iso=datetime_iso, run_id=self.run_id,
                                     extra_info=b.record.extra_info, probe_s=probe_s, probe_id=PROBE_ID))
        restart = {b.record.nodeid: restarted_metrics(b.outcome.verdicts)
                   for b in self.results if b.outcome is not None}
        return self.baselines.save(entries, restart, run_id=self.run_id, keep=self.config.history,
                                   reset=self.config.reset_baseline)

    def finish(self, exitstatus: int | None = None, tests_failed: int | None = None) -> RunResult:
        """Save baselines (and the HULK reference) when asked; return the run for the reporters. What could not
        be saved is in `RunResult.errors`; nothing here raises for one bad file.

        `exitstatus` and `tests_failed` (pytest's, so far) go into the JSON report, where
        `python -m pytest_energy merge` reads whether a shard failed."""
        from .errors import EnergyError
        from .machine import commit_info, machine_info, now_iso

        run = RunResult(meter=self.meter_info(), config=self.config, benchmarks=list(self.results),
                        exitstatus=exitstatus, tests_failed=tests_failed, placement=self.placement,
                        ab_base=self.ab_base)
        if not self.results:
            return run
        run.commit_info = commit_info(self.config.rootdir)
        run.datetime = now_iso()
        run.baselines = self.baselines.compared(b.record.nodeid for b in self.results
                                                if b.outcome is not None and b.outcome.verdicts)
        if self.config.save_baseline:
            try:
                run.saved = self.save_baselines(run.commit_info, run.datetime)
                run.written += run.saved.written
                if run.saved.error:
                    run.errors.append(run.saved.error)
            except EnergyError as exc:
                run.errors.append(str(exc))
            run.unsaved_shared = [b.record.nodeid for b in self.results if b.shared]
        machine = self.fingerprint()
        try:
            run.hulk_reference = self.reference.info(machine)
            if self.config.save_reference:
                written, skipped = self.reference.save([b.record for b in self.results], machine, run.commit_info,
                                                       run.datetime)
                run.written += written
                run.hulk_reference.saved = skipped
        except EnergyError as exc:
            run.errors.append(str(exc))
        run.machine_info = {**machine_info(self.meter), **machine}
        run.device_state_start = self.metering.device_state_start
        run.device_state_end = self.metering.device_state()
        return run
