"""One energy session: the meter, the baselines, the verdicts, and what is saved at the end. No pytest import.

The plugin creates one per pytest process. Under pytest-xdist every worker measures with its own
session; records and outcomes travel to the controller on the test reports, with the fingerprint of the
worker that measured them, and only the controller saves baselines and writes reports. Under torchrun
every rank meters its own devices (`ranks`), and rank 0 judges, saves and reports the combined results.
Reports receive a `RunResult`: data, never the session or the meter.
"""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

from .config import SessionConfig, TestSettings
from .gate.judge import Outcome
from .measure import Measurer, measure_idle_power
from .meters import Meter, open_meter
from .records import BenchmarkResult, MeterInfo, RunResult, TestRecord  # noqa: F401  (the data reports receive)


class EnergySession:
    def __init__(self, config: SessionConfig, meter: Meter | None = None) -> None:
        self.config = config
        self._meter = meter
        self._measurer: Measurer | None = None
        self._store = None
        self._baselines: dict[str, Any] | None = None
        self._fingerprint: dict[str, Any] | None = None
        self._history_context = None
        self._reference = None  # analysis.hulk_store.ReferenceFile, read at start
        self.results: list[BenchmarkResult] = []
        self.device_state_start: dict[str, Any] | None = None
        # One id per pytest session, shared by every test it saves: the history rule estimates the drift
        # common to a run from it (gate/history.py).
        self.run_id = uuid.uuid4().hex[:12]
        self.ranks = None  # distributed.ranks.RankContext under torchrun (set before the meter is opened)
        self.placement: dict[str, Any] | None = None  # where this process runs (see BenchmarkResult)

    @property
    def reports(self) -> bool:
        """Whether this process judges, saves and reports: not the non-zero ranks of a torchrun job."""
        return self.ranks is None or self.ranks.is_main

    # -- metering ----------------------------------------------------------------------------
    @property
    def meter(self) -> Meter:
        if self._meter is None:
            if self.ranks is not None:  # collective: every rank claims its devices here
                self._meter = self.ranks.open_meter(self.config.meter, self.config.cpu_watts_per_core)
                self.placement = self.ranks.placement()
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
            from .measure.probe import probe

            idle = measure_idle_power(self.meter, self.config.idle_s) if self.config.idle_s > 0 else None
            self._measurer = Measurer(self.meter, idle, probe=probe if self.probing else None)
            self.device_state_start = self._device_state()
        return self._measurer

    def _device_state(self) -> dict[str, Any] | None:
        """Temperatures and clocks (each run warms the GPU and raises the next run's energy): recorded
        at the first benchmark and at the end, never used to match machines."""
        state = getattr(self.meter, "volatile_state", None)
        return state() if state is not None else None

    def meter_info(self) -> MeterInfo:
        meter = self.meter
        idle = self._measurer.idle_power_w if self._measurer is not None else None
        devices = self.ranks.devices() if self.ranks is not None else meter.devices()
        return MeterInfo(meter.name, tuple(devices), tuple(meter.fallback_reasons), idle,
                         self.config.idle_s if idle is not None else None)

    def close(self) -> None:
        if self._meter is not None:
            self._meter.close()

    # -- baselines and the gate ----------------------------------------------------------------
    @property
    def store(self):
        if self._store is None:
            from .gate.baselines import BaselineStore

            self._store = BaselineStore(self.config.baseline_path)
        return self._store

    def load_baselines(self) -> None:
        """Read every baseline file, and the stored HULK reference beside them, up front: a damaged one stops
        the run before anything is measured."""
        if self._baselines is None:
            self._baselines = self.store.load_all()
        self.load_reference()

    def fingerprint(self) -> dict[str, Any]:
        """Stable facts about this machine: computed once (it asks the driver and the platform), then
        shared by every comparison and every saved baseline."""
        if self._fingerprint is None:
            from .machine import fingerprint

            meter = self.meter
            self._fingerprint = self.ranks.fingerprint() if self.ranks is not None else fingerprint(meter)
        return self._fingerprint

    def history_context(self):
        """The pooled run histories of this machine class (gate.judge.pool_histories), computed once from
        the baselines loaded at the start: never from this run."""
        if self._history_context is None:
            from .gate.judge import pool_histories

            self.load_baselines()
            self._history_context = pool_histories((self._baselines or {}).values(), self.fingerprint(),
                                                   self.probing)
        return self._history_context

    # -- the stored HULK reference (analysis/hulk_store.py) ---------------------------------------
    def load_reference(self) -> None:
        """Read the stored HULK reference up front: a damaged file stops the run before anything is measured."""
        if self._reference is None:
            from .analysis.hulk_store import load_reference

            path = self.config.reference_path
            self._reference = load_reference(path, self.config.display_path(path))

    def reference_entry(self) -> tuple[Any, str]:
        """(this machine class's stored reference or None, why none)."""
        self.load_reference()
        return self._reference.match(self.fingerprint())

    def add_reference_scores(self, record: TestRecord) -> None:
        """HULK scores against the stored reference become metrics of the test, before it is judged."""
        entry, _ = self.reference_entry()
        if entry is not None:
            from .analysis.hulk_store import add_scores

            add_scores(record, entry)

    def reference_info(self) -> dict[str, Any]:
        """What the reports say about the stored reference."""
        entry, note = self.reference_entry()
        return {"path": self.config.display_path(self.config.reference_path), "note": note,
                "entry": entry.to_dict() if entry is not None else None}

    def save_reference(self, commit: dict[str, Any], datetime_iso: str) -> tuple[list[str], list[str]]:
        """Store this run's HULK costs as the reference of its machine class: (files written, slots skipped)."""
        from .analysis.hulk_store import reference_from_records, save_reference

        entry, problems = reference_from_records([b.record for b in self.results], self.fingerprint(), commit,
                                                 datetime_iso)
        return [str(save_reference(self.config.reference_path, entry))], problems

    def judge(self, record: TestRecord, settings: TestSettings) -> Outcome:
        """Compare a finished test with its baseline and decide whether it fails."""
        from .gate.judge import judge

        self.add_reference_scores(record)
        self.load_baselines()
        baseline_file = self.config.display_path(self.store.path_for(record.nodeid))
        shared = (self.placement or {}).get("shared")
        if shared:
            return Outcome(notes=[f"measured on {'; '.join(shared)}: its figures include the other workers' "
                                  "load, so it is not compared with the baseline"],
                           baseline_file=baseline_file, gating=not self.config.save_baseline)
        entry = self._baselines.get(record.nodeid) if self._baselines else None
        outcome = judge(record, entry, settings, machine=self.fingerprint(), baseline_file=baseline_file,
                        save_baseline=self.config.save_baseline, require_baseline=self.config.require_baseline,
                        fail_on_inconclusive=self.config.fail_on_inconclusive,
                        context=self.history_context() if entry is not None else None)
        if self.config.save_reference:
            # A reference run measures the reference model (BERT-large) under the node ids whose baselines
            # belong to the model under test: shown, never failed on.
            outcome.gating = False
            outcome.failure = None
            outcome.notes.append("recording the HULK reference (--energy-save-reference): compared, not gated")
        return outcome

    def _run_entry(self, b: BenchmarkResult, machine: dict[str, Any], commit: dict[str, Any], datetime_iso: str):
        """This run of one test as a baseline entry whose history is this run alone."""
        from .gate.baselines import BaselineEntry
        from .gate.history import RunSummary
        from .measure.probe import PROBE_ID, probe_value

        record = b.record
        probe_s = probe_value(record.probe_s) if self.probing else None
        history = {name: [RunSummary.of(m.samples, run_id=self.run_id)]
                   for name, m in record.metrics.items() if m.kind == "measured" and m.samples}
        run = {"datetime": datetime_iso, "commit": commit.get("id"), "probe_s": probe_s,
               "probe_id": PROBE_ID if probe_s is not None else None}
        return BaselineEntry(nodeid=record.nodeid, machine=machine, commit=commit, datetime=datetime_iso,
                             method=machine["method"], metrics=record.metrics, extra_info=record.extra_info,
                             history=history, runs={self.run_id: run})

    def save_baselines(self, commit: dict[str, Any], datetime_iso: str, notes: list[str] | None = None) -> list[str]:
        """Add this run to the baseline history of every recorded test; returns the files written.

        A metric whose history-rule verdict in this run was REGRESSION or IMPROVED starts a new history (the
        change was accepted by saving: it must not be averaged with the old code), as does everything with
        --energy-reset-baseline. Each history keeps the last --energy-history runs. `notes` collects what
        changed, for the terminal.
        """
        from .gate.baselines import append_run
        from .gate.compare import Rule

        # Each result with the fingerprint of the process that measured it (an xdist worker sees only its
        # GPUs); results measured on devices other workers were using are not saved (`unsaved_shared`).
        entries = [self._run_entry(b, b.machine or self.fingerprint(), commit, datetime_iso)
                   for b in self.results if not b.shared]
        if not entries:
            return []
        # Only a verdict of the history rule restarts a history: while a history holds fewer than 3 runs the
        # within-run rule decides, and on a drifting runner it calls unchanged code REGRESSION or IMPROVED
        # (docs/statistics.md); restarting then would keep the history from ever reaching 3 runs.
        restart = {b.record.nodeid: frozenset(v.metric for v in b.outcome.verdicts
                                              if v.verdict in ("REGRESSION", "IMPROVED") and Rule.is_history(v.rule))
                   for b in self.results if b.outcome is not None}
        notes = notes if notes is not None else []
        keep, reset = self.config.history, self.config.reset_baseline
        lengths: list[int] = []

        def combine(old, new):
            stored = append_run(old, new, keep=keep, restart=restart.get(new.nodeid, frozenset()), reset=reset)
            lengths.extend(len(runs) for runs in stored.history.values())
            if old is not None and restart.get(new.nodeid) and not reset:
                notes.append(f"{new.nodeid}: new history for {', '.join(sorted(restart[new.nodeid]))} "
                             "(its REGRESSION or IMPROVED is accepted by this save)")
            return stored

        written = [str(p) for p in self.store.save(entries, combine=combine)]
        if lengths:
            span = str(min(lengths)) if min(lengths) == max(lengths) else f"{min(lengths)} to {max(lengths)}"
            how = "started afresh (--energy-reset-baseline)" if reset else f"appended (keeping the last {keep})"
            notes.insert(0, f"baseline history: run {self.run_id} {how} for {len(entries)} test(s); the "
                            f"histories now hold {span} run(s) (the gate judges by history from 3)")
        return written

    def compared_baselines(self) -> dict[str, Any]:
        """The baseline entries this run's verdicts were computed against, for the reports' charts."""
        from .errors import EnergyError

        compared = [b.record.nodeid for b in self.results if b.outcome is not None and b.outcome.verdicts]
        if not compared:
            return {}
        try:
            self.load_baselines()  # already loaded, except on a pytest-xdist controller
        except EnergyError:
            return {}  # a damaged file already stopped the workers; the charts are optional
        return {nodeid: self._baselines[nodeid] for nodeid in compared if nodeid in (self._baselines or {})}

    def unsaved_shared(self) -> str | None:
        """Why some results were not saved as baselines, or None."""
        shared = [b.record.nodeid for b in self.results if b.shared]
        if not shared:
            return None
        return (f"--energy-save-baseline: {len(shared)} result(s) measured while other workers used the same "
                f"devices were not saved ({', '.join(shared[:3])}{', ...' if len(shared) > 3 else ''}); run "
                "with fewer workers (see the warning about shared devices) to record them")

    # -- the end -------------------------------------------------------------------------------
    def session_info(self) -> dict[str, Any]:
        """The session-wide `energy` block of the JSON report."""
        info = self.meter_info()
        return {
            "meter": info.name,
            "devices": [dataclasses.asdict(d) for d in info.devices],
            "fallback_reasons": list(info.fallback_reasons),
            "idle_power_w": info.idle_power_w,
            "idle_measured_s": info.idle_measured_s,
            "carbon": self.config.carbon.to_dict(),
            "device_state_start": self.device_state_start,
            "device_state_end": self._device_state(),
        }

    def finish(self, exitstatus: int | None = None, tests_failed: int | None = None) -> RunResult:
        """Save baselines when asked, then write every requested report. Failures are collected in
        `RunResult.errors` (each file is written independently); nothing here raises for one bad file.

        `exitstatus` and `tests_failed` (pytest's, so far) go into the JSON report, where
        `python -m pytest_energy merge` reads whether a shard failed."""
        from .errors import BaselineSaveError, EnergyError
        from .machine import commit_info, machine_info, now_iso
        from .report.outputs import write_reports

        run = RunResult(meter=self.meter_info(), config=self.config, benchmarks=list(self.results))
        if not self.results:
            return run
        run.commit_info = commit_info(self.config.rootdir)
        run.datetime = now_iso()
        run.baselines = self.compared_baselines()
        if self.config.save_baseline:
            try:
                run.written += self.save_baselines(run.commit_info, run.datetime, run.baseline_notes)
            except BaselineSaveError as exc:
                run.written += [str(p) for p in exc.written]
                run.errors.append(str(exc))
            except EnergyError as exc:
                run.errors.append(str(exc))
            unsaved = self.unsaved_shared()
            if unsaved:
                run.errors.append(unsaved)
        try:
            run.hulk_reference = self.reference_info()
            if self.config.save_reference:
                written, skipped = self.save_reference(run.commit_info, run.datetime)
                run.written += written
                run.hulk_reference["saved"] = skipped
        except EnergyError as exc:
            run.errors.append(str(exc))
        run.machine_info = {**machine_info(self.meter), **self.fingerprint()}
        run.session_info = self.session_info()
        run.session_info.update(exitstatus=exitstatus, tests_failed=tests_failed,
                                save_baseline=self.config.save_baseline)
        if self.placement is not None:
            run.session_info["placement"] = self.placement
        write_reports(run)
        return run
