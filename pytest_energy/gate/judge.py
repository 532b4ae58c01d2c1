"""The gate's decision for one test: compare its record with its baseline entry and say whether it fails.

The decision is data (an Outcome); turning it into words is the report layer's job.
"""

from __future__ import annotations

import gc
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..measure.probe import PROBE_ID, probe_value
# Outcome is data of the run model (records); imported here too, where the gate builds it.
from ..records import Kind, Outcome, TestRecord
from .baselines import MATCH_KEYS, BaselineEntry, StoredValues, machine_mismatch
from .compare import compare_record
from .history import Pooled, family, pool, probe_exponent


class Tolerances(Protocol):
    """What the gate reads of a test's settings (config.TestSettings has it): the gate sits below config."""

    @property
    def metric_tolerances(self) -> Mapping[str, float]: ...

    def tolerance_for(self, metric: str, deterministic: bool = False) -> float: ...


@dataclass(frozen=True)
class HistoryContext:
    """What the history rule needs beyond one test's baseline entry: the pooled noise of the machine class
    (per noise family, from every stored history; never from this run) and whether wall-clock metrics are
    divided by the calibration probe."""

    pools: Mapping[str, Mapping[bool, Pooled]] = field(default_factory=dict)
    probing: bool = False

    def pooled_for(self, unit: str, name: str = "") -> Mapping[bool, Pooled] | None:
        return self.pools.get(family(unit, name))


def pool_histories(entries: Iterable[BaselineEntry], machine: dict[str, Any], probing: bool) -> HistoryContext:
    """Pool the run histories of every stored test of this machine class, per noise family (gate/history.pool).

    Runs at start-up over every stored test, so each entry's probe table is read once and handed to `pool`
    beside its histories (the same probes `BaselineEntry.history_for` gives, without a RunSummary per run).
    `entries` from BaselineStore.load_all().values() carry the folder's pool cache when it is current
    (gate/pool_cache.py): its pools are this function's result, computed by the save that wrote the files.
    """
    if isinstance(entries, StoredValues):
        cached = entries.cached_pools(machine, probing)
        if cached is not None:
            return HistoryContext(cached, probing)
    # The pool allocates small lists by the hundred thousand and makes no reference cycles; with the cyclic
    # collector on, each of its full passes would walk every loaded entry (a fifth of the time at 10,000 tests).
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _pool_histories(entries, machine, probing)
    finally:
        if collecting:
            gc.enable()


def _pool_histories(entries: Iterable[BaselineEntry], machine: dict[str, Any], probing: bool) -> HistoryContext:
    groups: dict[str, list] = {}
    kinds: dict[tuple[str, str], tuple[str, int]] = {}  # (unit, name) -> (family, exponent): a suite repeats a few
    matches: dict[str, bool] = {}  # the entries of one suite share a handful of machine classes
    for entry in entries:
        # Equal reprs of the values that decide (JSON types) are equal values, so the same verdict; equal
        # values with different reprs only cost a second look.
        key = repr(list(map(entry.machine.get, MATCH_KEYS)))
        same = matches.get(key)
        if same is None:
            same = matches[key] = not machine_mismatch(entry.machine, machine)
        if not same:
            continue
        probes = {rid: run.get("probe_s") if run.get("probe_id") == PROBE_ID else None
                  for rid, run in entry.runs.items()} if probing else {}
        for name, metric in entry.metrics.items():
            if metric.kind != Kind.MEASURED or name not in entry.history:
                continue
            unit_name = (metric.unit, name)
            kind = kinds.get(unit_name)
            if kind is None:
                kind = kinds[unit_name] = (family(metric.unit, name), probe_exponent(metric.unit) if probing else 0)
            groups.setdefault(kind[0], []).append((entry.history[name], kind[1], probes))
    return HistoryContext({name: pool(series) for name, series in groups.items()}, probing)


def judge(record: TestRecord, entry: BaselineEntry | None, settings: Tolerances, *, machine: dict[str, Any],
          baseline_file: str, save_baseline: bool = False, require_baseline: bool = False,
          fail_on_inconclusive: bool = False, context: HistoryContext | None = None) -> Outcome:
    """Compare a finished test with its baseline entry (None: there is none) and decide whether it fails.

    A run that saves baselines never fails on a regression: the user is recording a new reference.
    `context` (pool_histories) lets the history rule judge against the run-to-run spread.
    """
    outcome = Outcome(baseline_file=baseline_file, gating=not save_baseline, strict=fail_on_inconclusive)
    unknown = sorted(set(settings.metric_tolerances) - set(record.metrics))
    if unknown:
        outcome.failure = (f"energy marker: tolerance for unknown metric(s) {', '.join(map(repr, unknown))}; "
                           f"this test's metrics are {', '.join(sorted(record.metrics))}")
    if entry is None:
        if save_baseline:
            outcome.notes.append(f"no earlier baseline in {baseline_file}: this run's results become it")
            return outcome
        note = f"no baseline for this test in {baseline_file}; create one with --energy-save-baseline"
        outcome.notes.append(note)
        if require_baseline:
            outcome.failure = f"--energy-require-baseline: {note}"
        return outcome
    differences = machine_mismatch(entry.machine, machine)
    if differences:
        note = "baseline was measured on a different machine class, not compared: " + "; ".join(differences)
        outcome.notes.append(note)
        if require_baseline and not save_baseline:
            outcome.failure = f"--energy-require-baseline: {note}"
        return outcome
    context = context or HistoryContext()
    probe_id = PROBE_ID if context.probing else None
    histories = {name: entry.history_for(name, probe_id) for name in entry.history}
    current_probe = probe_value(record.probe_s) if context.probing else None
    outcome.verdicts = compare_record(entry.metrics, record.metrics, settings.tolerance_for, histories=histories,
                                      pools=context.pooled_for, current_probe=current_probe,
                                      probing=context.probing)
    return outcome
