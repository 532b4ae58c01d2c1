"""The `--energy-json` report: pytest-benchmark's layout with an `energy` block beside `stats`.

Tools that ingest pytest-benchmark JSON (Bencher, github-action-benchmark) read `stats` (seconds)
unchanged; everything about energy lives under keys they ignore.
"""

from __future__ import annotations

import math
from typing import Any

from .. import __version__
from ..gate.stats import describe
from ..records import TestRecord
from .format import mean_sd
from .series import primary_series
from .tables import footprint_of, hulk_tables


def json_safe(value: Any) -> Any:
    """JSON has no NaN: unknown values become null rather than an invalid file."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def benchmark_entry(record: TestRecord, options: dict[str, Any], verdicts: list[dict] | None = None,
                    footprint: dict[str, Any] | None = None) -> dict[str, Any]:
    series = primary_series(record)
    durations = series.duration.samples if series else []
    energies = series.energy.samples if series else []
    windows = [w for w in record.windows if series and w.label == (series.label or "round")]
    devices: dict[str, dict[str, Any]] = {}
    for w in windows:
        for d in w.devices:
            entry = devices.setdefault(d.device, {"name": d.name, "method": d.method, "energy_j": []})
            entry["energy_j"].append(d.energy_j)
    net = [w.net_energy_j for w in windows if w.net_energy_j is not None]
    peaks = [w.peak_memory_bytes for w in windows if w.peak_memory_bytes is not None]
    mean_e, _ = mean_sd(energies)
    mean_t, _ = mean_sd(durations)
    stats = describe(durations) if durations else None
    if stats is not None:
        stats["data"] = list(durations)
    energy = {
        "unit": "J",
        "series": series.title if series else None,
        "method": series.energy.method if series else None,
        "stats": describe(energies) if energies else None,
        "data": list(energies),
        "power_w": mean_e / mean_t if mean_t and mean_t > 0 else None,
        "net_energy_j": describe(net) if net else None,
        "idle_power_w": windows[0].idle_power_w if windows else None,
        "devices": devices,
        "peak_memory_bytes": max(peaks) if peaks else None,
        "peak_memory_source": windows[0].peak_memory_source if windows else None,
        "warnings": sorted({m for w in record.windows for m in w.warnings}),
        "metrics": {name: m.to_dict() for name, m in record.metrics.items()},
        "protocols": record.protocols,
        "footprint": footprint,
        "comparison": verdicts,
    }
    return {
        "group": record.group,
        "name": record.name,
        "fullname": record.nodeid,
        "params": record.params,
        "param": record.nodeid.partition("[")[2].rstrip("]") or None,
        "extra_info": record.extra_info,
        "options": options,
        "stats": stats,
        "energy": energy,
    }


def build_report(run: Any) -> dict[str, Any]:
    """The report of a RunResult (pytest_energy.session)."""
    benchmarks = []
    for b in run.benchmarks:
        options = {"rounds": b.settings.rounds, "warmup": b.settings.warmup, "reference": b.settings.reference,
                   "meter": run.meter.name}
        verdicts = [v.to_dict() for v in b.outcome.verdicts] if b.outcome is not None else None
        benchmarks.append(benchmark_entry(b.record, options, verdicts, footprint_of(b.record, run.config.carbon)))
    report = {
        "machine_info": run.machine_info,
        "commit_info": run.commit_info,
        "benchmarks": benchmarks,
        "datetime": run.datetime,
        "version": __version__,
        "energy": run.session_info,
    }
    tables = hulk_tables(run)
    reference = getattr(run, "hulk_reference", None)
    if tables or (reference and reference.get("entry")):
        # HULK Tables 3 and 4 as data (per table: reference, tasks, rows of costs, scores and overall) and the
        # stored reference scored against; only when there are some; a key pytest-benchmark's readers ignore.
        report["hulk"] = {"reference": reference, "tables": [t.to_dict() for t in tables]}
    return report
