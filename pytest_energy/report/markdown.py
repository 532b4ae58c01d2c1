"""GitHub-flavoured markdown for $GITHUB_STEP_SUMMARY or a pull-request comment. Pure functions, no I/O.

Built to be read in a pull request, which holds 65,536 characters: the verdict first (what regressed, by how
much, against which baselines), then every table folded in a <details> block, rows in run order, each hint
once as a footnote. Every piece of text from results goes through `cell` (HTML-escaped).
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from ..records import Method, Verdict, VerdictKind, is_estimate
from . import format as fmt
from .series import ENERGY_HEADERS, energy_rows, primary_series
from .tables import (AB_LEGEND, FINETUNE_HEADERS, INFERENCE_HEADERS, SECOND_LOOK_TITLE, VERDICT_HEADINGS, Footnotes,
                     footprint_line, hulk_blocks, protocol_rows, rechecked, second_look_cost, second_look_lines,
                     second_look_mark, unflagged_ab_line, unknown_note, verdict_row)

if TYPE_CHECKING:
    from ..records import RunResult

__all__ = ["cell", "comparison_markdown", "run_markdown"]

# Worst first, so the counts line reads from what needs attention to what does not.
_COUNT_ORDER = (VerdictKind.REGRESSION, VerdictKind.INCONCLUSIVE, VerdictKind.NO_BASELINE, VerdictKind.IMPROVED,
                VerdictKind.PASS)
# The verdict table's columns (report/tables.verdict_row): the rule is said in the legend above the table.
_VERDICT_COLUMNS = ("test", "metric", "baseline", "current", "change", "p", "verdict")
ESTIMATE_NOTE = f"Method `{Method.ESTIMATE}`: energy modelled from CPU time x watts per core, not measured."


def cell(text: Any) -> str:
    """Text made safe inside a table cell: HTML escaped (not every renderer sanitises it as GitHub does),
    '|' would split the cell, a newline would end the row."""
    return html.escape(str(text), quote=False).replace("|", "\\|").replace("\n", " ")


def _footnote_lines(footnotes: Footnotes) -> list[str]:
    return [f"[{i}] {cell(t)}  " for i, t in enumerate(footnotes.texts, 1)]  # two spaces: a line break


def _table(headers: Sequence[str], rows: Iterable[Sequence[Any]], align: str = "") -> list[str]:
    """A markdown table; `align` per column: 'l' or 'r' (default left)."""
    align = align or "l" * len(headers)
    lines = ["| " + " | ".join(cell(h) for h in headers) + " |",
             "|" + "|".join("---:" if a == "r" else "---" for a in align) + "|"]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return lines


def _details(summary: str, body: list[str]) -> list[str]:
    # Blank lines around the body: GitHub renders markdown inside <details> only after one.
    return [f"<details><summary>{cell(summary)}</summary>", "", *body, "", "</details>", ""]


def _verdict_text(v: Verdict, footnotes: Footnotes) -> str:
    text = str(v.verdict)
    if v.verdict == VerdictKind.REGRESSION:
        text = f"**{text}**"
    text += second_look_mark(v)
    if v.hint and v.verdict != VerdictKind.NO_BASELINE:  # "no baseline" is said once, in the notes
        text += f" [{footnotes.number(v.hint)}]"
    return text


def comparison_markdown(results: Sequence[tuple[str, Sequence[Verdict]]],
                        footnotes: Footnotes | None = None) -> list[str]:
    """Verdict table rows, in the order given (run order): Test | Metric | Baseline | Current | Change | p | Verdict.

    `results` is a sequence of (test label, Verdicts). A hint becomes a footnote mark; pass `footnotes` to share
    the numbering with the rest of a document, else the footnotes follow the table.
    """
    own = footnotes is None
    if footnotes is None:
        footnotes = Footnotes()
    rows = []
    for label, verdicts in results:
        for v in verdicts:
            rows.append(verdict_row(label, v, _verdict_text(v, footnotes), _VERDICT_COLUMNS))
    if not rows:
        return ["No energy benchmark was compared with a baseline."]
    lines = _table([VERDICT_HEADINGS[c] for c in _VERDICT_COLUMNS], rows, "llrrrrl")
    if own and footnotes.texts:
        lines += ["", *_footnote_lines(footnotes)]
    return lines


def _labels(run: RunResult) -> dict[str, str]:
    """Short test names (`test_x[a]`) where unambiguous in this run, else the node id."""
    names = [b.record.name for b in run.benchmarks]
    return {b.record.nodeid: b.record.name if names.count(b.record.name) == 1 else b.record.nodeid
            for b in run.benchmarks}


def _against(run: RunResult) -> str:
    """'baselines/ (recorded 2025-01-01 at abc1234)': what the verdicts compare with."""
    where = f"`{cell(run.config.display_path(run.config.baseline_path))}/`"
    entries = list(run.baselines.values())
    commits = sorted({str(e.commit.get("id") or "")[:7] for e in entries} - {""})
    dates = sorted({str(e.datetime)[:10] for e in entries} - {""})
    facts = []
    if dates:
        facts.append(f"recorded {dates[-1]}" if len(dates) == 1 else f"recorded {dates[0]} to {dates[-1]}")
    if commits:
        facts.append(f"at {commits[0]}" if len(commits) == 1 else f"at {len(commits)} commits")
    return f"{where} ({', '.join(facts)})" if facts else where


def _headline(run: RunResult, labels: dict[str, str]) -> list[str]:
    """The verdict in a few lines: regressions (or failures) by how much and against what, else the tally."""
    judged = [b for b in run.benchmarks if b.outcome is not None]
    verdicts = [v for b in judged for v in b.outcome.verdicts]
    counts = {k: sum(1 for v in verdicts if v.verdict == k) for k in _COUNT_ORDER}
    tally = ", ".join(f"{n} {k}" for k, n in counts.items() if n)
    saving = bool(judged) and not any(b.outcome.gating for b in judged)
    failures = [(b, b.outcome.failure) for b in judged if b.outcome.failure]
    regressed = [(b, v) for b in judged for v in b.outcome.regressions]
    n = len(run.benchmarks)
    lines: list[str] = []
    if regressed and not saving:
        tests = len({b.record.nodeid for b, _ in regressed})
        against = f"Against the baselines in {_against(run)}"
        if all(v.by_ab for _, v in regressed):
            against = "Against the base revision, measured alternately in this job"
        elif any(v.by_ab for _, v in regressed):
            against += " (an A/B line: against the base revision, measured alternately in this job)"
        lines += [f"## pytest-energy: {len(regressed)} regression(s) in {tests} of {n} benchmark(s)", "",
                  f"{against}:", ""]
        for b, v in regressed:
            p = f", p={fmt.p_value(v.p_value)}" if v.p_value is not None else ""
            if v.by_ab:  # measured against the base revision in this job, not against the stored baselines
                p = f", {fmt.ratio(v)}, {fmt.ab_rule(v)}"
            line = (f"- `{cell(labels[b.record.nodeid])}` {cell(v.metric)}: **{fmt.change(v.change_pct)}** "
                    f"({cell(fmt.value(v.baseline_value, v.unit))} → {cell(fmt.value(v.current_value, v.unit))}"
                    f"{cell(p)}; tolerance {v.tolerance * 100:g} %)")
            lines.append(line + (f"; {cell(v.confirmation)}" if v.confirmation else ""))
    elif failures:
        lines += [f"## pytest-energy: {len(failures)} of {n} benchmark(s) failed", ""]
    elif saving:
        lines += [f"## pytest-energy: baselines recorded for {n} benchmark(s)", "",
                  f"Saved to `{cell(run.config.display_path(run.config.baseline_path))}/`; this run's verdicts "
                  "against the earlier baselines are shown, not enforced."]
    elif all(v.verdict == VerdictKind.NO_BASELINE for v in verdicts):
        other_machine = sum(1 for b in judged if any("different machine class" in x for x in b.outcome.notes))
        if other_machine:
            lines += [f"## pytest-energy: {n} benchmark(s) measured, not compared", "",
                      f"The baselines of {other_machine} of them were measured on a different machine class "
                      "(notes below say what differs); record baselines on this one with `--energy-save-baseline`."]
        else:
            lines += [f"## pytest-energy: {n} benchmark(s) measured, no baseline to compare with", "",
                      "Record baselines with `--energy-save-baseline` and commit them."]
    else:
        lines += [f"## pytest-energy: no regression in {n} benchmark(s)", "",
                  f"Compared with the baselines in {_against(run)}."]
    lines += [f"- `{cell(labels[b.record.nodeid])}`: {cell(failure)}" for b, failure in failures]
    improved = [(b, v) for b in judged for v in b.outcome.verdicts if v.verdict == VerdictKind.IMPROVED]
    if improved:
        lines.append("Improved: " + "; ".join(f"`{cell(labels[b.record.nodeid])}` {cell(v.metric)} "
                                              f"{fmt.change(v.change_pct)}" for b, v in improved))
    if tally:
        lines += ["", f"All {len(verdicts)} metric verdicts: {tally}."]
    return lines


def _second_look(run: RunResult, labels: dict[str, str]) -> list[str]:
    """Each test a second look re-measured in this job, what it said per metric, and its cost: a few lines per
    suspected test; for a run that suspected nothing, one line when an armed A/B had nothing to look at, else
    none."""
    tests = rechecked(run)
    title = f"### {SECOND_LOOK_TITLE[0].upper()}{SECOND_LOOK_TITLE[1:]}"
    if not tests:
        idle = unflagged_ab_line(run)
        return [title, "", cell(idle), ""] if idle else []
    lines = [title, ""]
    for b in tests:
        recheck = b.outcome.recheck
        head = f"- `{cell(labels[b.record.nodeid])}`" + (f": {cell(recheck.text)}" if recheck is not None else "")
        lines.append(head)
        # A failing regression is in the headline already, with its ratio or confirmation: once is enough.
        shown = {v.metric for v in b.outcome.regressions} if b.outcome.gating else set()
        lines += [f"  - {cell(line)}" for line in second_look_lines(b.outcome, leave_out=shown)]
    note = unknown_note(run)
    lines += ["", *(f"{cell(c)}  " for c in second_look_cost(run)), *([cell(note)] if note else []), ""]
    return lines


def _meter_line(run: RunResult) -> str:
    meter = run.meter
    devices = ", ".join(f"{cell(d.device)} {cell(d.name)} ({cell(d.method)})" for d in meter.devices)
    line = f"Meter `{cell(meter.name)}`" + (f": {devices}." if devices else ".")
    if meter.estimated:
        line += " " + ESTIMATE_NOTE
    return line


def _notes(run: RunResult, labels: dict[str, str]) -> list[str]:
    """Each distinct note once, with the tests it concerns (a suite's first run has one note per test)."""
    by_note: dict[str, list[str]] = {}
    for b in run.benchmarks:
        for note in b.outcome.notes if b.outcome else ():
            by_note.setdefault(note.split(" in ", 1)[0] if note.startswith("no baseline") else note, []).append(
                labels[b.record.nodeid])
    lines = []
    for note, tests in by_note.items():
        who = ", ".join(f"`{cell(t)}`" for t in tests[:3]) + (f" and {len(tests) - 3} more" if len(tests) > 3 else "")
        lines.append(f"- {cell(note)}: {who}")
    return lines


def run_markdown(run: RunResult) -> str:
    """The pull-request / job-summary view of a RunResult: verdict first, then the folded details."""
    labels = _labels(run)
    footnotes = Footnotes()
    lines = [*_headline(run, labels), "", *_second_look(run, labels), _meter_line(run), ""]
    for error in run.errors:
        lines.append(f"**Error:** {cell(error)}  ")
    decisive = [(labels[b.record.nodeid], [v for v in b.outcome.verdicts if v.decisive])
                for b in run.benchmarks if b.outcome is not None and b.outcome.verdicts]
    shown = sum(len(vs) for _, vs in decisive)
    total = sum(len(b.outcome.verdicts) for b in run.benchmarks if b.outcome is not None)
    if shown:
        tolerances = sorted({v.tolerance for _, vs in decisive for v in vs})
        legend = (f"Time and energy of each benchmark and every REGRESSION or IMPROVED ({shown} of {total} metric "
                  "verdicts; all of them are in the JSON and HTML reports). A measured metric regresses when it "
                  f"changes by more than its tolerance ({', '.join(f'{t * 100:g} %' for t in tolerances)}) and "
                  "a one-sided Welch test gives p < 0.05.")
        if any(v.by_ab for _, vs in decisive for v in vs):
            legend += " " + AB_LEGEND
        lines += _details(f"Verdicts ({shown})", [legend, "", *comparison_markdown(decisive, footnotes)])
    energy = energy_rows(run.records)
    if energy:
        lines += _details(f"Energy and time per benchmark ({len(energy)})", _table(ENERGY_HEADERS, energy, "lrrrrl"))
    finetune, inference = protocol_rows(run.records)
    if finetune:
        lines += _details(f"Fine-tune to cut-off ({len(finetune)}): training-only time and energy",
                          _table(FINETUNE_HEADERS, finetune, "l" + "r" * (len(FINETUNE_HEADERS) - 2) + "l"))
    if inference:
        lines += _details(f"Inference ({len(inference)}): per example",
                          _table(INFERENCE_HEADERS, inference, "l" + "r" * (len(INFERENCE_HEADERS) - 2) + "l"))
    blocks = hulk_blocks(run, tablefmt="github")
    if blocks:
        body = []
        for title, block in blocks:
            body += [f"#### {cell(title)}", "", html.escape(block, quote=False), ""]
        lines += _details(f"HULK scores ({len(blocks)} tables)", body)
    footprint = footprint_line(run)
    if footprint:
        lines += [cell(footprint[0].upper() + footprint[1:]) + ".", ""]
    notes = _notes(run, labels)
    if notes:
        lines += ["Notes:", "", *notes, ""]
    if footnotes.texts:
        lines += ["Hints:", "", *_footnote_lines(footnotes), ""]
    methods = {(primary_series(r).energy.method if primary_series(r) else None) for r in run.records}
    if any(is_estimate(m) for m in methods) and not run.meter.estimated:
        lines += [ESTIMATE_NOTE, ""]
    return "\n".join(lines).rstrip("\n") + "\n"
