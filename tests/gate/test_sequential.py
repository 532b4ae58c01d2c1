"""The same-job A/B rule (gate/sequential.py): unit cases, hypothesis properties, the spending design against
scipy's t quantiles, and a seeded Monte-Carlo check of the error rates."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_energy.gate import sequential as sq
from pytest_energy.gate.sequential import Decision as D

TOL = 0.08
MIRROR = {D.REGRESSION: D.IMPROVED, D.IMPROVED: D.REGRESSION, D.SAME: D.SAME, D.UNKNOWN: D.UNKNOWN,
          D.CONTINUE: D.CONTINUE}

values = st.floats(min_value=1e-3, max_value=1e3, allow_nan=False, allow_infinity=False)
pair = st.tuples(values, values)


def near(ratio_sd: float, seed: int, n: int, ratio: float = 1.0) -> list[tuple[float, float]]:
    rng = random.Random(seed)
    return [(10.0, 10.0 * ratio * math.exp(rng.gauss(0.0, ratio_sd))) for _ in range(n)]


# --- unit cases ------------------------------------------------------------------------------------------

def test_a_clear_regression_is_named_in_the_issues_form():
    pairs = [(1.0, 1.31), (2.0, 2.62), (1.0, 1.30), (1.0, 1.33), (1.0, 1.29), (1.0, 1.32)]
    step = sq.decide(pairs, tolerance=TOL, base_ref="1a2b3c4")
    assert step.decision is D.REGRESSION
    assert step.low < step.ratio < step.high
    assert step.text() == (f"A/B against 1a2b3c4 in this job, {step.pairs} pairs: "
                           f"ratio 1.31 [{step.low:.2f}, {step.high:.2f}]")
    assert 1.0 < step.low and step.high < 1.6


def test_ratio_is_the_geometric_mean_of_head_over_base():
    step = sq.decide([(1.0, 1.2), (1.0, 1.5), (2.0, 2.0)], tolerance=TOL, max_pairs=3)
    assert step.ratio == pytest.approx((1.2 * 1.5 * 1.0) ** (1 / 3))


def test_unchanged_code_on_quiet_pairs_is_same_early():
    step = sq.decide(near(0.02, 1, 10), tolerance=TOL)
    assert step.decision is D.SAME and step.pairs < 10


def test_identical_ratios_decide_at_the_third_pair():
    assert sq.decide([(1.0, 1.2)] * 10, tolerance=TOL).decision is D.REGRESSION
    assert sq.decide([(1.0, 1.2)] * 10, tolerance=TOL).pairs == 3
    assert sq.decide([(5.0, 5.0)] * 10, tolerance=TOL).decision is D.SAME
    assert sq.decide([(1.2, 1.0)] * 10, tolerance=TOL).decision is D.IMPROVED


def test_a_significant_change_within_the_tolerance_is_not_a_regression():
    step = sq.decide([(1.0, 1.05)] * 10, tolerance=TOL)
    assert step.decision is D.SAME


def test_noisy_pairs_run_out_of_budget_as_unknown():
    step = sq.decide(near(0.4, 3, 20, ratio=1.1), tolerance=TOL, max_pairs=6)
    assert step.decision is D.UNKNOWN and step.pairs == 6
    assert "6 pairs: ratio" in step.text()


def test_higher_is_better_flips_the_direction():
    pairs = [(100.0, 70.0)] * 4  # throughput fell 30 %
    assert sq.decide(pairs, tolerance=TOL, better="higher").decision is D.REGRESSION
    assert sq.decide(pairs, tolerance=TOL, better="lower").decision is D.IMPROVED


def test_too_few_pairs_continue_without_an_interval():
    test = sq.SequentialTest(tolerance=TOL)
    step = test.add(1.0, 3.0)
    assert step.decision is D.CONTINUE and math.isnan(step.low)
    assert step.text() == "A/B in this job, 1 pair: ratio 3.00"
    assert sq.decide([(1.0, 3.0), (1.0, 3.0)], tolerance=TOL).decision is D.CONTINUE


def test_adding_after_the_decision_is_an_error():
    test = sq.SequentialTest(tolerance=TOL)
    for _ in range(3):
        step = test.add(1.0, 2.0)
    assert step.decision is D.REGRESSION
    with pytest.raises(ValueError, match="already decided REGRESSION after 3 pairs"):
        test.add(1.0, 2.0)


@pytest.mark.parametrize("base, head", [(0.0, 1.0), (1.0, -2.0), (math.nan, 1.0), (1.0, math.inf), (True, 1.0),
                                        ("1", 1.0)])
def test_values_must_be_finite_and_positive(base, head):
    test = sq.SequentialTest(tolerance=TOL)
    with pytest.raises(ValueError, match="finite values > 0"):
        test.add(base, head)
    assert test.log_ratios == []  # nothing half-added


@pytest.mark.parametrize("kwargs, match", [
    (dict(tolerance=0.0), "tolerance"), (dict(tolerance=math.nan), "tolerance"), (dict(tolerance=-0.1), "tolerance"),
    (dict(tolerance=TOL, better="faster"), "better"), (dict(tolerance=TOL, max_pairs=2), "max_pairs"),
    (dict(tolerance=TOL, alpha=0.0), "alpha"), (dict(tolerance=TOL, beta=0.7), "beta"),
])
def test_bad_settings_are_clear_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        sq.SequentialTest(**kwargs)


def test_decide_needs_pairs():
    with pytest.raises(ValueError, match="at least one"):
        sq.decide([], tolerance=TOL)


def test_pairs_after_the_decision_are_ignored():
    step = sq.decide([(1.0, 2.0)] * 3 + [(1.0, math.nan)], tolerance=TOL)
    assert step.decision is D.REGRESSION and step.pairs == 3


def test_pair_orders_are_seeded_and_random():
    a = list(sq.pair_orders(7, 40))
    assert a == list(sq.pair_orders(7, 40))
    assert a != list(sq.pair_orders(8, 40))
    assert set(a) == {("base", "head"), ("head", "base")} and len(a) == 40
    with pytest.raises(ValueError):
        list(sq.pair_orders(1, -1))


# --- the design ------------------------------------------------------------------------------------------

def test_spending_is_bonferroni_and_sums_to_alpha_and_beta():
    stats = pytest.importorskip("scipy.stats")
    bounds = sq.boundaries(10, 0.001, 0.05)
    assert len(bounds) == 10 - sq.MIN_PAIRS + 1
    spent_a = sum(stats.t.sf(a, n - 1) for n, (a, _) in enumerate(bounds, start=sq.MIN_PAIRS))
    spent_b = sum(stats.t.sf(b, n - 1) for n, (_, b) in enumerate(bounds, start=sq.MIN_PAIRS))
    assert spent_a == pytest.approx(0.001, rel=1e-6)
    assert spent_b == pytest.approx(0.05, rel=1e-6)
    # RHO = 2 spends more on later looks than on earlier ones
    shares = [stats.t.sf(a, n - 1) for n, (a, _) in enumerate(bounds, start=sq.MIN_PAIRS)]
    assert shares == sorted(shares)


# --- properties ------------------------------------------------------------------------------------------

@settings(max_examples=150, deadline=None)
@given(st.lists(pair, min_size=1, max_size=12), st.integers(min_value=-30, max_value=30))
def test_scaling_both_sides_does_not_change_the_decision(pairs, k):
    c = 2.0 ** k  # exact in binary floating point
    a = sq.decide(pairs, tolerance=TOL)
    b = sq.decide([(x * c, y * c) for x, y in pairs], tolerance=TOL)
    assert (a.decision, a.pairs) == (b.decision, b.pairs)


@settings(max_examples=150, deadline=None)
@given(st.lists(pair, min_size=1, max_size=12), st.sampled_from(["lower", "higher"]))
def test_swapping_base_and_head_mirrors_the_decision(pairs, better):
    a = sq.decide(pairs, tolerance=TOL, better=better)
    b = sq.decide([(y, x) for x, y in pairs], tolerance=TOL, better=better)
    assert b.decision is MIRROR[a.decision] and b.pairs == a.pairs
    assert b.ratio == pytest.approx(1.0 / a.ratio)


@settings(max_examples=150, deadline=None)
@given(st.lists(pair, min_size=1, max_size=15), st.integers(min_value=3, max_value=8))
def test_never_before_three_pairs_and_unknown_at_the_budget(pairs, max_pairs):
    step = sq.decide(pairs, tolerance=TOL, max_pairs=max_pairs)
    assert step.pairs <= max_pairs
    if step.pairs < sq.MIN_PAIRS:
        assert step.decision is D.CONTINUE
    if len(pairs) >= max_pairs:
        assert step.final
    if step.decision is D.UNKNOWN:
        assert step.pairs == max_pairs
    if step.pairs < len(pairs):
        assert step.final  # it stopped because it decided


@settings(max_examples=100, deadline=None)
@given(st.lists(pair, min_size=3, max_size=10))
def test_regression_means_beyond_tolerance_and_outside_the_interval(pairs):
    step = sq.decide(pairs, tolerance=TOL)
    if step.decision is D.REGRESSION:
        assert step.ratio > 1.0 + TOL and step.low > 1.0
    if step.decision is D.IMPROVED:
        assert step.ratio < 1.0 / (1.0 + TOL) and step.high < 1.0


# --- Monte Carlo: the error rates are in the right region (loose bounds, fixed seed) --------------------------

def _rates(delta: float, sd: float, trials: int, seed: int, **kw) -> dict[D, float]:
    rng = random.Random(seed)
    out: dict[D, int] = {}
    for _ in range(trials):
        test = sq.SequentialTest(tolerance=TOL, **kw)
        for _ in range(test.max_pairs):
            step = test.add(1.0, math.exp(delta + rng.gauss(0.0, sd)))
            if step.final:
                break
        out[step.decision] = out.get(step.decision, 0) + 1
    return {k: v / trials for k, v in out.items()}


def test_monte_carlo_error_rates_at_a_detectable_alpha():
    # alpha 0.05 so that the false-alarm bound can be seen with 600 trials; sd 10 % so that the test is pushed
    at_one = _rates(0.0, 0.10, 600, seed=11, alpha=0.05, beta=0.10)
    assert at_one.get(D.REGRESSION, 0.0) <= 0.05 + 0.02  # by design <= alpha (Bonferroni: well below)
    at_two_tol = _rates(math.log1p(2 * TOL), 0.10, 600, seed=12, alpha=0.05, beta=0.10)
    assert at_two_tol.get(D.SAME, 0.0) + at_two_tol.get(D.IMPROVED, 0.0) <= 0.10 + 0.03


def test_monte_carlo_defaults_on_pairs_as_noisy_as_measured():
    quiet_same = _rates(0.0, 0.05, 400, seed=21)
    assert quiet_same.get(D.REGRESSION, 0.0) == 0.0 and quiet_same.get(D.SAME, 0.0) > 0.95
    quiet_bad = _rates(math.log1p(2 * TOL), 0.05, 400, seed=22)
    assert quiet_bad.get(D.REGRESSION, 0.0) > 0.95
    # very noisy pairs: the budget runs out rather than a wrong verdict
    noisy = _rates(0.0, 0.30, 400, seed=23)
    assert noisy.get(D.UNKNOWN, 0.0) > 0.8 and noisy.get(D.REGRESSION, 0.0) == 0.0
    noisy_bad = _rates(math.log1p(2 * TOL), 0.30, 400, seed=24)
    assert noisy_bad.get(D.SAME, 0.0) <= 0.05 and noisy_bad.get(D.UNKNOWN, 0.0) > 0.7


@settings(max_examples=80, deadline=None)
@given(st.lists(pair, min_size=0, max_size=5), st.one_of(st.floats(max_value=0.0), st.just(math.nan),
                                                         st.just(math.inf)), st.booleans())
def test_any_non_positive_or_non_finite_value_is_a_clear_error(good, bad, on_head):
    test = sq.SequentialTest(tolerance=TOL, max_pairs=12)
    for base, head in good:
        if test.step is not None and test.step.final:
            return  # decided: the caller measures no more
        test.add(base, head)
    if test.step is not None and test.step.final:
        return
    before = list(test.log_ratios)
    base, head = (1.0, bad) if on_head else (bad, 1.0)
    with pytest.raises(ValueError, match="finite values > 0 on both sides"):
        test.add(base, head)
    assert test.log_ratios == before  # the pairs so far are kept
