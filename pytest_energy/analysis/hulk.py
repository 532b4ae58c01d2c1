"""HULK-style reference normalisation (Zhou et al. 2021, "HULK: An Energy Efficiency Benchmark Platform for
Responsible NLP", Table 3).

Per task, score = reference cost / model cost (time or energy), so the reference model scores 1.00 on every
task and a model twice as cheap scores 2.00. A model that never reached the task's cut-off has no cost
("N/A"); it scores nothing for that task, and the overall score is the plain sum of the task scores, as in
HULK's table (N/A shown with a 0.00 score).

`hulk_tables` builds HULK's Tables 3 and 4 from a run: models grouped by task, cut-offs checked, scores
summed. The reports only lay them out (report/tables.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import UsageError
from ..records import FinetuneResult, InferenceResult, TestRecord, Verdict
from .hulk_store import COSTS, MachineReference, hulk_task, model_of, score_metric, slots_of

if TYPE_CHECKING:
    from ..records import RunResult

__all__ = ["HulkTable", "OverallScore", "hulk_tables", "normalise"]


def _check_cost(what: str, value: float) -> float:
    if not (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value) and value > 0):
        raise UsageError(f"{what} must be a positive finite number or None (N/A), got {value!r}")
    return float(value)


def normalise(model: dict[str, float | None],
              reference: dict[str, float | None]) -> tuple[dict[str, float | None], float]:
    """Per-task scores reference[task] / model[task] and their sum.

    Tasks are the reference's, in its order. A task the model lacks or has as None did not reach the cut-off:
    its score is None and adds 0 to the overall. The reference must have a positive cost for every task it
    lists and for every task the model reports (a reference that is N/A cannot normalise anything).
    """
    unknown = [t for t in model if t not in reference]
    if unknown:
        raise UsageError(f"the reference has no cost for task(s) {', '.join(map(repr, unknown))}: "
                         "the reference model must reach the cut-off on every task it normalises")
    scores: dict[str, float | None] = {}
    for task, ref_cost in reference.items():
        if ref_cost is None:
            raise UsageError(f"the reference cost for task {task!r} is N/A: the reference model must reach "
                             "the cut-off on every task it normalises")
        ref = _check_cost(f"reference cost for task {task!r}", ref_cost)
        cost = model.get(task)
        scores[task] = None if cost is None else ref / _check_cost(f"model cost for task {task!r}", cost)
    overall = math.fsum(s for s in scores.values() if s is not None)
    return scores, overall


# --- HULK Tables 3 and 4 ---------------------------------------------------------------------------------
# Three sources of a reference: a test of this session named by `reference=` (same machine, same run), the
# stored reference of this machine class (analysis/hulk_store.py), and the paper's own tables
# (analysis/hulk_paper.py; other hardware, time only). Each becomes HulkTable data, which the reports lay out
# (report/tables.py: text blocks for terminal, markdown and HTML; report/json.py: the JSON report's data).


def _na_legend(mark: str) -> str:
    return f"{mark}: cut-off not reached"


def _na_note(protocol: str, models: dict[str, dict[str, float | None]], mark: str) -> str:
    """The legend for the missing mark, only where a cell shows it: a title that always says "cut-off not
    reached" reads as if it had not been."""
    shown = protocol == "finetune" and any(c is None for costs in models.values() for c in costs.values())
    return f" ({_na_legend(mark)})" if shown else ""


@dataclass(frozen=True)
class OverallScore:
    """One model's overall HULK score (the sum of its per-task score metrics' means), now and in the baselines.

    Informative: the gate decides per task. A sum of positive scores moves by a weighted mean of its terms'
    relative changes, so the overall cannot drop beyond tolerance unless some task's score does."""

    model: str
    cost: str  # "time" | "energy"
    metric: str  # the per-task score metric, e.g. "hulk.finetune.score_time"
    now: float
    baseline: float | None  # None: some task has no baseline score yet
    verdicts: tuple[str, ...]  # each task's verdict, in run order

    @property
    def change_pct(self) -> float | None:
        if self.baseline is None or not self.baseline:
            return None
        return (self.now - self.baseline) / self.baseline * 100


@dataclass
class HulkTable:
    """One HULK table: per task, reference cost / model cost; overall = the sum over tasks."""

    kind: str  # "session" | "stored" | "paper"
    title: str
    protocol: str = ""
    cost: str = ""  # "time" | "energy"
    unit: str = ""
    reference: str = ""  # the row every other row is normalised by
    models: dict[str, dict[str, float | None]] = field(default_factory=dict)  # task absent: not run
    tasks: list[str] = field(default_factory=list)
    batch_size: int | None = None
    # Text, or an OverallScore the report words: in the order they are shown.
    notes: list[str | OverallScore] = field(default_factory=list)
    message: str | None = None  # instead of a table, when none can be made

    def rows(self) -> list[dict[str, Any]]:
        ref = {t: self.models[self.reference].get(t) for t in self.tasks}
        out = []
        for name, costs in self.models.items():
            scores, overall = normalise({t: c for t, c in costs.items() if t in ref}, ref)
            out.append({"model": name, "costs": {t: costs[t] for t in self.tasks if t in costs},
                        "scores": scores, "overall": overall})
        return out


def _hulk_cost(record: TestRecord, metric: str) -> float | None:
    m = record.metrics.get(metric)
    return m.mean if m is not None and m.samples else None  # None: cut-off not reached


def _session_tables(run: RunResult, mark: str) -> list[HulkTable]:
    """Tables against reference tests run in this session (`@pytest.mark.energy(reference=nodeid)`)."""
    by_id = {b.record.nodeid: b.record for b in run.benchmarks}
    tables = []
    for protocol, costs in COSTS.items():
        pairs = []
        for b in run.benchmarks:
            ref_id = b.settings.reference
            if ref_id and any(p.protocol == protocol for p in b.record.protocols):
                pairs.append((b.record, by_id.get(ref_id), ref_id))
        if not pairs:
            continue
        missing_refs = sorted({ref_id for _, ref, ref_id in pairs if ref is None})
        if missing_refs:
            tables.append(HulkTable("session", f"HULK {protocol}", protocol,
                                    message=f"reference test(s) not run in this session: {', '.join(missing_refs)}"))
            continue
        for cost, metric in costs:
            models: dict[str, dict[str, float | None]] = {}
            tasks: list[str] = []
            ref_name = ""
            for record, ref, _ in pairs:
                for r in (ref, record):
                    task = r.group or r.extra_info.get("task") or "task"
                    models.setdefault(model_of(r), {})[task] = _hulk_cost(r, metric)
                    if r is ref and task not in tasks:
                        tasks.append(task)
                ref_name = model_of(ref)
            unit = next((r.metrics[metric].unit for r, _, _ in pairs if metric in r.metrics), "")
            title = f"HULK {protocol} score = {ref_name} {cost} / model {cost}" + _na_note(protocol, models, mark)
            tables.append(HulkTable("session", title, protocol, cost, unit, ref_name, models, tasks))
    return tables


def _overall_scores(run: RunResult, table: HulkTable, protocol: str, cost: str) -> list[OverallScore]:
    """Per model: the overall score now and in the baselines (OverallScore)."""
    name = score_metric(protocol, cost)
    per_model: dict[str, list[Verdict]] = {}
    for b in run.benchmarks:
        verdict = next((v for v in (b.outcome.verdicts if b.outcome else []) if v.metric == name), None)
        if verdict is not None and hulk_task(b.record) in table.tasks and (
                protocol != "inference" or any(isinstance(p, InferenceResult) and p.batch_size == table.batch_size
                                               for p in b.record.protocols)):
            per_model.setdefault(model_of(b.record), []).append(verdict)
    out = []
    for model, verdicts in per_model.items():
        bases = [v.baseline_value for v in verdicts]
        baseline = None if any(x is None for x in bases) else sum(bases)  # type: ignore[arg-type]
        out.append(OverallScore(model, cost, name, sum(v.current_value for v in verdicts), baseline,
                                tuple(str(v.verdict) for v in verdicts)))
    return out


def _stored_tables(run: RunResult, mark: str) -> list[HulkTable]:
    """Tables against the stored reference of this machine class (analysis/hulk_store.py)."""
    info = run.hulk_reference
    if info is None:
        return []
    filled = [(b.record, slot) for b in run.benchmarks for slot, _ in slots_of(b.record)]
    saved = info.saved
    notes: list[str | OverallScore] = [
        f"stored this run's costs as the HULK reference of this machine class in {info.path}"
             ] if saved is not None else []
    notes += [f"not stored: {problem}" for problem in saved or []]
    entry = info.entry
    if entry is None:
        if not filled and not notes:
            return []
        message = "\n".join(map(str, notes)) if saved is not None else info.note
        return [HulkTable("stored", "HULK scores against a stored reference", message=message,
                          notes=[] if saved is not None else notes)]
    reference = MachineReference.from_dict("stored reference", entry)
    ref_name = f"{reference.model} (stored reference)"
    groups: dict[tuple[str, int | None], list[tuple[TestRecord, Any]]] = {}
    for record, slot in filled:
        if slot.key in reference.slots:
            groups.setdefault((slot.protocol, slot.batch_size), []).append((record, slot))
    tables = []
    for (protocol, batch), members in groups.items():
        tasks = list(dict.fromkeys(slot.task for _, slot in members))
        stored = {t: reference.slots[next(s.key for _, s in members if s.task == t)] for t in tasks}
        group_notes = list(notes)
        for record, slot in members:
            cutoff = next((p.cutoff for p in record.protocols if isinstance(p, FinetuneResult)), None)
            if protocol == "finetune" and stored[slot.task].cutoff != cutoff:
                group_notes.append(f"{record.name}: cut-off {cutoff} but the reference's is "
                                   f"{stored[slot.task].cutoff}: not scored")
        at = "" if protocol == "finetune" else f" at batch {batch}"
        for cost, metric in COSTS[protocol]:
            models: dict[str, dict[str, float | None]] = {ref_name: {t: stored[t].cost(cost) for t in tasks}}
            for record, slot in members:
                models.setdefault(model_of(record), {})[slot.task] = _hulk_cost(record, metric)
            unit = next((c["unit"] for s in stored.values() for n, c in s.costs.items() if n == cost), "")
            table = HulkTable("stored", f"HULK {protocol}{at} score against the stored reference = "
                              f"{reference.model} {cost} / model {cost} ({info.path}, recorded "
                              f"{reference.datetime[:10]} on this machine class)" + _na_note(protocol, models, mark),
                              protocol, cost, unit, ref_name, models, tasks, batch, list(group_notes))
            table.notes += _overall_scores(run, table, protocol, cost)
            tables.append(table)
    unused = sorted(set(reference.slots) - {slot.key for _, slot in filled})
    if tables and unused:
        tables[-1].notes.append(f"stored but not run in this session: {', '.join(unused)}")
    if not tables and filled:
        tasks = sorted({hulk_task(r) or "" for r, _ in filled})
        return [HulkTable("stored", "HULK scores against a stored reference",
                          message=f"the stored reference ({reference.model}, {info.path}) has no costs for "
                                  f"this run's task(s) {', '.join(tasks)}; it holds {', '.join(reference.slots)}",
                          notes=notes)]
    return tables


def _paper_tables(run: RunResult, mark: str) -> list[HulkTable]:
    """This run's times beside HULK's published Tables 3 and 4 (--energy-hulk-paper)."""
    from . import hulk_paper

    if run.config is None or not run.config.hulk_paper:
        return []
    doc = hulk_paper.paper()
    tables, other = [], []
    for protocol, costs in COSTS.items():
        metric = dict(costs)["time"]
        models: dict[str, dict[str, float | None]] = {m: dict(t) for m, t in hulk_paper.paper_times(protocol).items()}
        ours = []
        for b in run.benchmarks:
            for slot, _ in slots_of(b.record):
                if slot.protocol != protocol or slot.batch_size not in (None, 1):  # HULK: single instances
                    continue
                task = hulk_paper.paper_task(slot.task)
                if task is None:
                    other.append(slot.task)
                    continue
                row = f"{model_of(b.record)} (this run)"
                models.setdefault(row, {})[task] = _hulk_cost(b.record, metric)
                ours.append(row)
        if not ours:
            continue
        unit = doc[protocol]["unit"]
        notes = [f"{hulk_paper.table_caption(protocol)}. Rows marked 'this run' were measured on "
                 f"{_machine_words(run)}: other hardware, so their scores compare the machines as well as the models."]
        notes += [f"erratum applied: {e['model']}, {e['task']}: printed {e['printed_time']:g} {unit}, used "
                  f"{e['time']:g} {unit} ({e['why']})" for e in hulk_paper.errata(protocol)]
        legend = _na_legend(mark) + "; " if _na_note(protocol, models, mark) else ""
        title = (f"HULK Table {doc[protocol]['table']} ({protocol}) beside this run: score = {doc['reference_model']} "
                 f"time on the paper's GPU / model time ({legend}"
                 "-: not run)")
        tables.append(HulkTable("paper", title, protocol, "time", unit, doc["reference_model"], models,
                                list(doc[protocol]["tasks"]), 1 if protocol == "inference" else None, notes))
    left_out = (f"not HULK tasks, left out: {', '.join(sorted(set(other)))} (HULK has "
                f"{', '.join(doc['tasks'])})") if other else ""
    if not tables:
        return [HulkTable("paper", "HULK's published Tables 3 and 4 (--energy-hulk-paper)",
                          message="no run of a HULK task (CoNLL 2003, SST-2, MNLI) at batch 1 to place beside the "
                                  "paper" + (f"; {left_out}" if left_out else ""))]
    if left_out:
        tables[-1].notes.append(left_out)
    return tables


def _machine_words(run: RunResult) -> str:
    devices = run.meter.devices
    return ", ".join(f"{d.name} ({d.method})" for d in devices) or "this machine"


def hulk_tables(run: RunResult, mark: str) -> list[HulkTable]:
    """Every HULK table of a run: same-session references, the stored reference, the paper. `mark` is the
    reports' mark for a cost that does not exist (report.format.MISSING), named in titles that show it.

    Models are `extra_info["model"]` (else the test name), tasks the marker's `group` (or
    `extra_info["hulk_task"]` against a stored reference)."""
    return _session_tables(run, mark) + _stored_tables(run, mark) + _paper_tables(run, mark)
