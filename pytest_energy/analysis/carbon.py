"""Energy to kWh, CO2e and money.

Defaults follow Strubell et al. 2019 ("Energy and Policy Considerations for Deep Learning in NLP"):
US-average grid intensity 0.954 lb CO2e/kWh and $0.12/kWh electricity. Their PUE is 1.58 (the 2018
data-centre industry average, `STRUBELL_PUE`); our default PUE is 1.0 because a test metered on a
laptop or a CI runner has no data-centre overhead we know of: set it when you know your facility's.
HULK prices fine-tuning by the hour of the cloud machine; `hardware_usd_per_hour` adds that
(default 0: we do not guess a cloud price).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ..errors import UsageError

# Defined in the package (cheap to import: config shows them in every pytest run), used here.
from . import G_PER_LB, STRUBELL_US_G_PER_KWH, STRUBELL_US_LB_PER_KWH, STRUBELL_USD_PER_KWH  # noqa: F401

J_PER_KWH = 3.6e6
STRUBELL_PUE = 1.58


def _check_finite(name: str, value: Any, *, minimum: float) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise UsageError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(value) or value < minimum:
        raise UsageError(f"{name} must be a finite number >= {minimum:g}, got {value!r}")
    return value


@dataclass(frozen=True)
class CarbonConfig:
    """How energy becomes emissions and money. Every field is validated on construction."""

    grid_gco2e_per_kwh: float = STRUBELL_US_G_PER_KWH
    pue: float = 1.0  # facility energy / IT energy; Strubell et al. used 1.58
    electricity_usd_per_kwh: float = STRUBELL_USD_PER_KWH
    hardware_usd_per_hour: float = 0.0  # cloud machine price, HULK's way of costing a run

    def __post_init__(self) -> None:
        object.__setattr__(self, "grid_gco2e_per_kwh",
                           _check_finite("grid intensity (gCO2e/kWh)", self.grid_gco2e_per_kwh, minimum=0.0))
        # A PUE below 1 would mean the facility gives energy back: always a typo.
        object.__setattr__(self, "pue", _check_finite("PUE", self.pue, minimum=1.0))
        object.__setattr__(self, "electricity_usd_per_kwh",
                           _check_finite("electricity price (USD/kWh)", self.electricity_usd_per_kwh, minimum=0.0))
        object.__setattr__(self, "hardware_usd_per_hour",
                           _check_finite("hardware price (USD/hour)", self.hardware_usd_per_hour, minimum=0.0))

    def to_dict(self) -> dict[str, float]:
        return {"grid_gco2e_per_kwh": self.grid_gco2e_per_kwh, "pue": self.pue,
                "electricity_usd_per_kwh": self.electricity_usd_per_kwh,
                "hardware_usd_per_hour": self.hardware_usd_per_hour}


def footprint(energy_j: float, duration_s: float, config: CarbonConfig | None = None,
              tokens: int | None = None) -> dict[str, Any]:
    """Footprint of `energy_j` metered (IT) energy over `duration_s`.

    facility energy = PUE x metered energy (Strubell et al.: total power = PUE x (CPU + DRAM + GPU));
    CO2e = facility kWh x grid intensity; cost = facility kWh x electricity price + hours x hardware price.
    Pass gross energy to match the papers; net-of-idle energy understates what the grid supplied.
    """
    config = config if config is not None else CarbonConfig()
    energy_j = _check_finite("energy_j", energy_j, minimum=0.0)
    duration_s = _check_finite("duration_s", duration_s, minimum=0.0)
    if tokens is not None and (isinstance(tokens, bool) or not isinstance(tokens, int) or tokens < 0):
        raise UsageError(f"tokens must be a non-negative int or None, got {tokens!r}")
    energy_kwh = energy_j / J_PER_KWH
    facility_kwh = energy_kwh * config.pue
    electricity_usd = facility_kwh * config.electricity_usd_per_kwh
    hardware_usd = duration_s / 3600.0 * config.hardware_usd_per_hour
    out: dict[str, Any] = {
        "energy_kwh": energy_kwh,
        "facility_energy_kwh": facility_kwh,
        "co2e_kg": facility_kwh * config.grid_gco2e_per_kwh / 1000.0,
        "electricity_cost_usd": electricity_usd,
        "hardware_cost_usd": hardware_usd,
        "cost_usd": electricity_usd + hardware_usd,
        "tokens": tokens,
        "j_per_token": energy_j / tokens if tokens else None,
        "co2e_g_per_1k_tokens": facility_kwh * config.grid_gco2e_per_kwh / tokens * 1000.0 if tokens else None,
    }
    out.update(config.to_dict())
    return out
