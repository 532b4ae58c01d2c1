"""Energy-accuracy Pareto frontiers over sweep points. Pure Python: no pytest, no numpy.

A point dominates another when it is at least as good on every objective and strictly better on one.
The frontier is the set of points nothing dominates. Identical points do not dominate each other, so
duplicates on the frontier are all kept; results keep the input order so reports stay stable.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

from ..errors import UsageError

P = TypeVar("P")

DEFAULT_MINIMIZE = ("energy_j",)
DEFAULT_MAXIMIZE = ("accuracy",)


def _get(point: Any, key: str) -> Any:
    if isinstance(point, dict):
        if key not in point:
            raise UsageError(f"point {point!r} has no key {key!r} (keys: {sorted(point)})")
        return point[key]
    if not hasattr(point, key):
        raise UsageError(f"point {point!r} has no attribute {key!r}")
    return getattr(point, key)


def _objectives(points: Sequence[Any], minimize: Sequence[str], maximize: Sequence[str]) -> list[tuple[float, ...]]:
    """Each point as a tuple of values to minimise (maximised axes negated); validates everything."""
    if isinstance(minimize, str) or isinstance(maximize, str):
        # A bare string would be iterated letter by letter: a silent, confusing mistake.
        raise UsageError("minimize and maximize take sequences of key names, e.g. ('energy_j',), not a string")
    if not minimize and not maximize:
        raise UsageError("a Pareto front needs at least one axis in minimize or maximize")
    both = set(minimize) & set(maximize)
    if both:
        raise UsageError(f"axes {sorted(both)} are in both minimize and maximize")
    signed = [(k, 1.0) for k in minimize] + [(k, -1.0) for k in maximize]
    rows = []
    for point in points:
        row = []
        for key, sign in signed:
            raw = _get(point, key)
            if isinstance(raw, bool) or not isinstance(raw, (int, float)):
                raise UsageError(f"point {point!r}: {key}={raw!r} is not a number")
            value = float(raw)
            if math.isnan(value):
                raise UsageError(f"point {point!r}: {key} is NaN; drop or fix unmeasured points first")
            row.append(sign * value)
        rows.append(tuple(row))
    return rows


def _dominates(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    """a dominates b (all objectives minimised)."""
    return all(x <= y for x, y in zip(a, b)) and a != b


def _mask_2d(rows: list[tuple[float, ...]]) -> list[bool]:
    # Sort by the first objective; a point survives when no point with a strictly smaller first
    # objective has a second objective <= its own, and it has the best second objective among
    # points sharing its first objective. O(n log n).
    order = sorted(range(len(rows)), key=lambda i: rows[i])
    keep = [False] * len(rows)
    best_b: float | None = None  # best second objective among strictly smaller first objectives
    i = 0
    while i < len(order):
        a = rows[order[i]][0]
        j = i
        while j < len(order) and rows[order[j]][0] == a:
            j += 1
        group_min_b = rows[order[i]][1]  # sorted, so the group's first has the smallest b
        if best_b is None or group_min_b < best_b:
            for k in order[i:j]:
                keep[k] = rows[k][1] == group_min_b
            best_b = group_min_b
        i = j
    return keep


def _mask_general(rows: list[tuple[float, ...]]) -> list[bool]:
    # In lexicographic order every dominator comes before the points it dominates, and dominance is
    # transitive, so each point only needs checking against the frontier found so far.
    order = sorted(range(len(rows)), key=lambda i: rows[i])
    keep = [False] * len(rows)
    front: list[tuple[float, ...]] = []
    for i in order:
        row = rows[i]
        if not any(_dominates(f, row) for f in front):
            keep[i] = True
            front.append(row)
    return keep


def pareto_mask(points: Sequence[Any], minimize: Sequence[str] = DEFAULT_MINIMIZE,
                maximize: Sequence[str] = DEFAULT_MAXIMIZE) -> list[bool]:
    """For each point (dict or object), True when no other point dominates it."""
    points = list(points)
    rows = _objectives(points, minimize, maximize)
    if not rows:
        return []
    if len(rows[0]) == 1:
        best = min(r[0] for r in rows)
        return [r[0] == best for r in rows]
    if len(rows[0]) == 2:
        return _mask_2d(rows)
    return _mask_general(rows)


def pareto_front(points: Iterable[P], minimize: Sequence[str] = DEFAULT_MINIMIZE,
                 maximize: Sequence[str] = DEFAULT_MAXIMIZE) -> list[P]:
    """The non-dominated points, in input order; points are dicts or objects carrying the axis keys.

    Raises UsageError when a point lacks an axis, an axis value is NaN or not a number, no axis is
    given, or an axis is both minimised and maximised. Infinite values are allowed.
    """
    points = list(points)
    return [p for p, keep in zip(points, pareto_mask(points, minimize, maximize)) if keep]

