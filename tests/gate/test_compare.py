from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_energy.config import DEFAULT_TOLERANCE, TestSettings, parse_tolerance
from pytest_energy.gate.compare import DEFAULT_ALPHA, Verdict, compare_metric, compare_record
from pytest_energy.errors import UsageError
from pytest_energy.report.format import verdict_line
from pytest_energy.records import Metric


def energy(samples, better="lower", kind="measured", name="energy_j", unit="J"):
    return Metric(name, unit, better, kind, [float(x) for x in samples])


# --- parse_tolerance ------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("10%", 0.10), ("7.5%", 0.075), ("0.1", 0.1), ("0%", 0.0), (" 5% ", 0.05), ("150%", 1.5), (".5", 0.5),
])
def test_parse_tolerance_accepts(text, expected):
    assert parse_tolerance(text) == pytest.approx(expected)


@pytest.mark.parametrize("text", ["-5%", "-0.1", "abc", "10 %", "10%%", "nan", "NaN%", "inf", "", "%", "1e-2",
                                  "5%5", "0x10"])
def test_parse_tolerance_rejects_with_the_value_and_the_syntax(text):
    with pytest.raises(UsageError) as exc:
        parse_tolerance(text)
    assert repr(text) in str(exc.value) and "'10%'" in str(exc.value) and "'0.1'" in str(exc.value)


@given(st.decimals(min_value=0, max_value=1000, places=3, allow_nan=False, allow_infinity=False))
def test_parse_tolerance_round_trip(value):
    assert parse_tolerance(f"{value}%") == pytest.approx(float(value) / 100, rel=1e-12, abs=1e-15)
    assert parse_tolerance(f"{value}") == pytest.approx(float(value), rel=1e-12, abs=1e-15)


# --- compare_metric: measured ---------------------------------------------------------------------------

BASE = [100.0, 101.0, 99.0, 100.5, 99.5]


def test_clear_regression():
    v = compare_metric(energy(BASE), energy([x * 1.2 for x in BASE]))
    assert v.verdict == "REGRESSION"
    assert v.change_pct == pytest.approx(20.0) and v.p_value < 0.001
    assert v.baseline_value == pytest.approx(100.0) and v.current_value == pytest.approx(120.0)
    assert (v.n_baseline, v.n_current, v.tolerance) == (5, 5, DEFAULT_TOLERANCE)


def test_clear_improvement():
    v = compare_metric(energy(BASE), energy([x * 0.8 for x in BASE]))
    assert v.verdict == "IMPROVED" and v.change_pct == pytest.approx(-20.0) and v.p_value < 0.001


def test_higher_is_better_decrease_is_a_regression():
    v = compare_metric(energy(BASE, better="higher"), energy([x * 0.8 for x in BASE], better="higher"))
    assert v.verdict == "REGRESSION" and v.change_pct == pytest.approx(-20.0)


def test_small_change_within_tolerance_passes():
    v = compare_metric(energy(BASE), energy([x * 1.03 for x in BASE]))
    assert v.verdict == "PASS" and v.p_value < 0.05  # significant, but within 8 %: not a regression


def test_beyond_tolerance_but_noisy_is_inconclusive_with_a_hint():
    base = [100.0, 70.0, 130.0, 90.0, 110.0]
    v = compare_metric(energy(base), energy([x * 1.15 for x in base]))
    assert v.verdict == "INCONCLUSIVE" and "--energy-rounds" in v.hint


def test_within_tolerance_but_too_noisy_to_rule_out_a_regression_is_inconclusive():
    base = [100.0, 60.0, 140.0, 80.0, 120.0]
    v = compare_metric(energy(base), energy(base))  # no change at all, but 30 % spread
    assert v.verdict == "INCONCLUSIVE" and "cannot be ruled out" in v.hint


def test_tolerance_and_alpha_are_honoured():
    cur = [x * 1.12 for x in BASE]
    assert compare_metric(energy(BASE), energy(cur), tolerance=0.10).verdict == "REGRESSION"
    assert compare_metric(energy(BASE), energy(cur), tolerance=0.15).verdict == "PASS"
    with pytest.raises(UsageError):
        compare_metric(energy(BASE), energy(cur), tolerance=-0.1)
    with pytest.raises(UsageError):
        compare_metric(energy(BASE), energy(cur), alpha=0.9)


def test_single_round_gives_no_statistics():
    v = compare_metric(energy([100.0]), energy([130.0]))
    assert v.verdict == "INCONCLUSIVE" and math.isnan(v.p_value) and "single sample" in v.hint
    v = compare_metric(energy([100.0]), energy([101.0]))
    assert v.verdict == "PASS" and "single sample" in v.hint


def test_constant_samples_are_exact():
    assert compare_metric(energy([5.0] * 3), energy([6.0] * 3)).verdict == "REGRESSION"
    v = compare_metric(energy([5.0] * 3), energy([5.0] * 3))
    assert v.verdict == "PASS" and v.change_pct == 0.0


def test_zero_baseline_does_not_divide_by_zero():
    v = compare_metric(energy([0.0, 0.0, 0.0]), energy([1.0, 1.0, 1.0]))
    assert v.verdict == "REGRESSION" and v.change_pct == math.inf


def test_changed_unit_is_not_compared_number_for_number():
    v = compare_metric(energy(BASE, unit="J"), energy([x / 1000 for x in BASE], unit="kJ"))
    assert v.verdict == "INCONCLUSIVE" and "unit changed" in v.hint and v.change_pct is None


# --- compare_metric: deterministic ----------------------------------------------------------------------

def test_deterministic_any_change_fails_at_zero_tolerance():
    v = compare_metric(energy([100], kind="deterministic", unit="steps"),
                       energy([101], kind="deterministic", unit="steps"), tolerance=0.0)
    assert v.verdict == "REGRESSION" and v.p_value is None and v.change_pct == pytest.approx(1.0)
    assert compare_metric(energy([100], kind="deterministic"), energy([101], kind="deterministic"),
                          tolerance=0.05).verdict == "PASS"
    assert compare_metric(energy([100], kind="deterministic", better="higher"),
                          energy([90], kind="deterministic", better="higher"), tolerance=0.05).verdict == "REGRESSION"
    assert compare_metric(energy([100], kind="deterministic"), energy([90], kind="deterministic"),
                          tolerance=0.0).verdict == "IMPROVED"


# --- properties -----------------------------------------------------------------------------------------

samples_st = st.lists(st.floats(min_value=0.1, max_value=1e4), min_size=1, max_size=8)


@settings(max_examples=200)
@given(samples_st, st.sampled_from(["lower", "higher"]), st.floats(0, 0.5))
def test_identical_samples_never_regress_or_improve(samples, better, tolerance):
    v = compare_metric(energy(samples, better), energy(samples, better), tolerance)
    assert v.verdict in ("PASS", "INCONCLUSIVE")


@settings(max_examples=300)
@given(samples_st, samples_st, st.floats(0, 0.5))
def test_direction_symmetry(a, b, tolerance):
    lower = compare_metric(energy(a, "lower"), energy(b, "lower"), tolerance).verdict
    higher = compare_metric(energy(a, "higher"), energy(b, "higher"), tolerance).verdict
    assert (lower == "REGRESSION") == (higher == "IMPROVED")
    assert (lower == "IMPROVED") == (higher == "REGRESSION")


@settings(max_examples=200)
@given(samples_st, samples_st)
def test_regression_needs_change_beyond_tolerance_and_significance(a, b):
    v = compare_metric(energy(a), energy(b))
    if v.verdict == "REGRESSION":
        assert v.change_pct > DEFAULT_TOLERANCE * 100 and v.p_value < DEFAULT_ALPHA


def test_error_rates_on_simulated_noise():
    """A quick version of benchmarks/gate_statistics.py: 5 rounds, 5 % noise."""
    rng = random.Random(7)

    def run(factor):
        base = [100 * (1 + 0.05 * rng.gauss(0, 1)) for _ in range(5)]
        cur = [factor * 100 * (1 + 0.05 * rng.gauss(0, 1)) for _ in range(5)]
        return compare_metric(energy(base), energy(cur)).verdict

    false_alarms = sum(run(1.0) == "REGRESSION" for _ in range(1000))
    detections = sum(run(1.15) == "REGRESSION" for _ in range(1000))
    assert false_alarms <= 20 and detections >= 940


# --- compare_record -------------------------------------------------------------------------------------

TOL_10 = TestSettings(tolerance=0.1).tolerance_for


def test_compare_record():
    baseline = {"energy_j": energy(BASE), "duration_s": energy(BASE, name="duration_s", unit="s"),
                "gone": energy(BASE, name="gone"),
                "steps": energy([10], kind="deterministic", name="steps", unit="steps")}
    current = {"energy_j": energy([x * 1.12 for x in BASE]),
               "duration_s": energy([x * 1.12 for x in BASE], name="duration_s", unit="s"),
               "steps": energy([11], kind="deterministic", name="steps", unit="steps"),
               "new": energy(BASE, name="new")}
    settings = TestSettings(tolerance=0.1, metric_tolerances={"duration_s": 0.2}, deterministic_tolerance=0.2)
    verdicts = compare_record(baseline, current, settings.tolerance_for)
    by_name = {v.metric: v for v in verdicts}
    assert [v.metric for v in verdicts] == sorted(current)  # "gone" (baseline only) is ignored
    assert by_name["energy_j"].verdict == "REGRESSION" and by_name["energy_j"].tolerance == 0.1
    assert by_name["duration_s"].verdict == "PASS" and by_name["duration_s"].tolerance == 0.2
    assert by_name["steps"].verdict == "PASS" and by_name["steps"].tolerance == 0.2
    assert by_name["new"].verdict == "NO_BASELINE" and by_name["new"].baseline_value is None


def test_message_names_everything():
    v = compare_metric(energy(BASE), energy([x * 1.2 for x in BASE]))
    msg = verdict_line(v)
    for part in ("energy_j", "100 J", "120 J", "+20.0 %", "p=", "REGRESSION", "tolerance 8 %", "within-run Welch"):
        assert part in msg, part
    assert "no baseline" in verdict_line(compare_record({}, {"energy_j": energy(BASE)}, TOL_10)[0])


def test_verdict_round_trips_through_plain_data():
    v = compare_metric(energy(BASE), energy(BASE))
    assert Verdict.from_dict(v.to_dict()) == v
    assert all(type(x) in (str, int, float, type(None)) for x in v.to_dict().values())  # execnet-safe
