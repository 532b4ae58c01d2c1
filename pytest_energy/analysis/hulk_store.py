"""A stored HULK reference: the reference model's costs per task, so later runs normalise without running it.

HULK (Zhou et al. 2021) scores a model per task as reference cost / model cost, with BERT-large as the
reference. Running BERT-large in every CI run would cost more than the models it judges, so a reference run
stores its costs once:

    pytest benchmarks/ --energy --energy-model bert-large-uncased --energy-save-reference

writes `<baseline dir>/hulk-reference.json` (REFERENCE_FILENAME), one entry per machine class (the same
fingerprint keys that decide whether a baseline is comparable), each with one reference model and its costs
per *slot*: protocol, task and, for inference, batch size. Costs are HULK's: training time and energy to the
cut-off (mean over the test's samples), and ms and J per example. Each later run on the same machine class

- adds to every protocol test that has a stored slot the metrics `hulk.<protocol>.score_time` and
  `hulk.<protocol>.score_energy` (one sample per sample of its cost metric: reference mean / sample; higher is
  better; kind measured), which its baseline stores and the gate compares like any other metric: a score
  that drops beyond tolerance fails the test;
- prints HULK's Tables 3 and 4 against the stored costs (report/tables.py).

On another machine class nothing is scored: costs from other hardware would make every score a hardware
comparison. The reports say so. A test's HULK task is `energy.extra_info["hulk_task"]`, else its marker
`group`; sweep points (extra_info["sweep_point"]) are not HULK tasks. The model is `extra_info["model"]`,
else the test name.

The file is validated whole on load (a damaged file stops the run, naming it, and is never overwritten) and
written atomically.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import BaselineError
from ..files import read_json, write_atomic
from ..records import (SWEEP_POINT_KEY, Better, FinetuneResult, HulkReference, InferenceResult, Kind, TestRecord,
                       is_finite_number)

__all__ = ["COSTS", "REFERENCE_FILENAME", "MachineReference", "ReferenceFile", "Slot", "StoredSlot",
           "StoredReference", "add_scores", "hulk_task", "load_reference", "model_of", "reference_from_records",
           "save_reference", "score_metric", "slots_of"]

REFERENCE_FILENAME = "hulk-reference.json"
SCHEMA = "pytest-energy/hulk-reference"
SCHEMA_VERSION = 1
# Per protocol, HULK's costs: (name, the metric that measures it). Fine-tuning: training only, to the cut-off.
COSTS: dict[str, tuple[tuple[str, str], ...]] = {
    "finetune": (("time", "finetune.duration_s"), ("energy", "finetune.energy_j")),
    "inference": (("time", "inference.ms_per_example"), ("energy", "inference.j_per_example")),
}
_REPAIR = "fix or delete it, then re-record with --energy-save-reference"


def score_metric(protocol: str, cost: str) -> str:
    """'hulk.finetune.score_time': the metric a test records for its score against the stored reference."""
    return f"hulk.{protocol}.score_{cost}"


def hulk_task(record: TestRecord) -> str | None:
    """The HULK task (table column) of a test: extra_info["hulk_task"], else its group; None if it has none."""
    if SWEEP_POINT_KEY in record.extra_info:
        return None  # a sweep varies one setting of one model; HULK compares models at one setting
    task = record.extra_info.get("hulk_task") or record.group
    return str(task) if task else None


def model_of(record: TestRecord) -> str:
    """The model (table row) of a test: extra_info["model"], else the test name."""
    return str(record.extra_info.get("model") or record.name)


@dataclass(frozen=True)
class Slot:
    """What a reference cost is for: a protocol on a task (and, for inference, at a batch size)."""

    protocol: str
    task: str
    batch_size: int | None = None

    @property
    def key(self) -> str:
        return f"{self.protocol}|{self.task}" + ("" if self.batch_size is None else f"|batch {self.batch_size}")


def slots_of(record: TestRecord) -> list[tuple[Slot, dict[str, Any]]]:
    """The HULK slots a test filled, with the protocol settings that must match the reference's (cut-off).

    A test whose calls of one protocol disagree (two batch sizes, two cut-offs) fills none for that protocol:
    its cost metric mixes them.
    """
    task = hulk_task(record)
    if task is None:
        return []
    out = []
    for protocol in COSTS:
        calls = [p for p in record.protocols if p.protocol == protocol]
        if not calls:
            continue
        if protocol == "inference":
            sizes = {p.batch_size for p in calls if isinstance(p, InferenceResult)}
            if len(sizes) == 1 and isinstance(next(iter(sizes)), int):
                out.append((Slot(protocol, task, next(iter(sizes))), {}))
        else:
            cutoffs = {p.cutoff for p in calls if isinstance(p, FinetuneResult)}
            if len(cutoffs) == 1:
                out.append((Slot(protocol, task), {"cutoff": next(iter(cutoffs))}))
    return out


@dataclass
class StoredSlot:
    """The reference model's costs on one slot: {cost: {"metric", "unit", "mean", "n"}}."""

    slot: Slot
    costs: dict[str, dict[str, Any]]
    cutoff: float | None = None  # fine-tuning: the dev score the costs are "to"
    nodeid: str = ""
    method: str = ""

    def cost(self, name: str) -> float | None:
        c = self.costs.get(name)
        return float(c["mean"]) if c else None

    def to_dict(self) -> dict[str, Any]:
        return {"protocol": self.slot.protocol, "task": self.slot.task, "batch_size": self.slot.batch_size,
                "cutoff": self.cutoff, "nodeid": self.nodeid, "method": self.method, "costs": self.costs}

    @classmethod
    def from_dict(cls, where: str, d: Any) -> StoredSlot:
        if not isinstance(d, dict):
            raise ValueError(f"{where} is {type(d).__name__}, expected an object")
        protocol, task, batch = d.get("protocol"), d.get("task"), d.get("batch_size")
        if protocol not in COSTS:
            raise ValueError(f"{where}: protocol is {protocol!r}, expected one of {', '.join(COSTS)}")
        if not isinstance(task, str) or not task:
            raise ValueError(f"{where}: task must be a non-empty string")
        if (protocol == "inference") != (isinstance(batch, int) and not isinstance(batch, bool) and batch >= 1):
            raise ValueError(f"{where}: batch_size must be an int >= 1 for inference and null for finetune")
        cutoff = d.get("cutoff")
        if cutoff is not None and not is_finite_number(cutoff):
            raise ValueError(f"{where}: cutoff must be a number or null")
        costs = d.get("costs")
        if not isinstance(costs, dict) or not costs:
            raise ValueError(f"{where}: 'costs' must be a non-empty object")
        known = dict(COSTS[protocol])
        for name, c in costs.items():
            if name not in known:
                raise ValueError(f"{where}: unknown cost {name!r}; expected {', '.join(known)}")
            if not isinstance(c, dict) or c.get("metric") != known[name] or not isinstance(c.get("unit"), str):
                raise ValueError(f"{where}: cost {name!r} must name metric {known[name]!r} and a unit")
            if not (is_finite_number(c.get("mean")) and c["mean"] > 0):
                raise ValueError(f"{where}: cost {name!r} has mean {c.get('mean')!r}; expected a positive number")
            if not (isinstance(c.get("n"), int) and not isinstance(c.get("n"), bool) and c["n"] >= 1):
                raise ValueError(f"{where}: cost {name!r} has n {c.get('n')!r}; expected an int >= 1")
        return cls(Slot(protocol, task, batch), dict(costs), None if cutoff is None else float(cutoff),
                   str(d.get("nodeid", "")), str(d.get("method", "")))


@dataclass
class MachineReference:
    """The stored reference of one machine class: one model, its costs per slot."""

    machine: dict[str, Any]
    model: str
    datetime: str
    commit: dict[str, Any] = field(default_factory=dict)
    slots: dict[str, StoredSlot] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"machine": self.machine, "model": self.model, "datetime": self.datetime, "commit": self.commit,
                "slots": {key: s.to_dict() for key, s in sorted(self.slots.items())}}

    @classmethod
    def from_dict(cls, where: str, d: Any) -> MachineReference:
        if not isinstance(d, dict):
            raise ValueError(f"{where} is {type(d).__name__}, expected an object")
        for key, typ in (("machine", dict), ("model", str), ("datetime", str), ("commit", dict), ("slots", dict)):
            if not isinstance(d.get(key), typ):
                raise ValueError(f"{where}: '{key}' is missing or not a {typ.__name__}")
        slots = {}
        for key, s in d["slots"].items():
            stored = StoredSlot.from_dict(f"{where}, slot {key!r}", s)
            if stored.slot.key != key:
                raise ValueError(f"{where}: slot {key!r} holds {stored.slot.key!r}")
            slots[key] = stored
        return cls(dict(d["machine"]), d["model"], d["datetime"], dict(d["commit"]), slots)


@dataclass
class ReferenceFile:
    """The stored references of every machine class (none when the file does not exist)."""

    path: Path
    entries: list[MachineReference] = field(default_factory=list)
    shown: str = ""  # the path as the user would type it, for messages

    @property
    def name(self) -> str:
        return self.shown or str(self.path)

    def match(self, machine: dict[str, Any]) -> tuple[MachineReference | None, str]:
        """The entry of `machine`'s class, else None and why not, in words for the reports."""
        from ..gate.baselines import machine_mismatch

        if not self.entries:
            return None, f"no stored HULK reference in {self.name} (record one with --energy-save-reference)"
        for entry in self.entries:
            if not machine_mismatch(entry.machine, machine):
                return entry, ""
        others = "; ".join(f"{e.model} on [{', '.join(machine_mismatch(e.machine, machine))}]" for e in self.entries)
        return None, (f"the stored HULK reference in {self.name} was measured on another machine class, so no "
                      f"score is computed (costs from other hardware would compare the hardware): {others}")

    def to_dict(self) -> dict[str, Any]:
        return {"schema": SCHEMA, "schema_version": SCHEMA_VERSION, "references": [e.to_dict() for e in self.entries]}


def load_reference(path: str | Path, shown: str = "") -> ReferenceFile:
    """Read and validate the whole file; BaselineError naming it when it is unusable. `shown`: the path as
    messages print it."""
    path = Path(path)
    try:
        doc = read_json(path, what="HULK reference file", repair=_REPAIR, error=BaselineError)
    except FileNotFoundError:
        return ReferenceFile(path, shown=shown)
    try:
        if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
            raise ValueError(f"not a HULK reference file ('schema' is not {SCHEMA!r})")
        version = doc.get("schema_version")
        if version != SCHEMA_VERSION or isinstance(version, bool):
            raise ValueError(f"schema_version is {version!r}, this pytest-energy reads {SCHEMA_VERSION}")
        references = doc.get("references")
        if not isinstance(references, list):
            raise ValueError("'references' is missing or not a list")
        entries = [MachineReference.from_dict(f"reference #{i + 1}", e) for i, e in enumerate(references)]
    except ValueError as exc:
        raise BaselineError(f"HULK reference file {path}: {exc}; {_REPAIR}") from None
    return ReferenceFile(path, entries, shown)


def reference_from_records(records: list[TestRecord], machine: dict[str, Any], commit: dict[str, Any],
                           datetime_iso: str) -> tuple[MachineReference, list[str]]:
    """This run's costs per slot as a reference entry, and the slots that could not be stored (and why).

    Raises BaselineError when there is nothing to store, or when the run measured several models (a
    reference is one model).
    """
    slots: dict[str, StoredSlot] = {}
    filled_by: dict[str, list[str]] = {}
    models: dict[str, list[str]] = {}
    problems: list[str] = []
    for record in records:
        for slot, settings in slots_of(record):
            filled_by.setdefault(slot.key, []).append(record.nodeid)
            models.setdefault(model_of(record), []).append(record.nodeid)
            costs = {}
            for name, metric_name in COSTS[slot.protocol]:
                metric = record.metrics.get(metric_name)
                if metric is not None and metric.samples and all(is_finite_number(x) and x > 0 for x in metric.samples):
                    costs[name] = {"metric": metric_name, "unit": metric.unit, "mean": metric.mean,
                                   "n": len(metric.samples)}
            if not costs:
                problems.append(f"{slot.key} ({record.nodeid}): no cost (cut-off not reached?); a reference must "
                                "reach the cut-off on every task it normalises")
                continue
            method = next((record.metrics[m].method for _, m in COSTS[slot.protocol]
                           if m in record.metrics and record.metrics[m].method), "")
            slots[slot.key] = StoredSlot(slot, costs, settings.get("cutoff"), record.nodeid, method or "")
    for key, nodeids in filled_by.items():
        if len(nodeids) > 1:
            slots.pop(key, None)
            problems.append(f"{key}: filled by {len(nodeids)} tests ({', '.join(nodeids)}), so it is ambiguous; "
                            "give them different HULK tasks (extra_info['hulk_task'] or the marker's group)")
    if len(models) > 1:
        raise BaselineError("a HULK reference run measures one model, but this run measured "
                            + "; ".join(f"{m!r} ({', '.join(ids)})" for m, ids in models.items())
                            + ": set energy.extra_info['model'] to the same name in each, or run them apart")
    if not slots:
        raise BaselineError("--energy-save-reference: no test produced a HULK cost to store (a protocol test "
                            "with a HULK task, extra_info['hulk_task'] or a marker group, that reached its "
                            "cut-off)" + ("".join(f"\n  - {p}" for p in problems)))
    return MachineReference(machine, next(iter(models)), datetime_iso, commit, slots), problems


def save_reference(path: str | Path, new: MachineReference) -> Path:
    """Merge `new` into the file: its slots replace those of its machine class, other classes are kept.

    A damaged file is never overwritten; neither is another reference model of the same machine class
    (the reference of a class is one model: mixing two would make scores meaningless).
    """
    from ..gate.baselines import machine_mismatch

    path = Path(path)
    current = load_reference(path)
    for entry in current.entries:
        if machine_mismatch(entry.machine, new.machine):
            continue
        if entry.model != new.model:
            raise BaselineError(
                f"{path} already holds {entry.model!r} as the HULK reference of this machine class; storing "
                f"{new.model!r} beside it would mix two reference models. To change the reference model, delete "
                "that entry (or the file) and record the new one with --energy-save-reference.")
        entry.slots.update(new.slots)
        entry.machine, entry.datetime, entry.commit = new.machine, new.datetime, new.commit
        break
    else:
        current.entries.append(new)
    text = json.dumps(current.to_dict(), indent=2, sort_keys=True, allow_nan=False) + "\n"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BaselineError(f"cannot create folder {path.parent}: {exc}") from exc
    return write_atomic(path, text, error=BaselineError, what="HULK reference file")


def add_scores(record: TestRecord, reference: MachineReference) -> list[str]:
    """Record the test's HULK scores against the stored reference; returns the metric names added.

    One sample per sample of the cost metric (reference mean / sample), so the gate compares scores with the
    same statistics as costs. Nothing is added for a slot the reference lacks, a fine-tuning run to another
    cut-off, a cost the test does not have (cut-off not reached: finetune.reached flags that) or whose unit
    differs from the stored one.
    """
    added = []
    for slot, settings in slots_of(record):
        stored = reference.slots.get(slot.key)
        if stored is None or (slot.protocol == "finetune" and stored.cutoff != settings.get("cutoff")):
            continue
        for name, metric_name in COSTS[slot.protocol]:
            metric, ref = record.metrics.get(metric_name), stored.costs.get(name)
            if metric is None or ref is None or metric.unit != ref["unit"] or not metric.samples:
                continue
            if not all(is_finite_number(x) and x > 0 for x in metric.samples):
                continue  # a 0 J window cannot be scored (and is flagged where it was measured)
            score = record.metric(score_metric(slot.protocol, name), "1", better=Better.HIGHER, kind=Kind.MEASURED)
            score.samples = [float(ref["mean"]) / x for x in metric.samples]
            added.append(score.name)
    return added


class StoredReference:
    """The stored HULK reference as one run uses it: read once at start, matched to the run's machine class,
    scored into each protocol test before it is judged, and (--energy-save-reference) saved at the end.

    `shown`: the path as the user would type it, for messages and reports.
    """

    def __init__(self, path: str | Path, shown: str = "") -> None:
        self.path = Path(path)
        self.shown = shown or str(path)
        self._file: ReferenceFile | None = None

    def load(self) -> ReferenceFile:
        """The whole file, validated once: a damaged one raises BaselineError (the run stops before measuring)."""
        if self._file is None:
            self._file = load_reference(self.path, self.shown)
        return self._file

    def match(self, machine: dict[str, Any]) -> tuple[MachineReference | None, str]:
        """(`machine`'s class's stored reference or None, why none)."""
        return self.load().match(machine)

    def add_scores(self, record: TestRecord, machine: dict[str, Any]) -> list[str]:
        """The test's HULK scores against its machine class's reference become metrics of the test."""
        entry, _ = self.match(machine)
        return add_scores(record, entry) if entry is not None else []

    def info(self, machine: dict[str, Any]) -> HulkReference:
        """What the reports say about the stored reference: where it is, why none applies, the entry used."""
        entry, note = self.match(machine)
        return HulkReference(self.shown, note, entry.to_dict() if entry is not None else None)

    def save(self, records: list[TestRecord], machine: dict[str, Any], commit: dict[str, Any],
             datetime_iso: str) -> tuple[list[str], list[str]]:
        """Store this run's HULK costs as the reference of its machine class: (files written, slots skipped)."""
        entry, skipped = reference_from_records(records, machine, commit, datetime_iso)
        return [str(save_reference(self.path, entry))], skipped
