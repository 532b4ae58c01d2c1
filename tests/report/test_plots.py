from __future__ import annotations

import struct

import pytest

pytest.importorskip("matplotlib")

from pytest_energy.errors import UsageError  # noqa: E402
from pytest_energy.report.plots import (  # noqa: E402
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
