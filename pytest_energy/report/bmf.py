"""Bencher Metric Format (BMF): every metric of every benchmark, for `bencher run --adapter json --file PATH`.

The document (https://bencher.dev/docs/reference/bencher-metric-format, schema https://bencher.dev/bmf.json) is
`{benchmark: {measure: {"value": v, "lower_value": lo, "upper_value": hi}}}`. What goes in, decided here once
for both dashboard exports (github_benchmark.py uses `summarize` from this module):

* **Which metrics**: every metric of every benchmark, measured (time, energy) and deterministic (tokens,
  FLOPs, steps to a cut-off) alike: a dashboard tracks a change of either.
* **Value**: the mean of the metric's samples (its rounds), as every report of this package shows it.
* **Spread**: `lower_value`/`upper_value` are the smallest and largest sample of this run: what was observed,
  with no assumption of a distribution (mean ± sd would go below zero for a noisy energy). A metric with one
  sample has no spread, so both are left out rather than written as the value.
* **Names**: the benchmark is the pytest node id; the measure is the metric name with its unit, e.g.
  `energy_j (J)` (a Bencher measure created from BMF has no unit of its own, so the name carries it;
  a dimensionless metric has none). Bencher's own limits (bencher_valid: a measure name is 1 to 64 UTF-8
  bytes with no surrounding whitespace, a benchmark name 1 to 1024 bytes) are met by shortening a longer
  name to a prefix plus ` ~` and 8 hex digits of its SHA-1: stable from run to run, so its history continues,
  and said so in the notes.
* **Missing values**: a metric with no samples, or with a NaN or infinite sample, is left out and named in
  the notes; it is never written as 0 (JSON has no NaN, and a 0 would chart as a 100 % improvement).
* **Direction**: BMF has none; Bencher's thresholds decide per measure which side alerts. A higher-is-better
  metric (accuracy, throughput) goes in as it is: give its measure a lower-boundary threshold.
* **One benchmark once**: a node id met twice (a merged report of two machine classes) keeps the first; the
  others are named in the notes (Bencher keeps machines apart as testbeds: export each class on its own).

No pytest import, nothing heavy: this runs at the end of a run and in `python -m pytest_energy merge`.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import EnergyError, ReportError
from ..records import Metric, TestRecord
from .format import DIMENSIONLESS

# bencher_valid: ResourceName (a measure's name) and BenchmarkName, counted in UTF-8 bytes as Rust's str::len.
MEASURE_NAME_MAX_BYTES = 64
BENCHMARK_NAME_MAX_BYTES = 1024


@dataclass(frozen=True)
class Summary:
    """One metric of one benchmark as the dashboard exports give it."""

    value: float  # mean of the samples
    low: float  # smallest sample
    high: float  # largest sample
    sd: float | None  # sample standard deviation (n - 1); None with one sample, or when it overflows a float
    n: int


def summarize(metric: Metric) -> tuple[Summary | None, str]:
    """(Summary, "") or (None, why the metric cannot be exported)."""
    samples = list(metric.samples)
    if not samples:
        return None, "no samples"
    if any(isinstance(x, bool) or not isinstance(x, (int, float)) for x in samples):
        return None, "a sample is not a number"
    bad = sum(1 for x in samples if not math.isfinite(x))
    if bad:
        return None, f"{bad} of {len(samples)} samples are NaN or infinite (not measured)"
    n, low, high = len(samples), min(samples), max(samples)
    try:
        mean = math.fsum(samples) / n
    except OverflowError:  # the sum of finite samples can exceed a float; their mean cannot
        mean = math.inf
    if not math.isfinite(mean):
        top = max(abs(low), abs(high))
        mean = math.fsum(x / top for x in samples) / n * top
    # The true mean lies within [min, max]; rounding must not put the reported one outside the spread.
    mean = min(max(mean, low), high)
    sd: float | None = None
    if n > 1:
        try:
            sd = statistics.stdev(samples)
        except OverflowError:
            sd = None
        if sd is not None and not math.isfinite(sd):
            sd = None
    return Summary(mean, low, high, sd, n), ""


def fit_name(name: str, max_bytes: int, *, trim: bool) -> str:
    """`name` when it is non-empty, at most `max_bytes` UTF-8 bytes and (with `trim`) has no surrounding
    whitespace; else a prefix of it plus ` ~` and 8 hex digits of its SHA-1, within those limits."""
    data = name.encode("utf-8", "surrogatepass")
    clean = name.strip() if trim else name
    if name and clean == name and len(data) <= max_bytes:
        return name
    tag = "~" + hashlib.sha1(data).hexdigest()[:8]
    budget = max_bytes - len(tag) - 1
    head = clean.encode("utf-8", "surrogatepass")[:budget].decode("utf-8", "ignore")
    head = head.rstrip() if trim else head  # a cut may end on a space
    return f"{head} {tag}" if head else tag


def measure_name(metric: Metric) -> str:
    """'energy_j (J)', 'accuracy' (dimensionless): the metric and its unit, as one Bencher measure."""
    unit = (metric.unit or "").strip()
    return metric.name if unit in DIMENSIONLESS else f"{metric.name} ({unit})"


def bmf_document(records: Sequence[TestRecord], notes: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """The BMF document of `records`, in run order. What is left out or renamed is appended to `notes`."""
    notes = [] if notes is None else notes
    doc: dict[str, dict[str, Any]] = {}
    seen: set[str] = set()  # a test's first result claims its name, whether or not it has figures
    for record in records:
        bench = fit_name(record.nodeid, BENCHMARK_NAME_MAX_BYTES, trim=False)
        if bench != record.nodeid:
            notes.append(f"benchmark {record.nodeid!r} does not fit Bencher's name (1 to "
                         f"{BENCHMARK_NAME_MAX_BYTES} bytes): exported as {bench!r}")
        if bench in seen:
            notes.append(f"left out {record.nodeid}: a second result of the same test (another machine class?); "
                         "Bencher keeps machines apart as testbeds: export each on its own")
            continue
        seen.add(bench)
        measures: dict[str, Any] = {}
        for metric in record.metrics.values():
            summary, why = summarize(metric)
            if summary is None:
                notes.append(f"left out {record.nodeid} › {metric.name}: {why}")
                continue
            wanted = measure_name(metric)
            measure = fit_name(wanted, MEASURE_NAME_MAX_BYTES, trim=True)
            if measure != wanted:
                notes.append(f"measure {wanted!r} of {record.nodeid} does not fit Bencher's measure name (1 to "
                             f"{MEASURE_NAME_MAX_BYTES} bytes, no surrounding spaces): exported as {measure!r}")
            if measure in measures:
                notes.append(f"left out {record.nodeid} › {metric.name}: its measure name {measure!r} is taken "
                             "by another metric of the test")
                continue
            entry: dict[str, float] = {"value": summary.value}
            if summary.n > 1:
                entry.update(lower_value=summary.low, upper_value=summary.high)
            measures[measure] = entry
        if measures:
            doc[bench] = measures
        elif not record.metrics:
            notes.append(f"left out {record.nodeid}: no metrics")
    if not doc:
        notes.append("no benchmark has a metric to export: the file holds {} (bencher run will find no results)")
    return doc


def dump(doc: Any) -> str:
    """JSON as both dashboards read it; allow_nan=False: a NaN that slipped through is a bug, not a file."""
    return json.dumps(doc, indent=2, allow_nan=False) + "\n"


def bmf_text(records: Sequence[TestRecord], notes: list[str] | None = None) -> str:
    return dump(bmf_document(records, notes))


# --- writing the requested exports ----------------------------------------------------------------------

@dataclass(frozen=True)
class Export:
    """One requested dashboard file: what it is, the option that asked for it, where, its text and notes."""

    what: str
    flag: str
    path: str
    text: str
    notes: tuple[str, ...] = ()


def export_targets(config: Any) -> list[tuple[str, str]]:
    """[(path, flag)] of the exports `config` asks for: for the start-up check that each can be written."""
    return [(path, flag) for path, flag in ((getattr(config, "bmf_path", None), "--energy-bmf"),
                                            (getattr(config, "github_benchmark_path", None),
                                             "--energy-github-benchmark")) if path]


def exports(records: Sequence[TestRecord], config: Any, outcomes: Mapping[str, Any] | None = None,
            *, flags: tuple[str, str] = ("--energy-bmf", "--energy-github-benchmark")) -> list[Export]:
    """The texts of the exports `config` asks for (`bmf_path`, `github_benchmark_path`; anything with those
    attributes: SessionConfig, or merge's arguments). `outcomes`: node id -> Outcome or its verdict dicts,
    shown beside each github-action-benchmark entry. Pure: nothing is written."""
    out = []
    bmf_path = getattr(config, "bmf_path", None)
    if bmf_path:
        notes: list[str] = []
        text = bmf_text(records, notes)
        out.append(Export("Bencher BMF file", flags[0], str(bmf_path), text, tuple(notes)))
    github_path = getattr(config, "github_benchmark_path", None)
    if github_path:
        from .github_benchmark import github_benchmark_text

        notes = []
        text = github_benchmark_text(records, notes, outcomes=outcomes)
        out.append(Export("github-action-benchmark file", flags[1], str(github_path), text, tuple(notes)))
    return out


def write_exports(records: Sequence[TestRecord], config: Any, outcomes: Mapping[str, Any] | None = None,
                  *, flags: tuple[str, str] = ("--energy-bmf", "--energy-github-benchmark")
                  ) -> tuple[list[str], list[str], list[str]]:
    """Write each requested export on its own (one that fails does not stop the other).

    Returns (paths written, errors, notes); each error and note names its option."""
    from ..files import write_atomic

    written: list[str] = []
    errors: list[str] = []
    notes: list[str] = []
    for export in exports(records, config, outcomes, flags=flags):
        notes += [f"{export.flag}: {note}" for note in export.notes]
        try:
            Path(export.path).parent.mkdir(parents=True, exist_ok=True)
            write_atomic(export.path, export.text, error=ReportError, what=export.what)
            written.append(os.fspath(export.path))
        except (OSError, EnergyError) as exc:
            errors.append(f"cannot write {export.what} {export.path} ({export.flag}): {exc}")
    return written, errors, notes
