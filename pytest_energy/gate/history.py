"""The run-history rule: judge this run against the spread of the earlier runs' means (docs/statistics.md).

Rounds inside one run do not see run-to-run drift, which reaches tens of percent on shared CI runners, so
the within-run Welch rule (gate/compare.py) raises false alarms on unchanged code. Each baseline therefore
keeps, per measured metric, the last runs that saved it (`RunSummary`: mean, sd, n of its rounds, the run's
id and probe seconds), and with at least MIN_HISTORY_RUNS of them one current run -- one round is enough --
is judged on the log scale (drift is multiplicative):

    y_i  = ln(mean_i) - e ln(probe_i)          e = probe_exponent(unit): +1 wall time, -1 per wall second, else 0
    y    = ln(mean_now) - e ln(probe_now)

`pool` looks at every series (metric x test) of the machine class at once:

    y_ji = mu_j + g_i + v_ji      g_i: effect of run i shared by all series (what the probe did not remove)
    s_g^2    variance of the g_i (df m - 1, m runs)
    s0^2, d0 limma's prior of the series-specific variance (Smyth 2004, fitFDist), d0 <= MAX_PRIOR_DF;
             series much noisier than the rest are screened out of the fit (10 x the median, then F tests)

and `judge_against_history` one series with k runs:

    centre = mean_i (y_i - g_i)             the current run is never adjusted by other benchmarks, so a
                                            regression that hits the whole suite is not cancelled
    s_v^2  = var_i (y_i - g_i) / (1 - 1/c), moderated: (d0 s0^2 + (k-1) s_v^2) / (d0 + k - 1), unless the
             series is improbably noisy for the prior (F test at MODERATE_P): then its own variance, df k - 1
    se^2   = s_g^2 (1 + 1/m) + s~^2 (1 + 1/k)       df: Welch-Satterthwaite of the two parts
    bad    = sign (y - centre)                       sign = +1 when lower is better
    REGRESSION    bad > ln(1 + tol)  and  P(T_df > bad/se) < alpha          (alpha 0.001 per metric)
    IMPROVED      -bad > ln(1 + tol) and  P(T_df < bad/se) < alpha
    INCONCLUSIVE  beyond the tolerance but not significant; or within it while the (1 - BOUND_ALPHA)
                  upper bound of the bad shift exceeds INCONCLUSIVE_FACTOR x tol
    PASS          otherwise

Without a pool the same test runs with s_g = 0 and df = k - 1 (a plain prediction interval). With fewer
than MIN_HISTORY_RUNS usable runs `judge_against_history` returns None and the caller keeps the within-run
rule. A metric with a value <= 0 is compared on the linear scale, without probe and pool. Pure Python; no
pytest import.
"""

from __future__ import annotations

import math
import operator
import re
import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import chain, repeat
from typing import Optional, Union

from ..records import VerdictKind, is_finite_number
from . import HISTORY_LENGTH
from .stats import digamma, f_sf, t_isf, t_sf, trigamma, trigamma_inverse

__all__ = ["HISTORY_ALPHA", "BOUND_ALPHA", "INCONCLUSIVE_FACTOR", "MIN_HISTORY_RUNS", "HISTORY_LENGTH",
           "MAX_PRIOR_DF", "OUTLIER_P", "MODERATE_P", "RULE_PREFIX", "RunSummary", "Pooled", "HistoryVerdict",
           "judge_against_history", "pool", "fit_prior", "probe_exponent", "family"]

HISTORY_ALPHA = 0.001  # one-sided, per metric: a test has ~4 independent metric families, so < 1 % per test
BOUND_ALPHA = 0.05  # level of the "cannot rule out INCONCLUSIVE_FACTOR x tolerance" upper bound
# Shared with the within-run rule (gate/compare.py): "cannot rule out a regression of this many tolerances"
# makes a verdict INCONCLUSIVE.
INCONCLUSIVE_FACTOR = 2.0
MIN_HISTORY_RUNS = 3
MIN_SERIES_PER_RUN = 3  # a run effect g_i is estimated only from at least this many series
# The prior's df is capped: a test's metrics are near-copies of each other (duration, ms/example and
# examples/s are one measurement), so limma's d0 over-counts independent information.
MAX_PRIOR_DF = 20.0
# A series this improbably noisy for the pooled prior (e.g. a test using every core of a shared runner) is
# left out of the pool, so that one ungateable test cannot blunt the gate for the others.
OUTLIER_P = 0.001
# `judge_against_history` moderates a series only if its own variance is consistent with the prior at this
# level: one wrongly refused is merely tested on its own df (conservative), one wrongly moderated raises false
# alarms.
MODERATE_P = 0.05
RULE_PREFIX = "history"

_NAN = math.nan
_TIME_UNITS = ("s", "ms", "us", "µs", "ns", "min", "h")


# --- data ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RunSummary:
    """One earlier run of one metric: mean, sd (n - 1) and count of its rounds; the run's id (one per pytest
    session, shared by every test it saved) and its probe seconds (None: no usable probe)."""

    mean: float
    sd: float = 0.0
    n: int = 1
    run_id: str | None = None
    probe: float | None = None

    @classmethod
    def of(cls, samples: Sequence[float], run_id: str | None = None, probe: float | None = None) -> RunSummary:
        m, v = _mean_var([float(x) for x in samples])
        return cls(m, math.sqrt(v) if v == v else 0.0, len(samples), run_id, probe)


@dataclass(frozen=True)
class Pooled:
    """What all series of one machine class, noise family and probe treatment say about the noise (`pool`).

    s0_sq, d0: limma prior of the series-specific run-to-run variance of ln(metric) (d0 = 0: none).
    common_sq, common_df: variance of the run effect shared by all series, and its df (runs - 1).
    run_effects: run_id -> estimated shared effect g_i (log scale, centred); run_counts: series behind each.
    Computed from the stored histories only, never from the current run.
    """

    s0_sq: float = _NAN
    d0: float = 0.0
    common_sq: float = 0.0
    common_df: float = math.inf
    run_effects: Mapping[str, float] = field(default_factory=dict)
    run_counts: Mapping[str, int] = field(default_factory=dict)
    probe_normalised: bool = True
    n_series: int = 0
    n_runs: int = 0
    n_screened: int = 0  # series left out as much noisier than the pool


@dataclass(frozen=True)
class HistoryVerdict:
    verdict: VerdictKind
    rule: str  # e.g. "history: 5 runs, probe-normalised, pooled"
    p_value: float  # one-sided, for the direction the estimate moved (NaN: no test possible)
    change: float  # signed relative change of the current value against the expected one
    raw_change: float  # current mean against the geometric mean of the history's means, no corrections
    expected: float  # the value this run was expected to have, metric units (probe and run effects applied)
    bound: float  # the (1 - alpha) one-sided prediction bound in the bad direction, metric units
    limit: float  # the current value beyond which the verdict is REGRESSION (bound and tolerance together)
    k: int  # history runs used
    df: float = _NAN
    se: float = _NAN  # standard error of y - centre (log scale: ~ relative)
    scale: str = "log"
    probe_ratio: float = _NAN  # current probe / geometric mean of the history's probes
    hint: str = ""
    notes: list[str] = field(default_factory=list)


# --- which metrics follow the probe, and which pool together ---------------------------------------------

def probe_exponent(unit: str) -> int:
    """+1 for a duration, -1 for a rate per second, 0 otherwise (energy, memory, counts, ratios).

    Every duration and rate the plugin records is wall-clock (perf_counter), and wall-clock figures follow
    the probe on a shared runner. CPU time does not (docs/statistics.md): a metric of your own that is CPU
    time must not be in plain seconds -- give it a unit such as "cpu-s", and it is compared raw.
    """
    u = unit.strip()
    if u in _TIME_UNITS:
        return 1
    if u.endswith("/s"):
        return -1
    return 0


_TAIL = re.compile(r"_p(9\d|99\d*)$")  # latency quantiles p90..p999


def family(unit: str, name: str = "") -> str:
    """The noise family a metric is pooled with: time, tail (latency quantiles p90 and up), energy, memory or
    other. Families differ systematically in noise -- memory barely moves, a p99 latency jumps when the
    runner preempts the process for a moment -- and one prior over all of them would fit none."""
    u = unit.strip()
    if probe_exponent(u):
        return "tail" if _TAIL.search(name) else "time"
    if u == "J" or u.startswith("J/") or u in ("Wh", "kWh"):
        return "energy"
    if u in ("B", "bytes", "KiB", "MiB", "GiB"):
        return "memory"
    return "other"


# --- small helpers ---------------------------------------------------------------------------------------

def _mean_var(xs: Sequence[float]) -> tuple[float, float]:
    """Mean and (n-1) variance without overflow for values up to the float maximum; var NaN for n = 1."""
    n = len(xs)
    scale = max(map(abs, xs)) or 1.0
    zs = list(map(operator.truediv, xs, repeat(scale, n)))
    mz = math.fsum(zs) / n
    if n < 2:
        return mz * scale, _NAN
    # (z - mz) ** 2 with map: the pooling calls this for every stored series at start-up
    vz = math.fsum(map(operator.pow, map(operator.sub, zs, repeat(mz, n)), repeat(2, n))) / (n - 1)
    var = vz * scale * scale
    return mz * scale, (var if math.isfinite(var) else math.inf)


def _sq(x: float) -> float:
    return x * x  # inf on overflow, where x ** 2 raises OverflowError


def _exp(x: float) -> float:
    """exp without OverflowError: inf above the float range."""
    return math.inf if x > 709.78 else math.exp(x)


def _pct(x: float) -> str:
    return "n/a" if not math.isfinite(x) else f"{x * 100:+.1f} %"


def _has_probe(h: RunSummary) -> bool:
    return h.probe is not None and is_finite_number(h.probe) and h.probe > 0


def _valid(h: RunSummary) -> bool:
    mean, sd, n = h.mean, h.sd, h.n
    if mean.__class__ is float and sd.__class__ is float and n.__class__ is int:
        # What the store loads; pooling checks every run of every test at start-up. x - x is 0.0 exactly
        # for a finite float, NaN for an infinity or NaN.
        return mean - mean == 0.0 and sd - sd == 0.0 and sd >= 0 and n >= 1
    return is_finite_number(mean) and is_finite_number(sd) and sd >= 0 and isinstance(n, int) and n >= 1


def _y(h: RunSummary, e: float, normalise: bool) -> float:
    return math.log(h.mean) - (e * math.log(h.probe) if normalise else 0.0)  # type: ignore[arg-type]


# --- pooling over all series of a machine class -----------------------------------------------------------

def fit_prior(variances: Iterable[tuple[float, float]], max_df: float = MAX_PRIOR_DF) -> tuple[float, float] | None:
    """limma's fitFDist without covariates: (s0^2, d0) with s_j^2 ~ s0^2 F(d_j, d0), by the moments of
    ln s_j^2; d0 capped at `max_df` (s0^2 re-derived at the cap). None with fewer than 3 usable pairs or a
    zero median variance."""
    pairs = [(v, d) for v, d in variances if is_finite_number(v) and v >= 0 and is_finite_number(d) and d > 0]
    if len(pairs) < 3:
        return None
    med = statistics.median(v for v, _ in pairs)
    if not med > 0:
        return None
    floor = 1e-5 * med
    # A pool holds thousands of series but only a few distinct df: each df's terms are computed once.
    dfs = {d for _, d in pairs}
    dg, half_log, tri = ({d: f(d / 2) for d in dfs} for f in (digamma, math.log, trigamma))
    e = [math.log(max(v, floor)) - dg[d] + half_log[d] for v, d in pairs]
    n = len(e)
    emean = math.fsum(e) / n
    evar = math.fsum((x - emean) ** 2 for x in e) / (n - 1) - math.fsum(tri[d] for _, d in pairs) / n
    d0 = 2.0 * trigamma_inverse(evar) if evar > 0 else math.inf
    d0 = min(d0, max_df)
    s0_sq = math.exp(emean) if math.isinf(d0) else math.exp(emean + digamma(d0 / 2) - math.log(d0 / 2))
    return s0_sq, d0


class _Design:
    """The series of one pool as index arrays: run ids numbered once, so that the alternating means below
    run over lists with `map` instead of dicts (a 10,000-test suite pools 20,000 series at start-up)."""

    def __init__(self, series: Sequence[Mapping[str, float]]) -> None:
        number = {rid: i for i, rid in enumerate(dict.fromkeys(chain.from_iterable(series)))}
        self.idx: list[list[int]] = [list(map(number.__getitem__, s)) for s in series]
        self.ys: list[list[float]] = [list(s.values()) for s in series]
        self.ids = list(number)


def _two_way(design: _Design, members: Sequence[int], min_series: int) -> tuple[list[float], list[int]]:
    """Run effects g_i of y_ji = mu_j + g_i + v_ji over the series `members`, by alternating means (exact in
    one pass when every series has every run). Only runs in >= min_series of them get an effect.

    Returns g and the count of series behind each effect, indexed like design.ids (0.0 and 0: no effect).
    Every sum is math.fsum (exact, so independent of the order of the terms).
    """
    n_ids = len(design.ids)
    counts = [0] * n_ids
    for r, c in Counter(chain.from_iterable(map(design.idx.__getitem__, members))).items():
        counts[r] = c
    runs = [r for r in range(n_ids) if counts[r] and counts[r] >= min_series]
    effect_counts = [0] * n_ids
    for r in runs:
        effect_counts[r] = counts[r]
    # For each run with an effect: which member (position in `members`) has it, and its y there.
    at: dict[int, tuple[list[int], list[float]]] = {r: ([], []) for r in runs}
    for pos, j in enumerate(members):
        for r, y in zip(design.idx[j], design.ys[j]):
            slot = at.get(r)
            if slot is not None:
                slot[0].append(pos)
                slot[1].append(y)
    g = [0.0] * n_ids
    sub, fsum = operator.sub, math.fsum
    for _ in range(200):
        mu = [fsum(map(sub, design.ys[j], map(g.__getitem__, design.idx[j]))) / len(design.ys[j]) for j in members]
        new = {r: fsum(map(sub, ys, map(mu.__getitem__, pos))) / len(ys) for r, (pos, ys) in at.items()}
        centre = fsum(new.values()) / len(new) if new else 0.0
        shift = 0.0
        for r, v in new.items():
            v -= centre
            shift = max(shift, abs(v - g[r]))
            g[r] = v
        if shift < 1e-13:
            break
    return g, effect_counts


def _specific_variance(ys: Sequence[float], idx: Sequence[int], g: Sequence[float],
                       inv_counts: Sequence[float] | None) -> float:
    """var_i(y_i - g_i), corrected for g_i having been estimated from this series too (factor 1 - 1/c_i).
    `inv_counts[r]`: 1 / series behind run r's effect (0.0: no effect); None: this series is not in the pool."""
    _, v = _mean_var(list(map(operator.sub, ys, map(g.__getitem__, idx))))
    if inv_counts is None:
        return v
    shrink = math.fsum(map(inv_counts.__getitem__, idx)) / len(ys)
    return v / (1.0 - shrink) if shrink < 1.0 else v


_FIELDS = operator.attrgetter("mean", "sd", "n", "run_id")
_PROBE = operator.attrgetter("probe")


def _keyed_fast(history: Sequence[RunSummary], exponent: float, probes: Mapping[str, float | None] | None,
                min_runs: int) -> tuple[bool, dict[str, float]] | None:
    """`_keyed` in the common case, with loops in C (start-up pools every stored series): every run valid, with
    a positive mean and an id, and every run probed when the metric follows the probe. None otherwise, and
    `_keyed` then decides run by run."""
    k = len(history)
    if k < max(min_runs, 2):
        return None
    means, sds, ns, ids = zip(*map(_FIELDS, history))
    if {*map(type, means), *map(type, sds)} != {float} or {*map(type, ns)} != {int}:
        return None
    # A finite sum means no NaN or infinity (an overflowing sum only sends the series to the slow path).
    if not (math.isfinite(sum(means) + sum(sds)) and min(means) > 0 and min(sds) >= 0 and min(ns) >= 1):
        return None
    if None in ids:
        return None
    if exponent == 0:
        return False, dict(zip(ids, map(math.log, means)))  # y = ln(mean) - 0.0; a repeated id keeps the last
    ps = list(map(_PROBE, history)) if probes is None else list(map(probes.get, ids))
    if {*map(type, ps)} != {float} or not (math.isfinite(sum(ps)) and min(ps) > 0):
        return None
    logs = map(math.log, means)
    return True, dict(zip(ids, map(operator.sub, logs, map(operator.mul, repeat(exponent, k), map(math.log, ps)))))


def _keyed(history: Sequence[RunSummary], exponent: float, probes: Mapping[str, float | None] | None,
           tag: int, min_runs: int = MIN_HISTORY_RUNS) -> tuple[bool, dict[str, float]] | None:
    """(probe-normalised, run id -> y) of the runs `judge_against_history` would use; None if the series
    cannot take part in the log-scale rule (too few runs, a value <= 0). `probes` (run id -> probe seconds)
    replaces each run's own `probe` when given."""
    fast = _keyed_fast(history, exponent, probes, min_runs)
    return fast if fast is not None else _keyed_slow(history, exponent, probes, tag, min_runs)


def _keyed_slow(history: Sequence[RunSummary], exponent: float, probes: Mapping[str, float | None] | None,
                tag: int, min_runs: int) -> tuple[bool, dict[str, float]] | None:
    """`_keyed` run by run: any mix of valid and invalid runs, probed and unprobed ones, missing ids."""
    runs: list[tuple[RunSummary, float | None]] = []
    probed: list[tuple[RunSummary, float | None]] = []
    for h in history:
        if _valid(h):
            runs.append((h, None))
            p = h.probe if probes is None else probes.get(h.run_id or "")
            # _has_probe, with _valid's fast path for floats
            if p is not None and (p - p == 0.0 if p.__class__ is float else is_finite_number(p)) and p > 0:
                probed.append((h, p))
    normalise = exponent != 0 and len(probed) >= min_runs
    pairs = probed if normalise else runs
    if len(pairs) < max(min_runs, 2) or not all(h.mean > 0 for h, _ in pairs):
        return None
    out = {}
    for i, (h, p) in enumerate(pairs):
        rid = h.run_id if h.run_id is not None else f"\0{tag}:{i}"  # no id: a run of its own
        # a repeated id keeps the last run
        out[rid] = math.log(h.mean) - (exponent * math.log(p) if normalise else 0.0)  # type: ignore[arg-type]
    return normalise, out


def _noisier(var: float, df: float, s0_sq: float, d0: float, level: float = OUTLIER_P) -> bool:
    """True when `var` (df) is improbably large for the prior: the series is noisier than the pool."""
    if not (df > 0 and s0_sq > 0 and d0 > 0 and math.isfinite(var)):
        return not math.isfinite(var)
    return f_sf(var / s0_sq, df, d0) < level


# (history, probe exponent) or (history, probe exponent, probes by run id): see `pool`.
class _NoisierThan:
    """`_noisier` against one prior, for many series: F's upper tail is monotone in the variance, so each df's
    critical ratio is bracketed once (a few dozen f_sf calls) and f_sf runs only for a ratio inside the bracket.
    The decisions are those of `_noisier`; a pool of 20,000 series needs a few hundred f_sf calls, not 20,000."""

    def __init__(self, s0_sq: float, d0: float, level: float = OUTLIER_P) -> None:
        self.s0_sq, self.d0, self.level = s0_sq, d0, level
        self.usable = s0_sq > 0 and d0 > 0
        self._brackets: dict[float, tuple[float, float]] = {}

    def _bracket(self, df: float) -> tuple[float, float]:
        """(lo, hi) with f_sf(lo) >= level > f_sf(hi), hi / lo - 1 < 1e-9 (hi = inf if f_sf stays above)."""
        lo, hi = 0.0, 1.0
        while f_sf(hi, df, self.d0) >= self.level:
            lo, hi = hi, hi * 2.0
            if hi > 1e300:
                return lo, math.inf
        for _ in range(200):
            if hi - lo <= 1e-9 * hi:
                break
            mid = 0.5 * (lo + hi)
            if f_sf(mid, df, self.d0) >= self.level:
                lo = mid
            else:
                hi = mid
        return lo, hi

    def __call__(self, var: float, df: float) -> bool:
        if not (df > 0 and self.usable and math.isfinite(var)):
            return _noisier(var, df, self.s0_sq, self.d0, self.level)
        bracket = self._brackets.get(df)
        if bracket is None:
            bracket = self._brackets[df] = self._bracket(df)
        ratio = var / self.s0_sq
        if not math.isfinite(ratio):
            return f_sf(ratio, df, self.d0) < self.level
        if ratio <= bracket[0]:
            return False
        if ratio >= bracket[1]:
            return True
        return f_sf(ratio, df, self.d0) < self.level


PoolItem = Union[tuple[Sequence[RunSummary], float], tuple[Sequence[RunSummary], float, Mapping[str, Optional[float]]]]


def pool(histories: Iterable[PoolItem], max_df: float = MAX_PRIOR_DF,
         min_series: int = MIN_SERIES_PER_RUN) -> dict[bool, Pooled]:
    """Pool the histories of many series of one machine class and noise family: {probe_normalised: Pooled}.

    `histories`: (history, probe exponent) per measured metric of every test, or (history, probe exponent,
    probes) where `probes` maps run id -> probe seconds (None: unprobed) and stands for each run's `probe`
    (a baseline entry's run table, without building a RunSummary per run). Probe-normalised and raw series
    are pooled apart (different noise). Series much noisier than the rest are screened out (OUTLIER_P).
    """
    groups: dict[bool, list[dict[str, float]]] = {True: [], False: []}
    for i, item in enumerate(histories):
        got = _keyed(item[0], item[1], item[2] if len(item) > 2 else None, i)  # type: ignore[misc]
        if got is not None:
            groups[got[0]].append(got[1])
    out = {}
    for normalise, series in groups.items():
        if len(series) >= 3:
            out[normalise] = _pool_group(series, normalise, max_df, min_series)
    return out


def _pool_group(series: list[dict[str, float]], normalise: bool, max_df: float, min_series: int) -> Pooled:
    # Robust start: the prior is first fitted without the series 10x noisier than the median one (for
    # df = 2 a legitimate series lands there with probability 0.001), then every series is re-screened.
    design = _Design(series)
    everyone = list(range(len(series)))
    g0, counts0 = g, counts = _two_way(design, everyone, min_series)
    inv = [1.0 / c if c else 0.0 for c in counts]
    first = [_specific_variance(design.ys[j], design.idx[j], g, inv) for j in everyone]
    med = statistics.median(first)
    active = [j for j, v in enumerate(first) if not v > 10.0 * med] if med > 0 else everyone
    if len(active) < 3:
        active = everyone
    prior = None
    spec: list[tuple[float, float]] = []
    for _ in range(10):
        if active == everyone:  # the fit above is this one: no need to repeat it
            g, counts = g0, counts0
            spec = [(v, len(design.ys[j]) - 1.0) for j, v in enumerate(first)]
        else:
            g, counts = _two_way(design, active, min_series)
            inv = [1.0 / c if c else 0.0 for c in counts]
            in_pool = set(active)
            spec = [(_specific_variance(design.ys[j], design.idx[j], g, inv if j in in_pool else None),
                     len(design.ys[j]) - 1.0) for j in everyone]
        prior = fit_prior([spec[j] for j in active], max_df)
        if prior is None:
            break
        noisier = _NoisierThan(*prior)
        keep = [j for j in everyone if not noisier(spec[j][0], spec[j][1])]
        if len(keep) < 3 or keep == active:
            break
        active = keep
    effects = sorted((design.ids[r], r) for r in range(len(design.ids)) if counts[r])
    run_effects = {rid: g[r] for rid, r in effects}
    run_counts = {rid: counts[r] for rid, r in effects}
    m = len(run_effects)
    common_sq, common_df = 0.0, math.inf
    if m >= 2:
        mean_spec = statistics.fmean(spec[j][0] for j in active)
        inv_c = statistics.fmean(1.0 / c for c in run_counts.values())
        common_sq = max(math.fsum(x * x for x in run_effects.values()) / (m - 1) - mean_spec * inv_c, 0.0)
        common_df = m - 1.0
    s0_sq, d0 = prior if prior is not None else (_NAN, 0.0)
    return Pooled(s0_sq, d0, common_sq, common_df, run_effects, run_counts, normalise, len(active), m,
                  len(series) - len(active))


# --- the rule ---------------------------------------------------------------------------------------------

def _exact_p(bad: float) -> float:
    return _NAN if bad == 0 else (0.0 if bad > 0 else 1.0)


@dataclass
class _Spread:
    """centre, standard error and df of y - centre for one series (log or linear scale)."""

    centre: float
    se: float
    df: float
    k: int
    pooled: bool


def _spread(runs: list[RunSummary], ys: list[float], xs_rel_var: float | None, n_now: int,
            pooled: Pooled | None, notes: list[str]) -> _Spread:
    k = len(runs)
    g = [0.0] * k
    has_effects = pooled is not None and bool(pooled.run_effects)
    if has_effects:
        g = [pooled.run_effects.get(h.run_id, 0.0) if h.run_id is not None else 0.0  # type: ignore[union-attr]
             for h in runs]
    centre, s_sq = _mean_var([y - gi for y, gi in zip(ys, g)])
    if has_effects:  # g_i was estimated from this series too: the same correction as in `pool`
        counts = pooled.run_counts  # type: ignore[union-attr]
        shrink = math.fsum(1.0 / counts[h.run_id] for h in runs if h.run_id is not None and h.run_id in counts) / k
        if shrink < 1.0:
            s_sq /= 1.0 - shrink
    if not math.isfinite(s_sq):
        s_sq = math.inf
    df_spec = k - 1.0
    common_sq, common_df, m = 0.0, math.inf, 0
    moderated = False
    if pooled is not None:
        usable_prior = pooled.d0 > 0 and is_finite_number(pooled.s0_sq) and math.isfinite(s_sq)
        if usable_prior and pooled.s0_sq > 0 and _noisier(s_sq, df_spec, pooled.s0_sq, pooled.d0, MODERATE_P):
            notes.append("much noisier than the pooled series: its own variance is used, not moderated")
        elif usable_prior and pooled.s0_sq >= 0:
            s_sq = (pooled.d0 * pooled.s0_sq + df_spec * s_sq) / (pooled.d0 + df_spec)
            df_spec += pooled.d0
            moderated = True
        if pooled.run_effects and pooled.common_sq > 0:
            common_sq, common_df, m = pooled.common_sq, pooled.common_df, pooled.n_runs
            moderated = True
    # This run's rounds differ from the history's: split the run variance into between- and within-run parts.
    var_now = s_sq
    if any(h.n != n_now for h in runs) and math.isfinite(s_sq):
        within = [(h.n - 1, _sq(h.sd / h.mean)) for h in runs if h.n >= 2]
        if xs_rel_var is not None:
            within.append((n_now - 1, xs_rel_var))
        wdf = sum(d for d, _ in within)
        if wdf > 0:
            w_sq = math.fsum(d * v for d, v in within) / wdf
            var_now = max(s_sq - w_sq * math.fsum(1.0 / h.n for h in runs) / k, 0.0) + w_sq / n_now
    spec = var_now + s_sq / k
    common = common_sq * (1.0 + 1.0 / m) if m else 0.0
    se_sq = spec + common
    se = math.sqrt(se_sq) if math.isfinite(se_sq) else math.inf
    if common > 0 and math.isfinite(se_sq):
        fc, fs = common / se_sq, spec / se_sq  # Welch-Satterthwaite on the shares: no under/overflow
        df = 1.0 / (fc * fc / common_df + fs * fs / df_spec)
    else:
        df = df_spec
    return _Spread(centre, se, df, k, moderated)


def judge_against_history(current: Sequence[float], history: Sequence[RunSummary], *, better: str = "lower",
          tolerance: float, alpha: float = HISTORY_ALPHA, pooled: Pooled | Mapping[bool, Pooled] | None = None,
          current_probe: float | None = None, exponent: float = 0.0, min_runs: int = MIN_HISTORY_RUNS,
          bound_alpha: float = BOUND_ALPHA) -> HistoryVerdict | None:
    """Judge one measured metric of the current run against its run history (oldest first).

    current: this run's round samples (>= 1, finite). pooled: a Pooled, or `pool`'s dict (from the stored
    histories, never the current run). current_probe: this test's probe seconds in this run; exponent:
    `probe_exponent` of the metric's unit (0 when the session does not probe). Returns None when fewer than
    `min_runs` usable runs remain: the caller then keeps the within-run rule.
    """
    if better not in ("lower", "higher"):
        raise ValueError(f"better must be 'lower' or 'higher', got {better!r}")
    if not (is_finite_number(tolerance) and tolerance >= 0):
        raise ValueError(f"tolerance must be a finite fraction >= 0, got {tolerance!r}")
    for name, a in (("alpha", alpha), ("bound_alpha", bound_alpha)):
        if not (is_finite_number(a) and 0 < a <= 0.5):
            raise ValueError(f"{name} must be in (0, 0.5], got {a!r}")
    xs = [float(x) for x in current]
    if not xs or not all(math.isfinite(x) for x in xs):
        raise ValueError("judge_against_history() needs at least one sample, all finite")
    notes: list[str] = []
    runs = [h for h in history if _valid(h)]
    if len(runs) < len(history):
        notes.append(f"{len(history) - len(runs)} unusable history run(s) skipped")
    normalise = False
    if exponent != 0:
        with_probe = [h for h in runs if _has_probe(h)]
        if is_finite_number(current_probe) and current_probe > 0 and len(with_probe) >= min_runs:  # type: ignore[operator]
            runs, normalise = with_probe, True
        else:
            notes.append(f"no probe in this run or fewer than {min_runs} probed runs: compared without the probe")
    if len(runs) < min_runs:
        return None

    m_now, v_now = _mean_var(xs)
    n_now = len(xs)
    log_scale = m_now > 0 and all(h.mean > 0 for h in runs)
    if isinstance(pooled, Mapping):
        pooled = pooled.get(normalise) if log_scale else None
    if pooled is not None and (not log_scale or pooled.probe_normalised != normalise):
        pooled = None
    if not log_scale:
        normalise = False
        notes.append("a value <= 0: compared on the linear scale, without probe and pool")
    e = exponent if normalise else 0.0
    padj = e * math.log(current_probe) if normalise else 0.0  # type: ignore[arg-type]
    if log_scale:
        ys = [_y(h, e, normalise) for h in runs]
        y_now = math.log(m_now) - padj
        rel_var_now = math.fsum(_sq(x / m_now - 1.0) for x in xs) / (n_now - 1) if n_now >= 2 else None
    else:
        ys = [h.mean for h in runs]
        y_now = m_now
        rel_var_now = v_now if n_now >= 2 else None
    spread = _spread(runs, ys, rel_var_now, n_now, pooled, notes) if log_scale else \
        _linear_spread(runs, v_now if n_now >= 2 else None, n_now)
    sign = 1.0 if better == "lower" else -1.0
    d = y_now - spread.centre
    return _decide(sign, d, spread, tolerance, alpha, bound_alpha, log_scale, padj, m_now, runs, normalise,
                   current_probe, notes)


def _linear_spread(runs: list[RunSummary], v_now: float | None, n_now: int) -> _Spread:
    """The plain prediction interval on the linear scale (a history with a value <= 0)."""
    k = len(runs)
    centre, s_sq = _mean_var([h.mean for h in runs])
    var_now = s_sq
    if any(h.n != n_now for h in runs) and math.isfinite(s_sq):
        within = [(h.n - 1, _sq(h.sd)) for h in runs if h.n >= 2] + ([(n_now - 1, v_now)] if v_now is not None else [])
        wdf = sum(d for d, _ in within)
        if wdf > 0:
            w_sq = math.fsum(d * v for d, v in within) / wdf
            var_now = max(s_sq - w_sq * math.fsum(1.0 / h.n for h in runs) / k, 0.0) + w_sq / n_now
    se_sq = var_now + s_sq / k if math.isfinite(s_sq) else math.inf
    return _Spread(centre, math.sqrt(se_sq) if math.isfinite(se_sq) else math.inf, k - 1.0, k, False)


def _decide(sign: float, d: float, s: _Spread, tolerance: float, alpha: float, bound_alpha: float, log_scale: bool,
            padj: float, m_now: float, runs: list[RunSummary], normalise: bool, current_probe: float | None,
            notes: list[str]) -> HistoryVerdict:
    bad = sign * d
    se, df, centre, k = s.se, s.df, s.centre, s.k
    if se == 0.0:
        p_worse, p_better = _exact_p(bad), _exact_p(-bad)
    elif math.isinf(se):
        p_worse = p_better = _NAN
    else:
        p_worse, p_better = t_sf(bad / se, df), t_sf(-bad / se, df)
    finite_se = 0.0 < se < math.inf
    t_crit = t_isf(alpha, df) if finite_se else 0.0
    t_bound = t_isf(bound_alpha, df) if finite_se else 0.0
    if log_scale:
        expected = _exp(centre + padj)
        change = _exp(d) - 1.0 if d > 1.0 else math.expm1(d)
        raw_change = _exp(math.log(m_now) - math.fsum(math.log(h.mean) for h in runs) / k) - 1.0
        tol_y = math.log1p(tolerance)
        if math.isinf(se):
            bound = limit = math.inf if sign > 0 else 0.0
        else:
            bound = _exp(centre + padj + sign * t_crit * se)
            limit = _exp(centre + padj + sign * max(tol_y, t_crit * se))
        bad_beyond, good_beyond = bad > tol_y, -bad > tol_y
        bad_upper = bad + t_bound * se
        cannot_rule_out = bad_upper > math.log1p(INCONCLUSIVE_FACTOR * tolerance)
        upper = _exp(bad_upper) - 1.0
        probe_ratio = (_exp(math.log(current_probe) - math.fsum(math.log(h.probe) for h in runs) / k)  # type: ignore
                       if normalise else _NAN)
    else:
        ref = abs(centre)
        change = raw_change = (d / ref if ref else (0.0 if d == 0 else math.copysign(math.inf, d)))
        expected = centre
        bound = centre + sign * t_crit * se
        limit = centre + sign * max(tolerance * ref, t_crit * se)
        bad_beyond, good_beyond = sign * change > tolerance, -sign * change > tolerance
        cannot_rule_out = bad + t_bound * se > INCONCLUSIVE_FACTOR * tolerance * ref
        upper = (bad + t_bound * se) / ref if ref else math.inf
        probe_ratio = _NAN
    rule = f"{RULE_PREFIX}: {k} runs" + (", probe-normalised" if normalise else "") + (", pooled" if s.pooled else "")
    fields = dict(change=change, raw_change=raw_change, expected=expected, bound=bound, limit=limit, k=k, df=df,
                  se=se, scale="log" if log_scale else "linear", probe_ratio=probe_ratio, notes=notes)
    spread = f"within the spread of the last {k} runs"
    decide = "more rounds (--energy-rounds) or more saved runs would decide it"
    if bad_beyond or good_beyond:
        p = p_worse if bad_beyond else p_better
        if p < alpha:
            kind = VerdictKind.REGRESSION if bad_beyond else VerdictKind.IMPROVED
            return HistoryVerdict(kind, rule, p, hint=_probe_note(normalise, probe_ratio, raw_change), **fields)
        return HistoryVerdict(VerdictKind.INCONCLUSIVE, rule, p, hint=f"change {_pct(change)} is beyond the "
                              f"tolerance but {spread} (p = {p:.3g}): {decide}", **fields)
    p_rep = p_worse if bad >= 0 else p_better
    if (finite_se and cannot_rule_out) or math.isinf(se):
        upto = "an unbounded" if not math.isfinite(upper) else f"a {upper * 100:.0f} %"
        return HistoryVerdict(VerdictKind.INCONCLUSIVE, rule, p_rep, hint=f"the last {k} runs are too noisy to "
                              f"rule out {upto} regression: {decide}, or a quieter runner", **fields)
    return HistoryVerdict(VerdictKind.PASS, rule, p_rep, **fields)


def _probe_note(normalise: bool, probe_ratio: float, raw_change: float) -> str:
    """How much of the raw change the probe explained, when the machine was noticeably slower or faster."""
    if not normalise or not math.isfinite(probe_ratio) or abs(probe_ratio - 1.0) < 0.05:
        return ""
    return (f"the probe ran {_pct(probe_ratio - 1.0)} against the history, so the machine was "
            f"{'slower' if probe_ratio > 1 else 'faster'}; raw change {_pct(raw_change)}")
