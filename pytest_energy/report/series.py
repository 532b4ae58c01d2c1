"""Series of (time, energy) samples in a TestRecord, and the per-test energy table built from them."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..records import Metric, TestRecord
from .format import mean_pm_sd, mean_sd, number


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


ENERGY_HEADERS = ["test", "rounds", "time s (mean ± sd)", "energy J (mean ± sd)", "avg power W", "method"]


def energy_rows(records: list[TestRecord]) -> list[list[str]]:
    """One row per test (and per labelled window in it), in run order, with units and the energy method."""
    rows = []
    for record in records:
        for s in series_of(record):
            mean_e, _ = mean_sd(s.energy.samples)
            mean_t, _ = mean_sd(s.duration.samples)
            power = mean_e / mean_t if mean_t > 0 else math.nan
            name = record.name if not s.label else f"{record.name} › {s.label}"
            rows.append([name, str(len(s.duration.samples)), mean_pm_sd(s.duration.samples),
                         mean_pm_sd(s.energy.samples), number(power, 3), s.energy.method or "unknown"])
    return rows


def energy_table(records: list[TestRecord], tablefmt: str = "simple") -> str:
    """energy_rows as a tabulate table ("" when no test has a time and energy series)."""
    from tabulate import tabulate

    rows = energy_rows(records)
    if not rows:
        return ""
    return tabulate(rows, headers=ENERGY_HEADERS, tablefmt=tablefmt, disable_numparse=True)
