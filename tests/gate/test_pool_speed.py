"""The start-up pooling's fast paths (gate/history.py, gate/judge.pool_histories) decide exactly as the plain
rules they stand for: same series, same screening, same numbers to the last bit."""

from __future__ import annotations

import gc
import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_energy.gate import history as h
from pytest_energy.gate.baselines import BaselineEntry
from pytest_energy.gate.history import RunSummary as R
from pytest_energy.gate.judge import pool_histories
from pytest_energy.measure.probe import PROBE_ID
from pytest_energy.records import Metric

ODD = st.sampled_from([math.nan, math.inf, -1.0, 0.0, 2, True])
MEANS = st.one_of(st.floats(1e-3, 1e3), ODD)
PROBES = st.one_of(st.none(), st.floats(0.01, 0.1), ODD)
IDS = st.one_of(st.none(), st.sampled_from(["a", "b", "c", "d", "e", ""]))
RUN = st.builds(R, MEANS, st.one_of(st.floats(0.0, 10.0), ODD), st.sampled_from([1, 3, 5, 0, True]), IDS, PROBES)


@settings(max_examples=300, deadline=None)
@given(st.lists(RUN, max_size=8), st.sampled_from([0, 1, -1]), st.sampled_from([1, 2, 3]),
       st.one_of(st.none(), st.dictionaries(st.sampled_from(["a", "b", "c", "d", "e", ""]), PROBES)))
def test_the_fast_series_path_agrees_with_the_run_by_run_one(history, exponent, min_runs, probes):
    fast = h._keyed_fast(history, exponent, probes, min_runs)
    if fast is not None:
        assert fast == h._keyed_slow(history, exponent, probes, 0, min_runs)


def test_the_fast_series_path_takes_the_common_case():
    history = [R(100.0 + i, 1.0, 5, f"r{i}") for i in range(5)]
    probes = {f"r{i}": 0.03 for i in range(5)}
    assert h._keyed_fast(history, 1, probes, 3) == h._keyed_slow(history, 1, probes, 0, 3)
    assert h._keyed_fast(history, 1, probes, 3)[0] is True
    assert h._keyed_fast(history, 0, None, 3) == (False, {f"r{i}": math.log(100.0 + i) for i in range(5)})
    assert h._keyed_fast(history, 1, {**probes, "r2": None}, 3) is None  # partly probed: run by run


@pytest.mark.parametrize("d0", [2.0, 7.5, 20.0, math.inf])
def test_the_bracketed_noise_screen_decides_as_f_sf(d0):
    rng = random.Random(4)
    noisier = h._NoisierThan(0.01, d0)
    for df in (1.0, 2.0, 4.0, 9.0):
        lo, hi = noisier._bracket(df)
        ratios = [lo, hi, (lo + hi) / 2, lo * (1 - 1e-12), hi * (1 + 1e-12), 0.0] if math.isfinite(hi) else [lo, 0.0]
        ratios += [rng.lognormvariate(0.0, 2.0) for _ in range(200)]
        for ratio in ratios:
            assert noisier(ratio * 0.01, df) == h._noisier(ratio * 0.01, df, 0.01, d0), (df, ratio)
    for var, df in ((math.inf, 3.0), (math.nan, 3.0), (1.0, 0.0)):
        assert noisier(var, df) == h._noisier(var, df, 0.01, d0)


def _entry(nodeid, rng, run_ids, machine, probed=True):
    metrics, history = {}, {}
    for name, unit in (("duration_s", "s"), ("energy_j", "J"), ("tokens", "1")):
        centre = rng.uniform(1.0, 10.0)
        kind = "deterministic" if name == "tokens" else "measured"
        metrics[name] = Metric(name, unit, "lower", kind, [centre])
        if kind == "measured":
            history[name] = [R(centre * math.exp(rng.gauss(0, 0.05)), 0.1, 5, rid) for rid in run_ids]
    runs = {rid: {"datetime": "2026-11-01T00:00:00+00:00", "commit": None,
                  "probe_s": 0.03 * math.exp(rng.gauss(0, 0.02)) if probed or i % 2 else None,
                  "probe_id": PROBE_ID if rid != "r3" else "another-probe"}
            for i, rid in enumerate(run_ids)}
    return BaselineEntry(nodeid=nodeid, machine=machine, commit={}, datetime="2026-11-01T00:00:00+00:00",
                         method=machine["method"], metrics=metrics, history=history, runs=runs)


@pytest.mark.parametrize("probing", [True, False])
def test_pool_histories_pools_what_history_for_gives(probing):
    rng = random.Random(7)
    machine = {"method": "estimate", "gpus": [], "cpu_model": "x"}
    other = {**machine, "cpu_model": "y"}
    run_ids = [f"r{i}" for i in range(6)]
    entries = [_entry(f"t.py::test_{i}", rng, run_ids, other if i % 7 == 0 else machine, probed=i % 3 > 0)
               for i in range(40)]
    got = pool_histories(entries, machine, probing)
    # What pool_histories stands for: every comparable entry's history_for, pooled per noise family.
    groups: dict[str, list] = {}
    for entry in entries:
        if entry.machine != machine:
            continue
        for name, metric in entry.metrics.items():
            if metric.kind == "measured":
                exponent = h.probe_exponent(metric.unit) if probing else 0
                runs = entry.history_for(name, PROBE_ID if probing else None)
                groups.setdefault(h.family(metric.unit, name), []).append((runs, exponent))
    expected = {name: h.pool(series) for name, series in groups.items()}
    assert set(got.pools) == set(expected) == {"time", "energy"}
    assert got.pools == expected
    assert any(p.n_runs for pools in got.pools.values() for p in pools.values())


def test_pool_histories_leaves_the_collector_as_it_found_it():
    machine = {"method": "estimate"}
    assert gc.isenabled()
    pool_histories([], machine, True)
    assert gc.isenabled()
    gc.disable()
    try:
        pool_histories([], machine, True)
        assert not gc.isenabled()
    finally:
        gc.enable()
