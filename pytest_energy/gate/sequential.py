"""The same-job A/B rule: a sequential test on paired log ratios of head against base (issue 16, point 2).

Base and head are measured alternately in one job (randomised A-B / B-A order: `pair_orders`), so the drift of
the machine that both see cancels in their ratio. One metric gives pairs (base_i, head_i); the test works on

    d_i = s ln(head_i / base_i)          s = +1 when lower is better, -1 when higher is better: d > 0 is worse

and after pair n (n >= MIN_PAIRS) looks at the one-sample t statistic of the d_i:

    m_n = mean(d),  se_n = sd(d) / sqrt(n),  df = n - 1,  tol = ln(1 + tolerance),  delta1 = ln(1 + 2 tolerance)

    REGRESSION  m_n / se_n >  t(alpha_n, df)  and  m_n >  tol     (significant against ratio 1, beyond tolerance)
    IMPROVED    m_n / se_n < -t(alpha_n, df)  and  m_n < -tol
    SAME        |m_n| <= tol and  m_n + t(beta_n, df) se_n < delta1  and  m_n - t(beta_n, df) se_n > -delta1
                (both a regression and an improvement of twice the tolerance are ruled out)
    CONTINUE    otherwise, while n < max_pairs;  UNKNOWN at n = max_pairs (the budget ran out)

Error rates by design (for log ratios that are independent and normal; the variance need not be known):

- alpha_n and beta_n are *Bonferroni spending*: the cumulative spend after look n is A(n) = alpha (f_n)^RHO
  with f_n = (n - MIN_PAIRS + 1) / (max_pairs - MIN_PAIRS + 1), alpha_n = A(n) - A(n-1), and the same for
  beta. Whatever the correlation between looks, P(some look rejects) <= sum_n alpha_n = alpha, so
  * a false alarm (REGRESSION when head = base, ratio 1) has probability <= alpha = 0.001 per metric, and
    no worse for any true improvement; an IMPROVED on unchanged code likewise <= alpha;
  * at a true regression of twice the tolerance (d ~ delta1), SAME needs some look whose upper bound lies
    below delta1: probability <= beta = 0.05; IMPROVED needs a significant negative mean: <= alpha.
  So a *wrong* verdict is bounded at both design points for every noise level. What the design cannot
  promise is a *decision*: with noisy pairs the bounds stay wide until the budget runs out, and the answer
  is UNKNOWN (it passes, visibly, like INCONCLUSIVE). The bounds are per metric: a test with several
  independent metrics, and a suite of many tests, add them up (the caller fails a test on any REGRESSION).
  Detection of 2x the tolerance in at least 95 % of cases needs, roughly,
  delta1 sqrt(N) / sd(d) >= t(alpha_N, N-1) + 1.7: for the default 8 % tolerance and 10 pairs an sd(d) up to
  about 6 % (simulated at ratio 1.16: REGRESSION 99.2 % at sd 5 %, 68.8 % at 8 %, 11.4 % at 15 %, the rest
  UNKNOWN but for a wrong SAME of 0.05-2.1 %); docs/statistics.md ("Confirm and A/B (simulation)") has the
  table (`tools/gate_statistics.py --confirm-ab --ab-design 10000`).
- Bonferroni over looks is conservative (the looks are positively correlated), so the real rates lie at or
  below the targets (on very noisy pairs close to them: 0.06 % per direction at sd 15 %); the price is a
  larger critical value than a fixed-n test (t(0.001, 9) = 4.30 against this design's final-look 5.34 at
  the defaults). RHO = 2 spends little at the first looks, where df = 2 makes a
  t test weak anyway, and most at the last ones.
- Pinpoint's three outcomes (DIFFERENT, SAME, UNKNOWN) and Fishtest's SPRT (stop as soon as either
  hypothesis wins) are the anchors; an SPRT for unknown variance has no exact error bounds at n = 3..10,
  which is why this group-sequential t design was chosen. Heavy tails (a burst that hits only one side of a
  pair) break normality: one outlying pair inflates sd(d), which makes the test slower to decide rather
  than wrong (tools/gate_statistics.py --confirm-ab measures it).

The interval reported is the two-sided (1 - 2 alpha_n) one at the look that decided, turned into a ratio
head/base (exp of the mean of ln(head/base), i.e. the geometric mean of the ratios). Pure Python; no pytest,
numpy or scipy.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from enum import Enum
from functools import lru_cache

from .stats import t_isf

__all__ = ["ALPHA", "BETA", "MIN_PAIRS", "MAX_PAIRS", "RHO", "RULE_PREFIX", "Decision", "Step", "SequentialTest",
           "decide", "pair_orders", "boundaries"]

ALPHA = 0.001  # false alarm per metric at ratio 1 (issue 16)
BETA = 0.05  # wrong SAME at a change of twice the tolerance (issue 16)
# MIN_PAIRS (fewer than 3 pairs leave df = 1: a t test is meaningless there) and MAX_PAIRS (--energy-max-pairs
# default) are defined in gate/__init__.py, where the configuration reads them.
from . import MAX_PAIRS, MIN_PAIRS  # noqa: E402
RHO = 2.0  # shape of the spending function: A(f) = alpha f^RHO
RULE_PREFIX = "A/B"


class Decision(str, Enum):
    CONTINUE = "CONTINUE"
    REGRESSION = "REGRESSION"
    SAME = "SAME"
    IMPROVED = "IMPROVED"
    UNKNOWN = "UNKNOWN"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Step:
    """The state of one metric's A/B test after `pairs` pairs.

    ratio: geometric mean of head/base; low, high: its interval at this look (NaN before MIN_PAIRS);
    t: the t statistic of the worse-direction log ratios; critical: the look's t(alpha_n, n - 1).
    """

    decision: Decision
    pairs: int
    ratio: float
    low: float
    high: float
    t: float
    critical: float
    base_ref: str = ""

    @property
    def final(self) -> bool:
        return self.decision is not Decision.CONTINUE

    def text(self) -> str:
        """The rule as the verdict names it: "A/B against 1a2b3c4 in this job, 6 pairs: ratio 1.31 [1.24, 1.39]"."""
        against = f" against {self.base_ref}" if self.base_ref else ""
        interval = f" [{self.low:.2f}, {self.high:.2f}]" if math.isfinite(self.low) else ""
        noun = "pair" if self.pairs == 1 else "pairs"
        return f"{RULE_PREFIX}{against} in this job, {self.pairs} {noun}: ratio {self.ratio:.2f}{interval}"


def _check_level(name: str, x: float) -> None:
    if not (isinstance(x, (int, float)) and math.isfinite(x) and 0 < x < 0.5):
        raise ValueError(f"{name} must be in (0, 0.5), got {x!r}")


@lru_cache(maxsize=256)
def boundaries(max_pairs: int = MAX_PAIRS, alpha: float = ALPHA, beta: float = BETA,
               rho: float = RHO) -> tuple[tuple[float, float], ...]:
    """Per look n = MIN_PAIRS..max_pairs: (t(alpha_n, n-1), t(beta_n, n-1)), Bonferroni spending (module doc).

    Index 0 is look MIN_PAIRS. Cached: the simulation asks for the same design 10^5 times.
    """
    if not (isinstance(max_pairs, int) and max_pairs >= MIN_PAIRS):
        raise ValueError(f"max_pairs must be an integer >= {MIN_PAIRS}, got {max_pairs!r}")
    _check_level("alpha", alpha)
    _check_level("beta", beta)
    looks = max_pairs - MIN_PAIRS + 1
    out = []
    for i in range(1, looks + 1):
        share = (i / looks) ** rho - ((i - 1) / looks) ** rho
        n = MIN_PAIRS + i - 1
        out.append((t_isf(alpha * share, n - 1), t_isf(beta * share, n - 1)))
    return tuple(out)


def _exp(x: float) -> float:
    """exp without OverflowError: the first looks' wide intervals may reach beyond the float range."""
    return math.inf if x > 709.78 else math.exp(x)


def _log_ratio(base: float, head: float) -> float:
    for name, v in (("base", base), ("head", head)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
            raise ValueError(f"A/B needs finite values > 0 on both sides; {name} = {v!r}")
    r = head / base  # exact for a power-of-two scale of both sides, so scaling cannot move a verdict
    return math.log(r) if 0 < r < math.inf else math.log(head) - math.log(base)


class SequentialTest:
    """One metric's sequential A/B test; feed it pairs with `add` until `Step.final`.

    better: "lower" or "higher"; tolerance: the metric's tolerance as a fraction (> 0); max_pairs: the budget.
    Adding a pair after a final decision is a usage error (the caller stops measuring).
    """

    def __init__(self, *, better: str = "lower", tolerance: float, max_pairs: int = MAX_PAIRS,
                 alpha: float = ALPHA, beta: float = BETA, base_ref: str = "") -> None:
        if better not in ("lower", "higher"):
            raise ValueError(f"better must be 'lower' or 'higher', got {better!r}")
        if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or not (
                math.isfinite(tolerance) and tolerance > 0):
            raise ValueError(f"tolerance must be a finite fraction > 0, got {tolerance!r}")
        self._bounds = boundaries(max_pairs, alpha, beta)
        self.sign = 1.0 if better == "lower" else -1.0
        self.tol = math.log1p(tolerance)
        self.delta1 = math.log1p(2.0 * tolerance)
        self.max_pairs = max_pairs
        self.base_ref = base_ref
        self.log_ratios: list[float] = []  # ln(head / base), unsigned
        self.step: Step | None = None

    def add(self, base: float, head: float) -> Step:
        if self.step is not None and self.step.final:
            raise ValueError(f"the A/B test already decided {self.step.decision} after {self.step.pairs} pairs")
        self.log_ratios.append(_log_ratio(base, head))
        self.step = self._look()
        return self.step

    def _look(self) -> Step:
        xs = self.log_ratios
        n = len(xs)
        mean = math.fsum(xs) / n
        ratio = math.exp(mean)
        if n < MIN_PAIRS:
            return Step(Decision.CONTINUE, n, ratio, math.nan, math.nan, math.nan, math.nan, self.base_ref)
        crit_a, crit_b = self._bounds[n - MIN_PAIRS]
        var = math.fsum((x - mean) ** 2 for x in xs) / (n - 1)
        se = math.sqrt(var / n)
        # Rounding leaves a variance of ~1e-32 where the ratios are equal in exact arithmetic: call it zero.
        if se <= 1e-12 * abs(mean) or se < 1e-15:
            se = 0.0
        bad = self.sign * mean
        t = (math.inf if bad > 0 else -math.inf if bad < 0 else 0.0) if se == 0.0 else bad / se
        if t > crit_a and bad > self.tol:
            decision = Decision.REGRESSION
        elif t < -crit_a and bad < -self.tol:
            decision = Decision.IMPROVED
        elif abs(bad) <= self.tol and bad + crit_b * se < self.delta1 and bad - crit_b * se > -self.delta1:
            decision = Decision.SAME
        elif n >= self.max_pairs:
            decision = Decision.UNKNOWN
        else:
            decision = Decision.CONTINUE
        low, high = _exp(mean - crit_a * se), _exp(mean + crit_a * se)
        return Step(decision, n, ratio, low, high, t, crit_a, self.base_ref)


def decide(pairs: Iterable[tuple[float, float]], *, better: str = "lower", tolerance: float,
           max_pairs: int = MAX_PAIRS, alpha: float = ALPHA, beta: float = BETA, base_ref: str = "") -> Step:
    """Run the sequential test over (base, head) pairs in measurement order and return the step that stopped it:
    the first final decision, or the last CONTINUE when the pairs end before a decision (more are needed).
    Pairs after the decision are ignored, as the caller would not have measured them. Raises ValueError for
    no pairs, a value that is not finite and > 0, or a bad setting."""
    test = SequentialTest(better=better, tolerance=tolerance, max_pairs=max_pairs, alpha=alpha, beta=beta,
                          base_ref=base_ref)
    step = None
    for base, head in pairs:
        step = test.add(base, head)
        if step.final:
            break
    if step is None:
        raise ValueError("decide() needs at least one (base, head) pair")
    return step


def pair_orders(seed: int | str | None, pairs: int = MAX_PAIRS) -> Iterator[tuple[str, str]]:
    """The measurement order of each pair, ("base", "head") or ("head", "base"), from a seeded RNG.

    Random rather than strictly alternating (asv reverses every round), so that a periodic disturbance cannot
    line up with one side; the seed makes a job's order reproducible (print it with the verdict).
    """
    if not (isinstance(pairs, int) and pairs >= 0):
        raise ValueError(f"pairs must be an integer >= 0, got {pairs!r}")
    rng = random.Random(seed)
    for _ in range(pairs):
        yield ("base", "head") if rng.random() < 0.5 else ("head", "base")


def log_ratios(pairs: Sequence[tuple[float, float]]) -> list[float]:
    """ln(head / base) of each pair, with the same validation as the test."""
    return [_log_ratio(b, h) for b, h in pairs]
