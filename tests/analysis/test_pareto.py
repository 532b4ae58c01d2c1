from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_energy.errors import UsageError
from pytest_energy.analysis.pareto import pareto_front, pareto_mask


def brute_force_mask(points, minimize, maximize):
    def better_or_equal(a, b):
        return (all(a[k] <= b[k] for k in minimize) and all(a[k] >= b[k] for k in maximize))

    def dominates(a, b):
        return better_or_equal(a, b) and not better_or_equal(b, a)

    return [not any(dominates(q, p) for q in points) for p in points]


# Few distinct values, so ties and exact duplicates are common.
small_values = st.sampled_from([0.0, 1.0, 2.0, 2.5, 3.0, -1.0, math.inf])


@st.composite
def point_sets(draw):
    n_min = draw(st.integers(0, 3))
    n_max = draw(st.integers(0 if n_min else 1, 3))
    minimize = tuple(f"m{i}" for i in range(n_min))
    maximize = tuple(f"M{i}" for i in range(n_max))
    keys = minimize + maximize
    pts = draw(st.lists(st.fixed_dictionaries({k: small_values for k in keys}), max_size=30))
    if pts and draw(st.booleans()):
        pts += draw(st.lists(st.sampled_from(pts), max_size=5))  # explicit duplicates
    return pts, minimize, maximize


@settings(max_examples=400, deadline=None)
@given(point_sets())
def test_matches_brute_force_with_ties_and_duplicates(case):
    points, minimize, maximize = case
    expected = brute_force_mask(points, minimize, maximize)
    assert pareto_mask(points, minimize, maximize) == expected
    assert pareto_front(points, minimize, maximize) == [p for p, k in zip(points, expected) if k]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(-1e6, 1e6, allow_nan=False), st.floats(0, 1, allow_nan=False)), max_size=40))
def test_2d_continuous_values_match_brute_force(pairs):
    points = [{"energy_j": e, "accuracy": a} for e, a in pairs]
    assert pareto_mask(points) == brute_force_mask(points, ("energy_j",), ("accuracy",))


def test_default_axes_energy_and_accuracy_keep_input_order():
    pts = [
        {"name": "big", "energy_j": 10.0, "accuracy": 0.93},
        {"name": "dominated", "energy_j": 5.0, "accuracy": 0.80},
        {"name": "small", "energy_j": 1.0, "accuracy": 0.90},
        {"name": "dup-small", "energy_j": 1.0, "accuracy": 0.90},
        {"name": "cheap", "energy_j": 0.5, "accuracy": 0.70},
    ]
    assert [p["name"] for p in pareto_front(pts)] == ["big", "small", "dup-small", "cheap"]


def test_objects_with_attributes():
    @dataclass
    class Pt:
        energy_j: float
        accuracy: float

    pts = [Pt(2, 0.9), Pt(1, 0.9), Pt(3, 0.95)]
    assert pareto_front(pts) == [Pt(1, 0.9), Pt(3, 0.95)]


def test_empty_input_gives_empty_front():
    assert pareto_front([]) == []


@pytest.mark.parametrize("bad, match", [
    ({"accuracy": 0.9}, "no key 'energy_j'"),
    ({"energy_j": math.nan, "accuracy": 0.9}, "NaN"),
    ({"energy_j": "1.0", "accuracy": 0.9}, "not a number"),
    ({"energy_j": None, "accuracy": 0.9}, "not a number"),
])
def test_bad_points_raise_usage_error(bad, match):
    with pytest.raises(UsageError, match=match):
        pareto_front([{"energy_j": 1.0, "accuracy": 0.5}, bad])


def test_bad_axes_raise_usage_error():
    with pytest.raises(UsageError, match="at least one axis"):
        pareto_front([{"a": 1}], minimize=(), maximize=())
    with pytest.raises(UsageError, match="both"):
        pareto_front([{"a": 1}], minimize=("a",), maximize=("a",))
    with pytest.raises(UsageError, match="not a string"):
        pareto_front([{"a": 1}], minimize="a", maximize=())
    with pytest.raises(UsageError, match="no attribute"):
        pareto_front([object()])


def test_thousands_of_points_are_fast():
    rng = random.Random(0)
    pts2 = [{"energy_j": rng.random(), "accuracy": rng.random()} for _ in range(20000)]
    pts3 = [{"energy_j": rng.random(), "ms": rng.random(), "accuracy": rng.random()} for _ in range(3000)]
    t0 = time.perf_counter()
    front2 = pareto_front(pts2)
    front3 = pareto_front(pts3, minimize=("energy_j", "ms"))
    assert time.perf_counter() - t0 < 5.0
    assert 0 < len(front2) < 200 and 0 < len(front3) < len(pts3)
    # Spot-check the 3-D result against brute force on a subset.
    sub, axes = pts3[:300], (("energy_j", "ms"), ("accuracy",))
    assert pareto_mask(sub, *axes) == brute_force_mask(sub, *axes)
