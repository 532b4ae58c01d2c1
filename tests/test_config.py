"""config.py: options, ini keys and marker arguments, parsed and validated once."""

from __future__ import annotations

import pytest

from pytest_energy.config import OPTIONS, SessionConfig, settings_for
from pytest_energy.errors import UsageError
from pytest_energy.report.bmf import export_targets


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


class _Config:
    """What SessionConfig.from_pytest reads: options by dest, ini keys unset."""

    def __init__(self, **options):
        self.options = options

    def getoption(self, dest):
        return self.options.get(dest)

    def getini(self, key):
        from pytest_energy.config import UNSET

        return UNSET


def test_history_probe_and_calibration_options():
    config = SessionConfig.from_pytest(_Config())
    assert (config.history, config.probe, config.min_round_s) == (10, "auto", None)
    assert not (config.reset_baseline or config.fail_on_inconclusive)
    config = SessionConfig.from_pytest(_Config(energy_history="3", energy_probe="off", energy_min_round_s="0.5",
                                               energy_save_baseline=True, energy_reset_baseline=True,
                                               energy_fail_on_inconclusive=True))
    assert (config.history, config.probe, config.min_round_s) == (3, "off", 0.5)
    assert config.reset_baseline and config.fail_on_inconclusive
    assert settings_for(config).min_round_s == 0.5


@pytest.mark.parametrize("options, message", [
    ({"energy_history": "0"}, "--energy-history: must be >= 1"),
    ({"energy_probe": "sometimes"}, "--energy-probe: unknown value 'sometimes'"),
    ({"energy_min_round_s": "-1"}, "--energy-min-round-s: expected 'auto' or seconds"),
    ({"energy_reset_baseline": True}, "--energy-reset-baseline .* needs --energy-save-baseline"),
])
def test_bad_history_options_name_the_option(options, message):
    with pytest.raises(UsageError, match=message):
        SessionConfig.from_pytest(_Config(**options))


def test_option_and_run_mode_are_frozen_values():
    """Plain classes (cheap to create in every pytest run) that behave as the frozen dataclasses they were."""
    import copy

    from pytest_energy.config import OPTIONS, Option, RunMode

    assert RunMode(run=True, measure=True) == RunMode(True, True) != RunMode(run=True)
    assert hash(RunMode(only=True)) == hash(RunMode(only=True)) and RunMode(run=True, measure=False).disabled
    assert repr(RunMode()).startswith("RunMode(run=False, measure=False, only=False, skip_reason=")
    option = next(o for o in OPTIONS if o.name == "idle-s")
    assert copy.deepcopy(option) == option and option != Option("idle-s", "S", option.help, option.default)
    assert (option.flag, option.dest, option.ini, option.key) == ("--energy-idle-s", "energy_idle_s",
                                                                  "energy_idle_s", "idle_s")
    for frozen, field in ((option, "default"), (RunMode(), "run")):
        with pytest.raises(AttributeError, match="is frozen"):
            setattr(frozen, field, "x")


def test_the_settings_are_re_exported_lazily():
    import pytest_energy.config as config
    from pytest_energy.config import settings

    assert (config.SessionConfig, config.TestSettings, config.settings_for) == \
        (settings.SessionConfig, settings.TestSettings, settings.settings_for)
    assert {"SessionConfig", "TestSettings", "settings_for", "CarbonConfig"} <= set(dir(config))
    with pytest.raises(AttributeError, match="no attribute 'no_such_name'"):
        config.no_such_name  # noqa: B018


def test_the_options_reach_the_session_config():
    by_flag = {o.flag: o for o in OPTIONS}
    assert by_flag["--energy-bmf"].ini == "energy_bmf"
    assert by_flag["--energy-github-benchmark"].ini == "energy_github_benchmark"
    config = SessionConfig.from_pytest(_Config(energy_bmf="out/bmf.json", energy_github_benchmark="gh.json"))
    assert (config.bmf_path, config.github_benchmark_path) == ("out/bmf.json", "gh.json")
    assert export_targets(config) == [("out/bmf.json", "--energy-bmf"), ("gh.json", "--energy-github-benchmark")]
    assert export_targets(SessionConfig.from_pytest(_Config())) == []
