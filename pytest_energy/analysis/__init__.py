"""Analysis of measured runs: carbon and cost, HULK scoring, trends, Pareto fronts.

The defaults the configuration shows for the carbon model (Strubell et al. 2019, see `analysis.carbon`) are
defined here, in the layer that owns them, so that `config` (and every pytest run, which imports it) reads
them without creating the carbon model's dataclass.
"""

from __future__ import annotations

G_PER_LB = 453.59237
STRUBELL_US_LB_PER_KWH = 0.954
STRUBELL_US_G_PER_KWH = STRUBELL_US_LB_PER_KWH * G_PER_LB  # 432.7 gCO2e/kWh
STRUBELL_USD_PER_KWH = 0.12
