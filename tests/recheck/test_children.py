"""One side of the A/B as a process (recheck/children.py): its command, its environment, reading its report."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from pytest_energy.recheck.children import CHILD_ENV, SIDE_CACHE_ENV, ChildRunner, side_cache


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


def test_each_side_keeps_one_folder_across_its_processes_and_never_shares_it(tmp_path, monkeypatch):
    # What the reference suite's fine-tuned model relies on: the second process of a side finds what the first
    # left, the other side (other code) does not, and nothing outlives the A/B.
    counter = ("from pytest_energy.recheck.children import side_cache\n"
               "def test_count():\n"
               "    folder = side_cache()\n"
               "    assert folder is not None\n"
               "    seen = folder / 'runs'\n"
               "    seen.write_text(str(int(seen.read_text()) + 1 if seen.exists() else 1))\n")
    base, head = tmp_path / "base", tmp_path / "head"
    for tree in (base, head):
        tree.mkdir()
        (tree / "test_c.py").write_text(counter)
    monkeypatch.setenv(SIDE_CACHE_ENV, str(tmp_path))  # an outer A/B's folder is not inherited
    root = Path(__file__).resolve().parents[2]
    runner = ChildRunner()
    try:
        for tree in (base, head, base):
            result = runner.measure(["test_c.py::test_count"], tree, root)
            assert "the test failed" not in result.missing.get("test_c.py::test_count", ""), result.tail
        assert (runner.side_cache(base) / "runs").read_text() == "2"
        assert (runner.side_cache(head) / "runs").read_text() == "1"
        assert runner.side_cache(base) != runner.side_cache(head) and runner.side_cache(base).parent != tmp_path
        kept = runner.side_cache(base)
    finally:
        runner.close()
    assert not kept.exists() and not (tmp_path / "runs").exists()


def test_outside_an_ab_child_there_is_no_side_cache(monkeypatch, tmp_path):
    monkeypatch.delenv(SIDE_CACHE_ENV, raising=False)
    assert side_cache() is None
    monkeypatch.setenv(SIDE_CACHE_ENV, str(tmp_path / "gone"))  # removed with its A/B: not a folder to write in
    assert side_cache() is None
    monkeypatch.setenv(SIDE_CACHE_ENV, str(tmp_path))
    assert side_cache() == tmp_path
