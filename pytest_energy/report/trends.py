"""The stored run histories, shown: terminal lines, one self-contained HTML page, and a small chart per
benchmark and metric (`python -m pytest_energy history`, docs/history.md). The data is analysis.trends'.

The page has no network reference: figures are inline base64 PNGs (matplotlib, the optional `plots`
extra, imported only when a figure is drawn), styles and the filter script are inline. Without matplotlib
the tables are all there and the page says why there are no figures. Every text from a baseline file (node
ids, commits, units) is escaped: a baseline is committed by pull requests and is untrusted input.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..errors import PlotsUnavailable
from . import format as fmt
from .html import _e, _img  # one way to escape text and embed a figure, shared with the run report

if TYPE_CHECKING:
    from ..analysis.trends import MetricTrend
    from ..gate.baselines import BaselineEntry
    from ..gate.judge import HistoryContext

__all__ = ["terminal_lines", "render_trends_html", "trend_figure", "trend_png", "history_chart_png"]

CHART_SIZE_IN = (5.0, 2.4)
CHART_DPI = 80  # small: a page of 200 tests holds 400 of them


# --- terminal ---------------------------------------------------------------------------------------------

def band_text(t: MetricTrend) -> str:
    if t.band is None:
        return "no band (< 3 runs)"
    return f"{fmt.number(t.band.low)} .. {fmt.value(t.band.high, t.unit)}"


def _restart_text(t: MetricTrend) -> str:
    return ", ".join(f"restarted {r.date} {r.short_commit}" for r in t.restarts)


def terminal_lines(trends: Sequence[MetricTrend], *, header: str = "") -> list[str]:
    """One line per test and metric: runs, last value, trend over the history, the band of the next run;
    a test's lines come together, under its machine class when that changes."""
    if not trends:
        return [header, "no stored history matches"] if header else ["no stored history matches"]
    rows = [(t.nodeid, t.metric, f"{len(t.runs)} run{'s' if len(t.runs) != 1 else ''}",
             fmt.value(t.last, t.unit), fmt.change(t.trend_pct), band_text(t), _restart_text(t)) for t in trends]
    widths = [max(len(r[i]) for r in rows) for i in range(6)]
    lines = [header] if header else []
    lines.append("  ".join(h.ljust(w) for h, w in zip(("test", "metric", "runs", "last", "trend", "next run band"),
                                                          widths)).rstrip())
    machine = None
    for t, row in zip(trends, rows):
        if t.machine_class != machine:
            machine = t.machine_class
            lines.append(f"-- machine class: {machine}")
        text = "  ".join(c.ljust(w) if i != 3 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))
        lines.append((text + ("  " + row[6] if row[6] else "")).rstrip())
    lines.append(f"band: a next run like the last one outside it is IMPROVED or REGRESSION for the gate (history "
                 f"rule, tolerance {_tolerances(trends)}); trend: first to last run of the history")
    return lines


def _tolerances(trends: Sequence[MetricTrend]) -> str:
    return ", ".join(f"{x * 100:g} %" for x in sorted({t.band.tolerance for t in trends if t.band})) or "n/a"


# --- figures ----------------------------------------------------------------------------------------------

def _blank_figure(size_in: tuple[float, float], dpi: int):
    """A figure with fixed margins: a layout engine would measure every label of every chart, which made a
    page of 200 tests take minutes."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise PlotsUnavailable("pytest-energy figures need matplotlib: pip install 'pytest-energy[plots]'") from exc
    fig = Figure(figsize=size_in, dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def trend_figure(t: MetricTrend, *, size_in: tuple[float, float] = CHART_SIZE_IN, dpi: int = CHART_DPI,
                 fig: Any = None):
    """The runs of one trend (mean ± sd, oldest left), a dashed line where the history restarted, and at the
    right the band of the next run with its expected value. Draws on `fig` (cleared first; a page reuses one)
    or a new figure; returns the matplotlib Figure (Agg canvas). Raises PlotsUnavailable without matplotlib."""
    if fig is None:
        fig = _blank_figure(size_in, dpi)
    else:
        fig.clear()
    ax = fig.add_axes((0.15, 0.22, 0.83, 0.68))
    xs = list(range(len(t.runs)))
    ax.errorbar(xs, [r.mean for r in t.runs], yerr=[r.sd for r in t.runs], fmt="o-", color="tab:blue",
                markersize=4, capsize=3, linewidth=1)
    for x, r in zip(xs, t.runs):
        if r.restart:
            ax.axvline(x - 0.5, color="tab:red", linestyle="--", linewidth=1)
            ax.annotate("restart", (x - 0.45, 1.0), xycoords=("data", "axes fraction"), va="top", fontsize=7,
                        color="tab:red")
    labels = [f"{r.datetime[5:10]}\n{r.short_commit[:7]}" for r in t.runs]
    nxt = len(t.runs)
    if t.band is not None and t.band.low is not None and t.band.high is not None:
        ax.fill_between([nxt - 0.3, nxt + 0.3], t.band.low, t.band.high, color="tab:green", alpha=0.25)
        if t.band.expected is not None:
            ax.plot([nxt], [t.band.expected], marker="_", markersize=14, color="tab:green")
        labels.append("next")
        xs.append(nxt)
    ax.set_xticks(xs, labels, fontsize=7)
    ax.set_xlim(-0.5, max(xs) + 0.5)
    ax.tick_params(axis="y", labelsize=7)
    ax.set_ylabel(t.unit if t.unit not in fmt.DIMENSIONLESS else t.metric, fontsize=8)
    ax.set_title(f"{t.metric} ({t.better} is better)", fontsize=8)
    ax.grid(True, axis="y", alpha=0.3)
    return fig


def trend_png(t: MetricTrend, **kwargs: Any) -> bytes:
    """trend_figure(t, **kwargs) as PNG bytes."""
    buf = io.BytesIO()
    trend_figure(t, **kwargs).savefig(buf, format="png")
    return buf.getvalue()


def history_chart_png(entry: BaselineEntry, metric: str, *, context: HistoryContext | None = None,
                      tolerance: float | None = None, **kwargs: Any) -> bytes | None:
    """A small PNG of one stored test's history of `metric` with the band of the next run, for the run's HTML
    report beside its baseline-vs-current chart. None when the metric keeps no history or matplotlib is not
    installed (the report then shows no history chart). `context`: analysis.trends.history_contexts(...)
    [(machine_label, probed)] for the gate's pooled band; without it the band is the unpooled one."""
    from ..analysis.trends import metric_trend

    t = metric_trend(entry, metric, context=context, tolerance=tolerance)
    if t is None:
        return None
    try:
        return trend_png(t, **kwargs)
    except PlotsUnavailable:
        return None


# --- the page ---------------------------------------------------------------------------------------------

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 1.5em; color: #1f2328; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 1.5em; }
table { border-collapse: collapse; margin: 0.4em 0 1em; font-size: 0.88em; }
th, td { border: 1px solid #d0d7de; padding: 0.2em 0.5em; text-align: left; vertical-align: top; }
th { background: #f6f8fa; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.id, .id { font-family: ui-monospace, monospace; overflow-wrap: anywhere; }
td.id { max-width: 32em; }
div.metric { display: inline-block; vertical-align: top; margin-right: 1.5em; }
h3 { font-size: 1em; margin-top: 1.2em; } h4 { font-size: 0.95em; margin: 0.6em 0 0.2em; }
.restart { color: #cf222e; font-weight: 600; }
.note { color: #57606a; font-size: 0.88em; }
.warn { color: #9a6700; }
details.test { border-top: 1px solid #d0d7de; padding: 0.3em 0; }
details.test > summary { cursor: pointer; }
figure { display: inline-block; margin: 0.3em 1em 0.6em 0; }
figure img { border: 1px solid #ddd; }
figcaption { font-size: 0.8em; color: #57606a; }
#filter { font-size: 1em; padding: 0.3em; width: 30em; max-width: 90%; }
.hidden { display: none; }
"""

# Hides the contents rows and the test sections whose node id lacks the typed text. Without script the
# page shows everything, which is still complete.
_SCRIPT = """
(function () {
  var box = document.getElementById("filter");
  var count = document.getElementById("shown");
  function apply() {
    var q = box.value.toLowerCase();
    var rows = document.querySelectorAll("[data-test]");
    var shown = 0;
    for (var i = 0; i < rows.length; i++) {
      var hit = rows[i].getAttribute("data-test").indexOf(q) !== -1;
      rows[i].classList.toggle("hidden", !hit);
      if (hit && rows[i].tagName === "DETAILS") { shown++; }
    }
    count.textContent = String(shown);
  }
  box.addEventListener("input", apply);
  // A link from the contents opens the test's collapsed section.
  function openTarget() {
    var id = decodeURIComponent(location.hash.slice(1));
    var el = id && document.getElementById(id);
    if (el && el.tagName === "DETAILS") { el.open = true; el.scrollIntoView(); }
  }
  window.addEventListener("hashchange", openTarget);
  openTarget();
})();
"""


def _runs_table(t: MetricTrend) -> str:
    rows = []
    for i, r in enumerate(t.runs, 1):
        mark = '<span class="restart">restart</span>' if r.restart else ""
        rows.append(f"<tr><td class=\"num\">{i}</td><td>{_e(r.date)}</td><td class=\"id\">{_e(r.short_commit)}</td>"
                    f"<td class=\"num\">{_e(fmt.value(r.mean, t.unit))}</td><td class=\"num\">{_e(fmt.number(r.sd))}"
                    f"</td><td class=\"num\">{r.n}</td><td>{mark}</td></tr>")
    if t.band is not None:
        b = t.band
        rows.append(f"<tr><td>next</td><td colspan=\"2\">band ({_e(b.rule)})</td>"
                    f"<td class=\"num\">{_e(fmt.value(b.expected, t.unit))}</td>"
                    f"<td colspan=\"3\">{_e(band_text(t))}</td></tr>")
    head = "".join(f"<th>{h}</th>" for h in ("#", "saved (UTC)", "commit", "mean", "sd", "rounds", ""))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _band_cell(t: MetricTrend) -> str:
    if t.band is None:
        return f'<span class="note" title="{_e(t.band_note)}">no band (&lt; 3 runs)</span>'
    b = t.band
    return (f'{_e(band_text(t))}<br><span class="note">expected {_e(fmt.value(b.expected, t.unit))}; '
            f"{_e(b.rule)}</span>")


def render_trends_html(trends: Sequence[MetricTrend], *, title: str = "pytest-energy: run history",
                       source: str = "", selection: str = "", figures: bool = True) -> str:
    """One self-contained page: contents (one row per test and metric, with a filter box), then one
    collapsible section per test with each metric's chart and runs. `figures` False: tables only."""
    by_test: dict[str, list[MetricTrend]] = {}
    for t in trends:
        by_test.setdefault(t.nodeid, []).append(t)
    figure_note = ""
    pngs: dict[int, bytes] = {}
    if figures and trends:
        try:
            fig = _blank_figure(CHART_SIZE_IN, CHART_DPI)
            for i, t in enumerate(trends):
                pngs[i] = trend_png(t, fig=fig)
        except PlotsUnavailable as exc:
            pngs = {}
            figure_note = f"Figures are unavailable: {exc}. The tables below hold every number."
    elif not figures:
        figure_note = "Figures were not drawn (--no-figures)."
    index = {id(t): i for i, t in enumerate(trends)}

    classes: dict[str, list[str]] = {}
    for nodeid, items in by_test.items():
        classes.setdefault(items[0].machine_class, []).append(nodeid)
    anchors = {nodeid: f"t{n}" for n, nodeid in enumerate(by_test)}  # node ids hold any character: use an index
    contents = []
    for machine, nodeids in classes.items():
        rows = []
        for nodeid in nodeids:
            items = by_test[nodeid]
            key = _e(nodeid.lower())
            for j, t in enumerate(items):
                first = (f'<td class="id" rowspan="{len(items)}"><a href="#{anchors[nodeid]}">{_e(nodeid)}</a></td>'
                         if j == 0 else "")
                restarts = "; ".join(f"{r.date} {r.short_commit}" for r in t.restarts)
                rows.append(f'<tr data-test="{key}">{first}<td>{_e(t.metric)}</td>'
                            f'<td class="num">{len(t.runs)}</td><td class="num">{_e(fmt.value(t.last, t.unit))}</td>'
                            f'<td class="num">{_e(fmt.change(t.trend_pct))}</td><td>{_band_cell(t)}</td>'
                            f'<td class="restart">{_e(restarts)}</td></tr>')
        head = "".join(f"<th>{h}</th>" for h in ("test", "metric", "runs", "last", "trend", "band of the next run",
                                                 "restarted at"))
        contents.append(f"<h3>Machine class: {_e(machine)} ({len(nodeids)} test{'s' if len(nodeids) != 1 else ''})"
                        f"</h3><table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>")
    sections = []
    for nodeid, items in by_test.items():
        body = []
        for t in items:
            i = index[id(t)]
            caption = f"{t.metric}: {len(t.runs)} runs (mean ± sd), green: the band of the next run"
            chart = _img(pngs[i], caption) if i in pngs else ""
            note = f'<p class="note">{_e(t.band_note)}</p>' if t.band_note else ""
            body.append(f'<div class="metric"><h4>{_e(t.metric)}</h4>{chart}{_runs_table(t)}{note}</div>')
        where = f' · <span class="note">{_e(items[0].baseline_file)}</span>' if items[0].baseline_file else ""
        sections.append(f'<details class="test" id="{anchors[nodeid]}" data-test="{_e(nodeid.lower())}"><summary>'
                        f'<span class="id">{_e(nodeid)}</span> · {_e(items[0].machine_class)}{where}</summary>'
                        f"{''.join(body)}</details>")
    meta = " · ".join(_e(x) for x in (source, selection) if x)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        f'<p class="note">{meta}</p>' if meta else "",
        f'<p class="warn" id="figures-note">{_e(figure_note)}</p>' if figure_note else "",
        "<p class=\"note\">Band: the values between which the gate would call the next run neither a REGRESSION "
        "nor an IMPROVED one, for a run like the latest saved one, by the gate's history rule at tolerance "
        f"{_e(_tolerances(trends))}. Trend: the change from the first to the last run of the history. "
        "A restart: the history begins after runs the test's other metrics still hold (an accepted change; or a "
        "metric added then).</p>",
        f'<p><input id="filter" type="search" placeholder="filter tests by node id" aria-label="filter tests">'
        f' <span id="shown">{len(by_test)}</span> of {len(by_test)} tests</p>',
        "<h2>Contents</h2>",
        "".join(contents) if contents else "<p>No stored history matches.</p>",
        "<h2>Tests</h2>",
        "".join(sections),
        f"<script>{_SCRIPT}</script>",
        f'<script type="application/json" id="trend-data">{_json_for_script(trends)}</script>',
        "</body></html>",
    ]
    return "\n".join(p for p in parts if p)


def _json_for_script(trends: Sequence[MetricTrend]) -> str:
    """The numbers behind the page, machine-readable; '<' escaped so no text can close the script element."""
    data = [{"test": t.nodeid, "metric": t.metric, "unit": t.unit, "machine_class": t.machine_class,
             "runs": [{"datetime": r.datetime, "commit": r.commit, "mean": r.mean, "sd": r.sd, "n": r.n,
                       "restart": r.restart} for r in t.runs],
             "band": None if t.band is None else {"low": t.band.low, "high": t.band.high,
                                                   "expected": t.band.expected, "rule": t.band.rule}}
            for t in trends]
    return json.dumps(data, allow_nan=False, default=str).replace("<", "\\u003c").replace(">", "\\u003e") \
        .replace("&", "\\u0026")
