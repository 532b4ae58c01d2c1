from __future__ import annotations

import math
import statistics

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from pytest_energy.errors import UsageError
from pytest_energy.gate.stats import (digamma, f_sf, t_isf, t_sf, trigamma, trigamma_inverse, trimmed, welch,
                                      welch_one_sided)
from pytest_energy.report.json import describe

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)


# --- describe: expected values worked out by hand from pytest-benchmark's definitions -------------------

def test_describe_odd_n_rest_1_matches_pytest_benchmark():
    s = describe([3.0, 1.0, 5.0, 2.0, 4.0])
    # n=5: Q1 = .25*d0 + .75*d1, Q3 = .75*d3 + .25*d4 ("method 3")
    assert s["q1"] == 1.75 and s["q3"] == 4.25 and s["iqr"] == 2.5
    assert s["min"] == 1.0 and s["max"] == 5.0 and s["mean"] == 3.0 and s["median"] == 3.0
    assert s["stddev"] == pytest.approx(math.sqrt(2.5))
    # mean +- stddev = [1.42, 4.58]: 1 and 5 lie outside; Tukey fences [-2, 8]: none
    assert (s["stddev_outliers"], s["iqr_outliers"], s["outliers"]) == (2, 0, "2;0")
    assert s["ld15iqr"] == 1.0 and s["hd15iqr"] == 5.0
    assert s["total"] == 15.0 and s["ops"] == pytest.approx(1 / 3)
    assert (s["rounds"], s["iterations"]) == (5, 1)


def test_describe_odd_n_rest_3_and_the_hd15iqr_quirk():
    s = describe([10.0, 11.0, 12.0, 13.0, 14.0, 15.0, 100.0])
    # n=7: Q1 = .75*d1 + .25*d2 = 11.25, Q3 = .25*d4 + .75*d5 = 14.75, fences [6, 20]
    assert s["q1"] == 11.25 and s["q3"] == 14.75
    assert s["iqr_outliers"] == 1
    assert s["ld15iqr"] == 10.0
    # pytest-benchmark returns the first datum *above* the upper fence (bisect_right), here the outlier
    assert s["hd15iqr"] == 100.0


def test_describe_n9_quartiles():
    s = describe([float(x) for x in range(1, 10)])
    assert s["q1"] == 2.75 and s["q3"] == 7.25  # .25*d1+.75*d2, .75*d6+.25*d7


@pytest.mark.parametrize("data, q1, q3, median", [
    ([4.0, 1.0, 3.0, 2.0], 1.5, 3.5, 2.5),  # even n: medians of the halves
    ([1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 2.0, 5.0, 3.5),
])
def test_describe_even_n(data, q1, q3, median):
    s = describe(data)
    assert (s["q1"], s["q3"], s["median"]) == (q1, q3, median)


def test_describe_single_sample():
    s = describe([2.0])
    assert s["stddev"] == 0 and s["iqr"] == 0 and s["q1"] == s["q3"] == s["ld15iqr"] == s["hd15iqr"] == 2.0
    assert s["ops"] == 0.5 and s["outliers"] == "0;0"


def test_describe_zero_total_gives_zero_ops():
    assert describe([0.0, 0.0])["ops"] == 0


def test_describe_has_exactly_the_pytest_benchmark_keys():
    assert set(describe([1.0, 2.0])) == {
        "min", "max", "mean", "stddev", "median", "iqr", "q1", "q3", "iqr_outliers", "stddev_outliers",
        "outliers", "ld15iqr", "hd15iqr", "ops", "total", "rounds", "iterations"}


def test_describe_empty_is_a_usage_error():
    with pytest.raises(UsageError, match="at least one sample"):
        describe([])


@given(st.lists(finite, min_size=1, max_size=30))
def test_describe_properties(data):
    s = describe(data)
    assert s["min"] <= s["q1"] <= s["median"] <= s["q3"] <= s["max"]
    assert s["mean"] == statistics.mean(data)
    assert s["stddev"] == (statistics.stdev(data) if len(data) > 1 else 0)
    assert s["min"] <= s["ld15iqr"] <= s["max"] and s["min"] <= s["hd15iqr"] <= s["max"]
    assert s["rounds"] == len(data)


# --- trimmed ----------------------------------------------------------------------------------------------

def test_trimmed_keeps_small_samples():
    assert trimmed([3.0, 1.0, 2.0, 9.0]) == [3.0, 1.0, 2.0, 9.0]


def test_trimmed_drops_one_min_and_one_max_in_order():
    assert trimmed([5.0, 1.0, 3.0, 9.0, 4.0]) == [5.0, 3.0, 4.0]
    assert trimmed([1.0, 1.0, 2.0, 3.0, 3.0]) == [1.0, 2.0, 3.0]


# --- Student t ------------------------------------------------------------------------------------------

def test_t_sf_matches_scipy_on_a_grid():
    scipy_stats = pytest.importorskip("scipy.stats")
    for df in (0.5, 1.0, 1.5, 2.0, 3.7, 4.0, 8.0, 30.0, 300.0, 1e4):
        for t in (-40.0, -5.0, -2.0, -0.3, 0.0, 1e-6, 0.3, 1.0, 1.86, 2.5, 5.0, 12.0, 40.0):
            expected = scipy_stats.t.sf(t, df)
            assert t_sf(t, df) == pytest.approx(expected, rel=1e-9, abs=1e-12), (t, df)


@settings(max_examples=200)
@given(st.floats(-60, 60), st.floats(0.2, 5e3))
def test_t_sf_matches_scipy_property(t, df):
    scipy_stats = pytest.importorskip("scipy.stats")
    assert t_sf(t, df) == pytest.approx(scipy_stats.t.sf(t, df), rel=1e-8, abs=1e-12)


def test_t_sf_special_values():
    assert t_sf(0.0, 3.0) == 0.5
    assert t_sf(math.inf, 3.0) == 0.0 and t_sf(-math.inf, 3.0) == 1.0
    assert t_sf(1.0, math.inf) == pytest.approx(0.5 * math.erfc(1 / math.sqrt(2)))
    assert math.isnan(t_sf(math.nan, 3.0)) and math.isnan(t_sf(1.0, 0.0)) and math.isnan(t_sf(1.0, -1.0))
    assert t_sf(1.0, 1.0) == pytest.approx(0.25)  # Cauchy: 1/2 - atan(1)/pi


def test_t_isf_matches_scipy():
    scipy_stats = pytest.importorskip("scipy.stats")
    for df in (0.3, 1.0, 2.0, 2.3, 4.0, 8.0, 22.5, 100.0, 1e4, math.inf):
        for p in (0.5, 0.4, 0.1, 0.05, 0.01, 1e-3, 1e-4, 1e-8):
            assert t_isf(p, df) == pytest.approx(scipy_stats.t.isf(p, df), rel=1e-9, abs=1e-11), (p, df)
    assert math.isnan(t_isf(0.7, 4.0)) and math.isnan(t_isf(0.05, 0.0)) and math.isnan(t_isf(0.0, 4.0))


@settings(max_examples=200)
@given(st.floats(1e-9, 0.5), st.floats(0.5, 1e4))
def test_t_isf_inverts_t_sf(p, df):
    assert t_sf(t_isf(p, df), df) == pytest.approx(p, rel=1e-8)


@settings(max_examples=200)
@given(st.floats(1e-6, 1e6), st.floats(0.5, 50), st.floats(0.5, 200))
def test_f_sf_matches_scipy(f, d1, d2):
    scipy_stats = pytest.importorskip("scipy.stats")
    assert f_sf(f, d1, d2) == pytest.approx(scipy_stats.f.sf(f, d1, d2), rel=1e-7, abs=1e-12)


def test_f_sf_edges():
    scipy_stats = pytest.importorskip("scipy.stats")
    assert f_sf(0.0, 2, 3) == 1.0 and f_sf(math.inf, 2, 3) == 0.0 and math.isnan(f_sf(1.0, 0, 3))
    assert f_sf(2.0, 3, math.inf) == pytest.approx(scipy_stats.chi2.sf(6.0, 3), rel=1e-6)  # F(d1, inf) = chi2/d1


@settings(max_examples=200)
@given(st.floats(min_value=1e-3, max_value=1e4))
def test_digamma_trigamma_and_inverse_match_scipy(x):
    special = pytest.importorskip("scipy.special")
    assert digamma(x) == pytest.approx(special.digamma(x), rel=1e-10, abs=1e-12)
    assert trigamma(x) == pytest.approx(special.polygamma(1, x), rel=1e-10)
    assert trigamma_inverse(trigamma(x)) == pytest.approx(x, rel=1e-6)


def test_special_functions_reject_their_poles():
    for fn in (digamma, trigamma, trigamma_inverse):
        with pytest.raises(ValueError):
            fn(0.0)


# --- Welch ----------------------------------------------------------------------------------------------

@settings(max_examples=100)
@given(st.lists(st.floats(1, 100), min_size=2, max_size=8), st.lists(st.floats(1, 100), min_size=2, max_size=8))
def test_welch_matches_scipy(a, b):
    scipy_stats = pytest.importorskip("scipy.stats")
    # scipy loses precision on (nearly) constant samples; those are covered by our own edge-case tests
    assume(statistics.variance(a) > 1e-6 and statistics.variance(b) > 1e-6)
    greater = scipy_stats.ttest_ind(b, a, equal_var=False, alternative="greater").pvalue
    assert welch_one_sided(a, b) == pytest.approx(greater, rel=1e-7, abs=1e-12)
    assert welch_one_sided(a, b, "less") == pytest.approx(1 - greater, rel=1e-7, abs=1e-12)


def test_welch_statistic_by_hand():
    diff, se, df = welch([1.0, 2.0, 3.0], [2.0, 4.0, 6.0])
    # variances 1 and 4 over n=3: se^2 = 5/3; df = (5/3)^2 / ((1/3)^2/2 + (4/3)^2/2) = 25/8.5
    assert diff == 2.0 and se == pytest.approx(math.sqrt(5 / 3)) and df == pytest.approx(25 / 8.5)


def test_welch_degenerate_inputs_are_nan_not_errors():
    assert math.isnan(welch_one_sided([1.0], [1.0, 2.0]))  # one sample: no variance
    assert math.isnan(welch_one_sided([2.0, 2.0], [2.0, 2.0]))  # constant and equal: 0/0
    assert welch_one_sided([2.0, 2.0], [3.0, 3.0]) == 0.0  # constant, b larger: certain
    assert welch_one_sided([2.0, 2.0], [3.0, 3.0], "less") == 1.0
    assert 0.0 < welch_one_sided([2.0, 2.0], [3.0, 3.1]) < 0.05  # one side constant still works


def test_welch_rejects_bad_arguments():
    with pytest.raises(UsageError):
        welch_one_sided([1.0, 2.0], [1.0, 2.0], "two-sided")
    with pytest.raises(UsageError):
        welch([], [1.0])
