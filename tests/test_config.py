"""config.py: options, ini keys and marker arguments, parsed and validated once."""

from __future__ import annotations

import pytest

from pytest_energy.config import SessionConfig, settings_for
from pytest_energy.errors import UsageError


def test_marker_settings_validation():
    base = SessionConfig(rounds=5, warmup=1, tolerance=0.08)
    s = settings_for(base, {"rounds": 3, "tolerance": {"energy_j": "5%", "duration_s": "15%"}})
    assert s.rounds == 3 and s.warmup == 1
    assert s.tolerance_for("energy_j") == 0.05 and s.tolerance_for("duration_s") == 0.15
    assert s.tolerance_for("finetune.energy_j") == 0.08
    assert settings_for(base, {"tolerance": "3%"}).tolerance == 0.03
    with pytest.raises(UsageError, match="unknown argument.*round\\b"):
        settings_for(base, {"round": 3})
    with pytest.raises(UsageError, match="rounds must be an integer >= 1"):
        settings_for(base, {"rounds": 0})
    with pytest.raises(UsageError, match="bad tolerance"):
        settings_for(base, {"tolerance": "5 percent"})
