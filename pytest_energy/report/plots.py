"""PNG figures for the reports: energy-accuracy frontiers per sweep axis, and fine-tuning curves.

matplotlib is an optional extra, imported only when a figure is drawn. We draw on a bare
`matplotlib.figure.Figure` with the Agg canvas instead of pyplot, so plotting never switches the
user's global backend, opens windows, or leaks figures between tests.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..analysis.pareto import pareto_mask
from ..errors import PlotsUnavailable, UsageError
from ..records import combine_methods, is_estimate
from .format import is_number

# Human axis titles for the sweep axes pytest_energy.protocols.sweeps produces.
AXIS_TITLES = {
    "max_length": "max sequence length (tokens)",
    "precision": "inference precision",
    "depth": "encoder layers",
    "batch_size": "batch size",
}
# A log x axis once the data span more than this factor; a linear axis would squash the cheap points.
LOG_AXIS_MIN_RATIO = 20.0
# Axis labels for the sweep point fields; energy labels get the energy method appended.
FIELD_TITLES = {
    "j_per_example": "energy per example (J/example)",
    "j_per_correct": "energy per correct prediction (J)",
    "ms_per_example": "latency per example (ms/example)",
    "peak_memory_bytes": "peak memory (bytes)",
    "accuracy": "accuracy",
}
DEFAULT_SIZE_IN = (7.0, 5.0)
DEFAULT_DPI = 100


def _figure(size_in: tuple[float, float], dpi: int):
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise PlotsUnavailable(
            "pytest-energy figures need matplotlib: pip install 'pytest-energy[plots]'") from exc
    fig = Figure(figsize=size_in, dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _png(fig, path: str | Path | None) -> bytes:
    buf = io.BytesIO()
    # No bbox_inches="tight": the image must be exactly size_in x dpi pixels.
    fig.savefig(buf, format="png")
    data = buf.getvalue()
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_bytes(data)
    return data


def _field(point: Any, key: str) -> Any:
    return point.get(key) if isinstance(point, Mapping) else getattr(point, key, None)


def _method_label(points: Sequence[Any], method: str | None) -> str:
    if method:
        return method
    label = combine_methods(_field(p, "method") for p in points)
    return "unknown method" if label == "none" else label


def _log_scale_wanted(values: Sequence[float]) -> bool:
    positive = [v for v in values if v > 0]
    return len(positive) == len(values) and max(positive) / min(positive) > LOG_AXIS_MIN_RATIO


# Label positions tried in turn, in points from the marker: right-above, right-below, left-above, left-below.
_LABEL_OFFSETS_PT = ((5, 5), (5, -11), (-5, 5), (-5, -11))
_LABEL_FONT_PT = 8


def _place_labels(ax, labels: list[tuple[str, float, float]], dpi: int) -> None:
    """Annotate points, moving a label to another corner when it would overlap one already placed."""
    ax.get_xlim(), ax.get_ylim()  # settle the autoscaled limits so transData is final
    pt_per_px = 72.0 / dpi
    placed: list[tuple[float, float, float, float]] = []  # label boxes in points: x0, y0, x1, y1
    for text, x, y in sorted(labels, key=lambda t: (t[1], t[2])):
        px, py = ax.transData.transform((x, y))
        mx, my = px * pt_per_px, py * pt_per_px
        width, height = 0.6 * _LABEL_FONT_PT * len(text), _LABEL_FONT_PT
        choice = _LABEL_OFFSETS_PT[0]
        for dx, dy in _LABEL_OFFSETS_PT:
            x0 = mx + dx if dx > 0 else mx + dx - width
            box = (x0, my + dy, x0 + width, my + dy + height)
            if not any(box[0] < b[2] and b[0] < box[2] and box[1] < b[3] and b[1] < box[3] for b in placed):
                choice = (dx, dy)
                break
        dx, dy = choice
        x0 = mx + dx if dx > 0 else mx + dx - width
        placed.append((x0, my + dy, x0 + width, my + dy + height))
        ax.annotate(text, (x, y), textcoords="offset points", xytext=(dx, dy), fontsize=_LABEL_FONT_PT,
                    ha="left" if dx > 0 else "right", zorder=4)


def plot_frontier(points: Sequence[Any], path: str | Path | None = None, **kwargs: Any) -> bytes:
    """frontier_figure(points, **kwargs) as PNG bytes; also written to `path` when given."""
    return _png(frontier_figure(points, **kwargs), path)


def frontier_figure(points: Sequence[Any], *, axis: str | None = None, x_key: str = "j_per_example",
                    y_key: str = "accuracy", label_key: str = "value", label_front_only: bool = False,
                    method: str | None = None, title: str | None = None,
                    size_in: tuple[float, float] = DEFAULT_SIZE_IN, dpi: int = DEFAULT_DPI):
    """Energy-accuracy scatter of one sweep axis with its Pareto frontier highlighted and connected.

    `points` are dicts or objects with `x_key`, `y_key` and `label_key` (the axis value, printed next
    to each point, or only next to frontier points with `label_front_only`, for crowded plots).
    Points whose x or y is missing or not finite (skipped configurations, runs without labels) are
    left out. Returns the matplotlib Figure (Agg canvas).
    """
    usable = [p for p in points if is_number(_field(p, x_key)) and is_number(_field(p, y_key))]
    if not usable:
        raise UsageError(f"no point has finite {x_key!r} and {y_key!r} to plot"
                         f"{f' for axis {axis!r}' if axis else ''}")
    on_front = pareto_mask(usable, minimize=(x_key,), maximize=(y_key,))
    xs = [float(_field(p, x_key)) for p in usable]
    ys = [float(_field(p, y_key)) for p in usable]
    method_label = _method_label(usable, method)

    fig = _figure(size_in, dpi)
    ax = fig.add_subplot()
    dominated = [(x, y) for x, y, f in zip(xs, ys, on_front) if not f]
    if dominated:  # a legend entry only for what is drawn
        ax.scatter([x for x, _ in dominated], [y for _, y in dominated], s=30, color="0.6", label="dominated",
                   zorder=2)
    front = sorted((x, y) for x, y, f in zip(xs, ys, on_front) if f)
    # A staircase: the best accuracy reachable within an energy budget only changes at frontier points;
    # a straight line between two of them would promise trade-offs nobody measured.
    ax.step([x for x, _ in front], [y for _, y in front], "o-", where="post", color="tab:blue",
            markersize=7, linewidth=1.8, label="Pareto frontier", zorder=3)
    if _log_scale_wanted(xs):
        ax.set_xscale("log")
    labelled = [(str(_field(p, label_key)), x, y) for p, x, y, f in zip(usable, xs, ys, on_front)
                if f or not label_front_only]
    _place_labels(ax, labelled, dpi)
    x_title = FIELD_TITLES.get(x_key, x_key)
    ax.set_xlabel(f"{x_title}, {method_label}" if x_key.startswith("j_") else x_title)
    ax.set_ylabel(FIELD_TITLES.get(y_key, y_key))
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    axis_title = AXIS_TITLES.get(axis or "", axis or "")
    heading = title or f"Energy-accuracy frontier{f': {axis_title}' if axis_title else ''}"
    sub = f"energy method: {method_label}"
    if is_estimate(method_label):
        sub += " (CPU time x W/core model, not a measurement)"
    ax.set_title(f"{heading}\n{sub}", fontsize=10)
    return fig


def plot_frontiers_by_axis(points: Sequence[Any], directory: str | Path, *, axis_key: str = "axis",
                           x_key: str = "j_per_example", y_key: str = "accuracy",
                           method: str | None = None, prefix: str = "frontier") -> dict[str, Path]:
    """One frontier PNG per sweep axis, named `<prefix>-<axis>.png`; returns {axis: path}."""
    groups: dict[str, list[Any]] = {}
    for p in points:
        groups.setdefault(str(_field(p, axis_key)), []).append(p)
    out: dict[str, Path] = {}
    for axis, members in groups.items():
        if not any(is_number(_field(p, x_key)) and is_number(_field(p, y_key)) for p in members):
            continue  # every point of this axis was skipped: nothing to draw
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in axis)
        path = Path(directory) / f"{prefix}-{safe}.png"
        plot_frontier(members, path, axis=axis, x_key=x_key, y_key=y_key, method=method)
        out[axis] = path
    return out


def _axis_scale(ax, values: Sequence[float], which: str = "x") -> bool:
    """A log axis only when the values span more than LOG_AXIS_MIN_RATIO (labels of a short log axis
    overlap and say little); else linear from 0, so the distance from the origin reads as the cost."""
    log = bool(values) and _log_scale_wanted(list(values))
    if log:
        (ax.set_xscale if which == "x" else ax.set_yscale)("log")
    elif values:
        (ax.set_xlim if which == "x" else ax.set_ylim)(0, max(values) * 1.08 or 1.0)
    return log


def plot_finetune_curves(curves: Sequence[Mapping[str, Any]] | Mapping[str, Sequence[Mapping[str, Any]]],
                         path: str | Path | None = None, **kwargs: Any) -> bytes:
    """finetune_figure(curves, **kwargs) as PNG bytes; also written to `path` when given."""
    return _png(finetune_figure(curves, **kwargs), path)


def finetune_figure(curves: Sequence[Mapping[str, Any]] | Mapping[str, Sequence[Mapping[str, Any]]], *,
                    cutoff: float | None = None, higher_is_better: bool = True, score_name: str = "score",
                    method: str | None = None, title: str | None = None,
                    size_in: tuple[float, float] = (11.0, 4.5), dpi: int = DEFAULT_DPI):
    """Dev score against training time (left) and training energy (right), every evaluation a point
    (HULK, Figure 2).

    `curves` is the fine-tuning protocol's curve (a list of dicts with step, train_duration_s,
    train_energy_j, wall_s, score) or {name: curve} to compare several models. Training-only time is
    drawn solid; wall-clock time including evaluation dashed, since each answers a different question
    (DAWNBench vs MLPerf). The first evaluation that reaches the cut-off is a star. Axes are linear from 0
    unless the values span more than LOG_AXIS_MIN_RATIO. The legend lists only what is drawn.
    Returns the matplotlib Figure (Agg canvas).
    """
    named = dict(curves) if isinstance(curves, Mapping) else {"": curves}
    if not any(named.values()):
        raise UsageError("no fine-tuning curve points to plot")
    fig = _figure(size_in, dpi)
    ax_t, ax_e = fig.subplots(1, 2, sharey=True)
    xs_t: list[float] = []
    xs_e: list[float] = []
    evaluations = 0
    for i, (name, curve) in enumerate(named.items()):
        colour = f"C{i}"
        tag = f"{name}: " if name else ""

        def series(x_key: str, curve=curve) -> tuple[list[float], list[float]]:
            pairs = [(float(r[x_key]), float(r["score"])) for r in curve
                     if is_number(r.get(x_key)) and r[x_key] >= 0 and is_number(r.get("score"))]
            return [x for x, _ in pairs], [y for _, y in pairs]

        for ax, key, label, style, xs_all in (
                (ax_t, "train_duration_s", "training time", "o-", xs_t),
                (ax_t, "wall_s", "wall clock incl. evaluation", "x--", xs_t),
                (ax_e, "train_energy_j", "training energy", "o-", xs_e)):
            x, y = series(key)
            if not x:
                continue  # nothing to draw, so no legend entry either
            count = f" ({len(x)} evaluation{'s' if len(x) != 1 else ''})" if style == "o-" else ""
            ax.plot(x, y, style, color=colour, markersize=5 if style == "o-" else 4,
                    alpha=1.0 if style == "o-" else 0.6, label=f"{tag}{label}{count}")
            xs_all += x
        evaluations += sum(1 for r in curve if is_number(r.get("score")))
        if cutoff is not None:
            # Mark the first evaluation at or above the cut-off: the point the protocol scores.
            hit = next((r for r in curve if is_number(r.get("score"))
                        and (r["score"] >= cutoff if higher_is_better else r["score"] <= cutoff)), None)
            if hit is not None:
                for ax, key in ((ax_t, "train_duration_s"), (ax_e, "train_energy_j")):
                    if is_number(hit.get(key)):
                        ax.plot([hit[key]], [hit["score"]], "*", color=colour, markersize=14,
                                markeredgecolor="black", zorder=5, label=f"{tag}cut-off reached")
    method_label = method or "unknown method"
    for ax, xs, x_title in ((ax_t, xs_t, "training time (s)"),
                            (ax_e, xs_e, f"training energy (J, {method_label})")):
        log = _axis_scale(ax, xs)
        ax.set_xlabel(x_title + (", log scale" if log else ""))
        ax.grid(True, which="major", alpha=0.3)
        if cutoff is not None:
            ax.axhline(cutoff, color="tab:red", linestyle=":", linewidth=1.5, label=f"cut-off {cutoff:g}")
        ax.legend(loc="lower right", fontsize=8)
    ax_t.set_ylabel(f"dev {score_name}")
    sub = f"{evaluations} evaluation{'s' if evaluations != 1 else ''}; energy method: {method_label}"
    if is_estimate(method_label):
        sub += " (CPU time x W/core model, not a measurement)"
    fig.suptitle(f"{title or 'Fine-tuning curve'}\n{sub}", fontsize=10)
    return fig


def plot_baseline_vs_current(comparisons: Mapping[str, tuple[Sequence[float], Sequence[float]]],
                             path: str | Path | None = None, **kwargs: Any) -> bytes:
    """baseline_figure(comparisons, **kwargs) as PNG bytes; also written to `path` when given."""
    return _png(baseline_figure(comparisons, **kwargs), path)


def baseline_figure(comparisons: Mapping[str, tuple[Sequence[float], Sequence[float]]], *,
                    units: Mapping[str, str] | None = None, title: str = "", method: str | None = None,
                    size_in: tuple[float, float] = (8.0, 3.2), dpi: int = DEFAULT_DPI):
    """One panel per quantity (e.g. {"time": (baseline samples, current samples), "energy": (...)}):
    every sample a dot, the mean a bar with +-1 sd whiskers, baseline left and current right, the change of
    the mean in the panel's title. Returns the matplotlib Figure (Agg canvas)."""
    panels = {k: ([float(x) for x in b if is_number(x)], [float(x) for x in c if is_number(x)])
              for k, (b, c) in comparisons.items()}
    panels = {k: v for k, v in panels.items() if v[0] and v[1]}
    if not panels:
        raise UsageError("no quantity has samples on both sides to compare")
    units = dict(units or {})
    fig = _figure(size_in, dpi)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (name, (base, cur)) in zip(axes, panels.items()):
        for pos, samples, colour in ((0, base, "0.45"), (1, cur, "tab:blue")):
            mean = sum(samples) / len(samples)
            sd = (sum((x - mean) ** 2 for x in samples) / (len(samples) - 1)) ** 0.5 if len(samples) > 1 else 0.0
            ax.errorbar([pos + 0.12], [mean], yerr=[sd], fmt="_", markersize=24, capsize=6, color=colour, zorder=3)
            # The samples left of their mean, spread a little (deterministically) so equal values stay visible.
            spread = [pos - 0.15 + 0.05 * ((i % 5) - 2) for i in range(len(samples))]
            ax.scatter(spread, samples, s=14, color=colour, alpha=0.7, zorder=2)
        base_mean, cur_mean = sum(base) / len(base), sum(cur) / len(cur)
        change = f"{(cur_mean - base_mean) / abs(base_mean) * 100:+.1f} %" if base_mean else "n/a"
        ax.set_xticks([0, 1], [f"baseline\n(n={len(base)})", f"current\n(n={len(cur)})"])
        ax.set_xlim(-0.6, 1.6)
        unit = units.get(name, "")
        ax.set_ylabel(f"{name} ({unit})" if unit else name)
        ax.set_title(f"{name}: {change}", fontsize=9)
        ax.grid(True, axis="y", alpha=0.3)
    sub = f"mean ± sd, every sample a dot; energy method: {method}" if method else "mean ± sd, every sample a dot"
    fig.suptitle(f"{title}\n{sub}" if title else sub, fontsize=9)
    return fig
