"""A self-contained HTML report: one file, inline CSS, PNGs as data URIs, no scripts, no network.

Built by pure functions from a RunResult (pytest_energy.records): the session's, or a saved JSON report
read back into one (RunResult.from_report). Every piece of text from results is escaped.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..analysis.pareto import pareto_mask
from ..errors import PlotsUnavailable, UsageError
from ..files import write_atomic
from ..protocols.sweeps import complete_axes
from ..records import (SWEEP_BASE_KEY, SWEEP_POINT_KEY, BaselineSamples, BenchmarkResult, FinetuneResult, MeterInfo,
                       RunResult, SweepPoint, Verdict, VerdictKind, is_estimate)
from . import format as fmt
from .plots import AXIS_TITLES, plot_baseline_vs_current, plot_finetune_curves, plot_frontier
from .series import Series, primary_series
from .tables import (AB_LEGEND, SECOND_LOOK_TITLE, VERDICT_HEADINGS, Footnotes, rechecked, second_look_cost,
                     second_look_lines, second_look_mark, unflagged_ab_line, unknown_note, verdict_cells)

_CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em auto;
       max-width: 1200px; color: #222; padding: 0 1em; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.25em; border-bottom: 2px solid #ddd; padding-bottom: 0.2em; margin-top: 1.8em; }
h3 { font-size: 1.05em; margin-top: 1.4em; }
p.note { color: #555; font-size: 0.9em; }
table { border-collapse: collapse; margin: 0.6em 0 1em; font-size: 0.88em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }
th { background: #f1f3f5; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.front td { background: #e8f1fb; }
tr.skipped td { color: #888; font-style: italic; }
.method-estimate { color: #9a6700; font-weight: 600; }
.verdict { font-weight: 700; }
.verdict-pass, .verdict-ok, .verdict-improved { color: #1a7f37; }
.verdict-fail, .verdict-regression, .verdict-regressed { color: #cf222e; }
.verdict-inconclusive, .verdict-new, .verdict-missing { color: #9a6700; }
figure { display: inline-block; margin: 0.5em 1em 1em 0; }
figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-size: 0.85em; color: #555; }
summary { cursor: pointer; color: #0969da; margin: 0.4em 0; }
a.footnote { font-size: 0.8em; vertical-align: super; text-decoration: none; }
ol.footnotes { font-size: 0.85em; color: #555; }
"""

def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _num(x: Any, digits: int = 4) -> str:
    return fmt.number(x, digits)


def _mean_sd(samples: Sequence[float]) -> str:
    """"mean ± sd" of samples (sd of one sample: 0, as pytest-benchmark's stats say)."""
    if not samples:
        return fmt.MISSING
    mean, sd = fmt.mean_sd(samples)
    if _num(mean) == fmt.MISSING:
        return fmt.MISSING
    return f"{_num(mean)} \u00b1 {_num(sd)}" if _num(sd) != fmt.MISSING else _num(mean)


def _method(method: Any) -> str:
    text = _e(method if method else "unknown")
    cls = ' class="method-estimate"' if "estimate" in str(method) else ""
    return f"<span{cls}>{text}</span>"


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], row_classes: Sequence[str] = ()) -> str:
    """Headers are escaped here; cells are pre-rendered HTML (callers escape their text)."""
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = []
    for i, row in enumerate(rows):
        cls = row_classes[i] if i < len(row_classes) and row_classes[i] else ""
        attr = f' class="{cls}"' if cls else ""
        body.append(f"<tr{attr}>" + "".join(row) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _td(text: str, num: bool = False) -> str:
    return f'<td class="num">{text}</td>' if num else f"<td>{text}</td>"


def _img(png: bytes, caption: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return (f'<figure><img src="data:image/png;base64,{data}" alt="{_e(caption)}">'
            f"<figcaption>{_e(caption)}</figcaption></figure>")


def _benchmarks_section(run: RunResult) -> str:
    rows = []
    protocol_only = 0
    for b in run.benchmarks:
        record, series = b.record, primary_series(b.record)
        durations = series.duration.samples if series else []
        title = series.title if series else ""
        if not durations and b.call_duration_s is not None:
            durations, title = [b.call_duration_s], "test call"  # as the JSON report's `stats` (report/json.py)
        if not durations:
            protocol_only += 1  # e.g. inference-only benchmarks: their figures are in the metrics table
            continue
        energies = series.energy.samples if series else []
        mean_t, _ = fmt.mean_sd(durations)
        mean_e, _ = fmt.mean_sd(energies)
        rows.append([
            f'<td title="{_e(record.nodeid)}">{_e(record.name)}</td>',
            _td(_e(record.group or "")),
            _td(_e(title)),
            _td(_num(len(durations)), True),
            _td(_mean_sd(durations), True),
            _td(_mean_sd(energies), True),
            _td(_num(mean_e / mean_t if energies and mean_t > 0 else None), True),
            _td(_method(series.energy.method if series else None)),
        ])
    note = (f'<p class="note">{protocol_only} benchmark(s) ran only protocols (no rounds); their figures are '
            "under Metrics.</p>" if protocol_only else "")
    table = _table(["Test", "Group", "Series", "Samples", "Time (s, mean \u00b1 sd)", "Energy (J, mean \u00b1 sd)",
                    "Power (W)", "Energy method"], rows) if rows else ""
    return "<h2>Benchmarks</h2>" + table + note


def _metrics_section(run: RunResult) -> str:
    """Protocol metrics (inference.*, finetune.*), one row per benchmark and metric."""
    rows = []
    for record in run.records:
        for name, m in record.metrics.items():
            rows.append([_td(_e(record.name)), _td(_e(name)), _td(_num(m.mean if m.samples else None), True),
                         _td(_e(m.unit)), _td(_num(len(m.samples)), True), _td(_e(m.kind)),
                         _td(_method(m.method) if m.method else "")])
    if not rows:
        return ""
    # Collapsed by default (plain HTML, no script): every protocol adds a dozen rows per test.
    return (f"<h2>Metrics</h2><details><summary>{len(rows)} metrics of {len(run.benchmarks)} benchmark(s)</summary>"
            + _table(["test", "metric", "mean", "unit", "samples", "kind", "method"], rows) + "</details>")


# The verdict table's columns (report/tables.verdict_cells, the rows every output shares).
_VERDICT_COLUMNS = ("test", "metric", "baseline", "current", "change", "p", "tolerance", "samples", "verdict")
_TEXT_COLUMNS = ("test", "metric")


def _footnote_mark(notes: Footnotes, text: str) -> str:
    n = notes.number(text)
    return f' <a href="#hint-{n}" class="footnote">[{n}]</a>'


def _footnotes_html(notes: Footnotes) -> str:
    if not notes.texts:
        return ""
    items = "".join(f'<li id="hint-{i}">{_e(t)}</li>' for i, t in enumerate(notes.texts, 1))
    return f'<ol class="footnotes">{items}</ol>'


def _verdict_table(verdicts: Sequence[tuple[str, Verdict]], notes: Footnotes) -> str:
    rows = []
    for test, v in verdicts:
        cells = verdict_cells(test, v)
        row = [_td(_e(cells[c]), c not in _TEXT_COLUMNS) for c in _VERDICT_COLUMNS[:-1]]
        slug = "".join(c for c in str(v.verdict).lower() if c.isalnum())
        mark = _footnote_mark(notes, v.hint) if v.hint and v.verdict != VerdictKind.NO_BASELINE else ""
        row.append(f'<td class="verdict verdict-{slug}">{_e(cells["verdict"] + second_look_mark(v))}{mark}</td>')
        rows.append(row)
    return _table([VERDICT_HEADINGS[c] for c in _VERDICT_COLUMNS], rows)


def _verdicts_section(verdicts: Sequence[tuple[str, Verdict]]) -> str:
    """The decisive verdicts first (Verdict.decisive), every verdict folded below, hints as footnotes."""
    decisive = [(test, v) for test, v in verdicts if v.decisive]
    counts: dict[str, int] = {}
    for _, v in verdicts:
        counts[str(v.verdict)] = counts.get(str(v.verdict), 0) + 1
    tally = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
    notes = Footnotes()
    shown = _verdict_table(decisive, notes)
    every = _verdict_table(verdicts, notes)
    return ("<h2>Baseline verdicts</h2>"
            f'<p class="note">All metrics: {_e(tally)}. Shown: time, energy and every REGRESSION or IMPROVED. '
            "A measured metric regresses when it changes by more than its tolerance and a one-sided Welch test "
            "gives p &lt; 0.05." + (" " + _e(AB_LEGEND) if any(v.by_ab for _, v in verdicts) else "") + "</p>"
            + shown + f"<details><summary>all {len(verdicts)} verdicts</summary>" + every + "</details>"
            + _footnotes_html(notes))


def _pairs_table(v: Verdict, orders: Sequence[str]) -> str:
    """An A/B metric's pairs in measurement order: which side ran first (AB: base first), base, head, head/base."""
    rows = []
    for i, (base, head) in enumerate(v.pairs):
        ratio = head / base if fmt.is_number(base) and fmt.is_number(head) and base else None
        rows.append([_td(str(i + 1), True), _td(_e(orders[i] if i < len(orders) else fmt.MISSING)),
                     _td(_e(fmt.value(base, v.unit)), True), _td(_e(fmt.value(head, v.unit)), True),
                     _td(f"{ratio:.3f}" if ratio is not None else fmt.MISSING, True)])
    return _table(["pair", "order", "base", "head", "ratio head/base"], rows)


def _reruns_table(v: Verdict) -> str:
    """A confirmed or unconfirmed metric's runs in this job: the run that raised the suspicion, then each re-run,
    judged against the same expected value (a re-run that lost the metric shows as missing)."""
    runs = [("first", v.current_value, v.change_pct, v.p_value)]
    runs += [(f"re-run {i + 1}", r.current_value, r.change_pct, r.p_value) for i, r in enumerate(v.reruns)]
    rows = [[_td(_e(name)), _td(_e(fmt.value(x, v.unit)), True), _td(_e(fmt.change(c)), True),
             _td(_e(fmt.p_value(p)), True)] for name, x, c, p in runs]
    return _table(["run", "value", "change", "p (one-sided)"], rows)


def _second_look_section(run: RunResult) -> str:
    """Each test a second look re-measured in this job: confirmed or not, with a table of each metric's re-runs,
    the A/B's decision per metric with its ratio and interval and a table of its pairs, no base to compare; and
    what it cost. An armed A/B that had nothing to look at says so in one line."""
    tests = rechecked(run)
    title = f"<h2>{_e(SECOND_LOOK_TITLE[0].upper() + SECOND_LOOK_TITLE[1:])}</h2>"
    if not tests:
        idle = unflagged_ab_line(run)
        return f'{title}<p class="note">{_e(idle)}</p>' if idle else ""
    parts = [title,
             '<p class="note">A test the history screen suspected is measured again in this job: re-runs of it '
             "(confirmation), or the base revision and this one alternately in fresh processes (A/B; order AB: the "
             "base ran first, BA: this revision did), so that drift common to both cancels in their ratio.</p>"]
    for b in tests:
        recheck = b.outcome.recheck
        head = f"{b.record.name}: {recheck.text}" if recheck is not None else b.record.name
        items = "".join(f"<li>{_e(line)}</li>" for line in second_look_lines(b.outcome))
        parts.append(f"<h3>{_e(head)}</h3>" + (f"<ul>{items}</ul>" if items else ""))
        orders = recheck.orders if recheck is not None else ()
        for v in b.outcome.verdicts:
            # The pairs of what the A/B decided on and of what it found different; the rest are folded.
            shown = " open" if v.verdict == VerdictKind.REGRESSION else ""
            if v.by_ab and v.pairs:
                title = f"{v.metric}: {fmt.ab_line(v)} ({len(v.pairs)} pairs)"
                parts.append(f"<details{shown}><summary>{_e(title)}</summary>{_pairs_table(v, orders)}</details>")
            elif v.reruns:
                title = f"{v.metric}: {v.confirmation}: {v.verdict}"
                parts.append(f"<details{shown}><summary>{_e(title)}</summary>{_reruns_table(v)}</details>")
    note = unknown_note(run)
    lines = second_look_cost(run) + ([note] if note else [])
    parts += [f'<p class="note">{_e(line)}</p>' for line in lines]
    return "".join(parts)


def _baseline_of(run: RunResult, b: BenchmarkResult, series: Series) -> BaselineSamples | None:
    """The samples of the baseline a benchmark was compared with, for its primary series: the session's entry,
    or what its JSON report kept (RunResult.from_report)."""
    entry = run.baselines.get(b.record.nodeid)
    if entry is None:
        return b.baseline
    duration, energy = (entry.metrics.get(m.name) for m in (series.duration, series.energy))
    return BaselineSamples(entry.datetime, duration.samples if duration is not None else None,
                           energy.samples if energy is not None else None)


def _history_chart(entry: Any, metric: str) -> bytes | None:
    """The stored run history of the baseline this benchmark was compared with (in-process runs only: a report
    read back from JSON keeps no history), drawn by the trend page's code (report/trends.py)."""
    if entry is None or not getattr(entry, "history", None):
        return None
    from .trends import history_chart_png

    return history_chart_png(entry, metric)


def _baseline_section(run: RunResult) -> str:
    """Per benchmark with a compared baseline: time and energy, baseline beside current, every sample shown."""
    figures = []
    for b in run.benchmarks:
        series = primary_series(b.record)
        base = _baseline_of(run, b, series) if series is not None else None
        if series is None or base is None:
            continue
        pairs = {}
        if base.duration_s is not None:
            pairs["time"] = (base.duration_s, series.duration.samples)
        if base.energy_j is not None:
            pairs["energy"] = (base.energy_j, series.energy.samples)
        name = b.record.name
        recorded = (base.datetime or "?")[:19].replace("T", " ")  # to the second
        caption = f"{name} ({series.title}): baseline of {recorded}"
        try:
            png = plot_baseline_vs_current(pairs, units={"time": "s", "energy": "J"}, title=name,
                                           method=series.energy.method)
        except UsageError:
            continue  # no quantity with samples on both sides
        except PlotsUnavailable as exc:
            return f'<h2>Baseline vs current</h2><p class="note">{_e(exc)}</p>'
        figures.append(_img(png, caption))
        history = _history_chart(run.baselines.get(b.record.nodeid), series.energy.name)
        if history is not None:
            figures.append(_img(history, f"{name}: stored history of {series.energy.name} and the band of the next run "
                                         "(this test's own history, unpooled)"))
    if not figures:
        return ""
    return ("<h2>Baseline vs current</h2><p class=\"note\">Time and energy of each benchmark's main series "
            "(its rounds, or its protocol's run): every sample a dot, the mean with \u00b1 1 sd.</p>"
            f"<details open><summary>{len(figures)} chart(s)</summary>{''.join(figures)}</details>")


def _sweeps_section(points: Sequence[SweepPoint], plots: bool) -> str:
    axes: dict[str, list[SweepPoint]] = {}
    for p in points:
        axes.setdefault(str(p.axis), []).append(p)
    parts = ["<h2>Sweeps: energy-accuracy trade-offs</h2>",
             '<p class="note">Highlighted rows are on the energy-accuracy Pareto frontier of their axis '
             "(no other point is both cheaper per example and at least as accurate).</p>"]
    for axis, members in axes.items():
        measured = [p for p in members if not p.skipped_reason and fmt.is_number(p.j_per_example)
                    and fmt.is_number(p.accuracy)]
        on_front = dict(zip(map(id, measured),
                            pareto_mask(measured, ("j_per_example",), ("accuracy",)) if measured else []))
        rows, classes = [], []
        for p in members:
            mem, tokens, n = p.peak_memory_bytes, p.tokens, p.n_examples
            rows.append([
                _td(_e(p.value)),
                _td(_num(p.accuracy), True),
                _td(_num(p.j_per_example), True),
                _td(_num(p.j_per_correct), True),
                _td(_num(p.ms_per_example), True),
                _td(_num(mem / 2**20 if fmt.is_number(mem) else None), True),
                _td(_num(n), True),
                _td(_num(tokens / n if isinstance(tokens, int) and isinstance(n, int) and n else None), True),
                _td(_method(p.method)),
                _td("yes" if on_front.get(id(p)) else ""),
                _td(_e(p.skipped_reason or "")),
            ])
            classes.append("skipped" if p.skipped_reason else ("front" if on_front.get(id(p)) else ""))
        parts.append(f"<h3>{_e(AXIS_TITLES.get(axis, axis))}</h3>")
        parts.append(_table(["value", "accuracy", "J/example", "J/correct", "ms/example", "peak memory (MiB)",
                             "examples", "tokens/example", "energy method", "frontier", "skipped because"],
                            rows, classes))
        if plots and measured:
            try:
                parts.append(_img(plot_frontier(measured, axis=axis), f"Energy-accuracy frontier: {axis}"))
            except PlotsUnavailable as exc:
                parts.append(f'<p class="note">{_e(exc)}</p>')
                plots = False
    return "".join(parts)


def _finetune_section(run: RunResult, plots: bool) -> str:
    parts = []
    for record in run.records:
        for proto in record.protocols:
            if not isinstance(proto, FinetuneResult) or not proto.curve:
                continue
            name = record.name
            parts.append(f"<h3>{_e(name)}</h3>")
            fields = proto.to_dict()
            summary = {k: v for k, v in fields.items() if not isinstance(v, (list, dict))}
            parts.append(_table(["field", "value"], [
                [_td(_e(k)), _td(_num(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else _e(v))]
                for k, v in summary.items()]))
            if plots:
                try:
                    png = plot_finetune_curves(fields["curve"], cutoff=proto.cutoff, method=proto.method,
                                               higher_is_better=proto.higher_is_better,
                                               title=f"Fine-tuning curve: {name}")
                    parts.append(_img(png, f"Fine-tuning curve: {name}"))
                except PlotsUnavailable as exc:
                    parts.append(f'<p class="note">{_e(exc)}</p>')
                    plots = False
    return "<h2>Fine-tuning curves</h2>" + "".join(parts) if parts else ""


def _kv_section(title: str, info: Mapping[str, Any]) -> str:
    rows = [[_td(_e(k)), _td(_e(v))] for k, v in info.items() if not isinstance(v, (dict, list))]
    return f"<h2>{_e(title)}</h2>" + _table(["field", "value"], rows) if rows else ""


def sweep_points_of(run: RunResult) -> list[SweepPoint]:
    """Sweep points that benchmarks stored in `extra_info["sweep_point"]` (see pytest_energy.protocols.sweeps),
    with the base configuration shown on every axis it belongs to."""
    out, base = [], None
    for record in run.records:
        point = record.extra_info.get(SWEEP_POINT_KEY)
        if isinstance(point, Mapping):
            out.append(SweepPoint.from_dict(point))
            base = record.extra_info.get(SWEEP_BASE_KEY, base)
    return complete_axes(out, base) if isinstance(base, Mapping) else out


def sweep_points_from_report(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    """sweep_points_of a JSON report's run, as dicts."""
    return [p.to_dict() for p in sweep_points_of(_run_of(report))]


def _run_of(report: RunResult | Mapping[str, Any] | None) -> RunResult:
    """A RunResult; a JSON report (a file read back, or what report.outputs hands over) is read into one first."""
    if isinstance(report, RunResult):
        return report
    if report is None:
        return RunResult(MeterInfo("none", ()), None, [])
    try:
        return RunResult.from_report({"energy": {}, **report})
    except ValueError as exc:
        raise UsageError(f"HTML report: {exc}") from None


def _verdicts_of(run: RunResult) -> list[tuple[str, Verdict]]:
    return [(b.record.name, v) for b in run.benchmarks if b.outcome is not None for v in b.outcome.verdicts]


def render_html_report(run: RunResult | Mapping[str, Any] | None = None, *,
                       sweep_points: Sequence[SweepPoint | Mapping[str, Any]] | None = None,
                       images: Mapping[str, bytes] | None = None, about: Mapping[str, Any] | None = None,
                       title: str = "pytest-energy report", plots: bool = True,
                       sections: Sequence[tuple[str, str]] = ()) -> str:
    """The whole report as one HTML string.

    - `run`: the RunResult; a --energy-json report (dict) is read into one first (RunResult.from_report).
      Its benchmarks, metrics, verdicts (the rows of report/tables, hints as footnotes), fine-tuning curves
      (protocols with a `curve`), baseline-vs-current charts and its session, machine and commit facts.
    - `sweep_points`: SweepPoints (or their dicts); by default those the benchmarks stored in
      `extra_info["sweep_point"]`.
    - `images`: extra PNGs, {caption: bytes}.
    - `about`: facts about the run shown first (model, task, examples per point, ...).
    - `plots=False` leaves figures out (they are also left out, with a note, without matplotlib).
    - `sections`: (heading, HTML) pairs appended after the tables, e.g. HULK score tables; the HTML must
      already be escaped (tabulate's "html" format escapes cell text).
    """
    run = _run_of(run)
    points = sweep_points_of(run) if sweep_points is None else [
        p if isinstance(p, SweepPoint) else SweepPoint.from_dict(p) for p in sweep_points]
    verdicts = _verdicts_of(run)
    body = [f"<h1>{_e(title)}</h1>"]
    if run.datetime:
        body.append(f'<p class="note">Generated {_e(run.datetime)}</p>')
    methods = {str(s.energy.method) for s in map(primary_series, run.records) if s} | {str(p.method) for p in points}
    if any(is_estimate(m) for m in methods):
        body.append('<p class="note"><span class="method-estimate">estimate</span>: energy modelled as process '
                    "CPU time \u00d7 watts per core because no energy counter was readable; not a measurement.</p>")
    if about:
        body.append(_kv_section("About this run", about))
    if verdicts:
        body.append(_verdicts_section(verdicts))
        body.append(_second_look_section(run))
    if run.benchmarks:
        body.append(_benchmarks_section(run))
        body.append(_metrics_section(run))
    if points:
        body.append(_sweeps_section(points, plots))
    if run.benchmarks:
        body.append(_finetune_section(run, plots))
        if plots:
            body.append(_baseline_section(run))
    for heading, section_html in sections:
        body.append(f"<h2>{_e(heading)}</h2>{section_html}")
    if images:
        body.append("<h2>Figures</h2>" + "".join(_img(png, cap) for cap, png in images.items()))
    for info, heading in ((run.session_info, "Energy session"), (run.machine_info, "Machine"),
                          (run.commit_info, "Commit")):
        if info:
            body.append(_kv_section(heading, info))
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{_e(title)}</title><style>{_CSS}</style></head>"
            f"<body>{''.join(body)}</body></html>\n")


def write_html_report(path: str | Path, run: RunResult | Mapping[str, Any] | None = None, **kwargs: Any) -> Path:
    """Render with `render_html_report(run, **kwargs)` and write UTF-8 to `path`; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_atomic(path, render_html_report(run, **kwargs), what="HTML report")
