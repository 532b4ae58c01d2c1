from __future__ import annotations

import struct

import pytest

pytest.importorskip("matplotlib")

from pytest_energy.errors import UsageError  # noqa: E402
from pytest_energy.report.plots import (  # noqa: E402
    baseline_figure,
    finetune_figure,
    frontier_figure,
    plot_baseline_vs_current,
    plot_finetune_curves,
    plot_frontier,
    plot_frontiers_by_axis,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size_px(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG_SIGNATURE
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def sweep_points():
    pts = [{"axis": "max_length", "value": n, "j_per_example": 0.001 * n, "accuracy": min(0.9, 0.5 + n / 100),
            "method": "estimate"} for n in (16, 32, 48, 64, 128)]
    pts += [{"axis": "precision", "value": p, "j_per_example": j, "accuracy": 0.9, "method": "estimate"}
            for p, j in (("fp32", 0.1), ("bf16", 0.05))]
    pts.append({"axis": "precision", "value": "fp16", "j_per_example": float("nan"), "accuracy": None,
                "method": "none", "skipped_reason": "no fp16 kernels"})
    return pts


def test_frontier_png_written_with_requested_size(tmp_path):
    path = tmp_path / "sub" / "front.png"
    data = plot_frontier(sweep_points()[:5], path, axis="max_length", size_in=(6, 4), dpi=50)
    assert path.read_bytes() == data
    assert len(data) > 1000
    assert png_size_px(data) == (300, 200)


def test_frontier_wide_range_and_energy_latency_axes():
    pts = [{"value": i, "j_per_example": 10.0 ** i, "ms_per_example": i + 1.0, "accuracy": i / 10} for i in range(5)]
    assert png_size_px(plot_frontier(pts)) == (700, 500)
    assert png_size_px(plot_frontier(pts, x_key="ms_per_example")) == (700, 500)


def test_frontier_without_plottable_points_is_a_usage_error():
    with pytest.raises(UsageError, match="no point"):
        plot_frontier([{"value": 1, "j_per_example": float("nan"), "accuracy": 0.5}], axis="depth")


def test_one_png_per_axis_skipping_unmeasured_points(tmp_path):
    paths = plot_frontiers_by_axis(sweep_points(), tmp_path)
    assert sorted(paths) == ["max_length", "precision"]
    for path in paths.values():
        assert path.parent == tmp_path
        assert png_size_px(path.read_bytes()) == (700, 500)


def test_finetune_curves_single_and_several(tmp_path):
    curve = [{"step": s, "train_duration_s": s * 0.5, "train_energy_j": s * 4.0, "wall_s": s * 0.6,
              "wall_energy_j": s * 5.0, "score": 0.5 + s / 250} for s in range(0, 120, 20)]
    data = plot_finetune_curves(curve, tmp_path / "c.png", cutoff=0.8, method="estimate")
    assert (tmp_path / "c.png").read_bytes() == data
    assert png_size_px(data) == (1100, 450)
    both = plot_finetune_curves({"a": curve, "b": curve[::2]}, cutoff=0.8, higher_is_better=True)
    assert png_size_px(both) == (1100, 450)
    with pytest.raises(UsageError):
        plot_finetune_curves([])


# --- what is drawn, read back from the matplotlib objects ---------------------------------------------------

def legend_texts(ax) -> list[str]:
    legend = ax.get_legend()
    return [t.get_text() for t in legend.get_texts()] if legend else []


def test_frontier_draws_every_point_and_connects_the_frontier():
    points = sweep_points()[:5]  # j = 0.016 .. 0.128, accuracy rising to 0.9 at 48 tokens, then flat
    fig = frontier_figure(points, axis="max_length")
    ax = fig.axes[0]
    (front,) = [line for line in ax.get_lines() if line.get_label() == "Pareto frontier"]
    assert list(front.get_xdata()) == [0.016, 0.032, 0.048]  # 64 and 128 tokens cost more for the same 0.9
    assert list(front.get_ydata()) == pytest.approx([0.66, 0.82, 0.9])
    (dominated,) = ax.collections
    assert sorted(x for x, _ in dominated.get_offsets()) == [0.064, 0.128]
    assert legend_texts(ax) == ["dominated", "Pareto frontier"]
    assert ax.get_xlabel() == "energy per example (J/example), estimate" and ax.get_ylabel() == "accuracy"
    assert ax.get_xscale() == "linear"  # 8x range: a log axis would only crowd its labels
    assert sorted(t.get_text() for t in ax.texts) == ["128", "16", "32", "48", "64"]


def test_frontier_legend_only_for_what_is_drawn_and_log_axis_for_wide_ranges():
    points = [{"value": i, "j_per_example": 10.0 ** i, "accuracy": i / 10} for i in range(4)]  # all on the front
    ax = frontier_figure(points).axes[0]
    assert legend_texts(ax) == ["Pareto frontier"] and not ax.collections
    assert ax.get_xscale() == "log"


CURVE = [{"step": s, "train_duration_s": s * 0.5, "train_energy_j": s * 4.0, "wall_s": s * 0.6,
          "wall_energy_j": s * 5.0, "score": 0.5 + s / 250} for s in range(20, 120, 20)]  # 5 evaluations


def test_finetune_curve_every_evaluation_is_a_point_on_readable_axes():
    fig = finetune_figure(CURVE, cutoff=0.8, method="estimate", title="Fine-tuning curve: t")
    ax_t, ax_e = fig.axes
    lines = {line.get_label(): line for line in ax_t.get_lines()}
    assert list(lines["training time (5 evaluations)"].get_xdata()) == [10.0, 20.0, 30.0, 40.0, 50.0]
    assert list(lines["training time (5 evaluations)"].get_ydata()) == pytest.approx([0.58, 0.66, 0.74, 0.82, 0.9])
    assert list(lines["wall clock incl. evaluation"].get_xdata()) == [12.0, 24.0, 36.0, 48.0, 60.0]
    assert list(lines["cut-off reached"].get_xdata()) == [40.0]  # the first evaluation at 0.8 or more
    energy_line = next(line for line in ax_e.get_lines() if line.get_label().startswith("training energy"))
    assert list(energy_line.get_xdata()) == [80.0, 160.0, 240.0, 320.0, 400.0]
    assert ax_t.get_xlabel() == "training time (s)" and ax_e.get_xlabel() == "training energy (J, estimate)"
    assert ax_t.get_ylabel() == "dev score"
    # A 5x range: linear axes from 0, no overlapping log-scale labels.
    assert ax_t.get_xscale() == ax_e.get_xscale() == "linear" and ax_t.get_xlim()[0] == 0
    assert legend_texts(ax_t) == ["training time (5 evaluations)", "wall clock incl. evaluation", "cut-off reached",
                                  "cut-off 0.8"]
    assert legend_texts(ax_e) == ["training energy (5 evaluations)", "cut-off reached", "cut-off 0.8"]
    assert "5 evaluations; energy method: estimate" in fig._suptitle.get_text()


def test_finetune_curve_without_wall_clock_or_cutoff_draws_no_legend_for_them():
    curve = [{k: v for k, v in r.items() if k != "wall_s"} for r in CURVE[:1]]  # one evaluation
    ax_t, ax_e = finetune_figure(curve).axes
    assert legend_texts(ax_t) == ["training time (1 evaluation)"]
    assert [len(line.get_xdata()) for line in ax_t.get_lines()] == [1]


def test_finetune_curve_log_axis_when_the_range_is_wide():
    curve = [{"step": s, "train_duration_s": 0.1 * 2 ** s, "train_energy_j": 2 ** s, "score": s / 10}
             for s in range(1, 9)]  # 128x
    ax_t, ax_e = finetune_figure(curve).axes
    assert ax_t.get_xscale() == ax_e.get_xscale() == "log"
    assert ax_t.get_xlabel() == "training time (s), log scale"


def test_baseline_vs_current_shows_every_sample_and_the_change():
    base, cur = [1.0, 1.1, 0.9, 1.0], [1.25, 1.3, 1.2]
    fig = baseline_figure({"time": (base, cur), "energy": ([10.0] * 4, [10.0] * 3)},
                          units={"time": "s", "energy": "J"}, title="test_x", method="estimate")
    ax_t, ax_e = fig.axes
    assert ax_t.get_ylabel() == "time (s)" and ax_e.get_ylabel() == "energy (J)"
    assert ax_t.get_title() == "time: +25.0 %" and ax_e.get_title() == "energy: +0.0 %"
    scatter_points = [len(c.get_offsets()) for c in ax_t.collections if len(c.get_offsets())]
    assert sorted(scatter_points)[-2:] == [3, 4]  # every sample drawn
    assert [t.get_text() for t in ax_t.get_xticklabels()] == ["baseline\n(n=4)", "current\n(n=3)"]
    assert png_size_px(plot_baseline_vs_current({"time": (base, cur)})) == (800, 320)
    with pytest.raises(UsageError):
        baseline_figure({"time": ([], [1.0])})
