"""The tables every report shows, as rows of text: protocols, verdicts, HULK scores, the footprint.

Each output (terminal, markdown, HTML) lays these rows out in its own format; the content is built once.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import UsageError
from ..records import FinetuneResult, InferenceResult, TestRecord, Verdict, VerdictKind
from . import format as fmt
from .series import primary_series

if TYPE_CHECKING:
    from ..analysis.carbon import CarbonConfig
    from ..analysis.hulk import HulkTable, OverallScore
    from ..records import BenchmarkResult, Outcome, RunResult

FINETUNE_HEADERS = ["test", "cut-off", "reached", "steps", "score", "train time", "train energy", "eval time",
                    "eval share", "tokens", "FLOPs", "method"]
INFERENCE_HEADERS = ["test", "examples", "batch", "energy/ex", "latency mean", "p50", "p99", "throughput",
                     "score", "energy/correct", "method"]
# One verdict row for every output: each picks its columns and lays the cells out (terminal and markdown as
# text, HTML escaped into cells). VERDICT_HEADERS: the terminal's columns, named by their keys.
VERDICT_HEADINGS = {"test": "Test", "metric": "Metric", "baseline": "Baseline", "current": "Current",
                    "change": "Change", "p": "p", "tolerance": "Tolerance", "samples": "Samples (baseline/current)",
                    "rule": "Rule", "verdict": "Verdict"}
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


def _score_cell(p: InferenceResult) -> str:
    """'0.898 accuracy', '0.71 entity F1': the figure and what it is (accuracy means different things)."""
    score, name = p.score, p.score_name
    if score is None:  # results written before score existed
        score, name = p.accuracy, "accuracy"
    return fmt.MISSING if not fmt.is_number(score) else f"{fmt.number(score)} {name}"


def protocol_rows(records: list[TestRecord]) -> tuple[list[list[str]], list[list[str]]]:
    """(fine-tuning rows, inference rows), one per protocol call, in run order."""
    finetune, inference = [], []
    for record in records:
        for p in record.protocols:
            if isinstance(p, FinetuneResult):
                finetune.append([
                    record.name, fmt.number(p.cutoff), "yes" if p.reached else "no", _count(p.steps),
                    fmt.number(p.score), fmt.value(p.duration_s, "s"), fmt.value(p.energy_j, "J"),
                    fmt.value(p.eval_duration_s, "s"), fmt.percent(p.eval_share), _count(p.tokens),
                    _flops(p.flops), p.method or fmt.MISSING])
            elif isinstance(p, InferenceResult):
                inference.append([
                    record.name, _count(p.examples), _count(p.batch_size), fmt.value(p.j_per_example, "J"),
                    fmt.value(p.ms_per_example_mean, "ms"), fmt.value(p.ms_per_example_p50, "ms"),
                    fmt.value(p.ms_per_example_p99, "ms"), fmt.value(p.examples_per_s, "/s"), _score_cell(p),
                    fmt.value(p.j_per_correct, "J"), p.method or fmt.MISSING])
    return finetune, inference


def verdict_cells(name: str, v: Verdict, verdict_text: str | None = None) -> dict[str, str]:
    """Every column of a verdict row (VERDICT_HEADINGS' keys) as text."""
    return {"test": name, "metric": v.metric, "baseline": fmt.value(v.baseline_value, v.unit),
            "current": fmt.value(v.current_value, v.unit), "change": fmt.change(v.change_pct),
            "p": "-" if v.p_value is None else fmt.p_value(v.p_value), "tolerance": fmt.percent(v.tolerance),
            "samples": f"{fmt.number(v.n_baseline)}/{fmt.number(v.n_current)}", "rule": v.rule,
            "verdict": verdict_text or str(v.verdict)}


def verdict_row(name: str, v: Verdict, verdict_text: str | None = None,
                columns: Sequence[str] = VERDICT_HEADERS) -> list[str]:
    cells = verdict_cells(name, v, verdict_text)
    return [cells[c] for c in columns]


# --- the second look in this job (issue 16): re-runs that confirm a suspicion, A/B against a base revision ----

SECOND_LOOK_TITLE = "second look in this job"


def rechecked(run: RunResult) -> list[BenchmarkResult]:
    """The benchmarks a second look re-measured in this job, in run order (none in an unflagged run)."""
    return [b for b in run.benchmarks if b.outcome is not None and (
        b.outcome.recheck is not None or any(v.confirmation or v.by_ab for v in b.outcome.verdicts))]


def unflagged_ab_line(run: RunResult) -> str | None:
    """What an armed --energy-against did in a run whose history screen flagged no test: nothing, at no cost. Said
    so that a pull request's reader can tell "the A/B ran and had nothing to look at" from "the A/B was off"."""
    if run.ab_base is None or rechecked(run) or not any(b.outcome is not None and b.outcome.gating
                                                        for b in run.benchmarks):
        return None
    return (f"A/B against {run.ab_base}: the history screen flagged no test, so nothing was measured against the "
            "base (no cost)")


def second_look_lines(outcome: Outcome, leave_out: Collection[str] = ()) -> list[str]:
    """What the second look said of one test, one line per metric: each confirmation ('energy_j: confirmed by 2
    re-runs: +31 %, +28 %, +33 %: REGRESSION'), each A/B decision worth reading (time, energy, anything not
    SAME) with its ratio and interval; the other A/B metrics are counted in one line. A test with no base to
    compare gets none: its Recheck.text says why. `leave_out`: metrics the caller shows elsewhere (markdown's
    headline lists each regression with its ratio and confirmation)."""
    lines, same = [], 0
    no_base = outcome.recheck is not None and bool(outcome.recheck.no_base)
    for v in outcome.verdicts:
        if v.metric in leave_out:
            continue
        if v.confirmation:
            lines.append(f"{v.metric}: {v.confirmation}: {v.verdict}")
        elif v.by_ab and v.verdict == VerdictKind.NO_BASELINE:
            if not no_base:  # else the test's own line (Recheck.text) says why, once
                lines.append(f"{v.metric}: {v.rule}")
        elif v.by_ab:
            if v.decisive or v.verdict != VerdictKind.PASS:
                screen = f" (screen: {v.screen})" if v.screen else ""
                lines.append(f"{v.metric}: {fmt.ab_line(v)}{screen}")
            else:
                same += 1
    if same:
        lines.append(f"{same} other metric{'s' if same != 1 else ''} SAME")
    return lines


def unknown_note(run: RunResult) -> str:
    """What an A/B UNKNOWN means for the exit status, and what would decide it ("" when there is none)."""
    n = sum(1 for b in rechecked(run) for v in b.outcome.verdicts
            if v.by_ab and v.verdict == VerdictKind.INCONCLUSIVE)
    if not n:
        return ""
    strict = run.config is not None and run.config.fail_on_inconclusive
    effect = "fails with --energy-fail-on-inconclusive" if strict else "the test passes"
    return (f"{n} A/B verdict(s) UNKNOWN: the A/B ran out of pairs before deciding (INCONCLUSIVE, {effect}); "
            "more pairs (--energy-max-pairs) would decide them.")


AB_LEGEND = ("An A/B verdict compares this revision with the base revision, measured alternately in this job: a "
             "sequential test on the pairs' head/base ratios, its interval in brackets.")


def second_look_mark(v: Verdict) -> str:
    """What a verdict cell adds when a second look decided it: ' (confirmed)', ' (not confirmed)', ' (A/B)'."""
    if v.confirmation:
        return " (confirmed)" if v.verdict == VerdictKind.REGRESSION else " (not confirmed)"
    return " (A/B)" if v.by_ab else ""


def _seconds(s: float) -> str:
    return f"{s:.1f} s" if s < 100 else f"{s:.0f} s"


def second_look_cost(run: RunResult) -> list[str]:
    """What the second look cost, wall seconds summed over the tests: 'confirmation cost 41.3 s: 2 tests re-run
    (4 runs)', 'A/B against 1a2b3c4 cost 412 s: 3 tests, up to 6 pairs each' (one line per base revision). The
    pairs of one A/B measure every undecided test in the same processes, so the pairs are not summed."""
    checks = [b.outcome.recheck for b in run.benchmarks if b.outcome is not None and b.outcome.recheck is not None]
    lines = []
    confirm = [c for c in checks if c.how == "confirm"]
    if confirm:
        runs = sum(c.runs for c in confirm)
        lines.append(f"confirmation cost {_seconds(sum(c.cost_s for c in confirm))}: {len(confirm)} "
                     f"test{'s' if len(confirm) != 1 else ''} re-run ({runs} run{'s' if runs != 1 else ''})")
    by_base: dict[str, list[Any]] = {}
    for c in checks:
        if c.how != "confirm":
            by_base.setdefault(c.base_ref, []).append(c)
    for base, group in by_base.items():
        pairs = max(c.runs for c in group)
        no_base = sum(1 for c in group if c.no_base)
        missing = f" ({no_base} with no base to compare)" if no_base else ""
        lines.append(f"A/B against {base or 'the base revision'} cost {_seconds(sum(c.cost_s for c in group))}: "
                     f"{len(group)} test{'s' if len(group) != 1 else ''}{missing}, up to {pairs} "
                     f"pair{'s' if pairs != 1 else ''} each")
    return lines


def footprint_of(record: TestRecord, carbon: CarbonConfig | None) -> dict[str, Any] | None:
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


def footprint_line(run: RunResult) -> str:
    if run.config is None:
        return ""
    feet = [f for f in (footprint_of(r, run.config.carbon) for r in run.records) if f]
    if not feet:
        return ""
    kwh = sum(f["energy_kwh"] for f in feet)
    co2_g = sum(f["co2e_kg"] for f in feet) * 1000
    c = run.config.carbon
    return (f"footprint of one round of each benchmark: {fmt.number(kwh, 3)} kWh, {fmt.number(co2_g, 3)} g CO2e "
            f"(grid {c.grid_gco2e_per_kwh:.4g} gCO2e/kWh, PUE {c.pue:g}; from gross energy)")


# --- HULK Tables 3 and 4: built in analysis/hulk.py, laid out here ----------------------------------------

_COST_LABELS = {"time": "Time", "energy": "Energy"}


def hulk_tables(run: RunResult) -> list[HulkTable]:
    """Every HULK table of a run (analysis.hulk.hulk_tables), with this layer's missing mark."""
    from ..analysis.hulk import hulk_tables as build

    return build(run, fmt.MISSING)


def overall_line(score: OverallScore) -> str:
    if score.baseline is None:
        base = "no baseline score yet for every task"
    else:
        base = f"baseline {fmt.number(score.baseline, 3)}, {fmt.change(score.change_pct)}"
    return (f"{score.model}: overall {score.cost} score {fmt.number(score.now, 3)} ({base}; metric {score.metric} "
            f"per task, decided per task: {', '.join(score.verdicts)})")


def hulk_notes(table: HulkTable) -> list[str]:
    """A table's notes as text (an overall score worded by overall_line)."""
    return [n if isinstance(n, str) else overall_line(n) for n in table.notes]


def hulk_table_dict(table: HulkTable) -> dict[str, Any]:
    """A table as the JSON report keeps it: its fields, and its rows of costs, scores and overall."""
    from ..errors import UsageError

    d = {k: getattr(table, k) for k in ("kind", "title", "protocol", "cost", "unit", "reference", "tasks",
                                        "batch_size", "message")}
    d["notes"] = hulk_notes(table)
    if table.message is None:
        try:
            d["rows"] = table.rows()
        except UsageError as exc:
            d["message"] = f"cannot normalise: {exc}"
    return d


def hulk_text(table: HulkTable, tablefmt: str = "simple") -> str:
    """A table as text in a tabulate format ("simple", "github", "html"), its notes below it."""
    import html

    if table.message is not None:
        # HTML sections must arrive escaped (tabulate's "html" format escapes table cells itself).
        body = f'<p class="note">{html.escape(table.message)}</p>' if tablefmt == "html" else table.message
    else:
        try:
            body = format_hulk_table(table.models, table.reference, tasks=table.tasks, tablefmt=tablefmt,
                                     cost_label=f"{_COST_LABELS.get(table.cost, table.cost)} ({table.unit})")
        except UsageError as exc:
            body = f"cannot normalise: {exc}"
    notes = hulk_notes(table)
    if not notes:
        return body
    if tablefmt == "html":
        return body + "".join(f'<p class="note">{html.escape(n)}</p>' for n in notes)
    if tablefmt == "github":
        return body + "\n\n" + "\n".join(f"- {n}" for n in notes)
    return body + "\n" + "\n".join(notes)


def hulk_blocks(run: RunResult, tablefmt: str = "simple") -> list[tuple[str, str]]:
    """(title, table) per HULK table (HULK Tables 3 and 4): per task, reference cost / model cost, summed
    over tasks."""
    return [(t.title, hulk_text(t, tablefmt)) for t in hulk_tables(run)]


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
