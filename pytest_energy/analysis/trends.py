"""The stored run histories as trends: per test and metric, the runs in order, where a history restarted,
and the band the gate would accept for the next run (`python -m pytest_energy history`, docs/history.md).

The band is the gate's own: `gate.compare.compare_metric` is asked to judge a hypothetical next run like the
latest saved one (same rounds, same spread), with the machine class's pooled noise (`gate.judge.pool_histories`)
and, where the runs were probed, a probe at the history's geometric mean (a machine as fast as usual). Its
`Verdict.limit` is the value beyond which that run is a REGRESSION; judged once more with the direction
flipped, the same rule gives the value beyond which it is IMPROVED. Nothing of the rule is re-derived here.

Restarts are not stored as such: a metric whose verdict was REGRESSION or IMPROVED starts a new history
(gate.baselines.append_run), dropping its older runs while the test's other metrics keep theirs. So a
history that begins after runs the test's other metrics still hold began with a restart (or the metric was
added then: the file cannot tell the two apart). A restart of every metric at once leaves no trace.

Pure data; the gate is imported inside the functions that need it (the plugin never loads this module).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from ..errors import UsageError

if TYPE_CHECKING:
    from ..gate.baselines import BaselineEntry
    from ..gate.judge import HistoryContext

__all__ = ["DEFAULT_METRICS", "TrendRun", "Band", "MetricTrend", "metric_matches", "node_matcher",
           "machine_label", "history_contexts", "metric_trend", "trends"]

# What `history` shows without --metric: the two figures every test has (a protocol test's are prefixed,
# e.g. "inference.energy_j").
DEFAULT_METRICS = ("energy_j", "duration_s")


@dataclass(frozen=True)
class TrendRun:
    """One saved run of one metric: the mean, sd (n - 1) and count of its rounds, and when and at which
    commit it was saved. `restart`: this metric's history starts afresh at this run."""

    run_id: str
    datetime: str  # ISO 8601, as stored
    commit: str | None
    mean: float
    sd: float
    n: int
    restart: bool = False

    @property
    def short_commit(self) -> str:
        return (self.commit or "")[:8] or "n/a"

    @property
    def date(self) -> str:
        return self.datetime[:16].replace("T", " ")  # minutes are enough to tell runs apart


@dataclass(frozen=True)
class Band:
    """What the gate would accept for the next run of one metric (metric units).

    expected: the value the next run is expected to have; regression_limit: beyond it (above when lower
    is better) the next run is a REGRESSION (`Verdict.limit`); improvement_limit: beyond it the other way,
    IMPROVED. rule: the gate rule that drew it, e.g. "history: 3 runs, pooled".
    """

    expected: float | None
    regression_limit: float | None
    improvement_limit: float | None
    rule: str
    tolerance: float

    @property
    def low(self) -> float | None:
        return _ordered(self.regression_limit, self.improvement_limit)[0]

    @property
    def high(self) -> float | None:
        return _ordered(self.regression_limit, self.improvement_limit)[1]


def _ordered(a: float | None, b: float | None) -> tuple[float | None, float | None]:
    if a is None or b is None:
        return (a, b) if b is None else (b, a)
    return (min(a, b), max(a, b))


@dataclass(frozen=True)
class MetricTrend:
    """One test's history of one metric. `band` is None when the gate would not use the history rule
    (fewer than 3 usable runs): `band_note` says why."""

    nodeid: str
    metric: str
    unit: str
    better: str
    machine_class: str
    runs: tuple[TrendRun, ...]
    band: Band | None = None
    band_note: str = ""
    baseline_file: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def last(self) -> float:
        return self.runs[-1].mean

    @property
    def trend_pct(self) -> float | None:
        """Change from the first to the last run of the history, in % (None: one run, or a first mean of 0)."""
        if len(self.runs) < 2 or self.runs[0].mean == 0:
            return None
        return (self.runs[-1].mean / self.runs[0].mean - 1.0) * 100.0

    @property
    def restarts(self) -> list[TrendRun]:
        return [r for r in self.runs if r.restart]


# --- selection --------------------------------------------------------------------------------------------

def metric_matches(name: str, wanted: str) -> bool:
    """'energy_j' selects 'energy_j' and any protocol's 'inference.energy_j', not 'wall_energy_j'."""
    return name == wanted or name.endswith("." + wanted)


_TOKEN = re.compile(r"\(|\)|[^\s()]+")
_KEYWORDS = ("and", "or", "not")


def node_matcher(expr: str | None):
    """A predicate on node ids from a -k expression: words are case-insensitive substrings of the node id,
    combined with `and`, `or`, `not` and parentheses (like pytest -k, but on the whole node id, file path
    included). An empty expression matches everything; a malformed one raises UsageError."""
    if expr is None or not expr.strip():
        return lambda nodeid: True
    tokens = _TOKEN.findall(expr)
    pos = 0

    def peek() -> str | None:
        return tokens[pos] if pos < len(tokens) else None

    def take() -> str:
        nonlocal pos
        tok = tokens[pos]
        pos += 1
        return tok

    def bad(why: str) -> UsageError:
        return UsageError(f"-k {expr!r}: {why}; expected words combined with and, or, not and parentheses")

    def or_expr():
        parts = [and_expr()]
        while peek() == "or":
            take()
            parts.append(and_expr())
        return lambda s: any(p(s) for p in parts)

    def and_expr():
        parts = [not_expr()]
        while peek() == "and":
            take()
            parts.append(not_expr())
        return lambda s: all(p(s) for p in parts)

    def not_expr():
        if peek() == "not":
            take()
            inner = not_expr()
            return lambda s: not inner(s)
        return atom()

    def atom():
        tok = peek()
        if tok is None:
            raise bad("unexpected end")
        if tok == "(":
            take()
            inner = or_expr()
            if peek() != ")":
                raise bad("missing ')'")
            take()
            return inner
        if tok == ")" or tok in _KEYWORDS:
            raise bad(f"unexpected {tok!r}")
        word = take().lower()
        return lambda s: word in s

    predicate = or_expr()
    if peek() is not None:
        raise bad(f"unexpected {peek()!r}")
    return lambda nodeid: predicate(nodeid.lower())


# --- machine classes and the gate's context --------------------------------------------------------------

def machine_label(machine: Mapping[str, Any]) -> str:
    """A readable name of the machine class (the fingerprint keys that decide comparability), e.g.
    'estimate · Intel(R) Xeon(R) Processor · 10 W/core' or 'nvml-counter · 2x NVIDIA H100 80GB HBM3'."""
    from ..gate.baselines import comparable_fingerprint

    key = comparable_fingerprint(dict(machine))
    gpus = key.get("gpus") or []
    parts = [str(key.get("method") or "unknown method")]
    if gpus:
        names = [str(g) for g in gpus]
        parts.append(f"{len(names)}x {names[0]}" if len(set(names)) == 1 else ", ".join(names))
    elif key.get("cpu_model"):
        parts.append(str(key["cpu_model"]))
    if key.get("estimate_watts_per_core"):
        parts.append(f"{key['estimate_watts_per_core']:g} W/core")
    if key.get("distributed"):
        parts.append(str(key["distributed"]))
    return " · ".join(parts)


def _probed(entry: BaselineEntry) -> bool:
    """Whether the gate divides this test's wall-clock metrics by the probe: its runs carry probes of the
    probe version this interpreter runs (the gate probes unless the meter is NVML)."""
    from ..measure.probe import PROBE_ID

    return any(run.get("probe_id") == PROBE_ID and run.get("probe_s") for run in entry.runs.values())


def history_contexts(entries: Iterable[BaselineEntry]) -> dict[tuple[str, bool], HistoryContext]:
    """The gate's pooled noise per (machine class, probing), from every stored history (gate.judge)."""
    from ..gate.judge import pool_histories

    entries = list(entries)
    out: dict[tuple[str, bool], HistoryContext] = {}
    for entry in entries:
        key = (machine_label(entry.machine), _probed(entry))
        if key not in out:
            out[key] = pool_histories(entries, entry.machine, key[1])
    return out


# --- one trend --------------------------------------------------------------------------------------------

def _runs(entry: BaselineEntry, name: str) -> tuple[TrendRun, ...]:
    history = entry.history.get(name, [])
    if not history:
        return ()
    # The test's oldest run still held by any metric: a history starting later has restarted.
    held = [entry.runs.get(h.run_id or "", {}).get("datetime") or "" for runs in entry.history.values()
            for h in runs]
    oldest = min((d for d in held if d), default="")
    out = []
    for i, h in enumerate(history):
        run = entry.runs.get(h.run_id or "", {})
        when = str(run.get("datetime") or "")
        out.append(TrendRun(run_id=h.run_id or "", datetime=when, commit=run.get("commit"), mean=h.mean, sd=h.sd,
                            n=h.n, restart=i == 0 and bool(when) and when > oldest))
    return tuple(out)


def _band(entry: BaselineEntry, name: str, context: HistoryContext | None, tolerance: float) -> tuple[Band | None,
                                                                                                  str]:
    """The gate's verdict on a next run like the latest saved one, read for its limits (module docstring)."""
    from ..gate.compare import compare_metric
    from ..gate.history import MIN_HISTORY_RUNS, probe_exponent
    from ..measure.probe import PROBE_ID
    from ..records import Better

    metric = entry.metrics[name]
    probing = context.probing if context is not None else False
    history = entry.history_for(name, PROBE_ID if probing else None)
    exponent = probe_exponent(metric.unit) if probing else 0
    probes = [h.probe for h in history if h.probe]
    current_probe = math.exp(math.fsum(math.log(p) for p in probes) / len(probes)) if probes else None
    pooled = context.pooled_for(metric.unit, name) if context is not None else None

    def judged(m):
        return compare_metric(m, m, tolerance, history=history, pooled=pooled, current_probe=current_probe,
                              exponent=exponent if current_probe else 0)

    verdict = judged(metric)
    if not verdict.by_history:
        return None, f"fewer than {MIN_HISTORY_RUNS} usable runs: the gate compares the next run's rounds " \
                     f"with the latest run's (within-run rule), no band"
    flipped = Better.HIGHER if str(metric.better) == Better.LOWER.value else Better.LOWER
    other = judged(replace(metric, better=flipped))
    return Band(expected=verdict.baseline_value, regression_limit=verdict.limit, improvement_limit=other.limit,
                rule=verdict.rule, tolerance=tolerance), ""


def metric_trend(entry: BaselineEntry, name: str, *, context: HistoryContext | None = None,
                 tolerance: float | None = None, baseline_file: str = "") -> MetricTrend | None:
    """The trend of metric `name` of one stored test; None when the metric keeps no history (deterministic
    metrics, or absent). `context`: the machine class's pooled noise (history_contexts); without it the
    band is the gate's unpooled one. `tolerance`: the gate's default (--energy-tolerance) when None."""
    from ..gate import DEFAULT_TOLERANCE
    from ..records import Kind

    metric = entry.metrics.get(name)
    if metric is None or metric.kind != Kind.MEASURED:
        return None
    runs = _runs(entry, name)
    if not runs:
        return None
    band, note = _band(entry, name, context, DEFAULT_TOLERANCE if tolerance is None else tolerance)
    return MetricTrend(nodeid=entry.nodeid, metric=name, unit=metric.unit, better=str(metric.better),
                       machine_class=machine_label(entry.machine), runs=runs, band=band, band_note=note,
                       baseline_file=baseline_file)


def trends(entries: Mapping[str, BaselineEntry], metrics: Sequence[str] = DEFAULT_METRICS, *,
           match: str | None = None, tolerance: float | None = None,
           baseline_file: Callable[[str], str] | None = None) -> list[MetricTrend]:
    """Every selected test's trend of every metric matching one of `metrics` (metric_matches), sorted by
    node id then metric. `match`: a -k expression on the node id (node_matcher). `baseline_file(nodeid)`
    names the file each test lives in. The gate's pool is fitted on every entry, selected or not, as the
    gate would."""
    selected = node_matcher(match)
    contexts = history_contexts(entries.values())
    out = []
    for nodeid in sorted(entries):
        if not selected(nodeid):
            continue
        entry = entries[nodeid]
        context = contexts[(machine_label(entry.machine), _probed(entry))]
        for name in sorted(entry.metrics):
            if any(metric_matches(name, w) for w in metrics):
                t = metric_trend(entry, name, context=context, tolerance=tolerance,
                                 baseline_file=baseline_file(nodeid) if baseline_file else "")
                if t is not None:
                    out.append(t)
    return out
