from __future__ import annotations

import dataclasses

import pytest

from pytest_energy.analysis.carbon import STRUBELL_PUE, CarbonConfig, footprint
from pytest_energy.errors import UsageError


def test_defaults_are_strubell_us_average():
    c = CarbonConfig()
    assert c.grid_gco2e_per_kwh == pytest.approx(432.73, abs=0.01)  # 0.954 lb/kWh
    assert c.pue == 1.0 and c.electricity_usd_per_kwh == 0.12 and c.hardware_usd_per_hour == 0.0
    assert STRUBELL_PUE == 1.58


def test_one_kwh_one_hour():
    f = footprint(3.6e6, 3600.0)
    assert f["energy_kwh"] == pytest.approx(1.0) and f["facility_energy_kwh"] == pytest.approx(1.0)
    assert f["co2e_kg"] == pytest.approx(0.95400 * 0.45359237)
    assert f["cost_usd"] == pytest.approx(0.12) and f["hardware_cost_usd"] == 0.0
    assert f["j_per_token"] is None and f["pue"] == 1.0


def test_pue_hardware_price_and_tokens():
    c = CarbonConfig(pue=STRUBELL_PUE, hardware_usd_per_hour=3.06, electricity_usd_per_kwh=0.2,
                     grid_gco2e_per_kwh=100.0)
    f = footprint(7.2e6, 1800.0, c, tokens=1_000_000)
    assert f["energy_kwh"] == pytest.approx(2.0) and f["facility_energy_kwh"] == pytest.approx(3.16)
    assert f["co2e_kg"] == pytest.approx(0.316)
    assert f["electricity_cost_usd"] == pytest.approx(0.632) and f["hardware_cost_usd"] == pytest.approx(1.53)
    assert f["cost_usd"] == pytest.approx(0.632 + 1.53)
    assert f["j_per_token"] == pytest.approx(7.2) and f["co2e_g_per_1k_tokens"] == pytest.approx(0.316)


@pytest.mark.parametrize("kwargs", [dict(pue=0.9), dict(pue=float("nan")), dict(grid_gco2e_per_kwh=-1),
                                    dict(electricity_usd_per_kwh=float("inf")), dict(hardware_usd_per_hour="x")])
def test_invalid_config(kwargs):
    with pytest.raises(UsageError):
        CarbonConfig(**kwargs)


@pytest.mark.parametrize("args", [(-1.0, 1.0), (1.0, -1.0), (float("nan"), 1.0), (1.0, 1.0, None, -5),
                                  (1.0, 1.0, None, 2.5), (1.0, 1.0, None, True)])
def test_invalid_footprint_arguments(args):
    with pytest.raises(UsageError):
        footprint(*args)


def test_config_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        CarbonConfig().pue = 2.0
