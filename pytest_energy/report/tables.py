"""The tables every report shows, as rows of text: protocols, verdicts, HULK scores, the footprint.

Each output (terminal, markdown, HTML) lays these rows out in its own format; the content is built once.
"""

from __future__ import annotations

from typing import Any

from ..errors import UsageError
from ..records import TestRecord
from . import format as fmt
from .series import primary_series

FINETUNE_HEADERS = ["test", "cut-off", "reached", "steps", "score", "train time", "train energy", "eval time",
                    "eval share", "tokens", "FLOPs", "method"]
INFERENCE_HEADERS = ["test", "examples", "batch", "energy/ex", "latency mean", "p50", "p99", "throughput",
                     "accuracy", "energy/correct", "method"]
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
                    fmt.value(p.get("examples_per_s"), "/s"), fmt.number(p.get("accuracy")),
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


# Which cost HULK normalises, per protocol: (time metric, energy metric). Fine-tuning costs are
# training-only time/energy to the cut-off; inference costs are per example (HULK's Table 4).
_HULK_COSTS = {"finetune": ("finetune.duration_s", "finetune.energy_j"),
               "inference": ("inference.ms_per_example", "inference.j_per_example")}


def _hulk_cost(record: TestRecord, metric: str) -> float | None:
    m = record.metrics.get(metric)
    return m.mean if m is not None and m.samples else None  # None: cut-off not reached


def hulk_blocks(run: Any, tablefmt: str = "simple") -> list[tuple[str, str]]:
    """(title, table) per protocol and cost, HULK Tables 3 and 4: per task, reference cost / model cost,
    summed over tasks. Models are `extra_info["model"]` (else the test name), tasks the marker's `group`."""
    by_id = {b.record.nodeid: b.record for b in run.benchmarks}
    blocks = []
    for protocol, (time_metric, energy_metric) in _HULK_COSTS.items():
        pairs = []
        for b in run.benchmarks:
            ref_id = b.settings.reference
            if ref_id and any(p.get("protocol") == protocol for p in b.record.protocols):
                pairs.append((b.record, by_id.get(ref_id), ref_id))
        if not pairs:
            continue
        missing = sorted({ref_id for _, ref, ref_id in pairs if ref is None})
        if missing:
            blocks.append((f"HULK {protocol}", f"reference test(s) not run in this session: {', '.join(missing)}"))
            continue
        for label, metric in (("Time", time_metric), ("Energy", energy_metric)):
            models: dict[str, dict[str, float | None]] = {}
            ref_name = None
            for record, ref, _ in pairs:
                for r in (ref, record):
                    task = r.group or r.extra_info.get("task") or "task"
                    models.setdefault(str(r.extra_info.get("model", r.name)), {})[task] = _hulk_cost(r, metric)
                ref_name = str(ref.extra_info.get("model", ref.name))
            unit = next((r.metrics[metric].unit for r, _, _ in pairs if metric in r.metrics), "")
            try:
                table = format_hulk_table(models, ref_name, cost_label=f"{label} ({unit})", tablefmt=tablefmt)
            except UsageError as exc:
                table = f"cannot normalise: {exc}"
            blocks.append((f"HULK {protocol} score = {ref_name} {label.lower()} / model {label.lower()} "
                           f"({fmt.MISSING}: cut-off not reached)", table))
    return blocks


def format_hulk_table(models: dict[str, dict[str, float | None]], reference: str, *,
                      cost_label: str = "Time", tablefmt: str = "github") -> str:
    """HULK Table 3 layout: Model | <task> <cost_label> | <task> Score | ... | Overall Score.

    `models` maps a model name to its per-task costs (None = N/A); `reference` names the row every other
    row is normalised by. `tablefmt` is any tabulate format ("github" for markdown, "plain" for text).
    Costs that are missing (cut-off not reached) print as MISSING with a 0.00 score, as the paper prints N/A.
    """
    from tabulate import tabulate

    from ..analysis.hulk import normalise

    if reference not in models:
        raise UsageError(f"reference model {reference!r} is not among the models: {', '.join(models)}")
    ref_costs = models[reference]
    tasks = list(ref_costs)
    headers = ["Model"]
    for task in tasks:
        headers += [f"{task} {cost_label}", f"{task} Score"]
    headers.append("Overall Score")
    rows = []
    for name, costs in models.items():
        scores, overall = normalise(costs, ref_costs)
        row: list[str] = [name]
        for task in tasks:
            cost, score = costs.get(task), scores[task]
            row += [fmt.MISSING if cost is None else f"{cost:,.2f}", "0.00" if score is None else f"{score:.2f}"]
        row.append(f"{overall:.2f}")
        rows.append(row)
    return tabulate(rows, headers=headers, tablefmt=tablefmt, disable_numparse=True,
                    colalign=("left",) + ("right",) * (len(headers) - 1))
