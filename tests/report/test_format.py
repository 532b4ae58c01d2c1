"""The one formatter: units, changes and the failure heading read right for people."""

from __future__ import annotations

import pytest

from pytest_energy.gate.compare import compare_metric
from pytest_energy.gate.judge import Outcome
from pytest_energy.records import Metric
from pytest_energy.report.format import change, failure_message, value


def test_dimensionless_values_print_without_a_unit():
    assert value(0.92, "1") == "0.92" and value(0.92, "") == "0.92"
    assert value(12.3, "J") == "12.3 J" and value(None, "J") == "n/a"


@pytest.mark.parametrize("pct, text", [(-1.21e-13, "+0.0 %"), (0.0, "+0.0 %"), (-0.04, "+0.0 %"), (12.34, "+12.3 %"),
                                       (-4.0, "-4.0 %"), (None, "n/a"), (float("inf"), "+inf %")])
def test_changes_of_equal_values_read_as_zero(pct, text):
    assert change(pct) == text


def _regressed(name: str, unit: str, better: str = "lower") -> Outcome:
    base = [1.0, 1.01, 0.99, 1.0, 1.0]
    worse = [x * (1.5 if better == "lower" else 0.5) for x in base]
    verdict = compare_metric(Metric(name, unit, better, "measured", base),
                             Metric(name, unit, better, "measured", worse))
    return Outcome(verdicts=[verdict], baseline_file="baselines/x.json")


@pytest.mark.parametrize("outcome, heading", [
    (_regressed("energy_j", "J"), "energy regression against baselines/x.json:"),
    (_regressed("per_call.duration_s", "s"), "time regression against baselines/x.json:"),
    (_regressed("inference.accuracy", "1", better="higher"), "efficiency regression against baselines/x.json:"),
])
def test_the_failure_heading_names_what_regressed(outcome, heading):
    assert failure_message(outcome).splitlines()[0] == heading
