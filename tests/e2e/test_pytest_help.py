"""A plugin must never break pytest: `pytest --help`, `--markers` and `--fixtures` with pytest-energy installed,
run in a subprocess exactly as users type them (argparse only formats help text when --help is asked for)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pytest_energy.config import FLAGS, OPTIONS
from pytest_energy.reference.plugin import REFERENCE_OPTIONS, env_var


def _pytest(cwd, *args: str) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def test_help_lists_every_option_with_metavar_default_and_ini_key(tmp_path):
    out = " ".join(_pytest(tmp_path, "--help").stdout.split())  # argparse wraps lines
    for flag, _ in FLAGS:
        assert flag in out
    for option in OPTIONS:
        assert f"{option.flag}={option.metavar}" in out
        default = "none" if option.default is None else option.default
        assert f"[default: {default}; ini: energy_{option.name.replace('-', '_')}]" in out
    assert "e.g. 10% or 0.1" in out  # a literal '%' survives argparse's formatting


def test_help_with_the_reference_suite_plugin(tmp_path):
    out = _pytest(tmp_path, "-p", "pytest_energy.reference.plugin", "--help").stdout
    assert "--energy-task=NAME" in out and "--energy-data-dir=PATH" in out
    out = " ".join(out.split())  # argparse wraps lines
    for option in REFERENCE_OPTIONS:
        default = "none" if option.default is None else option.default
        assert f"{option.flag}={option.metavar}" in out
        assert f"[env {env_var(option)}] [default: {default}; ini: {option.ini}]" in out


@pytest.mark.slow  # two pytest subprocesses
def test_markers_and_fixtures(tmp_path):
    assert "@pytest.mark.energy(rounds=N" in _pytest(tmp_path, "--markers").stdout
    (tmp_path / "test_x.py").write_text("def test_x():\n    pass\n")
    fixtures = _pytest(tmp_path, "--fixtures").stdout
    assert "energy -- " in fixtures and "Meter energy, time and peak memory" in fixtures


@pytest.mark.parametrize("option", OPTIONS, ids=lambda o: o.flag)
def test_every_valued_option_has_the_ini_key_of_its_name(pytester, no_nvml, option):
    """--energy-X <-> ini energy_X, and the ini value is used (here: it must be validated like the option)."""
    assert option.ini == "energy_" + option.name.replace("-", "_")
    pytester.makeini(f"[pytest]\n{option.ini} = \n")
    pytester.makepyfile("def test_x(energy):\n    pass\n")
    result = pytester.runpytest("--energy")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*ini key {option.ini}: empty value*"])


def test_ini_keys_named_after_the_options_are_used(pytester, no_nvml):
    pytester.makeini("[pytest]\nenergy_grid_intensity = 100\nenergy_price_kwh = 0.5\nenergy_rounds = 2\n")
    pytester.makepyfile("import time\ndef test_x(energy):\n    energy(time.sleep, 0.02)\n")
    result = pytester.runpytest("--energy", "--energy-warmup", "0", "-W", "ignore::pytest_energy.errors.EnergyWarning")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["test_x*2*", "*(grid 100 gCO2e/kWh, PUE 1; from gross energy)*"])
