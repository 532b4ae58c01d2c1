"""Series of (time, energy) samples in a TestRecord, and the terminal table built from them."""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..results import Metric, TestRecord


@dataclass
class Series:
    """The time and energy samples of one metered thing in a test (its rounds, or a labelled window)."""

    label: str  # "" for energy(fn) rounds, else the window label or protocol prefix
    duration: Metric
    energy: Metric

    @property
    def title(self) -> str:
        return self.label or "rounds"


def series_of(record: TestRecord) -> list[Series]:
    """Every prefix that has both `<prefix>duration_s` and `<prefix>energy_j`, in recording order."""
    out = []
    for name, metric in record.metrics.items():
        if not name.endswith("duration_s"):
            continue
        prefix = name[: -len("duration_s")]
        if prefix and not prefix.endswith("."):
            continue  # e.g. "finetune.eval_duration_s" is a detail of the "finetune." series
        energy = record.metrics.get(prefix + "energy_j")
        if energy is not None:
            out.append(Series(prefix.rstrip("."), metric, energy))
    return out


def primary_series(record: TestRecord) -> Series | None:
    """The series pytest-benchmark's `stats` block describes: the rounds when there are any."""
    series = series_of(record)
    for s in series:
        if s.label == "":
            return s
    return series[0] if series else None


def mean_sd(samples: list[float]) -> tuple[float, float]:
    if not samples:
        return math.nan, math.nan
    mean = statistics.fmean(samples)
    return mean, (statistics.stdev(samples) if len(samples) > 1 else 0.0)


def fmt_mean_sd(samples: list[float], digits: int = 3) -> str:
    mean, sd = mean_sd(samples)
    if math.isnan(mean):
        return "n/a"
    return f"{mean:.{digits}g} ± {sd:.2g}"


def energy_table(records: list[TestRecord], tablefmt: str = "simple") -> str:
    """One row per test (and per labelled window in it), with units and the energy method."""
    from tabulate import tabulate

    rows = []
    for record in records:
        for s in series_of(record):
            mean_e, _ = mean_sd(s.energy.samples)
            mean_t, _ = mean_sd(s.duration.samples)
            power = mean_e / mean_t if mean_t > 0 else math.nan
            name = record.name if not s.label else f"{record.name} › {s.label}"
            rows.append([name, len(s.duration.samples), fmt_mean_sd(s.duration.samples),
                         fmt_mean_sd(s.energy.samples), f"{power:.3g}", s.energy.method or "?"])
    if not rows:
        return ""
    headers = ["test", "rounds", "time s (mean ± sd)", "energy J (mean ± sd)", "avg power W", "method"]
    return tabulate(rows, headers=headers, tablefmt=tablefmt, disable_numparse=True)


def is_decisive(verdict: Mapping[str, Any]) -> bool:
    """Verdicts every report shows first: what fails or improves, and each test's time and energy.
    A protocol test has a dozen metrics that move together; the rest is folded away."""
    return verdict.get("verdict") in ("REGRESSION", "IMPROVED") or \
        str(verdict.get("metric", "")).rsplit(".", 1)[-1] in ("energy_j", "duration_s")
