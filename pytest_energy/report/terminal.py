"""The terminal summary: what was metered and how, per-test figures, protocol tables, verdicts, HULK, footprint.

A pure function of a RunResult (pytest_energy.records); the plugin prints the lines.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..records import MeterInfo, VerdictKind
from .series import energy_table
from .tables import (FINETUNE_HEADERS, INFERENCE_HEADERS, SECOND_LOOK_TITLE, VERDICT_HEADERS, footprint_line,
                     hulk_blocks, protocol_rows, rechecked, second_look_cost, second_look_lines, second_look_mark,
                     unflagged_ab_line, unknown_note, verdict_row)

if TYPE_CHECKING:
    from ..records import RunResult


def header_lines(meter: MeterInfo) -> list[str]:
    """The meter, how it measures, and why better meters were passed over."""
    methods = ", ".join(sorted({str(d.method) for d in meter.devices}))
    devices = ", ".join(f"{d.device} ({d.name})" for d in meter.devices)
    lines = [f"energy meter: {meter.name} [{methods}] on {devices}"]
    if meter.fallback_reasons:
        lines.append("  passed over: " + "; ".join(meter.fallback_reasons))
    if meter.estimated:
        lines.append("  NOTE: 'estimate' figures are modelled from CPU time x W/core, not measured")
    if meter.idle_power_w is not None:
        idle = ", ".join(f"{k} {v:.3g} W" for k, v in meter.idle_power_w.items())
        lines.append(f"  idle power (measured {meter.idle_measured_s:g} s before the first benchmark): {idle}")
    return lines


def _table(rows: list[list[str]], headers: list[str]) -> list[str]:
    from tabulate import tabulate

    return tabulate(rows, headers=headers, disable_numparse=True).splitlines()


def protocol_lines(run: RunResult) -> list[str]:
    finetune, inference = protocol_rows(run.records)
    lines: list[str] = []
    if finetune:
        lines += ["", "fine-tune to cut-off (time and energy are training only; evaluation beside them)"]
        lines += _table(finetune, FINETUNE_HEADERS)
    if inference:
        lines += ["", "inference (per example)"]
        lines += _table(inference, INFERENCE_HEADERS)
    return lines


def comparison_lines(run: RunResult) -> list[str]:
    """Verdicts worth reading in a terminal: every non-PASS verdict and each test's energy; the rest
    (often a dozen PASS lines per test) is counted here and listed in full in JSON, markdown and HTML."""
    rows, notes, hints = [], [], []
    counts: dict[str, int] = {}
    for b in run.benchmarks:
        if b.outcome is None:
            continue
        for v in b.outcome.verdicts:
            counts[str(v.verdict)] = counts.get(str(v.verdict), 0) + 1
            if not v.decisive:
                continue
            verdict = str(v.verdict) + second_look_mark(v)
            if v.hint and v.verdict == VerdictKind.INCONCLUSIVE:
                if v.hint not in hints:
                    hints.append(v.hint)
                verdict += f" [{hints.index(v.hint) + 1}]"
            rows.append(verdict_row(b.record.name, v, verdict))
        notes += [(b.record.name, n) for n in b.outcome.notes]
    baseline_dir = run.config.display_path(run.config.baseline_path)
    lines: list[str] = []
    if rows:
        tally = ", ".join(f"{n} {name}" for name, n in sorted(counts.items()))
        lines += ["", f"comparison with baselines in {baseline_dir}/ "
                      f"(all metrics: {tally}; shown: time, energy and every REGRESSION/IMPROVED)"]
        lines += _table(rows, VERDICT_HEADERS)
        lines += [f"[{i}] {h}" for i, h in enumerate(hints, 1)]
    lines += inconclusive_lines(run, counts.get(str(VerdictKind.INCONCLUSIVE), 0))
    # One line instead of one per benchmark when many share a note: a suite's first run has no
    # baselines at all, and a run on another machine class mismatches for every test.
    missing = [name for name, n in notes if n.startswith("no baseline")]
    if len(missing) > 3:
        notes = [(name, n) for name, n in notes if not n.startswith("no baseline")]
        notes.append((f"{len(missing)} benchmarks",
                      f"no baseline in {baseline_dir}/ (create them with --energy-save-baseline)"))
    per_note: dict[str, int] = {}
    for _, n in notes:
        per_note[n] = per_note.get(n, 0) + 1
    notes = [(name, n) for name, n in notes if per_note[n] <= 3]
    notes += [(f"{c} benchmarks", n) for n, c in per_note.items() if c > 3]
    if notes:
        lines += [""] + [f"{name}: {n}" for name, n in notes]
    return lines


def second_look_section(run: RunResult) -> list[str]:
    """Each test a second look re-measured in this job (confirmed, not confirmed, the A/B's decision, no base to
    compare) and what it cost; for a run that suspected nothing, one line when an armed A/B had nothing to look
    at, else nothing."""
    tests = rechecked(run)
    if not tests:
        idle = unflagged_ab_line(run)
        return ["", SECOND_LOOK_TITLE, idle] if idle else []
    lines = ["", SECOND_LOOK_TITLE]
    for b in tests:
        recheck = b.outcome.recheck
        lines.append(f"  {b.record.name}: {recheck.text}" if recheck is not None else f"  {b.record.name}")
        lines += [f"    {line}" for line in second_look_lines(b.outcome)]
    note = unknown_note(run)
    return lines + second_look_cost(run) + ([note] if note else [])


def inconclusive_lines(run: RunResult, count: int) -> list[str]:
    """Say what INCONCLUSIVE means for this run's exit status, and how to turn it into a decision."""
    if not count:
        return []
    if run.config.fail_on_inconclusive:
        return [f"{count} INCONCLUSIVE verdict(s) FAIL their tests (--energy-fail-on-inconclusive)."]
    return [f"{count} INCONCLUSIVE verdict(s) PASS: the change could not be told from the noise. More rounds "
            "(--energy-rounds) or more saved baseline runs would decide them (each verdict's hint: above, and in the "
            "JSON and markdown reports); --energy-fail-on-inconclusive makes them fail."]


def terminal_lines(run: RunResult) -> list[str]:
    lines = header_lines(run.meter)
    table = energy_table(run.records)
    if table:
        lines += [""] + table.splitlines()
    else:
        lines.append("no energy benchmark produced results")
    lines += protocol_lines(run)
    lines += comparison_lines(run)
    lines += second_look_section(run)
    for title, table in hulk_blocks(run):
        lines += ["", title, *table.splitlines()]
    footprint = footprint_line(run)
    if footprint:
        lines += ["", footprint]
    notes = run.baseline_notes + run.report_notes
    if notes:
        lines += [""] + notes
    lines += [f"wrote {p}" for p in run.written]
    return lines
