"""End-of-session output: terminal lines, JSON, markdown, HTML and saved baselines. No pytest import.

The plugin hands over the pytest config only to read paths from it; everything else is the session.
"""

from __future__ import annotations

import math
import os
from typing import Any

from .report.summary import energy_table, is_decisive, mean_sd, primary_series
from .errors import UsageError
from .results import TestRecord
from .session import EnergySession


def _fmt(value: Any, unit: str = "", digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "N/A"
    if isinstance(value, float):
        return f"{value:.{digits}g}{(' ' + unit) if unit else ''}"
    return f"{value}{(' ' + unit) if unit else ''}"


def footprint_of(session: EnergySession, record: TestRecord) -> dict[str, Any] | None:
    """kWh, CO2e and cost of one benchmark's mean round (gross energy, as measured)."""
    series = primary_series(record)
    if series is None or session.options.carbon is None:
        return None
    from .carbon import footprint

    energy_j, _ = mean_sd(series.energy.samples)
    duration_s, _ = mean_sd(series.duration.samples)
    tokens = record.metrics.get("finetune.tokens") or record.metrics.get("inference.tokens")
    tokens_n = int(tokens.samples[-1]) if tokens and tokens.samples else None
    out = footprint(energy_j, duration_s, session.options.carbon, tokens=tokens_n)
    out["of"] = f"mean {series.title} ({series.energy.method})"
    return out


def protocol_lines(session: EnergySession) -> list[str]:
    from tabulate import tabulate

    finetune_rows, inference_rows = [], []
    for record in session.records:
        for p in record.protocols:
            if p.get("protocol") == "finetune":
                reached = p.get("reached")
                finetune_rows.append([
                    record.name, f"{p.get('cutoff')}", "yes" if reached else "N/A (not reached)",
                    p.get("steps"), _fmt(p.get("score")), _fmt(p.get("duration_s"), "s"),
                    _fmt(p.get("energy_j"), "J"), _fmt(p.get("eval_duration_s"), "s"),
                    _fmt(100 * p["eval_share"] if p.get("eval_share") is not None else None, "%", 3),
                    p.get("tokens") if p.get("tokens") is not None else "N/A",
                    f"{p['flops']:.3g}" if p.get("flops") is not None else "N/A", p.get("method")])
            elif p.get("protocol") == "inference":
                inference_rows.append([
                    record.name, p.get("examples"), p.get("batch_size"), _fmt(p.get("j_per_example"), "J"),
                    _fmt(p.get("ms_per_example_mean"), "ms"), _fmt(p.get("ms_per_example_p50"), "ms"),
                    _fmt(p.get("ms_per_example_p99"), "ms"), _fmt(p.get("examples_per_s"), "/s"),
                    _fmt(p.get("accuracy")), _fmt(p.get("j_per_correct"), "J"), p.get("method")])
    lines: list[str] = []
    if finetune_rows:
        lines += ["", "fine-tune to cut-off (time and energy are training only; evaluation beside them)"]
        lines += tabulate(finetune_rows, headers=[
            "test", "cut-off", "reached", "steps", "score", "train time", "train energy", "eval time",
            "eval share", "tokens", "FLOPs", "method"], disable_numparse=True).splitlines()
    if inference_rows:
        lines += ["", "inference (per example)"]
        lines += tabulate(inference_rows, headers=[
            "test", "examples", "batch", "energy/ex", "latency mean", "p50", "p99", "throughput",
            "accuracy", "energy/correct", "method"], disable_numparse=True).splitlines()
    return lines


def comparison_lines(session: EnergySession) -> list[str]:
    """Verdicts worth reading in a terminal: every non-PASS verdict and each test's energy; the rest
    (often a dozen PASS lines per test) is counted here and listed in full in JSON, markdown and HTML."""
    from tabulate import tabulate

    rows, notes, counts, hints = [], [], {}, []
    for record in session.records:
        outcome = session.outcomes.get(record.nodeid)
        if outcome is None:
            continue
        for v in outcome.verdicts:
            counts[v["verdict"]] = counts.get(v["verdict"], 0) + 1
            # A dozen metrics per protocol move together; the terminal shows what decides (REGRESSION,
            # IMPROVED) and each test's time and energy. JSON, markdown and HTML list every verdict.
            if not is_decisive(v):
                continue
            p_value = v.get("p_value")
            verdict = v["verdict"]
            if v.get("hint") and verdict == "INCONCLUSIVE":
                if v["hint"] not in hints:
                    hints.append(v["hint"])
                verdict += f" [{hints.index(v['hint']) + 1}]"
            rows.append([record.name, v["metric"], _fmt(v.get("baseline_value"), v.get("unit", "")),
                         _fmt(v.get("current_value"), v.get("unit", "")),
                         "N/A" if v.get("change_pct") is None else f"{v['change_pct']:+.3g} %",
                         _fmt(p_value, "", 2) if p_value is not None else "-", verdict])
        notes += [(record.name, n) for n in outcome.notes]
    lines: list[str] = []
    if rows:
        tally = ", ".join(f"{n} {name}" for name, n in sorted(counts.items()))
        lines += ["", f"comparison with baselines in {session.display_path(session.baseline_dir)}/ "
                      f"(all metrics: {tally}; shown: time, energy and every REGRESSION/IMPROVED)"]
        lines += tabulate(rows, headers=["test", "metric", "baseline", "current", "change", "p", "verdict"],
                          disable_numparse=True).splitlines()
        lines += [f"[{i}] {h}" for i, h in enumerate(hints, 1)]
    # One line instead of one per benchmark when many share a note: a suite's first run has no
    # baselines at all, and a run on another machine class mismatches for every test.
    missing = [name for name, n in notes if n.startswith("no baseline")]
    if len(missing) > 3:
        notes = [(name, n) for name, n in notes if not n.startswith("no baseline")]
        notes.append((f"{len(missing)} benchmarks",
                      f"no baseline in {session.display_path(session.baseline_dir)}/ "
                      "(create them with --energy-save-baseline)"))
    per_note: dict[str, int] = {}
    for _, n in notes:
        per_note[n] = per_note.get(n, 0) + 1
    notes = [(name, n) for name, n in notes if per_note[n] <= 3]
    notes += [(f"{c} benchmarks", n) for n, c in per_note.items() if c > 3]
    if notes:
        lines += [""] + [f"{name}: {n}" for name, n in notes]
    return lines


# Which cost HULK normalises, per protocol: (time metric, energy metric). Fine-tuning costs are
# training-only time/energy to the cut-off; inference costs are per example (HULK's Table 4).
_HULK_COSTS = {"finetune": ("finetune.duration_s", "finetune.energy_j"),
               "inference": ("inference.ms_per_example", "inference.j_per_example")}


def _hulk_cost(record, metric: str) -> float | None:
    m = record.metrics.get(metric)
    return mean_sd(m.samples)[0] if m is not None and m.samples else None  # None: cut-off not reached


def hulk_tables(session: EnergySession, tablefmt: str = "simple") -> str:
    """HULK Table 3/4 as text: per task, reference cost / model cost, summed over tasks. "" when no test
    names a reference."""
    return "\n\n".join(f"{title}\n{table}" for title, table in hulk_blocks(session, tablefmt))


def hulk_blocks(session: EnergySession, tablefmt: str = "simple") -> list[tuple[str, str]]:
    """(title, table) per protocol and cost. Models are `extra_info["model"]` (else the test name), tasks
    the marker's `group`."""
    from .hulk import format_hulk_table

    by_id = {r.nodeid: r for r in session.records}
    blocks = []
    for protocol, (time_metric, energy_metric) in _HULK_COSTS.items():
        pairs = []
        for record in session.records:
            ref_id = session.settings_by_test.get(record.nodeid, {}).get("reference")
            if ref_id and any(p.get("protocol") == protocol for p in record.protocols):
                pairs.append((record, by_id.get(ref_id), ref_id))
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
                           "(N/A: cut-off not reached)", table))
    return blocks


def terminal_lines(session: EnergySession) -> list[str]:
    lines = session.header().splitlines()
    table = energy_table(session.records)
    if table:
        lines += [""] + table.splitlines()
    else:
        lines.append("no energy benchmark produced results")
    lines += protocol_lines(session)
    lines += comparison_lines(session)
    hulk = hulk_tables(session)
    if hulk:
        lines += [""] + hulk.splitlines()
    feet = [f for f in (footprint_of(session, r) for r in session.records) if f]
    if feet:
        kwh = sum(f["energy_kwh"] for f in feet)
        co2 = sum(f["co2e_kg"] for f in feet)
        c = session.options.carbon
        lines += ["", f"footprint of one round of each benchmark: {kwh:.3g} kWh, {co2 * 1000:.3g} g CO2e "
                      f"(grid {c.grid_gco2e_per_kwh:.4g} gCO2e/kWh, PUE {c.pue:g}; from gross energy)"]
    lines += [f"wrote {p}" for p in session.written]
    return lines


def session_markdown(session: EnergySession) -> str:
    """The pull-request / job-summary view: what ran, how it was metered, and the verdicts."""
    from .report_markdown import comparison_markdown

    meter = session.meter
    lines = ["## pytest-energy", "",
             f"Meter `{meter.name}`: " + ", ".join(f"{d.device} {d.name} ({d.method})" for d in meter.devices()), ""]
    table = energy_table(session.records, tablefmt="github")
    if table:
        lines += [table, ""]
    results = {nodeid: o.verdicts for nodeid, o in session.outcomes.items()}
    methods = {r.nodeid: (primary_series(r).energy.method if primary_series(r) else "unknown") or "unknown"
               for r in session.records}
    decisive = {nodeid: [v for v in vs if is_decisive(v)] for nodeid, vs in results.items()}
    lines.append(comparison_markdown(decisive, methods))
    if sum(map(len, results.values())) > sum(map(len, decisive.values())):
        lines += ["<details><summary>every metric's verdict</summary>", "",
                  comparison_markdown(results, methods), "</details>", ""]
    for title, table in hulk_blocks(session, tablefmt="github"):
        lines += [f"#### {title}", "", table, ""]
    notes = [f"- `{nodeid}`: {note}" for nodeid, o in session.outcomes.items() for note in o.notes]
    if notes:
        lines += ["", *notes, ""]
    return "\n".join(lines)


def finish_session(session: EnergySession, config: Any) -> None:
    """Write every requested artefact. Raises EnergyError (e.g. a baseline that cannot be saved)."""
    from .machine import commit_info, machine_info, now_iso

    opts = session.options
    if not session.records:
        return
    commit = commit_info(opts.rootdir)
    when = now_iso()
    if opts.save_baseline:
        session.written += session.save_baselines(commit, when)
    entries = {r.nodeid: {"options": {**session.settings_by_test.get(r.nodeid, {}), "meter": session.meter.name},
                          "verdicts": session.outcomes[r.nodeid].verdicts if r.nodeid in session.outcomes else None,
                          "footprint": footprint_of(session, r)}
               for r in session.records}
    if opts.json_path or opts.html_path:
        from .report.json_report import build_report, write_json_atomic

        data = build_report(session.records, machine_info=machine_info(session.meter), commit_info=commit,
                            datetime_iso=when, session=session.session_info(), entries=entries)
        if opts.json_path:
            write_json_atomic(opts.json_path, data)
            session.written.append(opts.json_path)
        if opts.html_path:
            from .report.html import write_html_report

            write_html_report(opts.html_path, data, about={"meter": session.header().replace("\n", " ")},
                              sections=hulk_blocks(session, tablefmt="html"))
            session.written.append(opts.html_path)
    # $GITHUB_STEP_SUMMARY is shared by every step of the job: append to it, never truncate it.
    markdown_targets = [(opts.markdown_path, "w"), (os.environ.get("GITHUB_STEP_SUMMARY"), "a")]
    if any(path for path, _ in markdown_targets):
        text = session_markdown(session)
        for path, mode in markdown_targets:
            if path:
                with open(path, mode, encoding="utf-8") as f:
                    f.write(text)
                session.written.append(path)
