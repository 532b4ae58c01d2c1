"""The pytest wiring's shape: no import circle between the two plugins, and nothing heavy loaded with them."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest_energy

PACKAGE = Path(pytest_energy.__file__).parent


def _imported_modules(path: Path) -> set[str]:
    """Every pytest_energy module `path` imports, at any depth of the file (absolute names)."""
    package = ".".join(("pytest_energy", *path.relative_to(PACKAGE).with_suffix("").parts[:-1]))
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(p for p in (base, node.module) if p) if node.level else node.module or ""
            out.add(module)
            out.update(f"{module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
    return {m for m in out if m.startswith("pytest_energy")}


def test_the_distributed_plugin_never_imports_the_main_plugin():
    imported = _imported_modules(PACKAGE / "distributed" / "plugin.py")
    assert "pytest_energy.session" in imported  # it finds the session through session.get_session
    assert "pytest_energy.plugin" not in imported


def test_the_core_of_the_session_and_the_reports_do_not_import_the_plugins():
    for path in (PACKAGE / "session.py", PACKAGE / "report" / "outputs.py", PACKAGE / "gate" / "store.py",
                 PACKAGE / "report" / "reporters.py"):
        imported = _imported_modules(path)
        assert not imported & {"pytest_energy.plugin", "pytest_energy.distributed.plugin"}, path


def test_loading_the_plugins_loads_nothing_heavy():
    """What a plain `pytest` run pays for: the session, the gate's judging and store, the reports, the meters,
    the measurement layer and the settings are imported only with --energy."""
    code = ("import sys, pytest, pytest_energy.plugin, pytest_energy.distributed.plugin; "
            "print(' '.join(sorted(m for m in sys.modules if m.startswith('pytest_energy'))))")
    loaded = set(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
                 .stdout.split())
    # meters/__init__ itself holds only the constants config shows (METER_CHOICES): the meters are its modules.
    heavy = {"pytest_energy.session", "pytest_energy.fixture", "pytest_energy.measure", "pytest_energy.meters.base",
             "pytest_energy.meters.nvml", "pytest_energy.meters.rapl", "pytest_energy.meters.estimate",
             "pytest_energy.gate.history", "pytest_energy.gate.stats",
             "pytest_energy.gate.judge", "pytest_energy.gate.compare", "pytest_energy.gate.baselines",
             "pytest_energy.gate.store", "pytest_energy.report", "pytest_energy.distributed.ranks",
             "pytest_energy.distributed.split", "pytest_energy.analysis.hulk_store", "pytest_energy.machine",
             # a run's and a test's settings and the carbon model they hold: --energy only (config.settings)
             "pytest_energy.config.settings", "pytest_energy.analysis.carbon"}
    assert loaded & heavy == set()
    assert {"pytest_energy.plugin", "pytest_energy.distributed.plugin"} <= loaded


def test_every_relative_import_names_a_module_of_the_package():
    """A relative import that a move left one dot short fails only when its code runs (often inside a hook, with
    --energy): found here instead, for every module, lazy imports included."""
    missing = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        package = ["pytest_energy", *parts[:-1]]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level and node.module:
                base = package[:len(package) - (node.level - 1)]
                target = PACKAGE.parent.joinpath(*base, *node.module.split("."))
                if not (target.with_suffix(".py").is_file() or (target / "__init__.py").is_file()):
                    missing.append(f"{path.relative_to(PACKAGE)}:{node.lineno}: {'.' * node.level}{node.module}")
    assert missing == []
