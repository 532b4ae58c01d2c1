"""A `pytest --energy` run over a baseline folder with a pool cache (gate/pool_cache.py), end to end: the
start-up takes the cached pools, each test its own entry, and a damaged file still stops the run (exit 4)."""

from __future__ import annotations

import json

import pytest

from pytest_energy.gate import pool_cache
from pytest_energy.gate.baselines import POOL_CACHE_NAME, StoredEntries

SUITE = """
def test_a(energy):
    energy(sum, range(2000))

def test_b(energy):
    energy(sum, range(3000))
"""


@pytest.fixture
def saved(pytester, no_nvml, monkeypatch):
    """Three saving runs of a two-test module (histories of 3 runs), with a cache whatever the folder's size."""
    monkeypatch.setattr(pool_cache, "MIN_BYTES", 0)
    pytester.makepyfile(test_suite=SUITE)
    for _ in range(3):
        result = pytester.runpytest("--energy", "--energy-meter", "estimate", "--energy-rounds", "2",
                                    "--energy-save-baseline", "-p", "no:cacheprovider")
        result.assert_outcomes(passed=2)
    assert (pytester.path / "baselines" / POOL_CACHE_NAME).is_file()
    return pytester


def test_a_run_takes_the_cached_pools_and_judges_by_history(saved, monkeypatch):
    vouched = []
    real = StoredEntries.cached_pools

    def spy(self, machine, probing):
        got = real(self, machine, probing)
        vouched.append(got is not None)
        return got

    monkeypatch.setattr(StoredEntries, "cached_pools", spy)
    result = saved.runpytest("--energy", "--energy-meter", "estimate", "--energy-rounds", "2", "--energy-json",
                             "out.json", "-p", "no:cacheprovider")
    assert result.ret in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED)  # verdicts are the machine's
    assert vouched and all(vouched)
    text = (saved.path / "out.json").read_text()
    assert json.loads(text)["benchmarks"] and "history: 3 runs" in text


def test_a_damaged_file_beside_the_cache_stops_the_run_naming_it(saved):
    path = saved.path / "baselines" / "test_suite.json"
    path.write_text(path.read_text().replace('"unit": "J"', '"unit": 7', 1))
    result = saved.runpytest("--energy", "--energy-meter", "estimate", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{path.name}*unit*"])
