"""The run-history rule (gate/history.py): unit cases, hypothesis properties, and scipy cross-checks of every
p-value, of the Welch-Satterthwaite df and of the pooled limma prior. scipy is a test-only dependency."""

from __future__ import annotations

import math
import random
import statistics

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from pytest_energy.gate import history as h
from pytest_energy.gate.history import RunSummary as R
from pytest_energy.records import VerdictKind as V

stats = pytest.importorskip("scipy.stats")
special = pytest.importorskip("scipy.special")
optimize = pytest.importorskip("scipy.optimize")

TOL = 0.08
HIST5 = [R(100.0), R(104.0), R(97.0), R(101.0), R(99.0)]


def judge(current, history, **kwargs):
    kwargs.setdefault("tolerance", TOL)
    return h.judge_against_history(current, history, **kwargs)


def _p_ok(p):
    return math.isnan(p) or 0.0 <= p <= 1.0


# --- the plain history rule -------------------------------------------------------------------------------

def test_plain_rule_matches_scipy_prediction_interval():
    ys = [math.log(x.mean) for x in HIST5]
    cur = 112.0
    t = (math.log(cur) - statistics.fmean(ys)) / (statistics.stdev(ys) * math.sqrt(1 + 1 / 5))
    v = judge([cur], HIST5)
    assert v.rule == "history: 5 runs" and v.k == 5 and v.df == 4
    assert v.p_value == pytest.approx(stats.t.sf(t, 4), rel=1e-9)
    bound = math.exp(statistics.fmean(ys) + stats.t.isf(h.HISTORY_ALPHA, 4) * v.se)
    assert v.bound == pytest.approx(bound, rel=1e-9)


def test_clear_regression_improvement_pass_and_inconclusive():
    assert judge([160.0], HIST5).verdict == V.REGRESSION
    assert judge([60.0], HIST5).verdict == V.IMPROVED
    assert judge([100.5], HIST5).verdict == V.PASS
    # beyond the tolerance but inside the spread of 5 noisy runs: not decided, and the hint says why
    noisy = [R(100.0), R(130.0), R(80.0), R(115.0), R(90.0)]
    v = judge([115.0], noisy)
    assert v.verdict == V.INCONCLUSIVE and "beyond the tolerance but within the spread" in v.hint
    assert "--energy-rounds" in v.hint


def test_limit_is_where_regression_starts():
    v = judge([100.0], HIST5)
    assert judge([v.limit * (1 + 1e-9)], HIST5).verdict == V.REGRESSION
    assert judge([v.limit * (1 - 1e-9)], HIST5).verdict != V.REGRESSION
    vh = judge([100.0], HIST5, better="higher")
    assert vh.limit < 100.0
    assert judge([vh.limit * (1 - 1e-9)], HIST5, better="higher").verdict == V.REGRESSION


def test_three_runs_decide_with_a_pool_and_two_runs_leave_it_to_the_within_run_rule():
    v3 = judge([200.0], HIST5[:3])
    # alone, 3 runs give df = 2: t(0.001, 2) = 22.3, so even 2x stays INCONCLUSIVE ...
    assert v3.k == 3 and v3.rule == "history: 3 runs" and v3.verdict == V.INCONCLUSIVE
    # ... which is why k = 3 needs the pool: a prior of 3 % with d0 = 20 gives df = 22
    pooled = h.Pooled(s0_sq=0.03 ** 2, d0=20.0, probe_normalised=False)
    v3p = judge([200.0], HIST5[:3], pooled=pooled)
    assert v3p.rule == "history: 3 runs, pooled" and v3p.df == 22 and v3p.verdict == V.REGRESSION
    assert judge([200.0], HIST5[:2]) is None


def test_zero_variance_history_is_exact():
    same = [R(50.0)] * 4
    v = judge([50.0], same)
    assert v.verdict == V.PASS and math.isnan(v.p_value) and v.se == 0.0
    assert judge([60.0], same).verdict == V.REGRESSION  # exact difference beyond the tolerance
    assert judge([52.0], same).verdict == V.PASS  # exact, within the tolerance
    assert judge([40.0], same).verdict == V.IMPROVED


def test_non_positive_values_use_the_linear_scale():
    hist = [R(-0.01), R(0.02), R(0.0), R(0.01)]
    v = judge([0.005], hist)
    assert v.scale == "linear" and v.verdict in set(V) and _p_ok(v.p_value)
    assert judge([0.0], [R(0.0)] * 3).verdict == V.PASS


def test_unusable_history_runs_are_skipped_with_a_note():
    v = judge([100.0], HIST5 + [R(math.nan), R(1.0, -1.0), R(1.0, 0.0, 0)])
    assert v.k == 5 and "3 unusable" in v.notes[0]


@pytest.mark.parametrize("kwargs", [dict(better="up"), dict(tolerance=-0.1), dict(tolerance=math.inf),
                                    dict(alpha=0.0), dict(alpha=0.6), dict(bound_alpha=math.nan)])
def test_invalid_arguments_raise(kwargs):
    with pytest.raises(ValueError):
        judge([1.0], HIST5, **kwargs)


@pytest.mark.parametrize("current", [[], [math.nan], [1.0, math.inf]])
def test_current_samples_must_be_finite(current):
    with pytest.raises(ValueError):
        judge(current, HIST5)


def test_huge_and_tiny_values():
    big = [R(1e308), R(0.9e308), R(1.1e308 / 1.2)]
    for cur in ([1e308], [1.7e308, 1.7e308], [5e-324]):
        v = judge(cur, big)
        assert v.verdict in set(V) and _p_ok(v.p_value)
    assert judge([1e308], [R(5e-324), R(1e-320), R(4e-323)]).verdict == V.REGRESSION


def test_rounds_differing_from_history_widen_the_interval():
    hist = [R(100.0 * f, 3.0 * f, 5) for f in (1.0, 1.02, 0.98, 1.01, 0.99)]
    five = judge([102, 98, 101, 99, 100.0], hist)
    one = judge([100.0], hist)
    assert one.se > five.se


# --- probe ------------------------------------------------------------------------------------------------

def test_probe_normalisation_removes_machine_wide_slowness():
    speeds = [1.0, 1.25, 0.9, 1.1, 1.3]
    hist = [R(100.0 * s, probe=0.03 * s) for s in speeds]
    # the whole machine is 40 % slower now: raw that is a regression, normalised it is not
    raw = judge([140.0], hist)
    v = judge([140.0], hist, current_probe=0.042, exponent=1)
    assert v.rule == "history: 5 runs, probe-normalised" and v.verdict == V.PASS
    assert v.change == pytest.approx(0.0, abs=1e-12) and raw.raw_change > 0.25
    assert v.probe_ratio == pytest.approx(0.042 / math.exp(statistics.fmean(math.log(0.03 * s) for s in speeds)))
    # a real 2x slowdown on an equally slow machine still fails, and says what the probe saw
    v2 = judge([280.0], hist, current_probe=0.042, exponent=1)
    assert v2.verdict == V.REGRESSION and "slower" in v2.hint and "raw change" in v2.hint
    # a rate (higher is better) divides the other way
    rates = [R(10.0 / s, probe=0.03 * s) for s in speeds]
    assert judge([10.0 / 1.4], rates, current_probe=0.042, exponent=-1, better="higher").verdict == V.PASS


def test_missing_probe_falls_back_to_raw_with_a_note():
    hist = [R(100.0 * s, probe=None) for s in (1.0, 1.02, 0.98)]
    v = judge([100.0], hist, current_probe=0.03, exponent=1)
    assert "probe" not in v.rule and any("without the probe" in n for n in v.notes)
    v = judge([100.0], [R(100.0, probe=0.03)] * 3, current_probe=None, exponent=1)
    assert "probe" not in v.rule


@pytest.mark.parametrize("unit, e, fam", [("s", 1, "time"), ("ms", 1, "time"), ("example/s", -1, "time"),
                                          ("J", 0, "energy"), ("J/example", 0, "energy"), ("B", 0, "memory"),
                                          ("cpu-s", 0, "other"), ("1", 0, "other"), ("tokens", 0, "other")])
def test_probe_exponent_and_family(unit, e, fam):
    assert h.probe_exponent(unit) == e and h.family(unit) == fam


def test_latency_quantiles_pool_apart_from_the_other_times():
    assert h.family("ms", "inference.ms_per_example_p99") == "tail" == h.family("ms", "x_p90")
    assert h.family("ms", "inference.ms_per_example_p50") == "time" == h.family("ms", "inference.ms_per_example")
    assert h.family("J", "energy_p99") == "energy"


# --- pooling ----------------------------------------------------------------------------------------------

def _suite(rng, n_series=30, k=5, common=0.10, specific=0.03, probe_err=0.01, ids=True):
    runs = [f"run{i}" for i in range(k + 1)]
    c = [rng.gauss(0, common) for _ in runs]
    probes = [math.exp(ci + rng.gauss(0, probe_err)) * 0.03 for ci in c]
    series, now = [], []
    for j in range(n_series):
        level = 10.0 * (1 + j)
        vals = [level * math.exp(ci + rng.gauss(0, specific)) for ci in c]
        series.append([R(vals[i], probe=probes[i], run_id=runs[i] if ids else None) for i in range(k)])
        now.append(vals[k])
    return series, now, probes[k]


def test_pool_finds_the_shared_run_effects():
    rng = random.Random(3)
    series, now, p_now = _suite(rng, probe_err=0.0, specific=0.02)
    pooled = h.pool([(s, 0) for s in series])[False]
    assert pooled.n_series == 30 and pooled.n_runs == 5
    assert 0.03 < math.sqrt(pooled.common_sq) < 0.3  # raw: the 10 % common drift is the shared part
    assert 0.01 < math.sqrt(pooled.s0_sq) < 0.04  # the specific part is ~2 %
    assert pooled.d0 <= h.MAX_PRIOR_DF
    assert h.pool([(s, 1) for s in series])[True].common_sq < 0.0005  # a perfect probe leaves nothing shared


def test_pool_is_order_invariant_and_judge_uses_it():
    rng = random.Random(5)
    series, now, p_now = _suite(rng)
    a = h.pool([(s, 1) for s in series])[True]
    b = h.pool([(s, 1) for s in reversed(series)])[True]
    assert a.s0_sq == pytest.approx(b.s0_sq, rel=1e-9) and a.common_sq == pytest.approx(b.common_sq, abs=1e-12)
    v = judge([now[0]], series[0], pooled={True: a}, current_probe=p_now, exponent=1)
    assert v.rule == "history: 5 runs, probe-normalised, pooled" and v.verdict in (V.PASS, V.INCONCLUSIVE)
    assert judge([now[0] * 1.3], series[0], pooled=a, current_probe=p_now, exponent=1).verdict == V.REGRESSION
    # a pool of another kind (raw) is not applied to a normalised comparison
    raw = h.pool([(s, 0) for s in series])[False]
    assert "pooled" not in judge([now[0]], series[0], pooled=raw, current_probe=p_now, exponent=1).rule


def test_pooled_p_value_matches_scipy_with_satterthwaite_df():
    rng = random.Random(11)
    series, now, p_now = _suite(rng, probe_err=0.03, specific=0.02)
    pooled = h.pool([(s, 1) for s in series])[True]
    hist = series[2]
    k = len(hist)
    y = [math.log(x.mean) - math.log(x.probe) - pooled.run_effects[x.run_id] for x in hist]
    s_v2 = statistics.variance(y) / (1 - 1 / pooled.n_series)
    s_mod = (pooled.d0 * pooled.s0_sq + (k - 1) * s_v2) / (pooled.d0 + k - 1)
    spec = s_mod * (1 + 1 / k)
    common = pooled.common_sq * (1 + 1 / pooled.n_runs)
    se2 = spec + common
    df = se2 ** 2 / (common ** 2 / pooled.common_df + spec ** 2 / (pooled.d0 + k - 1))
    y_now = math.log(now[2] * 1.12) - math.log(p_now)
    t = (y_now - statistics.fmean(y)) / math.sqrt(se2)
    v = judge([now[2] * 1.12], hist, pooled=pooled, current_probe=p_now, exponent=1)
    assert v.df == pytest.approx(df, rel=1e-9)
    assert v.p_value == pytest.approx(stats.t.sf(t, df), rel=1e-8)


def test_runs_without_ids_still_pool_a_prior_but_no_effects():
    rng = random.Random(2)
    series, now, p_now = _suite(rng, ids=False)
    pooled = h.pool([(s, 1) for s in series])[True]
    assert pooled.n_runs == 0 and pooled.common_sq == 0.0 and pooled.d0 > 0


def test_a_much_noisier_series_is_screened_and_not_moderated():
    rng = random.Random(8)
    series, now, p_now = _suite(rng, n_series=40, specific=0.02, probe_err=0.01)
    runs = [x.run_id for x in series[0]]
    noisy = [R(100.0 * math.exp(rng.gauss(0, 0.4)) * x.probe / 0.03, probe=x.probe, run_id=r)
             for x, r in zip(series[0], runs)]
    pooled = h.pool([(s, 1) for s in series] + [(noisy, 1)])[True]
    assert pooled.n_screened >= 1 and pooled.n_series == 40
    quiet_only = h.pool([(s, 1) for s in series])[True]
    assert pooled.s0_sq == pytest.approx(quiet_only.s0_sq, rel=0.05)
    v = judge([100.0 * p_now / 0.03], noisy, pooled=pooled, current_probe=p_now, exponent=1)
    assert any("noisier" in n for n in v.notes) and v.df < len(noisy)


# --- limma's fitFDist against scipy -----------------------------------------------------------------------

def _fit_fdist_scipy(pairs, max_df=math.inf):
    x = [v for v, _ in pairs]
    d = [df for _, df in pairs]
    e = [math.log(xi) - special.digamma(di / 2) + math.log(di / 2) for xi, di in zip(x, d)]
    emean = statistics.fmean(e)
    evar = statistics.variance(e) - statistics.fmean(special.polygamma(1, di / 2) for di in d)
    if evar <= 0:
        d0 = math.inf
    else:
        d0 = 2 * optimize.brentq(lambda q: special.polygamma(1, q) - evar, 1e-8, 1e8, xtol=1e-14, rtol=1e-14)
    d0 = min(d0, max_df)
    s0 = math.exp(emean) if math.isinf(d0) else math.exp(emean + special.digamma(d0 / 2) - math.log(d0 / 2))
    return s0, d0


@pytest.mark.parametrize("seed", range(6))
def test_fit_prior_matches_a_scipy_fitfdist(seed):
    rng = random.Random(seed)
    d0_true = [3.0, 8.0, 40.0, 1e9, 5.0, 15.0][seed]
    pairs = []
    for _ in range(40):
        df = rng.choice([2.0, 4.0, 9.0])
        sigma2 = 0.01 * (d0_true / rng.gammavariate(d0_true / 2, 2.0) if d0_true < 1e8 else 1.0)
        pairs.append((sigma2 * rng.gammavariate(df / 2, 2.0) / df, df))
    s0, d0 = h.fit_prior(pairs, max_df=math.inf)
    s0_ref, d0_ref = _fit_fdist_scipy(pairs)
    assert s0 == pytest.approx(s0_ref, rel=1e-7)
    assert d0 == pytest.approx(d0_ref, rel=1e-6) or (math.isinf(d0) and math.isinf(d0_ref))
    s0c, d0c = h.fit_prior(pairs)
    assert d0c <= h.MAX_PRIOR_DF
    assert s0c == pytest.approx(_fit_fdist_scipy(pairs, h.MAX_PRIOR_DF)[0], rel=1e-7)


def test_fit_prior_degenerate():
    assert h.fit_prior([]) is None
    assert h.fit_prior([(0.0, 4.0)] * 10) is None
    assert h.fit_prior([(0.01, 4.0)] * 10)[1] == h.MAX_PRIOR_DF  # identical: d0 = inf, capped
    assert h.fit_prior([(0.01, 4.0), (math.nan, 4.0), (0.02, 0.0), (0.01, 2.0), (0.03, 3.0)]) is not None


# --- hypothesis properties --------------------------------------------------------------------------------

pos = st.floats(min_value=1e-6, max_value=1e6)
hist_means = st.lists(pos, min_size=3, max_size=10)


@settings(max_examples=200, deadline=None)
@given(hist_means, pos, st.floats(min_value=-200, max_value=200), st.sampled_from(["lower", "higher"]))
def test_scale_invariance(means, cur, log10c, better):
    c = 10.0 ** log10c
    assume(math.isfinite(cur * c) and all(0 < m * c < math.inf for m in means))
    a = judge([cur], [R(m) for m in means], better=better)
    b = judge([cur * c], [R(m * c) for m in means], better=better)
    assert a.verdict == b.verdict
    assert (math.isnan(a.p_value) and math.isnan(b.p_value)) or a.p_value == pytest.approx(b.p_value, abs=1e-9)


@settings(max_examples=200, deadline=None)
@given(hist_means, pos)
def test_direction_symmetry(means, cur):
    """A duration and its rate (1/x, better higher) get the same verdict and p-value."""
    a = judge([cur], [R(m) for m in means], better="lower")
    b = judge([1.0 / cur], [R(1.0 / m) for m in means], better="higher")
    assert a.verdict == b.verdict
    assert (math.isnan(a.p_value) and math.isnan(b.p_value)) or a.p_value == pytest.approx(b.p_value, abs=1e-9)


@settings(max_examples=200, deadline=None)
@given(hist_means, pos, st.floats(min_value=1.0, max_value=100.0))
def test_monotone_in_the_current_value(means, cur, factor):
    hist = [R(m) for m in means]
    if judge([cur], hist).verdict == V.REGRESSION:
        assert judge([cur * factor], hist).verdict == V.REGRESSION
    if judge([cur], hist).verdict == V.IMPROVED:
        assert judge([cur / factor], hist).verdict == V.IMPROVED


@settings(max_examples=150, deadline=None)
@given(hist_means, pos, st.lists(st.floats(min_value=0.5, max_value=2.0), min_size=11, max_size=11),
       st.floats(min_value=0.01, max_value=100.0))
def test_probe_invariance(means, cur, speeds, unit):
    """Rescaling every probe (another probe length) changes nothing; nor does a uniformly slower machine."""
    k = len(means)
    assume(statistics.pstdev([math.log(m) for m in means]) > 1e-6)  # exact ties are decided by rounding
    hist = [R(m * speeds[i], probe=speeds[i]) for i, m in enumerate(means)]
    a = judge([cur * speeds[k]], hist, current_probe=speeds[k], exponent=1)
    hist_u = [R(x.mean, probe=x.probe * unit) for x in hist]
    b = judge([cur * speeds[k]], hist_u, current_probe=speeds[k] * unit, exponent=1)
    c = judge([cur], [R(m, probe=1.0) for m in means], current_probe=1.0, exponent=1)
    assert a.verdict == b.verdict == c.verdict
    assert (math.isnan(a.p_value) and math.isnan(c.p_value)) or a.p_value == pytest.approx(c.p_value, abs=1e-7)


any_float = st.one_of(st.floats(allow_nan=False, allow_infinity=False),
                      st.sampled_from([0.0, -0.0, 1e308, -1e308, 5e-324]))
run = st.builds(R, mean=any_float, sd=st.one_of(st.floats(min_value=0, max_value=1e308), st.just(0.0)),
                n=st.integers(min_value=1, max_value=10),
                run_id=st.one_of(st.none(), st.sampled_from(["a", "b", "c", "d"])),
                probe=st.one_of(st.none(), st.floats(min_value=1e-9, max_value=1e9), st.just(0.0)))


@settings(max_examples=400, deadline=None)
@given(st.lists(any_float, min_size=1, max_size=6), st.lists(run, max_size=12), st.sampled_from(["lower", "higher"]),
       st.sampled_from([0, 1, -1]), st.one_of(st.none(), st.floats(min_value=1e-9, max_value=1e9)),
       st.floats(min_value=0.0, max_value=10.0))
def test_never_crashes(current, history, better, exponent, current_probe, tolerance):
    for pooled in (None, h.pool([(history, exponent), (history[::-1], exponent), (history[1:], exponent)])):
        v = judge(current, history, better=better, exponent=exponent, current_probe=current_probe,
                  tolerance=tolerance, pooled=pooled)
        assert v is None or (v.verdict in set(V) and _p_ok(v.p_value))


@settings(max_examples=150, deadline=None)
@given(st.floats(min_value=1e-300, max_value=1e300), st.integers(min_value=3, max_value=10),
       st.integers(min_value=1, max_value=5))
def test_equal_values_pass(value, k, n):
    v = judge([value] * n, [R(value, 0.0, n)] * k)
    assert v.verdict == V.PASS and v.change == 0.0


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=0, max_value=10 ** 6))
def test_a_doubled_value_is_found_against_ten_runs_of_5_percent_noise(seed):
    """Plain interval: t = ln 2 / (0.05 sqrt(1.1)) = 13 against t(0.001, 9) = 4.3, so a doubled value is a
    REGRESSION for any draw the noise can plausibly make."""
    rng = random.Random(seed)
    hist = [R(100.0 * math.exp(rng.gauss(0, 0.05))) for _ in range(10)]
    assert judge([200.0 * math.exp(rng.gauss(0, 0.05))], hist).verdict == V.REGRESSION
