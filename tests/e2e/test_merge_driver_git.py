"""Two branches that both ran `--energy-save-baseline`, merged in a real git repository: without the merge
driver the next run stops with exit 4 naming the file and the driver; with it the merge is clean and the
gate judges against the union of both histories."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

# Real git repositories and several pytest runs in subprocesses: slow end-to-end tests.
pytestmark = [pytest.mark.slow, pytest.mark.skipif(shutil.which("git") is None, reason="needs git")]

BENCH = """
def busy(n):
    total = 0
    for i in range(n):
        total += i * i
    return total

def test_work(energy):
    energy(busy, 20000)
"""
NEW_TEST = """
def test_new(energy):
    energy(busy, 10000)
"""
BASELINE = "baselines/test_bench.json"


def git(pytester, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=pytester.path, capture_output=True, text=True, check=False)


def save(pytester, message: str) -> None:
    result = pytester.runpytest("--energy", "--energy-meter", "estimate", "--energy-rounds", "2",
                                "--energy-save-baseline", "-p", "no:cacheprovider")
    assert result.ret == 0, result.stdout.str()
    assert git(pytester, "add", "-A").returncode == 0
    assert git(pytester, "commit", "-q", "-m", message).returncode == 0


def two_branches_that_saved(pytester, *, driver: bool) -> subprocess.CompletedProcess:
    """main saves run 1; branch `feature` adds a test and saves run 2; main saves run 3; then main merges
    feature. Returns git merge's result."""
    git(pytester, "init", "-q", "-b", "main")
    git(pytester, "config", "user.name", "Test")
    git(pytester, "config", "user.email", "test@example.com")
    pytester.makepyfile(test_bench=BENCH)
    if driver:
        installed = subprocess.run([sys.executable, "-m", "pytest_energy", "merge-driver", "--install", "--apply"],
                                   cwd=pytester.path, capture_output=True, text=True, env=os.environ.copy())
        assert installed.returncode == 0, installed.stderr
    save(pytester, "run 1")
    git(pytester, "checkout", "-q", "-b", "feature")
    (pytester.path / "test_bench.py").write_text(BENCH + NEW_TEST)
    save(pytester, "run 2 on feature, with a new test")
    git(pytester, "checkout", "-q", "main")
    save(pytester, "run 3 on main")
    return git(pytester, "merge", "--no-edit", "feature")


def test_without_the_driver_the_conflict_is_exit_4_naming_the_file_and_the_driver(pytester):
    merged = two_branches_that_saved(pytester, driver=False)
    assert merged.returncode != 0 and "CONFLICT" in merged.stdout
    assert "<<<<<<<" in (pytester.path / BASELINE).read_text()
    result = pytester.runpytest("--energy", "--energy-meter", "estimate", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    text = result.stderr.str() + result.stdout.str()
    assert BASELINE.split("/")[1] in text and "git conflict markers" in text
    assert "python -m pytest_energy merge-driver --install" in text
    assert "INTERNALERROR" not in text and "Traceback" not in text


def test_with_the_driver_two_branches_merge_cleanly_and_the_gate_judges_the_union(pytester):
    merged = two_branches_that_saved(pytester, driver=True)
    assert merged.returncode == 0, merged.stdout + merged.stderr
    text = (pytester.path / BASELINE).read_text()
    assert "<<<<<<<" not in text
    entries = json.loads(text)["entries"]
    work = entries["test_bench.py::test_work"]
    runs = [h["run_id"] for h in work["metrics"]["energy_j"]["history"]]
    assert len(runs) == len(set(runs)) == 3  # run 1 (shared) once, run 2 from feature, run 3 from main
    starts = [work["runs"][rid]["datetime"] for rid in runs]
    assert starts == sorted(starts)
    assert "test_bench.py::test_new" in entries  # added on feature
    assert git(pytester, "status", "--porcelain").stdout.strip() == ""

    result = pytester.runpytest("--energy", "--energy-meter", "estimate", "--energy-rounds", "2", "-p",
                                "no:cacheprovider", "-rA")
    out = result.stdout.str()
    assert result.ret in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED), out
    assert "history: 3 runs" in out, out  # judged against the union of both branches' runs
