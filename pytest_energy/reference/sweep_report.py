"""End-of-session output of the sweep benchmarks: points as JSON, frontier PNGs per axis, an HTML page.

Written to $PYTEST_ENERGY_REPORT_DIR (default `energy-report/` in the rootdir), one sub-folder per task.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import PlotsUnavailable
from ..files import write_atomic
from ..protocols.sweeps import SweepPoint, complete_axes
from ..report.html import write_html_report
from ..report.json import json_safe
from ..report.plots import plot_frontier, plot_frontiers_by_axis

REPORT_DIR_ENV = "PYTEST_ENERGY_REPORT_DIR"
DEFAULT_REPORT_DIR = "energy-report"


def report_dir(rootdir: str | os.PathLike[str]) -> Path:
    return Path(rootdir) / os.environ.get(REPORT_DIR_ENV, DEFAULT_REPORT_DIR)


def write_sweep_report(points: Sequence[SweepPoint], directory: Path, *, base: Mapping[str, Any],
                       title: str, about: Mapping[str, Any]) -> list[Path]:
    """Write sweep-points.json, frontier-<axis>.png, frontier-all.png and sweeps.html; returns the paths."""
    directory.mkdir(parents=True, exist_ok=True)
    measured = [{**p.to_dict(), "label": f"{p.axis}={p.value}"} for p in points if p.measured]
    # The base configuration is measured once (max_length=128); every axis's frontier shows it.
    dicts = [p.to_dict() for p in complete_axes(points, base)]
    written = [directory / "sweep-points.json"]
    write_atomic(written[0], json.dumps(json_safe({"about": dict(about), "base": dict(base), "points": dicts}),
                                        indent=2, allow_nan=False) + "\n", what="sweep points")
    images: dict[str, bytes] = {}
    try:
        written += plot_frontiers_by_axis(dicts, directory).values()
        if measured:
            all_path = directory / "frontier-all.png"
            images["All configurations together: frontier over every axis"] = plot_frontier(
                measured, all_path, label_key="label", label_front_only=True,
                title="Energy-accuracy frontier: all configurations (frontier labelled)")
            written.append(all_path)
    except PlotsUnavailable:
        pass  # the HTML page says how to get pictures; JSON and tables are still written
    written.append(write_html_report(directory / "sweeps.html", None, sweep_points=dicts, images=images,
                                     about=about, title=title))
    return written
