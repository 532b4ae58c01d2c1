"""The `--energy-json` report: pytest-benchmark's layout with an `energy` block beside `stats`.

Every file we write loads in `pytest-benchmark compare` (table, --histogram, --csv), github-action-benchmark's
`pytest` reader and Bencher's `python_pytest` adapter, which read `machine_info` and `commit_info` (objects),
and per benchmark `group`, `name`, `fullname` and a complete `stats` block in seconds. So `stats` is never
null. What it describes, in this order (`energy.series` names it):

- "rounds": the `energy(fn)` rounds (or a marker-only test's rounds), one sample per round;
- the first labelled series: `per_call` for a pytest-benchmark test (time per call, one sample per
  energy sample), `finetune` (training time to the cut-off), `inference` (the metered pass), or an
  `energy.measure(label)` window;
- "test call": a test with no time series of its own (only `record_metric` figures): the test call's wall
  time as pytest measured it, one round.

Everything about energy lives under keys those tools ignore.
"""

from __future__ import annotations

import bisect
import json
import math
import statistics
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .. import __version__
from ..errors import UsageError
from ..records import SCHEMA_VERSION, TestRecord, Verdict
from .format import mean_sd
from .series import primary_series
from .tables import footprint_of, hulk_table_dict, hulk_tables

if TYPE_CHECKING:
    from ..gate.baselines import BaselineEntry
    from ..records import RunResult
    from .series import Series


# --- pytest-benchmark's `stats` block: a format of its JSON, so it is written here, not in the gate ----------

def _quartiles(sorted_data: list[float]) -> tuple[float, float]:
    """Q1 and Q3 exactly as pytest-benchmark computes them, so our tables line up with its JSON.

    Even n: medians of the lower and upper halves (Wikipedia "method 1/2"); odd n: "method 3", a weighted
    average of the two order statistics around the quarter positions; n = 1: the sample itself.
    """
    n = len(sorted_data)
    d = sorted_data
    if n == 1:
        return d[0], d[0]
    if n % 2 == 0:
        return statistics.median(d[: n // 2]), statistics.median(d[n // 2:])
    k, rest = divmod(n, 4)
    if rest == 1:
        return 0.25 * d[k - 1] + 0.75 * d[k], 0.75 * d[3 * k] + 0.25 * d[3 * k + 1]
    return 0.75 * d[k] + 0.25 * d[k + 1], 0.25 * d[3 * k + 1] + 0.75 * d[3 * k + 2]


def describe(samples: Sequence[float]) -> dict[str, Any]:
    """pytest-benchmark's `stats` block for `samples`, in the samples' own unit.

    Keys: min, max, mean, stddev, median, iqr, q1, q3, iqr_outliers, stddev_outliers, outliers ("a;b" =
    stddev outliers;IQR outliers), ld15iqr, hd15iqr, ops, total, rounds, iterations (always 1: every sample
    is one round). stddev is the sample (n-1) standard deviation, 0 for a single sample; ops is 1/mean
    (rounds/total), 0 when the total is 0. Raises UsageError for no samples: there is nothing to describe.
    """
    data = [float(x) for x in samples]
    if not data:
        raise UsageError("describe() needs at least one sample; got none")
    n = len(data)
    s = sorted(data)
    mean = statistics.mean(data)
    stddev = statistics.stdev(data) if n > 1 else 0.0
    q1, q3 = _quartiles(s)
    iqr = q3 - q1
    low_fence, high_fence = q1 - 1.5 * iqr, q3 + 1.5 * iqr
    iqr_outliers = sum(1 for x in data if x < low_fence or x > high_fence)
    stddev_outliers = sum(1 for x in data if x < mean - stddev or x > mean + stddev)
    if n == 1:
        ld15iqr = hd15iqr = data[0]
    else:
        ld15iqr = s[bisect.bisect_left(s, low_fence)]
        # pytest-benchmark takes the datum at bisect_right of the upper fence (the first one above it, or
        # the maximum); we keep that quirk so hd15iqr matches its reports for the same samples.
        pos = bisect.bisect_right(s, high_fence)
        hd15iqr = s[-1] if pos == n else s[pos]
    total = math.fsum(data)
    return {
        "min": s[0],
        "max": s[-1],
        "mean": mean,
        "stddev": stddev,
        "median": statistics.median(s),
        "iqr": iqr,
        "q1": q1,
        "q3": q3,
        "iqr_outliers": iqr_outliers,
        "stddev_outliers": stddev_outliers,
        "outliers": f"{stddev_outliers};{iqr_outliers}",
        "ld15iqr": ld15iqr,
        "hd15iqr": hd15iqr,
        "ops": n / total if total else 0,
        "total": total,
        "rounds": n,
        "iterations": 1,
    }



def json_safe(value: Any) -> Any:
    """JSON has no NaN: unknown values become null rather than an invalid file."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def json_text(data: Any) -> str:
    """The report as written: sorted keys, 2-space indent, unknown values as null."""
    return json.dumps(json_safe(data), indent=2, sort_keys=True, allow_nan=False) + "\n"


def _summary(samples: list[float]) -> dict[str, Any]:
    mean, sd = mean_sd(samples)
    return {"mean": mean, "stddev": sd, "n": len(samples), "samples": list(samples)}


def baseline_block(entry: BaselineEntry | None, series: Series | None) -> dict[str, Any] | None:
    """The baseline a benchmark was compared with, for its primary series: what the charts draw."""
    if entry is None or series is None:
        return None
    out: dict[str, Any] = {"datetime": entry.datetime, "commit": entry.commit.get("id"), "method": entry.method}
    for key, metric in (("duration_s", series.duration), ("energy_j", series.energy)):
        stored = entry.metrics.get(metric.name)
        if stored is not None and stored.samples:
            out[key] = _summary(stored.samples)
    return out if "duration_s" in out or "energy_j" in out else None


def verdict_json(v: Verdict) -> dict[str, Any]:
    """A verdict as the report's `comparison` lists it: the fields it has always had. The rule kind is left
    out (it would change every report file); reading a report back infers it from `rule` (records)."""
    d = v.to_dict()
    del d["rule_kind"]
    return d


def benchmark_entry(record: TestRecord, options: dict[str, Any], verdicts: list[dict[str, Any]] | None = None,
                    footprint: dict[str, Any] | None = None, *, call_duration_s: float | None = None,
                    baseline: BaselineEntry | None = None, recheck: dict[str, Any] | None = None
                    ) -> dict[str, Any] | None:
    """One benchmark in pytest-benchmark's layout; None when there is no time at all to put in `stats`.
    `recheck`: the second look in this job (records.Recheck.to_dict), kept under `energy` only when there was one."""
    series = primary_series(record)
    durations = series.duration.samples if series else []
    energies = series.energy.samples if series else []
    windows = [w for w in record.windows if series and w.label == (series.label or "round")]
    devices: dict[str, dict[str, Any]] = {}
    for w in windows:
        for d in w.devices:
            entry = devices.setdefault(d.device, {"name": d.name, "method": d.method, "energy_j": []})
            entry["energy_j"].append(d.energy_j)
    per_rank: dict[str, dict[str, Any]] = {}  # torchrun: each rank's part of the combined windows
    for w in windows:
        for part in w.per_rank or ():
            entry = per_rank.setdefault(str(part["rank"]), {"host": part["host"], "energy_j": [], "duration_s": []})
            entry["energy_j"].append(part["energy_j"])
            entry["duration_s"].append(part["duration_s"])
    net = [w.net_energy_j for w in windows if w.net_energy_j is not None]
    peaks = [w.peak_memory_bytes for w in windows if w.peak_memory_bytes is not None]
    mean_e, _ = mean_sd(energies)
    mean_t, _ = mean_sd(durations)
    series_name = series.title if series else None
    if not durations and call_duration_s is not None and math.isfinite(call_duration_s):
        durations, series_name = [call_duration_s], "test call"
    if not durations:
        return None
    stats = describe(durations)
    stats["data"] = list(durations)
    energy = {
        "unit": "J",
        "series": series_name,
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
        "protocols": [p.to_dict() for p in record.protocols],
        "footprint": footprint,
        "comparison": verdicts,
        "baseline": baseline_block(baseline, series),
    }
    if per_rank:
        energy["per_rank"] = per_rank
    if recheck is not None:
        energy["recheck"] = recheck
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


def build_report(run: RunResult) -> dict[str, Any]:
    """The report of a RunResult. A benchmark read back from a report (RunResult.from_report) is written as
    it was read."""
    benchmarks, left_out = [], []
    for b in run.benchmarks:
        if b.reported is not None:
            benchmarks.append(b.reported)
            continue
        options = {"rounds": b.settings.rounds, "warmup": b.settings.warmup, "reference": b.settings.reference,
                   "meter": run.meter.name}
        verdicts = [verdict_json(v) for v in b.outcome.verdicts] if b.outcome is not None else None
        carbon = run.config.carbon if run.config is not None else None
        recheck = b.outcome.recheck if b.outcome is not None else None
        entry = benchmark_entry(b.record, options, verdicts, footprint_of(b.record, carbon),
                                call_duration_s=b.call_duration_s, baseline=run.baselines.get(b.record.nodeid),
                                recheck=recheck.to_dict() if recheck is not None else None)
        if entry is None:
            # Never `"stats": null`: it makes pytest-benchmark compare drop the whole file.
            left_out.append({"fullname": b.record.nodeid, "reason": "no time measured: nothing for `stats`",
                             "metrics": {name: m.to_dict() for name, m in b.record.metrics.items()}})
            continue
        # The fingerprint it was judged with (an xdist worker's own GPUs) and where it ran; merge reads both.
        for key, value in (("machine", b.machine), ("placement", b.placement)):
            if value is not None:
                entry["energy"][key] = value
        benchmarks.append(entry)
    session = {**run.session_info, "schema": SCHEMA_VERSION}
    if left_out:
        session["not_in_benchmarks"] = left_out
    report = {
        "machine_info": dict(run.machine_info or {}),  # objects, never null: Bencher requires both
        "commit_info": dict(run.commit_info or {}),
        "benchmarks": benchmarks,
        "datetime": run.datetime,
        "version": __version__,
        "energy": session,
    }
    tables = hulk_tables(run)
    reference = run.hulk_reference
    if tables or (reference is not None and reference.entry):
        # HULK Tables 3 and 4 as data (per table: reference, tasks, rows of costs, scores and overall) and the
        # stored reference scored against; only when there are some; a key pytest-benchmark's readers ignore.
        report["hulk"] = {"reference": reference.to_dict() if reference is not None else None,
                          "tables": [hulk_table_dict(t) for t in tables]}
    return report
