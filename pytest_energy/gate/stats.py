"""Descriptive statistics and the small-sample tests the baseline gate uses.

Pure Python on purpose: scipy is not a runtime dependency, so the Student-t survival function is computed
here from the regularized incomplete beta function (continued fraction). Nothing here imports pytest.

Conventions for degenerate input (documented because a CI gate must never crash on them):
- one sample: stddev is 0 in `describe` (pytest-benchmark's convention), but a test statistic needs a variance
  estimate, so `welch_one_sided` returns NaN ("cannot tell").
- zero variance on both sides: the difference of means is exact, so the p-value is 0 or 1 when the means
  differ and NaN when they are equal (0/0).
"""

from __future__ import annotations

import bisect
import math
import statistics
from typing import Any
from collections.abc import Sequence

from ..errors import UsageError

__all__ = ["describe", "trimmed", "t_sf", "t_isf", "welch_one_sided", "welch"]


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


def trimmed(samples: Sequence[float]) -> list[float]:
    """The "olympic" sample: drop one minimum and one maximum when there are at least 5 samples.

    Why 5: below that, dropping two values leaves too little to estimate a spread (n=4 would keep 2), while
    from 5 on one stray round (a background job, a thermal hiccup) no longer drags the centre. Returned in
    the original order, minus the two extremes.
    """
    data = [float(x) for x in samples]
    if len(data) < 5:
        return data
    out = list(data)
    out.remove(min(out))
    out.remove(max(out))
    return out


# --- Student t distribution -------------------------------------------------------------------------------

_CF_MAX_ITER = 500
_CF_EPS = 1e-15
_TINY = 1e-300


def _beta_cf(a: float, b: float, x: float) -> float:
    """Continued fraction for I_x(a, b) (modified Lentz); converges fast for x < (a + 1) / (a + b + 2)."""
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c = 1.0
    d = 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > _TINY else _TINY)
    h = d
    for m in range(1, _CF_MAX_ITER + 1):
        m2 = 2 * m
        # even step
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > _TINY else _TINY)
        c = 1.0 + aa / c
        c = c if abs(c) > _TINY else _TINY
        h *= d * c
        # odd step
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > _TINY else _TINY)
        c = 1.0 + aa / c
        c = c if abs(c) > _TINY else _TINY
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < _CF_EPS:
            return h
    return h  # not converged to 1e-15 after 500 steps: still accurate far beyond what a gate needs


def _betainc_pair(a: float, b: float, x: float, one_minus_x: float) -> float:
    """Regularized incomplete beta I_x(a, b). `one_minus_x` is passed in separately so that callers who know
    it exactly (t near 0 gives x near 1) do not lose digits to cancellation."""
    if x <= 0.0:
        return 0.0
    if one_minus_x <= 0.0:
        return 1.0
    log_front = (math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                 + a * math.log(x) + b * math.log(one_minus_x))
    front = math.exp(log_front)
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _beta_cf(a, b, x) / a
    return 1.0 - front * _beta_cf(b, a, one_minus_x) / b


def t_sf(t: float, df: float) -> float:
    """Survival function P(T > t) of Student's t with `df` (> 0, may be fractional or inf) degrees of freedom.

    NaN for NaN input or df <= 0. df = inf gives the standard normal tail.
    """
    if math.isnan(t) or math.isnan(df) or df <= 0:
        return math.nan
    if math.isinf(t):
        return 0.0 if t > 0 else 1.0
    if math.isinf(df):
        return 0.5 * math.erfc(t / math.sqrt(2.0))
    t2 = t * t
    # P(|T| > |t|) = I_{df/(df+t^2)}(df/2, 1/2); the complement argument is t^2/(df+t^2), computed directly.
    tail2 = _betainc_pair(0.5 * df, 0.5, df / (df + t2), t2 / (df + t2))
    return 0.5 * tail2 if t > 0 else 1.0 - 0.5 * tail2


def t_isf(p: float, df: float) -> float:
    """Inverse of t_sf for 0 < p <= 0.5: the t with P(T > t) = p (one-sided critical value). By bisection on
    t_sf, which is monotone; to ~1e-12 relative, far below anything a gate decision depends on."""
    if not 0.0 < p <= 0.5 or math.isnan(df) or df <= 0:
        return math.nan
    lo, hi = 0.0, 1.0
    while t_sf(hi, df) > p:  # grow the bracket until it holds the root
        lo, hi = hi, hi * 2.0
    while hi - lo > 1e-12 * hi:
        mid = 0.5 * (lo + hi)
        if t_sf(mid, df) > p:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def _variance(data: Sequence[float], mean: float) -> float:
    """Sample (n-1) variance; two-pass with fsum, much faster than statistics.variance's exact fractions."""
    return math.fsum((x - mean) ** 2 for x in data) / (len(data) - 1)


# --- Welch's t test ---------------------------------------------------------------------------------------

def welch(a: Sequence[float], b: Sequence[float]) -> tuple[float, float, float]:
    """Welch's statistic for mean(b) - mean(a): returns (difference, standard_error, df).

    standard_error and df are NaN when either side has fewer than 2 samples (no variance estimate);
    standard_error is 0 and df NaN when both sides have zero variance.
    """
    na, nb = len(a), len(b)
    if na == 0 or nb == 0:
        raise UsageError(f"welch() needs samples on both sides; got {na} and {nb}")
    mean_a, mean_b = math.fsum(a) / na, math.fsum(b) / nb
    diff = mean_b - mean_a
    if na < 2 or nb < 2:
        return diff, math.nan, math.nan
    va = _variance(a, mean_a) / na
    vb = _variance(b, mean_b) / nb
    se2 = va + vb
    if se2 == 0.0:
        return diff, 0.0, math.nan
    df = se2 * se2 / (va * va / (na - 1) + vb * vb / (nb - 1))
    return diff, math.sqrt(se2), df


def welch_one_sided(a: Sequence[float], b: Sequence[float], alternative: str = "greater") -> float:
    """One-sided Welch p-value. alternative="greater" tests mean(b) > mean(a); "less" tests mean(b) < mean(a).

    NaN when undefined: fewer than 2 samples on a side, or both sides constant and equal. Both sides constant
    and different: 0.0 if the difference points the tested way, else 1.0.
    """
    if alternative not in ("greater", "less"):
        raise UsageError(f"alternative must be 'greater' or 'less', got {alternative!r}")
    diff, se, df = welch(a, b)
    if alternative == "less":
        diff = -diff
    if math.isnan(se):
        return math.nan
    if se == 0.0:
        return math.nan if diff == 0 else (0.0 if diff > 0 else 1.0)
    return t_sf(diff / se, df)
