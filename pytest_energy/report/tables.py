"""The tables every report shows, as rows of text: protocols, verdicts, HULK scores, the footprint.

Each output (terminal, markdown, HTML) lays these rows out in its own format; the content is built once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import UsageError
from ..records import TestRecord
from . import format as fmt
from .series import primary_series

FINETUNE_HEADERS = ["test", "cut-off", "reached", "steps", "score", "train time", "train energy", "eval time",
                    "eval share", "tokens", "FLOPs", "method"]
INFERENCE_HEADERS = ["test", "examples", "batch", "energy/ex", "latency mean", "p50", "p99", "throughput",
                     "score", "energy/correct", "method"]
VERDICT_HEADERS = ["test", "metric", "baseline", "current", "change", "p", "rule", "verdict"]


class Footnotes:
    """Each distinct text (a verdict's hint) once, numbered in order of first use; every output lays the
    marks and the list out in its own format."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def number(self, text: str) -> int:
        if text not in self.texts:
            self.texts.append(text)
        return self.texts.index(text) + 1


def _flops(x: Any) -> str:
    return f"{x:.3g}" if fmt.is_number(x) else fmt.MISSING


def _count(x: Any) -> str:
    return str(int(x)) if fmt.is_number(x) else fmt.MISSING


def _score_cell(p: dict[str, Any]) -> str:
    """'0.898 accuracy', '0.71 entity F1': the figure and what it is (accuracy means different things)."""
    score, name = p.get("score"), p.get("score_name")
    if score is None:  # results written before score existed
        score, name = p.get("accuracy"), "accuracy"
    return fmt.MISSING if not fmt.is_number(score) else f"{fmt.number(score)} {name}"


def protocol_rows(records: list[TestRecord]) -> tuple[list[list[str]], list[list[str]]]:
    """(fine-tuning rows, inference rows), one per protocol call, in run order."""
    finetune, inference = [], []
    for record in records:
        for p in record.protocols:
            if p.get("protocol") == "finetune":
                finetune.append([
                    record.name, fmt.number(p.get("cutoff")), "yes" if p.get("reached") else "no",
                    _count(p.get("steps")), fmt.number(p.get("score")), fmt.value(p.get("duration_s"), "s"),
                    fmt.value(p.get("energy_j"), "J"), fmt.value(p.get("eval_duration_s"), "s"),
                    fmt.percent(p.get("eval_share")), _count(p.get("tokens")), _flops(p.get("flops")),
                    p.get("method") or fmt.MISSING])
            elif p.get("protocol") == "inference":
                inference.append([
                    record.name, _count(p.get("examples")), _count(p.get("batch_size")),
                    fmt.value(p.get("j_per_example"), "J"), fmt.value(p.get("ms_per_example_mean"), "ms"),
                    fmt.value(p.get("ms_per_example_p50"), "ms"), fmt.value(p.get("ms_per_example_p99"), "ms"),
                    fmt.value(p.get("examples_per_s"), "/s"), _score_cell(p),
                    fmt.value(p.get("j_per_correct"), "J"), p.get("method") or fmt.MISSING])
    return finetune, inference


def verdict_row(name: str, v: Any, verdict_text: str | None = None) -> list[str]:
    return [name, v.metric, fmt.value(v.baseline_value, v.unit), fmt.value(v.current_value, v.unit),
            fmt.change(v.change_pct), "-" if v.p_value is None else fmt.p_value(v.p_value), v.rule,
            verdict_text or str(v.verdict)]


def footprint_of(record: TestRecord, carbon: Any) -> dict[str, Any] | None:
    """kWh, CO2e and cost of one benchmark's mean round (gross energy, as measured)."""
    series = primary_series(record)
    if series is None or carbon is None:
        return None
    from ..analysis.carbon import footprint

    energy_j, _ = fmt.mean_sd(series.energy.samples)
    duration_s, _ = fmt.mean_sd(series.duration.samples)
    if not (fmt.is_number(energy_j) and fmt.is_number(duration_s)):
        return None
    tokens = record.metrics.get("finetune.tokens") or record.metrics.get("inference.tokens")
    tokens_n = int(tokens.samples[-1]) if tokens and tokens.samples else None
    out = footprint(energy_j, duration_s, carbon, tokens=tokens_n)
    out["of"] = f"mean {series.title} ({series.energy.method})"
    return out


def footprint_line(run: Any) -> str:
    feet = [f for f in (footprint_of(r, run.config.carbon) for r in run.records) if f]
    if not feet:
        return ""
    kwh = sum(f["energy_kwh"] for f in feet)
    co2_g = sum(f["co2e_kg"] for f in feet) * 1000
    c = run.config.carbon
    return (f"footprint of one round of each benchmark: {fmt.number(kwh, 3)} kWh, {fmt.number(co2_g, 3)} g CO2e "
            f"(grid {c.grid_gco2e_per_kwh:.4g} gCO2e/kWh, PUE {c.pue:g}; from gross energy)")


# --- HULK Tables 3 and 4 ---------------------------------------------------------------------------------
# Three sources of a reference: a test of this session named by `reference=` (same machine, same run), the
# stored reference of this machine class (analysis/hulk_store.py), and the paper's own tables
# (analysis/hulk_paper.py; other hardware, time only). Each becomes HulkTable data (the JSON report keeps it
# as data) and text blocks (terminal, markdown, HTML).

_COST_LABELS = {"time": "Time", "energy": "Energy"}
_NA_NOTE = f"{fmt.MISSING}: cut-off not reached"


def _na_note(protocol: str, models: dict[str, dict[str, float | None]]) -> str:
    """The legend for n/a, only where a cell shows it: a title that always says "cut-off not reached"
    reads as if it had not been."""
    missing = protocol == "finetune" and any(c is None for costs in models.values() for c in costs.values())
    return f" ({_NA_NOTE})" if missing else ""


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
    notes: list[str] = field(default_factory=list)
    message: str | None = None  # instead of a table, when none can be made

    def rows(self) -> list[dict[str, Any]]:
        from ..analysis.hulk import normalise

        ref = {t: self.models[self.reference].get(t) for t in self.tasks}
        out = []
        for name, costs in self.models.items():
            scores, overall = normalise({t: c for t, c in costs.items() if t in ref}, ref)
            out.append({"model": name, "costs": {t: costs[t] for t in self.tasks if t in costs},
                        "scores": scores, "overall": overall})
        return out

    def to_dict(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in ("kind", "title", "protocol", "cost", "unit", "reference", "tasks",
                                           "batch_size", "notes", "message")}
        if self.message is None:
            try:
                d["rows"] = self.rows()
            except UsageError as exc:
                d["message"] = f"cannot normalise: {exc}"
        return d

    def text(self, tablefmt: str = "simple") -> str:
        import html

        if self.message is not None:
            # HTML sections must arrive escaped (tabulate's "html" format escapes table cells itself).
            body = f'<p class="note">{html.escape(self.message)}</p>' if tablefmt == "html" else self.message
        else:
            try:
                body = format_hulk_table(self.models, self.reference, tasks=self.tasks, tablefmt=tablefmt,
                                         cost_label=f"{_COST_LABELS.get(self.cost, self.cost)} ({self.unit})")
            except UsageError as exc:
                body = f"cannot normalise: {exc}"
        if not self.notes:
            return body
        if tablefmt == "html":
            return body + "".join(f'<p class="note">{html.escape(n)}</p>' for n in self.notes)
        if tablefmt == "github":
            return body + "\n\n" + "\n".join(f"- {n}" for n in self.notes)
        return body + "\n" + "\n".join(self.notes)


def _hulk_cost(record: TestRecord, metric: str) -> float | None:
    m = record.metrics.get(metric)
    return m.mean if m is not None and m.samples else None  # None: cut-off not reached


def _session_tables(run: Any) -> list[HulkTable]:
    """Tables against reference tests run in this session (`@pytest.mark.energy(reference=nodeid)`)."""
    from ..analysis.hulk_store import COSTS, model_of

    by_id = {b.record.nodeid: b.record for b in run.benchmarks}
    tables = []
    for protocol, costs in COSTS.items():
        pairs = []
        for b in run.benchmarks:
            ref_id = b.settings.reference
            if ref_id and any(p.get("protocol") == protocol for p in b.record.protocols):
                pairs.append((b.record, by_id.get(ref_id), ref_id))
        if not pairs:
            continue
        missing = sorted({ref_id for _, ref, ref_id in pairs if ref is None})
        if missing:
            tables.append(HulkTable("session", f"HULK {protocol}", protocol,
                                    message=f"reference test(s) not run in this session: {', '.join(missing)}"))
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
            tables.append(HulkTable("session", f"HULK {protocol} score = {ref_name} {cost} / model {cost}"
                                    + _na_note(protocol, models), protocol, cost, unit, ref_name, models, tasks))
    return tables


def _overall_lines(run: Any, table: HulkTable, protocol: str, cost: str) -> list[str]:
    """Per model: the overall score now and in the baselines (sums of the per-task score metrics' means).

    Informative: the gate decides per task. A sum of positive scores moves by a weighted mean of its terms'
    relative changes, so the overall cannot drop beyond tolerance unless some task's score does."""
    from ..analysis.hulk_store import hulk_task, model_of, score_metric

    name = score_metric(protocol, cost)
    per_model: dict[str, list[Any]] = {}
    for b in run.benchmarks:
        verdict = next((v for v in (b.outcome.verdicts if b.outcome else []) if v.metric == name), None)
        if verdict is not None and hulk_task(b.record) in table.tasks and (
                protocol != "inference" or any(p.get("batch_size") == table.batch_size for p in b.record.protocols)):
            per_model.setdefault(model_of(b.record), []).append(verdict)
    lines = []
    for model, verdicts in per_model.items():
        now = sum(v.current_value for v in verdicts)
        bases = [v.baseline_value for v in verdicts]
        if any(x is None for x in bases):
            base = "no baseline score yet for every task"
        else:
            total = sum(bases)
            base = f"baseline {fmt.number(total, 3)}, {fmt.change((now - total) / total * 100 if total else None)}"
        lines.append(f"{model}: overall {cost} score {fmt.number(now, 3)} ({base}; metric {name} per task, "
                     f"decided per task: {', '.join(str(v.verdict) for v in verdicts)})")
    return lines


def _stored_tables(run: Any) -> list[HulkTable]:
    """Tables against the stored reference of this machine class (analysis/hulk_store.py)."""
    from ..analysis.hulk_store import COSTS, hulk_task, model_of, slots_of

    info = getattr(run, "hulk_reference", None)
    if not info:
        return []
    filled = [(b.record, slot) for b in run.benchmarks for slot, _ in slots_of(b.record)]
    saved = info.get("saved")
    notes = [f"stored this run's costs as the HULK reference of this machine class in {info['path']}"
             ] if saved is not None else []
    notes += [f"not stored: {problem}" for problem in saved or []]
    entry = info.get("entry")
    if entry is None:
        if not filled and not notes:
            return []
        message = "\n".join(notes) if saved is not None else info.get("note") or ""
        return [HulkTable("stored", "HULK scores against a stored reference", message=message,
                          notes=[] if saved is not None else notes)]
    from ..analysis.hulk_store import MachineReference

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
            cutoff = next((p.get("cutoff") for p in record.protocols if p.get("protocol") == protocol), None)
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
                              f"{reference.model} {cost} / model {cost} ({info['path']}, recorded "
                              f"{reference.datetime[:10]} on this machine class)" + _na_note(protocol, models),
                              protocol, cost, unit, ref_name, models, tasks, batch, list(group_notes))
            table.notes += _overall_lines(run, table, protocol, cost)
            tables.append(table)
    unused = sorted(set(reference.slots) - {slot.key for _, slot in filled})
    if tables and unused:
        tables[-1].notes.append(f"stored but not run in this session: {', '.join(unused)}")
    if not tables and filled:
        tasks = sorted({hulk_task(r) or "" for r, _ in filled})
        return [HulkTable("stored", "HULK scores against a stored reference",
                          message=f"the stored reference ({reference.model}, {info['path']}) has no costs for "
                                  f"this run's task(s) {', '.join(tasks)}; it holds {', '.join(reference.slots)}",
                          notes=notes)]
    return tables


def _paper_tables(run: Any) -> list[HulkTable]:
    """This run's times beside HULK's published Tables 3 and 4 (--energy-hulk-paper)."""
    from ..analysis import hulk_paper
    from ..analysis.hulk_store import COSTS, model_of, slots_of

    if not getattr(run.config, "hulk_paper", False):
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
        notes = [f"{hulk_paper.describe(protocol)}. Rows marked 'this run' were measured on "
                 f"{_machine_words(run)}: other hardware, so their scores compare the machines as well as the models."]
        notes += [f"erratum applied: {e['model']}, {e['task']}: printed {e['printed_time']:g} {unit}, used "
                  f"{e['time']:g} {unit} ({e['why']})" for e in hulk_paper.errata(protocol)]
        title = (f"HULK Table {doc[protocol]['table']} ({protocol}) beside this run: score = {doc['reference_model']} "
                 f"time on the paper's GPU / model time ({_NA_NOTE + '; ' if _na_note(protocol, models) else ''}"
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


def _machine_words(run: Any) -> str:
    devices = getattr(run.meter, "devices", ()) or ()
    return ", ".join(f"{d.name} ({d.method})" for d in devices) or "this machine"


def hulk_tables(run: Any) -> list[HulkTable]:
    """Every HULK table of a run: same-session references, the stored reference, the paper."""
    return _session_tables(run) + _stored_tables(run) + _paper_tables(run)


def hulk_blocks(run: Any, tablefmt: str = "simple") -> list[tuple[str, str]]:
    """(title, table) per HULK table (HULK Tables 3 and 4): per task, reference cost / model cost, summed
    over tasks. Models are `extra_info["model"]` (else the test name), tasks the marker's `group` (or
    `extra_info["hulk_task"]` against a stored reference)."""
    return [(t.title, t.text(tablefmt)) for t in hulk_tables(run)]


def _cost_text(cost: float) -> str:
    # HULK prints seconds as "9,106.72"; small per-example costs (0.0031 J) need significant digits instead.
    return f"{cost:,.2f}" if cost >= 100 else fmt.number(cost, 4)


def format_hulk_table(models: dict[str, dict[str, float | None]], reference: str, *,
                      cost_label: str = "Time", tablefmt: str = "github", tasks: list[str] | None = None) -> str:
    """HULK Table 3 layout: Model | <task> <cost_label> | <task> Score | ... | Overall Score.

    `models` maps a model name to its per-task costs (None = N/A); `reference` names the row every other
    row is normalised by; `tasks` (default: the reference's) the columns. `tablefmt` is any tabulate format
    ("github" for markdown, "plain" for text). A cost that is None (cut-off not reached) prints as MISSING with
    a 0.00 score, as the paper prints N/A; a task the model did not run prints "-" and also counts 0.
    """
    from tabulate import tabulate

    from ..analysis.hulk import normalise

    if reference not in models:
        raise UsageError(f"reference model {reference!r} is not among the models: {', '.join(models)}")
    tasks = list(models[reference]) if tasks is None else list(tasks)
    ref_costs = {t: models[reference].get(t) for t in tasks}
    headers = ["Model"]
    for task in tasks:
        headers += [f"{task} {cost_label}", f"{task} Score"]
    headers.append("Overall Score")
    rows = []
    for name, costs in models.items():
        scores, overall = normalise({t: c for t, c in costs.items() if t in ref_costs}, ref_costs)
        row: list[str] = [name]
        for task in tasks:
            cost, score = costs.get(task), scores[task]
            shown = "-" if task not in costs else fmt.MISSING if cost is None else _cost_text(cost)
            row += [shown, "0.00" if score is None else f"{score:.2f}"]
        row.append(f"{overall:.2f}")
        rows.append(row)
    return tabulate(rows, headers=headers, tablefmt=tablefmt, disable_numparse=True,
                    colalign=("left",) + ("right",) * (len(headers) - 1))
