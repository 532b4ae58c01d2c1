"""The package root exports its public names lazily: importing it (every pytest run does) loads nothing else."""

from __future__ import annotations

import subprocess
import sys

import pytest

import pytest_energy


def test_importing_the_package_imports_none_of_its_modules():
    code = "import sys, pytest_energy; print(sorted(m for m in sys.modules if m.startswith('pytest_energy.')))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_every_public_name_resolves_to_its_module():
    assert sorted(pytest_energy.__all__) == sorted([*pytest_energy._EXPORTS, "__version__"])
    for name, module in pytest_energy._EXPORTS.items():
        value = getattr(pytest_energy, name)
        assert value.__module__ == f"pytest_energy.{module}" and name in dir(pytest_energy)
    from pytest_energy import EnergyFixture, UsageError  # noqa: F401 -- the import statement users write


def test_submodules_and_unknown_names():
    assert pytest_energy.records.Window is pytest_energy.Window
    with pytest.raises(AttributeError, match="no attribute 'no_such_name'"):
        pytest_energy.no_such_name  # noqa: B018
