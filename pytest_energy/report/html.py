"""A self-contained HTML report: one file, inline CSS, PNGs as data URIs, no scripts, no network.

Built by pure functions from plain dicts, so it can be produced from a saved JSON report as well as
at the end of a session. Every piece of text from results is escaped.
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
from ..gate.compare import is_decisive
from ..protocols.sweeps import SWEEP_BASE_KEY, SWEEP_POINT_KEY, SweepPoint, complete_axes
from . import format as fmt
from .plots import AXIS_TITLES, plot_baseline_vs_current, plot_finetune_curves, plot_frontier
from .tables import Footnotes

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


def _mean_sd(stats: Any) -> str:
    """"mean ± sd" from a pytest-benchmark stats dict."""
    if not isinstance(stats, Mapping):
        return fmt.MISSING
    mean, sd = stats.get("mean"), stats.get("stddev")
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


def _energy_block(bench: Mapping[str, Any]) -> Mapping[str, Any]:
    energy = bench.get("energy")
    return energy if isinstance(energy, Mapping) else {}


def _bench_field(bench: Mapping[str, Any], key: str) -> Any:
    """A field of the benchmark's energy block (stats, metrics, protocols, comparison, ...)."""
    return _energy_block(bench).get(key)


def _benchmarks_section(benchmarks: Sequence[Mapping[str, Any]]) -> str:
    rows = []
    protocol_only = 0
    for b in benchmarks:
        stats = b.get("stats") or {}
        block = _energy_block(b)
        if not stats and not block.get("stats"):
            protocol_only += 1  # e.g. inference-only benchmarks: their figures are in the metrics table
            continue
        energy, method = block.get("stats"), block.get("method")
        rows.append([
            f'<td title="{_e(b.get("fullname", ""))}">{_e(b.get("name", b.get("fullname", "?")))}</td>',
            _td(_e(b.get("group") or ""), False),
            _td(_e(block.get("series") or "")),
            _td(_num(stats.get("rounds")), True),
            _td(_mean_sd(stats), True),
            _td(_mean_sd(energy), True),
            _td(_num(block.get("power_w")), True),
            _td(_method(method)),
        ])
    note = (f'<p class="note">{protocol_only} benchmark(s) ran only protocols (no rounds); their figures are '
            "under Metrics.</p>" if protocol_only else "")
    table = _table(["Test", "Group", "Series", "Samples", "Time (s, mean \u00b1 sd)", "Energy (J, mean \u00b1 sd)",
                    "Power (W)", "Energy method"], rows) if rows else ""
    return "<h2>Benchmarks</h2>" + table + note


def _metrics_section(benchmarks: Sequence[Mapping[str, Any]]) -> str:
    """Protocol metrics (inference.*, finetune.*), one row per benchmark and metric."""
    rows = []
    for b in benchmarks:
        metrics = _bench_field(b, "metrics") or {}
        for name, m in metrics.items():
            if not isinstance(m, Mapping):
                continue
            samples = [s for s in m.get("samples", []) if isinstance(s, (int, float))]
            mean = sum(samples) / len(samples) if samples else None
            rows.append([_td(_e(b.get("name", "?"))), _td(_e(name)), _td(_num(mean), True),
                         _td(_e(m.get("unit", ""))), _td(_num(len(samples)), True),
                         _td(_e(m.get("kind", ""))), _td(_method(m.get("method")) if m.get("method") else "")])
    if not rows:
        return ""
    # Collapsed by default (plain HTML, no script): every protocol adds a dozen rows per test.
    return (f"<h2>Metrics</h2><details><summary>{len(rows)} metrics of {len(benchmarks)} benchmark(s)</summary>"
            + _table(["test", "metric", "mean", "unit", "samples", "kind", "method"], rows) + "</details>")


# (heading, key of the verdict dict): the verdict table speaks to people, the JSON keeps the field names.
_VERDICT_COLUMNS = (("Test", "test"), ("Metric", "metric"), ("Baseline", "baseline_value"),
                    ("Current", "current_value"), ("Change", "change_pct"), ("p", "p_value"),
                    ("Tolerance", "tolerance"), ("Samples (baseline/current)", "n"), ("Verdict", "verdict"))


def _footnote_mark(notes: Footnotes, text: str) -> str:
    n = notes.number(text)
    return f' <a href="#hint-{n}" class="footnote">[{n}]</a>'


def _footnotes_html(notes: Footnotes) -> str:
    if not notes.texts:
        return ""
    items = "".join(f'<li id="hint-{i}">{_e(t)}</li>' for i, t in enumerate(notes.texts, 1))
    return f'<ol class="footnotes">{items}</ol>'


def _verdict_cell(v: Mapping[str, Any], key: str, notes: Footnotes) -> str:
    value, unit = v.get(key), str(v.get("unit") or "")
    if key == "verdict":
        slug = "".join(c for c in str(value).lower() if c.isalnum())
        hint = v.get("hint")
        mark = _footnote_mark(notes, str(hint)) if hint and value != "NO_BASELINE" else ""
        return f'<td class="verdict verdict-{slug}">{_e(value if value is not None else fmt.MISSING)}{mark}</td>'
    if key in ("baseline_value", "current_value"):
        return _td(_e(fmt.value(value, unit)), True)
    if key == "change_pct":
        return _td(_e(fmt.change(value)), True)
    if key == "p_value":
        return _td("-" if value is None else _e(fmt.p_value(value)), True)
    if key == "tolerance":
        return _td(_e(fmt.percent(value)), True)
    if key == "n":
        nb, nc = v.get("n_baseline"), v.get("n_current")
        return _td(f"{_num(nb)}/{_num(nc)}" if nb is not None or nc is not None else fmt.MISSING, True)
    return _td(fmt.MISSING if value is None else _e(value))


def _verdict_table(verdicts: Sequence[Mapping[str, Any]], notes: Footnotes) -> str:
    rows = [[_verdict_cell(v, key, notes) for _, key in _VERDICT_COLUMNS] for v in verdicts]
    return _table([heading for heading, _ in _VERDICT_COLUMNS], rows)


def _verdicts_section(verdicts: Sequence[Mapping[str, Any]]) -> str:
    """The decisive verdicts first (Verdict.decisive), every verdict folded below, hints as footnotes."""
    decisive = [v for v in verdicts if is_decisive(str(v.get("verdict")), str(v.get("metric", "")))]
    counts: dict[str, int] = {}
    for v in verdicts:
        counts[str(v.get("verdict"))] = counts.get(str(v.get("verdict")), 0) + 1
    tally = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
    notes = Footnotes()
    shown = _verdict_table(decisive, notes)
    every = _verdict_table(verdicts, notes)
    return ("<h2>Baseline verdicts</h2>"
            f'<p class="note">All metrics: {_e(tally)}. Shown: time, energy and every REGRESSION or IMPROVED. '
            "A measured metric regresses when it changes by more than its tolerance and a one-sided Welch test "
            "gives p &lt; 0.05.</p>"
            + shown + f"<details><summary>all {len(verdicts)} verdicts</summary>" + every + "</details>"
            + _footnotes_html(notes))


def _baseline_section(benchmarks: Sequence[Mapping[str, Any]], plots: bool) -> str:
    """Per benchmark with a compared baseline: time and energy, baseline beside current, every sample shown."""
    figures = []
    for b in benchmarks:
        block = _energy_block(b)
        base = block.get("baseline")
        if not isinstance(base, Mapping):
            continue
        stats = b.get("stats") if isinstance(b.get("stats"), Mapping) else {}
        pairs = {}
        if isinstance(base.get("duration_s"), Mapping):
            pairs["time"] = (base["duration_s"].get("samples") or [], stats.get("data") or [])
        if isinstance(base.get("energy_j"), Mapping):
            pairs["energy"] = (base["energy_j"].get("samples") or [], block.get("data") or [])
        name = str(b.get("name", "?"))
        recorded = str(base.get("datetime") or "?")[:19].replace("T", " ")  # to the second
        caption = f"{name} ({block.get('series') or 'rounds'}): baseline of {recorded}"
        try:
            png = plot_baseline_vs_current(pairs, units={"time": "s", "energy": "J"}, title=name,
                                           method=block.get("method"))
        except UsageError:
            continue  # no quantity with samples on both sides
        except PlotsUnavailable as exc:
            return f'<h2>Baseline vs current</h2><p class="note">{_e(exc)}</p>'
        figures.append(_img(png, caption))
    if not figures:
        return ""
    return ("<h2>Baseline vs current</h2><p class=\"note\">Time and energy of each benchmark's main series "
            "(its rounds, or its protocol's run): every sample a dot, the mean with \u00b1 1 sd.</p>"
            f"<details open><summary>{len(figures)} chart(s)</summary>{''.join(figures)}</details>")


def _is_measured(p: Mapping[str, Any]) -> bool:
    return (not p.get("skipped_reason") and _num(p.get("j_per_example")) != fmt.MISSING
            and _num(p.get("accuracy")) != fmt.MISSING)


def _sweeps_section(points: Sequence[Mapping[str, Any]], plots: bool) -> str:
    axes: dict[str, list[Mapping[str, Any]]] = {}
    for p in points:
        axes.setdefault(str(p.get("axis", "?")), []).append(p)
    parts = ["<h2>Sweeps: energy-accuracy trade-offs</h2>",
             '<p class="note">Highlighted rows are on the energy-accuracy Pareto frontier of their axis '
             "(no other point is both cheaper per example and at least as accurate).</p>"]
    for axis, members in axes.items():
        measured = [p for p in members if _is_measured(p)]
        on_front = dict(zip(map(id, measured),
                            pareto_mask(measured, ("j_per_example",), ("accuracy",)) if measured else []))
        rows, classes = [], []
        for p in members:
            mem, tokens, n = p.get("peak_memory_bytes"), p.get("tokens"), p.get("n_examples")
            rows.append([
                _td(_e(p.get("value"))),
                _td(_num(p.get("accuracy")), True),
                _td(_num(p.get("j_per_example")), True),
                _td(_num(p.get("j_per_correct")), True),
                _td(_num(p.get("ms_per_example")), True),
                _td(_num(mem / 2**20 if isinstance(mem, (int, float)) else None), True),
                _td(_num(p.get("n_examples")), True),
                _td(_num(tokens / n if isinstance(tokens, int) and isinstance(n, int) and n else None), True),
                _td(_method(p.get("method"))),
                _td("yes" if on_front.get(id(p)) else ""),
                _td(_e(p.get("skipped_reason") or "")),
            ])
            classes.append("skipped" if p.get("skipped_reason") else ("front" if on_front.get(id(p)) else ""))
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


def _finetune_section(benchmarks: Sequence[Mapping[str, Any]], plots: bool) -> str:
    parts = []
    for b in benchmarks:
        for proto in _bench_field(b, "protocols") or []:
            curve = proto.get("curve") if isinstance(proto, Mapping) else None
            if not curve:
                continue
            name = str(b.get("name", "?"))
            parts.append(f"<h3>{_e(name)}</h3>")
            summary = {k: v for k, v in proto.items() if not isinstance(v, (list, dict))}
            parts.append(_table(["field", "value"], [
                [_td(_e(k)), _td(_num(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else _e(v))]
                for k, v in summary.items()]))
            if plots:
                try:
                    png = plot_finetune_curves(curve, cutoff=proto.get("cutoff"), method=proto.get("method"),
                                               higher_is_better=proto.get("higher_is_better", True),
                                               title=f"Fine-tuning curve: {name}")
                    parts.append(_img(png, f"Fine-tuning curve: {name}"))
                except PlotsUnavailable as exc:
                    parts.append(f'<p class="note">{_e(exc)}</p>')
                    plots = False
    return "<h2>Fine-tuning curves</h2>" + "".join(parts) if parts else ""


def _kv_section(title: str, info: Mapping[str, Any]) -> str:
    rows = [[_td(_e(k)), _td(_e(v))] for k, v in info.items() if not isinstance(v, (dict, list))]
    return f"<h2>{_e(title)}</h2>" + _table(["field", "value"], rows) if rows else ""


def sweep_points_from_report(report: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Sweep points that benchmarks stored in `extra_info["sweep_point"]` (see pytest_energy.protocols.sweeps)."""
    out, base = [], None
    for b in report.get("benchmarks") or []:
        extra = b.get("extra_info") or {}
        point = extra.get(SWEEP_POINT_KEY)
        if isinstance(point, Mapping):
            out.append(point)
            base = extra.get(SWEEP_BASE_KEY, base)
    if isinstance(base, Mapping):
        # The base configuration is measured once; show it on every axis it belongs to.
        return [p.to_dict() for p in complete_axes([SweepPoint.from_dict(d) for d in out], base)]
    return out


def verdicts_from_report(report: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Baseline verdict rows from each benchmark's `energy.comparison`, with the test name first."""
    out = []
    for b in report.get("benchmarks") or []:
        for v in _bench_field(b, "comparison") or []:
            if isinstance(v, Mapping):
                out.append({"test": b.get("name", "?"), **v})
    return out


def render_html_report(report: Mapping[str, Any] | None = None, *,
                       sweep_points: Sequence[Mapping[str, Any]] | None = None,
                       verdicts: Sequence[Mapping[str, Any]] | None = None,
                       images: Mapping[str, bytes] | None = None, about: Mapping[str, Any] | None = None,
                       title: str = "pytest-energy report", plots: bool = True,
                       sections: Sequence[tuple[str, str]] = ()) -> str:
    """The whole report as one HTML string.

    - `report`: the --energy-json dict (pytest-benchmark layout): `benchmarks[]` with `name`,
      `fullname`, `group`, `stats{mean, stddev, rounds, ...}` in seconds, an `energy` block
      (`method`, `stats{mean, stddev, ...}` in J, `power_w`, `metrics{name: Metric dict}`,
      `protocols[]`, `comparison[]`) and `extra_info`; `machine_info`, `commit_info` and the
      session's `energy` block become small tables. Fine-tuning curves are drawn from protocols
      carrying a `curve`.
    - `sweep_points`: SweepPoint dicts; by default those the benchmarks stored in
      `extra_info["sweep_point"]`.
    - `verdicts`: baseline comparison rows (any keys; a `verdict`/`status` column is coloured); by
      default every benchmark's `energy.comparison`.
    - `images`: extra PNGs, {caption: bytes}.
    - `about`: facts about the run shown first (model, task, examples per point, ...).
    - `plots=False` leaves figures out (they are also left out, with a note, without matplotlib).
    - `sections`: (heading, HTML) pairs appended after the tables, e.g. HULK score tables; the HTML must
      already be escaped (tabulate's "html" format escapes cell text).
    """
    report = report or {}
    benchmarks = list(report.get("benchmarks") or [])
    sweep_points = list(sweep_points_from_report(report) if sweep_points is None else sweep_points)
    verdicts = list(verdicts_from_report(report) if verdicts is None else verdicts)
    body = [f"<h1>{_e(title)}</h1>"]
    when = report.get("datetime")
    if when:
        body.append(f'<p class="note">Generated {_e(when)}</p>')
    methods = {str(_energy_block(b).get("method")) for b in benchmarks} | {str(p.get("method")) for p in sweep_points}
    if any("estimate" in m for m in methods):
        body.append('<p class="note"><span class="method-estimate">estimate</span>: energy modelled as process '
                    "CPU time \u00d7 watts per core because no energy counter was readable; not a measurement.</p>")
    if about:
        body.append(_kv_section("About this run", about))
    if verdicts:
        body.append(_verdicts_section(verdicts))
    if benchmarks:
        body.append(_benchmarks_section(benchmarks))
        body.append(_metrics_section(benchmarks))
    if sweep_points:
        body.append(_sweeps_section(sweep_points, plots))
    if benchmarks:
        body.append(_finetune_section(benchmarks, plots))
        if plots:
            body.append(_baseline_section(benchmarks, plots))
    for heading, section_html in sections:
        body.append(f"<h2>{_e(heading)}</h2>{section_html}")
    if images:
        body.append("<h2>Figures</h2>" + "".join(_img(png, cap) for cap, png in images.items()))
    for key, heading in (("energy", "Energy session"), ("machine_info", "Machine"), ("commit_info", "Commit")):
        if isinstance(report.get(key), Mapping):
            body.append(_kv_section(heading, report[key]))
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{_e(title)}</title><style>{_CSS}</style></head>"
            f"<body>{''.join(body)}</body></html>\n")


def write_html_report(path: str | Path, report: Mapping[str, Any] | None = None, **kwargs: Any) -> Path:
    """Render with `render_html_report(report, **kwargs)` and write UTF-8 to `path`; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_atomic(path, render_html_report(report, **kwargs), what="HTML report")
