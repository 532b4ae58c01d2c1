"""One side of the A/B as a process (recheck/children.py): its command, its environment, reading its report."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from pytest_energy.recheck.children import CHILD_ENV, ChildRunner


def test_the_child_measures_with_its_own_empty_baselines_and_reports_json(tmp_path):
    runner = ChildRunner(["--energy-meter=estimate"], xdist=True)
    try:
        cmd = runner.command(["t.py::a", "t.py::b"], tmp_path / "e.json", tmp_path / "b")
    finally:
        runner.close()
    assert cmd[:3] == [sys.executable, "-m", "pytest"] and cmd[3:5] == ["t.py::a", "t.py::b"]
    assert ["-n", "0"] == cmd[cmd.index("-n"):cmd.index("-n") + 2]
    assert "--energy" in cmd and cmd[-1] == "--energy-meter=estimate"
    assert cmd[cmd.index("--energy-baseline-dir") + 1] == str(tmp_path / "b")
    assert cmd[cmd.index("--energy-json") + 1] == str(tmp_path / "e.json")


def test_the_trees_code_leads_pythonpath_and_xdist_variables_are_dropped(tmp_path, monkeypatch):
    (tmp_path / "src").mkdir()
    monkeypatch.setenv("PYTHONPATH", "/elsewhere")
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw1")
    runner = ChildRunner()
    try:
        env = runner.env(tmp_path)
    finally:
        runner.close()
    assert env["PYTHONPATH"].split(os.pathsep) == [str(tmp_path), str(tmp_path / "src"), "/elsewhere"]
    assert "PYTEST_XDIST_WORKER" not in env and env[CHILD_ENV] == "1"


def test_a_child_that_cannot_run_names_why_for_each_test(tmp_path):
    (tmp_path / "test_x.py").write_text("def test_x():\n    raise AssertionError('boom')\n")
    runner = ChildRunner()
    try:
        present, missing = runner.collect(["test_x.py::test_x", "test_x.py::nope", "gone.py::t"], tmp_path,
                                          tmp_path)
        assert present == {"test_x.py::test_x"}
        assert "does not exist" in missing["gone.py::t"] and "does not exist" in missing["test_x.py::nope"]
        result = runner.measure(["test_x.py::test_x"], tmp_path, tmp_path)
    finally:
        runner.close()
    assert not result.values and result.missing["test_x.py::test_x"].startswith("the test failed")
    assert result.seconds > 0 and "boom" in result.tail or "failed" in result.tail
    assert not Path(runner._tmp.name).exists()
