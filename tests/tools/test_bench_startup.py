"""tools/bench_startup.py runs and prints its three figures (tiny sizes: this checks the tool, not the figures)."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

TOOL = Path(__file__).resolve().parents[2] / "tools" / "bench_startup.py"


def _tool():
    spec = importlib.util.spec_from_file_location("bench_startup", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow  # pytest and Python processes by the dozen
def test_quick_run_prints_all_three_figures():
    done = subprocess.run([sys.executable, str(TOOL), "--quick"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert re.search(r"^import: pytest_energy\.plugin [\d.]+ ms over pytest [\d.]+ ms = [\d.]+%", out, re.M), out
    assert re.search(r"^run: 20 trivial tests [\d.]+ s with the plugin, [\d.]+ s with -p no:energy = [\d.]+x", out,
                     re.M), out
    assert re.search(r"^run: .*; CPU time [\d.]+x$", out, re.M), out
    assert re.search(r"^bytecode: compiled once into a temporary PYTHONPYCACHEPREFIX", out, re.M), out
    assert re.search(r"^baselines: 200 benchmarks x 2 metrics x 10 runs: load [\d.]+ s \+ pool [\d.]+ s", out,
                     re.M), out


def test_importtime_lines_are_read_by_module_name():
    stderr = ("import time: self [us] | cumulative | imported package\n"
              "import time:       120 |        120 |     _pytest.compat\n"
              "import time:      7405 |     135895 | pytest\n"
              "import time:        99 |         99 |     pytest_energy.errors\n"
              "import time:      6297 |      70415 | pytest_energy.plugin\n")
    tool = _tool()
    assert tool.cumulative_us(stderr, "pytest") == 135895
    assert tool.cumulative_us(stderr, "pytest_energy.plugin") == 70415


def test_the_generated_baselines_load_and_pool(tmp_path):
    tool = _tool()
    tool.write_baselines(tmp_path, n_benchmarks=120, history=4, metrics=3)
    assert len(list(tmp_path.glob("*.json"))) == 2  # 100 tests per module
    from pytest_energy.gate.baselines import BaselineStore

    entries = BaselineStore(tmp_path).load_all()
    assert len(entries) == 120
    entry = entries["tests/test_suite_1.py::test_119"]
    assert sorted(entry.history) == ["duration_s", "energy_j", "peak_memory_bytes"]
    assert all(len(runs) == 4 for runs in entry.history.values())
    b = tool.baseline_times(120, 4, 3, repeats=1)
    assert b["count"] == 120 and b["load"] > 0 and b["pool"] > 0 and b["cold_load"] > 0 and b["entries"] > 0
    assert b["cached"] == 0.0  # 120 benchmarks: under the cache's threshold


def test_a_large_folder_is_timed_with_and_without_its_pool_cache(monkeypatch):
    from pytest_energy.gate import pool_cache

    monkeypatch.setattr(pool_cache, "MIN_BYTES", 0)
    b = _tool().baseline_times(150, 4, 2, repeats=1)
    assert b["cached"] == 1.0 and b["count"] == 150
    assert b["save"] > 0 and b["cold_load"] > 0 and b["cold_pool"] > 0


def test_measured_processes_read_bytecode_from_a_temporary_prefix(monkeypatch):
    """Where PYTHONDONTWRITEBYTECODE is set, a measured process would compile pytest_energy from source on every
    import: the tool's processes write bytecode once into a prefix of their own and read it from there."""
    tool = _tool()
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    code = "import sys; print(sys.dont_write_bytecode, sys.pycache_prefix)"
    with tool._bytecode(as_is=False) as prefix:
        assert prefix is not None and Path(prefix).is_dir()
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                              env=tool._subprocess_env(prefix))
        assert done.stdout.split() == ["False", prefix]
        assert "temporary PYTHONPYCACHEPREFIX" in tool.bytecode_note(as_is=False)
    with tool._bytecode(as_is=True) as prefix:
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                              env=tool._subprocess_env(prefix))
        assert done.stdout.split()[0] == "True"
        assert "PYTHONDONTWRITEBYTECODE is set" in tool.bytecode_note(as_is=True)
