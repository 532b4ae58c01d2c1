"""Per-test settings and the one place that decides marker > command line > ini > default."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from .errors import UsageError

DEFAULT_ROUNDS = 5
DEFAULT_WARMUP = 1
# 8 %: with 5 rounds and 5 % noise it keeps A/A false alarms < 1 % and still catches a 15 % regression
# >= 95 % of the time (benchmarks/gate_statistics.py measures both; docs/statistics.md).
DEFAULT_TOLERANCE = "8%"


def _parse_tolerance(text: Any) -> float:
    # compare.parse_tolerance is the one parser; imported lazily to keep this module light.
    from .compare import parse_tolerance

    return parse_tolerance(text)


@dataclass(frozen=True)
class TestSettings:
    """What one energy benchmark runs with. Frozen: built once per test, then only read."""

    __test__ = False  # not a pytest test class, despite the name

    rounds: int = DEFAULT_ROUNDS
    warmup: int = DEFAULT_WARMUP
    tolerance: float = 0.08  # default relative tolerance for every measured metric
    metric_tolerances: dict[str, float] = field(default_factory=dict)  # per metric overrides
    deterministic_tolerance: float = 0.0  # steps to cut-off, tokens, FLOPs: exact by default
    group: str | None = None
    reference: str | None = None  # node id of the HULK reference benchmark (e.g. BERT-large)

    def __post_init__(self) -> None:
        for name, minimum in (("rounds", 1), ("warmup", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise UsageError(f"energy {name} must be an integer >= {minimum}, got {value!r}")

    def tolerance_for(self, metric: str) -> float:
        return self.metric_tolerances.get(metric, self.tolerance)


MARKER_ARGS = ("rounds", "warmup", "tolerance", "deterministic_tolerance", "group", "reference")


def apply_marker(base: TestSettings, kwargs: dict[str, Any], where: str = "") -> TestSettings:
    """Overlay `@pytest.mark.energy(...)` keyword arguments on the session's settings.

    `tolerance` is either one value ("5%") for every measured metric or a dict per metric
    ({"energy_j": "5%", "duration_s": "15%"}). Unknown arguments are an error, never ignored.
    """
    unknown = sorted(set(kwargs) - set(MARKER_ARGS))
    if unknown:
        raise UsageError(f"{where}energy marker: unknown argument(s) {', '.join(unknown)}; "
                         f"accepted: {', '.join(MARKER_ARGS)}")
    changes: dict[str, Any] = {}
    for key in ("rounds", "warmup", "group", "reference"):
        if key in kwargs:
            changes[key] = kwargs[key]
    if "tolerance" in kwargs:
        tol = kwargs["tolerance"]
        if isinstance(tol, dict):
            changes["metric_tolerances"] = {**base.metric_tolerances,
                                            **{str(k): _parse_tolerance(v) for k, v in tol.items()}}
        else:
            changes["tolerance"] = _parse_tolerance(tol)
    if "deterministic_tolerance" in kwargs:
        changes["deterministic_tolerance"] = _parse_tolerance(kwargs["deterministic_tolerance"])
    try:
        return dataclasses.replace(base, **changes)
    except UsageError as exc:
        raise UsageError(f"{where}{exc}") from None
