"""Descriptive statistics and the small-sample tests the baseline gate uses.

Pure Python on purpose: scipy is not a runtime dependency, so the Student-t survival function is computed
here from the regularized incomplete beta function (continued fraction). Nothing here imports pytest.

Conventions for degenerate input (documented because a CI gate must never crash on them):
- one sample: stddev is 0 in report.json's `describe` (pytest-benchmark's convention), but a test statistic
  needs a variance estimate, so `welch_one_sided` returns NaN ("cannot tell").
- zero variance on both sides: the difference of means is exact, so the p-value is 0 or 1 when the means
  differ and NaN when they are equal (0/0).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

from ..errors import UsageError

__all__ = ["trimmed", "betainc", "t_sf", "t_isf", "f_sf", "digamma", "trigamma", "trigamma_inverse",
           "welch_one_sided", "welch"]


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


def betainc(a: float, b: float, x: float, one_minus_x: float) -> float:
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
    tail2 = betainc(0.5 * df, 0.5, df / (df + t2), t2 / (df + t2))
    return 0.5 * tail2 if t > 0 else 1.0 - 0.5 * tail2


def _t_log_pdf(t: float, df: float) -> float:
    if math.isinf(df):
        return -0.5 * t * t - 0.5 * math.log(2.0 * math.pi)
    return (math.lgamma(0.5 * (df + 1.0)) - math.lgamma(0.5 * df) - 0.5 * math.log(df * math.pi)
            - 0.5 * (df + 1.0) * math.log1p(t * t / df))


def t_isf(p: float, df: float) -> float:
    """Inverse of t_sf for 0 < p <= 0.5: the t with P(T > t) = p (one-sided critical value).

    Newton's method on log t_sf (its derivative is -pdf/sf), started from the Cornish-Fisher expansion of the
    normal quantile and kept inside a bracket that every step narrows, with bisection whenever a Newton step
    would leave it: ~4 t_sf evaluations instead of bisection's ~40, to ~1e-13 relative. The history gate
    needs two quantiles per metric, and tools/gate_statistics.py runs it 10^5 times.
    """
    if not 0.0 < p <= 0.5 or math.isnan(df) or df <= 0:
        return math.nan
    if p == 0.5:
        return 0.0
    z = -statistics.NormalDist().inv_cdf(p)
    x = z
    if not math.isinf(df):
        z3, z5 = z ** 3, z ** 5
        x = z + (z3 + z) / (4.0 * df) + (5.0 * z5 + 16.0 * z3 + 3.0 * z) / (96.0 * df * df)
        x = max(x, 1e-3)
    log_p = math.log(p)
    lo, hi = 0.0, math.inf
    for _ in range(300):
        sf = t_sf(x, df)
        if sf > p:
            lo = x
        else:
            hi = x
        new = math.nan
        if sf > 0.0:
            log_sf = math.log(sf)
            step = (log_sf - log_p) * math.exp(min(log_sf - _t_log_pdf(x, df), 700.0))
            new = x + step
            if abs(step) <= 1e-14 * x:
                return new
        if not lo < new < hi:  # also NaN: bisect, or grow the bracket while it is open
            new = 0.5 * (lo + hi) if math.isfinite(hi) else 2.0 * x
        if math.isfinite(hi) and hi - lo <= 1e-14 * hi:
            return 0.5 * (lo + hi)
        x = new
    return x


def f_sf(f: float, d1: float, d2: float) -> float:
    """P(F > f) for Fisher's F with (d1, d2) degrees of freedom; d2 may be inf (chi-square_d1 / d1)."""
    if math.isnan(f) or math.isnan(d1) or math.isnan(d2) or not (d1 > 0 and d2 > 0):
        return math.nan
    if f <= 0:
        return 1.0
    if math.isinf(f):
        return 0.0
    if math.isinf(d2):  # d1 F(d1, inf) is chi-square with d1 df
        return _gamma_q(0.5 * d1, 0.5 * d1 * f)
    den = d2 + d1 * f
    return betainc(0.5 * d2, 0.5 * d1, d2 / den, d1 * f / den)


def _gamma_q(a: float, x: float) -> float:
    """The regularized upper incomplete gamma Q(a, x): series for P below x = a + 1, continued fraction above."""
    if x <= 0.0:
        return 1.0
    log_front = a * math.log(x) - x - math.lgamma(a)
    if x < a + 1.0:
        term = total = 1.0 / a
        ap = a
        for _ in range(_CF_MAX_ITER * 4):
            ap += 1.0
            term *= x / ap
            total += term
            if abs(term) < abs(total) * _CF_EPS:
                break
        return max(0.0, 1.0 - total * math.exp(log_front))
    b = x + 1.0 - a
    c = 1.0 / _TINY
    d = 1.0 / b
    h = d
    for i in range(1, _CF_MAX_ITER + 1):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        d = 1.0 / (d if abs(d) > _TINY else _TINY)
        c = b + an / c
        c = c if abs(c) > _TINY else _TINY
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < _CF_EPS:
            break
    return math.exp(log_front) * h


# --- digamma and trigamma: limma's prior fit (gate/history.py) needs them; no scipy at run time ------------

def digamma(x: float) -> float:
    """psi(x) for x > 0: the recurrence up to x >= 10, then the asymptotic series (~1e-15 relative)."""
    if not x > 0:
        raise ValueError(f"digamma: x must be > 0, got {x!r}")
    r = 0.0
    while x < 10.0:
        r -= 1.0 / x
        x += 1.0
    f = 1.0 / (x * x)
    return r + math.log(x) - 0.5 / x - f * (1 / 12 - f * (1 / 120 - f * (1 / 252 - f * (1 / 240 - f / 132))))


def trigamma(x: float) -> float:
    """psi'(x) for x > 0, the same way."""
    if not x > 0:
        raise ValueError(f"trigamma: x must be > 0, got {x!r}")
    r = 0.0
    while x < 10.0:
        r += 1.0 / (x * x)
        x += 1.0
    f = 1.0 / (x * x)
    return r + 1.0 / x + f / 2 + f / x * (1 / 6 - f * (1 / 30 - f * (1 / 42 - f * (1 / 30 - f * 5 / 66))))


def _tetragamma(x: float) -> float:
    r = 0.0
    while x < 10.0:
        r -= 2.0 / (x * x * x)
        x += 1.0
    f = 1.0 / (x * x)
    return r - f * (1.0 + 1.0 / x + f * (0.5 - f * (1 / 6 - f * (1 / 6 - f * (3 / 10 - f * 5 / 6)))))


def trigamma_inverse(y: float) -> float:
    """The x > 0 with trigamma(x) = y (y > 0), by limma's Newton iteration (Smyth 2004)."""
    if not y > 0:
        raise ValueError(f"trigamma_inverse: y must be > 0, got {y!r}")
    if y > 1e7:
        return 1.0 / math.sqrt(y)
    if y < 1e-6:
        return 1.0 / y
    x = 0.5 + 1.0 / y
    for _ in range(100):
        tri = trigamma(x)
        dif = tri * (1.0 - tri / y) / _tetragamma(x)
        x += dif
        if -dif / x < 1e-8:
            break
    return x


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
