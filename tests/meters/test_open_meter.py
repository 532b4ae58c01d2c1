"""open_meter: auto picks NVML, else RAPL, else the estimate, and says why."""

from __future__ import annotations


import pytest

from pytest_energy.errors import MeterUnavailable, UsageError
from pytest_energy.meters import open_meter

def test_auto_falls_back_with_reasons(no_nvml, tmp_path):
    meter = open_meter("auto", powercap_root=str(tmp_path / "none"))
    assert meter.name == "estimate"
    assert any("NVML" in r for r in meter.fallback_reasons)
    assert any("RAPL" in r for r in meter.fallback_reasons)


def test_auto_prefers_rapl_over_estimate(no_nvml, fake_rapl):
    root, _, _ = fake_rapl
    with open_meter("auto", powercap_root=str(root)) as meter:
        assert meter.name == "rapl"


def test_explicit_unusable_meter_raises(no_nvml, tmp_path):
    with pytest.raises(MeterUnavailable, match="NVML"):
        open_meter("nvml")
    with pytest.raises(MeterUnavailable, match="RAPL"):
        open_meter("rapl", powercap_root=str(tmp_path / "none"))


def test_unknown_meter_is_a_usage_error():
    with pytest.raises(UsageError, match="unknown energy meter 'gpu'.*auto, nvml, rapl, estimate"):
        open_meter("gpu")
