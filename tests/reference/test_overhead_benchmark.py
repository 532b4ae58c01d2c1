"""benchmarks/test_overhead.py's decision, with the loop's timings faked: the screen of 6 pairs, and the sequential
confirmation that alone may fail it (the screen alone failed 2 of 12 unchanged suite runs beside a noisy
neighbour)."""

from __future__ import annotations

import contextlib
import importlib.util
import random
from pathlib import Path

import pytest

BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "test_overhead.py"


class _Energy:
    meter_name = "fake"

    def __init__(self):
        self.extra_info, self.metrics = {}, {}

    @contextlib.contextmanager
    def measure(self, name, record=True):
        yield

    def record_metric(self, name, unit, values):
        self.metrics[name] = list(values)


def _run(monkeypatch, ratio_of_pair):
    """Run the benchmark with bare loops of 2 s and metered ones of 2 s x ratio_of_pair(i) for pair i."""
    spec = importlib.util.spec_from_file_location("overhead_benchmark", BENCHMARK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    calls = {"metered": 0}

    def timed(fn, *args):
        if fn is module._spin:
            return 2.0
        calls["metered"] += 1
        return 2.0 * ratio_of_pair(calls["metered"] - 1)

    monkeypatch.setattr(module, "_calibrate", lambda: 1)
    monkeypatch.setattr(module, "_spin", lambda n: 0)
    monkeypatch.setattr(module, "_timed", timed)
    energy = _Energy()
    module.test_metering_overhead_under_1_percent(energy)  # the energy mark only annotates: a plain function
    return energy, calls["metered"]


def test_no_overhead_passes_on_the_screen_alone(monkeypatch):
    rng = random.Random(1)
    energy, pairs = _run(monkeypatch, lambda i: rng.gauss(1.0, 0.01))
    assert pairs == 6 and energy.extra_info["confirmation"] is None
    assert len(energy.metrics["metered_to_bare_time_ratio"]) == 6


def test_a_burst_in_the_screen_is_not_confirmed_and_passes(monkeypatch):
    # +10 % in the first six pairs (a neighbour woke up), nothing after: the screen suspects, the confirmation,
    # deciding on every pair, does not convict.
    rng = random.Random(2)
    energy, pairs = _run(monkeypatch, lambda i: rng.gauss(1.10 if i < 6 else 1.0, 0.02))
    assert pairs > 6 and energy.extra_info["overhead_lower95_fraction"] >= 0.01
    assert energy.extra_info["confirmation"] and not energy.extra_info["confirmation"].endswith("REGRESSION")
    assert len(energy.metrics["metered_to_bare_time_ratio"]) == pairs


def test_an_overhead_that_persists_is_confirmed_and_fails(monkeypatch):
    rng = random.Random(3)
    with pytest.raises(AssertionError, match="confirmed by A/B against bare in this job, .* pairs: ratio 1.1"):
        _run(monkeypatch, lambda i: rng.gauss(1.10, 0.02))
