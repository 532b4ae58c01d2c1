"""github-action-benchmark's `customSmallerIsBetter` input: one entry per benchmark and metric.

The format (the action's README, "customBiggerIsBetter and customSmallerIsBetter"; its src/extract.ts parses
the file with zod) is a JSON list of `{"name", "unit", "value", "range", "extra"}`: `name`, `unit` and
`value` required, `range` and `extra` optional strings. The action matches entries between runs by `name`,
charts `value` per name and alerts when it grows past its threshold. What goes in:

* **Which metrics**: every lower-is-better metric of every benchmark, measured (time, energy) and
  deterministic (tokens, FLOPs, steps to a cut-off) alike; value = the mean of its samples
  (`bmf.summarize`, shared with the Bencher export).
* **Higher is better** (accuracy, throughput): left out, and the notes list them by metric. Under
  customSmallerIsBetter their rise would alert as a regression; a conversion (1 - accuracy, 1/throughput)
  would chart a quantity nobody measured, with a mean and spread that are not the run's. To chart them,
  `github_benchmark_document(records, better="higher")` builds their customBiggerIsBetter list (a second
  step of the action with that tool).
* **Name**: `<node id> › <metric>`, stable from run to run, unique in the file (an entry whose name is
  already taken, e.g. the same test from a second machine class of a merged report, is left out and noted).
* **Unit**: the metric's; `""` for a dimensionless one.
* **Range**: `± sd`, the sample standard deviation (n - 1) of the rounds: the notation of the action's own
  readers (benchmarkdotnet, catch2, cargo), which it parses to rescale the range with the unit. Left out
  with one sample. `extra` gives the rounds, their min and max (the Bencher export's spread), the kind, the
  energy method and the gate's verdict when known.
* **Missing values**: a metric with no samples or a NaN/infinite sample is left out and noted; never
  written as 0 (the action's zod coerces a null value to 0, which would chart as a 100 % improvement).
* **Empty run**: `[]`, and a note: the action stops on it ("No benchmark result was found").

No pytest import.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..records import Better, TestRecord
from .bmf import dump, summarize
from .format import DIMENSIONLESS, change, is_number

SEPARATOR = " › "  # between node id and metric, as the reports' tables write a test's series
TOOLS = {Better.LOWER: "customSmallerIsBetter", Better.HIGHER: "customBiggerIsBetter"}


def _num(x: float) -> str:
    return f"{x:.6g}"


def _verdicts(outcome: Any) -> dict[str, tuple[str, Any]]:
    """metric -> (verdict, change %) of an Outcome (records.Outcome)."""
    return {str(v.metric): (str(v.verdict), v.change_pct) for v in getattr(outcome, "verdicts", ())}


def github_benchmark_document(records: Sequence[TestRecord], notes: list[str] | None = None, *,
                              outcomes: Mapping[str, Any] | None = None,
                              better: str = Better.LOWER) -> list[dict[str, Any]]:
    """The entries of `records` whose metrics are `better` (lower: customSmallerIsBetter; higher:
    customBiggerIsBetter), in run order. What is left out is appended to `notes`."""
    notes = [] if notes is None else notes
    better = Better(better)
    tool = TOOLS[better]
    entries: list[dict[str, Any]] = []
    names: set[str] = set()
    other_way: dict[str, int] = {}  # metric name -> how many benchmarks it was left out of
    for record in records:
        verdicts = _verdicts((outcomes or {}).get(record.nodeid))
        for metric in record.metrics.values():
            if str(metric.better) != better.value:
                other_way[metric.name] = other_way.get(metric.name, 0) + 1
                continue
            summary, why = summarize(metric)
            name = f"{record.nodeid}{SEPARATOR}{metric.name}"
            if summary is None:
                notes.append(f"left out {name}: {why}")
                continue
            if name in names:
                notes.append(f"left out {name}: an entry of that name is already in the file (the same test "
                             "from another machine class?); the action matches runs by name")
                continue
            names.add(name)
            unit = "" if (metric.unit or "") in DIMENSIONLESS else str(metric.unit)
            entry: dict[str, Any] = {"name": name, "unit": unit, "value": summary.value}
            if summary.sd is not None:
                entry["range"] = f"± {_num(summary.sd)}"
            extra = [f"mean of {summary.n} round{'s' if summary.n != 1 else ''}"
                     + (f", min {_num(summary.low)}, max {_num(summary.high)}" if summary.n > 1 else ""),
                     f"kind: {metric.kind}"]
            if metric.method:
                extra.append(f"method: {metric.method}")
            if metric.name in verdicts:
                verdict, change_pct = verdicts[metric.name]
                extra.append(f"verdict: {verdict}" + (f" ({change(change_pct)} vs baseline)"
                                                      if is_number(change_pct) else ""))
            entry["extra"] = "\n".join(extra)
            entries.append(entry)
    if other_way:
        listed = ", ".join(f"{name} ({n}x)" if n > 1 else name for name, n in other_way.items())
        direction = "higher" if better is Better.LOWER else "lower"
        notes.append(f"left out the metrics where {direction} is better, which {tool} would chart the wrong way "
                     f"round: {listed}")
    if not entries:
        notes.append("no benchmark has a metric to export: the file holds [] and github-action-benchmark stops "
                     "on it ('No benchmark result was found')")
    return entries


def github_benchmark_text(records: Sequence[TestRecord], notes: list[str] | None = None, *,
                          outcomes: Mapping[str, Any] | None = None, better: str = Better.LOWER) -> str:
    return dump(github_benchmark_document(records, notes, outcomes=outcomes, better=better))
